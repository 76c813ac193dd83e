# Two entry points: `make demo` (the main job on ml-100k) and `make test`.
# Set-up installs torch first: the pinned CPU wheel unless TORCH_SPEC names another, e.g. for CUDA:
#   make demo TORCH_SPEC="torch==2.13.0" TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# A torch already present in the virtual environment is kept.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX_URL ?=
# The shared copy when there is one; else kgrec's own cache, where build-graph downloads ml-100k (verified).
KGREC_DATA_DIR ?= $(if $(wildcard ../shared/datasets),$(abspath ../shared/datasets),)
export KGREC_DATA_DIR

BIN := $(VENV)/bin
STAMP := $(VENV)/.kgrec-installed

.PHONY: demo test docs setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || \
		$(BIN)/pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/kgrec build-graph --dataset ml-100k --out graphs/ml-100k
	$(BIN)/kgrec train --graph graphs/ml-100k --fusion gated --out runs/ml-100k-gated
	$(BIN)/kgrec evaluate --run runs/ml-100k-gated
	$(BIN)/kgrec recommend --run runs/ml-100k-gated --user 196 -k 10 --explain

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check kgrec tests benchmarks docs
	$(BIN)/ruff format --check kgrec tests benchmarks docs
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --durations=15

# The documentation site (MkDocs Material + mkdocstrings) into site/; the test suite builds it in strict mode too.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) graphs/ml-100k runs site
