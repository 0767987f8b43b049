# Each target installs what is missing first (scripts/install.sh is a no-op when the
# environment is up to date), so a fresh machine needs only `make demo` or `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test test-slow demo clean

install:
	VENV=$(VENV) bash scripts/install.sh

# The ncnn / int8 tests run in a pytest process of their own: after the rest of the
# suite, one process holding both died with SIGSEGV (no tool process does; docs/development.md).
RUNTIME_TESTS := tests/test_ncnn_export.py tests/test_ncnn_detector.py tests/test_int8.py

test: install
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -m "not slow" $(RUNTIME_TESTS:%=--ignore=%) $(PYTEST_ARGS)
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -m "not slow" $(RUNTIME_TESTS) $(PYTEST_ARGS)

# The long checks (@pytest.mark.slow): a SIGKILLed run resumed to the same losses and
# weights, distributed runs whose peer dies or hangs, memory under load, ...
test-slow: install
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -s -m slow $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo.py

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
