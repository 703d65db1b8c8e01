#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The tgvm demo on bundled defaults: CPU models, the minimal model for a few
# workloads, and where they may go in a mixed fleet of eleven generations.
# Each later part of tgvm adds its act here.
set -euo pipefail
# Ctrl-C ends the demo even when the command it hit exits by itself; the acts
# that bring hosts up take them down again on their way out.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
tgvm="$here/$build/tgvm"
out="$here/out"
mkdir -p "$out"
has_verb() { "$tgvm" help 2>/dev/null | grep -q "^  $1 "; }
act() { printf '\n\033[1m== %s\033[0m\n\n' "$*"; }

act "1. The CPU models of the installed QEMU (read over QMP, cached)"
"$tgvm" host models | grep -E '^(MODEL|Westmere-v2|Haswell-v4|Skylake-Server-v4|Cascadelake-Server-v4|Icelake-Server-v6|EPYC-v3|EPYC-Rome-v2|EPYC-Milan-v1) '
"$tgvm" host models | tail -1

act "2. This machine's CPU (CPUID + /proc/cpuinfo)"
"$tgvm" host detect | sed -n '1,5p'

act "3. The minimal CPU model for a database that needs POPCNT and SSE4.2"
"$tgvm" model --need popcnt,sse4.2 --inventory "$here/examples/fleet.json"

act "4. Where eight typical VMs may run and move in a fleet of 1180 machines"
"$tgvm" fleet --inventory "$here/examples/fleet.json" --vms "$here/examples/vms.json" \
  --heatmap "$out/fleet-heatmap.svg"
rsvg-convert -f png -o "$out/fleet-heatmap.png" "$out/fleet-heatmap.svg" 2>/dev/null &&
  echo "heat map also as $out/fleet-heatmap.png"

act "5. The same fleet when VMs may cross vendors"
"$tgvm" fleet --inventory "$here/examples/fleet.json" --vms "$here/examples/vms.json" --cross-vendor |
  sed -n '3,12p'

if has_verb scan && [ -x "$here/scripts/demo-scan.sh" ]; then
  act "6. What the bundled guest's software really needs (tgvm scan)"
  "$here/scripts/demo-scan.sh" "$tgvm"
fi
if has_verb migrate && [ -x "$here/scripts/demo-migrate.sh" ]; then
  act "7. Live migration between simulated hosts of different CPU generations"
  "$here/scripts/demo-migrate.sh" "$tgvm"
fi
if has_verb migrate && [ -x "$here/scripts/demo-nil.sh" ]; then
  act "8. nil-migration: decouple onto shared memory, hand off, recouple"
  "$here/scripts/demo-nil.sh" "$tgvm"
fi
printf '\nDone. Pictures are in %s/.\n' "$out"
