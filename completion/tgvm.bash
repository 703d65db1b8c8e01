# SPDX-License-Identifier: MIT
# bash completion for tgvm: verbs, sub-verbs, options, feature and model names.
_tgvm_features() {
  # The features people type most; any QEMU or Linux name is accepted.
  printf '%s\n' avx avx2 avx512f avx512bw avx512vl avx512dq avx512cd bmi1 bmi2 fma f16c \
    popcnt sse4.1 sse4.2 ssse3 pni aes pclmulqdq sha-ni movbe xsave abm adx rdrand rdseed \
    vaes vpclmulqdq gfni avx512vnni avx-vnni amx-tile amx-int8 amx-bf16 cx16 lahf-lm
}
_tgvm() {
  local cur prev verb sub
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  verb=${COMP_WORDS[1]:-}
  sub=${COMP_WORDS[2]:-}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$(tgvm help 2>/dev/null | awk '/^  [a-z]/{print $1}')" -- "$cur"))
    return
  fi
  case "$prev" in
    --inventory|--report|--vms|--heatmap|--kernel|--initrd|--disk|--scan|--svg) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --vendor) COMPREPLY=($(compgen -W "intel amd" -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "text qemu libvirt json" -- "$cur")); return ;;
    --cpu-base) COMPREPLY=($(compgen -W "max $(tgvm host models 2>/dev/null | awk 'NR>1 && NF>2 {print $1}')" -- "$cur")); return ;;
    --need|--candidates) COMPREPLY=($(compgen -W "$(_tgvm_features)" -- "${cur##*,}")); return ;;
    --mode) COMPREPLY=($(compgen -W "precopy postcopy auto shared nil" -- "$cur")); return ;;
  esac
  case "$verb" in
    help) COMPREPLY=($(compgen -W "$(tgvm help 2>/dev/null | awk '/^  [a-z]/{print $1}')" -- "$cur")) ;;
    model) COMPREPLY=($(compgen -W "--need --report --vendor --cross-vendor --inventory --format --json --help" -- "$cur")) ;;
    fleet) COMPREPLY=($(compgen -W "--inventory --vm --vms --report --cross-vendor --first-host --json --heatmap --help" -- "$cur")) ;;
    host)
      if [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=($(compgen -W "models show detect up down" -- "$cur"))
      elif [ "$sub" = show ] && [ "$COMP_CWORD" -eq 3 ]; then
        COMPREPLY=($(compgen -W "$(tgvm host models --all 2>/dev/null | awk 'NR>1 && NF>2 {print $1}')" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "--json --all --vendor --name --inventory --hosts" -- "$cur"))
      fi ;;
    probe)
      if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "--cpu-base --candidates --scan --timeout --jobs -j --check --json --runs --vm --kernel --initrd --disk --run --mem --help --" -- "$cur"))
      else
        COMPREPLY=($(compgen -c -- "$cur") $(compgen -f -- "$cur"))
      fi ;;
    scan) COMPREPLY=($(compgen -W "--json --explain --per-program -j --jobs --hwcaps" -- "$cur") $(compgen -f -- "$cur")) ;;
    vm)
      if [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=($(compgen -W "start stop list console ping" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "--host --mem --cpus --model --kernel --initrd --append --disk --ip --accel --memdev --workload --dry-run --json --log --duration --interval-us --port" -- "$cur"))
      fi ;;
    migrate) COMPREPLY=($(compgen -W "status cancel --to --mode --downtime-limit --max-bandwidth --converge-timeout --timeout --multifd --no-check --json --decouple --recouple --memdev --breakdown --svg --no-probe --probe-interval --no-net-switch --stall-timeout --stream-buffer --qemu-defaults" -- "$cur")) ;;
  esac
}
complete -F _tgvm tgvm
