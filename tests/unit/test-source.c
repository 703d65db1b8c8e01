// SPDX-License-Identifier: MIT
/*
 * Unit tests of the file sources (src/scan/source*.c, ldpath.c). The test
 * builds its inputs at run time in a temporary directory: a small guest root
 * with symlinks and shared libraries compiled by gcc, cpio archives of it in
 * every format and compression, ext4 images bare and inside MBR/GPT tables,
 * and corrupt variants of each.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <ext2fs/ext2fs.h>
#include <cmocka.h>

#include "scan/source-int.h"

static char tmp[256];  /* everything the test makes lives here */
static char root[320]; /* the fake guest root */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;
	int n, st;

	n = snprintf(cmd, sizeof(cmd), "set -e; export PATH=$PATH:/usr/sbin:/sbin LC_ALL=C; ");
	va_start(ap, fmt);
	vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st != 0)
		fprintf(stderr, "command failed (%d): %s\n", st, cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void put(const char *rel, const char *content)
{
	char path[1024];
	FILE *f;

	assert_int_equal(sh("mkdir -p \"$(dirname '%s/%s')\"", root, rel), 0);
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

/* ---- walking and reading helpers ---- */

struct rec {
	struct tgvm_strv paths;
	struct tgvm_strv errors;
	struct scan_fs_id ids[64]; /* of the first 64 paths */
};

static int rec_cb(struct scan_fs *fs, const char *path, uint64_t size, const struct scan_fs_id *id,
                  void *ud)
{
	struct rec *r = ud;

	(void)fs;
	(void)size;
	if (r->paths.n < ARRAY_SIZE(r->ids))
		r->ids[r->paths.n] = *id;
	return tgvm_strv_push(&r->paths, path);
}

static void rec_err(const char *path, const struct tgvm_error *err, void *ud)
{
	struct rec *r = ud;

	tgvm_strv_pushf(&r->errors, "%s: %s", path, err->msg);
}

static void rec_walk(struct scan_fs *fs, struct rec *r)
{
	struct tgvm_error err = {0};

	tgvm_strv_init(&r->paths);
	tgvm_strv_init(&r->errors);
	assert_int_equal(scan_fs_walk(fs, rec_cb, rec_err, r, &err), 0);
}

static void rec_release(struct rec *r)
{
	tgvm_strv_release(&r->paths);
	tgvm_strv_release(&r->errors);
}

static bool errors_match(const struct rec *r, const char *needle)
{
	for (size_t i = 0; i < r->errors.n; i++)
		if (strstr(r->errors.v[i], needle))
			return true;
	return false;
}

static void dump_errors(const struct rec *r)
{
	for (size_t i = 0; i < r->errors.n; i++)
		fprintf(stderr, "  error: %s\n", r->errors.v[i]);
}

/* Contents of @path as a string, or NULL with the error code in *ret_code. */
static char *slurp(struct scan_fs *fs, const char *path, int *ret_code)
{
	struct scan_blob b;
	struct tgvm_error err = {0};
	char *s;
	int r = scan_fs_read(fs, path, &b, &err);

	*ret_code = r;
	if (r < 0)
		return NULL;
	s = malloc(b.size + 1);
	assert_non_null(s);
	memcpy(s, b.data, b.size);
	s[b.size] = '\0';
	scan_blob_release(&b);
	return s;
}

static void assert_content(struct scan_fs *fs, const char *path, const char *want)
{
	int code;
	char *s = slurp(fs, path, &code);

	if (!s)
		fail_msg("reading '%s' failed: %s", path, strerror(-code));
	if (strcmp(s, want))
		fail_msg("'%s' holds '%s', want '%s'", path, s, want);
	free(s);
}

static void assert_read_fails(struct scan_fs *fs, const char *path, int code)
{
	int got;
	char *s = slurp(fs, path, &got);

	if (s)
		fail_msg("reading '%s' gave '%s', want error %d", path, s, code);
	assert_int_equal(got, -code);
}

static struct scan_fs *open_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct scan_fs *open_ok(const char *fmt, ...)
{
	char path[1024];
	struct scan_fs *fs = NULL;
	struct tgvm_error err = {0};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (scan_fs_open(path, &fs, &err) < 0)
		fail_msg("open '%s': %s", path, err.msg);
	return fs;
}

/* ---- the fixture ---- */

static const char *const lib_src = "int %s(void) { return %d; }\n";

static void build_lib(const char *out, const char *soname, const char *sym, int val,
                      const char *extra)
{
	char src[1024];
	FILE *f;

	snprintf(src, sizeof(src), "%s/src-%s.c", tmp, sym);
	f = fopen(src, "w");
	assert_non_null(f);
	fprintf(f, lib_src, sym, val);
	fclose(f);
	assert_int_equal(sh("gcc -shared -fPIC -nostdlib -Wl,--no-as-needed -Wl,-soname,%s "
	                    "-o '%s' '%s' %s",
	                    soname, out, src, extra ? extra : ""),
	                 0);
}

/* Patch e_machine of an ELF file (a copy that ld.so must skip). */
static void set_machine(const char *path, uint16_t machine)
{
	int fd = open(path, O_WRONLY);
	uint8_t m[2] = {(uint8_t)machine, (uint8_t)(machine >> 8)};

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, m, 2, 18), 2);
	close(fd);
}

