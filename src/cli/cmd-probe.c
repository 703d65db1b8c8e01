// SPDX-License-Identifier: MIT
/* tgvm probe: run a workload with CPU features taken away; the minimal set it needs. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tgvm/probe.h"
#include "util/util.h"

static void progress(const struct tgvm_probe_progress *p, void *ud)
{
	(void)ud;
	fprintf(stderr, "\r\033[Kprobe: %u runs, %u running, %u found; %.60s", p->runs_done,
	        p->runs_running, p->found, p->last ? p->last : "");
	fflush(stderr);
}

static void print_set(const char *label, const struct tgvm_featureset *s, const char *empty)
{
	char *names = tgvm_featureset_to_string(s, " ");

	printf("%-12s%s\n", label, names && *names ? names : empty);
	free(names);
}

static void print_text(const struct tgvm_probe_result *r, bool all_runs)
{
	char buf[64];

	printf("workload    %s (%s, -cpu %s)\n", r->workload,
	       r->mode == TGVM_PROBE_VM ? "guest under qemu-system-x86_64" : "qemu-x86_64",
	       r->cpu_base);
	if (r->disk[0])
		printf("disk        %s (snapshot: never written)\n", r->disk);
	if (!r->reference_ok) {
		printf("reference   FAILED: %s\n", r->nruns ? r->run[0].detail : "?");
		print_set("untestable", &r->untestable, "(none)");
		return;
	}
	print_set("required", &r->required, "(none)");
	if (!r->verified)
		printf("%-12s%s\n", "", "NOT VERIFIED: the run with exactly these failed");
	else if (!r->minimal)
		printf("%-12s%s\n", "",
		       "NOT PROVEN MINIMAL: the run with exactly these passed; without the "
		       "dropped ones below it failed, though each alone was not missed");
	else if (tgvm_featureset_empty(&r->implied))
		printf("%-12s%s\n", "",
		       "1-minimal: the run with exactly these passed; without any one of them "
		       "it failed");
	else
		printf("%-12s%s\n", "",
		       "minimal up to the architecture: the run with exactly these passed; "
		       "without any proven one it failed");
	print_set("proven", &r->proven, "(none)");
	print_set("implied", &r->implied, "(none)");
	if (!tgvm_featureset_empty(&r->implied))
		printf("%-12s%s\n", "",
		       "runs without each passed; kept because a proven feature needs them");
	print_set("dropped", &r->dropped, "(none)");
	if (!tgvm_featureset_empty(&r->dropped))
		printf("%-12s%s\n", "",
		       "added by the search as companions; runs without each passed");
	print_set("untestable", &r->untestable, "(none)");
	printf("candidates  %d tested, %d always present\n", tgvm_featureset_count(&r->candidates),
	       tgvm_featureset_count(&r->fixed));
	printf("runs        %u (%u search, 1 reference, %u without one feature, %u verify); %u "
	       "failures named their feature by SIGILL\n",
	       r->runs, r->search_runs, r->minimal_runs,
	       r->runs - r->search_runs - r->minimal_runs - 1, r->hinted);
	printf("wall time   %.2f s\n", (double)r->wall_ns / 1e9);
	if (r->have_scan) {
		print_set("scan: false positives", &r->false_positive, "(none)");
		print_set("scan: false negatives", &r->false_negative, "(none)");
		print_set("scan: untestable", &r->scan_untestable, "(none)");
	}
	if (all_runs) {
		static const char *const hdr[] = {"#",    "phase",  "outcome", "removed",
		                                  "hint", "detail", "ms"};
		struct cli_table *t = cli_table_new(7, hdr);

		for (size_t i = 0; t && i < r->nruns; i++) {
			const struct tgvm_probe_run_info *ri = &r->run[i];
			char idx[24], ms[32], det[600],
			    *rm = tgvm_featureset_to_string(&ri->removed, ",");
			const char *cells[7];

			snprintf(idx, sizeof(idx), "%zu", i + 1);
			snprintf(ms, sizeof(ms), "%.0f", (double)ri->ns / 1e6);
			if (rm && strlen(rm) > 48)
				memcpy(rm + 44, "...", 4);
			cells[0] = idx;
			cells[1] = ri->phase;
			cells[2] = tgvm_probe_outcome_to_string(ri->outcome);
			/* VM: the decoded SIGILL, unless the detail says it already. */
			if (ri->fault[0] && !strstr(ri->detail, ri->fault))
				snprintf(det, sizeof(det), "%s; %s", ri->detail, ri->fault);
			else
				snprintf(det, sizeof(det), "%s", ri->detail);
			cells[3] = rm && *rm ? rm : "-";
			cells[4] = ri->hinted ? tgvm_feature_name(ri->sigill_feature) : "-";
			cells[5] = det;
			cells[6] = ms;
			cli_table_add(t, cells);
			free(rm);
		}
		if (t) {
			cli_table_align_right(t, 0);
			cli_table_align_right(t, 6);
			printf("\n");
			cli_table_print(t, stdout);
		}
		cli_table_free(t);
	}
	(void)buf;
}

