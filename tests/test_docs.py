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
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # The reference is rendered from the docstrings, and the benchmark pages the how-tos link are published.
    recommender = (site / "reference" / "recommender" / "index.html").read_text(encoding="utf-8")
    assert "item_vectors" in recommender and "Scores of given" in recommender
    assert (site / "benchmarks" / "results" / "ml-100k" / "index.html").is_file()
    assert (site / "getting-started" / "index.html").is_file()


def test_getting_started_shows_what_its_shipped_shop_gives(tmp_path):
    """The page printed counts of a shop a reader could not make; the generator ships beside it and this checks that
    its build-graph output is the page's, line for line."""
    import re

    from click.testing import CliRunner

    from kgrec.cli import main

    root = Path(__file__).parents[1]
    subprocess.run(
        [sys.executable, str(root / "docs" / "examples" / "make_shop.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    page = (root / "docs" / "getting-started.md").read_text()
    for name in ("orders.csv", "products.csv"):
        shown = re.search(rf"`{name}`.*?```text\n(.*?)```", page, re.S).group(1)
        assert (tmp_path / name).read_text().startswith(shown), name
    result = CliRunner().invoke(
        main,
        [
            "build-graph",
            f"--interactions={tmp_path / 'orders.csv'}",
            f"--items={tmp_path / 'products.csv'}",
            f"--config={tmp_path / 'shop.yaml'}",
            "--name=shop",
            f"--out={tmp_path / 'graphs' / 'shop'}",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = result.stdout.replace(str(tmp_path / "graphs" / "shop"), "graphs/shop")
    assert printed.strip() in page, printed
