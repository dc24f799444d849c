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
	$(VENV)/bin/simharps run scenarios/quickstart.yaml --out reports/quickstart

# The test suite, then the CI regression: scenarios/ci_regression.yaml end to end and its metrics against the
# committed baseline (exit 1 on a regression). Chromium + chromedriver (Debian) serve the report's browser test.
test: $(STAMP)
	sh scripts/ensure_chromium.sh
	$(PY) -m pytest
	$(VENV)/bin/simharps run scenarios/ci_regression.yaml --out reports/ci_regression --quiet
	$(VENV)/bin/simharps regress reports/ci_regression/metrics --baseline reports/baselines/ci_regression.json

benchmark: $(STAMP)
	$(PY) benchmarks/bench_forward.py
	$(PY) benchmarks/bench_stellar.py

clean:
	rm -rf $(VENV) reports/quickstart reports/ci_regression build *.egg-info