int cmd_probe(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"cpu-base", required_argument, NULL, 'b'},
	    {"candidates", required_argument, NULL, 'c'},
	    {"scan", required_argument, NULL, 's'},
	    {"timeout", required_argument, NULL, 't'},
	    {"jobs", required_argument, NULL, 'j'},
	    {"check", required_argument, NULL, 'k'},
	    {"json", no_argument, NULL, 'J'},
	    {"runs", no_argument, NULL, 'R'},
	    {"vm", no_argument, NULL, 'v'},
	    {"kernel", required_argument, NULL, 'K'},
	    {"initrd", required_argument, NULL, 'I'},
	    {"disk", required_argument, NULL, 'D'},
	    {"run", required_argument, NULL, 'r'},
	    {"mem", required_argument, NULL, 'm'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct tgvm_probe_options o;
	struct tgvm_probe_result *res = NULL;
	struct tgvm_error err = {0};
	bool json = false, all_runs = false;
	int c, v, rc = TGVM_EXIT_FAILURE;

	memset(&o, 0, sizeof(o));
	optind = 1;
	while ((c = getopt_long(argc, argv, "+b:c:s:t:j:k:JRvK:I:D:r:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o.cpu_base = optarg;
			break;
		case 'c':
			if (tgvm_featureset_parse(optarg, &o.candidates, &err) < 0)
				return cli_fail(TGVM_EXIT_USAGE, "probe", "%s", err.msg);
			o.have_candidates = true;
			break;
		case 's':
			o.scan_report = optarg;
			break;
		case 't':
			if (tgvm_parse_int(optarg, 1, 86400, &v) < 0)
				return cli_fail(TGVM_EXIT_USAGE, "probe",
				                "--timeout wants seconds (1-86400), not '%s'",
				                optarg);
			o.timeout_s = (unsigned)v;
			break;
		case 'j':
			if (tgvm_parse_int(optarg, 1, TGVM_PROBE_JOBS_MAX, &v) < 0)
				return cli_fail(TGVM_EXIT_USAGE, "probe",
				                "--jobs wants 1-%d, not '%s'", TGVM_PROBE_JOBS_MAX,
				                optarg);
			o.jobs = (unsigned)v;
			break;
		case 'k':
			o.check = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'R':
			all_runs = true;
			break;
		case 'v':
			o.mode = TGVM_PROBE_VM;
			break;
		case 'K':
			o.kernel = optarg;
			break;
		case 'I':
			o.initrd = optarg;
			break;
		case 'D':
			o.disk = optarg;
			break;
		case 'r':
			o.run = optarg;
			break;
		case 'm':
			if (tgvm_parse_int(optarg, 64, 65536, &v) < 0)
				return cli_fail(TGVM_EXIT_USAGE, "probe",
				                "--mem wants MiB (64-65536), not '%s'", optarg);
			o.mem_mib = (unsigned)v;
			break;
		case 'h':
			return cmd_help(2, (char *[]){"help", "probe", NULL});
		default:
			return cli_usage("probe");
		}
	}
	if (o.mode == TGVM_PROBE_VM) {
		if (optind < argc)
			return cli_fail(TGVM_EXIT_USAGE, "probe",
			                "--vm runs --run CMD in the guest; unexpected '%s'",
			                argv[optind]);
		if (!o.run)
			return cli_fail(
			    TGVM_EXIT_USAGE, "probe",
			    "--vm needs --run CMD: the command whose result decides a run");
		if (!!o.kernel != !!o.initrd)
			return cli_fail(TGVM_EXIT_USAGE, "probe",
			                "--kernel and --initrd go together");
	} else {
		if (o.run || o.kernel || o.initrd || o.disk)
			return cli_fail(TGVM_EXIT_USAGE, "probe",
			                "--run, --kernel, --initrd and --disk need --vm");
		if (optind >= argc)
			return cli_fail(TGVM_EXIT_USAGE, "probe",
			                "say what to run: tgvm probe [OPTIONS] -- CMD ARGS...");
		o.argv = argv + optind;
	}
	o.qemu_user =
	    getenv("TGVM_QEMU_USER") && *getenv("TGVM_QEMU_USER") ? getenv("TGVM_QEMU_USER") : NULL;
	if (cli_isatty(stderr) && !json)
		o.progress = progress;
	if (tgvm_probe_run(&o, &res, &err) < 0) {
		if (o.progress)
			fprintf(stderr, "\r\033[K");
		return cli_fail_err("probe", &err);
	}
	if (o.progress)
		fprintf(stderr, "\r\033[K");
	if (json) {
		char *s = NULL;

		if (tgvm_probe_result_json(res, &s, &err) < 0) {
			rc = cli_fail_err("probe", &err);
			goto out;
		}
		printf("%s\n", s);
		free(s);
	} else {
		print_text(res, all_runs);
	}
	if (res->have_scan && !tgvm_featureset_empty(&res->false_negative)) {
		char *names = tgvm_featureset_to_string(&res->false_negative, ", ");

		fprintf(stderr,
		        "tgvm probe: STATIC FALSE NEGATIVE: the workload fails without %s, which "
		        "the scan called guarded or did not see; a migrated VM could crash (a "
		        "scanner bug: please report it)\n",
		        names ? names : "?");
		free(names);
	}
	if (!res->reference_ok) {
		fprintf(stderr, "tgvm probe: the reference run failed: %s\n",
		        res->nruns ? res->run[0].detail : "?");
		rc = TGVM_EXIT_FAILURE;
	} else if (!res->verified ||
	           (res->have_scan && !tgvm_featureset_empty(&res->false_negative))) {
		rc = TGVM_EXIT_NO;
	} else {
		rc = TGVM_EXIT_OK;
	}
out:
	tgvm_probe_result_free(res);
	return rc;
}
