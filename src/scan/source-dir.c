// SPDX-License-Identifier: MIT
/*
 * Directory trees (a guest root) and single files. Files are mmap()ed, never
 * read whole; the walk never follows symlinks, stays out of pseudo file
 * systems and stops at directory cycles (bind mounts) and SCAN_DEPTH_MAX.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "scan/source-int.h"

struct dir_priv {
	int rootfd; /* O_PATH of the root */
};

static int dir_rootfd(struct scan_fs *fs)
{
	return ((struct dir_priv *)fs->priv)->rootfd;
}

/* "/" -> "." and "/a/b" -> "a/b", relative to the root fd. */
static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static enum scan_node_type mode_type(mode_t m)
{
	if (S_ISREG(m))
		return SCAN_NODE_REG;
	if (S_ISDIR(m))
		return SCAN_NODE_DIR;
	if (S_ISLNK(m))
		return SCAN_NODE_LNK;
	return SCAN_NODE_OTHER;
}

static int dir_lstat(struct scan_fs *fs, const char *path, struct scan_stat *ret)
{
	struct stat st;

	if (fstatat(dir_rootfd(fs), rel(path), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	ret->type = mode_type(st.st_mode);
	ret->size = (uint64_t)st.st_size;
	return 0;
}

static int dir_readlink(struct scan_fs *fs, const char *path, char *buf, size_t size)
{
	ssize_t n = readlinkat(dir_rootfd(fs), rel(path), buf, size);

	if (n < 0)
		return -errno;
	if ((size_t)n >= size)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return 0;
}

static const uint8_t empty_file[1];

/* Map the regular file open at @fd, which is @path in @fs. */
static int map_fd(struct scan_fs *fs, int fd, const char *path, struct scan_blob *ret,
                  struct tgvm_error *reterr)
{
	const char *in = fs->self && !strcmp(path, fs->self) ? "" : "' in '";
	const char *where = *in ? fs->origin : "";
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0)
		return tgvm_error_set(reterr, errno, "cannot stat '%s%s%s': %s", path, in, where,
		                      strerror(errno));
	if (S_ISDIR(st.st_mode))
		return tgvm_error_set(reterr, EISDIR, "'%s%s%s' is a directory", path, in, where);
	if (!S_ISREG(st.st_mode))
		return tgvm_error_set(reterr, EINVAL, "'%s%s%s' is not a regular file", path, in,
		                      where);
	if ((uint64_t)st.st_size > fs->lim.file_max)
		return tgvm_error_set(reterr, EFBIG, "'%s%s%s' is larger than %llu MiB", path, in,
		                      where, (unsigned long long)(fs->lim.file_max >> 20));
	memset(ret, 0, sizeof(*ret));
	if (st.st_size == 0) {
		ret->data = empty_file;
		return 0;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return tgvm_error_set(reterr, errno, "cannot map '%s%s%s': %s", path, in, where,
		                      strerror(errno));
	ret->data = p;
	ret->size = (size_t)st.st_size;
	ret->priv_ = p;
	ret->priv_size_ = (size_t)st.st_size;
	ret->priv_kind_ = SCAN_BLOB_MMAP;
	return 0;
}

static int dir_read(struct scan_fs *fs, const char *path, struct scan_blob *ret,
                    struct tgvm_error *reterr)
{
	int fd, r;

	if (fs->self && !strcmp(path, fs->self))
		fd = open(fs->self, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	else
		fd = openat(dir_rootfd(fs), rel(path),
		            O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0)
		return tgvm_error_set(reterr, errno, "cannot open '%s' in '%s': %s", path,
		                      fs->origin, strerror(errno));
	r = map_fd(fs, fd, path, ret, reterr);
	close(fd);
	return r;
}

/*
 * The kernel resolves inside the root just as scan_fs_resolve() does
 * (absolute links and ".." stay in, 40 hops), in one system call instead of
 * one per component: this is what makes reading a whole root fast.
 */
static int dir_read_unresolved(struct scan_fs *fs, const char *path, struct scan_blob *ret,
                               struct tgvm_error *reterr)
{
	static int unsupported;
	struct open_how how = {
	    .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	int fd, r;

	if (fs->kind != SCAN_FS_DIR || __atomic_load_n(&unsupported, __ATOMIC_RELAXED))
		return -ENOSYS;
	fd = (int)syscall(SYS_openat2, dir_rootfd(fs), path, &how, sizeof(how));
	if (fd < 0 && (errno == ENOSYS || errno == EPERM || errno == EXDEV)) {
		/* No openat2 (old kernel, seccomp), or a mount point inside the
		 * root: take the long way. */
		if (errno != EXDEV)
			__atomic_store_n(&unsupported, 1, __ATOMIC_RELAXED);
		return -ENOSYS;
	}
	if (fd < 0)
		return tgvm_error_set(reterr, errno, "cannot open '%s' in '%s': %s", path,
		                      fs->origin, strerror(errno));
	r = map_fd(fs, fd, path, ret, reterr);
	close(fd);
	return r;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dir_list_fd(int dfd, struct tgvm_strv *ret)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	size_t first = ret->n;
	int r = 0;

	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	while ((errno = 0, de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = tgvm_strv_push(ret, de->d_name);
		if (r < 0)
			break;
	}
	if (!r && errno)
		r = -errno;
	closedir(d);
	if (ret->n > first)
		qsort(ret->v + first, ret->n - first, sizeof(char *), name_cmp);
	return r;
}

static int dir_list(struct scan_fs *fs, const char *path, struct tgvm_strv *ret)
{
	int dfd =
	    openat(dir_rootfd(fs), rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (dfd < 0)
		return -errno;
	return dir_list_fd(dfd, ret);
}

/* ---- the walk ---- */

struct walk_state {
	struct scan_fs *fs;
	scan_fs_walk_cb cb;
	scan_fs_error_cb on_error;
	void *ud;
	char path[SCAN_PATH_MAX];
	uint64_t entries;
	bool too_many;
	struct {
		dev_t dev;
		ino_t ino;
	} stack[SCAN_DEPTH_MAX + 1];
};

static void walk_error(struct walk_state *w, const char *path, int code, const char *what)
{
	struct tgvm_error err;

	if (!w->on_error)
		return;
	tgvm_error_set(&err, code, "cannot %s '%s' in '%s': %s", what, path, w->fs->origin,
	               strerror(code));
	w->on_error(path, &err, w->ud);
}

/* File systems whose files are not files: never walk into them. */
static bool pseudo_fs(int fd)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return false;
	switch ((unsigned long)sf.f_type) {
	case PROC_SUPER_MAGIC:
	case SYSFS_MAGIC:
	case DEVPTS_SUPER_MAGIC:
	case CGROUP_SUPER_MAGIC:
	case CGROUP2_SUPER_MAGIC:
	case DEBUGFS_MAGIC:
	case TRACEFS_MAGIC:
	case SECURITYFS_MAGIC:
	case BPF_FS_MAGIC:
	case PSTOREFS_MAGIC:
	case EFIVARFS_MAGIC:
		return true;
	default:
		return false;
	}
}

/* Does file @name (relative to @dfd) start with the ELF magic? Unreadable: yes,
 * so that the caller reports it rather than calls it something else. */
static bool is_elf_at(int dfd, const char *name)
{
	unsigned char m[4];
	int fd = openat(dfd, name,
	                O_RDONLY | O_CLOEXEC | O_NONBLOCK | (dfd == AT_FDCWD ? 0 : O_NOFOLLOW));
	ssize_t n;

	if (fd < 0)
		return true;
	n = pread(fd, m, sizeof(m), 0);
	close(fd);
	return n != (ssize_t)sizeof(m) || !memcmp(m, "\177ELF", 4);
}

static int walk_dir(struct walk_state *w, int dfd, size_t plen, int depth)
{
	struct tgvm_strv names;
	struct stat dst;
	int r = 0, lfd;

	tgvm_strv_init(&names);
	if (fstat(dfd, &dst) < 0) {
		walk_error(w, plen ? w->path : "/", errno, "stat");
		close(dfd);
		return 0;
	}
	w->stack[depth].dev = dst.st_dev;
	w->stack[depth].ino = dst.st_ino;
	for (int i = 0; i < depth; i++)
		if (w->stack[i].dev == dst.st_dev && w->stack[i].ino == dst.st_ino) {
			walk_error(w, w->path, ELOOP, "walk");
			close(dfd);
			return 0;
		}
	if ((depth == 0 || w->stack[depth - 1].dev != dst.st_dev) && pseudo_fs(dfd)) {
		close(dfd);
		return 0;
	}
	lfd = dup(dfd);
	if (lfd < 0) {
		close(dfd);
		return -errno;
	}
	r = dir_list_fd(lfd, &names);
	if (r < 0) {
		walk_error(w, plen ? w->path : "/", -r, "read directory");
		r = 0;
		goto out;
	}
	for (size_t i = 0; i < names.n && !r; i++) {
		const char *name = names.v[i];
		size_t nlen = strlen(name);
		struct stat st;

		if (++w->entries > w->fs->lim.files_max) {
			if (!w->too_many && w->on_error) {
				struct tgvm_error err;

				tgvm_error_set(&err, E2BIG,
				               "'%s' has more than %u entries; the rest is skipped",
				               w->fs->origin, w->fs->lim.files_max);
				w->on_error(w->fs->origin, &err, w->ud);
			}
			w->too_many = true;
			break;
		}
		if (plen + 1 + nlen + 1 > sizeof(w->path)) {
			w->path[plen] = '\0';
			walk_error(w, w->path, ENAMETOOLONG, "walk into");
			continue;
		}
		w->path[plen] = '/';
		memcpy(w->path + plen + 1, name, nlen + 1);
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			walk_error(w, w->path, errno, "stat");
			continue;
		}
		if (S_ISREG(st.st_mode)) {
			/* a large file that is not ELF (a swap file, a database) is
			 * what it is whatever its size: the analysis skips it */
			if ((uint64_t)st.st_size > w->fs->lim.file_max && is_elf_at(dfd, name)) {
				if (w->on_error) {
					struct tgvm_error err;

					tgvm_error_set(
					    &err, EFBIG,
					    "'%s' in '%s' is an ELF file larger than %llu MiB; "
					    "not analysed",
					    w->path, w->fs->origin,
					    (unsigned long long)(w->fs->lim.file_max >> 20));
					w->on_error(w->path, &err, w->ud);
				}
				continue;
			}
			r = w->cb(w->fs, w->path, (uint64_t)st.st_size,
			          &(struct scan_fs_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino},
			          w->ud);
		} else if (S_ISDIR(st.st_mode)) {
			int cfd;

			if (depth + 1 > SCAN_DEPTH_MAX) {
				walk_error(w, w->path, ELOOP, "walk into (too deep)");
				continue;
			}
			cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (cfd < 0) {
				walk_error(w, w->path, errno, "open directory");
				continue;
			}
			r = walk_dir(w, cfd, plen + 1 + nlen, depth + 1);
		}
	}
out:
	w->path[plen] = '\0';
	tgvm_strv_release(&names);
	close(dfd);
	return r;
}

static int dir_walk(struct scan_fs *fs, scan_fs_walk_cb cb, scan_fs_error_cb on_error, void *ud,
                    struct tgvm_error *reterr)
{
	struct walk_state *w;
	int dfd, r;

	dfd = openat(dir_rootfd(fs), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return tgvm_error_set(reterr, errno, "cannot open '%s': %s", fs->origin,
		                      strerror(errno));
	w = calloc(1, sizeof(*w));
	if (!w) {
		close(dfd);
		return -ENOMEM;
	}
	w->fs = fs;
	w->cb = cb;
	w->on_error = on_error;
	w->ud = ud;
	r = walk_dir(w, dfd, 0, 0);
	free(w);
	return r;
}

static int file_walk(struct scan_fs *fs, scan_fs_walk_cb cb, scan_fs_error_cb on_error, void *ud,
                     struct tgvm_error *reterr)
{
	struct stat st;

	(void)reterr;
	if (stat(fs->self, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (on_error) {
			struct tgvm_error err;

			tgvm_error_set(&err, errno ? errno : EINVAL, "cannot open '%s'", fs->self);
			on_error(fs->self, &err, ud);
		}
		return 0;
	}
	if ((uint64_t)st.st_size > fs->lim.file_max && is_elf_at(AT_FDCWD, fs->self)) {
		if (on_error) {
			struct tgvm_error err;

			tgvm_error_set(&err, EFBIG,
			               "'%s' is an ELF file larger than %llu MiB; not "
			               "analysed",
			               fs->self, (unsigned long long)(fs->lim.file_max >> 20));
			on_error(fs->self, &err, ud);
		}
		return 0;
	}
	return cb(fs, fs->self, (uint64_t)st.st_size, &(struct scan_fs_id){0, 0}, ud);
}

static void dir_free(struct scan_fs *fs)
{
	struct dir_priv *p = fs->priv;

	if (p) {
		if (p->rootfd >= 0)
			close(p->rootfd);
		free(p);
	}
}

static const struct scan_fs_ops dir_ops = {
    .lstat = dir_lstat,
    .readlink = dir_readlink,
    .read = dir_read,
    .read_unresolved = dir_read_unresolved,
    .list = dir_list,
    .walk = dir_walk,
    .free = dir_free,
};

static const struct scan_fs_ops file_ops = {
    .lstat = dir_lstat,
    .readlink = dir_readlink,
    .read = dir_read,
    .list = dir_list,
    .walk = file_walk,
    .free = dir_free,
};

static int open_rooted(const char *origin, const char *root, const struct scan_fs_limits *lim,
                       enum scan_fs_kind kind, const struct scan_fs_ops *ops, struct scan_fs **ret,
                       struct tgvm_error *reterr)
{
	struct scan_fs *fs = NULL;
	struct dir_priv *p;
	int r;

	r = scan_fs_alloc(origin, lim, kind, ops, &fs);
	if (r < 0)
		return tgvm_error_set(reterr, -r, "cannot open '%s': %s", origin, strerror(-r));
	p = calloc(1, sizeof(*p));
	if (!p) {
		scan_fs_free(fs);
		return tgvm_error_set(reterr, ENOMEM, "cannot open '%s': out of memory", origin);
	}
	p->rootfd = -1;
	fs->priv = p;
	p->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p->rootfd < 0) {
		r = tgvm_error_set(reterr, errno, "cannot open '%s': %s", root, strerror(errno));
		scan_fs_free(fs);
		return r;
	}
	*ret = fs;
	return 0;
}

int scan_dir_open(const char *path, const struct scan_fs_limits *lim, struct scan_fs **ret,
                  struct tgvm_error *reterr)
{
	return open_rooted(path, path, lim, SCAN_FS_DIR, &dir_ops, ret, reterr);
}

int scan_file_open(const char *path, const struct scan_fs_limits *lim, struct scan_fs **ret,
                   struct tgvm_error *reterr)
{
	struct scan_fs *fs = NULL;
	int r;

	/* A lone program finds its libraries where the host keeps them. */
	r = open_rooted(path, "/", lim, SCAN_FS_FILE, &file_ops, &fs, reterr);
	if (r < 0)
		return r;
	fs->self = strdup(path);
	if (!fs->self) {
		scan_fs_free(fs);
		return tgvm_error_set(reterr, ENOMEM, "cannot open '%s': out of memory", path);
	}
	*ret = fs;
	return 0;
}