static int setup(void **state)
{
	const char *b;
	char L[512];

	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/tgvm-test-source-XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	snprintf(root, sizeof(root), "%s/root", tmp);
	b = tmp;

	/* Plain files and symlinks of every kind. */
	put("usr/bin/hello", "hello\n");
	put("usr/share/data.txt", "data");
	put("etc/secret", "inside");
	put("empty", "");
	put("usr/share/"
	    "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/f",
	    "far");
	if (sh("echo outside > %s/secret-outside; cd %s;"
	       "ln -s usr/bin bin; ln -s usr/lib lib; ln -s usr/lib64 lib64;"
	       "ln -s /usr/bin/hello usr/bin/sh;"
	       "ln -s ../share/data.txt usr/bin/rel;"
	       "ln -s ../../../../../../secret-outside usr/share/escape;"
	       "ln -s /../../secret-outside usr/share/abs-escape;"
	       "ln -s loop2 loop1; ln -s loop1 loop2;"
	       "ln -s /usr/bin usr/share/dirlink;"
	       "ln -s /usr/share/"
	       "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/f "
	       "usr/share/longlink;"
	       "ln -s /usr/share/data.txt usr/share/hop1; ln -s hop1 usr/share/hop2;"
	       "mkfifo usr/share/fifo",
	       b, root))
		return -1;

	/* ld.so.conf with a glob include and a relative include. */
	put("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n");
	put("etc/ld.so.conf.d/a.conf", "/opt/a/lib\n");
	put("etc/ld.so.conf.d/b.conf", "# libraries of b\ninclude ../extra.conf\n");
	put("etc/ld.so.conf.d/ignored.txt", "/opt/wrong\n");
	put("etc/extra.conf", "/opt/b/lib   # trailing comment\n");

	/* Libraries. */
	if (sh("mkdir -p %s/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3 %s/usr/lib64 "
	       "%s/opt/a/lib %s/opt/b/lib %s/opt/wrong %s/app/bin %s/app/lib %s/build",
	       root, root, root, root, root, root, root, tmp))
		return -1;
	snprintf(L, sizeof(L), "%s/usr/lib/x86_64-linux-gnu", root);
	{
		char p[1024], q[1024];

		snprintf(p, sizeof(p), "%s/libbase.so.1.0", L);
		build_lib(p, "libbase.so.1", "base", 1, NULL);
		snprintf(p, sizeof(p), "%s/glibc-hwcaps/x86-64-v3/libbase.so.1", L);
		build_lib(p, "libbase.so.1", "base_v3", 3, NULL);
		snprintf(p, sizeof(p), "%s/opt/a/lib/libbase.so.1", root);
		build_lib(p, "libbase.so.1", "base_arm", 9, NULL);
		set_machine(p, 183 /* EM_AARCH64 */);
		snprintf(p, sizeof(p), "%s/opt/a/lib/libconf.so", root);
		build_lib(p, "libconf.so", "conf", 2, NULL);
		snprintf(p, sizeof(p), "%s/opt/b/lib/libconf2.so", root);
		build_lib(p, "libconf2.so", "conf2", 4, NULL);
		snprintf(p, sizeof(p), "%s/opt/wrong/libwrong.so", root);
		build_lib(p, "libwrong.so", "wrong", 5, NULL);
		snprintf(p, sizeof(p), "%s/build/libnothere.so", tmp);
		build_lib(p, "libnothere.so", "nothere", 6, NULL);
		snprintf(p, sizeof(p), "%s/app/lib/libdeep.so", root);
		build_lib(p, "libdeep.so", "deep", 7, NULL);
		snprintf(q, sizeof(q), "'%s/app/lib/libdeep.so'", root);
		snprintf(p, sizeof(p), "%s/app/lib/libapp.so", root);
		build_lib(p, "libapp.so", "app", 8, q);
		snprintf(p, sizeof(p), "%s/usr/lib64/ld-linux-x86-64.so.2", root);
		build_lib(p, "ld-linux-x86-64.so.2", "ldso", 0, NULL);
	}
	if (sh("cd %s && ln -s libbase.so.1.0 libbase.so.1 && cd %s/build && "
	       "echo 'void _start(void) {}' > prog.c && "
	       "gcc -nostdlib -Wl,--no-as-needed "
	       "-Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2 -o %s/usr/bin/prog prog.c "
	       "%s/libbase.so.1.0 %s/opt/a/lib/libconf.so %s/opt/b/lib/libconf2.so "
	       "libnothere.so && "
	       "gcc -nostdlib -Wl,--no-as-needed -Wl,--enable-new-dtags "
	       "-Wl,-rpath,'$ORIGIN/../lib' -o %s/app/bin/prog prog.c %s/app/lib/libapp.so && "
	       "gcc -nostdlib -Wl,--no-as-needed -Wl,--disable-new-dtags "
	       "-Wl,-rpath,'$ORIGIN/../lib' -o %s/app/bin/prog-rpath prog.c "
	       "%s/app/lib/libapp.so",
	       L, tmp, root, L, root, root, root, root, root, root))
		return -1;

	/* cpio archives in both formats and every compression. */
	if (sh("cd %s && find . | sort > %s/list && "
	       "cpio -o -H newc --quiet < %s/list > %s/newc.cpio && "
	       "cpio -o -H crc --quiet < %s/list > %s/crc.cpio && "
	       "gzip -9 -c %s/newc.cpio > %s/newc.cpio.gz && "
	       "xz --check=crc32 -c %s/newc.cpio > %s/newc.cpio.xz && "
	       "zstd -q -19 -c %s/newc.cpio > %s/newc.cpio.zst && "
	       "gzip -c %s/crc.cpio > %s/crc.cpio.gz",
	       root, b, b, b, b, b, b, b, b, b, b, b, b, b))
		return -1;

	/* ext4 images: plain, with inline data, and inside MBR and GPT tables. */
	if (sh("mke2fs -q -F -t ext4 -L tgvm -d %s %s/fs.img 8M >/dev/null && "
	       "mke2fs -q -F -t ext4 -O inline_data -d %s %s/inline.img 8M >/dev/null",
	       root, b, root, b))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (tmp[0] && strncmp(tmp, "/tmp/tgvm-test-source-", 22) == 0)
		sh("rm -rf '%s'", tmp);
	return 0;
}

/* ---- directories ---- */

