# The two commands a newcomer runs (see README.md):
#   make demo   — set everything up, run the whole flow on SQLite against local sandboxes
#   make test   — set everything up, run lint, type checks, the import contracts and the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# Shopify's published Admin GraphQL schemas for the sandbox (fetched with npm, never committed)
SHOPIFY_SCHEMAS = src/orderbridge/sandboxes/shopify/published/manifest.json
# Debian's chromium for the browser tests (tests/browser) is installed by scripts/install-browser.sh
# (a no-op when /usr/bin/chromium exists; never a browser downloaded by Playwright)
# independently written clients the sandboxes are tested with: Shopify's, Square's official SDK (each in a venv of its own)
TEST_CLIENTS = $(VENV)/clients/.installed
# the suite runs in this many pytest-xdist processes (one per core here; each has its own scratch databases)
TEST_WORKERS ?= 2

.PHONY: setup demo test lint audit bench clean

setup: $(VENV)/.installed $(SHOPIFY_SCHEMAS) $(TEST_CLIENTS)
	scripts/install-browser.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(SHOPIFY_SCHEMAS): scripts/fetch-shopify-schema.sh
	PYTHON=$(PYTHON) scripts/fetch-shopify-schema.sh

$(TEST_CLIENTS): scripts/install-test-clients.sh $(VENV)/.installed
	PYTHON=$(PYTHON) scripts/install-test-clients.sh

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
	$(BIN)/python scripts/audit-deps.py
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

# known vulnerabilities in the installed dependencies (policy: scripts/audit-deps.py, docs/security.md)
audit: setup
	$(BIN)/python scripts/audit-deps.py

bench: setup
	$(BIN)/orderbridge bench ingest

clean:
	rm -rf $(VENV) src/orderbridge/sandboxes/shopify/published .orderbridge .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
