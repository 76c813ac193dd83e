"""MkDocs hook: the repository files the pages link to (benchmark results, presets, the notebook) join the site.

They keep their repository paths in the site. The pages link them as they sit in the repository
(``../benchmarks/...`` from ``docs/``), so the pages read the same on GitHub; the hook drops the ``../`` that
leads out of ``docs/``. A link to a file that does not exist fails the strict build.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
# Repository files published beside the pages, by glob from the repository root.
PUBLISHED = (
    "benchmarks/README.md",
    "benchmarks/experiments/*",
    "benchmarks/results/**/*.md",
    "benchmarks/results/**/*.png",
    "benchmarks/results/**/*.csv",
    "benchmarks/results/**/*.json",
    "benchmarks/results/**/*.yaml",
    "benchmarks/*.py",
    "benchmarks/*.txt",
    "benchmarks/shims/**/*.py",
    "kgrec/configs/**/*.yaml",
    "graphs/README.md",
    "graphs/ontology.ttl",
    "notebooks/*.ipynb",
    "notebooks/README.md",
)


_OUT_OF_DOCS = re.compile(r"\]\((?:\.\./)+(?=(?:benchmarks|kgrec|graphs|notebooks)/)")


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 - MkDocs' objects
    """Links from ``docs/`` to repository files, made relative to the site (where those files sit beside the pages)."""
    depth = page.file.src_uri.count("/")
    if page.file.src_uri.startswith(tuple(f"{top}/" for top in ("benchmarks", "kgrec", "graphs", "notebooks"))):
        return markdown  # a repository file itself: its links are already relative to where it sits
    return _OUT_OF_DOCS.sub("](" + "../" * depth, markdown)


def on_files(files: Files, config) -> Files:  # noqa: ANN001 - MkDocs' config object
    """Add every published repository file at its repository path."""
    for pattern in PUBLISHED:
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file():
                files.append(File.generated(config, path.relative_to(ROOT).as_posix(), abs_src_path=str(path)))
    return files
