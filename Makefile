# Each target installs what is missing first (scripts/install.sh is a no-op when the
# environment is up to date), so a fresh machine needs only `make demo` or `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test test-slow demo clean

install:
	VENV=$(VENV) bash scripts/install.sh

test: install
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# The long checks (@pytest.mark.slow): a SIGKILLed run resumed to the same losses and
# weights, distributed runs whose peer dies or hangs, memory under load, ...
test-slow: install
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -s -m slow $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo.py

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
