# Each target installs what is missing first (scripts/install.sh is a no-op when the
# environment is up to date), so a fresh machine needs only `make demo` or `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install test test-slow test-arm demo clean

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

clean:
	rm -rf $(VENV) work_dirs .pytest_cache
