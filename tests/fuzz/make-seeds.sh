#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Rebuilds the small seed corpora of the fuzzers in tests/fuzz/corpus/: a tiny
# guest root (a shared library with RUNPATH, symlinks, ld.so.conf) as cpio in
# every format and compression, as ext2/ext4 images (bare, in MBR), and ELF files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PATH=$PATH:/usr/sbin:/sbin LC_ALL=C
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
small="-nostdlib -s -Wl,--build-id=none -Wl,-z,noseparate-code -Wl,--hash-style=gnu"
mkdir -p "$t/r/usr/lib" "$t/r/usr/bin" "$t/r/etc/ld.so.conf.d" "$t/r/opt/lib"
echo 'int f(void) { return 1; }' > "$t/f.c"
gcc -shared -fPIC $small -Wl,-soname,libf.so.1 -o "$t/r/opt/lib/libf.so.1" "$t/f.c"
echo 'void _start(void) {}' > "$t/p.c"
gcc $small -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../../opt/lib' \
  -Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2 -o "$t/r/usr/bin/p" "$t/p.c" \
  "$t/r/opt/lib/libf.so.1"
echo 'include /etc/ld.so.conf.d/*.conf' > "$t/r/etc/ld.so.conf"
echo '/opt/lib' > "$t/r/etc/ld.so.conf.d/x.conf"
echo hi > "$t/r/usr/bin/text"
ln -s usr/bin "$t/r/bin"
ln -s /usr/bin/p "$t/r/usr/bin/sh"
ln -s ../opt/lib/libf.so.1 "$t/r/usr/lib/libf.so.1"
ln -s loop "$t/r/loop"

c="$here/corpus/cpio"
rm -rf "$c" && mkdir -p "$c"
(cd "$t/r" && find . | sort > "$t/list")
(cd "$t/r" && cpio -o -H newc --quiet < "$t/list") > "$c/newc.cpio"
(cd "$t/r" && cpio -o -H crc --quiet < "$t/list") > "$c/crc.cpio"
gzip -9 -c "$c/newc.cpio" > "$c/newc.cpio.gz"
xz --check=crc32 -c "$c/newc.cpio" > "$c/newc.cpio.xz"
zstd -q -c "$c/newc.cpio" > "$c/newc.cpio.zst"
(cat "$c/newc.cpio"; head -c 16 /dev/zero; cat "$c/newc.cpio.gz") > "$c/concat.cpio"

e="$here/corpus/ext4"
rm -rf "$e" && mkdir -p "$e"
mke2fs -q -F -t ext2 -b 1024 -N 32 -d "$t/r" "$e/ext2.img" 128K >/dev/null
mke2fs -q -F -t ext4 -O ^has_journal,^resize_inode -b 1024 -N 32 -d "$t/r" \
  "$e/ext4.img" 128K >/dev/null
mke2fs -q -F -t ext4 -O ^has_journal,^resize_inode,inline_data -b 1024 -N 32 -d "$t/r" \
  "$e/inline.img" 128K >/dev/null
# The same ext4 behind an MBR, partition at sector 8.
python3 - "$e/ext4.img" "$e/mbr.img" <<'PY'
import struct, sys
img = open(sys.argv[1], 'rb').read()
mbr = bytearray(4096)
mbr[446:462] = struct.pack('<B3sB3sII', 0, b'\0\0\0', 0x83, b'\0\0\0', 8, len(img) // 512)
mbr[510:512] = b'\x55\xaa'
open(sys.argv[2], 'wb').write(bytes(mbr) + img)
PY

d="$here/corpus/elf-dynamic"
rm -rf "$d" && mkdir -p "$d"
cp "$t/r/opt/lib/libf.so.1" "$d/lib.so"
cp "$t/r/usr/bin/p" "$d/prog"
gcc $small -Wl,--disable-new-dtags -Wl,-rpath,'$ORIGIN:$LIB:${PLATFORM}' -o "$d/prog-rpath" \
  "$t/p.c" "$t/r/opt/lib/libf.so.1"
ls -la "$c" "$e" "$d"

# The ELF analysis: small programs with the patterns the guard analysis
# follows (cpuid variable, capability argument and field, ifunc), stripped
# and not, plus a library with a data table inside .text.
f="$here/corpus/elf"
s="$here/../data/scan"
rm -rf "$f" && mkdir -p "$f"
for p in cpuid-var cap-arg cap-field ifunc; do
  gcc -O2 -Wl,--build-id=none -o "$f/$p" "$s/$p.c"
done
gcc -O2 -s -Wl,--build-id=none -o "$f/cpuid-var-stripped" "$s/cpuid-var.c"
gcc -shared -fPIC -Wl,--build-id=none -o "$f/libtexttable.so" "$s/text-table.S"
cp "$d/prog" "$f/tiny-prog"
ls -la "$f"
