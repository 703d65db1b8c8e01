// SPDX-License-Identifier: MIT
/*
 * Raw disk images with an ext2/3/4 file system, read with libext2fs without
 * mounting: the whole disk or the first MBR/GPT partition that holds one.
 * Opening indexes every directory; contents are read into bounded buffers.
 * libext2fs is not thread-safe, so every call into it holds one lock.
 */
#include <errno.h>
#include <et/com_err.h>
#include <ext2fs/ext2fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scan/source-int.h"

#define EXT_MAGIC_OFF   1080 /* 1024 + offsetof(s_magic) */
#define MBR_LOGICAL_MAX 64
#define GPT_ENTRIES_MAX 1024

struct ext_priv {
	ext2_filsys e2;
	pthread_mutex_t lock;
	uint64_t offset;
};

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static bool read_at(int fd, uint64_t off, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		got += (size_t)k;
	}
	return true;
}

static bool ext_at(int fd, uint64_t size, uint64_t off)
{
	uint8_t m[2];

	if (off > size || size - off < EXT_MAGIC_OFF + 2)
		return false;
	return read_at(fd, off + EXT_MAGIC_OFF, m, 2) && m[0] == 0x53 && m[1] == 0xef;
}

static bool gpt_find(int fd, uint64_t size, uint64_t sector, uint64_t *ret, bool *ret_table)
{
	uint8_t h[92];
	uint64_t lba, esz, n;
	uint8_t *ent = NULL;
	bool found = false;

	if (!read_at(fd, sector, h, sizeof(h)) || memcmp(h, "EFI PART", 8))
		return false;
	*ret_table = true;
	lba = le64(h + 72);
	n = le32(h + 80);
	esz = le32(h + 84);
	if (n == 0 || n > GPT_ENTRIES_MAX || esz < 128 || esz > 4096 || esz % 8 ||
	    lba > size / sector)
		return false;
	ent = malloc(n * esz);
	if (!ent)
		return false;
	if (read_at(fd, lba * sector, ent, n * esz)) {
		static const uint8_t zero[16];

		for (uint64_t i = 0; i < n && !found; i++) {
			const uint8_t *e = ent + i * esz;
			uint64_t first = le64(e + 32);

			if (!memcmp(e, zero, 16) || first > size / sector)
				continue;
			if (ext_at(fd, size, first * sector)) {
				*ret = first * sector;
				found = true;
			}
		}
	}
	free(ent);
	return found;
}

static bool is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

static bool mbr_find(int fd, uint64_t size, const uint8_t *mbr, uint64_t *ret, bool *ret_table)
{
	uint64_t ext_base = 0;
	bool any = false;

	if (mbr[510] != 0x55 || mbr[511] != 0xaa)
		return false;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = mbr + 446 + 16 * i;
		uint64_t start = le32(e + 8), len = le32(e + 12);

		if ((e[0] != 0 && e[0] != 0x80) || e[4] == 0 || len == 0)
			continue;
		any = true;
		if (e[4] == 0xee)
			continue; /* protective entry of a GPT disk */
		if (is_extended(e[4])) {
			if (!ext_base)
				ext_base = start;
			continue;
		}
		if (ext_at(fd, size, start * 512)) {
			*ret_table = true;
			*ret = start * 512;
			return true;
		}
	}
	if (any)
		*ret_table = true;
	/* Logical partitions: a chain of EBRs, each relative to the extended one. */
	for (uint64_t ebr = ext_base, hops = 0; ebr && hops < MBR_LOGICAL_MAX; hops++) {
		uint8_t b[512];
		uint64_t start, next;

		if (ebr > size / 512 || !read_at(fd, ebr * 512, b, sizeof(b)) || b[510] != 0x55 ||
		    b[511] != 0xaa)
			break;
		start = ebr + le32(b + 446 + 8);
		if (b[446 + 4] && ext_at(fd, size, start * 512)) {
			*ret = start * 512;
			return true;
		}
		next = le32(b + 462 + 8);
		if (!b[462 + 4] || !next)
			break;
		ebr = ext_base + next;
	}
	return false;
}

/*
 * Where is the ext file system of this image? At 0 (a bare file system), else
 * in the first GPT or MBR partition that has the ext magic. *ret_table says a
 * partition table was seen (so "not found" can be said precisely).
 */
int scan_ext4_find(int fd, uint64_t size, const uint8_t *head, size_t n, uint64_t *ret_offset,
                   bool *ret_table)
{
	*ret_table = false;
	if (n >= EXT_MAGIC_OFF + 2 && head[EXT_MAGIC_OFF] == 0x53 &&
	    head[EXT_MAGIC_OFF + 1] == 0xef) {
		*ret_offset = 0;
		return 1;
	}
	if (n < 512)
		return 0;
	if (gpt_find(fd, size, 512, ret_offset, ret_table) ||
	    gpt_find(fd, size, 4096, ret_offset, ret_table))
		return 1;
	if (mbr_find(fd, size, head, ret_offset, ret_table))
		return 1;
	return 0;
}

