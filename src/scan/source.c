// SPDX-License-Identifier: MIT
/*
 * The front of the file sources: detecting what a path holds, resolving
 * symlinks inside a source (never out of it), the sorted index shared by
 * cpio archives and ext images, and the deferred per-file errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scan/source-int.h"

static const char *const kind_names[SCAN_FS__MAX] = {
    [SCAN_FS_FILE] = "file",
    [SCAN_FS_DIR] = "directory",
    [SCAN_FS_CPIO] = "cpio",
    [SCAN_FS_EXT4] = "ext4",
};

const char *scan_fs_kind_to_string(enum scan_fs_kind k)
{
	return (unsigned)k < SCAN_FS__MAX ? kind_names[k] : "unknown";
}

static const struct scan_fs_limits default_limits = {
    .file_max = SCAN_FILE_MAX,
    .archive_max = SCAN_ARCHIVE_MAX,
    .files_max = SCAN_FILES_MAX,
};

int scan_fs_alloc(const char *origin, const struct scan_fs_limits *lim, enum scan_fs_kind kind,
                  const struct scan_fs_ops *ops, struct scan_fs **ret)
{
	struct scan_fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return -ENOMEM;
	fs->origin = strdup(origin);
	if (!fs->origin) {
		free(fs);
		return -ENOMEM;
	}
	fs->lim = lim ? *lim : default_limits;
	if (!fs->lim.file_max)
		fs->lim.file_max = SCAN_FILE_MAX;
	if (!fs->lim.archive_max)
		fs->lim.archive_max = SCAN_ARCHIVE_MAX;
	if (!fs->lim.files_max)
		fs->lim.files_max = SCAN_FILES_MAX;
	fs->kind = kind;
	fs->ops = ops;
	pthread_mutex_init(&fs->ld_lock, NULL);
	*ret = fs;
	return 0;
}

void scan_fs_free(struct scan_fs *fs)
{
	if (!fs)
		return;
	if (fs->ops && fs->ops->free)
		fs->ops->free(fs);
	scan_index_release(&fs->index);
	for (size_t i = 0; i < fs->n_deferred; i++)
		free(fs->deferred[i].path);
	free(fs->deferred);
	scan_ldcache_free(fs->ld);
	pthread_mutex_destroy(&fs->ld_lock);
	free(fs->self);
	free(fs->origin);
	free(fs);
}

enum scan_fs_kind scan_fs_kind(const struct scan_fs *fs)
{
	return fs->kind;
}

const char *scan_fs_origin(const struct scan_fs *fs)
{
	return fs->origin;
}

void scan_fs_defer(struct scan_fs *fs, const char *path, int code, const char *fmt, ...)
{
	struct scan_deferred *d;
	va_list ap;

	/* A flood of errors from one broken archive says nothing more after a while. */
	if (fs->n_deferred >= 10000)
		return;
	d = realloc(fs->deferred, (fs->n_deferred + 1) * sizeof(*d));
	if (!d)
		return;
	fs->deferred = d;
	d = &fs->deferred[fs->n_deferred];
	d->path = strdup(path);
	if (!d->path)
		return;
	d->err.code = code > 0 ? code : EIO;
	va_start(ap, fmt);
	vsnprintf(d->err.msg, sizeof(d->err.msg), fmt, ap);
	va_end(ap);
	fs->n_deferred++;
}

/* ---- paths ---- */

