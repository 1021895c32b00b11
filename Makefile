# `make test` is THE test command: it installs what is missing, then runs the whole suite.
PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
# Records that .venv holds the current requirements; pip runs again only when they change.
VENV_STAMP := $(VENV)/.requirements-installed

.PHONY: test run lint venv system-deps bench bench-ws bench-load seed screenshots

test: system-deps venv node_modules/.installed
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

run: system-deps venv
	scripts/local-stack

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

venv: $(VENV_STAMP)

system-deps:
	PYTHON=$(PYTHON) scripts/install-system-deps

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

# axe-core (accessibility checks injected into pages by the browser tests), from npm.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(VENV_STAMP): requirements.txt requirements-dev.txt | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Benchmarks: scripts in bench/, results (with the machine) in docs/BENCHMARKS.md.
# `make bench` runs them all (about ten minutes); each also runs alone (python -m bench.NAME).
bench: system-deps venv
	$(VENV_PYTHON) -m bench.suite

bench-ws: system-deps venv
	$(VENV_PYTHON) -m bench.ws_fanout

# N rows straight into DATABASE_URL's gallery (rows only, no files): `make seed N=1000000`.
N ?= 1000000
seed: venv
	$(VENV_PYTHON) -m bench.seed $(N)

# README screenshots, regenerated from a live local stack.
screenshots: system-deps venv
	$(VENV_PYTHON) -m scripts.screenshots

bench-load: system-deps venv
	$(VENV_PYTHON) -m bench.load
