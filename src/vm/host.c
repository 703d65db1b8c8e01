// SPDX-License-Identifier: MIT
/*
 * Simulated hosts: the tgvm-fabric namespace with its bridge, the tgvm-probe
 * namespace on it, and one tgvm-<host> namespace per host (bridge br0 with the
 * host's address, veth "uplink" to the fabric). Hosts are recorded as
 * $TGVM_STATE_DIR/hosts/NAME.json so later commands find their addresses.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tgvm/vm.h"
#include "tgvm/memdev.h"
#include "vm/vm-int.h"

#define HOSTS_MAX 256

int tgvm_name_check(const char *what, const char *name, struct tgvm_error *reterr)
{
	size_t n = strlen(name);

	if (n == 0 || n >= TGVM_NAME_MAX)
		return tgvm_error_set(reterr, EINVAL, "%s name '%s' must have 1 to %d characters",
		                      what, name, TGVM_NAME_MAX - 1);
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		          (i > 0 && (ch == '-' || ch == '_'));

		if (!ok)
			return tgvm_error_set(reterr, EINVAL,
			                      "%s name '%s' may hold only a-z, 0-9, '-' and '_' "
			                      "and must start with a letter or digit",
			                      what, name);
	}
	if (!strcmp(name, "fabric") || !strcmp(name, "probe"))
		return tgvm_error_set(reterr, EINVAL, "%s name '%s' is reserved", what, name);
	return 0;
}

bool tgvm_net_addr_ok(const char *addr)
{
	struct in_addr a;
	uint32_t h;

	if (!addr || inet_pton(AF_INET, addr, &a) != 1)
		return false;
	h = ntohl(a.s_addr);
	return (h & 0xfffe0000u) == 0xc6120000u; /* 198.18.0.0/15 */
}

static int hosts_dir(char *buf, size_t size)
{
	char state[4096];
	int n;

	if (tgvm_state_dir(state, sizeof(state)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, size, "%s/hosts", state);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int host_record_path(const char *name, char *buf, size_t size)
{
	char dir[4096];
	int n;

	if (hosts_dir(dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, size, "%s/%s.json", dir, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int host_read(const char *path, struct vm_host *ret, struct tgvm_error *reterr)
{
	char *data = NULL;
	json_t *j = NULL;
	const char *name, *addr;
	int r;

	r = tgvm_file_read(path, 65536, &data, NULL, reterr);
	if (r < 0)
		return r;
	j = json_loads(data, 0, NULL);
	name = json_string_value(json_object_get(j, "name"));
	addr = json_string_value(json_object_get(j, "address"));
	if (!name || !addr || tgvm_name_check("host", name, NULL) < 0 || !tgvm_net_addr_ok(addr)) {
		r = tgvm_error_set(reterr, EINVAL, "host record '%s' is damaged", path);
		goto out;
	}
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->inventory, sizeof(ret->inventory), "%s",
	         json_string_value(json_object_get(j, "inventory")) ?: "");
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	snprintf(ret->address, sizeof(ret->address), "%s", addr);
	{
		const char *mk = json_string_value(json_object_get(j, "machine"));

		if (mk && vm_machine_from_string(mk) < 0) {
			r = tgvm_error_set(reterr, EINVAL, "host record '%s' is damaged (machine)",
			                   path);
			goto out;
		}
		snprintf(ret->machine, sizeof(ret->machine), "%s", mk ? mk : "");
	}
	{
		json_t *p = json_object_get(j, "profile");
		const char *pn = json_string_value(json_object_get(p, "name"));
		const char *pv = json_string_value(json_object_get(p, "vendor"));
		const char *pf = json_string_value(json_object_get(p, "features"));

		if (pn && pv && pf && strlen(pn) < sizeof(ret->profile) &&
		    strlen(pv) < sizeof(ret->profile_vendor) &&
		    strlen(pf) < sizeof(ret->profile_features)) {
			snprintf(ret->profile, sizeof(ret->profile), "%s", pn);
			snprintf(ret->profile_vendor, sizeof(ret->profile_vendor), "%s", pv);
			snprintf(ret->profile_features, sizeof(ret->profile_features), "%s", pf);
		} else if (p) {
			r = tgvm_error_set(reterr, EINVAL, "host record '%s' is damaged (profile)",
			                   path);
			goto out;
		}
	}
	r = 0;
out:
	json_decref(j);
	free(data);
	return r;
}

static int host_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vm_host *)a)->name, ((const struct vm_host *)b)->name);
}

