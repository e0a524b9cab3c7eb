# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install run test lint check fuzz

$(BIN)/.installed: pyproject.toml setup.py weightless/udp/_udpbatch.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,client]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/twistd -n weightless $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

# the fast loop: lint, then the unit tests (tests/unit, in memory)
check: lint
	$(BIN)/pytest -q tests/unit

# every fuzz harness (tests/fuzz/fuzz_*.py), FUZZ_SECONDS each (the test command gives them 3)
FUZZ_SECONDS ?= 300
fuzz: install
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/pytest -q tests/fuzz/test_fuzz.py
