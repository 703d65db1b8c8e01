#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds tgvm's bundled guest into $TGVM_CACHE_DIR/guest (default
# ~/.cache/tgvm/guest): Debian's cloud kernel (downloaded, unpacked, never
# installed) and a gzip cpio initramfs with busybox-static, the virtio modules
# and the programs of guest/. Cached: rebuilt only when missing or when guest/
# (or this script) changed. Quiet when there is nothing to do.
# Usage: scripts/build-guest.sh [--force]
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
force=0
case "${1:-}" in
--force) force=1 ;;
"") ;;
-h | --help)
	echo "usage: scripts/build-guest.sh [--force]"
	exit 0
	;;
*)
	echo "build-guest: unknown argument '$1' (usage: scripts/build-guest.sh [--force])" >&2
	exit 2
	;;
esac

die() {
	echo "build-guest: $*" >&2
	exit 1
}

cache_root=${TGVM_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/tgvm}
out=$cache_root/guest
meta_pkg=linux-image-cloud-amd64
# Load order that works (dependencies first); ext4 is built into this kernel.
# virtio_mmio is the transport of the microvm machine (no PCI bus); init loads
# either it or the virtio_pci modules, never both.
modules=(virtio_ring virtio virtio_mmio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
	failover net_failover virtio_net virtio_blk)

# The source hash covers everything that ends up in the initramfs.
source_hash() {
	{
		echo "modules: ${modules[*]}"
		(cd "$src" && find guest -type f ! -name '*.md' -print0 | LC_ALL=C sort -z |
			xargs -0 sha256sum)
		sha256sum <"$src/scripts/build-guest.sh"
	} | sha256sum | cut -d' ' -f1
}

cached_ok() {
	local hash=$1
	[ -s "$out/vmlinuz" ] && [ -s "$out/initramfs.img" ] && [ -s "$out/manifest.json" ] &&
		grep -q "\"source_hash\": \"$hash\"" "$out/manifest.json"
}

hash=$(source_hash)
if [ $force = 0 ] && cached_ok "$hash"; then
	exit 0
fi

for tool in gcc cpio gzip dpkg apt-get apt-cache flock sha256sum; do
	command -v "$tool" >/dev/null || die "'$tool' is not installed (run scripts/setup.sh)"
done
busybox=/bin/busybox
[ -x "$busybox" ] || die "'$busybox' is missing: install busybox-static (run scripts/setup.sh)"
if ldd "$busybox" >/dev/null 2>&1; then
	die "'$busybox' is dynamically linked: install busybox-static (run scripts/setup.sh)"
fi
[ -f "$src/guest/init" ] || die "'$src/guest/init' is missing"

mkdir -p "$out" || die "cannot create '$out'"
# One builder at a time; whoever waited finds the cache fresh and leaves.
exec 9>"$out/.lock"
flock 9 || die "cannot lock '$out/.lock'"
if [ $force = 0 ] && cached_ok "$hash"; then
	exit 0
fi

tmp=$(mktemp -d "$out/.build.XXXXXX") || die "cannot create a temporary directory in '$out'"
trap 'rm -rf "$tmp"' EXIT

# The versioned kernel package the meta package points at.
resolve_kernel_pkg() {
	apt-cache depends "$meta_pkg" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | grep -v '^linux-image-cloud-amd64$' | head -n1
}
pkg=$(resolve_kernel_pkg || true)
if [ -z "$pkg" ]; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
	$SUDO apt-get update -qq >/dev/null 2>&1 || true
	pkg=$(resolve_kernel_pkg || true)
fi
[ -n "$pkg" ] || die "apt cannot resolve '$meta_pkg' to a kernel package (is a Debian mirror configured?)"
pkgver=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')
[ -n "$pkgver" ] && [ "$pkgver" != "(none)" ] || die "apt has no candidate version of '$pkg'"

# Keep the downloaded package, so a change in guest/ does not download again.
debdir=$cache_root/deb
mkdir -p "$debdir"
deb=$debdir/${pkg}_${pkgver//:/%3a}_amd64.deb
if [ ! -s "$deb" ]; then
	if ! (cd "$tmp" && apt-get download -q "$pkg=$pkgver" >"$tmp/apt.log" 2>&1); then
		die "cannot download '$pkg' $pkgver: $(grep -E '^(E|W):' "$tmp/apt.log" | head -n1)"
	fi
	got=$(find "$tmp" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
	[ -n "$got" ] || die "apt-get download of '$pkg' produced no .deb"
	find "$debdir" -maxdepth 1 -name 'linux-image-*.deb' -delete
	mv "$got" "$deb"
fi
dpkg -x "$deb" "$tmp/kernel" || die "cannot unpack '$deb'"

# Debian 12's kernel packages hold lib/modules, Debian 13's usr/lib/modules.
kmods=""
for d in "$tmp/kernel/lib/modules" "$tmp/kernel/usr/lib/modules"; do
	[ -d "$d" ] && kmods=$d && break
done
[ -n "$kmods" ] || die "'$deb' holds neither /lib/modules nor /usr/lib/modules"
kver=$(find "$kmods" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | head -n1)
[ -n "$kver" ] || die "'$deb' holds no kernel version under ${kmods#"$tmp/kernel"}"
vmlinuz=$tmp/kernel/boot/vmlinuz-$kver
[ -s "$vmlinuz" ] || die "'$deb' holds no boot/vmlinuz-$kver"
moddir=$kmods/$kver

root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/tgvm,proc,sys,dev,run,tmp,root,lib/modules/"$kver"}
chmod 1777 "$root/tmp"

# busybox and its applet links (our programs win a name clash).
cp "$busybox" "$root/bin/busybox"
while read -r applet; do
	[ -n "$applet" ] && [ "$applet" != bin/busybox ] || continue
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)

