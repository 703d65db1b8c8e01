// SPDX-License-Identifier: MIT
/*
 * tgvm migrate VM --to HOST | status VM | cancel VM: drive a live migration
 * and print its timeline. The pipeline lives in src/migrate/.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tgvm/migrate.h"
#include "util/util.h"

static void migrate_usage(void)
{
	fprintf(
	    stderr,
	    "usage: tgvm migrate VM --to HOST [--mode precopy|postcopy|auto]\n"
	    "                    [--downtime-limit MS] [--max-bandwidth SIZE]\n"
	    "                    [--converge-timeout MS] [--timeout MS] [--stall-timeout MS]\n"
	    "                    [--multifd N]\n"
	    "                    [--probe-interval US | --no-probe] [--no-net-switch]\n"
	    "                    [--stream-buffer SIZE|auto]\n"
	    "                    [--svg FILE] [--qemu-defaults] [--no-check] [--json]\n"
	    "       tgvm migrate VM --to HOST --mode shared|nil [--memdev DEVICE] [--breakdown]\n"
	    "       tgvm migrate VM --decouple DEVICE | --recouple   (nil-migration)\n"
	    "       tgvm migrate status [VM] [--json] [--svg FILE]\n"
	    "       tgvm migrate cancel VM\n");
}

static void progress(const struct migrate_timeline *t, const char *status, void *opaque)
{
	const struct migrate_iteration *it = t->n_iter ? &t->iter[t->n_iter - 1] : NULL;

	(void)opaque;
	if (!it)
		return;
	fprintf(stderr, "\r\033[K%s: pass %lld, %lld MiB sent, %lld MiB left, dirtying %lld MiB/s",
	        status, (long long)it->dirty_sync_count, (long long)(it->transferred_bytes >> 20),
	        (long long)(it->remaining_bytes >> 20), (long long)(it->dirty_rate_bps >> 20));
}

static void fmt_ms(char *buf, size_t size, json_t *v)
{
	if (json_is_number(v))
		snprintf(buf, size, "%.1f", json_number_value(v));
	else
		snprintf(buf, size, "-");
}

/* A counter of QEMU's scaled by @div, or "-" where QEMU did not give it. */
static void fmt_int(char *buf, size_t size, json_t *v, double div)
{
	if (!json_is_integer(v))
		snprintf(buf, size, "-");
	else if (div == 1)
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
	else
		snprintf(buf, size, "%.1f", (double)json_integer_value(v) / div);
}

/* The stream's connection and what it still held at STOP, one line. */
static void print_stream(json_t *st)
{
	json_t *buf = json_object_get(st, "buffer_bytes"), *q;

	if (!st)
		return;
	q = json_object_get(st, "queued_at_stop_bytes");
	printf("stream: %s connection to %s:%lld",
	       json_string_value(json_object_get(st, "connection")),
	       json_string_value(json_object_get(st, "address")),
	       (long long)json_integer_value(json_object_get(st, "port")));
	if (json_is_integer(buf))
		printf(", socket buffers %lld KiB", (long long)json_integer_value(buf) / 1024);
	else
		printf(", socket buffers autotuned by the kernel");
	if (json_is_integer(q))
		printf("; %.2f MiB still on its way to the destination at STOP",
		       (double)json_integer_value(q) / 1048576.0);
	printf("\n");
}

