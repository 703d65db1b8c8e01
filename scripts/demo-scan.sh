#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Demo act: what software really needs. The bundled guest's initramfs (one
# program, cpuwork, uses POPCNT and BMI2 without a check; everything else runs
# on any x86-64), why, and a real program of this machine whose AVX2/AVX-512
# code is only reached after a CPU check.
set -uo pipefail
tgvm=${1:?usage: demo-scan.sh TGVM}
guest=${TGVM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tgvm}/guest/initramfs.img
say() { printf '\n\033[36m$ %s\033[0m\n' "$*"; }
if [ -r "$guest" ]; then
  say "tgvm scan $guest"
  "$tgvm" scan "$guest" | tail -4
  say "tgvm scan $guest --explain bmi2"
  "$tgvm" scan "$guest" --explain bmi2 | head -8
fi
say "tgvm scan /usr/bin/openssl    # with libcrypto and libssl"
"$tgvm" scan /usr/bin/openssl | tail -4
exit 0