/* ---- the file system ---- */

static ext2_filsys ext_fs(struct scan_fs *fs)
{
	return ((struct ext_priv *)fs->priv)->e2;
}

static enum scan_node_type ext_type(uint16_t mode)
{
	if (LINUX_S_ISREG(mode))
		return SCAN_NODE_REG;
	if (LINUX_S_ISDIR(mode))
		return SCAN_NODE_DIR;
	if (LINUX_S_ISLNK(mode))
		return SCAN_NODE_LNK;
	return SCAN_NODE_OTHER;
}

struct child {
	char *name;
	ext2_ino_t ino;
};

struct dir_collect {
	struct child *c;
	size_t n, cap;
	uint64_t budget; /* entries still allowed */
	int err;
};

static int collect_entry(struct ext2_dir_entry *dirent, int offset, int blocksize, char *buf,
                         void *priv)
{
	struct dir_collect *dc = priv;
	int len = ext2fs_dirent_name_len(dirent);
	struct child *c;

	(void)offset;
	(void)blocksize;
	(void)buf;
	if (dirent->inode == 0 || len == 0)
		return 0;
	if ((len == 1 && dirent->name[0] == '.') ||
	    (len == 2 && dirent->name[0] == '.' && dirent->name[1] == '.'))
		return 0;
	if (memchr(dirent->name, '/', (size_t)len) || memchr(dirent->name, 0, (size_t)len))
		return 0; /* no file system writes such names; skip them */
	if (dc->n >= dc->budget) {
		dc->err = E2BIG;
		return DIRENT_ABORT;
	}
	if (dc->n == dc->cap) {
		size_t cap = dc->cap ? dc->cap * 2 : 32;

		c = realloc(dc->c, cap * sizeof(*c));
		if (!c) {
			dc->err = ENOMEM;
			return DIRENT_ABORT;
		}
		dc->c = c;
		dc->cap = cap;
	}
	c = &dc->c[dc->n];
	c->name = strndup(dirent->name, (size_t)len);
	if (!c->name) {
		dc->err = ENOMEM;
		return DIRENT_ABORT;
	}
	c->ino = dirent->inode;
	dc->n++;
	return 0;
}

static int child_cmp(const void *a, const void *b)
{
	return strcmp(((const struct child *)a)->name, ((const struct child *)b)->name);
}

struct visited {
	ext2_ino_t *v;
	size_t n, cap; /* open addressing, cap a power of two */
};

/* Add @ino; false when it was there already (a directory seen twice). */
static bool visited_add(struct visited *s, ext2_ino_t ino)
{
	size_t i;

	if (2 * (s->n + 1) > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		ext2_ino_t *v = calloc(cap, sizeof(*v));

		if (!v)
			return false;
		for (size_t k = 0; k < s->cap; k++)
			if (s->v[k]) {
				size_t j = (s->v[k] * 2654435761u) & (cap - 1);

				while (v[j])
					j = (j + 1) & (cap - 1);
				v[j] = s->v[k];
			}
		free(s->v);
		s->v = v;
		s->cap = cap;
	}
	for (i = (ino * 2654435761u) & (s->cap - 1); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == ino)
			return false;
	s->v[i] = ino;
	s->n++;
	return true;
}

static void defer_e2(struct scan_fs *fs, const char *path, errcode_t ec, const char *what)
{
	scan_fs_defer(fs, path, EIO, "'%s' in '%s': cannot %s: %s", path, fs->origin, what,
	              error_message(ec));
}

