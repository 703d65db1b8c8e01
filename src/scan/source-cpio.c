// SPDX-License-Identifier: MIT
/*
 * initramfs/cpio archives as the kernel unpacks them (init/initramfs.c):
 * "newc" and "crc" entries, archives concatenated with zero padding, each
 * piece plain or compressed with gzip, xz or zstd. Compressed pieces inflate
 * into anonymous memory bounded by archive_max; plain ones stay mapped.
 */
#include <errno.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <zlib.h>
#include <zstd.h>

#include "scan/source-int.h"

#define CPIO_HDR_LEN 110

enum compression { COMP_NONE, COMP_GZIP, COMP_XZ, COMP_ZSTD, COMP_UNSUPPORTED };

struct region {
	void *p;
	size_t size;
};

struct cpio_link {
	uint32_t ino, maj, min;
	size_t entry; /* index entry of this name */
};

struct cpio_priv {
	struct region *regions; /* the file's mapping and each inflated piece */
	size_t n_regions;
	uint64_t inflated;       /* bytes inflated so far, against archive_max */
	struct cpio_link *links; /* names of hard-link groups in the current archive */
	size_t n_links;
};

static enum compression detect_compression(const uint8_t *p, size_t n, const char **ret_name)
{
	*ret_name = NULL;
	if (n >= 2 && p[0] == 0x1f && (p[1] == 0x8b || p[1] == 0x9e))
		return COMP_GZIP;
	if (n >= 6 && !memcmp(p,
	                      "\xfd"
	                      "7zXZ\0",
	                      6))
		return COMP_XZ;
	if (n >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4))
		return COMP_ZSTD;
	if (n >= 3 && !memcmp(p, "BZh", 3))
		*ret_name = "bzip2";
	else if (n >= 3 && p[0] == 0x5d && p[1] == 0 && p[2] == 0)
		*ret_name = "lzma";
	else if (n >= 4 && !memcmp(p, "\x89LZO", 4))
		*ret_name = "lzo";
	else if (n >= 4 && !memcmp(p, "\x02\x21\x4c\x18", 4))
		*ret_name = "lz4";
	return *ret_name ? COMP_UNSUPPORTED : COMP_NONE;
}

static bool is_cpio_magic(const uint8_t *p, size_t n)
{
	return n >= 6 && !memcmp(p, "07070", 5) && (p[5] == '1' || p[5] == '2' || p[5] == '7');
}

/* ---- inflating into growable anonymous memory ---- */

struct sink {
	uint8_t *p;
	size_t len, cap, max;
	size_t first; /* first allocation, from the compressed size */
	bool hit_max;
};

static int sink_grow(struct sink *s)
{
	size_t cap;
	void *p;

	if (s->cap >= s->max) {
		s->hit_max = true;
		return -EFBIG;
	}
	cap = s->cap ? s->cap * 2 : TGVM_MAX(s->first, (size_t)65536);
	if (cap > s->max)
		cap = s->max;
	if (s->p)
		p = mremap(s->p, s->cap, cap, MREMAP_MAYMOVE);
	else
		p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	s->p = p;
	s->cap = cap;
	return 0;
}

static int inflate_gzip(const uint8_t *in, size_t n, size_t *ret_used, struct sink *s, char *why,
                        size_t whysz)
{
	z_stream z;
	int zr = Z_OK, r = 0;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)TGVM_MIN(n, (size_t)1 << 30);
	for (;;) {
		if (s->len == s->cap && (r = sink_grow(s)) < 0)
			break;
		z.next_out = s->p + s->len;
		z.avail_out = (uInt)TGVM_MIN(s->cap - s->len, (size_t)1 << 30);
		zr = inflate(&z, Z_NO_FLUSH);
		s->len = (size_t)(z.next_out - s->p);
		if (zr == Z_STREAM_END)
			break;
		if (zr == Z_BUF_ERROR && z.avail_in == 0) {
			size_t used = (size_t)(z.next_in - in);

			if (used < n) {
				z.avail_in = (uInt)TGVM_MIN(n - used, (size_t)1 << 30);
				continue;
			}
			snprintf(why, whysz, "gzip stream is truncated");
			r = -EIO;
			break;
		}
		if (zr != Z_OK && zr != Z_BUF_ERROR) {
			snprintf(why, whysz, "gzip stream is corrupt (%s)", z.msg ? z.msg : "?");
			r = -EIO;
			break;
		}
	}
	*ret_used = (size_t)(z.next_in - in);
	inflateEnd(&z);
	return r;
}

