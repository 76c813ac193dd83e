"""The documentation site builds in strict mode: a broken link, a missing page or a bad docstring reference fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_documentation_builds_in_strict_mode_with_the_api_reference(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # The reference is rendered from the docstrings, and the benchmark pages the how-tos link are published.
    recommender = (site / "reference" / "recommender" / "index.html").read_text(encoding="utf-8")
    assert "item_vectors" in recommender and "Scores of given" in recommender
    assert (site / "benchmarks" / "results" / "ml-100k" / "index.html").is_file()
    assert (site / "getting-started" / "index.html").is_file()
