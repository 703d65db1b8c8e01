// SPDX-License-Identifier: MIT
/*
 * tgvm scan PATH...: which CPU features the software in files, root trees,
 * initramfs archives or ext4 images needs (required) and which it uses only
 * after checking (guarded). Prints a table, JSON, or the evidence for one
 * feature; shows progress on a terminal.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tgvm/scan.h"
#include "util/util.h"

static void progress(const struct tgvm_scan_progress *p, void *ud)
{
	FILE *out = ud;
	int width = 30, fill;
	uint64_t pct;

	if (!p->bytes_total)
		return;
	pct = p->bytes_done * 100 / p->bytes_total;
	fill = (int)(pct * (uint64_t)width / 100);
	fprintf(out, "\r[%.*s%*s] %3llu%%  %llu/%llu files", fill,
	        "==============================", width - fill, "", (unsigned long long)pct,
	        (unsigned long long)p->files_done, (unsigned long long)p->files_total);
	if (p->files_done == p->files_total)
		fputs("\r\033[K", out);
	fflush(out);
}

/* Features beyond what every x86-64 Linux guest has, space separated; caller frees. */
static char *beyond_baseline(const struct tgvm_featureset *s)
{
	struct tgvm_featureset b, x = *s;
	char *str;

	tgvm_linux_baseline(&b);
	tgvm_featureset_minus(&x, &b);
	if (tgvm_featureset_empty(&x))
		return strdup("-");
	str = tgvm_featureset_to_string(&x, " ");
	return str;
}

static int add_row(struct cli_table *t, const char *scope, enum tgvm_psabi_level lv,
                   const struct tgvm_featureset *req, const struct tgvm_featureset *grd)
{
	char *r = beyond_baseline(req), *g = NULL;
	int ret = -1;

	if (tgvm_featureset_empty(grd))
		g = strdup("-");
	else
		g = tgvm_featureset_to_string(grd, " ");
	if (r && g) {
		const char *cells[] = {scope, tgvm_psabi_to_string(lv), r, g};

		ret = cli_table_add(t, cells);
	}
	free(r);
	free(g);
	return ret;
}

static int print_table(const struct tgvm_scan_report *rep, bool per_program)
{
	static const char *const hdr[] = {"SCOPE", "PSABI", "REQUIRED (beyond x86-64 baseline)",
	                                  "GUARDED (used only after a CPU check)"};
	const struct tgvm_scan_totals *t = tgvm_scan_report_totals(rep);
	struct cli_table *tab = cli_table_new(4, hdr);
	char scope[64];

	if (!tab)
		return TGVM_EXIT_FAILURE;
	if (per_program)
		for (size_t i = 0; i < tgvm_scan_report_n_programs(rep); i++) {
			const struct tgvm_scan_program *p = tgvm_scan_report_program(rep, i);

			add_row(tab, p->path, p->psabi, &p->required, &p->guarded);
		}
	snprintf(scope, sizeof(scope), "all (%llu ELF files)", (unsigned long long)t->elf_files);
	add_row(tab, scope, t->psabi, &t->required, &t->guarded);
	cli_table_print(tab, stdout);
	cli_table_free(tab);
	printf("\n%llu files: %llu ELF x86-64 (%llu programs), %llu not ELF, %llu other machines, "
	       "%llu errors; %.1f MB of code, %llu instructions in %.2f s\n",
	       (unsigned long long)t->files, (unsigned long long)t->elf_files,
	       (unsigned long long)t->programs, (unsigned long long)t->non_elf,
	       (unsigned long long)t->non_x86_64, (unsigned long long)t->errors,
	       (double)t->code_bytes / 1e6, (unsigned long long)t->insns,
	       (double)t->elapsed_ns / 1e9);
	if (t->duplicate_inputs)
		printf("%llu PATH argument%s named a file or tree already named; read once\n",
		       (unsigned long long)t->duplicate_inputs,
		       t->duplicate_inputs == 1 ? "" : "s");
	/* a library no program can load changes what the program needs */
	for (size_t i = 0, shown = 0; i < tgvm_scan_report_n_programs(rep); i++) {
		const struct tgvm_scan_program *p = tgvm_scan_report_program(rep, i);

		for (size_t k = 0; k < p->n_missing && shown < 10; k++, shown++)
			printf("warning: %s needs '%s', which is not in the input: its code is not "
			       "in REQUIRED\n",
			       p->path, p->missing[k]);
	}
	if (t->hardlinks)
		printf("%llu of these names are hard links to a file analysed under another "
		       "name; its code is counted once\n",
		       (unsigned long long)t->hardlinks);
	if (t->segments) {
		size_t shown = 0;

		printf("%llu file%s read from %s program headers (PT_LOAD, PT_DYNAMIC), as the "
		       "loader reads them:\n",
		       (unsigned long long)t->segments, t->segments == 1 ? "" : "s",
		       t->segments == 1 ? "its" : "their");
		for (size_t i = 0; i < tgvm_scan_report_n_files(rep) && shown < 10; i++) {
			const struct tgvm_scan_file *f = tgvm_scan_report_file(rep, i);

			if (f->segments && ++shown)
				printf("  %s: %s\n", f->path, f->segments);
		}
		if (t->segments > shown)
			printf("  (%llu more; --json lists all)\n",
			       (unsigned long long)(t->segments - shown));
	}
	for (size_t i = 0; i < tgvm_scan_report_n_errors(rep) && i < 10; i++) {
		const char *p, *m;

		tgvm_scan_report_error(rep, i, &p, &m);
		/* most messages name their file first already */
		if (m[0] == '\'' && !strncmp(m + 1, p, strlen(p)) && m[strlen(p) + 1] == '\'')
			printf("error: %s\n", m);
		else
			printf("error: %s: %s\n", p, m);
	}
	if (tgvm_scan_report_n_errors(rep) > 10)
		printf("(%zu more errors; --json lists all)\n",
		       tgvm_scan_report_n_errors(rep) - 10);
	if (tgvm_scan_report_n_errors(rep))
		printf("warning: the report is incomplete: what the unread code needs may be "
		       "missing from REQUIRED\n");
	return TGVM_EXIT_OK;
}

