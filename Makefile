# The two commands a newcomer runs (see README.md):
#   make demo   — set everything up, run the whole flow on SQLite against local sandboxes
#   make test   — set everything up, run lint, type checks, the import contracts and the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/orderbridge demo

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup
	scripts/ensure-postgres.sh
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

bench: setup
	$(BIN)/orderbridge bench ingest

clean:
	rm -rf $(VENV) .orderbridge .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
