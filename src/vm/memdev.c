// SPDX-License-Identifier: MIT
/*
 * Memory devices as files (see tgvm/memdev.h): one directory per device on a
 * shared-memory file system, one sparse RAM file per VM placed on it, and a
 * lease per VM naming the one host allowed to run it from that memory.
 * Capacity is accounted under a flock of the device's .lock file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "tgvm/memdev.h"
#include "vm/vm-int.h"

#define LEASE_MAX   4096
#define RAM_SUFFIX  ".ram"
#define LEASE_SUFFX ".lease"

int vm_config_check_memdev(const struct vm_config *c, struct tgvm_error *reterr)
{
	if (!c->memdev[0] && !c->mem_file)
		return 0;
	if (!c->memdev[0] || !c->mem_file)
		return tgvm_error_set(reterr, EINVAL,
		                      "VM '%s': a memory device needs both its name and its file",
		                      c->name);
	if (c->mem_file[0] != '/' || strchr(c->mem_file, ',') ||
	    strlen(c->mem_file) >= TGVM_MEMDEV_PATH_MAX + 48)
		return tgvm_error_set(reterr, EINVAL,
		                      "VM '%s': memory file '%s' must be an absolute path "
		                      "without commas",
		                      c->name, c->mem_file);
	return tgvm_name_check("memory device", c->memdev, reterr);
}

static void human(char *buf, size_t size, uint64_t b)
{
	if (b >= (1ull << 30) && b % (1ull << 30) == 0)
		snprintf(buf, size, "%" PRIu64 " GiB", b >> 30);
	else if (b >= (1ull << 30))
		snprintf(buf, size, "%.1f GiB", (double)b / (double)(1ull << 30));
	else
		snprintf(buf, size, "%" PRIu64 " MiB", b >> 20);
}

static int memdev_open(const char *name, const char *path, uint64_t capacity, bool create,
                       struct vm_memdev *ret, struct tgvm_error *reterr);

int vm_memdev_open(const char *name, const char *path, uint64_t capacity, struct vm_memdev *ret,
                   struct tgvm_error *reterr)
{
	return memdev_open(name, path, capacity, true, ret, reterr);
}

int vm_memdev_peek(const char *name, const char *path, uint64_t capacity, struct vm_memdev *ret,
                   struct tgvm_error *reterr)
{
	return memdev_open(name, path, capacity, false, ret, reterr);
}

static int memdev_open(const char *name, const char *path, uint64_t capacity, bool create,
                       struct vm_memdev *ret, struct tgvm_error *reterr)
{
	struct vm_memdev d;
	struct statfs sf;
	int r, n;

	memset(&d, 0, sizeof(d));
	if ((r = tgvm_name_check("memory device", name, reterr)) < 0)
		return r;
	if (capacity < TGVM_VM_MEM_MIN)
		return tgvm_error_set(reterr, EINVAL,
		                      "memory device '%s': capacity must be at least 64 MiB", name);
	if (path && path[0]) {
		if (path[0] != '/' || strchr(path, ','))
			return tgvm_error_set(reterr, EINVAL,
			                      "memory device '%s': path '%s' must be absolute and "
			                      "without commas",
			                      name, path);
		n = snprintf(d.dir, sizeof(d.dir), "%s", path);
	} else {
		n = snprintf(d.dir, sizeof(d.dir), "/dev/shm/%smemdev-%s", tgvm_netns_prefix(),
		             name);
	}
	if (n < 0 || (size_t)n >= sizeof(d.dir))
		return tgvm_error_set(reterr, ENAMETOOLONG, "memory device '%s': path too long",
		                      name);
	if (!create && access(d.dir, F_OK) < 0)
		return tgvm_error_set(reterr, ENOENT, "memory device '%s': no '%s' yet", name,
		                      d.dir);
	if ((r = tgvm_mkdir_p(d.dir, reterr)) < 0)
		return tgvm_error_prefix(reterr, "memory device '%s'", name);
	if (statfs(d.dir, &sf) < 0)
		return tgvm_error_set(reterr, errno, "memory device '%s': cannot stat '%s': %s",
		                      name, d.dir, strerror(errno));
	if (sf.f_type != TMPFS_MAGIC && sf.f_type != HUGETLBFS_MAGIC)
		return tgvm_error_set(reterr, EINVAL,
		                      "memory device '%s': '%s' is not on tmpfs or hugetlbfs "
		                      "(file system 0x%lx), so QEMUs cannot share it as memory",
		                      name, d.dir, (unsigned long)sf.f_type);
	snprintf(d.name, sizeof(d.name), "%s", name);
	d.capacity = capacity;
	*ret = d;
	return 0;
}

static int lock_dir(const struct vm_memdev *d, struct tgvm_error *reterr)
{
	char path[TGVM_MEMDEV_PATH_MAX + 16];
	int fd;

	snprintf(path, sizeof(path), "%s/.lock", d->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return tgvm_error_set(reterr, errno, "memory device '%s': cannot open '%s': %s",
		                      d->name, path, strerror(errno));
	if (flock(fd, LOCK_EX) < 0) {
		int e = errno;

		close(fd);
		return tgvm_error_set(reterr, e, "memory device '%s': cannot lock '%s': %s",
		                      d->name, path, strerror(e));
	}
	return fd;
}

/* Read the lease file @path (bounded) into @ret (fd untouched). */
static int lease_read(const char *path, struct vm_memdev_lease *ret, char *state_dir, size_t sdsz,
                      struct tgvm_error *reterr)
{
	char *text = NULL;
	json_t *j;
	const char *vm, *host, *sd;
	json_t *gen, *bytes;
	int r;

