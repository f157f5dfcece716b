# `make run` and `make test` set everything up themselves: they create .venv
# when it is missing and install the package with what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= dev

.PHONY: run test install clean-venv benchmark

run: $(STAMP)
	$(BIN)/python -m labs.week1 $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

benchmark: $(STAMP)
	$(BIN)/python benchmarks/custom_adam_step_time.py

install: $(STAMP)

# Reinstall whenever the package metadata changes.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)
