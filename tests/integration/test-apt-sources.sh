#!/usr/bin/env bash
# scripts/apt-sources.sh: which mirror and key the machine's APT sources give
# for a release, and whether a suite is configured, from one-line sources.list
# and deb822 *.sources files as APT reads them (setup.sh adds bookworm-backports
# through that mirror; check-fresh bootstraps from it).
source "$(dirname "$0")/common.sh"
set -e
source "$TGVM_SRC/scripts/apt-sources.sh"
export TGVM_APT_DIR=$TMP/apt

fresh() { rm -rf "$TGVM_APT_DIR" && mkdir -p "$TGVM_APT_DIR/sources.list.d"; }
expect_source() {
	local got
	got=$(apt_release_source "$1")
	[ "$got" = "$2" ] || fail "release source of $1: expected '$2', got '$got'"
	ok
}
expect_suite() {
	if apt_has_suite "$1"; then
		[ "$2" = yes ] || fail "suite $1 should not count as configured"
	else
		[ "$2" = no ] || fail "suite $1 should count as configured"
	fi
	ok
}

# Nothing configured.
fresh
expect_source bookworm ""
expect_suite bookworm no

# One-line: a CD-ROM entry, comments, options with a key, deb-src lines.
fresh
cat >"$TGVM_APT_DIR/sources.list" <<'EOF'
# deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1]/ bookworm main
deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1]/ bookworm contrib

#deb http://commented.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/local.gpg] http://mirror.example/debian/ bookworm main non-free-firmware # local mirror
deb-src http://mirror.example/debian bookworm-backports main
deb http://mirror.example/debian-security bookworm-security main
EOF
expect_source bookworm "http://mirror.example/debian/ /usr/share/keyrings/local.gpg"
expect_suite bookworm-backports no
expect_suite bookworm-security yes

# Options written with blanks inside the brackets; no key.
fresh
echo 'deb [ arch=amd64 ] http://mirror.example/debian bookworm main' >"$TGVM_APT_DIR/sources.list"
expect_source bookworm "http://mirror.example/debian -"

# A backports entry the machine already has counts; a longer suite that
# starts with the same name does not.
fresh
printf 'deb http://mirror.example/debian bookworm main\ndeb http://mirror.example/debian bookworm-backports-sloppy main\n' \
	>"$TGVM_APT_DIR/sources.list"
expect_suite bookworm-backports no
echo 'deb http://mirror.example/debian bookworm-backports main' >"$TGVM_APT_DIR/sources.list.d/bp.list"
expect_suite bookworm-backports yes

# deb822: a disabled stanza first, a comment inside a stanza, field names in
# any case, several suites, URIs continued on the next line, an inline key.
fresh
cat >"$TGVM_APT_DIR/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

types: deb deb-src
# http://snapshot.debian.org/archive/debian/20250520T000000Z
uris:
 http://mirror.example/debian
 http://second.example/debian
suites: bookworm bookworm-updates
components: main
signed-by: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://inline.example/debian
Suites: trixie
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZ0000000000000000000000000000000000000000000000000000000000000
 -----END PGP PUBLIC KEY BLOCK-----
EOF
expect_source bookworm "http://mirror.example/debian /usr/share/keyrings/debian-archive-keyring.gpg"
expect_source trixie "http://inline.example/debian -"
expect_suite bookworm-updates yes
expect_suite bookworm-backports no

# sources.list comes before sources.list.d/, whose files go in name order;
# other extensions (a disabled file) are not read.
echo 'deb http://first.example/debian bookworm main' >"$TGVM_APT_DIR/sources.list"
echo 'deb http://off.example/debian bookworm-backports main' \
	>"$TGVM_APT_DIR/sources.list.d/a.list.disabled"
expect_source bookworm "http://first.example/debian -"
expect_suite bookworm-backports no

echo "$checks checks"
