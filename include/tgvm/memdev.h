/* SPDX-License-Identifier: MIT */
/*
 * Memory devices for nil-migration: a region of memory that a set of hosts
 * can all map (here a directory on a shared-memory file system such as
 * /dev/shm; on real machines a CXL/DAX device). Hosts that share a device
 * form a migration domain. A VM placed on a device has its guest RAM in one
 * file there (<device>/<vm>.ram) next to a lease (<vm>.lease) that names the
 * host running it; capacity is accounted over those files.
 *
 * Two layers: the inventory form (src/fleet/memdev.c, "memdevs" of the
 * inventory that `tgvm fleet` and `tgvm host up` read) and the mechanism
 * (src/vm/memdev.c: files, capacity, leases).
 */
#ifndef TGVM_MEMDEV_H
#define TGVM_MEMDEV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tgvm/error.h"
#include "tgvm/vm.h"

#define TGVM_MEMDEVS_MAX       256  /* devices in one inventory */
#define TGVM_MEMDEV_HOSTS_MAX  4096 /* hosts on one device */
#define TGVM_MEMDEV_HOSTNAME   64   /* inventory host names (TGVM_HOST_NAME_MAX) */
#define TGVM_MEMDEV_PATH_MAX   256
#define TGVM_MEMDEV_LEASES_MAX 4096 /* VMs on one device */

/* ---- the mechanism (src/vm/memdev.c) ---- */

struct vm_memdev {
	char name[TGVM_NAME_MAX];
	char dir[TGVM_MEMDEV_PATH_MAX]; /* directory holding the VMs' RAM files */
	uint64_t capacity;              /* bytes */
};

/*
 * The directory of device @name: @path when not empty, else
 * /dev/shm/<netns prefix>memdev-<name> (so that separate test runs never
 * meet). Created (0700) when missing; it must be on tmpfs or hugetlbfs
 * (memory both hosts' QEMUs can map), else -EINVAL naming the file system.
 * @capacity must be at least 64 MiB. Fills *ret on success only.
 */
int vm_memdev_open(const char *name, const char *path, uint64_t capacity, struct vm_memdev *ret,
                   struct tgvm_error *reterr);

/* As vm_memdev_open() but creates nothing: -ENOENT when the directory is missing. */
int vm_memdev_peek(const char *name, const char *path, uint64_t capacity, struct vm_memdev *ret,
                   struct tgvm_error *reterr);

/*
 * Bytes placed on @d and how many VMs hold them (either may be NULL). Leases
 * of VMs that no longer exist in their state directory are removed with their
 * RAM file first. O(files in the directory).
 */
int vm_memdev_usage(const struct vm_memdev *d, uint64_t *ret_used, size_t *ret_vms,
                    struct tgvm_error *reterr);

/*
 * Place @bytes of VM @vm, running on @host, on @d: under the device's lock,
 * check capacity (-ENOSPC: "memory device 'x' is full: ... used of ..., VM 'y'
 * needs ..."), create <vm>.ram (sparse, @bytes long) and its lease
 * (generation 1). -EEXIST when @vm already has memory there. The path of the
 * RAM file goes into @ret_file (size @size).
 */
int vm_memdev_alloc(const struct vm_memdev *d, const char *vm, const char *host, uint64_t bytes,
                    char *ret_file, size_t size, struct tgvm_error *reterr);

/*
 * Remove the default directories (/dev/shm/<netns prefix>memdev-*) that hold
 * no VM any more: what `tgvm host down` leaves behind otherwise. Directories
 * given by path in an inventory are the user's and are left alone.
 */
void vm_memdev_remove_unused(void);

/* Remove a VM's RAM file @mem_file and its lease. 0 or -errno. */
int vm_memdev_free(const char *mem_file);

/* Who may run the VM whose RAM is in a device file: the lease next to it. */
struct vm_memdev_lease {
	char vm[TGVM_NAME_MAX];
	char host[TGVM_NAME_MAX]; /* the one host allowed to run the VM from this memory */
	uint64_t generation;      /* +1 on every handoff */
	uint64_t bytes;
	char path[TGVM_MEMDEV_PATH_MAX + 48];
	int fd; /* holds the flock while locked; -1 otherwise */
};

/*
 * Lock the lease of @mem_file (flock, not waiting) and read it into *ret.
 * -EBUSY when another process holds it (a handoff in progress), -ENOENT when
 * there is no lease. Release with vm_memdev_lease_unlock().
 */
int vm_memdev_lease_lock(const char *mem_file, struct vm_memdev_lease *ret,
                         struct tgvm_error *reterr);
/* Hand the locked lease @l to @host: generation + 1, written atomically. */
int vm_memdev_lease_move(struct vm_memdev_lease *l, const char *host, struct tgvm_error *reterr);
void vm_memdev_lease_unlock(struct vm_memdev_lease *l);

/* ---- the inventory form (src/fleet/memdev.c) ---- */

struct tgvm_memdev {
	char name[TGVM_NAME_MAX];
	char path[TGVM_MEMDEV_PATH_MAX]; /* "" : the default under /dev/shm */
	uint64_t capacity;
	size_t n_hosts;
	char (*hosts)[TGVM_MEMDEV_HOSTNAME]; /* owned */
	int domain; /* index of its migration domain (devices joined by shared hosts) */
};

struct tgvm_memdevs {
	char origin[256];
	size_t n;
	struct tgvm_memdev *v; /* owned */
	int n_domains;
};

/*
 * The "memdevs" of inventory @inv (the whole document; its "hosts" give the
 * valid host names):
 *   "memdevs": [{"name": "cxl0", "capacity": "4G", "hosts": ["a", "b"],
 *                "path": "/dev/shm/cxl0"}]
 * A missing "memdevs" is an empty list. Errors name @origin, the device and
 * the bad field; unknown hosts, duplicate names and paths with a comma are
 * refused. Release with tgvm_memdevs_release().
 */
int tgvm_memdevs_from_json(json_t *inv, const char *origin, struct tgvm_memdevs *ret,
                           struct tgvm_error *reterr);
int tgvm_memdevs_load(const char *inventory, struct tgvm_memdevs *ret, struct tgvm_error *reterr);
void tgvm_memdevs_release(struct tgvm_memdevs *m);
const struct tgvm_memdev *tgvm_memdevs_find(const struct tgvm_memdevs *m, const char *name);
bool tgvm_memdev_has_host(const struct tgvm_memdev *d, const char *host);

/*
 * Device @dev as seen from host @host, which must be up: the host's
 * inventory must list the device with the host among its hosts, else -EPERM
 * with the reason ("host 'c' cannot map memory device 'cxl0' (shared by
 * hosts a, b)"). Opens the device (vm_memdev_open) into *ret.
 */
int tgvm_memdev_for_host(const char *host, const char *dev, struct vm_memdev *ret,
                         struct tgvm_error *reterr);

/*
 * Put VM @c (finished, not yet started) on device @dev of its host: resolve,
 * account capacity, set c->memdev and c->mem_file. On failure nothing is
 * placed. Undo with vm_memdev_free(c->mem_file).
 */
int tgvm_memdev_place(struct vm_config *c, const char *dev, struct tgvm_error *reterr);

#endif
