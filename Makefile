# Bulletin: `make run` serves it, `make test` proves it. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format clean services chaos bench fuzz

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check \
		-c requirements/constraints.txt -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/bulletin run

lint: install
	$(BIN)/ruff check bulletin tests bench
	$(BIN)/ruff format --check bulletin tests bench
	$(BIN)/mypy bulletin bench

format: install
	$(BIN)/ruff format bulletin tests bench
	$(BIN)/ruff check --fix bulletin tests bench

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

# The REST API under Schemathesis alone (tests/test_fuzz.py, also part of `make test`).
fuzz: install
	$(BIN)/python -m pytest tests/test_fuzz.py

# The benchmark suite (bench/README.md): prints the table, writes bench/results.json, and
# fails if an answer is wrong or a target is missed. `make bench BENCH=fanout-sqlite` runs one.
bench: install
	scripts/services.sh run $(BIN)/python -m bench $(BENCH)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