static const char *const expected_files[] = {
    "/app/bin/prog",
    "/app/bin/prog-rpath",
    "/app/lib/libapp.so",
    "/app/lib/libdeep.so",
    "/empty",
    "/etc/extra.conf",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d/a.conf",
    "/etc/ld.so.conf.d/b.conf",
    "/etc/ld.so.conf.d/ignored.txt",
    "/etc/secret",
    "/opt/a/lib/libbase.so.1",
    "/opt/a/lib/libconf.so",
    "/opt/b/lib/libconf2.so",
    "/opt/wrong/libwrong.so",
    "/usr/bin/hello",
    "/usr/bin/prog",
    "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libbase.so.1",
    "/usr/lib/x86_64-linux-gnu/libbase.so.1.0",
    "/usr/lib64/ld-linux-x86-64.so.2",
    "/usr/share/data.txt",
    "/usr/share/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/f",
};

static void assert_expected_walk(const struct rec *r)
{
	if (r->paths.n != ARRAY_SIZE(expected_files)) {
		for (size_t i = 0; i < r->paths.n; i++)
			fprintf(stderr, "  walked: %s\n", r->paths.v[i]);
		fail_msg("walked %zu files, want %zu", r->paths.n, ARRAY_SIZE(expected_files));
	}
	for (size_t i = 0; i < r->paths.n; i++)
		assert_string_equal(r->paths.v[i], expected_files[i]);
}

static void test_dir_walk(void **state)
{
	struct scan_fs *fs = open_ok("%s", root);
	struct rec r;

	(void)state;
	assert_int_equal(scan_fs_kind(fs), SCAN_FS_DIR);
	assert_string_equal(scan_fs_origin(fs), root);
	rec_walk(fs, &r);
	dump_errors(&r);
	assert_int_equal(r.errors.n, 0);
	/* Sorted, regular files only: no symlinks, no fifo, nothing through dirlink. */
	assert_expected_walk(&r);
	rec_release(&r);
	scan_fs_free(fs);
}

/* What every kind must agree on about symlinks inside the source. */
static void check_symlinks(struct scan_fs *fs)
{
	char res[SCAN_PATH_MAX];

	assert_content(fs, "/usr/bin/hello", "hello\n");
	assert_content(fs, "/bin/hello", "hello\n");  /* relative dir link */
	assert_content(fs, "/usr/bin/sh", "hello\n"); /* absolute link, re-rooted */
	assert_content(fs, "/bin/sh", "hello\n");     /* both */
	assert_content(fs, "/usr/bin/rel", "data");   /* relative with .. */
	assert_content(fs, "/usr/share/dirlink/hello", "hello\n");
	assert_content(fs, "/usr/share/hop2", "data");    /* chain */
	assert_content(fs, "/usr/share/longlink", "far"); /* slow symlink on ext4 */
	assert_content(fs, "usr/share/../bin/./hello", "hello\n");
	assert_content(fs, "/empty", "");
	/* Links that climb out of the root stop at it: the host file is not read. */
	assert_read_fails(fs, "/usr/share/escape", ENOENT);
	assert_read_fails(fs, "/usr/share/abs-escape", ENOENT);
	assert_read_fails(fs, "/../../secret-outside", ENOENT);
	assert_read_fails(fs, "/loop1", ELOOP);
	assert_read_fails(fs, "/nonexistent", ENOENT);
	assert_read_fails(fs, "/usr/bin/hello/x", ENOTDIR);
	assert_read_fails(fs, "/usr/bin", EISDIR);
	assert_true(scan_fs_exists(fs, "/lib/x86_64-linux-gnu/libbase.so.1", res, sizeof(res)));
	assert_string_equal(res, "/usr/lib/x86_64-linux-gnu/libbase.so.1.0");
	assert_false(scan_fs_exists(fs, "/usr/bin", NULL, 0));
	assert_false(scan_fs_exists(fs, "/loop2", NULL, 0));
	assert_false(scan_fs_exists(fs, "/usr/share/escape", NULL, 0));
}

static void test_dir_symlinks(void **state)
{
	struct scan_fs *fs = open_ok("%s", root);

	(void)state;
	check_symlinks(fs);
	/* A fifo is not a file; reading it must not hang either. */
	assert_read_fails(fs, "/usr/share/fifo", EINVAL);
	scan_fs_free(fs);
}

static void test_limits(void **state)
{
	static const char *const names[] = {"root", "newc.cpio.gz", "fs.img"};
	struct scan_fs_limits lim = {.files_max = 5};
	struct scan_fs *fs = NULL;
	struct tgvm_error err = {0};
	char path[512];
	struct rec r;

	(void)state;
	/* Entry counts are bounded in every kind, and the bound is named. */
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmp, names[i]);
		assert_int_equal(scan_fs_open_with(path, &lim, &fs, &err), 0);
		rec_walk(fs, &r);
		assert_true(r.paths.n <= 5);
		assert_true(errors_match(&r, "more than 5 entries"));
		rec_release(&r);
		scan_fs_free(fs);
	}
	/* Nesting is bounded too: 300 levels give an error, not a crash. */
	assert_int_equal(sh("cd %s && mkdir -p deep && cd deep && "
	                    "for i in $(seq 300); do mkdir d && cd d; done && echo x > f",
	                    tmp),
	                 0);
	fs = open_ok("%s/deep", tmp);
	rec_walk(fs, &r);
	assert_int_equal(r.paths.n, 0);
	assert_true(errors_match(&r, "too deep"));
	rec_release(&r);
	scan_fs_free(fs);
}

static void test_single_file(void **state)
{
	char path[512];
	struct scan_fs *fs;
	struct rec r;

	(void)state;
	snprintf(path, sizeof(path), "%s/usr/share/data.txt", root);
	fs = open_ok("%s", path);
	assert_int_equal(scan_fs_kind(fs), SCAN_FS_FILE);
	rec_walk(fs, &r);
	assert_int_equal(r.paths.n, 1);
	assert_string_equal(r.paths.v[0], path);
	assert_content(fs, path, "data");
	rec_release(&r);
	scan_fs_free(fs);
}

