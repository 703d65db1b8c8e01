# SPDX-License-Identifier: MIT
# bash completion for tgvm. Verbs, sub-verbs and options come from the binary
# itself ('tgvm __complete': the verb table and each verb's own option table),
# host and VM names from its state directory, feature and model names from
# QEMU's database; files where an option or a verb takes one.
_tgvm_features() {
  # The features people type most; any QEMU or Linux name is accepted.
  printf '%s\n' avx avx2 avx512f avx512bw avx512vl avx512dq avx512cd bmi1 bmi2 fma f16c \
    popcnt sse4.1 sse4.2 ssse3 pni aes pclmulqdq sha-ni movbe xsave abm adx rdrand rdseed \
    vaes vpclmulqdq gfni avx512vnni avx-vnni amx-tile amx-int8 amx-bf16 cx16 lahf-lm
}
_tgvm() {
  local cur prev verb sub tgvm=${COMP_WORDS[0]}
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  verb=${COMP_WORDS[1]:-}
  sub=${COMP_WORDS[2]:-}
  command -v "$tgvm" >/dev/null 2>&1 || tgvm=tgvm
  COMPREPLY=()
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$("$tgvm" __complete verbs 2>/dev/null)" -- "$cur"))
    return
  fi
  # An option's argument.
  case "$prev" in
    --inventory|--report|--vms|--heatmap|--kernel|--initrd|--disk|--scan|--svg|--log)
      COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
    --host|--to|--first-host|--hosts)
      COMPREPLY=($(compgen -W "$("$tgvm" __complete hosts 2>/dev/null)" -- "$cur")); return ;;
    --vendor) COMPREPLY=($(compgen -W "intel amd" -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "text qemu libvirt json" -- "$cur")); return ;;
    --accel) COMPREPLY=($(compgen -W "tcg kvm auto" -- "$cur")); return ;;
    --cpu-base) COMPREPLY=($(compgen -W "max $("$tgvm" host models 2>/dev/null | awk 'NR>1 && NF>2 {print $1}')" -- "$cur")); return ;;
    --need|--candidates) COMPREPLY=($(compgen -W "$(_tgvm_features)" -- "${cur##*,}")); return ;;
    --mode) COMPREPLY=($(compgen -W "precopy postcopy auto shared nil" -- "$cur")); return ;;
  esac
  local subs
  subs=$("$tgvm" __complete subverbs "$verb" 2>/dev/null)
  if [ -n "$subs" ] && [ "$COMP_CWORD" -eq 2 ] && [[ "$cur" != -* ]]; then
    # migrate takes a VM or a sub-verb here
    [ "$verb" = migrate ] && subs="$subs $("$tgvm" __complete vms 2>/dev/null)"
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return
  fi
  if [[ "$cur" == -* ]]; then
    local s=""
    [ -n "$subs" ] && [ "$verb" != migrate ] && s=$sub
    COMPREPLY=($(compgen -W "$("$tgvm" __complete options "$verb" $s 2>/dev/null)" -- "$cur"))
    return
  fi
  # Positional arguments.
  case "$verb:$sub" in
    help:*) [ "$COMP_CWORD" -eq 2 ] &&
      COMPREPLY=($(compgen -W "$("$tgvm" __complete verbs 2>/dev/null)" -- "$cur")) ;;
    host:show) COMPREPLY=($(compgen -W "$("$tgvm" host models --all 2>/dev/null | awk 'NR>1 && NF>2 {print $1}')" -- "$cur")) ;;
    host:up|host:down) COMPREPLY=($(compgen -W "$("$tgvm" __complete hosts 2>/dev/null)" -- "$cur")) ;;
    vm:stop|vm:console|vm:ping|migrate:status|migrate:cancel)
      COMPREPLY=($(compgen -W "$("$tgvm" __complete vms 2>/dev/null)" -- "$cur")) ;;
    scan:*) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null ;;
    probe:*) COMPREPLY=($(compgen -c -- "$cur") $(compgen -f -- "$cur")) ;;
  esac
}
complete -F _tgvm tgvm
