#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make check-fresh`: what a machine that has never seen tgvm gets from the
# README. Builds a minimal Debian root (mmdebstrap --variant=minbase) from the
# mirror this machine's APT sources name, puts a clean `git archive HEAD` in
# it, and in a chroot runs scripts/setup.sh (which must install everything
# itself), the build, a few verbs that need no namespaces, the bundled guest's
# build and the unit tests. Prints each step's wall time and a verdict line.
# Usage: scripts/check-fresh.sh [bookworm|trixie]   (default $DIST, else bookworm)
# TGVM_FRESH_KEEP=1 keeps the root for debugging; TGVM_FRESH_TMP is where it
# goes (default /var/tmp). Needs root (debootstrapping, chroot, mounts).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
dist=${1:-${DIST:-bookworm}}
me="check-fresh $dist"

die() {
	echo "$me: $*" >&2
	exit 2
}
case "$dist" in
bookworm | trixie) ;;
*) die "unknown distribution '$dist' (bookworm or trixie)" ;;
esac
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap, chroot and mounts)"
command -v git >/dev/null || die "'git' is not installed"
git -C "$src" rev-parse --verify -q HEAD >/dev/null ||
	die "'$src' is not a git checkout with a commit (the test copies 'git archive HEAD')"

# shellcheck source=scripts/apt-sources.sh
source "$src/scripts/apt-sources.sh"

# The mirror of this machine's own release serves the other suites too.
host_codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$host_codename" ] || die "/etc/os-release names no VERSION_CODENAME"
read -r mirror keyring < <(apt_release_source "$host_codename") || true
[ -n "${mirror:-}" ] || die "no APT source names '$host_codename'; cannot tell which mirror to bootstrap from"

fmt_secs() {
	awk -v s="$1" 'BEGIN { if (s < 60) printf "%.1f s", s; else printf "%d min %02d s", s / 60, s % 60 }'
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

work=""
root=""
mounted=()
steps=()
failed=""
signalled=""
current="start"
t_all=$(now)

# Processes whose root is the test root (a QEMU a verb left behind) go before
# the unmount; each is one we started, through the chroot.
kill_chroot_procs() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		[ "$r" = "$root" ] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	return 0
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM HUP
	set +e
	if [ -n "$root" ]; then
		kill_chroot_procs
		for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
			umount -R "${mounted[$i]}" 2>/dev/null || umount -R -l "${mounted[$i]}"
		done
	fi
	if [ -n "$work" ]; then
		if grep -qF " $work/" /proc/self/mountinfo; then
			echo "$me: something is still mounted under '$work'; not deleting it" >&2
		elif [ "${TGVM_FRESH_KEEP:-0}" = 1 ]; then
			echo "$me: kept the root in $root (chroot $root bash)"
		else
			rm -rf --one-file-system "$work"
		fi
	fi
	exit "$rc"
}
interrupted() {
	echo
	echo "$me: interrupted (signal $1)"
	failed=$current
	signalled=$1
	verdict
	exit 130
}
trap cleanup EXIT
trap 'interrupted INT' INT
trap 'interrupted TERM' TERM
trap 'interrupted HUP' HUP

verdict() {
	local s
	echo
	echo "== $me: step times"
	for s in "${steps[@]}"; do
		echo "   $s"
	done
	if [ -z "$failed" ]; then
		echo "$me: PASSED (${#steps[@]} steps, $(fmt_secs "$(elapsed "$t_all")"))"
	elif [ -n "$signalled" ]; then
		echo "$me: INTERRUPTED (SIG$signalled) during '$failed' after $(fmt_secs "$(elapsed "$t_all")")"
	else
		echo "$me: FAILED at '$failed' after $(fmt_secs "$(elapsed "$t_all")")"
	fi
}

