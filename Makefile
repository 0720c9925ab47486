# The two commands: `make run` serves the API (embedded PostgreSQL, nothing to install by hand),
# `make test` installs what the tests need and runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS_RUN  := embedded,streaming
EXTRAS_TEST := dev,embedded,streaming

.PHONY: run test lint bench system-deps clean-data

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[$(EXTRAS_RUN)]"
	@touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[$(EXTRAS_TEST)]"
	@touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/acgs serve $(if $(KAFKA),--kafka-local,)

# Debian's PostgreSQL server for the test fixtures (as root); without root the pgserver wheel is used.
system-deps:
	@if [ "$$(id -u)" = 0 ] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends postgresql >/dev/null; \
	fi

test: $(VENV)/.test-installed system-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy domain commands projections infra api
	$(BIN)/lint-imports --no-cache

bench: $(VENV)/.test-installed system-deps
	@for b in tests/load/bench_*.py; do \
		echo "== $$b"; $(BIN)/python -m tests.load.$$(basename $$b .py) || exit 1; done

clean-data:
	rm -rf .acgs