int host_list(struct vm_host **ret, size_t *ret_n, struct tgvm_error *reterr)
{
	char dir[4096], path[4400];
	struct vm_host *v = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d;

	if (hosts_dir(dir, sizeof(dir)) < 0)
		return tgvm_error_set(reterr, ENAMETOOLONG, "state directory path too long");
	d = opendir(dir);
	if (!d) {
		if (errno != ENOENT)
			return tgvm_error_set(reterr, errno, "cannot open '%s': %s", dir,
			                      strerror(errno));
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	while ((de = readdir(d)) && n < HOSTS_MAX) {
		size_t len = strlen(de->d_name);
		struct vm_host h, *nv;

		if (len < 6 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (host_read(path, &h, NULL) < 0)
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			closedir(d);
			return tgvm_error_set(reterr, ENOMEM, "out of memory");
		}
		v = nv;
		v[n++] = h;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), host_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}

int host_get(const char *name, struct vm_host *ret, struct tgvm_error *reterr)
{
	char path[4400], ns[64];
	struct vm_host *all = NULL;
	size_t n = 0;
	int r;

	r = tgvm_name_check("host", name, reterr);
	if (r < 0)
		return r;
	if (host_record_path(name, path, sizeof(path)) < 0)
		return tgvm_error_set(reterr, ENAMETOOLONG, "state directory path too long");
	vm_host_netns(name, ns, sizeof(ns));
	if (access(path, F_OK) == 0 && vm_netns_exists(ns))
		return host_read(path, ret, reterr);
	/* Not up: suggest the closest host that is. */
	const char *best = NULL;
	int bestd = 4;
	if (host_list(&all, &n, NULL) == 0)
		for (size_t i = 0; i < n; i++) {
			int d = tgvm_edit_distance(name, all[i].name);

			if (d < bestd) {
				bestd = d;
				best = all[i].name;
			}
		}
	if (best)
		r = tgvm_error_set(reterr, ENOENT, "host '%s' is not up; did you mean '%s'?", name,
		                   best);
	else if (n == 0)
		r = tgvm_error_set(reterr, ENOENT,
		                   "host '%s' is not up (no host is; run 'tgvm host up')", name);
	else
		r = tgvm_error_set(reterr, ENOENT, "host '%s' is not up", name);
	free(all);
	return r;
}

static int fabric_up(struct tgvm_error *reterr)
{
	const char *fab = tgvm_net_fabric_ns(), *probe = tgvm_net_probe_ns();
	char cidr[32];
	int r;

	if (!vm_netns_exists(fab)) {
		snprintf(cidr, sizeof(cidr), "%s/%d", TGVM_NET_FABRIC_IP, TGVM_NET_PREFIX);
		if ((r = vm_net_ip(NULL, reterr, "netns", "add", fab, NULL)) < 0 ||
		    (r = vm_net_ip(fab, reterr, "link", "set", "lo", "up", NULL)) < 0 ||
		    (r = vm_net_ip(fab, reterr, "link", "add", TGVM_NET_FABRIC_BR, "address",
		                   "02:74:67:00:00:01", "type", "bridge", NULL)) < 0 ||
		    (r = vm_net_ip(fab, reterr, "addr", "add", cidr, "dev", TGVM_NET_FABRIC_BR,
		                   NULL)) < 0 ||
		    (r = vm_net_ip(fab, reterr, "link", "set", TGVM_NET_FABRIC_BR, "up", NULL)) < 0)
			goto fail;
	}
	if (!vm_netns_exists(probe)) {
		snprintf(cidr, sizeof(cidr), "%s/%d", TGVM_NET_PROBE_IP, TGVM_NET_PREFIX);
		if ((r = vm_net_ip(NULL, reterr, "netns", "add", probe, NULL)) < 0 ||
		    (r = vm_net_ip(probe, reterr, "link", "set", "lo", "up", NULL)) < 0 ||
		    (r = vm_net_ip(fab, reterr, "link", "add", "fprobe", "type", "veth", "peer",
		                   "name", "eth0", "netns", probe, NULL)) < 0 ||
		    (r = vm_net_ip(fab, reterr, "link", "set", "fprobe", "master",
		                   TGVM_NET_FABRIC_BR, "up", NULL)) < 0 ||
		    (r = vm_net_ip(probe, reterr, "addr", "add", cidr, "dev", "eth0", NULL)) < 0 ||
		    (r = vm_net_ip(probe, reterr, "link", "set", "eth0", "up", NULL)) < 0)
			goto fail;
	}
	return 0;
fail:
	return tgvm_error_prefix(reterr, "cannot create the fabric");
}

/* Kill every process left in namespace @ns (QEMU of a failed migration...). */
static void netns_kill_all(const char *ns)
{
	char path[256];
	DIR *d = opendir("/proc");
	struct dirent *de;
	struct stat want, st;

	snprintf(path, sizeof(path), VM_NETNS_DIR "/%s", ns);
	if (!d || stat(path, &want) < 0) {
		if (d)
			closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		char p[300];
		int pid;

		if (tgvm_parse_int(de->d_name, 2, INT32_MAX, &pid) < 0)
			continue;
		snprintf(p, sizeof(p), "/proc/%s/ns/net", de->d_name);
		if (stat(p, &st) == 0 && st.st_ino == want.st_ino && st.st_dev == want.st_dev &&
		    pid != getpid())
			kill(pid, SIGKILL);
	}
	closedir(d);
}

static int one_host_down(const char *name, struct tgvm_error *reterr)
{
	char ns[64], path[4400];
	struct vm_info *vms = NULL;
	size_t nvms = 0;
	int r = 0;

	if (vm_list(&vms, &nvms, NULL) == 0)
		for (size_t i = 0; i < nvms; i++)
			if (!strcmp(vms[i].config.host, name))
				vm_stop(vms[i].config.name, NULL);
	vm_info_free(vms, nvms);
	vm_host_netns(name, ns, sizeof(ns));
	if (vm_netns_exists(ns)) {
		netns_kill_all(ns);
		r = vm_net_ip(NULL, reterr, "netns", "del", ns, NULL);
	}
	if (host_record_path(name, path, sizeof(path)) == 0)
		unlink(path);
	return r;
}

static int one_host_up(const struct vm_host *h, struct tgvm_error *reterr)
{
	char ns[64], veth[16], cidr[40], path[4400], brmac[18];
	json_t *j = NULL;
	char *text = NULL;
	uint32_t hash = vm_fnv1a(h->name);
	int r;

	vm_host_netns(h->name, ns, sizeof(ns));
	snprintf(veth, sizeof(veth), "fh%08x", hash);
	snprintf(brmac, sizeof(brmac), "02:74:68:%02x:%02x:%02x", (hash >> 16) & 0xff,
	         (hash >> 8) & 0xff, hash & 0xff);
	snprintf(cidr, sizeof(cidr), "%s/%d", h->address, TGVM_NET_PREFIX);
	if ((r = vm_net_ip(NULL, reterr, "netns", "add", ns, NULL)) < 0 ||
	    (r = vm_net_ip(ns, reterr, "link", "set", "lo", "up", NULL)) < 0 ||
	    /* A fixed address: a bridge otherwise takes the lowest of its ports'
	     * addresses, so adding a VM's tap could change the host's MAC under
	     * the other hosts' ARP caches (seen here: a migration stream whose
	     * TCP connect then waited 69 s). */
	    (r = vm_net_ip(ns, reterr, "link", "add", "br0", "address", brmac, "type", "bridge",
	                   NULL)) < 0 ||
	    (r = vm_net_ip(tgvm_net_fabric_ns(), reterr, "link", "add", veth, "type", "veth",
	                   "peer", "name", "uplink", "netns", ns, NULL)) < 0 ||
	    (r = vm_net_ip(tgvm_net_fabric_ns(), reterr, "link", "set", veth, "master",
	                   TGVM_NET_FABRIC_BR, "up", NULL)) < 0 ||
	    (r = vm_net_ip(ns, reterr, "link", "set", "uplink", "master", "br0", "up", NULL)) < 0 ||
	    (r = vm_net_ip(ns, reterr, "addr", "add", cidr, "dev", "br0", NULL)) < 0 ||
	    (r = vm_net_ip(ns, reterr, "link", "set", "br0", "up", NULL)) < 0)
		goto out;
	if (hosts_dir(path, sizeof(path)) < 0 || (r = tgvm_mkdir_p(path, reterr)) < 0)
		goto out;
	host_record_path(h->name, path, sizeof(path));
	j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", h->name, "address", h->address, "netns",
	              ns, "fabric_veth", veth, "inventory", h->inventory);
	if (j && h->profile[0])
		json_object_set_new(j, "profile",
		                    json_pack("{s:s, s:s, s:s}", "name", h->profile, "vendor",
		                              h->profile_vendor, "features", h->profile_features));
	if (j && h->machine[0])
		json_object_set_new(j, "machine", json_string(h->machine));
	text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	if (!text) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory");
		goto out;
	}
	r = tgvm_file_write(path, text, strlen(text), reterr);