int scan_path_normalize(const char *in, char *out, size_t size)
{
	size_t len = 0;
	const char *p = in;

	if (size < 2)
		return -ENAMETOOLONG;
	while (*p) {
		const char *c;
		size_t n;

		while (*p == '/')
			p++;
		c = p;
		while (*p && *p != '/')
			p++;
		n = (size_t)(p - c);
		if (n == 0 || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			while (len > 0 && out[len] != '/')
				len--;
			out[len] = '\0';
			continue;
		}
		if (len + 1 + n + 1 > size)
			return -ENAMETOOLONG;
		out[len++] = '/';
		memcpy(out + len, c, n);
		len += n;
		out[len] = '\0';
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return 0;
}

int scan_path_cmp(const char *a, const char *b)
{
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;

	for (;; x++, y++) {
		/* '/' sorts before every other byte, so "a/b" < "a-c" < "ab". */
		unsigned cx = *x == '/' ? 1 : *x == 0 ? 0 : *x + 1u;
		unsigned cy = *y == '/' ? 1 : *y == 0 ? 0 : *y + 1u;

		if (cx != cy)
			return cx < cy ? -1 : 1;
		if (!cx)
			return 0;
	}
}

int scan_fs_resolve(struct scan_fs *fs, const char *path, bool follow_last, char *out, size_t size,
                    struct scan_stat *ret_st)
{
	char rest[2 * SCAN_PATH_MAX], tmp[2 * SCAN_PATH_MAX], target[SCAN_PATH_MAX];
	char res[SCAN_PATH_MAX];
	size_t rlen = 0, off = 0;
	struct scan_stat st = {.type = SCAN_NODE_DIR};
	int hops = 0, r;

	if (strlen(path) >= sizeof(rest))
		return -ENAMETOOLONG;
	memcpy(rest, path, strlen(path) + 1);
	res[0] = '\0';
	for (;;) {
		const char *c;
		size_t n;

		while (rest[off] == '/')
			off++;
		if (!rest[off])
			break;
		c = rest + off;
		while (rest[off] && rest[off] != '/')
			off++;
		n = (size_t)(rest + off - c);
		if (n == 1 && c[0] == '.')
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			while (rlen > 0 && res[--rlen] != '/')
				;
			res[rlen] = '\0';
			st.type = SCAN_NODE_DIR;
			continue;
		}
		if (st.type != SCAN_NODE_DIR)
			return -ENOTDIR;
		if (rlen + 1 + n + 1 > sizeof(res))
			return -ENAMETOOLONG;
		res[rlen] = '/';
		memcpy(res + rlen + 1, c, n);
		res[rlen + 1 + n] = '\0';
		r = fs->ops->lstat(fs, res, &st);
		if (r < 0)
			return r;
		while (rest[off] == '/')
			off++;
		if (st.type == SCAN_NODE_LNK && (rest[off] || follow_last)) {
			int len;

			if (++hops > SCAN_SYMLINK_MAX)
				return -ELOOP;
			r = fs->ops->readlink(fs, res, target, sizeof(target));
			if (r < 0)
				return r;
			len = snprintf(tmp, sizeof(tmp), "%s/%s", target, rest + off);
			if (len < 0 || (size_t)len >= sizeof(tmp))
				return -ENAMETOOLONG;
			memcpy(rest, tmp, (size_t)len + 1);
			off = 0;
			if (target[0] == '/')
				rlen = 0; /* re-rooted at the source's root */
			res[rlen] = '\0';
			st.type = SCAN_NODE_DIR;
			continue;
		}
		rlen += 1 + n;
	}
	if (rlen == 0) {
		res[rlen++] = '/';
		res[rlen] = '\0';
		r = fs->ops->lstat(fs, "/", &st);
		if (r < 0)
			return r;
	}
	if (rlen + 1 > size)
		return -ENAMETOOLONG;
	memcpy(out, res, rlen + 1);
	if (ret_st)
		*ret_st = st;
	return 0;
}

/* ---- the index shared by cpio and ext ---- */

