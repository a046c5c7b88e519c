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

.PHONY: install demo ui test test-prefect-oldest lint bench clean

# Every dependency pinned (constraints/ci.txt): CI and every machine install the same versions.
# `make install CONSTRAINTS=` installs the newest the ranges in pyproject.toml allow instead.
CONSTRAINTS ?= constraints/ci.txt
PIN := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]" $(PIN)
	@# The newest Prefect pyproject.toml allows (pinned by the constraints; an existing venv
	@# would keep an older one); the oldest supported is tested by test-prefect-oldest.
	$(BIN)/pip install --quiet --upgrade "prefect>=3.8,<4" $(PIN)
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
	@if [ -n "$$PREFECT_API_URL" ]; then \
	  echo "See the run in the Prefect UI: $${PREFECT_API_URL%/api}/runs (flow runs, task runs, logs, artifacts)"; \
	else \
	  echo "See it in the Prefect UI: 'make ui' starts a local Prefect server with its UI (kept"; \
	  echo "      running) and runs this demo against it; the run above used a throwaway server."; \
	fi

test: install $(PRISM)
	$(BIN)/pytest -q -p no:cacheprovider

# The Prefect-facing tests (deploy on a real server, parameters, the flow, setup-prefect) on the
# oldest Prefect we support, in a venv of its own pinned by constraints/prefect-3.8.8.txt.
OLDEST := 3.8.8
OLDEST_VENV := .venv-prefect-$(OLDEST)
PREFECT_TESTS ?= tests/test_deploy_server.py tests/test_deploy_parameters.py \
	tests/test_params_form.py tests/test_flow_payment_reminders.py tests/test_flow_conventions.py \
	tests/test_prefect_setup.py
$(OLDEST_VENV)/.installed-stamp: pyproject.toml constraints/prefect-$(OLDEST).txt
	@test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/pip install --quiet -e ".[dev]" -c constraints/prefect-$(OLDEST).txt
	@touch $@

test-prefect-oldest: $(OLDEST_VENV)/.installed-stamp $(PRISM)
	@$(OLDEST_VENV)/bin/python -c "import prefect, sys; v = prefect.__version__; \
		sys.exit(0 if v == '$(OLDEST)' else f'expected prefect $(OLDEST), found {v}')"
	@# SQLite only: the database backends are covered by `make test`; this job is about Prefect.
	DUNNING_TEST_DATABASE_URL= $(OLDEST_VENV)/bin/pytest -q -p no:cacheprovider $(PREFECT_TESTS)

# A persistent local Prefect server with its UI (in the background, under .dunning/prefect-ui;
# its address printed), then the demo run against it so there is a run to look at.
ui: install
	@api=$$($(BIN)/python -m dunning.prefect_ui | sed -n 's/^PREFECT_API_URL=//p'); \
	  test -n "$$api" || exit 1; \
	  PREFECT_API_URL=$$api $(MAKE) --no-print-directory demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy dunning flows deployments
	@# The direction of imports: the contracts in pyproject.toml ([tool.importlinter]).
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .dunning node_modules .pytest_cache .mypy_cache .ruff_cache \
		.import_linter_cache