# step NAME CMD...: runs CMD, records its wall time; the first failure ends the run.
step() {
	local name=$1 t rc
	shift
	current=$name
	printf '\n== %s: %s\n' "$me" "$name"
	t=$(now)
	set +e
	"$@"
	rc=$?
	set -e
	local secs
	secs=$(elapsed "$t")
	if [ $rc = 0 ]; then
		steps+=("$(printf '%-24s %10s  ok' "$name" "$(fmt_secs "$secs")")")
		return 0
	fi
	steps+=("$(printf '%-24s %10s  FAILED (exit %d)' "$name" "$(fmt_secs "$secs")" "$rc")")
	failed=$name
	verdict
	exit 1
}

# in_root CMD: runs the shell command CMD in the checkout inside the root, as
# root with a login's environment and nothing of ours.
in_root() {
	chroot "$root" /usr/bin/env -i HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/bin/bash -c "cd /root/tgvm && $1"
}

install_mmdebstrap() {
	command -v mmdebstrap >/dev/null && return 0
	echo "installing mmdebstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends mmdebstrap >/dev/null; }
}

bootstrap() {
	local opts=() p
	# The key the machine trusts for its mirror (deb822 Signed-By or
	# [signed-by=]); without one, APT's trusted.gpg.d (debian-archive-keyring).
	if [ "$keyring" != - ] && [ -f "$keyring" ]; then
		opts+=("--keyring=$keyring")
	fi
	# An APT proxy of this machine serves the root too.
	for p in http https; do
		local v=""
		eval "$(apt-config shell v "Acquire::$p::Proxy")"
		[ -z "$v" ] || opts+=("--aptopt=Acquire::$p::Proxy \"$v\";")
	done
	mmdebstrap --variant=minbase --mode=root "${opts[@]}" "$dist" "$root" "$mirror"
	# A key of our own for the mirror (not Debian's, which the root has):
	# the root's APT must trust it too.
	if [ "$keyring" != - ] && [ -f "$keyring" ] && [ ! -e "$root$keyring" ]; then
		case "$keyring" in
		*.asc) cp "$keyring" "$root/etc/apt/trusted.gpg.d/tgvm-mirror.asc" ;;
		*) cp "$keyring" "$root/etc/apt/trusted.gpg.d/tgvm-mirror.gpg" ;;
		esac
	fi
}

enter() {
	local d
	# The machine's resolver, so the root reaches the mirror as we do.
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
	mount -t proc proc "$root/proc"
	mounted+=("$root/proc")
	for d in sys dev; do
		mount --rbind "/$d" "$root/$d"
		# Unmounting the copy must never reach the machine's own /dev or /sys.
		mount --make-rslave "$root/$d"
		mounted+=("$root/$d")
	done
}

copy_source() {
	mkdir -p "$root/root/tgvm"
	git -C "$src" archive --format=tar HEAD | tar -x -C "$root/root/tgvm"
}

if ! git -C "$src" diff --quiet HEAD 2>/dev/null; then
	echo "$me: note: testing commit $(git -C "$src" rev-parse --short HEAD); uncommitted changes are not part of it"
fi
echo "$me: commit $(git -C "$src" rev-parse --short HEAD), mirror $mirror"

step "install mmdebstrap" install_mmdebstrap
tmpbase=${TGVM_FRESH_TMP:-/var/tmp}
work=$(mktemp -d "$tmpbase/tgvm-fresh-$dist.XXXXXX")
root=$work/root
step "bootstrap (minbase)" bootstrap
step "enter the root" enter
step "copy git archive HEAD" copy_source
step "setup: packages" in_root "TGVM_SKIP_GUEST=1 scripts/setup.sh"
step "setup: guest" in_root "scripts/setup.sh"
step "build" in_root "make build"
step "tgvm --version" in_root "build/tgvm --version"
step "tgvm model" in_root "build/tgvm model --need avx2,bmi2"
step "tgvm fleet" in_root "build/tgvm fleet --inventory examples/fleet.json --vms examples/vms.json"
step "unit tests" in_root "scripts/run-tests.sh build --suite unit"
verdict
