# Each target installs what is missing first (scripts/install.sh is a no-op when the
# environment is up to date), so a fresh machine needs only `make demo` or `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test demo clean

install:
	VENV=$(VENV) bash scripts/install.sh

test: install
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

demo: install
	$(PY) tools/demo.py

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