out:
	free(text);
	json_decref(j);
	if (r < 0) {
		tgvm_error_prefix(reterr, "host '%s'", h->name);
		one_host_down(h->name, NULL);
	}
	return r;
}

static bool addr_taken(const struct vm_host *all, size_t n, const char *addr, const char *except)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(all[i].address, addr) && strcmp(all[i].name, except))
			return true;
	return !strcmp(addr, TGVM_NET_FABRIC_IP) || !strcmp(addr, TGVM_NET_PROBE_IP);
}

int host_up(const struct vm_host *hosts, size_t n, struct tgvm_error *reterr)
{
	struct vm_host *all = NULL, *want = NULL;
	size_t nall = 0;
	bool *created = NULL;
	int r;

	if (n > HOSTS_MAX)
		return tgvm_error_set(reterr, E2BIG, "too many hosts (%zu, at most %d)", n,
		                      HOSTS_MAX);
	r = host_list(&all, &nall, reterr);
	if (r < 0)
		return r;
	want = calloc(n ? n : 1, sizeof(*want));
	created = calloc(n ? n : 1, sizeof(*created));
	if (!want || !created) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory");
		goto out;
	}
	/* Validate everything before touching the system. */
	for (size_t i = 0; i < n; i++) {
		want[i] = hosts[i];
		if ((r = tgvm_name_check("host", want[i].name, reterr)) < 0)
			goto out;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(want[k].name, want[i].name)) {
				r = tgvm_error_set(reterr, EINVAL, "host '%s' is listed twice",
				                   want[i].name);
				goto out;
			}
		for (size_t k = 0; k < nall; k++)
			if (!strcmp(all[k].name, want[i].name)) {
				if (want[i].address[0] && strcmp(want[i].address, all[k].address)) {
					r = tgvm_error_set(
					    reterr, EEXIST,
					    "host '%s' is up with address %s, not %s; run "
					    "'tgvm host down %s' first",
					    want[i].name, all[k].address, want[i].address,
					    want[i].name);
					goto out;
				}
				want[i] = all[k];
			}
		if (want[i].address[0]) {
			if (!tgvm_net_addr_ok(want[i].address)) {
				r = tgvm_error_set(
				    reterr, EINVAL,
				    "host '%s': address '%s' is not in 198.18.0.0/15", want[i].name,
				    want[i].address);
				goto out;
			}
			if (addr_taken(all, nall, want[i].address, want[i].name)) {
				r = tgvm_error_set(reterr, EEXIST,
				                   "host '%s': address %s is already in use",
				                   want[i].name, want[i].address);
				goto out;
			}
			for (size_t k = 0; k < i; k++)
				if (!strcmp(want[k].address, want[i].address)) {
					r = tgvm_error_set(
					    reterr, EEXIST, "hosts '%s' and '%s' share address %s",
					    want[k].name, want[i].name, want[i].address);
					goto out;
				}
		}
	}
	/* Assign the plan's addresses to hosts that have none. */
	for (size_t i = 0; i < n; i++) {
		if (want[i].address[0])
			continue;
		for (int last = 10; last < 250; last++) {
			char a[TGVM_ADDR_MAX];
			bool used;

			snprintf(a, sizeof(a), "198.18.0.%d", last);
			used = addr_taken(all, nall, a, want[i].name);
			for (size_t k = 0; k < n && !used; k++)
				used = k != i && !strcmp(want[k].address, a);
			if (!used) {
				memcpy(want[i].address, a, sizeof(a));
				break;
			}
		}
		if (!want[i].address[0]) {
			r = tgvm_error_set(reterr, ENOSPC, "no free host address for '%s'",
			                   want[i].name);
			goto out;
		}
	}
	r = fabric_up(reterr);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char ns[64], path[4400];

		vm_host_netns(want[i].name, ns, sizeof(ns));
		host_record_path(want[i].name, path, sizeof(path));
		if (vm_netns_exists(ns) && access(path, F_OK) == 0)
			continue; /* already up */
		if (vm_netns_exists(ns))
			one_host_down(want[i].name, NULL); /* a leftover without a record */
		r = one_host_up(&want[i], reterr);
		if (r < 0) {
			for (size_t k = 0; k < i; k++)
				if (created[k])
					one_host_down(want[k].name, NULL);
			goto out;
		}
		created[i] = true;
	}
	r = 0;
