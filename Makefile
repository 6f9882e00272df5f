# `make test` and `make bench` set up what they need by themselves.
# On a machine whose python3 already imports our dependencies (the GPU machine: torch,
# triton, cupy preinstalled, no network) that python3 is used as is; anywhere else a
# venv is built once in .venv with the pinned versions of requirements.txt.
# scipy and pyamg are not required of the machine's python3: tests that need them skip.
SHELL := /bin/bash
SYSTEM_PYTHON ?= python3
VENV := .venv
DEPS := import numpy, pandas, torch, triton, pytest, matplotlib
PY := $(shell $(SYSTEM_PYTHON) -c "$(DEPS)" >/dev/null 2>&1 && echo $(SYSTEM_PYTHON) || echo $(VENV)/bin/python)

# Beside it, where we build venvs (not on the GPU machine: no network), .venv-triton36 holds
# triton 3.6, the GPU machine's version, so the compiled-code facts tests check both Tritons.
VENV36 := .venv-triton36

.PHONY: setup test bench bench-pytest calibrate report gpu-check list clean
setup: $(if $(filter $(VENV)/bin/python,$(PY)),$(VENV)/.installed $(VENV36)/.installed)
	@echo "using $(PY)"

$(VENV)/.installed: requirements.txt pyproject.toml
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt
	$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV36)/.installed: requirements-triton36.txt
	$(SYSTEM_PYTHON) -m venv $(VENV36)
	$(VENV36)/bin/pip install --quiet -r requirements-triton36.txt
	touch $@

# Without a GPU the Triton kernels run under TRITON_INTERPRET=1 (tests/conftest.py sets it).
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# PROFILE=quick|full|cpu|smoke overrides the default (quick with a GPU, cpu without).
bench: setup
	$(PY) -m structbench run $(if $(PROFILE),--profile $(PROFILE)) $(BENCH_ARGS)

# The same cases as pytest-benchmark tests (its --benchmark-compare, histograms, JSON).
bench-pytest: setup
	$(PY) -m pytest structbench/pytest_benchmarks -p no:cacheprovider $(PYTEST_ARGS)

# Measured ceilings (copy bandwidth, matmul peaks), cached in results/calibration/.
calibrate: setup
	$(PY) -m structbench calibrate

# The claims report (markdown, HTML, figures) of the newest CSV in results/ (or CSV=...).
report: setup
	$(PY) -m structbench report $(CSV)

# On a GPU machine: versions, GPU correctness pass, claims sweep and report within 8 minutes,
# each phase's evidence in OUT as it ends (README "On a GPU machine"; make is not needed:
# `bash scripts/gpu_check.sh "$OUT"` is the same).
gpu-check:
	PYTHON=$(PY) bash scripts/gpu_check.sh $(or $(OUT),results/gpu-check)

list: setup
	$(PY) -m structbench list

clean:
	rm -rf $(VENV) $(VENV36) .pytest_cache