/* ---- cpio ---- */

static void check_same_as_dir(struct scan_fs *fs)
{
	struct rec r;

	rec_walk(fs, &r);
	dump_errors(&r);
	assert_int_equal(r.errors.n, 0);
	assert_expected_walk(&r);
	rec_release(&r);
	check_symlinks(fs);
}

static void test_cpio_formats(void **state)
{
	static const char *const names[] = {"newc.cpio",    "crc.cpio",      "newc.cpio.gz",
	                                    "newc.cpio.xz", "newc.cpio.zst", "crc.cpio.gz"};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct scan_fs *fs = open_ok("%s/%s", tmp, names[i]);

		assert_int_equal(scan_fs_kind(fs), SCAN_FS_CPIO);
		check_same_as_dir(fs);
		scan_fs_free(fs);
	}
}

static void test_cpio_concatenated(void **state)
{
	struct scan_fs *fs;
	struct rec r;

	(void)state;
	/* An early plain archive, zero padding, then compressed ones that override
	 * a file, the way distributions ship microcode before the main initramfs. */
	assert_int_equal(sh("cd %s && mkdir -p over/usr/bin && echo HELLO2 > over/usr/bin/hello "
	                    "&& echo extra > over/extra && "
	                    "(cd over && find . | sort | cpio -o -H newc --quiet) > over.cpio && "
	                    "(cat newc.cpio; head -c 512 /dev/zero; gzip -c over.cpio; "
	                    " xz -c over.cpio) > concat.img",
	                    tmp),
	                 0);
	fs = open_ok("%s/concat.img", tmp);
	assert_int_equal(scan_fs_kind(fs), SCAN_FS_CPIO);
	rec_walk(fs, &r);
	dump_errors(&r);
	assert_int_equal(r.errors.n, 0);
	assert_int_equal(r.paths.n, ARRAY_SIZE(expected_files) + 1);
	assert_content(fs, "/usr/bin/hello", "HELLO2\n");
	assert_content(fs, "/usr/bin/sh", "HELLO2\n");
	assert_content(fs, "/extra", "extra\n");
	assert_content(fs, "/usr/share/data.txt", "data");
	rec_release(&r);
	scan_fs_free(fs);
}

static void test_cpio_hardlinks(void **state)
{
	struct scan_fs *fs;
	struct rec r;

	(void)state;
	assert_int_equal(sh("cd %s && rm -rf hl && mkdir hl && echo linked > hl/a && ln hl/a hl/b "
	                    "&& ln hl/a hl/c && find hl | sort | cpio -o -H newc --quiet > hl.cpio",
	                    tmp),
	                 0);
	fs = open_ok("%s/hl.cpio", tmp);
	rec_walk(fs, &r);
	assert_int_equal(r.paths.n, 3);
	assert_content(fs, "/hl/a", "linked\n");
	assert_content(fs, "/hl/b", "linked\n");
	assert_content(fs, "/hl/c", "linked\n");
	rec_release(&r);
	scan_fs_free(fs);
}

/* The walk's identity of @path (which must be among the first walked). */
static struct scan_fs_id rec_id(const struct rec *r, const char *path)
{
	for (size_t i = 0; i < r->paths.n && i < ARRAY_SIZE(r->ids); i++)
		if (!strcmp(r->paths.v[i], path))
			return r->ids[i];
	fail_msg("'%s' not walked", path);
	return (struct scan_fs_id){0, 0};
}

static bool id_same(struct scan_fs_id a, struct scan_fs_id b)
{
	return a.ino && a.dev == b.dev && a.ino == b.ino;
}

/* Every kind tells the walker which names are one file (what the scan uses
 * to analyse a hard-linked file once) and never takes a copy for a link. */
static void test_hardlink_ids(void **state)
{
	static const char *const srcs[] = {"ids", "ids.cpio", "ids2.cpio", "ids.img"};

	(void)state;
	/* ids2.cpio: two archives, each with a group whose inode number is the
	 * same in both (numbers restart per archive) */
	assert_int_equal(
	    sh("cd %s && rm -rf ids && mkdir -p ids/d && echo linked > ids/a && "
	       "ln ids/a ids/b && ln ids/a ids/d/c && cp ids/a ids/copy && "
	       "echo other > ids/o && ln ids/o ids/p && "
	       "find ids | sort | cpio -o -H newc --quiet > ids.cpio && "
	       "mkdir -p ids2/x ids2/y && echo one > ids2/x/1 && ln ids2/x/1 ids2/x/2 && "
	       "echo two > ids2/y/1 && ln ids2/y/1 ids2/y/2 && "
	       "(cd ids2 && find x | sort | cpio -o -H newc --quiet --reproducible) "
	       "> ids2.cpio && (cd ids2 && find y | sort | cpio -o -H newc --quiet "
	       "--reproducible) >> ids2.cpio && "
	       "mke2fs -q -F -t ext4 -d ids ids.img 4M >/dev/null",
	       tmp),
	    0);
	for (size_t k = 0; k < ARRAY_SIZE(srcs); k++) {
		struct scan_fs *fs = open_ok("%s/%s", tmp, srcs[k]);
		struct rec r;

		rec_walk(fs, &r);
		if (k == 2) {
			assert_true(id_same(rec_id(&r, "/x/1"), rec_id(&r, "/x/2")));
			assert_true(id_same(rec_id(&r, "/y/1"), rec_id(&r, "/y/2")));
			assert_false(id_same(rec_id(&r, "/x/1"), rec_id(&r, "/y/1")));
			assert_content(fs, "/y/2", "two\n");
		} else {
			/* the directory and the image (mke2fs -d) hold ids' contents
			 * at their root, the archive holds ids/ */
			const char *pre = k == 1 ? "/ids" : "";
			char a[64], b[64], c[64], copy[64], o[64], p[64];

			snprintf(a, sizeof(a), "%s/a", pre);
			snprintf(b, sizeof(b), "%s/b", pre);
			snprintf(c, sizeof(c), "%s/d/c", pre);
			snprintf(copy, sizeof(copy), "%s/copy", pre);
			snprintf(o, sizeof(o), "%s/o", pre);
			snprintf(p, sizeof(p), "%s/p", pre);
			assert_true(id_same(rec_id(&r, a), rec_id(&r, b)));
			assert_true(id_same(rec_id(&r, a), rec_id(&r, c)));
			assert_true(id_same(rec_id(&r, o), rec_id(&r, p)));
			assert_false(id_same(rec_id(&r, a), rec_id(&r, copy)));
			assert_false(id_same(rec_id(&r, a), rec_id(&r, o)));
		}
		rec_release(&r);
		scan_fs_free(fs);
	}
}

