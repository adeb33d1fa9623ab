# One-command entry points. Set-up is idempotent: it re-runs only when pyproject.toml changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run demo test test-all lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU wheel first: with torch already satisfied, the package install pulls no CUDA build.
	$(BIN)/python -m pip install -q "torch==$${TORCH_VERSION:-2.13.0}"
	$(BIN)/python -m pip install -q -e ".[dev,leace]"
	touch $(STAMP)

setup: $(STAMP)

SPEC ?= search_spaces/names_translator.yaml
run: $(STAMP)
	$(BIN)/fairsearch run $(SPEC)

demo: $(STAMP)
	$(BIN)/fairsearch demo --out runs/demo

# The tests run on two pytest workers, one per core: each worker (and what it starts) gets one
# BLAS/OpenMP/torch thread. Two threaded workers on two cores spin against each other: the
# suite without Ray took 437 s that way and 233 s with one thread each.
test test-all: export OMP_NUM_THREADS = 1
test test-all: export MKL_NUM_THREADS = 1
test test-all: export OPENBLAS_NUM_THREADS = 1

# `make test`: the fast, Ray-free tests (tests/conftest.py fails an unmarked test that starts Ray).
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not ray" -q -n 2

# `make test-all` (CI): the tests without Ray on two workers, then the Ray tests on two workers
# (each test starts and stops its own loopback Ray; most of their time is spent waiting on Ray's
# processes, so two tests at once halve the wait).
test-all: $(STAMP)
	$(BIN)/python -m pytest -m "not ray" -q -n 2 --durations=25
	$(BIN)/python -m pytest -m ray -q -n 2 --dist loadgroup --durations=40

lint: $(STAMP)
	$(BIN)/ruff check fairsearch tests benchmarks examples
