# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install chromium lint typecheck spec bench bench-profile migrate seed worker clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) chromium

## chromium: Debian's browser for the console's browser tests (Playwright drives /usr/bin/chromium; it never
## downloads a browser of its own). Installed with apt-get when missing and possible; otherwise those tests
## are skipped and say why.
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the console's browser tests"; \
	    (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null) \
	      || echo "could not install chromium: the console's browser tests will be skipped"; \
	  else \
	    echo "no /usr/bin/chromium and no root apt-get: the console's browser tests will be skipped"; \
	  fi; }

## make run: install, migrate the embedded SQLite database, seed demo data, serve on :8000 with the jobs in-process
run: $(STAMP)
	$(BIN)/hue db upgrade
	$(BIN)/hue demo seed
	$(BIN)/hue serve

## make test: the whole suite, on SQLite and (when reachable) on PostgreSQL + Redis
test: $(STAMP) chromium
	$(BIN)/pytest -n auto

lint: $(STAMP)
	$(BIN)/ruff check app tests bench migrations
	$(BIN)/ruff format --check app tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy

spec: $(STAMP)
	$(BIN)/hue spec export

## make bench: transfers (HTTP, their own SQL under pgbench, service path) vs transfer.sql/hot.sql, one-tap vs one_tap.sql, the 1M-row bill import,
## results (sign/verify/statistics), 64 QR payers to one merchant vs to 64 merchants vs hot.sql, the 1M-line reconciliation
bench: $(STAMP)
	$(BIN)/python -m bench
	$(BIN)/python -m bench.one_tap --clients 16,64
	$(BIN)/python -m bench.bill_import
	$(BIN)/python -m bench.results
	$(BIN)/python -m bench.merchant_qr --clients 64
	$(BIN)/python -m bench.reconcile
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
