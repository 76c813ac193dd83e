"""``python -m kgrec``: the command line."""

from kgrec.cli import main

main()
