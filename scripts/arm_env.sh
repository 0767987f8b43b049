#!/usr/bin/env bash
# An aarch64 board without a board, for `make test-arm`: Debian's arm64 Python 3.11 run by
# qemu-user, with the aarch64 wheels a board installs (pip install numpy ncnn onnxruntime
# openvino: no torch). Everything goes into a cache outside the work tree, one folder per
# version set, and is downloaded only when that folder is missing:
#
#   ${SN2_DET_CACHE:-~/.cache/sn2_det}/arm-root-<debian>-py<X.Y>/  dpkg -x of the arm64 debs
#   ${SN2_DET_CACHE:-~/.cache/sn2_det}/arm-wheels-cp<XY>-<pins>/  pip install --target
#   ${SN2_DET_CACHE:-~/.cache/sn2_det}/arm-python-<...>             the interpreter to call
#
# Prints the path of that interpreter (a shell script: qemu-aarch64 running the arm64
# python3 with the wheels on its path, as `python3` on a board) as the last line of stdout.
# Installs qemu-user with apt-get when qemu-aarch64 is missing, and adds dpkg's arm64
# architecture (both need root, or sudo). Needs Debian 12 (bookworm) or later.
#
# Environment: PYTHON, the x86-64 Python whose pip downloads the wheels (default python3);
# SN2_DET_CACHE; QEMU_CPU at run time (default cortex-a76: ARMv8.2-A with fp16 arithmetic,
# the core of a Raspberry Pi 5 and of most phones since 2019; cortex-a72 is a Raspberry
# Pi 4's, without fp16 arithmetic).
set -euo pipefail
cd "$(dirname "$0")/.."

PY_VERSION=3.11
# The board's versions: ncnn and OpenVINO as tested on x86 (requirements/deploy.txt),
# numpy and onnxruntime the newest aarch64 wheels for Python 3.11 at the time of writing.
NCNN=$(sed -n 's/^ncnn==//p' requirements/deploy.txt)
OPENVINO=$(sed -n 's/^openvino==//p' requirements/deploy.txt)
NUMPY=${SN2_DET_ARM_NUMPY:-2.4.6}
ONNXRUNTIME=${SN2_DET_ARM_ONNXRUNTIME:-1.32.0}
PYTHON=${PYTHON:-python3}
CACHE=${SN2_DET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sn2_det}  # as scripts/install.sh
# What the arm64 python3.11 needs to start, import the standard library's compiled
# modules, and load numpy's, ncnn's, onnxruntime's and OpenVINO's shared objects.
DEBS="python${PY_VERSION}-minimal libpython${PY_VERSION}-minimal libpython${PY_VERSION}-stdlib
libc6 libexpat1 zlib1g libffi8 libssl3 libbz2-1.0 liblzma5 libgcc-s1 libstdc++6 libgomp1
libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libcrypt1"
# Wheel tags an aarch64 Debian 12 (glibc 2.36) accepts; OpenVINO's are manylinux_2_31+.
PLATFORMS="manylinux_2_36_aarch64 manylinux_2_35_aarch64 manylinux_2_34_aarch64
manylinux_2_31_aarch64 manylinux_2_28_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64"

log() { echo "arm_env: $*" >&2; }
die() { echo "arm_env: error: $*" >&2; exit 2; }
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "'$*' needs root (or sudo)"; fi
}

[ -n "$NCNN" ] && [ -n "$OPENVINO" ] || die "requirements/deploy.txt must pin ncnn== and openvino=="
command -v apt-get >/dev/null && command -v dpkg >/dev/null \
    || die "needs Debian's apt-get and dpkg (qemu-user and the arm64 python3.${PY_VERSION#3.} come from Debian)"
. /etc/os-release
CODENAME=${VERSION_CODENAME:-unknown}
APT_UPDATED=0
apt_update() {
    if [ "$APT_UPDATED" = 0 ]; then
        log "apt-get update"
        as_root apt-get update -qq >&2
        APT_UPDATED=1
    fi
}

# 1. qemu-user (qemu-aarch64 runs one aarch64 program; no binfmt, no kernel module)
if ! command -v qemu-aarch64 >/dev/null; then
    apt_update
    log "apt-get install qemu-user"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user >&2
fi
QEMU_VERSION=$(qemu-aarch64 --version | sed -n '1s/.*version \([0-9.]*\).*/\1/p')