/* Write @n bytes of @data to tmp/@name. */
static void write_tmp(const char *name, const void *data, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static uint8_t *load_tmp(const char *name, size_t *ret_n)
{
	char path[512];
	char *data = NULL;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	assert_int_equal(tgvm_file_read(path, 64 << 20, &data, &n, NULL), 0);
	*ret_n = n;
	return (uint8_t *)data;
}

/* Offset of the cpio header of the entry named @name in a newc archive. */
static size_t find_entry(const uint8_t *a, size_t n, const char *name)
{
	for (size_t i = 0; i + 110 < n; i++)
		if (!memcmp(a + i, "070701", 6) && !strcmp((const char *)a + i + 110, name))
			return i;
	fail_msg("no entry %s", name);
	return 0;
}

/* Open a corrupt archive: it must open (or fail cleanly), report @needle per
 * file, keep the entries before the damage, and never crash. */
static void expect_corrupt(const char *name, const char *needle, const char *survivor)
{
	char path[512];
	struct scan_fs *fs = NULL;
	struct tgvm_error err = {0};
	struct rec r;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	assert_int_equal(scan_fs_open(path, &fs, &err), 0);
	rec_walk(fs, &r);
	if (!errors_match(&r, needle)) {
		dump_errors(&r);
		fail_msg("%s: no error mentioning '%s'", name, needle);
	}
	/* Each message names the archive or the member. */
	for (size_t i = 0; i < r.errors.n; i++)
		assert_true(strstr(r.errors.v[i], name) != NULL);
	if (survivor)
		assert_true(tgvm_strv_contains(&r.paths, survivor));
	for (size_t i = 0; i < r.paths.n; i++) {
		struct scan_blob b;

		if (scan_fs_read(fs, r.paths.v[i], &b, &err) == 0)
			scan_blob_release(&b);
	}
	rec_release(&r);
	scan_fs_free(fs);
}

static void test_cpio_corrupt(void **state)
{
	size_t n, at;
	uint8_t *a = load_tmp("newc.cpio", &n), *c;
	size_t hello;

	(void)state;
	hello = find_entry(a, n, "usr/bin/hello");
	c = malloc(n);
	assert_non_null(c);

	/* Truncated inside a header. */
	write_tmp("trunc-hdr.cpio", a, hello + 50);
	expect_corrupt("trunc-hdr.cpio", "ends inside a cpio header", "/etc/secret");

	/* A name size of 2^31. */
	memcpy(c, a, n);
	memcpy(c + hello + 94, "80000000", 8);
	write_tmp("namesize.cpio", c, n);
	expect_corrupt("namesize.cpio", "name of 2147483648 bytes", "/etc/secret");

	/* A file size past the end. */
	memcpy(c, a, n);
	memcpy(c + hello + 54, "7fffffff", 8);
	write_tmp("filesize.cpio", c, n);
	expect_corrupt("filesize.cpio", "extend past the end", "/etc/secret");

	/* A header with a non-hex digit. */
	memcpy(c, a, n);
	c[hello + 20] = 'z';
	write_tmp("badhex.cpio", c, n);
	expect_corrupt("badhex.cpio", "bad number", "/etc/secret");

	/* Junk after the archive; an unsupported compression. */
	memcpy(c, a, n);
	write_tmp("junk.cpio", c, n);
	assert_int_equal(sh("cd %s && printf 'garbage' >> junk.cpio && "
	                    "cp newc.cpio bz.cpio && printf 'BZh91AY&SY' >> bz.cpio",
	                    tmp),
	                 0);
	expect_corrupt("junk.cpio", "junk at offset", "/usr/share/data.txt");
	expect_corrupt("bz.cpio", "bzip2 compression", "/usr/share/data.txt");
	free(a);
	free(c);

	/* A crc archive whose data no longer matches its checksum. */
	a = load_tmp("crc.cpio", &n);
	for (at = 0; at + 110 < n; at++)
		if (!memcmp(a + at, "070702", 6) && !strcmp((char *)a + at + 110, "usr/bin/hello"))
			break;
	assert_true(at + 110 < n);
	a[at + 112 + strlen("usr/bin/hello")] ^= 0x20; /* inside the data, after padding */
	write_tmp("badcrc.cpio", a, n);
	free(a);
	expect_corrupt("badcrc.cpio", "checksum", "/usr/share/data.txt");

	/* Truncated and corrupt compressed streams. */
	assert_int_equal(
	    sh("cd %s && for z in gz xz zst; do "
	       "head -c $(($(stat -c %%s newc.cpio.$z) / 2)) newc.cpio.$z > trunc.cpio.$z;"
	       "done && "
	       "cp newc.cpio.gz bad.cpio.gz && "
	       "printf 'XXXXXXXXXXXXXXXX' | dd of=bad.cpio.gz bs=1 seek=2000 "
	       "conv=notrunc status=none",
	       tmp),
	    0);
	expect_corrupt("trunc.cpio.gz", "gzip stream is truncated", NULL);
	expect_corrupt("trunc.cpio.xz", "xz stream is truncated", NULL);
	expect_corrupt("trunc.cpio.zst", "zstd stream is truncated", NULL);
	expect_corrupt("bad.cpio.gz", "gzip", NULL);
}

static void test_cpio_limit(void **state)
{
	struct scan_fs_limits lim = {.archive_max = 64 << 10, .file_max = 1000};
	struct scan_fs *fs = NULL;
	struct tgvm_error err = {0};
	char path[512];
	struct rec r;

	(void)state;
	assert_int_equal(sh("cd %s && mkdir -p big && head -c 300000 /dev/zero > big/z && "
	                    "echo small > big/a && (find big | sort | cpio -o -H newc --quiet) | "
	                    "gzip > big.cpio.gz",
	                    tmp),
	                 0);
	snprintf(path, sizeof(path), "%s/big.cpio.gz", tmp);
	assert_int_equal(scan_fs_open_with(path, &lim, &fs, &err), 0);
	rec_walk(fs, &r);
	/* The limit is named, and the entry before the damage survives. */
	assert_true(errors_match(&r, "inflates to more than the limit of 65536 bytes"));
	assert_true(tgvm_strv_contains(&r.paths, "/big/a"));
	rec_release(&r);
	scan_fs_free(fs);

	/* Files over file_max are reported, not walked. */
	lim.archive_max = 0;
	assert_int_equal(scan_fs_open_with(path, &lim, &fs, &err), 0);
	rec_walk(fs, &r);
	assert_false(tgvm_strv_contains(&r.paths, "/big/z"));
	assert_true(errors_match(&r, "/big/z"));
	rec_release(&r);
	scan_fs_free(fs);
}

/* ---- ext4 ---- */

static void test_ext4(void **state)
{
	static const char *const names[] = {"fs.img", "inline.img"};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct scan_fs *fs = open_ok("%s/%s", tmp, names[i]);

		assert_int_equal(scan_fs_kind(fs), SCAN_FS_EXT4);
		check_same_as_dir(fs);
		scan_fs_free(fs);
	}
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static void mbr_entry(uint8_t *mbr, int i, uint8_t type, uint32_t start, uint32_t len)
{
	uint8_t *e = mbr + 446 + 16 * i;

	e[4] = type;
	put_le32(e + 8, start);
	put_le32(e + 12, len);
	mbr[510] = 0x55;
	mbr[511] = 0xaa;
}

/* Write a disk: @head bytes (the tables) then the image at sector @at. */
static void make_disk(const char *name, const uint8_t *head, size_t n, uint32_t at)
{
	write_tmp(name, head, n);
	assert_int_equal(sh("cd %s && dd if=fs.img of=%s bs=512 seek=%u conv=notrunc status=none",
	                    tmp, name, at),
	                 0);
}

static void test_ext4_partitions(void **state)
{
	uint8_t *d = calloc(1, 1 << 20);
	uint32_t sectors = (8 << 20) / 512;
	struct scan_fs *fs = NULL;
	struct tgvm_error err = {0};
	char path[512];

	(void)state;
	assert_non_null(d);
	/* MBR, one Linux partition at 1 MiB. */
	mbr_entry(d, 0, 0x83, 2048, sectors);
	make_disk("mbr.img", d, 1 << 20, 2048);
	fs = open_ok("%s/mbr.img", tmp);
	assert_int_equal(scan_fs_kind(fs), SCAN_FS_EXT4);
	check_same_as_dir(fs);
	scan_fs_free(fs);

	/* MBR whose first partition is not ext: the second one is taken. */
	memset(d, 0, 1 << 20);
	mbr_entry(d, 0, 0x0c, 64, 1024);
	mbr_entry(d, 1, 0x83, 1088, sectors);
	make_disk("mbr2.img", d, 1 << 20, 1088);
	fs = open_ok("%s/mbr2.img", tmp);
	assert_int_equal(scan_fs_kind(fs), SCAN_FS_EXT4);
	assert_content(fs, "/bin/sh", "hello\n");
	scan_fs_free(fs);

	/* GPT with a protective MBR. */
	memset(d, 0, 1 << 20);
	mbr_entry(d, 0, 0xee, 1, 0xffffffff);
	{
		uint8_t *h = d + 512, *e = d + 1024;
		static const uint8_t linux_fs[16] = {0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84,
		                                     0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69,
		                                     0xd8, 0x47, 0x7d, 0xe4};

		memcpy(e, linux_fs, 16);
		memset(e + 16, 0x11, 16);
		put_le64(e + 32, 2048);
		put_le64(e + 40, 2048 + sectors - 1);
		memcpy(h, "EFI PART", 8);
		put_le32(h + 8, 0x00010000);
		put_le32(h + 12, 92);
		put_le64(h + 24, 1);
		put_le64(h + 40, 34);
		put_le64(h + 48, 2048 + sectors);
		put_le64(h + 72, 2);
		put_le32(h + 80, 128);
		put_le32(h + 84, 128);
		put_le32(h + 88, (uint32_t)crc32(0, e, 128 * 128));
		put_le32(h + 16, (uint32_t)crc32(0, h, 92));
	}
	make_disk("gpt.img", d, 1 << 20, 2048);
	fs = open_ok("%s/gpt.img", tmp);
	assert_int_equal(scan_fs_kind(fs), SCAN_FS_EXT4);
	check_same_as_dir(fs);
	scan_fs_free(fs);

	/* A partition table with nothing we can read says so. */
	memset(d, 0, 1 << 20);
	mbr_entry(d, 0, 0x07, 2048, 100);
	write_tmp("ntfs.img", d, 1 << 20);
	snprintf(path, sizeof(path), "%s/ntfs.img", tmp);
	assert_int_equal(scan_fs_open(path, &fs, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "no ext2/3/4 file system"));
	assert_non_null(strstr(err.msg, "ntfs.img"));
	free(d);
}

/* Byte offset of inode @path's on-disk inode in image @img. */
static uint64_t inode_offset(const char *img, const char *path)
{
	ext2_filsys e2 = NULL;
	ext2_ino_t ino;
	uint64_t off;
	dgrp_t g;

	assert_int_equal(ext2fs_open(img, 0, 0, 0, unix_io_manager, &e2), 0);
	assert_int_equal(ext2fs_namei(e2, EXT2_ROOT_INO, EXT2_ROOT_INO, path, &ino), 0);
	g = (ino - 1) / e2->super->s_inodes_per_group;
	off = ext2fs_inode_table_loc(e2, g) * (uint64_t)e2->blocksize +
	      (uint64_t)((ino - 1) % e2->super->s_inodes_per_group) * EXT2_INODE_SIZE(e2->super);
	ext2fs_close_free(&e2);
	return off;
}

static void test_ext4_corrupt(void **state)
{
	char img[512];
	struct scan_fs *fs = NULL;
	struct tgvm_error err = {0};
	struct rec r;
	uint64_t off;

	(void)state;
	/* A superblock that fails its checksum: one clear error naming the file. */
	assert_int_equal(sh("cd %s && cp fs.img badsb.img && printf 'XXXX' | dd of=badsb.img "
	                    "bs=1 seek=1028 conv=notrunc status=none",
	                    tmp),
	                 0);
	snprintf(img, sizeof(img), "%s/badsb.img", tmp);
	assert_true(scan_fs_open(img, &fs, &err) < 0);
	assert_non_null(strstr(err.msg, "badsb.img"));
	assert_non_null(strstr(err.msg, "ext file system"));

	/* A corrupt inode: a per-file error, the rest of the image is read. */
	snprintf(img, sizeof(img), "%s/fs.img", tmp);
	off = inode_offset(img, "/usr/bin/hello");
	assert_int_equal(sh("cd %s && cp fs.img badino.img && printf 'XXXXXXXX' | dd "
	                    "of=badino.img bs=1 seek=%llu conv=notrunc status=none",
	                    tmp, (unsigned long long)off + 40),
	                 0);
	fs = open_ok("%s/badino.img", tmp);
	rec_walk(fs, &r);
	assert_true(errors_match(&r, "/usr/bin/hello"));
	assert_true(errors_match(&r, "badino.img"));
	assert_false(tgvm_strv_contains(&r.paths, "/usr/bin/hello"));
	assert_true(tgvm_strv_contains(&r.paths, "/usr/share/data.txt"));
	assert_content(fs, "/usr/share/data.txt", "data");
	assert_read_fails(fs, "/usr/bin/sh", ENOENT);
	rec_release(&r);
	scan_fs_free(fs);

	/* A directory whose inode is corrupt: its files are lost, the rest stays. */
	off = inode_offset(img, "/opt");
	assert_int_equal(sh("cd %s && cp fs.img baddir.img && printf 'XXXXXXXX' | dd "
	                    "of=baddir.img bs=1 seek=%llu conv=notrunc status=none",
	                    tmp, (unsigned long long)off + 40),
	                 0);
	fs = open_ok("%s/baddir.img", tmp);
	rec_walk(fs, &r);
	assert_true(errors_match(&r, "/opt"));
	assert_false(tgvm_strv_contains(&r.paths, "/opt/a/lib/libconf.so"));
	assert_true(tgvm_strv_contains(&r.paths, "/usr/bin/hello"));
	rec_release(&r);
	scan_fs_free(fs);

	/* Truncated image: the superblock is there, the data is not. */
	assert_int_equal(sh("cd %s && head -c 300000 fs.img > short.img", tmp), 0);
	snprintf(img, sizeof(img), "%s/short.img", tmp);
	if (scan_fs_open(img, &fs, &err) == 0) {
		rec_walk(fs, &r);
		for (size_t i = 0; i < r.paths.n; i++) {
			struct scan_blob b;

			if (scan_fs_read(fs, r.paths.v[i], &b, &err) == 0)
				scan_blob_release(&b);
		}
		rec_release(&r);
		scan_fs_free(fs);
	} else {
		assert_non_null(strstr(err.msg, "short.img"));
	}
}

/* ---- library resolution ---- */

static void resolve(struct scan_fs *fs, const char *prog, int level, struct tgvm_strv *libs,
                    struct tgvm_strv *missing)
{
	struct tgvm_error err = {0};

	tgvm_strv_init(libs);
	tgvm_strv_init(missing);
	if (scan_fs_resolve_needed(fs, prog, level, libs, missing, &err) < 0)
		fail_msg("resolve '%s': %s", prog, err.msg);
}

static void check_resolution(struct scan_fs *fs)
{
	struct tgvm_strv libs, missing;
	struct tgvm_error err = {0};

	/* Interpreter first (through /lib64 -> usr/lib64), the wrong-machine copy
	 * in /opt/a/lib skipped, ld.so.conf includes followed. */
	resolve(fs, "/usr/bin/prog", 0, &libs, &missing);
	assert_int_equal(libs.n, 4);
	assert_string_equal(libs.v[0], "/usr/lib64/ld-linux-x86-64.so.2");
	assert_string_equal(libs.v[1], "/usr/lib/x86_64-linux-gnu/libbase.so.1.0");
	assert_string_equal(libs.v[2], "/opt/a/lib/libconf.so");
	assert_string_equal(libs.v[3], "/opt/b/lib/libconf2.so");
	assert_int_equal(missing.n, 1);
	assert_string_equal(missing.v[0], "libnothere.so");
	tgvm_strv_release(&libs);
	tgvm_strv_release(&missing);

	/* glibc-hwcaps: v3 and v4 CPUs load the v3 copy, v2 the baseline. */
	resolve(fs, "/bin/prog", 3, &libs, &missing);
	assert_string_equal(libs.v[1],
	                    "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libbase.so.1");
	tgvm_strv_release(&libs);
	tgvm_strv_release(&missing);
	resolve(fs, "/usr/bin/prog", 4, &libs, &missing);
	assert_string_equal(libs.v[1],
	                    "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libbase.so.1");
	tgvm_strv_release(&libs);
	tgvm_strv_release(&missing);
	resolve(fs, "/usr/bin/prog", 2, &libs, &missing);
	assert_string_equal(libs.v[1], "/usr/lib/x86_64-linux-gnu/libbase.so.1.0");
	tgvm_strv_release(&libs);
	tgvm_strv_release(&missing);

	/* DT_RUNPATH with $ORIGIN serves the program's own needs only... */
	resolve(fs, "/app/bin/prog", 0, &libs, &missing);
	assert_true(tgvm_strv_contains(&libs, "/app/lib/libapp.so"));
	assert_false(tgvm_strv_contains(&libs, "/app/lib/libdeep.so"));
	assert_true(tgvm_strv_contains(&missing, "libdeep.so"));
	tgvm_strv_release(&libs);
	tgvm_strv_release(&missing);
	/* ...while DT_RPATH is searched for the libraries' needs too. */
	resolve(fs, "/app/bin/prog-rpath", 0, &libs, &missing);
	assert_true(tgvm_strv_contains(&libs, "/app/lib/libapp.so"));
	assert_true(tgvm_strv_contains(&libs, "/app/lib/libdeep.so"));
	assert_int_equal(missing.n, 0);
	tgvm_strv_release(&libs);
	tgvm_strv_release(&missing);

	/* Not ELF, not there, bad level. */
	tgvm_strv_init(&libs);
	tgvm_strv_init(&missing);
	assert_int_equal(scan_fs_resolve_needed(fs, "/etc/secret", 0, &libs, &missing, &err),
	                 -ENOEXEC);
	assert_int_equal(
	    scan_fs_resolve_needed(fs, "/opt/a/lib/libbase.so.1", 0, &libs, &missing, &err),
	    -ENOEXEC);
	assert_int_equal(scan_fs_resolve_needed(fs, "/nope", 0, &libs, &missing, &err), -ENOENT);
	assert_int_equal(scan_fs_resolve_needed(fs, "/usr/bin/prog", 1, &libs, &missing, &err),
	                 -EINVAL);
	tgvm_strv_release(&libs);
	tgvm_strv_release(&missing);
}

static void test_ldpath(void **state)
{
	static const char *const names[] = {"root", "newc.cpio.zst", "fs.img"};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct scan_fs *fs = open_ok("%s/%s", tmp, names[i]);

		check_resolution(fs);
		check_resolution(fs); /* again, from the caches */
		scan_fs_free(fs);
	}
}

