#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs every build, test and demo dependency of tgvm from Debian packages,
# then builds the bundled guest (cached). Idempotent; quiet when all is there.
set -euo pipefail

PKGS=(
  build-essential pkg-config meson ninja-build clang-format scdoc
  libzydis-dev libelf-dev libjansson-dev libext2fs-dev libcmocka-dev
  zlib1g-dev liblzma-dev libzstd-dev
  qemu-user qemu-utils
  busybox-static cpio xz-utils zstd kmod e2fsprogs
  iproute2 procps psmisc
  librsvg2-bin
  openssl sqlite3 python3
  clang libclang-rt-dev
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# QEMU (system) 9.0 or newer. Debian 12's 7.2 loses guest writes in TCG
# migrations: its dirty-bitmap sync can leave TLB entries through which stores
# skip dirty tracking (fixed upstream in 2024, not in 7.2.x). Measured here at a
# 20 ms downtime limit: 3 of 44 moves of a writing guest ended with the guest
# rebooted or hung (one reported as completed), none of 45 with 10.0. Debian 12
# gets 10.0 from bookworm-backports; newer releases have it in main.
qemu_major() { qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p'; }
if [ "$(qemu_major)" = "" ] || [ "$(qemu_major)" -lt 9 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" = bookworm ]; then
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "setup: adding bookworm-backports (for QEMU 10)"
      echo "deb http://deb.debian.org/debian bookworm-backports main" |
        $SUDO tee /etc/apt/sources.list.d/tgvm-backports.list >/dev/null
    fi
    echo "setup: installing qemu-system-x86 from bookworm-backports"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86/bookworm-backports >/dev/null
  else
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
  fi
  v=$(qemu_major)
  if [ -z "$v" ] || [ "$v" -lt 9 ]; then
    echo "setup: qemu-system-x86_64 is ${v:-missing}.x; tgvm needs QEMU 9.0 or newer (see above)" >&2
    exit 1
  fi
fi

here=$(cd "$(dirname "$0")" && pwd)
if [ "${TGVM_SKIP_GUEST:-0}" != 1 ] && [ -x "$here/build-guest.sh" ]; then
  "$here/build-guest.sh"
fi
