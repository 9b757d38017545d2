# interlive: `make serve` runs the server, `make test` runs every check.
VENV := .venv
BIN := $(VENV)/bin
SERVE_ARGS ?=

.PHONY: serve test setup setup-test lint typecheck unit bench clean

serve: setup
	$(BIN)/interlive serve $(SERVE_ARGS)

test: setup-test lint typecheck
	$(BIN)/python -m pytest -q

setup:
	@scripts/setup.sh serve

setup-test:
	@scripts/setup.sh test

lint:
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck:
	$(BIN)/mypy

unit: setup
	$(BIN)/python -m pytest -q tests/unit

bench: setup
	$(BIN)/interlive bench fanout --subscribers 500 --output docs/benchmarks.md

clean:
	rm -rf $(VENV) .stamps .pytest_cache .mypy_cache .ruff_cache