/* The table form of a timeline (as stored: see tgvm-migrate(1) JSON FIELDS). */
void cli_migrate_print_timeline(json_t *j)
{
	static const char *const hdr[] = {"PHASE", "START ms", "DURATION ms"};
	static const char *const ihdr[] = {"PASS", "AT ms", "SENT MiB", "LEFT MiB", "DIRTY MiB/s"};
	struct cli_table *t = cli_table_new(3, hdr), *it = cli_table_new(5, ihdr);
	json_t *dt = json_object_get(j, "downtime"), *v;
	size_t i;
	char a[32], b[32], c[32], d[32], e[32];

	printf("VM '%s': %s -> %s, %s: %s\n", json_string_value(json_object_get(j, "vm")),
	       json_string_value(json_object_get(j, "from")),
	       json_string_value(json_object_get(j, "to")),
	       json_string_value(json_object_get(j, "mode")),
	       json_string_value(json_object_get(j, "status")));
	if (json_string_length(json_object_get(j, "error")))
		printf("error: %s\n", json_string_value(json_object_get(j, "error")));
	if (json_string_length(json_object_get(j, "postcopy_reason")))
		printf("postcopy: %s\n", json_string_value(json_object_get(j, "postcopy_reason")));
	json_array_foreach(json_object_get(j, "phases"), i, v)
	{
		const char *row[3] = {json_string_value(json_object_get(v, "phase")), a, b};

		fmt_ms(a, sizeof(a), json_object_get(v, "start_ms"));
		fmt_ms(b, sizeof(b), json_object_get(v, "duration_ms"));
		if (t)
			cli_table_add(t, row);
	}
	if (t) {
		cli_table_align_right(t, 1);
		cli_table_align_right(t, 2);
		printf("\n");
		cli_table_print(t, stdout);
	}
	json_array_foreach(json_object_get(j, "precopy_iterations"), i, v)
	{
		const char *row[5] = {a, b, c, d, e};

		fmt_int(a, sizeof(a), json_object_get(v, "pass"), 1);
		fmt_ms(b, sizeof(b), json_object_get(v, "at_ms"));
		fmt_int(c, sizeof(c), json_object_get(v, "transferred_bytes"), 1048576.0);
		fmt_int(d, sizeof(d), json_object_get(v, "remaining_bytes"), 1048576.0);
		fmt_int(e, sizeof(e), json_object_get(v, "dirty_rate_bytes_per_s"), 1048576.0);
		if (it)
			cli_table_add(it, row);
	}
	if (it && json_array_size(json_object_get(j, "precopy_iterations"))) {
		for (int col = 0; col < 5; col++)
			cli_table_align_right(it, col);
		printf("\n");
		cli_table_print(it, stdout);
		printf(
		    "(QEMU's counters, sampled every 100 ms: a pass shorter than that has no row; "
		    "LEFT grows when a\n pass begins and the pages the guest wrote meanwhile are "
		    "added; '-': QEMU did not say)\n");
	}
	fmt_ms(a, sizeof(a), json_object_get(dt, "network_blackout_ms"));
	fmt_ms(b, sizeof(b), json_object_get(dt, "vcpu_blackout_ms"));
	fmt_ms(c, sizeof(c), json_object_get(dt, "qemu_ms"));
	fmt_ms(d, sizeof(d), json_object_get(j, "qemu_total_ms"));
	printf("\nnetwork blackout: %s ms   vCPU blackout (STOP->RESUME): %s ms   QEMU downtime: "
	       "%s ms\n",
	       a, b, c);
	printf(
	    "  network: the longest silence of the guest's UDP echo around the switch, seen from "
	    "outside\n"
	    "  vCPU:    the source's STOP event to the destination's RESUME event (QEMU's "
	    "clocks)\n"
	    "  QEMU:    QEMU's own downtime figure (its last copy only)\n");
	json_t *np = json_object_get(j, "network_probe");
	if (json_is_integer(json_object_get(np, "interval_us"))) {
		fmt_ms(a, sizeof(a), json_object_get(dt, "probe_floor_ms"));
		fmt_ms(b, sizeof(b), json_object_get(np, "precopy_longest_silence_ms"));
		printf("probe: UDP every %lld us, floor (no migration) %s ms, %.0f%% answered, "
		       "round trip %.1f ms; longest silence during precopy %s ms%s\n",
		       (long long)json_integer_value(json_object_get(np, "interval_us")), a,
		       100 * json_number_value(json_object_get(np, "floor_answered")),
		       json_number_value(json_object_get(np, "floor_rtt_median_us")) / 1000, b,
		       json_is_true(json_object_get(np, "fabric_switched_at_stop"))
		           ? "; fabric switched at STOP"
		           : "");
		if (json_is_number(json_object_get(np, "switched_after_stop_ms")))
			printf("network switch: forwarding replaced %.2f ms after STOP\n",
			       json_number_value(json_object_get(np, "switched_after_stop_ms")));
	}
	if (json_is_number(json_object_get(np, "first_answer_after_resume_ms"))) {
		json_int_t sent = json_integer_value(json_object_get(np, "sent_while_paused"));
		json_int_t ans = json_integer_value(json_object_get(np, "answered_of_paused"));
		json_t *tb = json_object_get(np, "dest_translated_blocks");

		fmt_ms(a, sizeof(a), json_object_get(np, "first_answer_after_resume_ms"));
		fmt_ms(b, sizeof(b), json_object_get(np, "blackout_end_after_resume_ms"));
		printf("after RESUME: first reply in %s ms, blackout over %s ms after RESUME", a,
		       b);
		if (json_is_integer(tb))
			printf(" (TCG: %lld code blocks translated by the new QEMU)",
			       (long long)json_integer_value(tb));
		printf("; sent while paused: %lld, answered later %lld, lost %lld\n",
		       (long long)sent, (long long)ans, (long long)(sent - ans));
	}
	if (json_string_length(json_object_get(np, "note")))
		printf("probe: %s\n", json_string_value(json_object_get(np, "note")));
	print_stream(json_object_get(j, "stream"));
	printf("QEMU total: %s ms   pipeline: %.1f ms   moved: %.1f MiB\n", d,
	       json_number_value(json_object_get(j, "pipeline_ms")),
	       (double)json_integer_value(json_object_get(j, "transferred_bytes")) / 1048576.0);
	cli_table_free(t);
	cli_table_free(it);
}

