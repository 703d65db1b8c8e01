// SPDX-License-Identifier: MIT
/*
 * tgvm migrate VM --to HOST --mode shared|nil, --decouple DEVICE, --recouple:
 * the nil-migration steps (src/migrate/shared.c). Parsing and printing only;
 * cmd-migrate.c hands these command lines over.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tgvm/nil.h"
#include "util/util.h"

bool cli_migrate_is_nil(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--decouple") || !strncmp(a, "--decouple=", 11) ||
		    !strcmp(a, "--recouple") || !strcmp(a, "--mode=shared") ||
		    !strcmp(a, "--mode=nil"))
			return true;
		if (!strcmp(a, "--mode") && i + 1 < argc &&
		    (!strcmp(argv[i + 1], "shared") || !strcmp(argv[i + 1], "nil")))
			return true;
	}
	return false;
}

static int usage(void)
{
	fprintf(stderr,
	        "usage: tgvm migrate VM --to HOST --mode shared [--breakdown]\n"
	        "       tgvm migrate VM --to HOST --mode nil [--memdev DEVICE] [--breakdown]\n"
	        "       tgvm migrate VM --decouple DEVICE\n"
	        "       tgvm migrate VM --recouple\n"
	        "         [--downtime-limit MS] [--max-bandwidth SIZE] [--timeout MS]\n"
	        "         [--probe-interval US | --no-probe] [--no-net-switch]\n"
	        "         [--stream-buffer SIZE|auto]\n"
	        "         [--no-check] [--json]\n");
	return TGVM_EXIT_USAGE;
}

static void print_extra(json_t *j)
{
	json_t *b = json_object_get(j, "breakdown"), *v;
	const char *k;

	if (json_is_integer(json_object_get(j, "stream_bytes")))
		printf("stream (source QEMU's writes, all of it): %.3f MiB\n",
		       (double)json_integer_value(json_object_get(j, "stream_bytes")) / 1048576.0);
	if (json_is_integer(json_object_get(j, "lease_generation")))
		printf("memory lease now held by '%s' (generation %lld)\n",
		       json_string_value(json_object_get(j, "to")),
		       (long long)json_integer_value(json_object_get(j, "lease_generation")));
	if (!json_is_object(b))
		return;
	printf("where the vCPU blackout went (ms):");
	json_object_foreach(b, k, v)
	{
		if (json_is_number(v))
			printf(" %s %.3f", k, json_number_value(v));
		else if (json_is_null(v))
			printf(" %s -", k);
	}
	printf("\n");
}

static void print_one(json_t *j)
{
	const char *step = json_string_value(json_object_get(j, "step"));

	printf("== %s ==\n", step ? step : "migration");
	cli_migrate_print_timeline(j);
	print_extra(j);
}

int cmd_migrate_nil(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"to", required_argument, NULL, 't'},
	    {"mode", required_argument, NULL, 'm'},
	    {"decouple", required_argument, NULL, 'D'},
	    {"recouple", no_argument, NULL, 'R'},
	    {"memdev", required_argument, NULL, 'e'},
	    {"breakdown", no_argument, NULL, 'B'},
	    {"downtime-limit", required_argument, NULL, 'd'},
	    {"max-bandwidth", required_argument, NULL, 'b'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"no-check", no_argument, NULL, 'n'},
	    {"probe-interval", required_argument, NULL, 'P'},
	    {"no-probe", no_argument, NULL, 'N'},
	    {"no-net-switch", no_argument, NULL, 'S'},
	    {"stream-buffer", required_argument, NULL, 'H'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct migrate_opts o;
	struct migrate_timeline t[NIL_STEP__MAX];
	struct nil_opts no = {0};
	struct tgvm_error err = {0};
	const char *to = NULL, *mode = NULL, *decouple = NULL, *memdev = NULL, *vm;
	bool recouple = false, json = false;
	size_t n = 0;
	int c, r, rc = 0;

	migrate_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:m:D:Re:Bd:b:T:njhP:NSH:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			to = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'D':
			decouple = optarg;
			break;
		case 'R':
			recouple = true;
			break;
		case 'e':
			memdev = optarg;
			break;
		case 'B':
			no.breakdown = true;
			break;
		case 'j':
			json = true;
			break;
		default:
			if (!cli_migrate_common_opt(c, optarg, &o, &rc))
				return usage();
			if (rc)
				return rc;
		}
	}
	if (optind != argc - 1)
		return usage();
	vm = argv[optind];
	if ((decouple != NULL) + recouple + (mode != NULL) != 1)
		return cli_fail(TGVM_EXIT_USAGE, "migrate",
		                "give one of --mode shared|nil, --decouple DEVICE, --recouple");
	if (mode && strcmp(mode, "shared") && strcmp(mode, "nil"))
		return usage();
	if (mode && !to)
		return cli_fail(TGVM_EXIT_USAGE, "migrate", "--mode %s needs --to HOST", mode);
	if (!mode && to)
		return cli_fail(TGVM_EXIT_USAGE, "migrate",
		                "--decouple and --recouple stay on the VM's host: no --to");
	if (memdev && (!mode || strcmp(mode, "nil")))
		return cli_fail(TGVM_EXIT_USAGE, "migrate", "--memdev goes with --mode nil");

	o.interrupt = cli_interrupt_install();
	cli_migrate_test_env(&o);
	if (decouple) {
		r = migrate_decouple(vm, decouple, &o, &t[0], &err);
		n = 1;
	} else if (recouple) {
		r = migrate_recouple(vm, &o, &t[0], &err);
		n = 1;
	} else if (!strcmp(mode, "shared")) {
		r = migrate_handoff(vm, to, &o, &no, &t[0], &err);
		n = 1;
	} else {
		r = migrate_nil(vm, to, memdev, &o, &no, t, &n, &err);
	}
	if (json) {
		json_t *a = json_array();
		char *s;

		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, migrate_timeline_to_json(&t[i]));
		s = json_dumps(n == 1 && !(mode && !strcmp(mode, "nil")) ? json_array_get(a, 0) : a,
		               JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		json_decref(a);
	} else {
		for (size_t i = 0; i < n; i++) {
			json_t *j = migrate_timeline_to_json(&t[i]);

			if (strcmp(t[i].status, "refused")) {
				if (i)
					printf("\n");
				print_one(j);
			}
			json_decref(j);
		}
	}
	rc = n ? cli_migrate_exit(r, vm, t[n - 1].status, t[n - 1].from, t[n - 1].to, &err)
	       : cli_fail(TGVM_EXIT_FAILURE, "migrate", "%s", err.msg[0] ? err.msg : "failed");
	if (r == -EINTR && n && !strcmp(t[n - 1].status, "completed"))
		rc = 128 + cli_interrupt_signal(); /* nil: stopped between two steps */
	for (size_t i = 0; i < n; i++)
		migrate_timeline_release(&t[i]);
	return rc;
}
