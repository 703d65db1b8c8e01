#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every benchmark of a (non-sanitizer) build and prints their figures.
# Each benchmark measures its baseline in the same run.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
echo "== fleet: 10,000 hosts x 100,000 VMs"
"$here/$build/bench/bench-fleet"
for b in "$here"/bench/bench-*.sh; do
  [ -x "$b" ] || continue
  echo; echo "== $(basename "$b" .sh)"
  "$b" "$here/$build"
done
