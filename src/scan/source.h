/* SPDX-License-Identifier: MIT */
/*
 * Read-only views of a guest's files, whatever holds them: a single file, a
 * directory tree (a guest root), an initramfs/cpio archive (plain, gzip, xz,
 * zstd) or a raw disk image with an ext2/3/4 file system (whole disk, or in an
 * MBR/GPT partition), read without mounting and without root. The analysis
 * (scan.c and friends) sees only this interface.
 */
#ifndef TGVM_SCAN_SOURCE_H
#define TGVM_SCAN_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tgvm/error.h"
#include "util/util.h"

enum scan_fs_kind {
	SCAN_FS_FILE, /* one file given directly */
	SCAN_FS_DIR,
	SCAN_FS_CPIO,
	SCAN_FS_EXT4,
	SCAN_FS__MAX
};
const char *scan_fs_kind_to_string(enum scan_fs_kind k);

struct scan_fs;

/* File contents; data stays valid until scan_blob_release(). Files in a
 * directory are mmap()ed, not read. */
struct scan_blob {
	const uint8_t *data;
	size_t size;
	void *priv_; /* owned by the source */
	size_t priv_size_;
	int priv_kind_;
};

/* Limits on what comes from outside. */
#define SCAN_FILE_MAX    (2ULL << 30) /* larger files are skipped and counted */
#define SCAN_FILES_MAX   2000000      /* entries walked in one source */
#define SCAN_SYMLINK_MAX 40           /* hops when resolving a path */

/*
 * Open @path, detecting its kind from its content (ELF magic, cpio magic after
 * decompression, ext superblock at 1024 or inside the first MBR/GPT partition
 * that holds one) or from being a directory. *ret owns the view.
 */
int scan_fs_open(const char *path, struct scan_fs **ret, struct tgvm_error *reterr);
void scan_fs_free(struct scan_fs *fs); /* accepts NULL */
enum scan_fs_kind scan_fs_kind(const struct scan_fs *fs);
const char *scan_fs_origin(const struct scan_fs *fs); /* the path given to open */

/*
 * Call @cb for every regular file, in a stable (sorted) order, with its path
 * inside the source ("/usr/bin/ls"; for SCAN_FS_FILE the file's own name).
 * A nonzero return from @cb stops the walk and is returned. Per-file problems
 * (unreadable entry, corrupt inode) go to @on_error when set, and the walk
 * goes on.
 */
typedef int (*scan_fs_walk_cb)(struct scan_fs *fs, const char *path, uint64_t size, void *ud);
typedef void (*scan_fs_error_cb)(const char *path, const struct tgvm_error *err, void *ud);
int scan_fs_walk(struct scan_fs *fs, scan_fs_walk_cb cb, scan_fs_error_cb on_error, void *ud,
                 struct tgvm_error *reterr);

/* Contents of the file at @path inside the source, symlinks followed within
 * the source (never outside it). -ENOENT when absent. */
int scan_fs_read(struct scan_fs *fs, const char *path, struct scan_blob *ret,
                 struct tgvm_error *reterr);
void scan_blob_release(struct scan_blob *b);
/* Does @path exist as a regular file (after symlinks)? Writes the resolved path. */
bool scan_fs_exists(struct scan_fs *fs, const char *path, char *resolved, size_t size);

/*
 * The libraries a program loads, as the dynamic loader would find them inside
 * this source: DT_NEEDED, transitively, searched in DT_RUNPATH/DT_RPATH
 * ($ORIGIN expanded), /etc/ld.so.conf (and its include lines), the default
 * paths, and glibc-hwcaps subdirectories. Each resolved library path is
 * pushed to @ret_libs once; names that cannot be found go to @ret_missing.
 * @hwcaps_level: 0 to take the baseline copy of each library; 2/3/4 to prefer
 * glibc-hwcaps/x86-64-vN copies (what a CPU of that level would load).
 */
int scan_fs_resolve_needed(struct scan_fs *fs, const char *program, int hwcaps_level,
                           struct tgvm_strv *ret_libs, struct tgvm_strv *ret_missing,
                           struct tgvm_error *reterr);

#endif
