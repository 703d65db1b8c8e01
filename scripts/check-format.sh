#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks (or with --fix, applies) .clang-format on every C file of the project.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^tests/data/' || true)
[ ${#files[@]} -gt 0 ] || { echo "format: no C files"; exit 0; }
if [ "${1:-}" = --fix ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "format: $f differs from .clang-format (run 'make format-fix')"
    bad=1
  fi
done
exit $bad
