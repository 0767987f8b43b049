#!/usr/bin/env bash
# Creates the project virtual environment (.venv) with the pinned stack.
# mmcv 2.1.0 has no wheel for torch 2.13: it is compiled once (10 to 16 minutes on 2 cores)
# and cached outside the work tree, keyed by mmcv, torch, CUDA and Python versions, so a
# second install on the same machine only copies the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
MMCV_VERSION=2.1.0
TORCH_PIN=torch==2.13.0
# A torch already on the base interpreter is used when it lies in this range (GPU machines).
TORCH_RANGE_MIN=2.1
TORCH_RANGE_MAX=2.14
CACHE=${SN2_DET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sn2_det}

stamp="$VENV/.sn2_det-installed"
key=$(cat requirements/*.txt setup.cfg pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
  echo "sn2_det: environment $VENV is up to date"
  exit 0
fi

base_torch_ok=$("$PYTHON" - "$TORCH_RANGE_MIN" "$TORCH_RANGE_MAX" <<'PY' 2>/dev/null || echo no
import sys
from importlib.metadata import version
v = tuple(int(p) for p in version("torch").split("+")[0].split(".")[:2])
lo, hi = (tuple(int(p) for p in a.split(".")) for a in sys.argv[1:3])
print("yes" if lo <= v < hi else "no")
PY
)
if [[ ! -x "$VENV/bin/python" ]]; then
  if [[ "$base_torch_ok" == yes ]]; then
    echo "sn2_det: using the base interpreter's torch (system site packages)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  else
    "$PYTHON" -m venv "$VENV"
  fi
fi
py="$VENV/bin/python"
pip=("$py" -m pip install --quiet)

"${pip[@]}" "setuptools>=77,<82" wheel ninja
"$py" -c "import torch" 2>/dev/null || "${pip[@]}" "$TORCH_PIN"

tag=$("$py" - <<'PY'
import sys, torch
cuda = "cu" + torch.version.cuda.replace(".", "") if torch.version.cuda else "cpu"
print(f"torch{torch.__version__.split('+')[0]}-{cuda}-py{sys.version_info[0]}{sys.version_info[1]}")
PY
)
wheel_dir="$CACHE/mmcv-$MMCV_VERSION-$tag"
if ! ls "$wheel_dir"/mmcv-*.whl >/dev/null 2>&1; then
  echo "sn2_det: building mmcv $MMCV_VERSION with ops for $tag (once per machine, 10 to 16 minutes on 2 cores)"
  tmp=$(mktemp -d)
  cuda_flag=0
  [[ "$tag" == *-cu* ]] && command -v nvcc >/dev/null && cuda_flag=1
  MMCV_WITH_OPS=1 FORCE_CUDA=$cuda_flag MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "$py" -m pip wheel --quiet --no-deps --no-build-isolation -w "$tmp" "mmcv==$MMCV_VERSION"
  mkdir -p "$wheel_dir"
  mv "$tmp"/mmcv-*.whl "$wheel_dir"/
  rmdir "$tmp"
fi
"${pip[@]}" --no-deps "$wheel_dir"/mmcv-*.whl
"${pip[@]}" -r requirements/runtime.txt -r requirements/tests.txt
"${pip[@]}" -r requirements/deploy.txt
"${pip[@]}" --no-deps -r requirements/openmmlab.txt
"${pip[@]}" --no-deps --no-build-isolation -e .
"$py" -c "import mmcv.ops, mmdet, sn2_det; print('sn2_det: stack ready, mmcv', mmcv.__version__)"
echo "$key" > "$stamp"
