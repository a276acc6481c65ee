# Two commands do all the set-up on a fresh machine:
#   make check   run coherence on the shipped spec library
#   make test    run the whole test suite (lint, types, tests)
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: check test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

check: $(STAMP)
	$(BIN)/coherence check specs --expect specs/manifest.toml

lint: $(STAMP)
	$(BIN)/ruff check coherence tests benchmarks examples
	$(BIN)/ruff format --check coherence tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy coherence benchmarks

unit: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
