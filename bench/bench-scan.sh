#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tgvm scan over this machine's /usr (or $TGVM_BENCH_TREE) against a plain
# Zydis linear decode of the same executable sections, same run, all cores.
# Usage: bench-scan.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
exec "$build/bench/bench-scan" "${TGVM_BENCH_TREE:-/usr}" "${TGVM_BENCH_JOBS:-$(nproc)}"