int scan_index_add(struct scan_index *ix, const char *path, enum scan_node_type type, uint64_t size,
                   const uint8_t *data, uint64_t ino)
{
	struct scan_index_entry *e;

	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 256;

		e = realloc(ix->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		ix->e = e;
		ix->cap = cap;
	}
	e = &ix->e[ix->n];
	e->path = strdup(path);
	if (!e->path)
		return -ENOMEM;
	e->type = type;
	e->size = size;
	e->data = data;
	e->ino = ino;
	e->seq = (uint32_t)ix->n;
	ix->n++;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct scan_index_entry *x = a, *y = b;
	int c = scan_path_cmp(x->path, y->path);

	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void scan_index_finish(struct scan_index *ix)
{
	size_t w = 0;

	if (ix->n)
		qsort(ix->e, ix->n, sizeof(*ix->e), entry_cmp);
	for (size_t i = 0; i < ix->n; i++) {
		/* Of several entries with one path, the last one in the archive wins. */
		if (i + 1 < ix->n && !strcmp(ix->e[i].path, ix->e[i + 1].path)) {
			free(ix->e[i].path);
			continue;
		}
		ix->e[w++] = ix->e[i];
	}
	ix->n = w;
}

void scan_index_release(struct scan_index *ix)
{
	for (size_t i = 0; i < ix->n; i++)
		free(ix->e[i].path);
	free(ix->e);
	ix->e = NULL;
	ix->n = ix->cap = 0;
}

/* First entry not before @path. */
static size_t index_lower_bound(const struct scan_index *ix, const char *path)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (scan_path_cmp(ix->e[mid].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct scan_index_entry *scan_index_find(const struct scan_index *ix, const char *path)
{
	size_t i = index_lower_bound(ix, path);

	return i < ix->n && !strcmp(ix->e[i].path, path) ? &ix->e[i] : NULL;
}

/* Is there any entry below directory @path ("/a" has "/a/b")? */
static bool index_has_children(const struct scan_index *ix, const char *path, size_t *ret_first)
{
	size_t len = strlen(path), i;

	if (len == 1 && path[0] == '/') {
		*ret_first = 0;
		return ix->n > 0;
	}
	i = index_lower_bound(ix, path);
	if (i < ix->n && !strcmp(ix->e[i].path, path))
		i++;
	*ret_first = i;
	return i < ix->n && !strncmp(ix->e[i].path, path, len) && ix->e[i].path[len] == '/';
}

int scan_index_lstat(struct scan_fs *fs, const char *path, struct scan_stat *ret)
{
	const struct scan_index_entry *e = scan_index_find(&fs->index, path);
	size_t first;

	if (e) {
		ret->type = e->type;
		ret->size = e->size;
		return 0;
	}
	/* Archives may omit directories that hold files; the kernel would fail
	 * to unpack those files, but reading them costs nothing here. */
	if (!strcmp(path, "/") || index_has_children(&fs->index, path, &first)) {
		ret->type = SCAN_NODE_DIR;
		ret->size = 0;
		return 0;
	}
	return -ENOENT;
}

int scan_index_list(struct scan_fs *fs, const char *path, struct tgvm_strv *ret)
{
	const struct scan_index *ix = &fs->index;
	size_t len = strcmp(path, "/") ? strlen(path) : 0, first;
	char last[SCAN_PATH_MAX] = "";
	int r;

	if (!index_has_children(ix, path, &first))
		return 0;
	for (size_t i = first; i < ix->n; i++) {
		const char *p = ix->e[i].path, *name, *slash;
		size_t n;

		if (len && (strncmp(p, path, len) || p[len] != '/'))
			break;
		name = p + len + 1;
		slash = strchr(name, '/');
		n = slash ? (size_t)(slash - name) : strlen(name);
		if (n == 0 || n >= sizeof(last))
			continue;
		if (!strncmp(last, name, n) && last[n] == '\0')
			continue;
		memcpy(last, name, n);
		last[n] = '\0';
		r = tgvm_strv_push(ret, last);
		if (r < 0)
			return r;
	}
	return 0;
}

int scan_index_walk(struct scan_fs *fs, scan_fs_walk_cb cb, scan_fs_error_cb on_error, void *ud,
                    struct tgvm_error *reterr)
{
	(void)on_error;
	(void)reterr;
	for (size_t i = 0; i < fs->index.n; i++) {
		const struct scan_index_entry *e = &fs->index.e[i];
		int r;

		if (e->type != SCAN_NODE_REG)
			continue;
		if (e->size > fs->lim.file_max) {
			if (on_error) {
				struct tgvm_error err;

				tgvm_error_set(&err, EFBIG,
				               "'%s' in '%s' is larger than %llu MiB; skipped",
				               e->path, fs->origin,
				               (unsigned long long)(fs->lim.file_max >> 20));
				on_error(e->path, &err, ud);
			}
			continue;
		}
		r = cb(fs, e->path, e->size, &(struct scan_fs_id){0, e->ino}, ud);
		if (r)
			return r;
	}
	return 0;
}

/* ---- opening ---- */

static bool is_qcow2(const uint8_t *p, size_t n)
{
	return n >= 4 && !memcmp(p, "QFI\xfb", 4);
}

/* Names of a few file systems met in VM images that we do not read, by magic. */
static const char *other_fs(const uint8_t *p, size_t n)
{
	if (n >= 4 && !memcmp(p, "hsqs", 4))
		return "squashfs";
	if (n >= 4 && !memcmp(p, "XFSB", 4))
		return "xfs";
	if (n >= 0x10048 && !memcmp(p + 0x10040, "_BHRfS_M", 8))
		return "btrfs";
	return NULL;
}

/* ext*.c */
int scan_ext4_find(int fd, uint64_t size, const uint8_t *head, size_t n, uint64_t *ret_offset,
                   bool *ret_table);

int scan_fs_open_with(const char *path, const struct scan_fs_limits *lim, struct scan_fs **ret,
                      struct tgvm_error *reterr)
{
	uint8_t head[0x10100];
	struct stat st;
	ssize_t n = 0;
	uint64_t off = 0;
	bool table = false;
	const char *fsname;
	int fd = -1, r;

	if (!path || !*path)
		return tgvm_error_set(reterr, EINVAL, "no path given");
	if (stat(path, &st) < 0)
		return tgvm_error_set(reterr, errno, "cannot open '%s': %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return scan_dir_open(path, lim, ret, reterr);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return tgvm_error_set(reterr, EINVAL,
		                      "'%s' is not a file, a directory or a disk image", path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return tgvm_error_set(reterr, errno, "cannot open '%s': %s", path, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(fd, 0, SEEK_END);

		st.st_size = end > 0 ? end : 0;
	}
	while ((size_t)n < sizeof(head)) {
		ssize_t k = pread(fd, head + n, sizeof(head) - (size_t)n, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = tgvm_error_set(reterr, errno, "cannot read '%s': %s", path,
			                   strerror(errno));
			goto out;
		}
		if (k == 0)
			break;
		n += k;
	}
	if (n >= 4 && !memcmp(head, "\177ELF", 4)) {
		r = scan_file_open(path, lim, ret, reterr);
		goto out;
	}
	if (scan_cpio_detect(head, (size_t)n)) {
		r = scan_cpio_open(path, fd, (uint64_t)st.st_size, lim, ret, reterr);
		goto out;
	}
	if (is_qcow2(head, (size_t)n)) {
		r = tgvm_error_set(reterr, ENOTSUP,
		                   "'%s' is a qcow2 image; convert it first with "
		                   "'qemu-img convert -O raw'",
		                   path);
		goto out;
	}
	if (scan_ext4_find(fd, (uint64_t)st.st_size, head, (size_t)n, &off, &table)) {
		r = scan_ext4_open(path, off, lim, ret, reterr);
		goto out;
	}
	if (table) {
		r = tgvm_error_set(reterr, ENOTSUP,
		                   "no ext2/3/4 file system in the partitions of '%s'", path);
		goto out;
	}
	fsname = other_fs(head, (size_t)n);
	if (fsname) {
		r = tgvm_error_set(reterr, ENOTSUP,
		                   "'%s' holds a %s file system; only ext2/3/4 can be read", path,
		                   fsname);
		goto out;
	}
	r = scan_file_open(path, lim, ret, reterr);
out:
	if (fd >= 0)
		close(fd);
	return r;
}

int scan_fs_open(const char *path, struct scan_fs **ret, struct tgvm_error *reterr)
{
	return scan_fs_open_with(path, NULL, ret, reterr);
}

int scan_fs_walk(struct scan_fs *fs, scan_fs_walk_cb cb, scan_fs_error_cb on_error, void *ud,
                 struct tgvm_error *reterr)
{
	if (on_error)
		for (size_t i = 0; i < fs->n_deferred; i++)
			on_error(fs->deferred[i].path, &fs->deferred[i].err, ud);
	return fs->ops->walk(fs, cb, on_error, ud, reterr);
}

int scan_fs_read(struct scan_fs *fs, const char *path, struct scan_blob *ret,
                 struct tgvm_error *reterr)
{
	char res[SCAN_PATH_MAX];
	struct scan_stat st;
	int r;

	if (fs->self && !strcmp(path, fs->self))
		return fs->ops->read(fs, path, ret, reterr);
	if (fs->ops->read_unresolved) {
		r = fs->ops->read_unresolved(fs, path, ret, reterr);
		if (r != -ENOSYS)
			return r;
	}
	r = scan_fs_resolve(fs, path, true, res, sizeof(res), &st);
	if (r < 0)
		return tgvm_error_set(reterr, -r, "cannot open '%s' in '%s': %s", path, fs->origin,
		                      strerror(-r));
	if (st.type == SCAN_NODE_DIR)
		return tgvm_error_set(reterr, EISDIR, "'%s' in '%s' is a directory", path,
		                      fs->origin);
	if (st.type != SCAN_NODE_REG)
		return tgvm_error_set(reterr, EINVAL, "'%s' in '%s' is not a regular file", path,
		                      fs->origin);
	if (st.size > fs->lim.file_max)
		return tgvm_error_set(reterr, EFBIG, "'%s' in '%s' is larger than %llu MiB", path,
		                      fs->origin, (unsigned long long)(fs->lim.file_max >> 20));
	return fs->ops->read(fs, res, ret, reterr);
}

void scan_blob_release(struct scan_blob *b)
{
	if (!b)
		return;
	switch (b->priv_kind_) {
	case SCAN_BLOB_MMAP:
		munmap(b->priv_, b->priv_size_);
		break;
	case SCAN_BLOB_HEAP:
		free(b->priv_);
		break;
	default:
		break;
	}
	b->data = NULL;
	b->size = 0;
	b->priv_ = NULL;
	b->priv_size_ = 0;
	b->priv_kind_ = SCAN_BLOB_NONE;
}

bool scan_fs_exists(struct scan_fs *fs, const char *path, char *resolved, size_t size)
{
	char res[SCAN_PATH_MAX];
	struct scan_stat st;

	if (fs->self && !strcmp(path, fs->self)) {
		if (resolved && snprintf(resolved, size, "%s", path) >= (int)size)
			return false;
		return true;
	}
	if (scan_fs_resolve(fs, path, true, res, sizeof(res), &st) < 0)
		return false;
	if (st.type != SCAN_NODE_REG)
		return false;
	if (resolved) {
		if (strlen(res) >= size)
			return false;
		memcpy(resolved, res, strlen(res) + 1);
	}
	return true;
}
