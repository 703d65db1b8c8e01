/* SPDX-License-Identifier: MIT */
/*
 * What every source fuzzer does with a source that opened: walk it, read
 * each file, resolve symlinks and libraries, list directories. Limits are
 * small so that one input cannot take seconds.
 */
#ifndef TGVM_FUZZ_COMMON_H
#define TGVM_FUZZ_COMMON_H

#include <stdio.h>
#include <string.h>

#include "scan/source-int.h"

static const struct scan_fs_limits fuzz_limits = {
    .file_max = 8 << 20,
    .archive_max = 32 << 20,
    .files_max = 20000,
};

struct fuzz_state {
	char first_elf[SCAN_PATH_MAX];
	size_t files;
};

static int fuzz_file(struct scan_fs *fs, const char *path, uint64_t size,
                     const struct scan_fs_id *id, void *ud)
{
	struct fuzz_state *st = ud;
	struct scan_blob b;
	char res[SCAN_PATH_MAX];
	volatile uint8_t sink = 0;

	(void)size;
	(void)id;
	if (++st->files > 2000)
		return 1;
	if (scan_fs_read(fs, path, &b, NULL) == 0) {
		/* Touch the first and last bytes: the blob must be as long as it says. */
		if (b.size) {
			sink ^= b.data[0];
			sink ^= b.data[b.size - 1];
		}
		if (!st->first_elf[0] && b.size >= 4 && !memcmp(b.data, "\177ELF", 4))
			memcpy(st->first_elf, path, strlen(path) + 1);
		scan_blob_release(&b);
	}
	(void)sink;
	scan_fs_exists(fs, path, res, sizeof(res));
	return 0;
}

static void fuzz_error(const char *path, const struct tgvm_error *err, void *ud)
{
	(void)ud;
	/* Messages must be terminated strings naming something. */
	if (strlen(path) + strlen(err->msg) == (size_t)-1)
		__builtin_trap();
}

static void fuzz_exercise(struct scan_fs *fs)
{
	static const char *const probes[] = {"/bin/sh",   "/lib/x86_64-linux-gnu/libc.so.6",
	                                     "/init",     "/a",
	                                     "/a/b/../c", "/etc/ld.so.conf"};
	struct fuzz_state st = {{0}, 0};
	struct tgvm_strv names, libs, missing;
	char res[SCAN_PATH_MAX];

	scan_fs_walk(fs, fuzz_file, fuzz_error, &st, NULL);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		scan_fs_exists(fs, probes[i], res, sizeof(res));
	tgvm_strv_init(&names);
	if (fs->ops->list)
		fs->ops->list(fs, "/", &names);
	for (size_t i = 0; i < names.n && i < 64; i++) {
		char p[SCAN_PATH_MAX];
		struct scan_stat sst;

		snprintf(p, sizeof(p), "/%s", names.v[i]);
		scan_fs_resolve(fs, p, true, res, sizeof(res), &sst);
	}
	tgvm_strv_release(&names);
	if (st.first_elf[0]) {
		tgvm_strv_init(&libs);
		tgvm_strv_init(&missing);
		scan_fs_resolve_needed(fs, st.first_elf, 3, &libs, &missing, NULL);
		tgvm_strv_release(&libs);
		tgvm_strv_release(&missing);
	}
}

#endif
