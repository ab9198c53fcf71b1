# Every target installs what it needs; running one twice is safe.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE   := node_modules/.installed
# checkov needs packaging<24, pytest packaging>=24: it lives in a venv of its own (tests/infra runs it).
CHECKOV := $(VENV)/checkov/.installed
# The browser test drives Debian's chromium headless over the DevTools pipe; nothing downloads a browser.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: setup demo test check lint bench reliability explore emulator clean

setup: $(STAMP) $(NODE) $(CHECKOV) $(CHROMIUM)

$(CHROMIUM):
	command -v chromium >/dev/null || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

$(CHECKOV): infra/requirements-checkov.txt
	test -x $(VENV)/checkov/bin/python || python3 -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install -q --disable-pip-version-check -r infra/requirements-checkov.txt
	touch $@

$(NODE): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(VENV)/bin/retrain demo

lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Tests run shuffled (pytest-randomly) with a fixed seed, so CI is repeatable; `make test SEED=<n>` tries another order.
SEED ?= 20261204

# Everyday work, under a minute: lint, types, and the unit and replay tests (no servers).
check: lint
	$(VENV)/bin/pytest -n 2 --randomly-seed=$(SEED) tests/unit tests/replay

# Three workers on this 2-core machine: the tests use about a quarter of a core each (they wait on servers, timers
# and outages), so a third worker fills the waits. One file runs on one worker (its stack is shared).
test: lint
	$(VENV)/bin/pytest -n 3 --dist loadfile --randomly-seed=$(SEED) --durations=15

# The fault and adversarial suite; its summary line is printed last.
reliability: setup
	@$(VENV)/bin/pytest tests/e2e/reliability tests/unit/test_hostile_parsers.py -q -p no:logging --randomly-seed=$(SEED); status=$$?; cat .reliability/summary.txt; exit $$status

# Every orchestration under every single fault (about 30 minutes); `make test` runs a seeded sample.
explore: setup
	$(PY) -m tests.explore

# Benchmarks side by side with baselines (about 10 minutes); not part of `make test`.
bench: setup
	$(PY) bench/run.py

emulator: setup
	$(VENV)/bin/retrain emulator

clean:
	rm -rf .emulator .devhost .reliability .pytest_cache .mypy_cache .ruff_cache
