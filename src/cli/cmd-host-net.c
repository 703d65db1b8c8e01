// SPDX-License-Identifier: MIT
/*
 * tgvm host up|down: create and remove simulated hosts (network namespaces on
 * a fabric bridge). Hosts come from an inventory (--inventory, the format
 * `tgvm fleet` reads), a list (--hosts a,b) or names given as arguments.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tgvm/fleet.h"
#include "tgvm/vm.h"
#include "util/util.h"

static int print_hosts(bool json)
{
	struct vm_host *all = NULL;
	struct tgvm_error err = {0};
	size_t n = 0;

	if (host_list(&all, &n, &err) < 0)
		return cli_fail_err("host", &err);
	if (json) {
		json_t *a = json_array();
		char *s;

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:i}", "name",
			                                   all[i].name, "address", all[i].address,
			                                   "netns", "", "prefix", TGVM_NET_PREFIX));
		for (size_t i = 0; i < n; i++) {
			char ns[64];

			snprintf(ns, sizeof(ns), "%s%s", tgvm_netns_prefix(), all[i].name);
			json_object_set_new(json_array_get(a, i), "netns", json_string(ns));
		}
		s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(a);
		if (s)
			puts(s);
		free(s);
	} else {
		static const char *const hdr[] = {"HOST", "ADDRESS", "NAMESPACE"};
		struct cli_table *t = cli_table_new(3, hdr);

		for (size_t i = 0; t && i < n; i++) {
			char ns[64];
			const char *row[3] = {all[i].name, all[i].address, ns};

			snprintf(ns, sizeof(ns), "%s%s", tgvm_netns_prefix(), all[i].name);
			cli_table_add(t, row);
		}
		if (t && n)
			cli_table_print(t, stdout);
		else
			printf("no hosts are up\n");
		cli_table_free(t);
	}
	free(all);
	return TGVM_EXIT_OK;
}

int cmd_host_up(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"inventory", required_argument, NULL, 'i'},
	    {"hosts", required_argument, NULL, 'H'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct tgvm_strv names;
	struct vm_host *hosts = NULL;
	struct tgvm_modeldb *db = NULL;
	struct tgvm_inventory *inv = NULL;
	struct tgvm_error err = {0};
	const char *invpath = NULL;
	bool json = false;
	size_t n = 0;
	int c, rc = TGVM_EXIT_OK;

	tgvm_strv_init(&names);
	optind = 1;
	while ((c = getopt_long(argc, argv, "i:H:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			invpath = optarg;
			break;
		case 'H':
			tgvm_strv_split(&names, optarg, ", ");
			break;
		case 'j':
			json = true;
			break;
		default:
			tgvm_strv_release(&names);
			fprintf(stderr,
			        "usage: tgvm host up [--inventory FILE | --hosts A,B | HOST...] "
			        "[--json]\n");
			return TGVM_EXIT_USAGE;
		}
	}
	for (int i = optind; i < argc; i++)
		tgvm_strv_push(&names, argv[i]);
	if (invpath && names.n) {
		tgvm_strv_release(&names);
		return cli_fail(TGVM_EXIT_USAGE, "host up",
		                "give --inventory or host names, not both");
	}
	if (!invpath && !names.n) {
		tgvm_strv_release(&names);
		return print_hosts(json);
	}
	if (invpath) {
		if (tgvm_modeldb_load_default(&db, &err) < 0 ||
		    tgvm_inventory_load(invpath, db, &inv, &err) < 0) {
			rc = cli_fail_err("host up", &err);
			goto out;
		}
		n = inv->n;
	} else {
		n = names.n;
	}
	hosts = calloc(n ? n : 1, sizeof(*hosts));
	if (!hosts) {
		rc = cli_fail(TGVM_EXIT_FAILURE, "host up", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = inv ? inv->hosts[i].name : names.v[i];
		const char *addr = inv ? inv->hosts[i].address : "";

		if (strlen(name) >= sizeof(hosts[i].name) ||
		    strlen(addr) >= sizeof(hosts[i].address)) {
			rc = cli_fail(TGVM_EXIT_USAGE, "host up",
			              "host name or address '%s' is too long", name);
			goto out;
		}
		memcpy(hosts[i].name, name, strlen(name) + 1);
		memcpy(hosts[i].address, addr, strlen(addr) + 1);
		if (inv) {
			char *abs = realpath(invpath, NULL);

			const struct tgvm_cpu_model *pm = &inv->hosts[i].profile;
			char *feats = tgvm_featureset_to_string(&pm->features, ",");

			snprintf(hosts[i].inventory, sizeof(hosts[i].inventory), "%s",
			         abs ? abs : invpath);
			free(abs);
			/* the profile itself, so that later edits of the file change nothing */
			if (!feats || strlen(feats) >= sizeof(hosts[i].profile_features) ||
			    strlen(pm->name) >= sizeof(hosts[i].profile)) {
				free(feats);
				rc = cli_fail(TGVM_EXIT_FAILURE, "host up",
				              "host '%s': profile too large to record", name);
				goto out;
			}
			snprintf(hosts[i].profile, sizeof(hosts[i].profile), "%s", pm->name);
			snprintf(hosts[i].profile_vendor, sizeof(hosts[i].profile_vendor), "%s",
			         tgvm_vendor_to_string(pm->vendor));
			snprintf(hosts[i].profile_features, sizeof(hosts[i].profile_features), "%s",
			         feats);
			free(feats);
			snprintf(hosts[i].machine, sizeof(hosts[i].machine), "%s",
			         inv->hosts[i].machine);
		}
	}
	if (host_up(hosts, n, &err) < 0) {
		rc = cli_fail_err("host up", &err);
		goto out;
	}
	rc = print_hosts(json);
out:
	free(hosts);
	tgvm_inventory_free(inv);
	tgvm_modeldb_free(db);
	tgvm_strv_release(&names);
	return rc;
}

int cmd_host_down(int argc, char **argv)
{
	struct tgvm_error err = {0};
	const char *const *names = (const char *const *)argv + 1;
	size_t n = argc > 1 ? (size_t)argc - 1 : 0;

	if (n && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fprintf(stderr, "usage: tgvm host down [HOST...]\n");
		return TGVM_EXIT_USAGE;
	}
	if (host_down(names, n, &err) < 0)
		return cli_fail_err("host down", &err);
	return TGVM_EXIT_OK;
}