/*
 * Can @path be written (its directory exists and is writable, and it is not
 * a directory)? Asked before a migration starts, so that a typo in --svg
 * stops nothing halfway: 0, or a message and TGVM_EXIT_USAGE.
 */
static int svg_path_check(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (!*path || strlen(path) >= sizeof(dir))
		return cli_fail(TGVM_EXIT_USAGE, "migrate", "--svg: bad path '%s'", path);
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return cli_fail(TGVM_EXIT_USAGE, "migrate", "--svg: '%s' is a directory", path);
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + (slash == path) : 1,
	         slash ? path : ".");
	if (access(dir, W_OK) < 0)
		return cli_fail(TGVM_EXIT_USAGE, "migrate", "--svg: cannot write in '%s': %s", dir,
		                strerror(errno));
	return 0;
}

/* Draw @j into @path; a message and TGVM_EXIT_FAILURE when it cannot. */
static int write_svg(json_t *j, const char *path)
{
	struct tgvm_error err = {0};
	char *svg = migrate_timeline_svg(j);
	int rc = TGVM_EXIT_OK;

	if (!svg)
		return cli_fail(TGVM_EXIT_FAILURE, "migrate", "no timeline to draw into '%s'",
		                path);
	if (tgvm_file_write(path, svg, strlen(svg), &err) < 0)
		rc = cli_fail(TGVM_EXIT_FAILURE, "migrate", "cannot write the timeline to '%s': %s",
		              path, strerror(err.code ? err.code : EIO));
	else
		fprintf(stderr, "timeline drawn in '%s'\n", path);
	free(svg);
	return rc;
}

static int print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (!s)
		return cli_fail(TGVM_EXIT_FAILURE, "migrate", "out of memory");
	puts(s);
	free(s);
	return TGVM_EXIT_OK;
}

/* Every move in progress and each VM's last one, newest first. */
static int migrate_status_list(bool json)
{
	static const char *const hdr[] = {"VM", "STATUS", "FROM", "TO", "MODE", "ENDED"};
	struct tgvm_error err = {0};
	struct cli_table *tb;
	json_t *all = NULL, *v;
	size_t i;
	int rc;

	if (migrate_status_all(&all, &err) < 0)
		return cli_fail_err("migrate status", &err);
	if (json) {
		rc = print_json(all);
		json_decref(all);
		return rc;
	}
	if (!json_array_size(all)) {
		printf("no VM has been migrated\n");
		json_decref(all);
		return TGVM_EXIT_OK;
	}
	tb = cli_table_new(6, hdr);
	json_array_foreach(all, i, v)
	{
		char ended[40] = "-";
		json_int_t ns = json_integer_value(json_object_get(v, "ended_unix_ns"));
		bool active = json_is_true(json_object_get(v, "active"));

		if (!active && ns > 0) {
			time_t s = (time_t)(ns / 1000000000);
			struct tm tm;

			localtime_r(&s, &tm);
			strftime(ended, sizeof(ended), "%Y-%m-%d %H:%M:%S", &tm);
		}
		const char *row[6] = {json_string_value(json_object_get(v, "vm")),
		                      active ? "in progress"
		                             : json_string_value(json_object_get(v, "status")) ?: "-",
		                      json_string_value(json_object_get(v, "from")) ?: "-",
		                      json_string_value(json_object_get(v, "to")) ?: "-",
		                      json_string_value(json_object_get(v, "mode")) ?: "-", ended};
		if (tb)
			cli_table_add(tb, row);
	}
	if (tb)
		cli_table_print(tb, stdout);
	cli_table_free(tb);
	json_decref(all);
	return TGVM_EXIT_OK;
}

