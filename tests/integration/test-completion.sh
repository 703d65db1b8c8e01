#!/usr/bin/env bash
# Bash completion as a user gets it: completion/tgvm.bash driven through
# COMP_WORDS/COMP_CWORD and compgen. Verbs, sub-verbs and each verb's options
# come from the binary (and agree with what the verb accepts), host and VM
# names from the state directory, files where an option takes one.
source "$(dirname "$0")/lib.sh"
tgvm_locate
SRC=$(cd "$(dirname "$0")/../.." && pwd)

TEST_TMP=${TEST_TMP:-$(mktemp -d)}
export TGVM_STATE_DIR=$TEST_TMP/state
mkdir -p "$TGVM_STATE_DIR/hosts" "$TGVM_STATE_DIR/vms/web1" "$TGVM_STATE_DIR/vms/db2"
echo '{}' >"$TGVM_STATE_DIR/hosts/haswell.json"
echo '{}' >"$TGVM_STATE_DIR/hosts/rome.json"

# The completion calls "tgvm": put the binary under test first on the PATH.
mkdir -p "$TEST_TMP/bin"
ln -sf "$TGVM" "$TEST_TMP/bin/tgvm"
PATH=$TEST_TMP/bin:$PATH
set +u
source "$SRC/completion/tgvm.bash"
complete -p tgvm | grep -q _tgvm || fail "the script does not register _tgvm for tgvm"

# comp "WORDS..." -> COMPREPLY for the last word, space-separated and sorted
comp() {
	read -r -a COMP_WORDS <<<"$1"
	[[ "$1" == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_tgvm tgvm "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
has() { # has "WORDS" WORD...
	local got w
	got=" $(comp "$1")"
	shift
	for w in "$@"; do
		[[ "$got" == *" $w "* ]] || fail "completing '$CASE' lacks '$w' (got:$got)"
	done
}
lacks() {
	local got w
	got=" $(comp "$1")"
	shift
	for w in "$@"; do
		[[ "$got" != *" $w "* ]] || fail "completing '$CASE' offers '$w' (got:$got)"
	done
}

CASE="tgvm "; has "tgvm " model host fleet scan probe vm migrate help version
CASE="tgvm mi"; [ "$(comp "tgvm mi")" = "migrate " ] || fail "'tgvm mi' should complete to migrate"
CASE="tgvm vm "; has "tgvm vm " start list stop console ping
CASE="tgvm host "; has "tgvm host " models show detect up down
CASE="tgvm fleet --"; has "tgvm fleet --" --inventory --vms --heatmap --cross-vendor --first-host --allow-incomplete --json
CASE="tgvm model --"; has "tgvm model --" --need --report --vendor --accel --inventory --format
CASE="tgvm vm start web --"; has "tgvm vm start web --" --host --mem --model --memdev --dry-run
lacks "tgvm vm start web --" --to --heatmap
CASE="tgvm migrate web1 --"; has "tgvm migrate web1 --" --to --mode --svg --stream-buffer
CASE="tgvm scan --"; has "tgvm scan --" --json --explain --per-program --hwcaps
CASE="tgvm host models --"; has "tgvm host models --" --json --all --vendor

# Every option offered is one the verb accepts (not "unrecognized").
for words in "fleet" "model" "scan" "probe" "migrate" "vm start" "host models" "host detect"; do
	for o in $("$TGVM" __complete options $words); do
		if "$TGVM" $words "$o" </dev/null 2>&1 | grep -q "unrecognized option"; then
			fail "'tgvm $words' refuses '$o', which completion offers"
		fi
	done
done
# A verb that parses no options is never run by the completion.
[ -z "$("$TGVM" __complete options vm stop)" ] || fail "options asked of 'vm stop'"

# Host and VM names from the state directory.
CASE="tgvm migrate web1 --to "; has "tgvm migrate web1 --to " haswell rome
CASE="tgvm vm start x --host r"; [ "$(comp "tgvm vm start x --host r")" = "rome " ] || fail "--host r"
CASE="tgvm vm stop "; has "tgvm vm stop " web1 db2
CASE="tgvm migrate "; has "tgvm migrate " web1 db2 status cancel
CASE="tgvm migrate status "; has "tgvm migrate status " web1 db2
lacks "tgvm vm stop " haswell

# Files where an option or a verb takes one.
mkdir -p "$TEST_TMP/files" && : >"$TEST_TMP/files/inv.json" && : >"$TEST_TMP/files/image.img"
CASE="fleet --inventory"; has "tgvm fleet --inventory $TEST_TMP/files/in" "$TEST_TMP/files/inv.json"
CASE="scan FILE"; has "tgvm scan $TEST_TMP/files/ima" "$TEST_TMP/files/image.img"
CASE="model --vendor"; has "tgvm model --vendor " intel amd
CASE="help"; has "tgvm help " fleet migrate
echo "ok: completion of verbs, sub-verbs, options, hosts, VMs and files"
