// SPDX-License-Identifier: MIT
/*
 * tgvm migrate VM --to HOST --mode shared|nil, --decouple DEVICE, --recouple:
 * the nil-migration steps (src/migrate/shared.c). Printing only: cmd-migrate.c
 * parses every form of `tgvm migrate` and hands these over.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tgvm/nil.h"
#include "util/util.h"

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

int cli_migrate_nil(struct cli_migrate_args *a)
{
	struct migrate_timeline t[NIL_STEP__MAX];
	struct migrate_opts *o = &a->o;
	struct tgvm_error err = {0};
	const char *vm = a->vm, *to = a->to, *mode = a->nil_mode;
	bool json = a->json;
	size_t n = 0;
	int r, rc;

	if (a->decouple) {
		r = migrate_decouple(vm, a->decouple, o, &t[0], &err);
		n = 1;
	} else if (a->recouple) {
		r = migrate_recouple(vm, o, &t[0], &err);
		n = 1;
	} else if (!strcmp(mode, "shared")) {
		r = migrate_handoff(vm, to, o, &a->nil, &t[0], &err);
		n = 1;
	} else {
		r = migrate_nil(vm, to, a->memdev, o, &a->nil, t, &n, &err);
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
