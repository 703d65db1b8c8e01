#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every test of a build directory and ends with "N passed, N failed".
# Extra arguments go to 'meson test' (e.g. --suite unit).
set -uo pipefail
build=${1:-build-check}
shift || true
cd "$(dirname "$0")/.."
meson test -C "$build" --print-errorlogs --num-processes "${TGVM_TEST_JOBS:-2}" "$@"
rc=$?
log="$build/meson-logs/testlog.json"
if [ -f "$log" ]; then
  python3 - "$log" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif r == "SKIP":
        skipped += 1
    else:
        failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
else
  echo "0 passed, 1 failed"
  rc=1
fi
exit $rc
