#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the labelled scan corpus from the sources beside this script into
# OUTDIR: one small program per pattern tgvm scan must get right. The
# expected answer for each is in expect.txt. Usage: build-corpus.sh SRCDIR OUTDIR STAMP
set -euo pipefail
src=$1 out=$2 stamp=$3
CC=${CC:-gcc}
CLANG=${CLANG:-clang}
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/root/usr/bin" "$out/root/usr/lib/glibc-hwcaps/x86-64-v3"
cflags=(-O2 -g -Wall)

$CC "${cflags[@]}" -mavx2 -o "$out/bin/avx2-plain" "$src/avx2-plain.c"
$CC "${cflags[@]}" -mavx2 -fPIE -pie -o "$out/bin/avx2-pie" "$src/avx2-plain.c"
$CC "${cflags[@]}" -mavx2 -fno-pie -no-pie -o "$out/bin/avx2-nopie" "$src/avx2-plain.c"
$CC "${cflags[@]}" -o "$out/bin/ifunc" "$src/ifunc.c"
$CC -O3 -g -o "$out/bin/clones" "$src/clones.c"
$CLANG -O3 -g -o "$out/bin/clones-clang" "$src/clones.c"
$CC -O3 -g -static -o "$out/bin/clones-static" "$src/clones.c"
$CC "${cflags[@]}" -o "$out/bin/cpu-supports" "$src/cpu-supports.c"
$CC "${cflags[@]}" -o "$out/bin/cpuid-var" "$src/cpuid-var.c"
$CC "${cflags[@]}" -s -o "$out/bin/cpuid-var-stripped" "$src/cpuid-var.c"
$CLANG "${cflags[@]}" -o "$out/bin/cpuid-var-clang" "$src/cpuid-var.c"
$CC "${cflags[@]}" -o "$out/bin/inline-asm" "$src/inline-asm.c"
$CC "${cflags[@]}" -mrdrnd -o "$out/bin/fnptr-method" "$src/fnptr-method.c"
$CLANG "${cflags[@]}" -mrdrnd -o "$out/bin/fnptr-method-clang" "$src/fnptr-method.c"
$CC "${cflags[@]}" -mrdrnd -DCOMPARE_THEN_CALL -o "$out/bin/fnptr-method-bad" "$src/fnptr-method.c"
$CC "${cflags[@]}" -mrdrnd -o "$out/bin/dead-ctor" "$src/dead-ctor.c"
$CC "${cflags[@]}" -rdynamic -o "$out/bin/export-choose" "$src/export-choose.c"
$CC "${cflags[@]}" -o "$out/bin/table-index" "$src/table-index.c"
$CC "${cflags[@]}" -o "$out/bin/cap-ipara" "$src/cap-ipara.c"
$CLANG "${cflags[@]}" -o "$out/bin/cap-ipara-clang" "$src/cap-ipara.c"
$CC "${cflags[@]}" -DFLAG_FROM_ARGS -o "$out/bin/cap-ipara-bad" "$src/cap-ipara.c"
$CC "${cflags[@]}" -o "$out/bin/cpu-model-ctor" "$src/cpu-model-ctor.c"
$CLANG "${cflags[@]}" -o "$out/bin/cpu-model-ctor-clang" "$src/cpu-model-ctor.c"
$CC "${cflags[@]}" -o "$out/bin/vendor" "$src/vendor.c"
$CLANG "${cflags[@]}" -o "$out/bin/vendor-clang" "$src/vendor.c"
$CLANG "${cflags[@]}" -rdynamic -o "$out/bin/export-choose-clang" "$src/export-choose.c"
$CC "${cflags[@]}" -rdynamic -DUNGUARDED_CALL -o "$out/bin/export-choose-bad" "$src/export-choose.c"
$CC "${cflags[@]}" -mrdrnd -s -o "$out/bin/dead-ctor-stripped" "$src/dead-ctor.c"
$CC "${cflags[@]}" -o "$out/bin/cap-arg" "$src/cap-arg.c"
$CLANG "${cflags[@]}" -o "$out/bin/cap-arg-clang" "$src/cap-arg.c"
$CC "${cflags[@]}" -DFLAG_FROM_ARGS -o "$out/bin/cap-arg-bad" "$src/cap-arg.c"
$CC "${cflags[@]}" -o "$out/bin/cap-field" "$src/cap-field.c"
$CLANG "${cflags[@]}" -o "$out/bin/cap-field-clang" "$src/cap-field.c"
$CC "${cflags[@]}" -DFLAG_FROM_ARGS -o "$out/bin/cap-field-bad" "$src/cap-field.c"
$CC "${cflags[@]}" -o "$out/bin/cap-struct" "$src/cap-struct.c"
$CC "${cflags[@]}" -s -o "$out/bin/cap-struct-stripped" "$src/cap-struct.c"
$CLANG "${cflags[@]}" -o "$out/bin/cap-struct-clang" "$src/cap-struct.c"
$CC -O3 -g -march=x86-64-v2 -o "$out/bin/levels-v2" "$src/levels.c"
$CC -O3 -g -march=x86-64-v3 -o "$out/bin/levels-v3" "$src/levels.c"
$CC -O3 -g -march=x86-64-v4 -mprefer-vector-width=512 -o "$out/bin/levels-v4" "$src/levels.c"
$CC -shared -fPIC -o "$out/lib/libtexttable.so" "$src/text-table.S"

# A root tree: a program, its library, and a v3 copy in glibc-hwcaps.
$CC -O3 -shared -fPIC -o "$out/root/usr/lib/libhw.so" "$src/hwcaps-lib.c"
$CC -O3 -march=x86-64-v3 -shared -fPIC -o "$out/root/usr/lib/glibc-hwcaps/x86-64-v3/libhw.so" \
  "$src/hwcaps-lib.c"
$CC -O2 -o "$out/root/usr/bin/hwcaps-main" "$src/hwcaps-main.c" -L"$out/root/usr/lib" -lhw \
  -Wl,-rpath,'$ORIGIN/../lib'
touch "$stamp"