static int index_dir(struct scan_fs *fs, struct visited *seen, ext2_ino_t dir, char *path,
                     size_t plen, int depth)
{
	ext2_filsys e2 = ext_fs(fs);
	struct dir_collect dc = {0};
	errcode_t ec;
	int r = 0;

	if (!visited_add(seen, dir)) {
		scan_fs_defer(fs, plen ? path : "/", ELOOP,
		              "'%s' in '%s': directory reached twice (corrupt file system)",
		              plen ? path : "/", fs->origin);
		return 0;
	}
	dc.budget = fs->lim.files_max > fs->index.n ? fs->lim.files_max - fs->index.n : 0;
	ec = ext2fs_dir_iterate(e2, dir, 0, NULL, collect_entry, &dc);
	if (dc.err == ENOMEM) {
		r = -ENOMEM;
		goto out;
	}
	if (dc.err == E2BIG)
		scan_fs_defer(fs, fs->origin, E2BIG,
		              "'%s' has more than %u entries; the rest is skipped", fs->origin,
		              fs->lim.files_max);
	else if (ec)
		defer_e2(fs, plen ? path : "/", ec, "read directory");
	if (dc.n)
		qsort(dc.c, dc.n, sizeof(*dc.c), child_cmp);
	for (size_t i = 0; i < dc.n && r == 0; i++) {
		struct ext2_inode_large inode;
		size_t nlen = strlen(dc.c[i].name);
		enum scan_node_type type;
		uint64_t size;

		if (plen + 1 + nlen + 1 > SCAN_PATH_MAX)
			continue;
		path[plen] = '/';
		memcpy(path + plen + 1, dc.c[i].name, nlen + 1);
		if (dc.c[i].ino > e2->super->s_inodes_count) {
			scan_fs_defer(fs, path, EIO, "'%s' in '%s': inode %u is out of range", path,
			              fs->origin, dc.c[i].ino);
			continue;
		}
		ec = ext2fs_read_inode_full(e2, dc.c[i].ino, (struct ext2_inode *)&inode,
		                            sizeof(inode));
		if (ec) {
			defer_e2(fs, path, ec, "read inode");
			continue;
		}
		type = ext_type(inode.i_mode);
		size = EXT2_I_SIZE(&inode);
		if (fs->index.n >= fs->lim.files_max)
			break;
		r = scan_index_add(&fs->index, path, type, size, NULL, dc.c[i].ino);
		if (r < 0)
			break;
		if (type == SCAN_NODE_DIR) {
			if (depth + 1 > SCAN_DEPTH_MAX) {
				scan_fs_defer(fs, path, ELOOP, "'%s' in '%s': nested too deep",
				              path, fs->origin);
				continue;
			}
			r = index_dir(fs, seen, dc.c[i].ino, path, plen + 1 + nlen, depth + 1);
		}
	}
out:
	path[plen] = '\0';
	for (size_t i = 0; i < dc.n; i++)
		free(dc.c[i].name);
	free(dc.c);
	return r;
}

static int ext_lstat(struct scan_fs *fs, const char *path, struct scan_stat *ret)
{
	return scan_index_lstat(fs, path, ret);
}

/* Read up to @max bytes of inode @ino into a new buffer; caller holds the lock. */
static int ext_read_ino(struct scan_fs *fs, ext2_ino_t ino, const char *path, uint64_t max,
                        uint8_t **ret_data, size_t *ret_len, struct tgvm_error *reterr)
{
	ext2_filsys e2 = ext_fs(fs);
	ext2_file_t f = NULL;
	uint8_t *buf = NULL;
	uint64_t size;
	size_t got = 0;
	errcode_t ec;
	int r = 0;

	ec = ext2fs_file_open(e2, ino, 0, &f);
	if (ec)
		return tgvm_error_set(reterr, EIO, "'%s' in '%s': cannot open inode %u: %s", path,
		                      fs->origin, ino, error_message(ec));
	size = ext2fs_file_get_size(f);
	if (size > max) {
		r = tgvm_error_set(reterr, EFBIG, "'%s' in '%s' is larger than %llu MiB", path,
		                   fs->origin, (unsigned long long)(max >> 20));
		goto out;
	}
	buf = malloc(size ? (size_t)size : 1);
	if (!buf) {
		r = tgvm_error_set(reterr, ENOMEM, "'%s' in '%s': out of memory", path, fs->origin);
		goto out;
	}
	while (got < size) {
		unsigned int want = (unsigned int)TGVM_MIN(size - got, (uint64_t)1 << 30), n = 0;

		ec = ext2fs_file_read(f, buf + got, want, &n);
		if (ec) {
			r = tgvm_error_set(reterr, EIO, "'%s' in '%s': cannot read: %s", path,
			                   fs->origin, error_message(ec));
			goto out;
		}
		if (n == 0) {
			r = tgvm_error_set(reterr, EIO,
			                   "'%s' in '%s': data ends at %zu of %llu bytes", path,
			                   fs->origin, got, (unsigned long long)size);
			goto out;
		}
		got += n;
	}
	*ret_data = buf;
	*ret_len = (size_t)size;
	buf = NULL;
out:
	free(buf);
	ext2fs_file_close(f);
	return r;
}

