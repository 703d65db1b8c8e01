// SPDX-License-Identifier: MIT
/*
 * The bundled guest: finding its kernel, initramfs and manifest in the cache,
 * composing the tgvm.* kernel command line its init reads, and reading its
 * result markers back from a serial console log. Building it is the job of
 * scripts/build-guest.sh, never of the library.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "tgvm/vm.h"
#include "util/util.h"

#define MANIFEST_MAX (64u * 1024)

#define HINT         "run 'make setup' or scripts/build-guest.sh"

static int path_join(char *buf, size_t size, const char *dir, const char *name)
{
	return snprintf(buf, size, "%s/%s", dir, name) >= (int)size ? -ENAMETOOLONG : 0;
}

/* A non-empty regular file, or -ENOENT with the user's next step. */
static int guest_file_check(const char *path, uint64_t *ret_size, struct tgvm_error *reterr)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return tgvm_error_set(
		    reterr, ENOENT, "bundled guest incomplete: cannot find '%s' (%s)", path, HINT);
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return tgvm_error_set(reterr, ENOENT,
		                      "bundled guest incomplete: '%s' is empty or not a file (%s)",
		                      path, HINT);
	if (ret_size)
		*ret_size = (uint64_t)st.st_size;
	return 0;
}

/* Copy a manifest string field, bounded, printable ASCII only. */
static int manifest_string(json_t *root, const char *key, char *buf, size_t size, const char *path,
                           struct tgvm_error *reterr)
{
	const char *v = json_string_value(json_object_get(root, key));
	size_t i, n;

	if (!v || !*v)
		return tgvm_error_set(reterr, EINVAL,
		                      "bundled guest manifest '%s' has no \"%s\" (run "
		                      "scripts/build-guest.sh --force)",
		                      path, key);
	n = strlen(v);
	if (n >= size)
		return tgvm_error_set(
		    reterr, EINVAL, "bundled guest manifest '%s': \"%s\" is longer than %zu bytes",
		    path, key, size - 1);
	for (i = 0; i < n; i++)
		if (v[i] < 0x21 || v[i] > 0x7e)
			return tgvm_error_set(reterr, EINVAL,
			                      "bundled guest manifest '%s': \"%s\" holds a "
			                      "non-printable character",
			                      path, key);
	memcpy(buf, v, n + 1);
	return 0;
}

int tgvm_guest_locate(struct tgvm_guest *ret, struct tgvm_error *reterr)
{
	struct tgvm_guest g;
	char cache[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	json_error_t jerr;
	json_t *root = NULL;
	struct stat st;
	int r;

	memset(&g, 0, sizeof(g));
	r = tgvm_cache_dir(cache, sizeof(cache));
	if (r < 0)
		return tgvm_error_set(reterr, -r, "the cache directory path is too long");
	if (path_join(g.dir, sizeof(g.dir), cache, "guest") < 0 ||
	    path_join(g.kernel, sizeof(g.kernel), g.dir, "vmlinuz") < 0 ||
	    path_join(g.initrd, sizeof(g.initrd), g.dir, "initramfs.img") < 0 ||
	    path_join(g.manifest, sizeof(g.manifest), g.dir, "manifest.json") < 0)
		return tgvm_error_set(reterr, ENAMETOOLONG, "the guest path under '%s' is too long",
		                      cache);

	if (stat(g.dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return tgvm_error_set(
		    reterr, ENOENT, "bundled guest not built: no directory '%s' (%s)", g.dir, HINT);
	/* The build writes the manifest last: without it the files may be stale. */
	r = guest_file_check(g.manifest, NULL, reterr);
	if (r < 0)
		return r;
	r = guest_file_check(g.kernel, NULL, reterr);
	if (r < 0)
		return r;
	r = guest_file_check(g.initrd, &g.initramfs_bytes, reterr);
	if (r < 0)
		return r;

	r = tgvm_file_read(g.manifest, MANIFEST_MAX, &text, &len, reterr);
	if (r < 0)
		goto out;
	root = json_loadb(text, len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		r = tgvm_error_set(reterr, EINVAL,
		                   "bundled guest manifest '%s' is malformed: %s at line %d column "
		                   "%d (run scripts/build-guest.sh --force)",
		                   g.manifest, root ? "not an object" : jerr.text,
		                   root ? 1 : jerr.line, root ? 1 : jerr.column);
		goto out;
	}
	r = manifest_string(root, "kernel_version", g.kernel_version, sizeof(g.kernel_version),
	                    g.manifest, reterr);
	if (r < 0)
		goto out;
	r = manifest_string(root, "source_hash", g.source_hash, sizeof(g.source_hash), g.manifest,
	                    reterr);
	if (r < 0)
		goto out;
	*ret = g;
	r = 0;
out:
	json_decref(root);
	free(text);
	return r;
}

static void base64_append(struct tgvm_buf *b, const unsigned char *p, size_t n, int *r)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];
	size_t i;

	for (i = 0; i < n && *r == 0; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? tab[v & 63] : '=';
		*r = tgvm_buf_append(b, q, 4);
	}
}

/* A value placed after key= must be one kernel word. */
static int check_word(const char *key, const char *v, struct tgvm_error *reterr)
{
	const char *p;

	if (!*v)
		return tgvm_error_set(reterr, EINVAL, "empty value for guest parameter '%s'", key);
	for (p = v; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == '"' || *p == 0x7f)
			return tgvm_error_set(reterr, EINVAL,
			                      "guest parameter %s='%s' may not contain spaces, "
			                      "quotes or control characters",
			                      key, v);
	return 0;
}

int tgvm_guest_cmdline(const struct tgvm_guest_args *args, char **ret_cmdline,
                       struct tgvm_error *reterr)
{
	static const struct tgvm_guest_args none;
	const struct tgvm_guest_args *a = args ? args : &none;
	const struct {
		const char *key;
		const char *value;
	} words[] = {
	    {"tgvm.ip", a->ip},
	    {"tgvm.gw", a->gateway},
	    {"tgvm.workload", a->workload},
	};
	struct tgvm_buf b;
	size_t i;
	int r = 0;

	tgvm_buf_init(&b);
	for (i = 0; i < ARRAY_SIZE(words); i++) {
		if (!words[i].value)
			continue;
		r = check_word(words[i].key, words[i].value, reterr);
		if (r < 0)
			goto out;
	}
	r = tgvm_buf_append(&b, TGVM_GUEST_BASE_APPEND, strlen(TGVM_GUEST_BASE_APPEND));
	for (i = 0; i < ARRAY_SIZE(words) && r == 0; i++)
		if (words[i].value)
			r = tgvm_buf_printf(&b, " %s=%s", words[i].key, words[i].value);
	if (r == 0 && a->poweroff)
		r = tgvm_buf_printf(&b, " tgvm.poweroff=1");
	if (r == 0 && a->run && *a->run) {
		r = tgvm_buf_printf(&b, " tgvm.run64=");
		base64_append(&b, (const unsigned char *)a->run, strlen(a->run), &r);
	}
	if (r == 0 && a->extra && *a->extra)
		r = tgvm_buf_printf(&b, " %s", a->extra);
	if (r < 0) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory building the guest command line");
		goto out;
	}
	if (b.len >= TGVM_GUEST_CMDLINE_MAX) {
		r = tgvm_error_set(reterr, E2BIG,
		                   "guest kernel command line is %zu bytes, the kernel takes at "
		                   "most %d (shorten the command)",
		                   b.len, TGVM_GUEST_CMDLINE_MAX - 1);
		goto out;
	}
	*ret_cmdline = b.data;
	b.data = NULL;
out:
	tgvm_buf_release(&b);
	return r;
}

