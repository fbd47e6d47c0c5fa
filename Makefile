# The two commands of the README. Both create .venv on first use (Python 3.11, ~3 min, ~6 GB).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-fast test-slow test-browser lint check

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $@

## run: the main job on the embedded default (synthetic data): train → generate → evaluate → report
run: setup
	$(BIN)/bench run --method spade --dataset synthetic
	$(BIN)/bench report --out results/report

## test: everything CI runs: the default suite (< 10 min), the slow suite, the browser test, and the metric-drift check
test: setup test-fast test-slow test-browser check

test-fast: setup
	$(BIN)/pytest

test-slow: setup
	$(BIN)/pytest -m "slow and not gpu" || [ $$? -eq 5 ]

## test-browser: the report opened in headless Chromium (needs the `chromium` package; .ci/run installs it)
test-browser: setup
	$(BIN)/pytest -m browser

check: setup
	$(BIN)/bench check --baseline baselines/spade_synthetic.json --results results/ci

lint: setup
	$(BIN)/ruff check bench methods segmenters reports tests
