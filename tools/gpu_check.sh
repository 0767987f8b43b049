#!/usr/bin/env bash
# The GPU check (docs/gpu.md): on a machine with a CUDA torch and no network, installs
# the stack from the bundle of scripts/gpu_bundle.sh (mmcv compiled there for the GPU's
# architecture only), then runs on the GPU
#   ops        tests/test_ps_roi_ops.py -k cuda: PS-RoI Align's PyTorch path against
#              the loop reference and torchvision's kernel, forward and backward,
#              fp32 and fp16, both reductions
#   table7     tools/table7.py --device cuda: all 20 cells, batch 4, 800x1200
#   train_amp, train_fp32
#              tools/train.py configs/lighthead_sn2.py, one epoch of generated data
#              (16 images: 8 iterations), backbone from random weights (the keys
#              the pretrained-weights check names), with and without --amp
#   test       tools/test.py on the --amp run's checkpoint (else the fp32 run's)
# and writes RESULTS/gpu_check.json and RESULTS/gpu_check.md (the steps, the GPU,
# the versions, Table 7 beside the paper's), each step's log in RESULTS/logs.
#
#   bash tools/gpu_check.sh            # from the repository root, bundle in build/gpu_bundle
#
# Environment: PYTHON (base interpreter with torch; python3), BUNDLE, VENV (default
# build/gpu_venv, made with the base's site packages; an existing one is used as it
# is, so a second run on the same machine finds mmcv compiled), RESULTS (default
# $OUT, else work_dirs/gpu_check), DEVICE (cuda; cpu runs the same steps on the CPU
# at SMALL sizes), SMALL=1 (64x64 images, Table 7 one cell at 256x384: the CPU test),
# BUDGET_S (570: every step's time limit is cut to what is left of it),
# MMCV_WITH_OPS=0 (mmcv built without ops: only to test the build from source on a CPU).
# Without a CUDA device the GPU steps are skipped, each with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
BUNDLE=${BUNDLE:-build/gpu_bundle}
VENV=${VENV:-build/gpu_venv}
RESULTS=${RESULTS:-${OUT:-work_dirs/gpu_check}}
DEVICE=${DEVICE:-cuda}
SMALL=${SMALL:-0}
BUDGET_S=${BUDGET_S:-570}
# The pretrained-weights check's keys for a backbone trained from scratch
FROM_SCRATCH=(model.backbone.init_cfg=None model.backbone.frozen_stages=-1
              model.backbone.norm_eval=False model.backbone.norm_cfg.requires_grad=True)

mkdir -p "$RESULTS/logs"
RESULTS=$(cd "$RESULTS" && pwd)
STEPS="$RESULTS/steps.jsonl"
: > "$STEPS"
START_NS=$(date +%s%N)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
[[ "$DEVICE" == cpu ]] && export CUDA_VISIBLE_DEVICES=''
py="$VENV/bin/python"
export PYTHON BUNDLE VENV py  # for the steps that run this script's functions

record() {  # NAME STATUS SECONDS DETAIL
  "$PYTHON" -c 'import json, sys; print(json.dumps(dict(zip(
      ("step", "status", "seconds", "detail"), (sys.argv[1], sys.argv[2],
      float(sys.argv[3]), sys.argv[4])))))' "$@" >> "$STEPS"
  echo "[gpu_check] $1: $2 ($3 s) $4"
}

left_s() { echo $(( BUDGET_S - ($(date +%s%N) - START_NS) / 1000000000 )); }

step() {  # NAME LIMIT_S COMMAND...: runs COMMAND, its output in logs/NAME.log
  local name=$1 limit=$2 left rc=0 t0 secs detail
  shift 2
  left=$(left_s)
  (( limit > left )) && limit=$left
  if (( limit < 10 )); then
    record "$name" skipped 0 "no time left of the ${BUDGET_S} s budget"
    return 1
  fi
  echo "[gpu_check] $name (limit ${limit} s): $*"
  t0=$(date +%s%N)
  if declare -F "$1" > /dev/null; then  # a function of this script (exported below)
    set -- bash -c '"$@"' bash "$@"
  fi
  timeout --kill-after=10 "$limit" "$@" > "$RESULTS/logs/$name.log" 2>&1 || rc=$?
  secs=$(awk -v n=$(( $(date +%s%N) - t0 )) 'BEGIN { printf "%.1f", n / 1e9 }')
  if (( rc == 0 )); then
    record "$name" passed "$secs" "$(tail -n 3 "$RESULTS/logs/$name.log" | tr '\n' ' ')"
    return 0
  fi
  if (( rc == 124 || rc == 137 )); then
    detail="timed out after ${limit} s"
  else
    detail="exit $rc: $(tail -n 5 "$RESULTS/logs/$name.log" | tr '\n' ' ')"
  fi
  record "$name" failed "$secs" "$detail"
  return 1
}

