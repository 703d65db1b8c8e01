// SPDX-License-Identifier: MIT
/* tgvm host models|detect|show: the CPU profiles hosts can have. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tgvm/model.h"

static int print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(j);
	if (!s)
		return cli_fail(TGVM_EXIT_FAILURE, "host", "out of memory");
	puts(s);
	free(s);
	return TGVM_EXIT_OK;
}

static int host_models(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"all", no_argument, NULL, 'a'},
	    {"vendor", required_argument, NULL, 'v'},
	    {NULL, 0, NULL, 0},
	};
	struct tgvm_modeldb *db = NULL;
	struct tgvm_error err = {0};
	bool json = false, all = false;
	int vendor = -1, c, rc = TGVM_EXIT_OK;

	optind = 1;
	while ((c = getopt_long(argc, argv, "ja", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'a':
			all = true;
			break;
		case 'v':
			vendor = tgvm_vendor_from_string(optarg);
			if (vendor < 0)
				return cli_fail(TGVM_EXIT_USAGE, "host models",
				                "unknown vendor '%s' (use intel or amd)", optarg);
			break;
		default:
			return cli_usage("host");
		}
	}
	if (optind < argc)
		return cli_fail(TGVM_EXIT_USAGE, "host models", "unexpected argument '%s'",
		                argv[optind]);
	if (tgvm_modeldb_load_default(&db, &err) < 0)
		return cli_fail_err("host models", &err);
	if (json) {
		json_t *a = json_array();

		for (size_t i = 0; i < db->n; i++) {
			const struct tgvm_cpu_model *m = &db->models[i];

			if ((!all && !tgvm_cpu_model_is_named(m)) ||
			    (vendor >= 0 && (int)m->vendor != vendor))
				continue;
			json_array_append_new(a, tgvm_cpu_model_to_json(m));
		}
		tgvm_modeldb_free(db);
		return print_json(a);
	}
	static const char *const hdr[] = {"MODEL", "ALIAS OF", "VENDOR",
	                                  "PSABI", "FEATURES", "DESCRIPTION"};
	struct cli_table *t = cli_table_new(6, hdr);

	cli_table_align_right(t, 4);
	for (size_t i = 0; i < db->n; i++) {
		const struct tgvm_cpu_model *m = &db->models[i];
		char nf[16];

		if ((!all && !tgvm_cpu_model_is_named(m)) ||
		    (vendor >= 0 && (int)m->vendor != vendor))
			continue;
		if (!all && m->alias_of[0])
			continue; /* aliases repeat their -v1; --all shows them */
		snprintf(nf, sizeof(nf), "%d", tgvm_featureset_count(&m->features));
		const char *row[] = {m->name,
		                     m->alias_of[0] ? m->alias_of : "",
		                     tgvm_vendor_to_string(m->vendor),
		                     tgvm_psabi_to_string(tgvm_psabi_supported(&m->features)),
		                     nf,
		                     m->model_id};
		cli_table_add(t, row);
	}
	cli_table_print(t, stdout);
	printf("\n%zu models from QEMU %s%s\n", db->n, db->qemu_version,
	       all ? "" : " (aliases hidden; --all shows them)");
	cli_table_free(t);
	tgvm_modeldb_free(db);
	return rc;
}

static void print_profile(const struct tgvm_cpu_model *m, const struct tgvm_featureset *hidden)
{
	char *names = tgvm_featureset_to_string(&m->features, " ");

	printf("name:     %s\n", m->name);
	if (m->alias_of[0])
		printf("alias of: %s\n", m->alias_of);
	printf("vendor:   %s\n", tgvm_vendor_to_string(m->vendor));
	printf("cpu:      %s (family %d, model %d, stepping %d)\n",
	       m->model_id[0] ? m->model_id : "-", m->family, m->model, m->stepping);
	printf("psabi:    %s\n", tgvm_psabi_to_string(tgvm_psabi_supported(&m->features)));
	printf("features: %d\n", tgvm_featureset_count(&m->features));
	if (names)
		printf("  %s\n", names);
	free(names);
	if (hidden && !tgvm_featureset_empty(hidden)) {
		names = tgvm_featureset_to_string(hidden, " ");
		printf("disabled by the kernel (CPUID has them, /proc/cpuinfo does not): %s\n",
		       names ? names : "");
		free(names);
	}
	if (!tgvm_featureset_empty(&m->tcg_unavailable)) {
		names = tgvm_featureset_to_string(&m->tcg_unavailable, " ");
		printf("not available under TCG: %s\n", names ? names : "");
		free(names);
	}
}

