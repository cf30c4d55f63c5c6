# Two entry points (see README): `make dashboard` and `make test`. Both set up .venv first
# and are no-ops for setup when requirements have not changed since the last install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
PYTEST_ARGS ?=

.PHONY: dashboard test lint bench setup setup-dev clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.app-installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -r requirements-dev.txt
	touch $(VENV)/.app-installed $@

setup: $(VENV)/.app-installed
setup-dev: $(VENV)/.dev-installed

## Set up and serve the dashboard on the built-in dataset (headless: open http://localhost:$(PORT) in a browser).
dashboard: setup
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

## Set up and run the whole test suite (browser tests use /usr/bin/chromium when present).
test: setup-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) -m simclr_core bench --out BENCHMARKS.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
