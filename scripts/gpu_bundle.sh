#!/usr/bin/env bash
# Builds what tools/gpu_check.sh installs, offline, on a GPU machine (docs/gpu.md):
#   BUNDLE/wheels/          scripts/gpu_bundle_requirements.txt as wheels for Python PYVER
#                           on manylinux x86-64 (downloaded: needs the network once)
#   BUNDLE/mmcv-2.1.0.tar.gz  mmcv's source, compiled there with its CUDA ops
#   BUNDLE/PYVER, BUNDLE/SHA256SUMS
# and checks that the bundle and the tracked files fit in LIMIT_MIB (64: what a lent
# GPU machine carries per call).
#   make gpu-bundle                      # Python 3.12, build/gpu_bundle
#   PYVER=3.11 PINS="scipy==1.17.1 contourpy==1.3.3" MMCV_WHEEL=path/mmcv-...-cp311-...whl \
#     LIMIT_MIB=128 BUNDLE=/tmp/b bash scripts/gpu_bundle.sh   # the CPU test (Python 3.11)
# MMCV_WHEEL puts a compiled mmcv wheel in the bundle instead of the source (for a
# machine whose Python and torch it was built for: the CPU test of the bundle).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
BUNDLE=${BUNDLE:-build/gpu_bundle}
PYVER=${PYVER:-3.12}
LIMIT_MIB=${LIMIT_MIB:-64}
MMCV_VERSION=2.1.0

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/wheels"
platforms=()
for p in manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_24_x86_64 \
         manylinux_2_27_x86_64 manylinux_2_28_x86_64; do
  platforms+=(--platform "$p")
done
download() {  # REQUIREMENTS PLATFORM-ARGS...
  local requirements=$1
  shift
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" \
    "$@" -r "$requirements" -d "$BUNDLE/wheels" 2>&1 | { grep -v '^WARNING: Location' || true; }
  return "${PIPESTATUS[0]}"
}
# PINS="scipy==1.17.1 ...": other versions (pip reads environment markers for the
# Python it runs on, not for --python-version; the newest scipy needs Python 3.12)
requirements=$(cat scripts/gpu_bundle_requirements.txt)
for pin in ${PINS:-}; do
  requirements=$(sed "s/^${pin%%==*}==[^ ]*/$pin/" <<< "$requirements")
done
grep -v 'pure wheel' <<< "$requirements" > "$BUNDLE/binary.txt"
grep 'pure wheel' <<< "$requirements" > "$BUNDLE/pure.txt"
download "$BUNDLE/binary.txt" "${platforms[@]}"
download "$BUNDLE/pure.txt" --platform any  # no platform: only py3-none-any wheels match
rm "$BUNDLE/binary.txt" "$BUNDLE/pure.txt"
if [[ -n "${MMCV_WHEEL:-}" ]]; then
  cp "$MMCV_WHEEL" "$BUNDLE/wheels/"
else
  # pip reads the archive's metadata by running its setup.py, which imports torch:
  # hence --no-build-isolation with the project's environment
  "$PY" -m pip download --quiet --no-deps --no-binary=:all: --no-build-isolation \
    "mmcv==$MMCV_VERSION" -d "$BUNDLE" 2>&1 | { grep -v '^WARNING: Location' || true; }
fi
echo "$PYVER" > "$BUNDLE/PYVER"
(cd "$BUNDLE" && find . -type f ! -name SHA256SUMS -printf '%P\n' | sort \
   | xargs sha256sum > SHA256SUMS)

bundle_bytes=$(du -sb "$BUNDLE" | cut -f1)
tree_bytes=$(git ls-files -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$((bundle_bytes + tree_bytes))
awk -v b="$bundle_bytes" -v t="$total" -v n="$(wc -l < "$BUNDLE/SHA256SUMS")" \
    -v d="$BUNDLE" -v l="$LIMIT_MIB" 'BEGIN { printf "gpu bundle %s: %d files, " \
    "%.1f MiB; with the tracked files %.1f MiB (limit %d MiB)\n", d, n, b / 1048576, \
    t / 1048576, l }'
if (( total > LIMIT_MIB * 1048576 )); then
  echo "error: the bundle and the tracked files exceed $LIMIT_MIB MiB" >&2
  exit 2
fi