/*
 * Call @fn on each line of @log that starts with @marker, with the text after
 * it and its length (line end and '\r' excluded). Stops when @fn returns
 * nonzero; returns the last value @fn returned, 0 when none matched.
 */
static int each_marker_line(const char *log, size_t len, const char *marker,
                            int (*fn)(const char *rest, size_t n, void *ud), void *ud)
{
	size_t mlen = strlen(marker), pos = 0;
	int found = 0;

	while (pos < len) {
		const char *line = log + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;

		pos += n + (nl ? 1 : 0);
		while (n > 0 && line[n - 1] == '\r')
			n--;
		if (n >= mlen && memcmp(line, marker, mlen) == 0) {
			int r = fn(line + mlen, n - mlen, ud);

			if (r > 0)
				found = r;
		}
	}
	return found;
}

/* A decimal number at the start of @p (at most @n bytes), up to a space. */
static int leading_u64(const char *p, size_t n, uint64_t *ret)
{
	char tmp[24];
	size_t i = 0;

	while (i < n && i < sizeof(tmp) - 1 && p[i] >= '0' && p[i] <= '9') {
		tmp[i] = p[i];
		i++;
	}
	if (i == 0 || (i < n && p[i] != ' '))
		return -EINVAL;
	tmp[i] = '\0';
	return tgvm_parse_u64(tmp, ret);
}

static int on_result(const char *rest, size_t n, void *ud)
{
	uint64_t v;

	if (leading_u64(rest, n, &v) < 0 || v > 255)
		return 0;
	*(int *)ud = (int)v;
	return 1;
}

int tgvm_guest_parse_result(const char *log, size_t len, int *ret_rc)
{
	int rc = 0;

	if (!log)
		return 0;
	if (each_marker_line(log, len, TGVM_GUEST_RESULT_MARKER, on_result, &rc) != 1)
		return 0;
	*ret_rc = rc;
	return 1;
}

static int on_ready(const char *rest, size_t n, void *ud)
{
	if (n < 4 || memcmp(rest, " ms=", 4) != 0)
		return 0;
	return leading_u64(rest + 4, n - 4, ud) == 0 ? 1 : 0;
}

int tgvm_guest_parse_ready(const char *log, size_t len, uint64_t *ret_ms)
{
	uint64_t ms = 0;

	if (!log)
		return 0;
	if (each_marker_line(log, len, TGVM_GUEST_READY_MARKER, on_ready, &ms) != 1)
		return 0;
	*ret_ms = ms;
	return 1;
}
