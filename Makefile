# `make test` is THE test command: it installs what is missing, then runs the whole suite.
PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
# Records that .venv holds the current requirements; pip runs again only when they change.
VENV_STAMP := $(VENV)/.requirements-installed

.PHONY: test test-fast run check thumbnails lint venv runtime-venv system-deps bench bench-ws bench-load \
	seed screenshots
# Options for `make run` (scripts/local-stack), `make check` and `make thumbnails`:
#   make run ARGS="--port 8081 --workers 4"      make check ARGS=--repair
ARGS ?=
# Written by `make run` (scripts/local-stack): DATABASE_URL and IMAGES_DIR of the native stack.
# check and thumbnails read it when it exists; otherwise the environment and .env apply.
STACK_ENV ?= .data/stack.env

test: system-deps venv node_modules/.installed
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

# The tier that needs neither nginx nor a browser (PostgreSQL only): well under a minute.
test-fast: venv
	$(VENV_PYTHON) -m pytest -m "not stack and not browser and not compose" $(PYTEST_ARGS)

# The native stack, installing what is missing first (system packages, then .venv).
run:
	PYTHON=$(PYTHON) scripts/install-system-deps --runtime
	BASE_PYTHON=$(PYTHON) scripts/local-stack $(ARGS)

check: runtime-venv
	$(VENV_PYTHON) -m server $(if $(wildcard $(STACK_ENV)),--env-file $(STACK_ENV)) check $(ARGS)

thumbnails: runtime-venv
	$(VENV_PYTHON) -m server $(if $(wildcard $(STACK_ENV)),--env-file $(STACK_ENV)) thumbnails $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

venv: $(VENV_STAMP)

# The runtime packages only (requirements.txt): what the app itself needs.
runtime-venv:
	BASE_PYTHON=$(PYTHON) scripts/ensure-venv

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
