# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# What the machine's APT sources say, for scripts/setup.sh and
# scripts/check-fresh.sh (source it; bash). Reads one-line sources.list
# entries and deb822 *.sources stanzas the way APT does (sources.list, then
# sources.list.d/ in name order; comments, disabled stanzas, [options] and
# continuation lines), so that a source we add goes through the same mirror
# (a local mirror or a proxy) with the same key. $TGVM_APT_DIR replaces
# /etc/apt (tests point it at a directory of sample files).

# apt_sources: one line per enabled entry and suite, tab-separated:
# TYPE URI SUITE SIGNED-BY FILE, where SIGNED-BY is "-" when the entry names no
# key file or fingerprint (no Signed-By, or a key written inline).
apt_sources() {
	local dir=${TGVM_APT_DIR:-/etc/apt} f
	local files=()
	[ -f "$dir/sources.list" ] && files+=("$dir/sources.list")
	for f in "$dir"/sources.list.d/*; do
		case "$f" in
		*.list | *.sources) [ -f "$f" ] && files+=("$f") ;;
		esac
	done
	[ ${#files[@]} -gt 0 ] || return 0
	for f in "${files[@]}"; do
		case "$f" in
		*.sources) _apt_sources_deb822 "$f" ;;
		*) _apt_sources_oneline "$f" ;;
		esac
	done
}

# deb TYPE [ opt=v opt=v ] URI SUITE COMPONENT... (options may touch the brackets).
_apt_sources_oneline() {
	awk -v file="$1" '
	{ sub(/#.*/, "") }
	NF < 3 || ($1 != "deb" && $1 != "deb-src") { next }
	{
		type = $1; key = "-"; i = 2
		if ($i ~ /^\[/) {
			opts = ""
			for (; i <= NF; i++) {
				opts = opts " " $i
				if ($i ~ /\]$/) { i++; break }
			}
			gsub(/[][]/, " ", opts)
			n = split(opts, o, " ")
			for (j = 1; j <= n; j++)
				if (tolower(o[j]) ~ /^signed-by=/) key = substr(o[j], 11)
		}
		if (i + 1 > NF) next
		printf "%s\t%s\t%s\t%s\t%s\n", type, $i, $(i + 1), key, file
	}' "$1"
}

# Stanzas separated by blank lines; "Field: value", continued on lines that
# start with a blank; "#" lines are comments, also inside a stanza.
_apt_sources_deb822() {
	awk -v file="$1" '
	function flush(   t, u, s, nt, nu, ns, tt, uu, ss, key) {
		if (enabled && f["types"] != "" && f["uris"] != "" && f["suites"] != "") {
			key = "-"
			if (f["signed-by"] != "" && f["signed-by"] !~ /BEGIN PGP/) {
				split(f["signed-by"], kk, " "); key = kk[1]
			}
			nt = split(f["types"], tt, " ")
			nu = split(f["uris"], uu, " ")
			ns = split(f["suites"], ss, " ")
			for (t = 1; t <= nt; t++)
				for (u = 1; u <= nu; u++)
					for (s = 1; s <= ns; s++)
						printf "%s\t%s\t%s\t%s\t%s\n", tt[t], uu[u], ss[s], key, file
		}
		delete f; enabled = 1; last = ""
	}
	BEGIN { enabled = 1 }
	/^#/ { next }
	/^[ \t]*$/ { flush(); next }
	/^[ \t]/ { if (last != "") f[last] = f[last] " " $0; next }
	{
		name = tolower($0); sub(/:.*/, "", name)
		value = $0; sub(/^[^:]*:[ \t]*/, "", value)
		f[name] = value; last = name
		if (name == "enabled" && tolower(value) ~ /^no/) enabled = 0
	}
	END { flush() }' "$1"
}

# apt_release_source CODENAME: "URI SIGNED-BY" of the first enabled deb entry
# for the suite CODENAME (SIGNED-BY "-" as above); nothing when there is none.
apt_release_source() {
	apt_sources | awk -F '\t' -v want="$1" '!done && $1 == "deb" && $3 == want { print $2, $4; done = 1 }'
}

# apt_has_suite SUITE: whether an enabled deb entry names exactly SUITE.
apt_has_suite() {
	apt_sources | awk -F '\t' -v want="$1" '$1 == "deb" && $3 == want { hit = 1 } END { exit !hit }'
}