static int host_detect(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"name", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	struct tgvm_cpu_model m;
	struct tgvm_featureset hidden;
	struct tgvm_error err = {0};
	const char *name = NULL;
	bool json = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jn:", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'n':
			name = optarg;
			break;
		default:
			return cli_usage("host");
		}
	}
	if (optind < argc)
		return cli_fail(TGVM_EXIT_USAGE, "host detect", "unexpected argument '%s'",
		                argv[optind]);
	if (name && (!*name || strlen(name) >= sizeof(m.name)))
		return cli_fail(TGVM_EXIT_USAGE, "host detect",
		                "--name: a profile name is 1 to %zu characters, the limit for "
		                "profile names",
		                sizeof(m.name) - 1);
	if (tgvm_cpu_detect(&m, &hidden, &err) < 0)
		return cli_fail_err("host detect", &err);
	if (name)
		snprintf(m.name, sizeof(m.name), "%s", name);
	if (json) {
		json_t *j = tgvm_cpu_model_to_json(&m);
		json_t *h = json_array();

		TGVM_FEATURESET_FOREACH(f, &hidden)
		json_array_append_new(h, json_string(tgvm_feature_name(f)));
		json_object_set_new(j, "disabled_by_kernel", h);
		json_object_set_new(j, "source", json_string("cpuid+/proc/cpuinfo"));
		return print_json(j);
	}
	print_profile(&m, &hidden);
	printf("\nAdd it to an inventory as {\"name\": \"%s\", \"profile\": <tgvm host detect "
	       "--json>}.\n",
	       m.name);
	return TGVM_EXIT_OK;
}

static int host_show(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0},
	};
	struct tgvm_modeldb *db = NULL;
	const struct tgvm_cpu_model *m;
	struct tgvm_error err = {0};
	bool json = false;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "j", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		default:
			return cli_usage("host");
		}
	}
	if (optind >= argc)
		return cli_fail(TGVM_EXIT_USAGE, "host show",
		                "name a CPU model ('tgvm host models' "
		                "lists them)");
	if (optind + 1 < argc)
		return cli_fail(TGVM_EXIT_USAGE, "host show", "unexpected argument '%s'",
		                argv[optind + 1]);
	if (tgvm_modeldb_load_default(&db, &err) < 0)
		return cli_fail_err("host show", &err);
	if (tgvm_modeldb_lookup(db, argv[optind], &m, &err) < 0) {
		rc = cli_fail(TGVM_EXIT_USAGE, "host show", "%s", err.msg);
	} else if (json) {
		rc = print_json(tgvm_cpu_model_to_json(m));
	} else {
		print_profile(m, NULL);
		rc = TGVM_EXIT_OK;
	}
	tgvm_modeldb_free(db);
	return rc;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} host_verbs[] = {
    {"models", host_models}, {"detect", host_detect}, {"show", host_show},
    {"up", cmd_host_up},     {"down", cmd_host_down},
};

int cmd_host(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return cmd_help(2, (char *[]){"help", "host", NULL});
	if (argc < 2)
		return cli_usage("host");
	for (size_t i = 0; i < sizeof(host_verbs) / sizeof(host_verbs[0]); i++)
		if (!strcmp(argv[1], host_verbs[i].name))
			return host_verbs[i].fn(argc - 1, argv + 1);
	cli_fail(TGVM_EXIT_USAGE, "host", "unknown sub-verb '%s'", argv[1]);
	return cli_usage("host");
}