	if ((r = tgvm_file_read(path, LEASE_MAX, &text, NULL, reterr)) < 0)
		return r;
	j = json_loads(text, 0, NULL);
	free(text);
	vm = json_string_value(json_object_get(j, "vm"));
	host = json_string_value(json_object_get(j, "host"));
	sd = json_string_value(json_object_get(j, "state_dir"));
	gen = json_object_get(j, "generation");
	bytes = json_object_get(j, "bytes");
	if (!vm || !host || !json_is_integer(gen) || !json_is_integer(bytes) ||
	    strlen(vm) >= sizeof(ret->vm) || strlen(host) >= sizeof(ret->host) ||
	    json_integer_value(gen) < 1 || json_integer_value(bytes) < 0) {
		json_decref(j);
		return tgvm_error_set(reterr, EINVAL, "lease '%s' is malformed", path);
	}
	snprintf(ret->vm, sizeof(ret->vm), "%s", vm);
	snprintf(ret->host, sizeof(ret->host), "%s", host);
	ret->generation = (uint64_t)json_integer_value(gen);
	ret->bytes = (uint64_t)json_integer_value(bytes);
	if (state_dir)
		snprintf(state_dir, sdsz, "%s", sd ? sd : "");
	json_decref(j);
	return 0;
}

static int lease_write(const char *path, const char *vm, const char *host, uint64_t gen,
                       uint64_t bytes, struct tgvm_error *reterr)
{
	char state[4096] = "", *text;
	json_t *j;
	int r;

	tgvm_state_dir(state, sizeof(state));
	j = json_pack("{s:s, s:s, s:I, s:I, s:s}", "vm", vm, "host", host, "generation",
	              (json_int_t)gen, "bytes", (json_int_t)bytes, "state_dir", state);
	text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!text)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	r = tgvm_file_write(path, text, strlen(text), reterr);
	free(text);
	return r;
}

/* Lease file name for a RAM file: "<dir>/<vm>.ram" -> "<dir>/<vm>.lease". */
static int lease_path(const char *mem_file, char *buf, size_t size)
{
	size_t n = strlen(mem_file), s = strlen(RAM_SUFFIX);

	if (n <= s || strcmp(mem_file + n - s, RAM_SUFFIX) || n - s + sizeof(LEASE_SUFFX) > size)
		return -EINVAL;
	memcpy(buf, mem_file, n - s);
	memcpy(buf + n - s, LEASE_SUFFX, sizeof(LEASE_SUFFX));
	return 0;
}

/* true when the VM of a lease still exists (its state directory has a config). */
static bool lease_live(const struct vm_memdev_lease *l, const char *state_dir)
{
	char path[4400];

	if (!state_dir[0])
		return true; /* unknown owner: keep */
	snprintf(path, sizeof(path), "%s/vms/%s", state_dir, l->vm);
	return access(path, F_OK) == 0;
}

