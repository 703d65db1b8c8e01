#!/usr/bin/env bash
# meson install into a DESTDIR: the binary, every man page (as roff), the bash
# completion where bash-completion loads it by name, the guest programs with
# the script that builds the guest, and the examples; the installed tgvm
# finds its pages and its default inventory, and the completion loads.
source "$(dirname "$0")/lib.sh"
tgvm_locate
SRC=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$(dirname "$TGVM")" && pwd)
TEST_TMP=${TEST_TMP:-$(mktemp -d)}
D=$TEST_TMP/root
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
	'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
meson install -C "$build" --no-rebuild --destdir "$D" >"$TEST_TMP/install.log" 2>&1 ||
	{ cat "$TEST_TMP/install.log"; fail "meson install failed"; }
P=$D$prefix

[ -x "$P/bin/tgvm" ] || fail "no $prefix/bin/tgvm"
for scd in "$SRC"/docs/man/*.scd; do
	page=$(basename "$scd" .scd)
	f=$P/share/man/man1/$page
	[ -s "$f" ] || fail "man page $page not installed"
	head -c 2000 "$f" | grep -q '^\.TH' || fail "$page is not roff (no .TH)"
done
comp=$(find "$D" -path '*/bash-completion/completions/tgvm' -type f)
[ -n "$comp" ] || fail "no completion file named tgvm in a bash-completion completions dir"
for f in examples/fleet.json examples/vms.json examples/lab.json guest/init scripts/build-guest.sh; do
	[ -s "$P/share/tgvm/$f" ] || fail "$f not installed under $prefix/share/tgvm"
done
for c in "$SRC"/guest/*.c; do
	[ -s "$P/share/tgvm/guest/$(basename "$c")" ] || fail "guest program $(basename "$c") not installed"
done
[ -x "$P/share/tgvm/scripts/build-guest.sh" ] || fail "build-guest.sh not executable"

# The installed tgvm, away from the source tree: its pages and its default inventory.
cd "$TEST_TMP"
TGVM_DATA_DIR=$P/share/tgvm "$P/bin/tgvm" help fleet >"$TEST_TMP/help.txt" || fail "tgvm help fleet failed"
grep -q -- "--heatmap" "$TEST_TMP/help.txt" || fail "installed 'tgvm help fleet' lacks the page"
if command -v man >/dev/null; then
	MANWIDTH=80 man -l "$P/share/man/man1/tgvm-fleet.1" 2>/dev/null | grep -q "tgvm-fleet" ||
		fail "man -l cannot show the installed tgvm-fleet.1"
fi
TGVM_DATA_DIR=$P/share/tgvm "$P/bin/tgvm" fleet --vm a=avx2 >"$TEST_TMP/fleet.txt" ||
	fail "installed tgvm fleet without --inventory failed"
grep -q "machines in" "$TEST_TMP/fleet.txt" || fail "installed tgvm fleet printed no table"

# The completion as bash-completion loads it: by the command's name.
PATH=$P/bin:$PATH bash -c "source '$comp'; complete -p tgvm" | grep -q _tgvm ||
	fail "the installed completion does not register for tgvm"
echo "ok: installed into $D$prefix"
