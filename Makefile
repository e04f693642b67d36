# IQMS developer commands. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Tests run in parallel processes (each starts its own PostgreSQL when it needs one); many
# wait on terminals, servers and timers, so a few more workers than cores keep both busy.
TEST_WORKERS ?= 3

.PHONY: help venv install demo test lint typecheck bench package clean

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

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
	$(BIN)/ruff check iqms tests benchmarks
	$(BIN)/ruff format --check iqms tests benchmarks
	$(BIN)/mypy
	PYTHONPATH=. $(BIN)/lint-imports

test: $(STAMP) lint  ## Lint, then every test (SQLite and a throwaway PostgreSQL)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

bench: $(STAMP)  ## Benchmarks; JSON lines on stdout
	$(BIN)/python -m benchmarks

package: $(STAMP)  ## One-file executable with PyInstaller (dist/iqms)
	$(BIN)/python -m pip install --quiet -e '.[packaging]'
	$(BIN)/pyinstaller --noconfirm packaging/iqms.spec

clean:  ## Remove build output and caches (keeps .venv)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
