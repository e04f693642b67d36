# IQMS developer commands. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Tests run in parallel processes (each starts its own PostgreSQL when it needs one); many
# wait on terminals, servers and timers, so a few more workers than cores keep both busy.
TEST_WORKERS ?= 3

.PHONY: help venv install demo test lint typecheck bench package package-onefile smoke dist clean

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)  ## Create .venv and install IQMS with its dev tools

install: venv

demo: $(STAMP)  ## Create and open the demo clinic (embedded SQLite, nothing else needed)
	$(BIN)/iqms demo

lint: $(STAMP)  ## ruff, mypy on the core, import contracts
	$(BIN)/ruff check iqms tests benchmarks packaging
	$(BIN)/ruff format --check iqms tests benchmarks packaging
	$(BIN)/mypy
	PYTHONPATH=. $(BIN)/lint-imports

test: $(STAMP) lint  ## Lint, then every test (SQLite and a throwaway PostgreSQL)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: $(STAMP)  ## Benchmarks; JSON lines on stdout
	$(BIN)/python -m benchmarks

PACKAGING_STAMP := $(VENV)/.packaging-installed
VERSION = $(shell $(BIN)/python -c 'import iqms; print(iqms.__version__)')
ARCH := $(shell uname -m)
PLATFORM := $(shell uname -s | tr A-Z a-z)

$(PACKAGING_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,packaging]'
	@touch $(PACKAGING_STAMP)

package: $(PACKAGING_STAMP)  ## One-dir executable with PyInstaller (dist/iqms/iqms)
	$(BIN)/pyinstaller --noconfirm --log-level WARN packaging/iqms.spec

package-onefile: $(PACKAGING_STAMP)  ## Single-file executable (dist/iqms-onefile; slower to start)
	$(BIN)/pyinstaller --noconfirm --log-level WARN packaging/iqms.spec -- --onefile

smoke:  ## Run the built dist/iqms outside the project and check it works (after package)
	$(PYTHON) packaging/smoke.py dist/iqms $(if $(wildcard dist/iqms-onefile),--onefile dist/iqms-onefile)

dist: package  ## Installable archive dist/iqms-VERSION-PLATFORM-ARCH.tar.gz (one-dir + INSTALL + units)
	$(PYTHON) packaging/archive.py dist/iqms --version $(VERSION) --out dist/iqms-$(VERSION)-$(PLATFORM)-$(ARCH).tar.gz

clean:  ## Remove build output and caches (keeps .venv)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
