"""Packaged run presets: complete RunConfig dumps, read with kgrec.load_config(name)."""
