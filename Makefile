# simharps: two entry points for a fresh machine (see README).
#   make quickstart   set up .venv and run the main job on the embedded default
#   make test         set up .venv and run the test suite
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.simharps-installed

.PHONY: quickstart test setup benchmark clean

setup: $(STAMP)

# The CPU build of torch goes in first, so that the package's permissive
# torch>=2.2 requirement is already met and pip never fetches a CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[test]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/simharps simulate scenarios/quickstart.yaml --out reports/quickstart/dataset --plot
	$(VENV)/bin/simharps spectrum --out reports/quickstart

test: $(STAMP)
	$(PY) -m pytest

benchmark: $(STAMP)
	$(PY) benchmarks/bench_forward.py
	$(PY) benchmarks/bench_stellar.py

clean:
	rm -rf $(VENV) reports/quickstart build *.egg-info
