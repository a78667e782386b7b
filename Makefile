PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"

demo: install
	SIGNALBOX_DATABASE_URL=$${SIGNALBOX_DATABASE_URL:-sqlite:///./signalbox.db} $(BIN)/signalbox demo

lint: install
	$(BIN)/ruff check signalbox tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q -p no:cacheprovider

bench: install
	$(BIN)/python bench/ingest.py