static int migrate_status_cmd(int argc, char **argv)
{
	struct tgvm_error err = {0};
	bool json = false, active = false;
	const char *svg = NULL;
	json_t *j = NULL;
	int rc;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--svg") && i + 1 < argc)
			svg = argv[++i];
		else
			argc = 0; /* usage */
	}
	if (argc < 1) {
		migrate_usage();
		return TGVM_EXIT_USAGE;
	}
	if (argc == 1)
		return migrate_status_list(json);
	if (migrate_status(argv[1], &j, &active, &err) < 0)
		return cli_fail_err("migrate status", &err);
	if (json) {
		rc = print_json(j);
	} else {
		if (active)
			printf("in progress (QEMU status %s)\n",
			       json_string_value(json_object_get(j, "qemu_status")));
		cli_migrate_print_timeline(j);
		rc = TGVM_EXIT_OK;
	}
	if (svg && !active && rc == TGVM_EXIT_OK)
		rc = write_svg(j, svg);
	json_decref(j);
	return rc;
}

static int migrate_cancel_cmd(int argc, char **argv)
{
	struct tgvm_error err = {0};

	if (argc != 2) {
		migrate_usage();
		return TGVM_EXIT_USAGE;
	}
	if (migrate_cancel_request(argv[1], &err) < 0)
		return cli_fail_err("migrate cancel", &err);
	printf("migration of VM '%s' cancelled; it runs on its source host\n", argv[1]);
	return TGVM_EXIT_OK;
}