skip_all() {  # REASON NAME...
  local reason=$1
  shift
  for name in "$@"; do record "$name" skipped 0 "$reason"; done
}

report() {
  "$PYTHON" scripts/gpu_check_report.py "$RESULTS"
  exit "${1:-0}"
}

GPU_STEPS=(ops table7 train_amp train_fp32 test)

# 1. the bundle is whole and made for this Python
check_bundle() {
  [[ -f "$BUNDLE/SHA256SUMS" ]] || { echo "no bundle at $BUNDLE: make gpu-bundle"; return 1; }
  (cd "$BUNDLE" && sha256sum --quiet -c SHA256SUMS) || return 1
  local want have
  want=$(cat "$BUNDLE/PYVER")
  have=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [[ "$want" == "$have" ]] || { echo "bundle for Python $want, $PYTHON is $have"; return 1; }
}
export -f check_bundle
step bundle 60 check_bundle || { skip_all 'the bundle check failed' install mmcv imports \
  "${GPU_STEPS[@]}"; report 1; }

# 2. the pure-Python stack, offline, into a venv that sees the base's torch
vpip() {  # pip of the venv, or the base's pip acting on it (a venv made without pip)
  if "$py" -m pip --version > /dev/null 2>&1; then
    "$py" -m pip "$@"
  else
    "$PYTHON" -m pip --python "$py" "$@"
  fi
}
install() {
  if [[ ! -x "$py" ]]; then
    "$PYTHON" -m venv --system-site-packages "$VENV" \
      || "$PYTHON" -m venv --system-site-packages --without-pip "$VENV" || return 1
  fi
  "$py" -c 'import torch, numpy, cv2; print("torch", torch.__version__, "cuda",
    torch.version.cuda, "available", torch.cuda.is_available())' || return 1
  vpip install --quiet --no-index --no-deps "$BUNDLE"/wheels/*.whl
}
export -f vpip install
step install 180 install || { skip_all 'the install failed' mmcv imports "${GPU_STEPS[@]}"
  report 1; }

# 3. mmcv: the bundle's wheel, else compiled from its source here, CUDA ops for this
#    GPU's architecture only (all of mmcv's ops: mmcv.ops imports every one of them)
build_mmcv() {
  if "$py" -c 'import mmcv.ops' 2>/dev/null; then
    echo "mmcv with ops installed from the bundle"
    return 0
  fi
  local arch cuda=0 wheels="$VENV/mmcv_wheel"
  # ninja (from the bundle) on the PATH, or torch compiles one file at a time; nvcc
  # where CUDA installs it when it is not on the PATH
  export PATH="$(cd "$VENV/bin" && pwd):$PATH:${CUDA_HOME:-/usr/local/cuda}/bin"
  arch=$("$py" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability()
    if torch.cuda.is_available() else "")')
  [[ -n "$arch" ]] && command -v nvcc > /dev/null && cuda=1
  ninja --version > /dev/null || return 1
  echo "compiling mmcv: FORCE_CUDA=$cuda TORCH_CUDA_ARCH_LIST=$arch MAX_JOBS=$(nproc)" \
    "nvcc: $(command -v nvcc || echo none)"
  rm -rf "$wheels"
  # built in a source tree kept in the venv: a second run resumes an unfinished build
  if [[ ! -d "$VENV/mmcv_src" ]]; then
    mkdir -p "$VENV/mmcv_src" && tar -xzf "$BUNDLE"/mmcv-*.tar.gz -C "$VENV/mmcv_src" \
      || return 1
  fi
  MMCV_WITH_OPS=${MMCV_WITH_OPS:-1} FORCE_CUDA=$cuda TORCH_CUDA_ARCH_LIST=$arch MAX_JOBS=$(nproc) \
    vpip wheel --no-index --no-deps --no-build-isolation -w "$wheels" \
    "$VENV"/mmcv_src/mmcv-* || return 1
  vpip install --quiet --no-index --no-deps "$wheels"/mmcv*.whl
}
export -f build_mmcv
step mmcv 420 build_mmcv || { skip_all 'mmcv is not installed' imports "${GPU_STEPS[@]}"
  report 1; }

step imports 120 "$py" - <<'PY' || { skip_all 'the stack does not import' "${GPU_STEPS[@]}"; report 1; }
import platform
import mmcv, mmcv.ops, mmdet, mmengine, torch
import sn2_det
from sn2_det.ops.ps_roi_align import _torchvision
try:
    import torchvision
    vision = torchvision.__version__ + ('' if _torchvision() else ' (its ops do not load)')
except ImportError:
    vision = 'not installed'
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'
print(f'python {platform.python_version()}, torch {torch.__version__} (CUDA '
      f'{torch.version.cuda}), torchvision {vision}, mmcv {mmcv.__version__}, mmengine '
      f'{mmengine.__version__}, mmdet {mmdet.__version__}, GPU: {gpu}')
PY

# 4. the GPU steps
if [[ "$DEVICE" == cuda ]] && ! "$py" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
  skip_all 'no CUDA device: torch.cuda.is_available() is False on this machine' \
    "${GPU_STEPS[@]}"
  report 0
fi

if [[ "$SMALL" == 1 ]]; then
  TABLE7_ARGS=(--backbones shufflenet_v2 --levels 40 --shape 256 384 --rounds 1 --warmup 0)
  SIZE_ARGS=(train_dataloader.dataset.pipeline.2.scale='(64,64)'
             test_dataloader.dataset.pipeline.1.scale='(64,64)')
else
  TABLE7_ARGS=()
  SIZE_ARGS=()
fi
data="$RESULTS/data"
"$py" tools/make_toy_dataset.py "$data" --coco-layout --num-train 16 --num-val 4 \
  > "$RESULTS/logs/data.log" 2>&1

if [[ "$DEVICE" == cuda ]]; then
  step ops 180 "$py" -m pytest -q -rs tests/test_ps_roi_ops.py -k cuda -p no:cacheprovider
else
  step ops 180 "$py" -m pytest -q -rs tests/test_ps_roi_ops.py -k cpu -p no:cacheprovider
fi
step table7 300 "$py" tools/table7.py --device "$DEVICE" --batch 4 --out-dir \
  "$RESULTS/table7" "${TABLE7_ARGS[@]}"
TRAIN_OPTIONS=("${FROM_SCRATCH[@]}" train_cfg.max_epochs=1 val_dataloader=None val_cfg=None
               val_evaluator=None default_hooks.logger.interval=1 "${SIZE_ARGS[@]}")
if [[ "$DEVICE" == cuda ]]; then
  step train_amp 180 "$py" tools/train.py configs/lighthead_sn2.py --amp --data-root \
    "$data" --work-dir "$RESULTS/train_amp" --cfg-options "${TRAIN_OPTIONS[@]}"
else
  skip_all "mmengine's AmpOptimWrapper trains on a GPU only" train_amp
fi
step train_fp32 180 "$py" tools/train.py configs/lighthead_sn2.py --data-root "$data" \
  --work-dir "$RESULTS/train_fp32" --cfg-options "${TRAIN_OPTIONS[@]}"
checkpoint=$(ls "$RESULTS"/train_amp/epoch_*.pth "$RESULTS"/train_fp32/epoch_*.pth \
             2>/dev/null | head -n 1)
if [[ -n "$checkpoint" ]]; then
  step test 120 "$py" tools/test.py configs/lighthead_sn2.py "$checkpoint" --data-root \
    "$data" --work-dir "$RESULTS/test" --metrics-json "$RESULTS/test/metrics.json" \
    --cfg-options "${FROM_SCRATCH[@]}" "${SIZE_ARGS[@]}"
else
  skip_all 'the training runs wrote no checkpoint' test
fi
rm -f "$RESULTS"/train_*/epoch_*.pth  # not worth carrying back
report 0