/* Sum of leases; removes the stale ones. Called with the device lock held. */
static int usage_locked(const struct vm_memdev *d, uint64_t *ret_used, size_t *ret_vms,
                        struct tgvm_error *reterr)
{
	DIR *dir = opendir(d->dir);
	struct dirent *e;
	uint64_t used = 0;
	size_t vms = 0, seen = 0;

	if (!dir)
		return tgvm_error_set(reterr, errno, "memory device '%s': cannot read '%s': %s",
		                      d->name, d->dir, strerror(errno));
	while ((e = readdir(dir))) {
		size_t n = strlen(e->d_name);
		char path[TGVM_MEMDEV_PATH_MAX + 300], state_dir[4096];
		struct vm_memdev_lease l;

		if (n <= strlen(LEASE_SUFFX) ||
		    strcmp(e->d_name + n - strlen(LEASE_SUFFX), LEASE_SUFFX))
			continue;
		if (++seen > TGVM_MEMDEV_LEASES_MAX) {
			closedir(dir);
			return tgvm_error_set(reterr, E2BIG,
			                      "memory device '%s' holds more than %d leases",
			                      d->name, TGVM_MEMDEV_LEASES_MAX);
		}
		snprintf(path, sizeof(path), "%s/%s", d->dir, e->d_name);
		if (lease_read(path, &l, state_dir, sizeof(state_dir), NULL) < 0)
			continue;
		if (!lease_live(&l, state_dir)) {
			char ram[TGVM_MEMDEV_PATH_MAX + 300];

			snprintf(ram, sizeof(ram), "%s/%s" RAM_SUFFIX, d->dir, l.vm);
			unlink(ram);
			unlink(path);
			continue;
		}
		used += l.bytes;
		vms++;
	}
	closedir(dir);
	if (ret_used)
		*ret_used = used;
	if (ret_vms)
		*ret_vms = vms;
	return 0;
}

int vm_memdev_usage(const struct vm_memdev *d, uint64_t *ret_used, size_t *ret_vms,
                    struct tgvm_error *reterr)
{
	int fd = lock_dir(d, reterr), r;

	if (fd < 0)
		return fd;
	r = usage_locked(d, ret_used, ret_vms, reterr);
	close(fd);
	return r;
}

