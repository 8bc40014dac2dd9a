# Bulletin: `make run` serves it, `make test` proves it. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format clean services chaos

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check \
		-c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/bulletin run

lint: install
	$(BIN)/ruff check bulletin tests
	$(BIN)/ruff format --check bulletin tests
	$(BIN)/mypy bulletin

format: install
	$(BIN)/ruff format bulletin tests
	$(BIN)/ruff check --fix bulletin tests

# The suite twice: on SQLite, then on PostgreSQL with the scale-out tests (Redis, Celery).
# scripts/test.sh installs and starts the servers on loopback and stops what it started.
test: lint
	scripts/services.sh run scripts/test.sh

services:
	scripts/services.sh install
	scripts/services.sh up

# A few minutes of killed workers, a restarted broker and cut database connections.
chaos: install
	scripts/services.sh run $(BIN)/python -m tests.chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