/* One option of `tgvm migrate` into @a; 0, or the exit code of a bad value (reported). */
static int migrate_opt(int c, const char *arg, struct cli_migrate_args *a)
{
	struct migrate_opts *o = &a->o;
	uint64_t v = 0;
	int r;

	switch (c) {
	case 't':
		a->to = arg;
		return 0;
	case 'm':
		if (!strcmp(arg, "shared") || !strcmp(arg, "nil")) {
			a->nil_mode = arg;
			return 0;
		}
		if ((r = migrate_mode_from_string(arg)) < 0)
			return cli_fail(TGVM_EXIT_USAGE, "migrate",
			                "unknown mode '%s' (precopy, postcopy, auto, shared, nil)",
			                arg);
		o->mode = (enum migrate_mode)r;
		a->mode_given = true;
		return 0;
	case 'D':
		a->decouple = arg;
		return 0;
	case 'R':
		a->recouple = true;
		return 0;
	case 'e':
		a->memdev = arg;
		return 0;
	case 'B':
		a->nil.breakdown = true;
		return 0;
	case 'd':
		o->downtime_limit_set = true;
		if (tgvm_parse_int(arg, 1, 600000, &o->downtime_limit_ms) < 0)
			return cli_fail(TGVM_EXIT_USAGE, "migrate",
			                "--downtime-limit takes milliseconds, not '%s'", arg);
		return 0;
	case 'b':
		if (tgvm_parse_size(arg, &o->max_bandwidth) < 0 || !o->max_bandwidth)
			return cli_fail(
			    TGVM_EXIT_USAGE, "migrate",
			    "--max-bandwidth takes bytes per second (e.g. 100M), not '%s'", arg);
		return 0;
	case 'c':
		if (tgvm_parse_int(arg, 1, 3600000, &o->converge_timeout_ms) < 0)
			return cli_fail(TGVM_EXIT_USAGE, "migrate",
			                "--converge-timeout takes milliseconds, not '%s'", arg);
		return 0;
	case 'T':
		if (tgvm_parse_int(arg, 1, 86400000, &o->timeout_ms) < 0)
			return cli_fail(TGVM_EXIT_USAGE, "migrate",
			                "--timeout takes milliseconds, not '%s'", arg);
		return 0;
	case 'z':
		if (tgvm_parse_int(arg, 100, 3600000, &o->stall_timeout_ms) < 0)
			return cli_fail(TGVM_EXIT_USAGE, "migrate",
			                "--stall-timeout takes milliseconds, not '%s'", arg);
		return 0;
	case 'M':
		if (tgvm_parse_int(arg, 1, 64, &o->multifd_channels) < 0)
			return cli_fail(TGVM_EXIT_USAGE, "migrate",
			                "--multifd takes 1 to 64 channels, not '%s'", arg);
		return 0;
	case 'n':
		o->check = NULL;
		return 0;
	case 'P':
		if (tgvm_parse_int(arg, 10, 1000000, &o->probe_interval_us) < 0)
			return cli_fail(TGVM_EXIT_USAGE, "migrate",
			                "--probe-interval takes microseconds, not '%s'", arg);
		return 0;
	case 'N':
		o->probe_interval_us = -1;
		return 0;
	case 'S':
		o->no_net_switch = true;
		return 0;
	case 'H':
		if (!strcmp(arg, "auto"))
			o->stream_buffer = -1;
		else if (tgvm_parse_size(arg, &v) < 0 || v < 4096 || v > (256u << 20))
			return cli_fail(
			    TGVM_EXIT_USAGE, "migrate",
			    "--stream-buffer takes a size from 4K to 256M or 'auto', not '%s'",
			    arg);
		else
			o->stream_buffer = (int)v;
		return 0;
	case 'g':
		a->svg = arg;
		return 0;
	case 'Q':
		o->qemu_defaults = true;
		return 0;
	case 'j':
		a->json = true;
		return 0;
	default:
		migrate_usage();
		return TGVM_EXIT_USAGE;
	}
}

/* What goes with what: one message per conflict, before anything moves. */
static int migrate_args_check(struct cli_migrate_args *a, int argc, char **argv)
{
	bool nil = a->nil_mode || a->decouple || a->recouple;

	if (optind != argc - 1) {
		if (optind >= argc)
			fprintf(stderr, "tgvm migrate: which VM?\n");
		else
			fprintf(stderr, "tgvm migrate: unexpected argument '%s'%s\n",
			        argv[optind + 1],
			        a->to ? "" : " (the destination goes after --to)");
		migrate_usage();
		return TGVM_EXIT_USAGE;
	}
	a->vm = argv[optind];
	if ((a->decouple != NULL) + a->recouple + (a->nil_mode != NULL) > 1)
		return cli_fail(TGVM_EXIT_USAGE, "migrate",
		                "give one of --mode shared|nil, --decouple DEVICE, --recouple");
	if (a->nil_mode && a->mode_given)
		return cli_fail(TGVM_EXIT_USAGE, "migrate", "one --mode");
	if ((a->decouple || a->recouple) && a->to)
		return cli_fail(TGVM_EXIT_USAGE, "migrate",
		                "--decouple and --recouple stay on the VM's host: no --to");
	if (!a->decouple && !a->recouple && !a->to) {
		fprintf(stderr, "tgvm migrate: no destination (--to HOST)\n");
		migrate_usage();
		return TGVM_EXIT_USAGE;
	}
	if (a->memdev && (!a->nil_mode || strcmp(a->nil_mode, "nil")))
		return cli_fail(TGVM_EXIT_USAGE, "migrate", "--memdev goes with --mode nil");
	if (a->nil.breakdown && !a->nil_mode)
		return cli_fail(TGVM_EXIT_USAGE, "migrate",
		                "--breakdown goes with --mode shared|nil");
	if (nil && (a->svg || a->o.qemu_defaults || a->o.multifd_channels || a->mode_given))
		return cli_fail(
		    TGVM_EXIT_USAGE, "migrate",
		    "--svg, --qemu-defaults, --multifd and --mode precopy|postcopy|auto "
		    "do not go with nil-migration");
	if (a->svg)
		return svg_path_check(a->svg);
	return 0;
}

