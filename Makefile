# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint typecheck spec bench bench-profile migrate seed worker clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## make run: install, migrate the embedded SQLite database, seed demo data, serve on :8000 with the jobs in-process
run: $(STAMP)
	$(BIN)/hue db upgrade
	$(BIN)/hue demo seed
	$(BIN)/hue serve

## make test: the whole suite, on SQLite and (when reachable) on PostgreSQL + Redis
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check app tests bench migrations
	$(BIN)/ruff format --check app tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy

spec: $(STAMP)
	$(BIN)/hue spec export

## make bench: transfers (HTTP and service path) vs transfer.sql/hot.sql, one-tap vs one_tap.sql, the 1M-row bill import
bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.one_tap --clients 16,64
	$(BIN)/python -m bench.bill_import
	$(BIN)/python -m bench.profile --requests 200

## make bench-profile: CPU ms, statements and transactions of one transfer / one-tap, in-process, PostgreSQL and SQLite (bench/profile.py --cprofile for a profile)
bench-profile: $(STAMP)
	$(BIN)/python -m bench.profile --requests 200
	$(BIN)/python -m bench.profile --requests 200 --sqlite

migrate: $(STAMP)
	$(BIN)/hue db upgrade

seed: $(STAMP)
	$(BIN)/hue demo seed

worker: $(STAMP)
	$(BIN)/hue worker

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
