# Each target installs what is missing first (scripts/install.sh is a no-op when the
# environment is up to date), so a fresh machine needs only `make demo` or `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test test-slow test-arm demo gpu-bundle gpu-check clean

install:
	VENV=$(VENV) bash scripts/install.sh

test: install
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -m "not slow and not arm" $(PYTEST_ARGS)

# The long checks (@pytest.mark.slow): a SIGKILLed run resumed to the same losses and
# weights, distributed runs whose peer dies or hangs, memory under load, ...
test-slow: install
	OMP_NUM_THREADS=2 $(PY) -m pytest -q -s -m "slow and not arm" $(PYTEST_ARGS)

# The board script on aarch64 (@pytest.mark.arm): scripts/arm_env.sh installs qemu-user,
# Debian's arm64 Python and the board's wheels into the cache of scripts/install.sh
# (SN2_DET_CACHE, else ~/.cache/sn2_det) and prints that interpreter; the tests export
# on x86 and run tools/arm_benchmark.py there.
test-arm: install
	ARM_PYTHON=$$(PYTHON=$(PY) bash scripts/arm_env.sh) && \
	SN2_DET_ARM_PYTHON=$$ARM_PYTHON OMP_NUM_THREADS=2 $(PY) -m pytest -q -s -m arm $(PYTEST_ARGS)

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
