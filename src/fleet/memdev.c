// SPDX-License-Identifier: MIT
/*
 * Memory devices of the inventory ("memdevs"): which hosts can map which
 * shared memory region, the migration domains they form, and placing a VM's
 * RAM on a device from a host that is up (via src/vm/memdev.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet-int.h"
#include "tgvm/fleet.h"
#include "tgvm/memdev.h"
#include "util/util.h"

void tgvm_memdevs_release(struct tgvm_memdevs *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].hosts);
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

const struct tgvm_memdev *tgvm_memdevs_find(const struct tgvm_memdevs *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].name, name))
			return &m->v[i];
	return NULL;
}

bool tgvm_memdev_has_host(const struct tgvm_memdev *d, const char *host)
{
	for (size_t i = 0; i < d->n_hosts; i++)
		if (!strcmp(d->hosts[i], host))
			return true;
	return false;
}

static bool inventory_has_host(json_t *hosts, const char *name)
{
	size_t i;
	json_t *h;

	json_array_foreach(hosts, i, h)
	{
		const char *n = json_string_value(json_object_get(h, "name"));

		if (n && !strcmp(n, name))
			return true;
	}
	return false;
}

/* Union-find over devices: two devices with a common host are one domain. */
static int find_root(int *parent, int i)
{
	while (parent[i] != i)
		i = parent[i] = parent[parent[i]];
	return i;
}

static void assign_domains(struct tgvm_memdevs *m)
{
	int *parent = calloc(m->n ? m->n : 1, sizeof(int)),
	    *id = calloc(m->n ? m->n : 1, sizeof(int));

	if (!parent || !id) {
		for (size_t i = 0; i < m->n; i++)
			m->v[i].domain = (int)i;
		m->n_domains = (int)m->n;
		free(parent);
		free(id);
		return;
	}
	for (size_t i = 0; i < m->n; i++)
		parent[i] = (int)i;
	/* O(devices^2 * hosts): inventories hold a handful of devices. */
	for (size_t i = 0; i < m->n; i++)
		for (size_t j = i + 1; j < m->n; j++)
			for (size_t k = 0; k < m->v[i].n_hosts; k++)
				if (tgvm_memdev_has_host(&m->v[j], m->v[i].hosts[k])) {
					parent[find_root(parent, (int)j)] =
					    find_root(parent, (int)i);
					break;
				}
	m->n_domains = 0;
	for (size_t i = 0; i < m->n; i++)
		id[i] = -1;
	for (size_t i = 0; i < m->n; i++) {
		int r = find_root(parent, (int)i);

		if (id[r] < 0)
			id[r] = m->n_domains++;
		m->v[i].domain = id[r];
	}
	free(parent);
	free(id);
}

static int parse_one(json_t *d, size_t idx, json_t *hosts, const char *text, const char *origin,
                     struct tgvm_memdevs *m, struct tgvm_memdev *ret, struct tgvm_error *reterr)
{
	static const char *const keys[] = {"name", "capacity", "hosts", "path", NULL};
	char where[TGVM_NAME_MAX + 32];
	const char *name = json_string_value(json_object_get(d, "name"));
	json_t *cap = json_object_get(d, "capacity"), *hl = json_object_get(d, "hosts");
	json_t *path = json_object_get(d, "path"), *h;
	size_t i;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!json_is_object(d) || !name)
		return tgvm_error_set(reterr, EINVAL, "'%s': memory device %zu has no \"name\"",
		                      origin, idx);
	if ((r = tgvm_name_check("memory device", name, reterr)) < 0)
		return tgvm_error_prefix(reterr, "'%s'", origin);
	snprintf(where, sizeof(where), "memory device '%s'", name);
	if ((r = tgvm_json_check_keys(d, keys, text, origin, where, reterr)) < 0)
		return r;
	if (tgvm_memdevs_find(m, name))
		return tgvm_error_set(reterr, EEXIST, "'%s': memory device '%s' is listed twice",
		                      origin, name);
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	if (json_is_integer(cap) && json_integer_value(cap) > 0)
		ret->capacity = (uint64_t)json_integer_value(cap);
	else if (!json_is_string(cap) ||
	         tgvm_parse_size(json_string_value(cap), &ret->capacity) < 0)
		return tgvm_error_set(reterr, EINVAL,
		                      "'%s': memory device '%s': \"capacity\" must be a size such "
		                      "as \"4G\"",
		                      origin, name);
	if (ret->capacity < TGVM_VM_MEM_MIN || ret->capacity > (1ull << 50))
		return tgvm_error_set(reterr, EINVAL,
		                      "'%s': memory device '%s': capacity must be 64 MiB to 1 PiB",
		                      origin, name);
	if (path) {
		const char *p = json_string_value(path);

		if (!p || p[0] != '/' || strchr(p, ',') || strlen(p) >= sizeof(ret->path))
			return tgvm_error_set(reterr, EINVAL,
			                      "'%s': memory device '%s': \"path\" must be an "
			                      "absolute path without commas",
			                      origin, name);
		snprintf(ret->path, sizeof(ret->path), "%s", p);
	}
	if (!json_is_array(hl) || json_array_size(hl) == 0 ||
	    json_array_size(hl) > TGVM_MEMDEV_HOSTS_MAX)
		return tgvm_error_set(reterr, EINVAL,
		                      "'%s': memory device '%s': \"hosts\" must list 1 to %d hosts",
		                      origin, name, TGVM_MEMDEV_HOSTS_MAX);
	ret->hosts = calloc(json_array_size(hl), sizeof(*ret->hosts));
	if (!ret->hosts)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	json_array_foreach(hl, i, h)
	{
		const char *hn = json_string_value(h);

		if (!hn || strlen(hn) >= TGVM_MEMDEV_HOSTNAME || !inventory_has_host(hosts, hn)) {
			r = tgvm_error_set(reterr, ENOENT,
			                   "'%s': memory device '%s': host '%s' is not in the "
			                   "inventory",
			                   origin, name, hn ? hn : "?");
			free(ret->hosts);
			ret->hosts = NULL;
			return r;
		}
		if (tgvm_memdev_has_host(ret, hn))
			continue;
		snprintf(ret->hosts[ret->n_hosts++], TGVM_MEMDEV_HOSTNAME, "%s", hn);
	}
	return 0;
}

