# Every target installs what it needs: a virtual environment built from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test check lint fmt typecheck unit integration e2e scenarios bench stages clean all

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/notifier demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

e2e: install
	$(BIN)/pytest tests/e2e

# The fault suite at full size (BURST messages per scenario, 2,000 unless given), with a table
# of its figures at the end. Not part of `make test`: CI runs the same scenarios at 300.
BURST ?= 2000
scenarios: install
	mkdir -p var && rm -f var/scenarios.jsonl
	NOTIFIER_SCENARIO_BURST=$(BURST) NOTIFIER_SCENARIO_REPORT=var/scenarios.jsonl \
		$(BIN)/pytest tests/e2e -m scenario -s
	$(BIN)/python -m tests.e2e.scenario_table var/scenarios.jsonl

# The benchmark harness (not tests): one table of figures and targets on local Redis + PostgreSQL.
N ?= 20000
bench: install
	$(BIN)/python -m bench.run --n $(N)

# Each stage of a broadcast alone in one process (fan-out, push, acks): CPU per delivery, in turns.
stages: install
	$(BIN)/python -m bench.stages

# The whole suite, as CI runs it: lint, types, unit, integration, e2e.
test: lint typecheck unit integration e2e

check: test

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var