/* The evidence's place: "in foo+0x10", "after foo+0x49 (outside any symbol)". */
static void print_place(const struct tgvm_scan_evidence *e)
{
	if (e->symbol)
		printf("in %s", e->symbol);
	else if (e->near)
		printf("at %s (outside any symbol)", e->near);
	else
		printf("(no symbol)");
}

static int explain(const struct tgvm_scan_report *rep, enum tgvm_feature f)
{
	const struct tgvm_scan_evidence *e;
	size_t n = tgvm_scan_report_evidence(rep, f, &e);
	const struct tgvm_scan_totals *t = tgvm_scan_report_totals(rep);

	/* the verdict agrees with the evidence listed under it */
	printf("%s: %s\n", tgvm_feature_name(f),
	       tgvm_featureset_has(&t->required, f)  ? "REQUIRED"
	       : tgvm_featureset_has(&t->guarded, f) ? "guarded only"
	       : n ? "not required: used only by code no program of the input reaches (library "
	             "functions nothing imports)"
	           : "not used");
	for (size_t i = 0; i < n; i++) {
		printf("  %-8s %s  0x%llx ", tgvm_scan_class_to_string(e[i].cls), e[i].file,
		       (unsigned long long)e[i].address);
		print_place(&e[i]);
		printf(":  %s\n", e[i].insn);
		if (e[i].guard)
			printf("           guard %s: %s\n", e[i].guard, e[i].detail);
		else
			printf("           reason: %s\n", e[i].detail);
	}
	return TGVM_EXIT_OK;
}

int cmd_scan(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'J'},
	    {"explain", required_argument, NULL, 'e'},
	    {"per-program", no_argument, NULL, 'p'},
	    {"jobs", required_argument, NULL, 'j'},
	    {"hwcaps", required_argument, NULL, 'H'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct tgvm_scan_options opts = {0};
	struct tgvm_scan_report *rep = NULL;
	struct tgvm_error err = {0};
	bool json = false, per_program = false;
	const char *explain_name = NULL;
	int c, feature = -1, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "j:h", longopts, NULL)) != -1) {
		int v;

		switch (c) {
		case 'J':
			json = true;
			break;
		case 'e':
			explain_name = optarg;
			break;
		case 'p':
			per_program = true;
			break;
		case 'j':
			if (tgvm_parse_int(optarg, 1, 256, &v) < 0)
				return cli_fail(TGVM_EXIT_USAGE, "scan",
				                "bad job count '%s' (1-256)", optarg);
			opts.jobs = (unsigned)v;
			break;
		case 'H':
			if (tgvm_parse_int(optarg, 0, 4, &v) < 0 || v == 1)
				return cli_fail(TGVM_EXIT_USAGE, "scan",
				                "bad hwcaps level '%s' (0, 2, 3 or 4)", optarg);
			opts.hwcaps_level = v;
			break;
		case 'h':
			printf("usage: tgvm scan PATH... [--json] [--explain FEATURE] "
			       "[--per-program] [-j N] [--hwcaps LEVEL]\n");
			return TGVM_EXIT_OK;
		default:
			return cli_usage("scan");
		}
	}
	if (optind >= argc)
		return cli_usage("scan");
	if (explain_name) {
		feature = tgvm_feature_from_name(explain_name);
		if (feature < 0) {
			const char *s = tgvm_feature_suggest(explain_name);

			return cli_fail(TGVM_EXIT_USAGE, "scan", "unknown feature '%s'%s%s%s",
			                explain_name, s ? "; did you mean '" : "", s ? s : "",
			                s ? "'?" : "");
		}
	}
	if (!json && cli_isatty(stderr)) {
		opts.progress = progress;
		opts.progress_ud = stderr;
	}
	if (tgvm_scan_run((const char *const *)argv + optind, (size_t)(argc - optind), &opts, &rep,
	                  &err) < 0)
		/* a path that names nothing usable (missing, a symlink loop, a
		 * kind of image tgvm cannot read) is bad input; failing to read
		 * one is a failure */
		return cli_fail(err.code == ELOOP ? TGVM_EXIT_USAGE : cli_exit_code(err.code),
		                "scan", "%s", err.msg[0] ? err.msg : "failed");
	if (json) {
		char *s = NULL;

		if (tgvm_scan_report_json(rep, &s, &err) < 0) {
			ret = cli_fail_err("scan", &err);
		} else {
			puts(s);
			free(s);
			ret = TGVM_EXIT_OK;
		}
	} else if (feature >= 0) {
		ret = explain(rep, feature);
	} else {
		ret = print_table(rep, per_program);
	}
	/* what was found is printed; a report with errors is not a full answer */
	if (ret == TGVM_EXIT_OK && tgvm_scan_report_n_errors(rep)) {
		if (json || feature >= 0)
			fprintf(stderr,
			        "tgvm scan: %zu file%s could not be read or analysed; the "
			        "report is incomplete\n",
			        tgvm_scan_report_n_errors(rep),
			        tgvm_scan_report_n_errors(rep) == 1 ? "" : "s");
		ret = TGVM_EXIT_FAILURE;
	}
	tgvm_scan_report_free(rep);
	return ret;
}