static int inflate_xz(const uint8_t *in, size_t n, size_t *ret_used, struct sink *s, char *why,
                      size_t whysz)
{
	lzma_stream x = LZMA_STREAM_INIT;
	lzma_ret lr;
	int r = 0;

	/* 256 MiB of decoder memory covers every preset (-9e needs 65 MiB). */
	if (lzma_stream_decoder(&x, 256ULL << 20, 0) != LZMA_OK)
		return -ENOMEM;
	x.next_in = in;
	x.avail_in = n;
	for (;;) {
		if (s->len == s->cap && (r = sink_grow(s)) < 0)
			break;
		x.next_out = s->p + s->len;
		x.avail_out = s->cap - s->len;
		lr = lzma_code(&x, x.avail_in ? LZMA_RUN : LZMA_FINISH);
		s->len = (size_t)(x.next_out - s->p);
		if (lr == LZMA_STREAM_END)
			break;
		if (lr == LZMA_OK)
			continue;
		if (lr == LZMA_BUF_ERROR)
			snprintf(why, whysz, "xz stream is truncated");
		else if (lr == LZMA_MEMLIMIT_ERROR)
			snprintf(why, whysz, "xz stream needs more than 256 MiB to decode");
		else
			snprintf(why, whysz, "xz stream is corrupt (error %d)", (int)lr);
		r = -EIO;
		break;
	}
	*ret_used = (size_t)(x.next_in - in);
	lzma_end(&x);
	return r;
}

static int inflate_zstd(const uint8_t *in, size_t n, size_t *ret_used, struct sink *s, char *why,
                        size_t whysz)
{
	ZSTD_DStream *z = ZSTD_createDStream();
	ZSTD_inBuffer ib = {in, n, 0};
	size_t zr = 1;
	int r = 0;

	if (!z)
		return -ENOMEM;
	/* Frames follow each other (zstd -T writes several); take them all. */
	for (;;) {
		ZSTD_outBuffer ob;

		if (zr == 0) {
			const uint8_t *p = in + ib.pos;
			size_t left = n - ib.pos;
			bool frame = left >= 4 && !memcmp(p, "\x28\xb5\x2f\xfd", 4);
			bool skippable = left >= 4 && (p[0] & 0xf0) == 0x50 && p[1] == 0x2a &&
			                 p[2] == 0x4d && p[3] == 0x18;

			if (!frame && !skippable)
				break;
		}
		if (s->len == s->cap && (r = sink_grow(s)) < 0)
			break;
		ob.dst = s->p + s->len;
		ob.size = s->cap - s->len;
		ob.pos = 0;
		zr = ZSTD_decompressStream(z, &ob, &ib);
		s->len += ob.pos;
		if (ZSTD_isError(zr)) {
			snprintf(why, whysz, "zstd stream is corrupt (%s)", ZSTD_getErrorName(zr));
			r = -EIO;
			break;
		}
		if (zr != 0 && ib.pos == n && ob.pos < ob.size) {
			snprintf(why, whysz, "zstd stream is truncated");
			r = -EIO;
			break;
		}
	}
	*ret_used = ib.pos;
	ZSTD_freeDStream(z);
	return r;
}

/* ---- parsing ---- */

static int parse_hex8(const uint8_t *p, uint32_t *ret)
{
	uint32_t v = 0;

	for (int i = 0; i < 8; i++) {
		int c = p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -EINVAL;
		v = v << 4 | (uint32_t)d;
	}
	*ret = v;
	return 0;
}

static size_t align4(size_t x)
{
	return (x + 3) & ~(size_t)3;
}

static enum scan_node_type cpio_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return SCAN_NODE_REG;
	case S_IFDIR:
		return SCAN_NODE_DIR;
	case S_IFLNK:
		return SCAN_NODE_LNK;
	default:
		return SCAN_NODE_OTHER;
	}
}

/* Remember a name of a hard-link group (nlink >= 2). */
static int note_link(struct scan_fs *fs, uint32_t ino, uint32_t maj, uint32_t min)
{
	struct cpio_priv *cp = fs->priv;
	void *p;

	if (cp->n_links % 64 == 0) {
		p = realloc(cp->links, (cp->n_links + 64) * sizeof(*cp->links));
		if (!p)
			return -ENOMEM;
		cp->links = p;
	}
	cp->links[cp->n_links].ino = ino;
	cp->links[cp->n_links].maj = maj;
	cp->links[cp->n_links].min = min;
	cp->links[cp->n_links].entry = fs->index.n - 1;
	cp->n_links++;
	return 0;
}

