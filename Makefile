# dunning — two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PRISM := node_modules/.bin/prism
DEMO_CUSTOMERS ?= 200
DEMO_INVOICES ?= 1000
# A fixed Tuesday afternoon (UTC) so the demo is reproducible and inside most send windows.
DEMO_DATE ?= 2026-11-24
DEMO_AS_OF ?= $(DEMO_DATE)T15:00:00Z

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

# Stoplight Prism validates our SDK requests against the providers' OpenAPI documents.
$(PRISM):
	npm install --no-save --no-audit --no-fund --loglevel=error @stoplight/prism-cli@5

demo: install
	$(BIN)/dunning db upgrade
	$(BIN)/dunning seed --customers $(DEMO_CUSTOMERS) --invoices $(DEMO_INVOICES) --seed 7 \
		--as-of $(DEMO_DATE) --reset
	$(BIN)/dunning segments --as-of $(DEMO_AS_OF)
	$(BIN)/dunning run --as-of $(DEMO_AS_OF)
	@echo
	@echo "Next: '$(BIN)/dunning ledger' lists every reminder; messages are under .dunning/outbox/;"
	@echo "      '$(BIN)/dunning plan --all --as-of $(DEMO_AS_OF)' shows why each invoice was or was not reminded;"
	@echo "      '$(BIN)/dunning run --as-of $(DEMO_AS_OF)' again sends nothing new."

test: install $(PRISM)
	$(BIN)/pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy dunning flows tasks segments deployments

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .dunning node_modules .pytest_cache .mypy_cache .ruff_cache
