#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# "No module outside src/qmp/ writes a QMP command name" (docs: DESIGN.md, issue 24).
# Fails, naming file:line, where a file under src/ or include/ outside the monitor
#  - quotes a command of src/qmp/commands.list (in src/cli/, a name marked "word"
#    there, such as the verbs "migrate" and "stop", only where it is passed to a qmp_
#    function or written beside "execute"),
#  - calls qmp_conn_command(), the untyped way in, or writes "execute" itself.
# Files named in the allow-list (default scripts/qmp-layering.allow; one path a line)
# are reported but do not fail; an entry that no longer has any hit fails, so the
# list only shrinks. Also fails when commands.list names a command src/qmp/ does
# not send, or src/qmp/monitor.c sends one the list lacks.
# Usage: check-qmp-layering.sh [--allow FILE] [SOURCE_ROOT]
set -euo pipefail
allow=
while [ $# -gt 0 ]; do
  case $1 in
  --allow) allow=$2; shift 2 ;;
  *) break ;;
  esac
done
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
allow=${allow:-scripts/qmp-layering.allow}
list=src/qmp/commands.list
[ -f "$list" ] || { echo "qmp-layering: $list is missing"; exit 1; }

names=() words=()
while read -r name kind _; do
  case $name in '' | '#'*) continue ;; esac
  names+=("$name")
  [ "${kind:-}" = word ] && words+=("$name")
done <"$list"

allowed=()
if [ -f "$allow" ]; then
  while read -r path _; do
    case $path in '' | '#'*) continue ;; esac
    allowed+=("$path")
  done <"$allow"
fi
is_allowed() {
  local a
  for a in "${allowed[@]+"${allowed[@]}"}"; do [ "$a" = "$1" ] && return 0; done
  return 1
}
is_word() {
  local w
  for w in "${words[@]+"${words[@]}"}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}

bad=0
# The list and the monitor agree.
for n in "${names[@]}"; do
  if ! grep -q -F "\"$n\"" src/qmp/*.c; then
    echo "qmp-layering: $list names '$n' but src/qmp/ never sends it"
    bad=1
  fi
done
while read -r n; do
  [ -n "$n" ] || continue
  found=0
  for m in "${names[@]}"; do [ "$m" = "$n" ] && found=1; done
  if [ $found = 0 ]; then
    echo "qmp-layering: src/qmp/monitor.c sends '$n', which $list does not name"
    bad=1
  fi
done < <(perl -0777 -ne 'while (/\b(?:run_plain|run_args|run_object|qmp_conn_command|command)\(\s*c,\s*"([^"]+)"/g) { print "$1\n" }' src/qmp/*.c | sort -u)

# Nobody else names a command.
declare -A hits=()
report() { # file line text why
  if is_allowed "$1"; then
    hits[$1]=$((${hits[$1]:-0} + 1))
    echo "qmp-layering: allowed: $1:$2: $4"
  else
    echo "$1:$2: $4 outside src/qmp/: call the typed function of include/tgvm/qmp-monitor.h"
    echo "    $3"
    bad=1
  fi
}
while IFS= read -r f; do
  lineno=0
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    case $line in *'"'* | *qmp_conn_command*) ;; *) continue ;; esac
    trimmed=${line#"${line%%[![:space:]]*}"}
    if [[ $line == *qmp_conn_command\(* ]]; then
      report "$f" $lineno "$trimmed" "qmp_conn_command()"
      continue
    fi
    if [[ $line == *'"execute"'* ]]; then
      report "$f" $lineno "$trimmed" "a hand-written QMP request"
      continue
    fi
    for n in "${names[@]}"; do
      [[ $line == *"\"$n\""* ]] || continue
      if is_word "$n" && [[ $f == src/cli/* ]] &&
        ! [[ $line =~ qmp_[a-z_]*\( || $line == *execute* ]]; then
        continue # a verb ("tgvm migrate"), not a command
      fi
      report "$f" $lineno "$trimmed" "QMP command '$n'"
      break
    done
  done <"$f"
done < <(find src include -type f \( -name '*.c' -o -name '*.h' \) \
  ! -path 'src/qmp/*' ! -name 'qmp.h' ! -name 'qmp-monitor.h' | sort)

for a in "${allowed[@]+"${allowed[@]}"}"; do
  if [ "${hits[$a]:-0}" = 0 ]; then
    echo "qmp-layering: $allow lists '$a', which names no QMP command any more: remove the entry"
    bad=1
  else
    echo "qmp-layering: $a: ${hits[$a]} allowed line(s) still to convert"
  fi
done
[ $bad = 0 ] && echo "qmp-layering: no QMP command name outside src/qmp/ (but the allowed files)"
exit $bad
