#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tgvm scan judged on every ELF file under /usr/bin, /usr/sbin, /usr/libexec
# and /usr/lib of this machine: each file whose required set goes beyond the
# x86-64 baseline runs under qemu-x86_64 with each such feature removed
# (tests/integration/scan-system.py). Prints the counts: files, required
# beyond baseline, contradictions, per feature. Exit 1 on a contradiction.
# Usage: bench/scan-system.sh [BUILD_DIR] [scan-system.py options, e.g. -v]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
shift || true
tmp=$(mktemp -d /tmp/tgvm-scan-system.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cc -O2 -o "$tmp/dlopen-loader" "$src/tests/integration/dlopen-loader.c" -ldl
python3 "$src/tests/integration/scan-system.py" --tgvm "$build/tgvm" --loader "$tmp/dlopen-loader" "$@"