static int ext_readlink(struct scan_fs *fs, const char *path, char *buf, size_t size)
{
	const struct scan_index_entry *e = scan_index_find(&fs->index, path);
	struct ext_priv *p = fs->priv;
	struct ext2_inode inode;
	uint8_t *data = NULL;
	size_t len = 0;
	int r = 0;

	if (!e)
		return -ENOENT;
	if (e->type != SCAN_NODE_LNK)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	if (ext2fs_read_inode(p->e2, (ext2_ino_t)e->ino, &inode)) {
		r = -EIO;
		goto out;
	}
	if (ext2fs_is_fast_symlink(&inode)) {
		len = strnlen((const char *)inode.i_block,
		              TGVM_MIN(sizeof(inode.i_block), (size_t)EXT2_I_SIZE(&inode)));
		if (len >= size) {
			r = -ENAMETOOLONG;
			goto out;
		}
		memcpy(buf, inode.i_block, len);
		buf[len] = '\0';
		goto out;
	}
	r = ext_read_ino(fs, (ext2_ino_t)e->ino, path, SCAN_PATH_MAX - 1, &data, &len, NULL);
	if (r < 0)
		goto out;
	len = strnlen((const char *)data, len);
	if (len >= size) {
		r = -ENAMETOOLONG;
		goto out;
	}
	memcpy(buf, data, len);
	buf[len] = '\0';
out:
	pthread_mutex_unlock(&p->lock);
	free(data);
	return r;
}

static int ext_read(struct scan_fs *fs, const char *path, struct scan_blob *ret,
                    struct tgvm_error *reterr)
{
	const struct scan_index_entry *e = scan_index_find(&fs->index, path);
	struct ext_priv *p = fs->priv;
	uint8_t *data = NULL;
	size_t len = 0;
	int r;

	if (!e || e->type != SCAN_NODE_REG)
		return tgvm_error_set(reterr, ENOENT, "cannot open '%s' in '%s': %s", path,
		                      fs->origin, strerror(ENOENT));
	pthread_mutex_lock(&p->lock);
	r = ext_read_ino(fs, (ext2_ino_t)e->ino, path, fs->lim.file_max, &data, &len, reterr);
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		return r;
	memset(ret, 0, sizeof(*ret));
	ret->data = data;
	ret->size = len;
	ret->priv_ = data;
	ret->priv_size_ = len;
	ret->priv_kind_ = SCAN_BLOB_HEAP;
	return 0;
}

static void ext_free(struct scan_fs *fs)
{
	struct ext_priv *p = fs->priv;

	if (!p)
		return;
	if (p->e2)
		ext2fs_close_free(&p->e2);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const struct scan_fs_ops ext_ops = {
    .lstat = ext_lstat,
    .readlink = ext_readlink,
    .read = ext_read,
    .list = scan_index_list,
    .walk = scan_index_walk,
    .free = ext_free,
};

int scan_ext4_open(const char *path, uint64_t offset, const struct scan_fs_limits *lim,
                   struct scan_fs **ret, struct tgvm_error *reterr)
{
	struct scan_fs *fs = NULL;
	struct ext_priv *p;
	struct visited seen = {0};
	char opts[64], *where;
	char *buf = NULL;
	errcode_t ec;
	int r;

	r = scan_fs_alloc(path, lim, SCAN_FS_EXT4, &ext_ops, &fs);
	if (r < 0)
		return tgvm_error_set(reterr, -r, "cannot open '%s': %s", path, strerror(-r));
	p = calloc(1, sizeof(*p));
	if (!p) {
		r = tgvm_error_set(reterr, ENOMEM, "cannot open '%s': out of memory", path);
		goto fail;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->offset = offset;
	fs->priv = p;
	snprintf(opts, sizeof(opts), "offset=%llu", (unsigned long long)offset);
	where = offset ? opts : NULL;
	ec = ext2fs_open2(path, where, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0, unix_io_manager,
	                  &p->e2);
	if (ec) {
		p->e2 = NULL;
		if (offset)
			r = tgvm_error_set(
			    reterr, EINVAL,
			    "cannot read the ext file system at offset %llu of '%s': "
			    "%s",
			    (unsigned long long)offset, path, error_message(ec));
		else
			r = tgvm_error_set(reterr, EINVAL,
			                   "cannot read the ext file system of '%s': %s", path,
			                   error_message(ec));
		goto fail;
	}
	buf = malloc(SCAN_PATH_MAX);
	if (!buf) {
		r = tgvm_error_set(reterr, ENOMEM, "cannot open '%s': out of memory", path);
		goto fail;
	}
	buf[0] = '\0';
	r = index_dir(fs, &seen, EXT2_ROOT_INO, buf, 0, 0);
	if (r < 0) {
		r = tgvm_error_set(reterr, -r, "cannot index '%s': %s", path, strerror(-r));
		goto fail;
	}
	scan_index_finish(&fs->index);
	free(seen.v);
	free(buf);
	*ret = fs;
	return 0;
fail:
	free(seen.v);
	free(buf);
	scan_fs_free(fs);
	return r;
}
