# The project's commands. Each works on a fresh machine with only Python 3 and make:
# the virtual environment lives in .venv/ at the repository root and is created on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
OUT ?= report

.PHONY: demo test lint typecheck docs pytest lab bench chromium node clean help

help:
	@echo "make demo   run the main job (lifecycle + latency experiment) on the embedded simulator (realistic timing)"
	@echo "make test   lint, type-check and run the whole test suite (installs what it needs)"
	@echo "make lab    open the notebooks in JupyterLab"
	@echo "make bench  run the benchmarks (writes bench.json)"
	@echo "make docs   build the API reference from the docstrings into site/ (open site/index.html)"

$(PY):
	@$(PYTHON) -m venv $(VENV) || { echo "error: '$(PYTHON) -m venv' failed; install Python's venv module (Debian: apt-get install python3-venv)"; exit 1; }
	$(PIP) install -q --upgrade pip

# Stamps: reinstall when pyproject.toml changes.
$(VENV)/.stamp-lab: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[lab]'
	@touch $@

$(VENV)/.stamp-dev: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[dev,lab]'
	@touch $@

# Debian's chromium for the browser tests (Playwright cannot download its own browser here).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "error: the browser tests need chromium (Debian: apt-get install chromium)"; exit 1; \
	  fi; \
	fi

# Debian's Node.js and npm, for the provider SDKs the stage's browser tests bundle (tests/package.json).
node:
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's nodejs and npm for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else \
	    echo "error: the browser tests need Node.js and npm (Debian: apt-get install nodejs npm)"; exit 1; \
	  fi; \
	fi

# The pinned SDKs (agora-rtc-sdk-ng, livekit-client, trtc-sdk-v5) and esbuild; reinstalled when the lock changes.
tests/node_modules/.stamp: tests/package-lock.json tests/package.json | node
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The simulator's realistic profile (akool-lab's default); PROFILE=fast for a few-second run.
PROFILE ?= realistic
demo: $(VENV)/.stamp-lab
	$(VENV)/bin/akool-lab demo --profile $(PROFILE) --out $(OUT)

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check akool_lab tests benchmarks
	$(VENV)/bin/ruff format --check akool_lab tests benchmarks

typecheck: $(VENV)/.stamp-dev
	$(VENV)/bin/mypy

pytest: $(VENV)/.stamp-dev chromium tests/node_modules/.stamp
	$(VENV)/bin/pytest

# The API reference (pdoc): every warning is an error, so a public name that does not resolve fails the build.
docs: $(VENV)/.stamp-dev
	$(PY) docs/build_api.py site

test: lint typecheck docs pytest

lab: $(VENV)/.stamp-lab
	$(VENV)/bin/jupyter lab --ip 127.0.0.1 notebooks

bench: $(VENV)/.stamp-dev
	$(VENV)/bin/akool-lab bench --out bench.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist site tests/node_modules