/* A precopy, postcopy or auto move: run it, print its timeline. */
static int migrate_live(struct cli_migrate_args *a)
{
	struct migrate_timeline t;
	struct tgvm_error err = {0};
	int r, rc;

	if (!a->json && cli_isatty(stderr))
		a->o.progress = progress;
	r = migrate_vm(a->vm, a->to, &a->o, &t, &err);
	if (a->o.progress)
		fprintf(stderr, "\r\033[K");
	json_t *j = migrate_timeline_to_json(&t);
	if (a->json)
		print_json(j);
	else if (strcmp(t.status, "refused"))
		cli_migrate_print_timeline(j);
	if (a->svg && strcmp(t.status, "refused") && write_svg(j, a->svg) != TGVM_EXIT_OK && r == 0)
		fprintf(stderr, "tgvm migrate: the VM moved; only its picture is missing\n");
	json_decref(j);
	rc = cli_migrate_exit(r, a->vm, t.status, t.from, a->to, &err);
	migrate_timeline_release(&t);
	return rc;
}

int cmd_migrate(int argc, char **argv)
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
	    {"converge-timeout", required_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"multifd", required_argument, NULL, 'M'},
	    {"no-check", no_argument, NULL, 'n'},
	    {"probe-interval", required_argument, NULL, 'P'},
	    {"no-probe", no_argument, NULL, 'N'},
	    {"no-net-switch", no_argument, NULL, 'S'},
	    {"stream-buffer", required_argument, NULL, 'H'},
	    {"svg", required_argument, NULL, 'g'},
	    {"qemu-defaults", no_argument, NULL, 'Q'},
	    {"stall-timeout", required_argument, NULL, 'z'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cli_migrate_args a = {0};
	int c, rc;

	if (argc >= 2 && !strcmp(argv[1], "status"))
		return migrate_status_cmd(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "cancel"))
		return migrate_cancel_cmd(argc - 1, argv + 1);
	migrate_opts_init(&a.o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:m:D:Re:Bd:b:c:T:M:njhP:NSH:g:Qz:", opts, NULL)) !=
	       -1)
		if ((rc = migrate_opt(c, optarg, &a)) != 0)
			return rc;
	if ((rc = migrate_args_check(&a, argc, argv)) != 0)
		return rc;
	a.o.interrupt = cli_interrupt_install();
	cli_migrate_test_env(&a.o);
	if (a.nil_mode || a.decouple || a.recouple)
		return cli_migrate_nil(&a);
	return migrate_live(&a);
}

static const char *sig_name(int sig)
{
	return sig == SIGINT    ? "SIGINT"
	       : sig == SIGTERM ? "SIGTERM"
	       : sig == SIGHUP  ? "SIGHUP"
	                        : "a signal";
}

int cli_migrate_exit(int r, const char *vm, const char *status, const char *from, const char *to,
                     const struct tgvm_error *err)
{
	int sig = cli_interrupt_signal();

	if (!strcmp(status, "refused"))
		return cli_refused("migrate", err);
	if (r == 0) {
		if (sig)
			fprintf(
			    stderr,
			    "tgvm migrate: %s came after the destination had the VM: the move was "
			    "completed; VM '%s' runs on host '%s'\n",
			    sig_name(sig), vm, to);
		return TGVM_EXIT_OK;
	}
	if (r == -EINTR && sig && strcmp(status, "completed")) {
		fprintf(
		    stderr,
		    "tgvm migrate: %s before the switch: the move was cancelled; VM '%s' runs on "
		    "host '%s'\n",
		    sig_name(sig), vm, from && *from ? from : "?");
		return 128 + sig;
	}
	if (!strcmp(status, "completed"))
		return cli_fail(TGVM_EXIT_FAILURE, "migrate", "VM '%s' moved to host '%s', but %s",
		                vm, to, err->msg[0] ? err->msg : "something failed");
	return cli_fail(TGVM_EXIT_FAILURE, "migrate", "%s", err->msg[0] ? err->msg : "failed");
}
