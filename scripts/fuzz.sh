#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer harnesses of tests/fuzz/ with clang (ASan + UBSan) and
# runs each for FUZZ_SECONDS (default 600). Usage: scripts/fuzz.sh [HARNESS...]
# Crashes land in $FUZZ_BUILD/crash-*; copy each into tests/fuzz/regress/<harness>/
# so that `make check` replays it for ever after.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-600}
out=${FUZZ_BUILD:-build-fuzz}
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(cpio ext4 elf-dynamic elf)

command -v clang >/dev/null || { echo "fuzz: clang is missing (run scripts/setup.sh)"; exit 1; }
mkdir -p "$out"
cflags=(-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
  -fno-sanitize-recover=undefined -D_GNU_SOURCE -Iinclude -Isrc -Itests/fuzz)
srcs=(src/scan/source.c src/scan/source-dir.c src/scan/source-cpio.c src/scan/source-ext4.c
  src/scan/ldpath.c src/util/util.c src/util/error.c)
# the ELF analysis (fuzz-elf): reader, graphs, guards, the per-file result
ana=(src/scan/elf.c src/scan/cfg.c src/scan/guard.c src/scan/isa-map.c src/scan/report.c src/scan/scan.c
  src/cpu/feature.c src/cpu/featureset.c)
read -r -a libs <<<"$(pkg-config --libs libelf ext2fs com_err zlib liblzma libzstd jansson) -lZydis -lZycore -lpthread -lm"

for h in "${harnesses[@]}"; do
  echo "fuzz: building fuzz-$h"
  extra=()
  [ "$h" = elf ] && extra=("${ana[@]}")
  clang "${cflags[@]}" "${srcs[@]}" "${extra[@]}" "tests/fuzz/fuzz-$h.c" -o "$out/fuzz-$h" "${libs[@]}"
done
rc=0
for h in "${harnesses[@]}"; do
  corpus="$out/corpus-$h"
  mkdir -p "$corpus"
  echo "fuzz: running fuzz-$h for ${secs}s (corpus $corpus, seeds tests/fuzz/corpus/$h)"
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$out/fuzz-$h" -max_total_time="$secs" -print_final_stats=1 -timeout=20 \
      -rss_limit_mb=2048 \
      -artifact_prefix="$out/crash-$h-" "$corpus" "tests/fuzz/corpus/$h" \
      ${FUZZ_ARGS:-} >"$out/fuzz-$h.log" 2>&1 || rc=1
  grep -E "^stat::|cov:|Done|ERROR|SUMMARY" "$out/fuzz-$h.log" | tail -8
done
ls "$out"/crash-* 2>/dev/null && { echo "fuzz: crashes found (see above)"; rc=1; }
exit $rc
