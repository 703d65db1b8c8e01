#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs every build, test and demo dependency of tgvm from Debian packages,
# then builds the bundled guest (cached). Idempotent; quiet when all is there.
set -euo pipefail

# cmake: Meson finds Debian 12's Zydis through its CMake package files (no .pc).
PKGS=(
  build-essential pkg-config meson ninja-build cmake clang-format scdoc
  libzydis-dev libelf-dev libjansson-dev libext2fs-dev libcmocka-dev
  zlib1g-dev liblzma-dev libzstd-dev
  qemu-user qemu-utils
  busybox-static cpio xz-utils zstd kmod e2fsprogs
  iproute2 procps psmisc
  librsvg2-bin
  openssl sqlite3 python3
  clang libclang-rt-dev
)

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/apt-sources.sh
source "$here/apt-sources.sh"

SUDO=""
need_root() {
  [ "$(id -u)" -eq 0 ] && return 0
  command -v sudo >/dev/null || {
    echo "setup: must install Debian packages; run it as root (sudo is not installed)" >&2
    exit 1
  }
  SUDO=sudo
}
apt_updated=0
apt_update() {
  [ $apt_updated = 1 ] && return 0
  $SUDO apt-get update -qq
  apt_updated=1
}
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

# QEMU (system) 9.0 or newer. Debian 12's 7.2 loses guest writes in TCG
# migrations: its dirty-bitmap sync can leave TLB entries through which stores
# skip dirty tracking (fixed upstream in 2024, not in 7.2.x). Measured here at a
# 20 ms downtime limit: 3 of 44 moves of a writing guest ended with the guest
# rebooted or hung (one reported as completed), none of 45 with 10.0. Debian 12
# gets 10.0 from bookworm-backports; Debian 13 and newer have it in main.
# The installed QEMU's major version; nothing when there is none.
qemu_major() {
  command -v qemu-system-x86_64 >/dev/null || return 0
  qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p'
}
qemu_suite=""
need_qemu=0
v=$(qemu_major)
if [ -z "$v" ] || [ "$v" -lt 9 ]; then
  need_qemu=1
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ "$codename" = bookworm ] && qemu_suite=bookworm-backports
fi

# The backports entry goes through the mirror that serves the release itself
# (a local mirror or a proxy), with its key; the machine's other sources stay
# as they are. An entry the machine already has for the suite is used as is.
backports_file=${TGVM_APT_DIR:-/etc/apt}/sources.list.d/tgvm-backports.sources
if [ -n "$qemu_suite" ] && ! apt_has_suite "$qemu_suite"; then
  read -r mirror keyring < <(apt_release_source bookworm) || true
  if [ -z "${mirror:-}" ]; then
    echo "setup: no APT source names bookworm; cannot tell which mirror to take $qemu_suite from" >&2
    exit 1
  fi
  need_root
  echo "setup: adding $qemu_suite from $mirror (for QEMU 10) in $backports_file"
  {
    echo "# Added by tgvm's scripts/setup.sh: QEMU 10 for Debian 12."
    echo "Types: deb"
    echo "URIs: $mirror"
    echo "Suites: $qemu_suite"
    echo "Components: main"
    [ "$keyring" = - ] || echo "Signed-By: $keyring"
  } | $SUDO tee "$backports_file" >/dev/null
fi

if [ ${#missing[@]} -gt 0 ]; then
  need_root
  echo "setup: installing ${missing[*]}"
  apt_update
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ $need_qemu = 1 ]; then
  need_root
  apt_update
  if [ -n "$qemu_suite" ]; then
    echo "setup: installing qemu-system-x86 from $qemu_suite"
    # -t, not pkg/suite: the latter takes only the named package from
    # backports and its dependencies (qemu-system-common, seabios ...) from
    # bookworm, which apt cannot resolve.
    $SUDO apt-get install -y -qq --no-install-recommends -t "$qemu_suite" qemu-system-x86 >/dev/null
  else
    echo "setup: installing qemu-system-x86"
    $SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
  fi
  v=$(qemu_major)
  if [ -z "$v" ] || [ "$v" -lt 9 ]; then
    echo "setup: qemu-system-x86_64 is ${v:-missing}.x; tgvm needs QEMU 9.0 or newer (see above)" >&2
    exit 1
  fi
fi

if [ "${TGVM_SKIP_GUEST:-0}" != 1 ] && [ -x "$here/build-guest.sh" ]; then
  "$here/build-guest.sh"
fi
