# `make run` and `make test` each build .venv from nothing on first use.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test browser screenshots bench lint translations clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Pressroom needs Python 3.11 or newer (python3.11+ not found)." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@ $(VENV)/.installed-run

# `make run PORT=8100` (and HOST=0.0.0.0) when 127.0.0.1:8000 will not do.
run: $(VENV)/.installed-run
	$(BIN)/pressroom run$(if $(HOST), --host $(HOST))$(if $(PORT), --port $(PORT))

# The suite in PYTEST_WORKERS processes (pytest-xdist), each test file in one of them: its
# module fixtures (a deployment, a browser) are built once. PYTEST_WORKERS=0 runs it in one.
PYTEST_WORKERS ?= 2
test: $(VENV)/.installed-test browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	CHROMIUM=$(CHROMIUM) $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

# Browser tests run in Debian's Chromium (never a browser from `playwright install`). When it
# is missing, root installs it with apt; anyone else gets the browser tests skipped, and told how.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$(CHROMIUM)" = /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium for the browser tests: apt-get install chromium"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| { echo "Could not install Chromium with apt-get (see above); the browser tests need it." >&2; exit 1; }; \
	else \
		echo "browser tests skipped: $(CHROMIUM) not found; install it with \`sudo apt-get install chromium\` and run make test again"; \
	fi

# The PNGs under docs/screenshots/ that the README shows, taken by the browser tests (SQLite).
screenshots: $(VENV)/.installed-test browser
	SCREENSHOTS=docs/screenshots TEST_DATABASE_URL= CHROMIUM=$(CHROMIUM) $(BIN)/pytest tests/browser -q

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	@touch $@ $(VENV)/.installed-run

# Fan-out speed against bare SMTP connections (bench/fanout.py); never part of `make test`.
# N=100000 for the large run; BENCH_DATABASE=postgresql://... for PostgreSQL; LATENCY=20 for a
# sink that waits 20 ms before each reply to MAIL, RCPT and DATA; RAW=64 for 64 bare connections
# (default 4); RUNS=3 for three interleaved raw and service rounds and their medians.
N ?= 20000
RUNS ?= 1
LATENCY ?= 0
RAW ?= 4
bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench.fanout --subscribers $(N) --runs $(RUNS) --relay-latency-ms $(LATENCY) --raw-connections $(RAW) $(if $(BENCH_DATABASE),--database $(BENCH_DATABASE))

lint: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Extract new strings, merge them into the catalogs, and compile the .mo files the app loads.
translations: $(VENV)/.installed-run
	$(BIN)/pybabel extract -F babel.cfg -k _l -k N_ -o service/translations/messages.pot .
	$(BIN)/pybabel update -i service/translations/messages.pot -d service/translations --no-fuzzy-matching
	$(BIN)/pybabel compile -d service/translations

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
