/* SPDX-License-Identifier: MIT */
/*
 * Inside the file sources: the table of operations each kind implements, the
 * sorted in-memory index that cpio archives and ext images share, deferred
 * per-file errors, and the entry points the fuzzers drive directly.
 */
#ifndef TGVM_SCAN_SOURCE_INT_H
#define TGVM_SCAN_SOURCE_INT_H

#include <limits.h>
#include <pthread.h>

#include "scan/source.h"

#define SCAN_PATH_MAX 4096 /* longest path inside a source, NUL included */

enum scan_node_type { SCAN_NODE_REG, SCAN_NODE_DIR, SCAN_NODE_LNK, SCAN_NODE_OTHER };

struct scan_stat {
	enum scan_node_type type;
	uint64_t size;
};

enum scan_blob_kind { SCAN_BLOB_NONE, SCAN_BLOB_MMAP, SCAN_BLOB_HEAP, SCAN_BLOB_BORROWED };

/*
 * What each kind implements. Paths given to the operations are absolute and
 * normalised ("/usr/lib/x.so", "/" for the root) and hold no symlink except
 * possibly in the last component: scan_fs_resolve() walks the links.
 */
struct scan_fs_ops {
	int (*lstat)(struct scan_fs *fs, const char *path, struct scan_stat *ret);
	/* The target of the symlink at @path, NUL-terminated, in @buf of @size. */
	int (*readlink)(struct scan_fs *fs, const char *path, char *buf, size_t size);
	/* Contents of the regular file at @path. */
	int (*read)(struct scan_fs *fs, const char *path, struct scan_blob *ret,
	            struct tgvm_error *reterr);
	/* Optional: resolve and read in one step (the kernel's RESOLVE_IN_ROOT);
	 * -ENOSYS sends the caller to lstat/readlink/read. */
	int (*read_unresolved)(struct scan_fs *fs, const char *path, struct scan_blob *ret,
	                       struct tgvm_error *reterr);
	/* Names in the directory @path, sorted, pushed to @ret. */
	int (*list)(struct scan_fs *fs, const char *path, struct tgvm_strv *ret);
	int (*walk)(struct scan_fs *fs, scan_fs_walk_cb cb, scan_fs_error_cb on_error, void *ud,
	            struct tgvm_error *reterr);
	void (*free)(struct scan_fs *fs);
};

/* A problem found while opening (indexing) a source, reported by the walk. */
struct scan_deferred {
	char *path;
	struct tgvm_error err;
};

/* One file of an indexed source (cpio, ext). */
struct scan_index_entry {
	char *path; /* absolute, normalised, owned */
	enum scan_node_type type;
	uint64_t size;
	const uint8_t *data; /* cpio: contents in the archive's memory */
	uint64_t ino;        /* ext: inode number; cpio: hard-link group + 1 (0 none) */
	uint32_t seq;        /* order of appearance, later entries win */
};

struct scan_index {
	struct scan_index_entry *e;
	size_t n, cap;
};

struct ldcache; /* ldpath.c */

struct scan_fs {
	enum scan_fs_kind kind;
	const struct scan_fs_ops *ops;
	char *origin;
	struct scan_fs_limits lim;
	void *priv;
	struct scan_index index;
	struct scan_deferred *deferred;
	size_t n_deferred;
	/* SCAN_FS_FILE: the name scan_fs_open() was given, read directly. */
	char *self;
	/* Library resolution: parsed ld.so.conf and caches, under ld_lock. */
	pthread_mutex_t ld_lock;
	struct ldcache *ld;
};

/* Record a problem for the walk to report (the message is formatted). */
void scan_fs_defer(struct scan_fs *fs, const char *path, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int scan_fs_alloc(const char *origin, const struct scan_fs_limits *lim, enum scan_fs_kind kind,
                  const struct scan_fs_ops *ops, struct scan_fs **ret);

/*
 * Resolve @path inside @fs as the kernel does with RESOLVE_IN_ROOT: absolute
 * link targets restart at the source's root, ".." never leaves it. Writes
 * the canonical path to @out and the final node's type to @ret_st.
 * -ENOENT, -ENOTDIR, -ELOOP, -ENAMETOOLONG.
 */
int scan_fs_resolve(struct scan_fs *fs, const char *path, bool follow_last, char *out, size_t size,
                    struct scan_stat *ret_st);
/* Normalise @in (relative or absolute) to an absolute path; ".." stops at "/". */
int scan_path_normalize(const char *in, char *out, size_t size);
/* Order of paths: component by component, so a directory's files stay together. */
int scan_path_cmp(const char *a, const char *b);

/* Sorted index shared by cpio and ext. */
int scan_index_add(struct scan_index *ix, const char *path, enum scan_node_type type, uint64_t size,
                   const uint8_t *data, uint64_t ino);
void scan_index_finish(struct scan_index *ix); /* sort; later duplicates win */
void scan_index_release(struct scan_index *ix);
const struct scan_index_entry *scan_index_find(const struct scan_index *ix, const char *path);
int scan_index_lstat(struct scan_fs *fs, const char *path, struct scan_stat *ret);
int scan_index_list(struct scan_fs *fs, const char *path, struct tgvm_strv *ret);
int scan_index_walk(struct scan_fs *fs, scan_fs_walk_cb cb, scan_fs_error_cb on_error, void *ud,
                    struct tgvm_error *reterr);

/* Kinds. Each takes ownership of nothing; @fd stays the caller's. */
int scan_dir_open(const char *path, const struct scan_fs_limits *lim, struct scan_fs **ret,
                  struct tgvm_error *reterr);
int scan_file_open(const char *path, const struct scan_fs_limits *lim, struct scan_fs **ret,
                   struct tgvm_error *reterr);
/* cpio from a file (mapped) or from memory the caller keeps alive until free. */
int scan_cpio_open(const char *path, int fd, uint64_t size, const struct scan_fs_limits *lim,
                   struct scan_fs **ret, struct tgvm_error *reterr);
int scan_cpio_open_memory(const uint8_t *data, size_t size, const char *origin,
                          const struct scan_fs_limits *lim, struct scan_fs **ret,
                          struct tgvm_error *reterr);
/* Does @p start a cpio archive or a compressed stream holding one? */
bool scan_cpio_detect(const uint8_t *p, size_t n);
/* ext2/3/4 at byte @offset of @path. */
int scan_ext4_open(const char *path, uint64_t offset, const struct scan_fs_limits *lim,
                   struct scan_fs **ret, struct tgvm_error *reterr);

/* ldpath.c: the dynamic section of an ELF image, as ld.so reads it. */
struct scan_elf_dynamic {
	bool matches; /* ELFCLASS64, EM_X86_64: what an x86-64 ld.so loads */
	char *interp;
	char *soname;
	char *rpath;
	char *runpath;
	bool nodeflib;
	struct tgvm_strv needed;
};
int scan_elf_dynamic_parse(const uint8_t *data, size_t size, struct scan_elf_dynamic *ret,
                           struct tgvm_error *reterr);
void scan_elf_dynamic_release(struct scan_elf_dynamic *d);
void scan_ldcache_free(struct ldcache *c);

#endif
