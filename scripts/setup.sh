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
# gets 10.0 from bookworm-backports; Debian 13 and newer have it in main.

# The mirror that serves the release's own suite, from deb822 *.sources files
# or one-line sources.list entries: a backports entry must go through the same
# mirror (a local mirror or a proxy), not a fixed host.
release_mirror() {
  local codename=$1 f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v want="$codename" '
      function flush() {
        if (is_deb && has_suite && uri != "") { print uri; found = 1; exit }
        is_deb = 0; has_suite = 0; uri = ""; enabled = 1
      }
      BEGIN { enabled = 1 }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:"   { for (i = 2; i <= NF; i++) if ($i == "deb") is_deb = 1 }
      tolower($1) == "enabled:" { if (tolower($2) == "no") enabled = 0 }
      tolower($1) == "suites:"  { for (i = 2; i <= NF; i++) if ($i == want) has_suite = 1 }
      tolower($1) == "uris:"    { uri = $2 }
      END { if (!found) flush() }
      ' "$f" | head -n 1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v want="$codename" '
      $1 != "deb" { next }
      { i = 2; if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } }
      $(i + 1) == want { print $i; exit }
      ' "$f"
  done
}

# The Signed-By of the stanza that names the mirror (deb822), if any.
release_keyring() {
  local mirror=$1 f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v want="$mirror" '
      /^[ \t]*$/ { if (hit && key != "") { print key; exit } hit = 0; key = ""; next }
      tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i == want) hit = 1 }
      tolower($1) == "signed-by:" { key = $2 }
      END { if (hit && key != "") print key }
      ' "$f" | head -n 1
  done | head -n 1
}

backports_configured() {
  local suite=$1
  grep -hsv '^[[:space:]]*#' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    /etc/apt/sources.list.d/*.sources | grep -qw -- "$suite"
}

qemu_major() { qemu-system-x86_64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\)\..*/\1/p'; }
if [ "$(qemu_major)" = "" ] || [ "$(qemu_major)" -lt 9 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" = bookworm ]; then
    suite=bookworm-backports
    if ! backports_configured "$suite"; then
      mirror=$(release_mirror bookworm | head -n 1)
      if [ -z "$mirror" ]; then
        echo "setup: no APT source names bookworm; cannot tell which mirror to take $suite from" >&2
        exit 1
      fi
      keyring=$(release_keyring "$mirror")
      echo "setup: adding $suite from $mirror (for QEMU 10)"
      {
        echo "# Added by tgvm's scripts/setup.sh: QEMU 10 for Debian 12."
        echo "Types: deb"
        echo "URIs: $mirror"
        echo "Suites: $suite"
        echo "Components: main"
        [ -z "$keyring" ] || echo "Signed-By: $keyring"
      } | $SUDO tee /etc/apt/sources.list.d/tgvm-backports.sources >/dev/null
    fi
    echo "setup: installing qemu-system-x86 from $suite"
    $SUDO apt-get update -qq
    # -t, not pkg/suite: the latter takes only the named package from
    # backports and its dependencies (qemu-system-common, seabios ...) from
    # bookworm, which apt cannot resolve.
    $SUDO apt-get install -y -qq --no-install-recommends -t "$suite" qemu-system-x86 >/dev/null
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
