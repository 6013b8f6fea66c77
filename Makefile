# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint check fix bench bench-alarms clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## install, then start the server on http://127.0.0.1:8766 (data in ./watchkeep-data)
	$(BIN)/watchkeep serve

test: $(STAMP)  ## install, then run the whole test suite
	$(BIN)/pytest -n auto

lint: $(STAMP)  ## format, lint and type checks
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

check: lint test  ## what CI runs

fix: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)  ## ingest benchmark: events/s and the ratios to a parse-only endpoint and moto
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.ingest

bench-alarms: $(STAMP)  ## alarm benchmark: CPU of a round of 10,000 alarms as a fraction of 60 s
	$(BIN)/python -m benchmarks.alarms

clean:
	rm -rf $(VENV) watchkeep-data .pytest_cache .mypy_cache .ruff_cache