static void test_ldpath_host(void **state)
{
	struct scan_fs *fs;
	struct tgvm_strv libs, missing;
	bool libc = false;

	(void)state;
	/* A lone host program finds its libraries on the host, as ldd would. */
	fs = open_ok("/bin/ls");
	assert_int_equal(scan_fs_kind(fs), SCAN_FS_FILE);
	resolve(fs, "/bin/ls", 0, &libs, &missing);
	for (size_t i = 0; i < libs.n; i++)
		if (strstr(libs.v[i], "/libc.so.6"))
			libc = true;
	assert_true(libc);
	assert_int_equal(missing.n, 0);
	tgvm_strv_release(&libs);
	tgvm_strv_release(&missing);
	scan_fs_free(fs);
}

static void test_elf_dynamic(void **state)
{
	char path[512];
	char *data = NULL;
	size_t n = 0;
	struct scan_elf_dynamic d;
	struct tgvm_error err = {0};

	(void)state;
	snprintf(path, sizeof(path), "%s/app/bin/prog-rpath", root);
	assert_int_equal(tgvm_file_read(path, 1 << 20, &data, &n, NULL), 0);
	assert_int_equal(scan_elf_dynamic_parse((uint8_t *)data, n, &d, &err), 0);
	assert_true(d.matches);
	assert_string_equal(d.rpath, "$ORIGIN/../lib");
	assert_null(d.runpath);
	assert_int_equal(d.needed.n, 1);
	assert_string_equal(d.needed.v[0], "libapp.so");
	scan_elf_dynamic_release(&d);
	/* Every truncation of a real file parses or fails cleanly. */
	for (size_t cut = 0; cut < n; cut += 7) {
		if (scan_elf_dynamic_parse((uint8_t *)data, cut, &d, &err) == 0)
			scan_elf_dynamic_release(&d);
	}
	free(data);
}