int fleet_memdevs_from_json(json_t *inv, const char *text, const char *origin,
                            struct tgvm_memdevs *ret, struct tgvm_error *reterr)
{
	struct tgvm_memdevs m;
	json_t *a = json_object_get(inv, "memdevs"), *hosts = json_object_get(inv, "hosts"), *d;
	size_t i;
	int r;

	memset(&m, 0, sizeof(m));
	snprintf(m.origin, sizeof(m.origin), "%s", origin);
	if (!a) {
		*ret = m;
		return 0;
	}
	if (!json_is_array(a) || json_array_size(a) > TGVM_MEMDEVS_MAX)
		return tgvm_error_set(reterr, EINVAL,
		                      "'%s': \"memdevs\" must be an array of at most %d devices",
		                      origin, TGVM_MEMDEVS_MAX);
	if (!json_is_array(hosts))
		return tgvm_error_set(reterr, EINVAL, "'%s': expected a \"hosts\" array", origin);
	m.v = calloc(json_array_size(a) ? json_array_size(a) : 1, sizeof(*m.v));
	if (!m.v)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	json_array_foreach(a, i, d)
	{
		if ((r = parse_one(d, i, hosts, text, origin, &m, &m.v[m.n], reterr)) < 0) {
			tgvm_memdevs_release(&m);
			return r;
		}
		m.n++;
	}
	assign_domains(&m);
	*ret = m;
	return 0;
}

int tgvm_memdevs_from_json(json_t *inv, const char *origin, struct tgvm_memdevs *ret,
                           struct tgvm_error *reterr)
{
	return fleet_memdevs_from_json(inv, NULL, origin, ret, reterr);
}

int tgvm_memdevs_load(const char *inventory, struct tgvm_memdevs *ret, struct tgvm_error *reterr)
{
	json_error_t jerr;
	char *text = NULL;
	json_t *j;
	int r;

	if ((r = tgvm_file_read(inventory, TGVM_INVENTORY_FILE_MAX, &text, NULL, reterr)) < 0)
		return r;
	j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		free(text);
		return tgvm_error_set(reterr, EINVAL, "'%s', line %d, column %d: %s", inventory,
		                      jerr.line, jerr.column, jerr.text);
	}
	r = fleet_memdevs_from_json(j, text, inventory, ret, reterr);
	free(text);
	json_decref(j);
	return r;
}

/* "a, b, c" (at most @size bytes) for messages. */
static void host_list_str(const struct tgvm_memdev *d, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < d->n_hosts && len + 1 < size; i++) {
		int n = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", d->hosts[i]);

		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
	}
}

int tgvm_memdev_for_host(const char *host, const char *dev, struct vm_memdev *ret,
                         struct tgvm_error *reterr)
{
	struct tgvm_memdevs m = {0};
	const struct tgvm_memdev *d;
	struct vm_host h;
	char list[256];
	int r;

	if ((r = host_get(host, &h, reterr)) < 0)
		return r;
	if (!h.inventory[0])
		return tgvm_error_set(reterr, EPERM,
		                      "host '%s' was not brought up from an inventory, so it maps "
		                      "no memory device (tgvm host up --inventory FILE)",
		                      host);
	if ((r = tgvm_memdevs_load(h.inventory, &m, reterr)) < 0)
		return r;
	d = tgvm_memdevs_find(&m, dev);
	if (!d) {
		r = tgvm_error_set(reterr, ENOENT, "no memory device '%s' in '%s'", dev,
		                   h.inventory);
		goto out;
	}
	if (!tgvm_memdev_has_host(d, host)) {
		host_list_str(d, list, sizeof(list));
		r = tgvm_error_set(reterr, EPERM,
		                   "host '%s' cannot map memory device '%s' (shared by hosts %s)",
		                   host, dev, list);
		goto out;
	}
	r = vm_memdev_open(d->name, d->path, d->capacity, ret, reterr);
out:
	tgvm_memdevs_release(&m);
	return r;
}

int tgvm_memdev_place(struct vm_config *c, const char *dev, struct tgvm_error *reterr)
{
	struct vm_memdev d;
	char file[TGVM_MEMDEV_PATH_MAX + 48];
	char *dup;
	int r;

	if ((r = tgvm_memdev_for_host(c->host, dev, &d, reterr)) < 0)
		return r;
	if ((r = vm_memdev_alloc(&d, c->name, c->host, c->mem_bytes, file, sizeof(file), reterr)) <
	    0)
		return r;
	dup = strdup(file);
	if (!dup) {
		vm_memdev_free(file);
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	}
	free(c->mem_file);
	c->mem_file = dup;
	snprintf(c->memdev, sizeof(c->memdev), "%s", d.name);
	return 0;
}
