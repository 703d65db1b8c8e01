// SPDX-License-Identifier: MIT
/* tgvm model: the minimal CPU model for what a VM's software needs. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tgvm/fleet.h"

enum out_format { OUT_TEXT, OUT_QEMU, OUT_LIBVIRT, OUT_JSON };

#define REPORTS_MAX 256

static void print_set_line(const char *label, const struct tgvm_featureset *s)
{
	char *names = tgvm_featureset_to_string(s, " ");

	printf("%-10s%s\n", label, names && *names ? names : "(none)");
	free(names);
}

/* A choice that failed: refused (1), bad input (2), or a model QEMU cannot present (3). */
static int model_fail(const struct tgvm_error *err)
{
	if (err->code == EPERM)
		return cli_refused("model", err);
	if (err->code == ENOTSUP || err->code == ENOENT)
		return cli_fail(TGVM_EXIT_FAILURE, "model", "%s", err->msg);
	return cli_fail_err("model", err);
}

static json_t *by_vendor_json(const struct tgvm_model_fit *fit)
{
	json_t *o = json_object();

	for (int v = 0; v < TGVM_VENDOR__MAX; v++)
		if (fit->by_vendor[v])
			json_object_set_new(o, tgvm_vendor_to_string(v),
			                    json_integer((json_int_t)fit->by_vendor[v]));
	return o;
}

static void print_fit(const struct tgvm_model_fit *fit, const struct tgvm_model_choice *c,
                      const char *path)
{
	printf("\nhosts:    %llu of %llu machines in '%s' can run it (%.0f%%)",
	       (unsigned long long)fit->machines, (unsigned long long)fit->total, path,
	       fit->total ? 100.0 * (double)fit->machines / (double)fit->total : 0.0);
	if (fit->by_vendor[c->vendor] != fit->machines) {
		/* placed per vendor: the other vendors' machines run their own model */
		const char *sep = ":";

		for (int v = 0; v < TGVM_VENDOR__MAX; v++) {
			if (!fit->by_vendor[v])
				continue;
			if (v == (int)c->vendor)
				printf("%s %llu %s with this model", sep,
				       (unsigned long long)fit->by_vendor[v],
				       tgvm_vendor_to_string(v));
			else
				printf("%s %llu %s with an %s model (--vendor %s)", sep,
				       (unsigned long long)fit->by_vendor[v],
				       tgvm_vendor_to_string(v), tgvm_vendor_to_string(v),
				       tgvm_vendor_to_string(v));
			sep = ",";
		}
	}
	printf("\n");
}