# 2. the arm64 root: Debian's own python3.11 and the libraries it and the wheels load
ROOT=$CACHE/arm-root-$CODENAME-py$PY_VERSION
if [ ! -f "$ROOT/.complete" ]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        log "dpkg --add-architecture arm64"
        as_root dpkg --add-architecture arm64
        APT_UPDATED=0
    fi
    apt_update
    rm -rf "$ROOT" "$ROOT.debs"
    mkdir -p "$ROOT.debs"
    log "apt-get download (arm64): $(echo $DEBS)"
    # apt's _apt user must be able to write where it downloads
    chmod 777 "$ROOT.debs"
    # shellcheck disable=SC2046
    (cd "$ROOT.debs" && apt-get download -qq $(for p in $DEBS; do echo "$p:arm64"; done) >&2)
    for deb in "$ROOT.debs"/*.deb; do dpkg -x "$deb" "$ROOT"; done
    (cd "$ROOT.debs" && ls) > "$ROOT/.debs"
    rm -rf "$ROOT.debs"
    touch "$ROOT/.complete"
fi
[ -x "$ROOT/usr/bin/python$PY_VERSION" ] || die "$ROOT has no usr/bin/python$PY_VERSION"

# A board's kernel describes its cores in /proc/cpuinfo; qemu 7.2 passes the host's x86
# text through, on which onnxruntime >= 1.28 (pytorch/cpuinfo) dies with SIGSEGV at
# import. qemu looks for every absolute path under QEMU_LD_PREFIX first, so the root gets
# the /proc/cpuinfo of a Cortex-A76 (what qemu >= 8.2 writes itself) with the host's count
# of processors (cpuinfo also reads the host's /sys/devices/system/cpu).
mkdir -p "$ROOT/proc"
CPUINFO=$(mktemp "$ROOT/proc/.cpuinfo.XXXXXX")
for ((i = 0; i < $(nproc --all); i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' "$i"
done > "$CPUINFO"
chmod 644 "$CPUINFO"
mv -f "$CPUINFO" "$ROOT/proc/cpuinfo"
# and its MIDR_EL1 (Arm, Cortex-A76 r4p1) where OpenVINO's oneDNN reads it
for ((i = 0; i < $(nproc --all); i++)); do
    mkdir -p "$ROOT/sys/devices/system/cpu/cpu$i/regs/identification"
    echo 0x00000000414fd0b1 > "$ROOT/sys/devices/system/cpu/cpu$i/regs/identification/midr_el1"
done

# 3. the board's wheels, as `pip install` on an aarch64 Python 3.11 gets them
TAG=cp${PY_VERSION/./}
WHEELS=$CACHE/arm-wheels-$TAG-numpy$NUMPY-ncnn$NCNN-onnxruntime$ONNXRUNTIME-openvino$OPENVINO
if [ ! -f "$WHEELS/.complete" ]; then
    rm -rf "$WHEELS"
    log "pip install --target $WHEELS (aarch64 wheels)"
    # shellcheck disable=SC2046
    "$PYTHON" -m pip install -q --disable-pip-version-check --target "$WHEELS" \
        $(for p in $PLATFORMS; do echo --platform "$p"; done) \
        --python-version "$PY_VERSION" --implementation cp --only-binary=:all: \
        "numpy==$NUMPY" "ncnn==$NCNN" "onnxruntime==$ONNXRUNTIME" "openvino==$OPENVINO" >&2
    touch "$WHEELS/.complete"
fi

# 4. the interpreter: python3 of the board, under qemu
RUN=$CACHE/arm-python-$CODENAME-py$PY_VERSION-$(basename "$WHEELS" | sed 's/^arm-wheels-//')
cat > "$RUN.tmp" <<EOF
#!/bin/sh
# aarch64 python$PY_VERSION (Debian $CODENAME) with numpy $NUMPY, ncnn $NCNN, onnxruntime
# $ONNXRUNTIME and OpenVINO $OPENVINO, under qemu-aarch64 $QEMU_VERSION (made by
# scripts/arm_env.sh). QEMU_CPU picks the emulated core (default cortex-a76).
export QEMU_LD_PREFIX='$ROOT'
export QEMU_CPU="\${QEMU_CPU:-cortex-a76}"
export PYTHONPATH='$WHEELS'
unset PYTHONHOME
exec qemu-aarch64 '$ROOT/usr/bin/python$PY_VERSION' "\$@"
EOF
chmod 755 "$RUN.tmp"
mv -f "$RUN.tmp" "$RUN"
"$RUN" -c 'import platform, sys; assert platform.machine() == "aarch64", platform.machine()' \
    || die "$RUN does not run"
log "aarch64 python $PY_VERSION (qemu-aarch64 $QEMU_VERSION): $RUN"
echo "$RUN"
