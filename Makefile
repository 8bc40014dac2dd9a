# Bulletin: `make run` serves it, `make test` proves it. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format clean

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

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
test: lint
	$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; \
	exit $$status

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