int cmd_model(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"need", required_argument, NULL, 'n'},
	    {"report", required_argument, NULL, 'r'},
	    {"vendor", required_argument, NULL, 'v'},
	    {"cross-vendor", no_argument, NULL, 'x'},
	    {"inventory", required_argument, NULL, 'i'},
	    {"format", required_argument, NULL, 'f'},
	    {"accel", required_argument, NULL, 'a'},
	    {"allow-incomplete", no_argument, NULL, 'I'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct tgvm_model_request req;
	struct tgvm_model_choice choice, lv;
	struct tgvm_modeldb *db = NULL;
	struct tgvm_inventory *inv = NULL;
	struct tgvm_model_fit fit = {0};
	struct tgvm_error err = {0};
	enum out_format fmt = OUT_TEXT;
	const char *inventory = NULL, *reports[REPORTS_MAX];
	int nreports = 0;
	bool have_input = false, allow_incomplete = false;
	int c, r, rc = TGVM_EXIT_FAILURE;

	memset(&req, 0, sizeof(req));
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:r:v:xi:f:a:Ijh", opts, NULL)) != -1) {
		switch (c) {
		case 'n': {
			struct tgvm_featureset s;

			if (tgvm_featureset_parse(optarg, &s, &err) < 0)
				return cli_fail(TGVM_EXIT_USAGE, "model", "%s", err.msg);
			tgvm_featureset_union(&req.need, &s);
			have_input = true;
			break;
		}
		case 'r':
			if (nreports == REPORTS_MAX)
				return cli_fail(TGVM_EXIT_USAGE, "model",
				                "at most %d --report files", REPORTS_MAX);
			reports[nreports++] = optarg;
			have_input = true;
			break;
		case 'I':
			allow_incomplete = true;
			break;
		case 'v': {
			int v = tgvm_vendor_from_string(optarg);

			if (v != TGVM_VENDOR_INTEL && v != TGVM_VENDOR_AMD)
				return cli_fail(TGVM_EXIT_USAGE, "model",
				                "unknown vendor '%s' (use intel or amd)", optarg);
			req.vendor = v;
			break;
		}
		case 'x':
			req.cross_vendor = true;
			break;
		case 'i':
			inventory = optarg;
			break;
		case 'f':
			if (!strcmp(optarg, "qemu"))
				fmt = OUT_QEMU;
			else if (!strcmp(optarg, "libvirt"))
				fmt = OUT_LIBVIRT;
			else if (!strcmp(optarg, "json"))
				fmt = OUT_JSON;
			else if (!strcmp(optarg, "text"))
				fmt = OUT_TEXT;
			else
				return cli_fail(TGVM_EXIT_USAGE, "model",
				                "unknown format '%s' (qemu, libvirt, json or text)",
				                optarg);
			break;
		case 'a': {
			int a = tgvm_model_accel_from_string(optarg);

			if (a < 0)
				return cli_fail(TGVM_EXIT_USAGE, "model",
				                "unknown accelerator '%s' (tcg, kvm or auto)",
				                optarg);
			req.accel = a;
			break;
		}
		case 'j':
			fmt = OUT_JSON;
			break;
		case 'h':
			return cmd_help(2, (char *[]){"help", "model", NULL});
		default:
			return cli_usage("model");
		}
	}
	if (optind < argc)
		return cli_fail(TGVM_EXIT_USAGE, "model", "unexpected argument '%s'", argv[optind]);
	if (!have_input)
		return cli_fail(
		    TGVM_EXIT_USAGE, "model",
		    "say what the VM needs: --need LIST or --report FILE (from tgvm scan "
		    "or tgvm probe)");
	for (int i = 0; i < nreports; i++) {
		struct tgvm_vm_needs n;
		char *unread = NULL;

		if (tgvm_needs_from_report(reports[i], allow_incomplete, &n, &unread, &err) < 0)
			return cli_fail(TGVM_EXIT_USAGE, "model", "%s", err.msg);
		if (unread) {
			fprintf(stderr,
			        "tgvm model: warning: '%s' is incomplete; a partial answer without "
			        "what these files need:\n%s",
			        reports[i], unread);
			free(unread);
		}
		tgvm_featureset_union(&req.need, &n.required);
		tgvm_featureset_union(&req.uses, &n.guarded);
		if (n.vendor != TGVM_VENDOR_UNKNOWN && req.vendor == TGVM_VENDOR_UNKNOWN)
			req.vendor = n.vendor;
	}
	/* Guarded uses that are also required are simply required. */
	tgvm_featureset_minus(&req.uses, &req.need);

	if (tgvm_modeldb_load_default(&db, &err) < 0) {
		rc = cli_fail_err("model", &err);
		goto out;
	}
	if (inventory && tgvm_inventory_load(inventory, db, &inv, &err) < 0) {
		rc = cli_fail(TGVM_EXIT_USAGE, "model", "%s", err.msg);
		goto out;
	}
	r = inv ? tgvm_model_choose_fleet(db, &req, inv, &choice, &fit, &err)
	        : tgvm_model_choose(db, &req, &choice, &err);
	if (r < 0) {
		rc = model_fail(&err);
		goto out;
	}
	/* libvirt names the same CPU by an unversioned model */
	req.libvirt_names = true;
	req.vendor = choice.vendor;
	req.hosts_known = choice.hosts_known;
	req.hosts_common = choice.hosts_common;
	req.accel = choice.accel;
	if (tgvm_model_choose(db, &req, &lv, &err) < 0) {
		rc = model_fail(&err);
		goto out;
	}

	char *qemu = tgvm_model_qemu_string(&choice), *xml = tgvm_model_libvirt_xml(&lv);
	json_t *acc = json_array();

	if (inv)
		for (size_t i = 0; i < inv->n; i++)
			if (tgvm_model_fit_host(&fit, &choice, &inv->hosts[i]))
				json_array_append_new(acc, json_string(inv->hosts[i].name));
	switch (fmt) {
	case OUT_QEMU:
		printf("%s\n", qemu ? qemu : "");
		break;
	case OUT_LIBVIRT:
		fputs(xml ? xml : "", stdout);
		break;
	case OUT_JSON: {
		json_t *j = tgvm_model_choice_to_json(&choice);
		char *s;

		json_object_set_new(j, "libvirt_xml", json_string(xml ? xml : ""));
		json_object_set_new(j, "libvirt_base", json_string(lv.base));
		if (inv) {
			json_object_set_new(j, "inventory", json_string(inv->path));
			json_object_set_new(j, "hosts_accepting", json_incref(acc));
			json_object_set_new(j, "machines_accepting",
			                    json_integer((json_int_t)fit.machines));
			json_object_set_new(j, "machines_total",
			                    json_integer((json_int_t)fit.total));
			json_object_set_new(j, "machines_by_vendor", by_vendor_json(&fit));
		}
		s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		puts(s ? s : "{}");
		free(s);
		json_decref(j);
		break;
	}
	case OUT_TEXT: {
		struct tgvm_featureset beyond = choice.presented, bl;

		tgvm_linux_baseline(&bl);
		tgvm_featureset_minus(&beyond, &bl);
		printf("minimal CPU model (QEMU %s)\n\n", db->qemu_version);
		printf("%-10s%s%s\n", "vendor", tgvm_vendor_to_string(choice.vendor),
		       req.cross_vendor
		           ? " (cross-vendor moves allowed)"
		           : " (moves only between hosts of this vendor; --cross-vendor "
		             "allows both)");
		printf("%-10s%s, %d features: the Linux boot baseline plus\n", "presents",
		       tgvm_psabi_to_string(tgvm_psabi_supported(&choice.presented)),
		       tgvm_featureset_count(&choice.presented));
		print_set_line("", &beyond);
		printf("%-10s%s: %s\n", "accel", tgvm_model_accel_to_string(choice.accel),
		       choice.accel == TGVM_MODEL_ACCEL_TCG
		           ? "the -cpu string starts under TCG and KVM"
		           : "the -cpu string is for KVM (TCG cannot give all of it)");
		printf("%-10s%s with %d flags: %s\n", "base", choice.base,
		       tgvm_featureset_count(&choice.plus) + tgvm_featureset_count(&choice.minus),
		       choice.base_why);
		if (!tgvm_featureset_empty(&choice.lost))
			print_set_line("not given", &choice.lost);
		if (!tgvm_featureset_empty(&choice.tcg_missing))
			print_set_line("no TCG", &choice.tcg_missing);
		printf("\nQEMU:     -cpu %s\n\nlibvirt:\n%s", qemu ? qemu : "", xml ? xml : "");
		if (inv)
			print_fit(&fit, &choice, inv->path);
		break;
	}
	}
	json_decref(acc);
	free(qemu);
	free(xml);
	rc = TGVM_EXIT_OK;
out:
	tgvm_inventory_free(inv);
	tgvm_modeldb_free(db);
	return rc;
}
