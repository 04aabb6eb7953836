# The README's two commands: `make run` and `make test`. Both create the
# virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first and pinned: 2.13.0 is the CPU build this project is
# tested with. Elsewhere, point pip at a CPU wheel index, e.g.
#   make run TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0

.PHONY: run test perf perf-feynman perf-pytest readme-figure clean

run: $(VENV)/.installed
	$(BIN)/bench run --targets all

test: $(VENV)/.installed
	$(BIN)/python -m pytest

perf: $(VENV)/.installed
	$(BIN)/python benchmarks/perf.py

perf-feynman: $(VENV)/.installed
	$(BIN)/python benchmarks/perf.py --only-feynman

perf-pytest: $(VENV)/.installed
	$(BIN)/python -m pytest benchmarks -o addopts= --benchmark-only

# The README's figure, redrawn from a fresh default run.
readme-figure: $(VENV)/.installed
	$(BIN)/bench run --targets all --run-id readme-figure --force --quiet
	cp reports/readme-figure/figures/heatmap-extrapolation.svg docs/heatmap-extrapolation.svg

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info
