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
#define SCAN_ARCHIVE_MAX (2ULL << 30) /* bytes a compressed archive may inflate to */
#define SCAN_DEPTH_MAX   256          /* directory nesting walked */

/* The limits above, adjustable per source (scan_fs_open_with()). */
struct scan_fs_limits {
	uint64_t file_max;    /* largest file read; larger ones give -EFBIG */
	uint64_t archive_max; /* total decompressed bytes of an archive */
	uint32_t files_max;   /* entries indexed or walked */
};

/*
 * Open @path, detecting its kind from its content (ELF magic, cpio magic after
 * decompression, ext superblock at 1024 or inside the first MBR/GPT partition
 * that holds one) or from being a directory. *ret owns the view.
 *
 * Anything else that is a regular file opens as SCAN_FS_FILE (the analysis
 * skips non-ELF files); disk images with partitions but no ext file system,
 * qcow2 images and unsupported compressions fail with a message saying so.
 * An archive or image that is corrupt inside still opens: what can be read is
 * read, and each problem is reported by scan_fs_walk() through @on_error.
 * Errors: -ENOENT/-EACCES/... when @path cannot be opened, -EINVAL for a
 * corrupt ext superblock, -ENOTSUP for unsupported formats, -ENOMEM.
 * Cost: directories and single files open in O(1); a cpio archive is
 * decompressed into memory and indexed; an ext image is indexed (one pass
 * over its directories and inodes).
 */
int scan_fs_open(const char *path, struct scan_fs **ret, struct tgvm_error *reterr);
/* Same with explicit limits (@lim NULL means the defaults above). */
int scan_fs_open_with(const char *path, const struct scan_fs_limits *lim, struct scan_fs **ret,
                      struct tgvm_error *reterr);
void scan_fs_free(struct scan_fs *fs); /* accepts NULL */
enum scan_fs_kind scan_fs_kind(const struct scan_fs *fs);
const char *scan_fs_origin(const struct scan_fs *fs); /* the path given to open */

/*
 * Call @cb for every regular file, in a stable (sorted) order, with its path
 * inside the source ("/usr/bin/ls"; for SCAN_FS_FILE the path as given to
 * scan_fs_open()). Symlinks are not followed and not reported (their targets
 * are walked where they live); devices, fifos and sockets are skipped; in a
 * directory tree, pseudo file systems (proc, sysfs, ...) are not entered.
 * @id tells hard links apart from copies: names whose ids are equal and have a
 * nonzero ino are one file (a directory tree's (st_dev, st_ino), an ext
 * image's inode number, a cpio archive's hard-link group); ino 0 means the
 * name has no other (or none is known), so a reader must never merge it.
 * A nonzero return from @cb stops the walk and is returned. Per-file problems
 * (unreadable entry, corrupt inode, corrupt archive member, a file larger
 * than file_max with code EFBIG, too many entries) go to @on_error when set,
 * and the walk goes on. The path given to @on_error names the member, or the
 * source itself for archive-wide problems. Returns 0, the callback's value,
 * or -errno when the source as a whole cannot be walked.
 */
struct scan_fs_id {
	uint64_t dev, ino; /* ino 0: no identity known */
};
typedef int (*scan_fs_walk_cb)(struct scan_fs *fs, const char *path, uint64_t size,
                               const struct scan_fs_id *id, void *ud);
typedef void (*scan_fs_error_cb)(const char *path, const struct tgvm_error *err, void *ud);
int scan_fs_walk(struct scan_fs *fs, scan_fs_walk_cb cb, scan_fs_error_cb on_error, void *ud,
                 struct tgvm_error *reterr);

/*
 * Contents of the file at @path inside the source, symlinks followed within
 * the source (never outside it: absolute targets are re-rooted at the
 * source's root and ".." stops at it; at most SCAN_SYMLINK_MAX hops, else
 * -ELOOP). -ENOENT when absent, -EISDIR/-EINVAL when not a regular file,
 * -EFBIG above file_max, -EIO for a corrupt ext inode. Release *ret with
 * scan_blob_release(). For SCAN_FS_FILE, the path given to scan_fs_open()
 * names the file itself and other absolute paths are read from the host's
 * root, so that the program's libraries are found where the host keeps them.
 *
 * scan_fs_read(), scan_fs_exists() and scan_fs_resolve_needed() may be called
 * from several threads at once on one source (ext images serialise inside).
 */
int scan_fs_read(struct scan_fs *fs, const char *path, struct scan_blob *ret,
                 struct tgvm_error *reterr);
void scan_blob_release(struct scan_blob *b);
/* Does @path exist as a regular file (after symlinks)? Writes the resolved path
 * (canonical, absolute inside the source) to @resolved when it is not NULL. */
bool scan_fs_exists(struct scan_fs *fs, const char *path, char *resolved, size_t size);

/*
 * The libraries a program loads, as the dynamic loader would find them inside
 * this source: DT_NEEDED, transitively, searched in DT_RUNPATH/DT_RPATH
 * ($ORIGIN expanded), /etc/ld.so.conf (and its include lines), the default
 * paths, and glibc-hwcaps subdirectories. Each resolved library path is
 * pushed to @ret_libs once; names that cannot be found go to @ret_missing.
 * @hwcaps_level: 0 to take the baseline copy of each library; 2/3/4 to prefer
 * glibc-hwcaps/x86-64-vN copies (what a CPU of that level would load).
 * The program's interpreter (PT_INTERP) comes first in @ret_libs when it
 * exists, then the libraries in the loader's breadth-first order. Paths are
 * canonical (symlinks resolved), so they match what scan_fs_walk() reports.
 * Copies of the wrong ELF class or machine are skipped as ld.so skips them.
 * Returns -ENOEXEC when @program is not an x86-64 ELF file, -ENOENT when it
 * does not exist; the lists are appended to (caller owns and releases them).
 * Cost: results of lookups are cached in @fs, so resolving every program of
 * a root costs little more than resolving one.
 */
int scan_fs_resolve_needed(struct scan_fs *fs, const char *program, int hwcaps_level,
                           struct tgvm_strv *ret_libs, struct tgvm_strv *ret_missing,
                           struct tgvm_error *reterr);

#endif
