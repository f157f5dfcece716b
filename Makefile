# `make notebook`, `make run` and `make test` set everything up themselves: they create .venv
# when it is missing and install the package with what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= tensorflow,dev,notebook
NOTEBOOK_STAMP := $(VENV)/.notebook-kernel

.PHONY: run test lint notebook notebook-setup install clean-venv benchmark jail-tools

run: $(STAMP)
	$(BIN)/python -m labs.week1 $(ARGS)

# Two pytest workers (pytest-xdist): most tests wait on a subprocess or a kernel, so two share 2 cores well.
PYTEST_JOBS ?= 2
test: $(STAMP) jail-tools $(NOTEBOOK_STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_JOBS) $(PYTEST_ARGS)

# ruff, configured in pyproject.toml: the package, the labs, the tests, the benchmarks and the notebooks' cells.
lint: $(STAMP)
	$(BIN)/python -m ruff check .

# JupyterLab at the repository root with notebooks/ open, on the course's kernel.
# ARGS go to JupyterLab, e.g. ARGS="--no-browser --port 8899".
notebook: $(NOTEBOOK_STAMP)
	$(BIN)/python -m dlcourse.jupyter $(ARGS)

# The set-up part of `make notebook` alone: the kernel "dlcourse (Keras 3)" registered in .venv.
notebook-setup: $(NOTEBOOK_STAMP)

$(NOTEBOOK_STAMP): $(STAMP)
	$(BIN)/python -m dlcourse.jupyter --setup-only
	touch $@

# The grader's strongest jail is bubblewrap; as root on Debian/Ubuntu it is installed here.
# Elsewhere the tests of that jail are skipped with the reason (python -m dlcourse.grading jail).
jail-tools:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q bubblewrap >/dev/null 2>&1 \
	    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1; } \
	    || echo "note: could not install bubblewrap; the namespace-jail tests will be skipped"; \
	  else echo "note: bubblewrap (bwrap) is not installed; the namespace-jail tests will be skipped"; fi; }

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
