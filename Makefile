# Shortcuts for developers; CI runs .ci/run.
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup test lint format bench demo reference

setup:
	python3 -m venv $(VENV) && $(BIN)/pip install -c requirements.lock -e '.[dev]'

test:
	$(BIN)/pytest

lint:
	$(BIN)/lint-imports && $(BIN)/ruff check src tests benchmarks && $(BIN)/ruff format --check src tests benchmarks && $(BIN)/mypy

format:
	$(BIN)/ruff format src tests benchmarks && $(BIN)/ruff check --fix src tests benchmarks

bench:
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

demo:
	$(BIN)/steward --workspace steward-demo demo

reference:
	$(BIN)/python -m steward.cli.reference docs
