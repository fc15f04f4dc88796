# Quick start: `make demo` (set up, embed sample_data/) and `make test` (set up with test extras, run every test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The first run compiles the numba kernels and caches them on disk; the second shows a warm run's speed.
demo: $(VENV)/.installed
	mkdir -p out
	$(BIN)/embedtool embed sample_data/weights.npy sample_data/ids.npy -o out/demo.arrow --padding-idx 0
	$(BIN)/embedtool embed sample_data/weights.npy sample_data/ids.txt -o out/demo_ragged.parquet --padding-idx 0
	$(BIN)/embedtool bag sample_data/glove.txt sample_data/tokens.txt -o out/sentences.arrow --mode mean --oov skip
	$(BIN)/embedtool embed sample_data/weights.npy sample_data/ids.npy -o out/demo.arrow --padding-idx 0

# The GPU tests run in their own process under numba's CUDA simulator (set before numba is imported).
test: $(VENV)/.installed-test
	$(BIN)/pytest --ignore=tests/test_gpu.py
	NUMBA_ENABLE_CUDASIM=1 $(BIN)/pytest tests/test_gpu.py

bench: $(VENV)/.installed-test
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench_gather.py --quick

# Also numba's cache of compiled kernels: it is keyed by the file defining each kernel, so an edit of codegen.py alone
# would otherwise leave the old kernels in use.
clean:
	rm -rf $(VENV) out embedtool/__pycache__
	find . -path ./.git -prune -o \( -name '*.nbi' -o -name '*.nbc' \) -type f -exec rm -f {} +
