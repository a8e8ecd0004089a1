# convbench's entry points. `make run`: verify + benchmark + report on the default suite.
# `make test`: the test suite (what CI runs). Both create or reuse .venv from pyproject.toml.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-from-pyproject

.PHONY: run test test-slow venv clean-venv

run: $(STAMP)
	$(VENV)/bin/convbench run

test: $(STAMP)
	$(VENV)/bin/python -m pytest

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -m slow

venv: $(STAMP)

# Reinstalled whenever pyproject.toml changes; torch==2.13.0 is the CPU wheel kept on this machine.
$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -e . > $(VENV)/pip-install.log 2>&1 \
		|| { tail -n 40 $(VENV)/pip-install.log; exit 1; }
	$(VENV)/bin/python -c "import harness, impls, torch, numba, scipy, pandas"
	touch $@

clean-venv:
	rm -rf $(VENV)