out:
	free(created);
	free(want);
	free(all);
	return r;
}

int host_down(const char *const *names, size_t n, struct tgvm_error *reterr)
{
	struct vm_host *all = NULL;
	size_t nall = 0;
	int r = 0, r2;

	if (n > 0) {
		for (size_t i = 0; i < n; i++) {
			struct vm_host h;
			char ns[64];

			if ((r2 = tgvm_name_check("host", names[i], reterr)) < 0)
				return r2;
			/* a typo must not pass for done; a leftover namespace without
			 * its record still goes */
			vm_host_netns(names[i], ns, sizeof(ns));
			if (!vm_netns_exists(ns) && (r2 = host_get(names[i], &h, reterr)) < 0)
				return r2;
		}
		for (size_t i = 0; i < n; i++) {
			r2 = one_host_down(names[i], r < 0 ? NULL : reterr);
			if (r2 < 0 && r == 0)
				r = r2;
		}
		vm_memdev_remove_unused();
		return r;
	}
	host_list(&all, &nall, NULL);
	for (size_t i = 0; i < nall; i++) {
		r2 = one_host_down(all[i].name, r < 0 ? NULL : reterr);
		if (r2 < 0 && r == 0)
			r = r2;
	}
	free(all);
	/* Leftover tgvm-* namespaces (a crash between netns add and the record). */
	DIR *d = opendir(VM_NETNS_DIR);
	struct dirent *de;
	const char *pfx = tgvm_netns_prefix();
	size_t plen = strlen(pfx);
	if (d) {
		while ((de = readdir(d))) {
			if (strncmp(de->d_name, pfx, plen) ||
			    !strcmp(de->d_name, tgvm_net_fabric_ns()) ||
			    !strcmp(de->d_name, tgvm_net_probe_ns()))
				continue;
			if (tgvm_name_check("host", de->d_name + plen, NULL) < 0)
				continue;
			r2 = one_host_down(de->d_name + plen, r < 0 ? NULL : reterr);
			if (r2 < 0 && r == 0)
				r = r2;
		}
		closedir(d);
	}
	const char *infra[] = {tgvm_net_probe_ns(), tgvm_net_fabric_ns()};
	for (size_t i = 0; i < ARRAY_SIZE(infra); i++) {
		if (!vm_netns_exists(infra[i]))
			continue;
		netns_kill_all(infra[i]);
		r2 = vm_net_ip(NULL, r < 0 ? NULL : reterr, "netns", "del", infra[i], NULL);
		if (r2 < 0 && r == 0)
			r = r2;
	}
	vm_memdev_remove_unused();
	return r;
}
