PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench browser

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(VENV)/.installed

# Reinstall only when the dependencies change (the package itself is editable), so `make demo`
# starts at once on a second run. setuptools prints an "Editable installation" notice on every
# editable build; it is information, not a deprecation, so it alone is filtered out.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: install
	SIGNALBOX_DATABASE_URL=$${SIGNALBOX_DATABASE_URL:-sqlite:///./signalbox.db} $(BIN)/signalbox demo

lint: install
	$(BIN)/ruff check signalbox tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# The whole suite in UTC, then the time-sensitive tiers again in a zone with an odd offset
# and its own DST dates, so nothing leans on the machine's local time.
# The browser tests drive Debian's Chromium; installed here when missing (root, or sudo).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

test: lint browser
	TZ=UTC $(BIN)/pytest -q -p no:cacheprovider
	TZ=Pacific/Chatham $(BIN)/pytest -q -p no:cacheprovider tests/unit tests/integration/scoring -k "not postgresql"

# The sizes docs/BENCHMARKS.md records (the scoring run alone takes ~11 min and 4.5 GB of temp
# disk at a million profiles; BENCH_PROFILES=20000 for a quick run). BENCH_PG_URL adds the
# PostgreSQL ingestion run, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test.
BENCH_PROFILES ?= 1000000
BENCH_PG_URL ?=

BENCH_KILLS ?= 1000

bench: install
	$(BIN)/python bench/ingest.py
	$(if $(BENCH_PG_URL),$(BIN)/python bench/ingest.py --database-url $(BENCH_PG_URL))
	$(BIN)/python bench/scoring.py --profiles $(BENCH_PROFILES)
	$(BIN)/python bench/churn_quality.py
	$(BIN)/python bench/identity_quality.py
	$(BIN)/python bench/soak.py --kills $(BENCH_KILLS)
	$(BIN)/python bench/journeys.py
	$(BIN)/python bench/stripe_webhooks.py
	$(BIN)/python bench/planted_lift.py
	$(BIN)/python bench/dashboard_today.py