# Kernel modules of the same package, in load order.
: >"$root/etc/tgvm/modules"
loaded=()
for m in "${modules[@]}"; do
	f=$(find "$moddir/kernel" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -n1)
	if [ -z "$f" ]; then
		grep -q "/$m.ko" "$moddir/modules.builtin" 2>/dev/null && continue
		die "module '$m' is not in '$pkg'"
	fi
	rel=${f#"$moddir/"}
	mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
	case "$f" in
	*.xz) xz -dc "$f" >"$root/lib/modules/$kver/${rel%.xz}" && rel=${rel%.xz} ;;
	*.zst) zstd -qdc "$f" >"$root/lib/modules/$kver/${rel%.zst}" && rel=${rel%.zst} ;;
	*) cp "$f" "$root/lib/modules/$kver/$rel" ;;
	esac
	echo "$rel" >>"$root/etc/tgvm/modules"
	loaded+=("$m")
done

# The project's guest programs: guest/NAME.c becomes /bin/NAME.
programs=()
: >"$root/etc/tgvm/programs"
for c in "$src"/guest/*.c; do
	[ -e "$c" ] || continue
	name=$(basename "$c" .c)
	rm -f "$root/bin/$name" "$root/usr/bin/$name" "$root/sbin/$name" "$root/usr/sbin/$name"
	if ! gcc -static -O2 -Wall -Wextra -Werror -o "$root/bin/$name" "$c" 2>"$tmp/cc.log"; then
		die "cannot compile 'guest/$name.c': $(grep -m1 -E 'error' "$tmp/cc.log" || head -n1 "$tmp/cc.log")"
	fi
	echo "$name" >>"$root/etc/tgvm/programs"
	programs+=("$name")
done

install -m 0755 "$src/guest/init" "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'export PATH=/bin:/sbin:/usr/bin:/usr/sbin\nPS1="tgvm-guest:\\w# "\n' >"$root/etc/profile"
echo "$kver" >"$root/etc/tgvm/kernel"

img=$tmp/initramfs.img
# No device nodes needed: the kernel's built-in initramfs already holds
# /dev/console, and init mounts devtmpfs.
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n >"$img" ||
	die "cannot write the initramfs"

size_img=$(stat -c %s "$img")
size_kernel=$(stat -c %s "$vmlinuz")
json_list() {
	local first=1 x
	printf '['
	for x in "$@"; do
		[ $first = 1 ] || printf ', '
		printf '"%s"' "$x"
		first=0
	done
	printf ']'
}
bbver=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
{
	printf '{\n'
	printf '  "format": 1,\n'
	printf '  "kernel_version": "%s",\n' "$kver"
	printf '  "kernel_package": "%s",\n' "$pkg"
	printf '  "kernel_package_version": "%s",\n' "$pkgver"
	printf '  "busybox_version": "%s",\n' "$bbver"
	printf '  "modules": %s,\n' "$(json_list "${loaded[@]}")"
	printf '  "programs": %s,\n' "$(json_list "${programs[@]}")"
	printf '  "source_hash": "%s",\n' "$hash"
	printf '  "vmlinuz_bytes": %s,\n' "$size_kernel"
	printf '  "initramfs_bytes": %s,\n' "$size_img"
	printf '  "built": "%s"\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf '}\n'
} >"$tmp/manifest.json"

# Replace the files one by one, manifest last: a reader that finds a
# manifest with the right hash finds the files that go with it. A running
# QEMU keeps the old files it has open.
rm -f "$out/manifest.json"
cp "$vmlinuz" "$out/.vmlinuz.new" && mv -f "$out/.vmlinuz.new" "$out/vmlinuz"
mv -f "$img" "$out/initramfs.img"
mv -f "$tmp/manifest.json" "$out/manifest.json"
echo "build-guest: kernel $kver, initramfs $((size_img / 1024)) KiB (${programs[*]}) in $out"
