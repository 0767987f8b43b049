# Each target installs what is missing first (scripts/install.sh is a no-op when the
# environment is up to date), so a fresh machine needs only `make demo` or `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test test-slow demo gpu-bundle gpu-check clean

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

# The GPU check (docs/gpu.md): the wheels and mmcv source a GPU machine without network
# installs from (build/gpu_bundle, under 64 MiB with the tracked files), and the check.
gpu-bundle: install
	PY=$(PY) bash scripts/gpu_bundle.sh

gpu-check:
	bash tools/gpu_check.sh

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
