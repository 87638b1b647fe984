# weatherpipe — `make run` and `make test` are all a fresh machine needs (plus Python 3.11+,
# Java 17+ and Maven). Everything else is installed into .venv from uv.lock.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv from the PATH, else bootstrapped with pip into the user's bin folder.
USER_BIN := $(shell python3 -m site --user-base)/bin
UV ?= $(or $(shell command -v uv 2>/dev/null),$(USER_BIN)/uv)
RUN := $(UV) run --frozen --all-extras

.PHONY: help install chromium run test test-cluster test-compose bench unit lint format typecheck up down status clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(USER_BIN)/uv:
	python3 -m pip install --user --quiet uv || \
		python3 -m pip install --user --quiet --break-system-packages uv

# Bytecode is compiled once here, so every command starts from it, also where
# PYTHONDONTWRITEBYTECODE keeps Python from caching it on first use.
.venv/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --compile-bytecode
	@touch $@

install: .venv/.installed ## Install weatherpipe and its tools into .venv (uv, from uv.lock)

# The browser tests drive Debian's chromium through playwright (playwright's own browser
# download is not used).
chromium: ## Install Debian's chromium for the browser tests and bench (needs root or sudo)
	@command -v chromium >/dev/null || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# ROWS=20000 makes a small data set when CSV_PATH does not exist (default 1,000,000).
run: install ## Run the lab flow (platform, data set, produce, consume, batch), serve the dashboard
	$(RUN) weatherpipe run $(if $(ROWS),--rows $(ROWS))

test: install chromium ## Run the test suite (starts its own Kafka and PostgreSQL)
	$(RUN) pytest -m "not cluster and not compose"

# The cluster profile's tests start 3 controllers, 3 brokers and a PostgreSQL with TLS of their
# own (~5 min on 2 cores), so they have a target of their own; CI runs both.
test-cluster: install ## Run the tests of the cluster profile (TLS, logins, ACLs, killed nodes)
	$(RUN) pytest -m cluster

unit: install ## Run only the tests that need no services
	$(RUN) pytest -m "not integration and not reliability and not browser and not compose and not cluster"

# Debian's podman runs docker-compose.yml with stand-ins for the public images, built locally
# from a debootstrapped Debian (no registry needed); podman's settings go to .weatherpipe/compose.
COMPOSE_PACKAGES := podman runc debootstrap golang-github-containernetworking-plugin-dnsname
test-compose: install ## Run docker-compose.yml end to end under podman (needs root; installs podman)
	@dpkg -s $(COMPOSE_PACKAGES) >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(COMPOSE_PACKAGES) >/dev/null; }
	$(RUN) pytest -m compose tests/compose

lint: install ## ruff check, ruff format --check, mypy, import contracts (no cycle; see pyproject)
	$(RUN) ruff check src tests bench
	$(RUN) ruff format --check src tests bench
	$(RUN) mypy
	$(RUN) lint-imports --no-cache

format: install ## Format the code with ruff
	$(RUN) ruff format src tests bench
	$(RUN) ruff check --fix src tests bench

bench: install chromium ## Benchmark every stage, the 1M-row lab run and the dashboard; writes bench/results.md
	$(RUN) python bench/run_all.py

up: install ## Start the local Kafka and PostgreSQL
	$(RUN) weatherpipe platform up

down: install ## Stop them (data stays in .weatherpipe/)
	$(RUN) weatherpipe platform down

status: install ## Show whether they answer
	$(RUN) weatherpipe platform status
