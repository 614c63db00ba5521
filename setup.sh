#!/usr/bin/env bash
# edgetp set-up for a fresh Debian/Ubuntu machine (or any machine with Python >= 3.10).
#
#   ./setup.sh            install system packages + edgetp, prepare the default data
#   ./setup.sh --no-data  skip the default data
#
# System packages (apt, needs root or sudo): gcc (host builds of the generated C), espeak-ng + sox (the offline speech
# corpus), gcc-arm-none-eabi + libnewlib-arm-none-eabi (Cortex-M4/M7/M33 firmware),
# qemu-system-arm (the emulated Arm boards), gcc-riscv64-unknown-elf + picolibc-riscv64-unknown-elf +
# qemu-system-misc (the RV32 firmware and its emulated board, qemu-system-riscv32; together ~1.4 GB
# installed, picolibc's multilibs ~1 GB of it), cmake (the export's CMake project), clang + its runtime libclang-rt-N-dev (ASan, UBSan,
# libFuzzer). Python packages: edgetp
# with its test, interop, neuromorphic, deploy, plot and ray extras (torchaudio is left out:
# it costs several GB; `pip install -e '.[torch]'` adds it).
set -euo pipefail
cd "$(dirname "$0")"
WANT_DATA=1
for a in "$@"; do
  case "$a" in
    --no-data) WANT_DATA=0 ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

APT_PKGS="gcc libc6-dev espeak-ng sox gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc cmake"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing system packages:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup: warning: no apt-get; install these yourself:$missing" >&2
  fi
fi

# clang alone (--no-install-recommends) lacks the compiler runtime that ASan, UBSan and libFuzzer link
# against (libclang_rt.*.a). Debian 12 / Ubuntu >= 23.04 ship it as libclang-rt-N-dev for clang N;
# older releases inside libclang-common-N-dev. N comes from the installed clang.
if command -v clang >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  CLANG_MAJOR=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
  RT=""
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  for attempt in 1 2; do
    for cand in "libclang-rt-$CLANG_MAJOR-dev" "libclang-common-$CLANG_MAJOR-dev"; do
      if apt-cache show "$cand" >/dev/null 2>&1; then RT=$cand; break 2; fi
    done
    if [ "$attempt" = 1 ]; then $SUDO apt-get update -qq || true; fi
  done
  if [ -n "$CLANG_MAJOR" ] && [ -n "$RT" ] && ! dpkg -s "$RT" >/dev/null 2>&1; then
    echo "setup: installing clang $CLANG_MAJOR's sanitizer/libFuzzer runtime: $RT"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$RT" >/dev/null
  fi
fi
if command -v clang >/dev/null 2>&1 && ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' \
    | clang -fsanitize=fuzzer,address,undefined -x c - -o /dev/null 2>/dev/null; then
  echo "setup: warning: clang cannot link ASan/UBSan/libFuzzer; install clang's runtime (Debian: libclang-rt-N-dev)" >&2
fi

PY=${PYTHON:-python3}
echo "setup: installing edgetp (pip, editable) with extras test,interop,neuromorphic,deploy,plot,ray"
$PY -m pip install -q --disable-pip-version-check -e ".[test,interop,neuromorphic,deploy,plot,ray]"
# NIR clients (Norse, snnTorch): one install with torch pinned to 2.13.0 (a CPU build here; a plain
# `torch` would pull a CUDA build), then norse without its torchvision requirement.
echo "setup: installing the nir-clients extra (torch 2.13.0 CPU, snnTorch, nirtorch) and norse (--no-deps)"
$PY -m pip install -q --disable-pip-version-check -e ".[nir-clients]"
$PY -m pip install -q --disable-pip-version-check --no-deps "norse>=1.1"

if [ "$WANT_DATA" = 1 ] && [ -f edgetp/data/synth.py ]; then
  $PY -m edgetp data prepare-default
fi
echo "setup: done. Try: edgetp --help"
