# loyalty-pipeline: `make run` builds everything on the embedded data, `make test` tests it.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
# DVC runs stage commands through the shell: `loyalty` must be on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help

help:  ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## Create .venv from the lock file (requirements.lock)

run: install  ## Install, then run the whole pipeline on the embedded synthetic data (dvc repro)
	$(BIN)/dvc repro
	@echo "Report: reports/site/index.html"

test: install  ## Install, then run the test suite (same command as CI)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

reliability: install  ## Rerun the RELIABILITY.md case tests and regenerate docs/reliability.md
	$(BIN)/python benchmarks/reliability.py

lint: install  ## ruff check and ruff format --check (pipeline, tests, benchmarks), mypy (pipeline)
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/ruff format --check pipeline tests benchmarks
	$(BIN)/mypy

lock:  ## Re-resolve requirements.lock from pyproject.toml (needs network to PyPI)
	$(BIN)/uv pip compile pyproject.toml --all-extras --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu --generate-hashes -o requirements.lock

clean-outputs:  ## Remove pipeline outputs (data/, models/, reports/), keeping the folders
	find data models reports -type f ! -name .gitkeep -delete

.PHONY: help install run test reliability lint lock clean-outputs