int vm_memdev_alloc(const struct vm_memdev *d, const char *vm, const char *host, uint64_t bytes,
                    char *ret_file, size_t size, struct tgvm_error *reterr)
{
	char ram[TGVM_MEMDEV_PATH_MAX + 48], lease[TGVM_MEMDEV_PATH_MAX + 48], a[32], b[32], c[32];
	uint64_t used = 0;
	int fd, rfd = -1, r;

	if ((r = tgvm_name_check("VM", vm, reterr)) < 0 ||
	    (r = tgvm_name_check("host", host, reterr)) < 0)
		return r;
	snprintf(ram, sizeof(ram), "%s/%s" RAM_SUFFIX, d->dir, vm);
	snprintf(lease, sizeof(lease), "%s/%s" LEASE_SUFFX, d->dir, vm);
	if (strlen(ram) >= size)
		return tgvm_error_set(reterr, ENAMETOOLONG, "memory file '%s' is too long", ram);
	if ((fd = lock_dir(d, reterr)) < 0)
		return fd;
	if ((r = usage_locked(d, &used, NULL, reterr)) < 0)
		goto out;
	if (access(lease, F_OK) == 0) {
		r = tgvm_error_set(reterr, EEXIST, "VM '%s' already has memory on device '%s'", vm,
		                   d->name);
		goto out;
	}
	if (used + bytes > d->capacity) {
		human(a, sizeof(a), used);
		human(b, sizeof(b), d->capacity);
		human(c, sizeof(c), bytes);
		r = tgvm_error_set(reterr, ENOSPC,
		                   "memory device '%s' is full: %s of %s used, VM '%s' needs %s",
		                   d->name, a, b, vm, c);
		goto out;
	}
	rfd = open(ram, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (rfd < 0 || ftruncate(rfd, (off_t)bytes) < 0) {
		r = tgvm_error_set(reterr, errno, "cannot create memory file '%s': %s", ram,
		                   strerror(errno));
		unlink(ram);
		goto out;
	}
	if ((r = lease_write(lease, vm, host, 1, bytes, reterr)) < 0) {
		unlink(ram);
		goto out;
	}
	memcpy(ret_file, ram, strlen(ram) + 1);
out:
	if (rfd >= 0)
		close(rfd);
	close(fd);
	return r;
}

void vm_memdev_remove_unused(void)
{
	char prefix[80], lock[TGVM_MEMDEV_PATH_MAX + 16];
	DIR *dir = opendir("/dev/shm");
	struct dirent *de;
	size_t plen;

	if (!dir)
		return;
	snprintf(prefix, sizeof(prefix), "%smemdev-", tgvm_netns_prefix());
	plen = strlen(prefix);
	while ((de = readdir(dir))) {
		struct vm_memdev d;
		size_t vms = 1;

		if (strncmp(de->d_name, prefix, plen) != 0 ||
		    vm_memdev_peek(de->d_name + plen, NULL, TGVM_VM_MEM_MIN, &d, NULL) < 0 ||
		    vm_memdev_usage(&d, NULL, &vms, NULL) < 0 || vms > 0)
			continue;
		snprintf(lock, sizeof(lock), "%s/.lock", d.dir);
		unlink(lock);
		rmdir(d.dir); /* fails, and keeps it, if anything else is inside */
	}
	closedir(dir);
}

int vm_memdev_free(const char *mem_file)
{
	char lease[TGVM_MEMDEV_PATH_MAX + 48];
	int r = 0;

	if (!mem_file || lease_path(mem_file, lease, sizeof(lease)) < 0)
		return -EINVAL;
	if (unlink(mem_file) < 0 && errno != ENOENT)
		r = -errno;
	if (unlink(lease) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

int vm_memdev_lease_lock(const char *mem_file, struct vm_memdev_lease *ret,
                         struct tgvm_error *reterr)
{
	struct vm_memdev_lease l;
	int r;

	memset(&l, 0, sizeof(l));
	l.fd = -1;
	if (lease_path(mem_file, l.path, sizeof(l.path)) < 0)
		return tgvm_error_set(reterr, EINVAL, "'%s' is not a memory file", mem_file);
	l.fd = open(l.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (l.fd < 0)
		return tgvm_error_set(reterr, errno, "no lease '%s': %s", l.path, strerror(errno));
	if (flock(l.fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		close(l.fd);
		if (e == EWOULDBLOCK)
			return tgvm_error_set(reterr, EBUSY,
			                      "lease '%s' is held by another handoff", l.path);
		return tgvm_error_set(reterr, e, "cannot lock '%s': %s", l.path, strerror(e));
	}
	if ((r = lease_read(l.path, &l, NULL, 0, reterr)) < 0) {
		close(l.fd);
		return r;
	}
	*ret = l;
	return 0;
}

int vm_memdev_lease_move(struct vm_memdev_lease *l, const char *host, struct tgvm_error *reterr)
{
	char state[4096] = "", *text;
	json_t *j;
	ssize_t len;
	int fd, r;

	if (l->fd < 0)
		return tgvm_error_set(reterr, EINVAL, "lease '%s' is not locked", l->path);
	if ((r = tgvm_name_check("host", host, reterr)) < 0)
		return r;
	tgvm_state_dir(state, sizeof(state));
	j = json_pack("{s:s, s:s, s:I, s:I, s:s}", "vm", l->vm, "host", host, "generation",
	              (json_int_t)(l->generation + 1), "bytes", (json_int_t)l->bytes, "state_dir",
	              state);
	text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!text)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	/* In place, not by rename: the flock lives on this inode. A torn write
	 * leaves a malformed lease, which refuses handoffs (the safe side). */
	len = (ssize_t)strlen(text);
	fd = open(l->path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || write(fd, text, (size_t)len) != len || fsync(fd) < 0) {
		r = tgvm_error_set(reterr, errno, "cannot write lease '%s': %s", l->path,
		                   strerror(errno));
		if (fd >= 0)
			close(fd);
		free(text);
		return r;
	}
	close(fd);
	free(text);
	snprintf(l->host, sizeof(l->host), "%s", host);
	l->generation++;
	return 0;
}

void vm_memdev_lease_unlock(struct vm_memdev_lease *l)
{
	if (l && l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
}
