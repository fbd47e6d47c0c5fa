# The two commands of the README. Both create .venv on first use (Python 3.11, ~3 min, ~6 GB).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-fast test-slow lint check

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $@

## run: the main job on the embedded default (synthetic data): train → generate → evaluate → report
run: setup
	$(BIN)/bench run --method spade --dataset synthetic
	$(BIN)/bench report --out results/report

## test: everything CI runs: the default suite (< 10 min), the slow suite, and the metric-drift check
test: setup test-fast test-slow check

test-fast: setup
	$(BIN)/pytest

test-slow: setup
	$(BIN)/pytest -m "slow and not gpu" || [ $$? -eq 5 ]

check: setup
	$(BIN)/bench check --baseline baselines/spade_synthetic.json --results results/ci

lint: setup
	$(BIN)/ruff check bench methods segmenters reports tests