static int link_cmp(const void *a, const void *b)
{
	const struct cpio_link *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	if (x->maj != y->maj)
		return x->maj < y->maj ? -1 : 1;
	if (x->min != y->min)
		return x->min < y->min ? -1 : 1;
	return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/*
 * At the end of an archive, give every name of a hard-link group the same
 * contents. The kernel links later names to the first one and writes each
 * name's data into the shared inode; GNU cpio puts the data with the last
 * name, so the last name with data wins. Inode numbers restart with each
 * archive, so the groups do too.
 */
static void finish_links(struct scan_fs *fs)
{
	struct cpio_priv *cp = fs->priv;
	size_t i = 0;

	if (cp->n_links > 1)
		qsort(cp->links, cp->n_links, sizeof(*cp->links), link_cmp);
	while (i < cp->n_links) {
		size_t j = i, with_data = SIZE_MAX;

		while (j < cp->n_links && cp->links[j].ino == cp->links[i].ino &&
		       cp->links[j].maj == cp->links[i].maj &&
		       cp->links[j].min == cp->links[i].min) {
			if (fs->index.e[cp->links[j].entry].size)
				with_data = cp->links[j].entry;
			j++;
		}
		for (size_t k = i; k < j; k++) {
			struct scan_index_entry *e = &fs->index.e[cp->links[k].entry];

			/* the group's identity for the walk: unique across archives,
			 * as the entry holding the data is */
			e->ino = with_data != SIZE_MAX ? with_data + 1 : 0;
			if (with_data != SIZE_MAX) {
				e->data = fs->index.e[with_data].data;
				e->size = fs->index.e[with_data].size;
			}
		}
		i = j;
	}
	cp->n_links = 0;
}

/*
 * Parse cpio archives in @buf[*pos..n), stopping after a "TRAILER!!!" when
 * @one_archive, else at the end of @buf (zero padding allowed between
 * archives). @where names the piece in messages. Returns 0 when the
 * structure was sound, -EIO after deferring an error.
 */
static int parse_archive(struct scan_fs *fs, const uint8_t *buf, size_t n, size_t *pos,
                         bool one_archive, const char *where, bool quiet_truncation)
{
	size_t p = *pos;
	int r = 0;

	for (;;) {
		uint32_t f[13];
		char name[SCAN_PATH_MAX];
		const uint8_t *h, *nm;
		size_t namesize, dataoff, filesize;
		bool crc;

		if (!one_archive) {
			while (p < n && buf[p] == 0)
				p++;
		}
		if (p >= n)
			break;
		if (n - p < CPIO_HDR_LEN) {
			if (!quiet_truncation)
				scan_fs_defer(fs, fs->origin, EIO,
				              "'%s': %s ends inside a cpio header at offset %zu",
				              fs->origin, where, p);
			r = -EIO;
			break;
		}
		h = buf + p;
		if (!memcmp(h, "070707", 6)) {
			scan_fs_defer(fs, fs->origin, ENOTSUP,
			              "'%s': %s uses the old binary/odc cpio format at offset %zu; "
			              "the kernel reads only newc and crc",
			              fs->origin, where, p);
			r = -EIO;
			break;
		}
		if (memcmp(h, "07070", 5) || (h[5] != '1' && h[5] != '2')) {
			scan_fs_defer(fs, fs->origin, EIO,
			              "'%s': %s has no cpio header at offset %zu (junk in archive)",
			              fs->origin, where, p);
			r = -EIO;
			break;
		}
		crc = h[5] == '2';
		for (int i = 0; i < 13; i++)
			if (parse_hex8(h + 6 + 8 * i, &f[i]) < 0) {
				scan_fs_defer(fs, fs->origin, EIO,
				              "'%s': %s has a cpio header with a bad number at "
				              "offset %zu",
				              fs->origin, where, p);
				r = -EIO;
				goto out;
			}
		/* f: ino mode uid gid nlink mtime filesize devmaj devmin rdevmaj rdevmin namesize check */
		namesize = f[11];
		filesize = f[6];
		if (namesize == 0 || namesize > SCAN_PATH_MAX) {
			scan_fs_defer(fs, fs->origin, EIO,
			              "'%s': %s has a cpio entry at offset %zu with a name of %zu "
			              "bytes (limit %d)",
			              fs->origin, where, p, namesize, SCAN_PATH_MAX);
			r = -EIO;
			break;
		}
		if (n - p - CPIO_HDR_LEN < namesize) {
			if (!quiet_truncation)
				scan_fs_defer(
				    fs, fs->origin, EIO,
				    "'%s': %s ends inside a cpio entry name at offset %zu",
				    fs->origin, where, p);
			r = -EIO;
			break;
		}
		nm = h + CPIO_HDR_LEN;
		if (nm[namesize - 1] != 0 || memchr(nm, 0, namesize) != nm + namesize - 1) {
			scan_fs_defer(fs, fs->origin, EIO,
			              "'%s': %s has a cpio entry name at offset %zu that is not "
			              "terminated",
			              fs->origin, where, p);
			r = -EIO;
			break;
		}
		memcpy(name, nm, namesize);
		dataoff = align4(p + CPIO_HDR_LEN + namesize);
		if (dataoff > n || n - dataoff < filesize) {
			if (!quiet_truncation)
				scan_fs_defer(fs, name, EIO,
				              "'%s' in '%s': its %zu bytes extend past the end of "
				              "%s",
				              name, fs->origin, filesize, where);
			r = -EIO;
			break;
		}
		p = align4(dataoff + filesize);
		if (p > n)
			p = n;
		if (!strcmp(name, "TRAILER!!!")) {
			finish_links(fs);
			if (one_archive)
				break;
			continue;
		}
		{
			char path[SCAN_PATH_MAX];
			enum scan_node_type type = cpio_type(f[1]);
			const uint8_t *data = buf + dataoff;

			if (scan_path_normalize(name, path, sizeof(path)) < 0 || !strcmp(path, "/"))
				continue;
			if (crc && type == SCAN_NODE_REG) {
				uint32_t sum = 0;

				for (size_t i = 0; i < filesize; i++)
					sum += data[i];
				if (sum != f[12]) {
					scan_fs_defer(fs, path, EIO,
					              "'%s' in '%s': checksum %08x does not match "
					              "the header's %08x; skipped",
					              path, fs->origin, sum, f[12]);
					continue;
				}
			}
			if (type == SCAN_NODE_LNK && filesize >= SCAN_PATH_MAX) {
				scan_fs_defer(fs, path, ENAMETOOLONG,
				              "'%s' in '%s': symlink target of %zu bytes", path,
				              fs->origin, filesize);
				continue;
			}
			if (fs->index.n >= fs->lim.files_max) {
				scan_fs_defer(fs, fs->origin, E2BIG,
				              "'%s' has more than %u entries; the rest is skipped",
				              fs->origin, fs->lim.files_max);
				r = -EIO;
				goto out;
			}
			/* a hard-link group's identity is given by finish_links() */
			r = scan_index_add(&fs->index, path, type, filesize, data, 0);
			if (r < 0)
				goto out;
			if (type == SCAN_NODE_REG && f[4] >= 2) {
				r = note_link(fs, f[0], f[7], f[8]);
				if (r < 0)
					goto out;
			}
		}
	}
out:
	finish_links(fs);
	*pos = p;
	return r;
}

static int cpio_lstat(struct scan_fs *fs, const char *path, struct scan_stat *ret)
{
	return scan_index_lstat(fs, path, ret);
}

static int cpio_readlink(struct scan_fs *fs, const char *path, char *buf, size_t size)
{
	const struct scan_index_entry *e = scan_index_find(&fs->index, path);
	size_t len;

	if (!e)
		return -ENOENT;
	if (e->type != SCAN_NODE_LNK)
		return -EINVAL;
	len = strnlen((const char *)e->data, e->size);
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(buf, e->data, len);
	buf[len] = '\0';
	return 0;
}

static int cpio_read(struct scan_fs *fs, const char *path, struct scan_blob *ret,
                     struct tgvm_error *reterr)
{
	const struct scan_index_entry *e = scan_index_find(&fs->index, path);
	static const uint8_t empty[1];

	if (!e || e->type != SCAN_NODE_REG)
		return tgvm_error_set(reterr, ENOENT, "cannot open '%s' in '%s': %s", path,
		                      fs->origin, strerror(ENOENT));
	memset(ret, 0, sizeof(*ret));
	ret->data = e->size ? e->data : empty;
	ret->size = e->size;
	ret->priv_kind_ = SCAN_BLOB_BORROWED;
	return 0;
}

static void cpio_free(struct scan_fs *fs)
{
	struct cpio_priv *cp = fs->priv;

	if (!cp)
		return;
	for (size_t i = 0; i < cp->n_regions; i++)
		if (cp->regions[i].p)
			munmap(cp->regions[i].p, cp->regions[i].size);
	free(cp->regions);
	free(cp->links);
	free(cp);
}

static const struct scan_fs_ops cpio_ops = {
    .lstat = cpio_lstat,
    .readlink = cpio_readlink,
    .read = cpio_read,
    .list = scan_index_list,
    .walk = scan_index_walk,
    .free = cpio_free,
};

static int add_region(struct cpio_priv *cp, void *p, size_t size)
{
	struct region *r = realloc(cp->regions, (cp->n_regions + 1) * sizeof(*r));

	if (!r)
		return -ENOMEM;
	cp->regions = r;
	r[cp->n_regions].p = p;
	r[cp->n_regions].size = size;
	cp->n_regions++;
	return 0;
}

static const char *const comp_names[] = {"plain", "gzip", "xz", "zstd", "?"};

/* Walk the pieces of an initramfs as the kernel's unpack_to_rootfs() does. */
static int parse_pieces(struct scan_fs *fs, const uint8_t *buf, size_t n)
{
	struct cpio_priv *cp = fs->priv;
	size_t p = 0;
	int r;

	while (p < n) {
		const char *other;
		enum compression c;
		char where[96];

		if (buf[p] == 0) {
			p++;
			continue;
		}
		if (is_cpio_magic(buf + p, n - p)) {
			snprintf(where, sizeof(where), "the archive at offset %zu", p);
			if (parse_archive(fs, buf, n, &p, true, where, false) < 0)
				return 0;
			continue;
		}
		c = detect_compression(buf + p, n - p, &other);
		if (c == COMP_UNSUPPORTED) {
			scan_fs_defer(fs, fs->origin, ENOTSUP,
			              "'%s': %s compression at offset %zu is not supported (use "
			              "gzip, xz or zstd)",
			              fs->origin, other, p);
			return 0;
		}
		if (c == COMP_NONE) {
			scan_fs_defer(fs, fs->origin, EIO,
			              "'%s': junk at offset %zu (neither cpio nor a compressed "
			              "archive)",
			              fs->origin, p);
			return 0;
		}
		{
			struct sink s = {0};
			char why[160] = "";
			size_t used = 0, q = 0;
			uint64_t budget = fs->lim.archive_max > cp->inflated
			                      ? fs->lim.archive_max - cp->inflated
			                      : 0;

			s.max = (size_t)TGVM_MIN(budget, (uint64_t)SIZE_MAX / 2);
			/* Initramfs pieces inflate about fourfold. */
			s.first = TGVM_MIN(n - p, (size_t)256 << 20) * 4;
			if (c == COMP_GZIP)
				r = inflate_gzip(buf + p, n - p, &used, &s, why, sizeof(why));
			else if (c == COMP_XZ)
				r = inflate_xz(buf + p, n - p, &used, &s, why, sizeof(why));
			else
				r = inflate_zstd(buf + p, n - p, &used, &s, why, sizeof(why));
			if (s.p && add_region(cp, s.p, s.cap) < 0) {
				munmap(s.p, s.cap);
				return -ENOMEM;
			}
			cp->inflated += s.len;
			if (r == -ENOMEM && !s.hit_max)
				return -ENOMEM;
			if (s.hit_max && fs->lim.archive_max % (1 << 20))
				scan_fs_defer(fs, fs->origin, EFBIG,
				              "'%s': the %s piece at offset %zu inflates to more "
				              "than the limit of %llu bytes; the rest is skipped",
				              fs->origin, comp_names[c], p,
				              (unsigned long long)fs->lim.archive_max);
			else if (s.hit_max)
				scan_fs_defer(fs, fs->origin, EFBIG,
				              "'%s': the %s piece at offset %zu inflates to more "
				              "than the limit of %llu MiB; the rest is skipped",
				              fs->origin, comp_names[c], p,
				              (unsigned long long)(fs->lim.archive_max >> 20));
			else if (r < 0)
				scan_fs_defer(fs, fs->origin, EIO,
				              "'%s': the %s piece at offset %zu breaks off after "
				              "%zu bytes (%s); what it held from there on is not "
				              "scanned",
				              fs->origin, comp_names[c], p, used, why);
			snprintf(where, sizeof(where), "the %s piece at offset %zu", comp_names[c],
			         p);
			if (s.len)
				parse_archive(fs, s.p, s.len, &q, false, where, r < 0);
			if (r < 0)
				return 0;
			p += used;
		}
	}
	return 0;
}

static int cpio_open_common(const char *origin, const uint8_t *buf, size_t n,
                            const struct scan_fs_limits *lim, void *map, size_t map_size,
                            struct scan_fs **ret, struct tgvm_error *reterr)
{
	struct scan_fs *fs = NULL;
	struct cpio_priv *cp;
	int r;

	r = scan_fs_alloc(origin, lim, SCAN_FS_CPIO, &cpio_ops, &fs);
	if (r < 0)
		goto fail;
	cp = calloc(1, sizeof(*cp));
	if (!cp) {
		r = -ENOMEM;
		goto fail;
	}
	fs->priv = cp;
	if (map && (r = add_region(cp, map, map_size)) < 0)
		goto fail;
	map = NULL;
	r = parse_pieces(fs, buf, n);
	if (r < 0)
		goto fail;
	scan_index_finish(&fs->index);
	*ret = fs;
	return 0;
fail:
	if (map)
		munmap(map, map_size);
	scan_fs_free(fs);
	return tgvm_error_set(reterr, -r, "cannot read '%s': %s", origin, strerror(-r));
}

int scan_cpio_open(const char *path, int fd, uint64_t size, const struct scan_fs_limits *lim,
                   struct scan_fs **ret, struct tgvm_error *reterr)
{
	void *map;

	if (size == 0 || size > SIZE_MAX / 2)
		return tgvm_error_set(reterr, EFBIG, "cannot map '%s': bad size", path);
	map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return tgvm_error_set(reterr, errno, "cannot map '%s': %s", path, strerror(errno));
	return cpio_open_common(path, map, (size_t)size, lim, map, (size_t)size, ret, reterr);
}

int scan_cpio_open_memory(const uint8_t *data, size_t size, const char *origin,
                          const struct scan_fs_limits *lim, struct scan_fs **ret,
                          struct tgvm_error *reterr)
{
	return cpio_open_common(origin, data, size, lim, NULL, 0, ret, reterr);
}

bool scan_cpio_detect(const uint8_t *p, size_t n)
{
	const char *other;
	enum compression c;
	uint8_t out[8];
	size_t got = 0;

	if (is_cpio_magic(p, n))
		return true;
	c = detect_compression(p, n, &other);
	if (c == COMP_UNSUPPORTED)
		return true; /* the open reports the compression by name */
	if (c == COMP_NONE)
		return false;
	/* A compressed file is an archive when what it inflates to starts one. */
	if (c == COMP_GZIP) {
		z_stream z;

		memset(&z, 0, sizeof(z));
		if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
			return false;
		z.next_in = (Bytef *)p;
		z.avail_in = (uInt)TGVM_MIN(n, (size_t)1 << 30);
		z.next_out = out;
		z.avail_out = sizeof(out);
		while (z.avail_out && inflate(&z, Z_NO_FLUSH) == Z_OK)
			;
		got = sizeof(out) - z.avail_out;
		inflateEnd(&z);
	} else if (c == COMP_XZ) {
		lzma_stream x = LZMA_STREAM_INIT;

		if (lzma_stream_decoder(&x, 256ULL << 20, 0) != LZMA_OK)
			return false;
		x.next_in = p;
		x.avail_in = n;
		x.next_out = out;
		x.avail_out = sizeof(out);
		while (x.avail_out && lzma_code(&x, LZMA_RUN) == LZMA_OK && x.avail_in)
			;
		got = sizeof(out) - x.avail_out;
		lzma_end(&x);
	} else {
		ZSTD_DStream *z = ZSTD_createDStream();
		ZSTD_inBuffer ib = {p, n, 0};
		ZSTD_outBuffer ob = {out, sizeof(out), 0};

		if (!z)
			return false;
		while (ob.pos < ob.size && ib.pos < ib.size &&
		       !ZSTD_isError(ZSTD_decompressStream(z, &ob, &ib)))
			;

		got = ob.pos;
		ZSTD_freeDStream(z);
	}
	/* A stream too damaged to tell is taken as an archive, so that the
	 * damage is reported rather than the file silently skipped. */
	if (got < 6)
		return true;
	return is_cpio_magic(out, got);
}
