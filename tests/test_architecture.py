"""The one-way import contract in pyproject.toml holds (import-linter)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_import_contract():
    executable = Path(sys.executable).with_name("lint-imports")
    command = str(executable) if executable.exists() else shutil.which("lint-imports")
    if command is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([command], cwd=Path(__file__).parents[1], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_kgrec_is_light():
    # PyKEEN and rdflib load only when a stage needs them. (transformers is not checked: PyTorch
    # Geometric imports it by itself whenever it is installed.)
    code = "import sys, kgrec; print(any(m in sys.modules for m in ('pykeen', 'rdflib')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_command_line_starts_without_the_heavy_libraries():
    # `kgrec --help`, `--version` and config handling must not wait for torch, PyG, PyKEEN or transformers.
    code = (
        "import sys, kgrec, kgrec.cli, kgrec.config; "
        "print(sorted(m for m in ('torch', 'torch_geometric', 'pykeen', 'transformers', 'rdflib') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    done = subprocess.run([sys.executable, "-m", "kgrec", "--help"], capture_output=True, text=True, check=True)
    assert "build-graph" in done.stdout and "train" in done.stdout


def test_subpackages_are_not_shadowed_by_reexports():
    code = (
        "import kgrec, kgrec.evaluate.metrics, kgrec.train.loop, types; "
        "print(isinstance(kgrec.train, types.ModuleType), isinstance(kgrec.evaluate, types.ModuleType), "
        "kgrec.KnowledgeGraph.__name__, callable(kgrec.api.train))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True", "KnowledgeGraph", "True"]