static void test_other_formats(void **state)
{
	struct scan_fs *fs = NULL;
	struct tgvm_error err = {0};
	char path[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/qcow.img", tmp);
	write_tmp("qcow.img", "QFI\xfb\0\0\0\3", 8);
	assert_int_equal(scan_fs_open(path, &fs, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "qcow2"));
	assert_int_equal(scan_fs_open("/nonexistent/x", &fs, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "'/nonexistent/x'"));
	/* A text file is a single (non-ELF) file for the analysis to skip. */
	fs = open_ok("%s/list", tmp);
	assert_int_equal(scan_fs_kind(fs), SCAN_FS_FILE);
	scan_fs_free(fs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dir_walk),       cmocka_unit_test(test_dir_symlinks),
	    cmocka_unit_test(test_single_file),    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_cpio_formats),   cmocka_unit_test(test_cpio_concatenated),
	    cmocka_unit_test(test_cpio_hardlinks), cmocka_unit_test(test_cpio_corrupt),
	    cmocka_unit_test(test_cpio_limit),     cmocka_unit_test(test_hardlink_ids),
	    cmocka_unit_test(test_ext4),           cmocka_unit_test(test_ext4_partitions),
	    cmocka_unit_test(test_ext4_corrupt),   cmocka_unit_test(test_ldpath),
	    cmocka_unit_test(test_ldpath_host),    cmocka_unit_test(test_elf_dynamic),
	    cmocka_unit_test(test_other_formats),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
