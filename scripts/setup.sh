#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs every build, test and demo dependency of tgvm from Debian packages,
# then builds the bundled guest (cached). Idempotent; quiet when all is there.
set -euo pipefail

PKGS=(
  build-essential pkg-config meson ninja-build clang-format scdoc
  libzydis-dev libelf-dev libjansson-dev libext2fs-dev libcmocka-dev
  zlib1g-dev liblzma-dev libzstd-dev
  qemu-system-x86 qemu-user qemu-utils
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

here=$(cd "$(dirname "$0")" && pwd)
if [ "${TGVM_SKIP_GUEST:-0}" != 1 ] && [ -x "$here/build-guest.sh" ]; then
  "$here/build-guest.sh"
fi
