// SPDX-License-Identifier: MIT
/*
 * The memory devices of an inventory as `tgvm fleet` shows them: each device,
 * its capacity and use, its hosts, and the migration domains they form.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tgvm/memdev.h"
#include "util/util.h"

static char *hosts_str(const struct tgvm_memdev *d)
{
	struct tgvm_buf b;

	tgvm_buf_init(&b);
	for (size_t i = 0; i < d->n_hosts; i++)
		tgvm_buf_printf(&b, "%s%s", i ? ", " : "", d->hosts[i]);
	return b.data;
}

bool cli_fleet_has_memdevs(const char *inventory)
{
	struct tgvm_memdevs m = {0};
	bool has = tgvm_memdevs_load(inventory, &m, NULL) == 0 && m.n > 0;

	tgvm_memdevs_release(&m);
	return has;
}

int cli_fleet_memdevs(const char *inventory, json_t *json_out)
{
	struct tgvm_memdevs m = {0};
	struct tgvm_error err = {0};
	static const char *const hdr[] = {"DEVICE", "DOMAIN", "CAPACITY", "USED", "HOSTS"};
	struct cli_table *t = NULL;
	json_t *a = json_array();

	if (tgvm_memdevs_load(inventory, &m, &err) < 0) {
		json_decref(a);
		return cli_fail_err("fleet", &err);
	}
	if (!json_out && m.n)
		t = cli_table_new(5, hdr);
	for (size_t i = 0; i < m.n; i++) {
		const struct tgvm_memdev *d = &m.v[i];
		struct vm_memdev vd;
		uint64_t used = 0;
		size_t vms = 0;
		bool known = vm_memdev_peek(d->name, d->path, d->capacity, &vd, NULL) == 0 &&
		             vm_memdev_usage(&vd, &used, &vms, NULL) == 0;
		char dom[16], cap[32], use[48], *hs = hosts_str(d);
		json_t *jh = json_array();

		for (size_t k = 0; k < d->n_hosts; k++)
			json_array_append_new(jh, json_string(d->hosts[k]));
		json_array_append_new(
		    a, json_pack("{s:s, s:i, s:I, s:o, s:o, s:o}", "name", d->name, "domain",
		                 d->domain + 1, "capacity_bytes", (json_int_t)d->capacity,
		                 "used_bytes", known ? json_integer((json_int_t)used) : json_null(),
		                 "vms", known ? json_integer((json_int_t)vms) : json_null(),
		                 "hosts", jh));
		snprintf(dom, sizeof(dom), "%d", d->domain + 1);
		snprintf(cap, sizeof(cap), "%" PRIu64 " MiB", d->capacity >> 20);
		if (known)
			snprintf(use, sizeof(use), "%" PRIu64 " MiB (%zu VM%s)", used >> 20, vms,
			         vms == 1 ? "" : "s");
		else
			snprintf(use, sizeof(use), "-");
		const char *row[] = {d->name, dom, cap, use, hs ? hs : ""};
		if (t)
			cli_table_add(t, row);
		free(hs);
	}
	if (json_out) {
		json_object_set_new(json_out, "memdevs", a);
		json_object_set_new(json_out, "migration_domains", json_integer(m.n_domains));
	} else {
		json_decref(a);
		if (t) {
			printf(
			    "\nMemory devices: %zu, in %d migration domain%s (hosts that share a "
			    "device hand VMs over with --mode shared):\n\n",
			    m.n, m.n_domains, m.n_domains == 1 ? "" : "s");
			cli_table_align_right(t, 1);
			cli_table_align_right(t, 2);
			cli_table_print(t, stdout);
		}
	}
	cli_table_free(t);
	tgvm_memdevs_release(&m);
	return TGVM_EXIT_OK;
}
