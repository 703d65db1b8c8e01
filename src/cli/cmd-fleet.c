// SPDX-License-Identifier: MIT
/* tgvm fleet: where each VM may run and move under each policy, and a heat map. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tgvm/fleet.h"
#include "tgvm/memdev.h"
#include "util/proc.h"
#include "util/util.h"

#define VMS_MAX     1000000
#define REPORTS_MAX 256

struct vm_list {
	struct tgvm_vm_needs *v;
	size_t n, cap;
};

static struct tgvm_vm_needs *vm_list_push(struct vm_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct tgvm_vm_needs *p = realloc(l->v, cap * sizeof(*p));

		if (!p)
			return NULL;
		l->v = p;
		l->cap = cap;
	}
	memset(&l->v[l->n], 0, sizeof(l->v[0]));
	return &l->v[l->n++];
}

/* A VM's name: 1 to TGVM_VM_NAME_LEN characters. */
static int check_vm_name(const char *name, size_t len, struct tgvm_error *err)
{
	if (len == 0)
		return tgvm_error_set(err, EINVAL, "a VM needs a name");
	if (len > TGVM_VM_NAME_LEN)
		return tgvm_error_set(err, ENAMETOOLONG,
		                      "VM name '%.*s...' is longer than %d characters, the limit "
		                      "for VM names",
		                      20, name, TGVM_VM_NAME_LEN);
	return 0;
}

/* --vm NAME=LIST[:GUARDED] */
static int parse_vm_arg(const char *arg, struct vm_list *l, struct tgvm_error *err)
{
	const char *eq = strchr(arg, '=');
	struct tgvm_vm_needs *n;
	char *req = NULL, *colon;
	int r;

	if (!eq)
		return tgvm_error_set(err, EINVAL, "--vm wants NAME=FEATURES[:GUARDED], not '%s'",
		                      arg);
	if ((r = check_vm_name(arg, (size_t)(eq - arg), err)) < 0)
		return r;
	n = vm_list_push(l);
	if (!n)
		return tgvm_error_set(err, ENOMEM, "out of memory");
	snprintf(n->name, sizeof(n->name), "%.*s", (int)(eq - arg), arg);
	req = strdup(eq + 1);
	if (!req)
		return tgvm_error_set(err, ENOMEM, "out of memory");
	colon = strchr(req, ':');
	if (colon)
		*colon++ = '\0';
	r = tgvm_featureset_parse(req, &n->required, err);
	if (r >= 0 && colon)
		r = tgvm_featureset_parse(colon, &n->guarded, err);
	free(req);
	if (r < 0)
		tgvm_error_prefix(err, "--vm '%s'", n->name);
	return r;
}

/* A feature list of the VMs file into @ret. */
static int vms_features(json_t *a, const char *what, struct tgvm_featureset *ret,
                        struct tgvm_error *err)
{
	struct tgvm_buf b;
	size_t k;
	json_t *x;
	int r;

	tgvm_featureset_clear(ret);
	if (!a)
		return 0;
	if (!json_is_array(a))
		return tgvm_error_set(err, EINVAL, "\"%s\" must be an array of feature names",
		                      what);
	if (json_array_size(a) > TGVM_FEATURE_LIST_MAX)
		return tgvm_error_set(err, E2BIG,
		                      "\"%s\" has %zu entries, more than %d, the limit "
		                      "for a feature list",
		                      what, json_array_size(a), TGVM_FEATURE_LIST_MAX);
	tgvm_buf_init(&b);
	tgvm_buf_append(&b, "", 0);
	json_array_foreach(a, k, x)
	{
		if (!json_is_string(x) || strpbrk(json_string_value(x), ", \t\n")) {
			tgvm_buf_release(&b);
			return tgvm_error_set(err, EINVAL, "\"%s\"[%zu] is not a feature name",
			                      what, k);
		}
		tgvm_buf_printf(&b, "%s,", json_string_value(x));
	}
	r = tgvm_featureset_parse(b.data ? b.data : "", ret, err);
	tgvm_buf_release(&b);
	return r;
}

/* A VM list file: {"vms": [{"name", "required", "guarded", "vendor"}]} */
static int load_vms(const char *path, struct vm_list *l, struct tgvm_error *err)
{
	static const char *const top_keys[] = {"vms", NULL};
	static const char *const vm_keys[] = {"name", "required", "guarded", "vendor", NULL};
	json_error_t jerr;
	json_t *j, *a, *v;
	char *text = NULL;
	size_t i;
	int r;

	r = tgvm_file_read(path, 256u << 20, &text, NULL, err);
	if (r < 0)
		return r;
	j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		r = tgvm_error_set(err, EINVAL, "'%s', line %d, column %d: %s", path, jerr.line,
		                   jerr.column, jerr.text);
		goto out;
	}
	a = json_object_get(j, "vms");
	if (!json_is_array(a)) {
		r = tgvm_error_set(err, EINVAL, "'%s': expected {\"vms\": [...]}", path);
		goto out;
	}
	if (json_array_size(a) > VMS_MAX) {
		r = tgvm_error_set(err, E2BIG, "'%s': more than %d VMs, the limit of a VMs file",
		                   path, VMS_MAX);
		goto out;
	}
	if ((r = tgvm_json_check_keys(j, top_keys, text, path, "the VMs file", err)) < 0)
		goto out;
	json_array_foreach(a, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *vd = json_string_value(json_object_get(v, "vendor"));
		struct tgvm_vm_needs *n;
		char where[TGVM_VM_NAME_LEN + 16];

		if (!json_is_object(v) || !name) {
			r = tgvm_error_set(err, EINVAL, "'%s': vm %zu has no \"name\"", path, i);
			goto out;
		}
		if ((r = check_vm_name(name, strlen(name), err)) < 0) {
			tgvm_error_prefix(err, "'%s'", path);
			goto out;
		}
		snprintf(where, sizeof(where), "vm '%s'", name);
		if ((r = tgvm_json_check_keys(v, vm_keys, text, path, where, err)) < 0)
			goto out;
		n = vm_list_push(l);
		if (!n) {
			r = tgvm_error_set(err, ENOMEM, "out of memory");
			goto out;
		}
		snprintf(n->name, sizeof(n->name), "%s", name);
		r = vms_features(json_object_get(v, "required"), "required", &n->required, err);
		if (r >= 0)
			r = vms_features(json_object_get(v, "guarded"), "guarded", &n->guarded,
			                 err);
		if (r >= 0 && json_object_get(v, "vendor")) {
			int vv = vd ? tgvm_vendor_from_string(vd) : -EINVAL;

			if (vv < 0)
				r = tgvm_error_set(err, EINVAL,
				                   "unknown vendor '%s' (intel, amd or other)",
				                   vd ? vd : "?");
			else
				n->vendor = vv;
		}
		if (r < 0) {
			tgvm_error_prefix(err, "'%s': vm '%s'", path, n->name);
			goto out;
		}
	}
	r = 0;
out:
	free(text);
	json_decref(j);
	return r;
}

static const char *pct(char *buf, size_t size, const struct tgvm_placement *p, uint64_t total)
{
	if (!p->runs)
		snprintf(buf, size, "cannot run");
	else
		snprintf(buf, size, "%5.1f%% (%llu)",
		         total ? 100.0 * (double)p->hosts / (double)total : 0,
		         (unsigned long long)p->hosts);
	return buf;
}

static json_t *set_json(const struct tgvm_featureset *s)
{
	json_t *a = json_array();

	TGVM_FEATURESET_FOREACH(f, s)
	json_array_append_new(a, json_string(tgvm_feature_name(f)));
	return a;
}

/* @text indented by @indent spaces after each newline, to stdout. */
static int put_indented(const char *text, int indent)
{
	for (const char *p = text; *p; p++) {
		if (putchar(*p) == EOF)
			return -EIO;
		if (*p == '\n' && printf("%*s", indent, "") < 0)
			return -EIO;
	}
	return 0;
}

/* "key": VALUE at two spaces, @last without a comma; steals @v. */
static int put_member(const char *key, json_t *v, bool last)
{
	char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
	json_t *k = json_string(key);
	char *ks = k ? json_dumps(k, JSON_ENCODE_ANY) : NULL;
	int r = -ENOMEM;

	if (s && ks && printf("  %s: ", ks) >= 0 && put_indented(s, 2) == 0)
		r = printf("%s\n", last ? "" : ",") < 0 ? -EIO : 0;
	free(s);
	free(ks);
	json_decref(k);
	json_decref(v);
	return r;
}

static json_t *vm_json(const struct tgvm_vm_needs *vm, const struct tgvm_placement *pl,
                       uint64_t total, bool cross_vendor)
{
	json_t *v = json_object(), *pol = json_object();

	json_object_set_new(v, "name", json_string(vm->name));
	json_object_set_new(v, "required", set_json(&vm->required));
	json_object_set_new(v, "guarded", set_json(&vm->guarded));
	for (int p = 0; p < TGVM_POLICY__MAX; p++) {
		const struct tgvm_placement *x = &pl[p];
		json_t *o = json_object();

		json_object_set_new(o, "runs", json_boolean(x->runs));
		json_object_set_new(o, "machines", json_integer((json_int_t)x->hosts));
		json_object_set_new(o, "share",
		                    json_real(total ? (double)x->hosts / (double)total : 0));
		json_object_set_new(o, "entries", json_integer((json_int_t)x->entries));
		json_object_set_new(o, "vendor", json_string(tgvm_vendor_to_string(x->vendor)));
		if (!cross_vendor) {
			json_t *bv = json_object();

			for (int vd = 0; vd < TGVM_VENDOR__MAX; vd++)
				if (x->hosts_by_vendor[vd])
					json_object_set_new(
					    bv, tgvm_vendor_to_string(vd),
					    json_integer((json_int_t)x->hosts_by_vendor[vd]));
			json_object_set_new(o, "machines_by_vendor", bv);
		}
		json_object_set_new(o, "first_host", json_string(x->first_host));
		json_object_set_new(o, "presented_count",
		                    json_integer(tgvm_featureset_count(&x->presented)));
		json_object_set_new(o, "lost", set_json(&x->lost));
		json_object_set_new(o, "blocking", set_json(&x->blocking));
		json_object_set_new(pol, tgvm_policy_to_string(p), o);
	}
	json_object_set_new(v, "policies", pol);
	return v;
}

/*
 * The JSON answer, streamed: the header, one VM object at a time (memory for
 * one VM's tree, not the whole document), then the memory devices.
 */
static int print_json(const struct tgvm_inventory *inv, const struct tgvm_vm_needs *vms, size_t n,
                      const struct tgvm_placement *pl, bool cross_vendor, const char *inventory)
{
	uint64_t total = tgvm_inventory_total(inv);
	json_t *tail = json_object();
	const char *key;
	json_t *val;
	size_t left;

	if (!tail || printf("{\n") < 0 || put_member("tool", json_string("tgvm-fleet"), false) ||
	    put_member("version", json_integer(1), false) ||
	    put_member("inventory", json_string(inv->path), false) ||
	    put_member("machines", json_integer((json_int_t)total), false) ||
	    put_member("entries", json_integer((json_int_t)inv->n), false) ||
	    put_member("cross_vendor", json_boolean(cross_vendor), false) ||
	    printf("  \"vms\": [") < 0) {
		json_decref(tail);
		return -EIO;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *v = vm_json(&vms[i], &pl[i * TGVM_POLICY__MAX], total, cross_vendor);
		char *s = v ? json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
		int r = s && printf("%s\n    ", i ? "," : "") >= 0 ? put_indented(s, 4) : -ENOMEM;

		free(s);
		json_decref(v);
		if (r < 0) {
			json_decref(tail);
			return r;
		}
	}
	cli_fleet_memdevs(inventory, tail); /* nil-migration: devices and domains */
	left = json_object_size(tail);
	if (printf("%s]%s\n", n ? "\n  " : "", left ? "," : "") < 0) {
		json_decref(tail);
		return -EIO;
	}
	json_object_foreach(tail, key, val)
	{
		if (put_member(key, json_incref(val), --left == 0) < 0) {
			json_decref(tail);
			return -EIO;
		}
	}
	json_decref(tail);
	return printf("}\n") < 0 || fflush(stdout) ? -EIO : 0;
}

static int write_heatmap(const char *path, const char *svg, struct tgvm_error *err)
{
	size_t n = strlen(path);
	char tmp[PATH_MAX];
	int r, status;

	if (n > 4 && !strcmp(path + n - 4, ".svg"))
		return tgvm_file_write(path, svg, strlen(svg), err);
	if (!(n > 4 && !strcmp(path + n - 4, ".png")))
		return tgvm_error_set(err, EINVAL, "heat map '%s': name it .svg or .png", path);
	snprintf(tmp, sizeof(tmp), "%s.svg", path);
	r = tgvm_file_write(tmp, svg, strlen(svg), err);
	if (r < 0)
		return r;
	char *argv[] = {"rsvg-convert", "-f", "png", "-o", (char *)path, tmp, NULL};
	r = tgvm_run_capture(argv, 0, 60000, NULL, &status, err);
	unlink(tmp);
	if (r == -ENOENT)
		return tgvm_error_set(err, ENOENT,
		                      "cannot write PNG: rsvg-convert is missing (package "
		                      "librsvg2-bin); write an .svg instead");
	if (r < 0)
		return r;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return tgvm_error_set(err, EIO, "rsvg-convert failed to write '%s'", path);
	return 0;
}

int cmd_fleet(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"inventory", required_argument, NULL, 'i'},
	    {"vm", required_argument, NULL, 'v'},
	    {"vms", required_argument, NULL, 'V'},
	    {"report", required_argument, NULL, 'r'},
	    {"cross-vendor", no_argument, NULL, 'x'},
	    {"json", no_argument, NULL, 'j'},
	    {"heatmap", required_argument, NULL, 'm'},
	    {"first-host", required_argument, NULL, 'F'},
	    {"allow-incomplete", no_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vm_list vms = {0};
	struct tgvm_modeldb *db = NULL;
	struct tgvm_inventory *inv = NULL;
	struct tgvm_placement *pl = NULL;
	struct tgvm_fleet_opts fo = {0};
	struct tgvm_error err = {0};
	const char *inventory = NULL, *heatmap = NULL, *reports[REPORTS_MAX];
	int nreports = 0;
	bool allow_incomplete = false;
	char defpath[PATH_MAX];
	bool json = false;
	int c, rc = TGVM_EXIT_FAILURE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "i:v:V:r:xjm:F:Ih", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			inventory = optarg;
			break;
		case 'v':
			if (parse_vm_arg(optarg, &vms, &err) < 0) {
				rc = cli_fail(TGVM_EXIT_USAGE, "fleet", "%s", err.msg);
				goto out;
			}
			break;
		case 'V':
			if (load_vms(optarg, &vms, &err) < 0) {
				rc = cli_fail(TGVM_EXIT_USAGE, "fleet", "%s", err.msg);
				goto out;
			}
			break;
		case 'r':
			if (nreports == REPORTS_MAX) {
				rc = cli_fail(TGVM_EXIT_USAGE, "fleet", "at most %d --report files",
				              REPORTS_MAX);
				goto out;
			}
			reports[nreports++] = optarg;
			break;
		case 'I':
			allow_incomplete = true;
			break;
		case 'x':
			fo.cross_vendor = true;
			break;
		case 'j':
			json = true;
			break;
		case 'm':
			heatmap = optarg;
			break;
		case 'F':
			fo.first_host = optarg;
			break;
		case 'h':
			rc = cmd_help(2, (char *[]){"help", "fleet", NULL});
			goto out;
		default:
			rc = cli_usage("fleet");
			goto out;
		}
	}
	if (optind < argc) {
		rc = cli_fail(TGVM_EXIT_USAGE, "fleet", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (heatmap) {
		size_t hl = strlen(heatmap);

		if (hl <= 4 ||
		    (strcmp(heatmap + hl - 4, ".svg") && strcmp(heatmap + hl - 4, ".png"))) {
			rc = cli_fail(TGVM_EXIT_USAGE, "fleet",
			              "heat map '%s': name it .svg or .png", heatmap);
			goto out;
		}
	}
	for (int i = 0; i < nreports; i++) {
		struct tgvm_vm_needs *n = vm_list_push(&vms);
		char *unread = NULL;

		if (!n) {
			rc = cli_fail(TGVM_EXIT_FAILURE, "fleet", "out of memory");
			goto out;
		}
		if (tgvm_needs_from_report(reports[i], allow_incomplete, n, &unread, &err) < 0) {
			rc = cli_fail(TGVM_EXIT_USAGE, "fleet", "%s", err.msg);
			goto out;
		}
		if (unread) {
			fprintf(
			    stderr,
			    "tgvm fleet: warning: '%s' is incomplete; VM '%s' is placed without "
			    "what these files need:\n%s",
			    reports[i], n->name, unread);
			free(unread);
		}
	}
	if (!inventory) {
		if (tgvm_data_dir(defpath, sizeof(defpath)) < 0 ||
		    strlen(defpath) + 20 >= sizeof(defpath)) {
			rc = cli_fail(TGVM_EXIT_USAGE, "fleet", "give --inventory FILE");
			goto out;
		}
		strncat(defpath, "/examples/fleet.json", sizeof(defpath) - strlen(defpath) - 1);
#ifdef TGVM_INSTALL_DATA_DIR
		if (access(defpath, R_OK) < 0) /* an installed tgvm: its own copy */
			snprintf(defpath, sizeof(defpath), "%s/examples/fleet.json",
			         TGVM_INSTALL_DATA_DIR);
#endif
		inventory = defpath;
	}
	{
		/* A bad memory device makes the whole inventory bad input: nothing else printed. */
		struct tgvm_memdevs md = {0};

		if (tgvm_memdevs_load(inventory, &md, &err) < 0) {
			rc = cli_fail(TGVM_EXIT_USAGE, "fleet", "%s", err.msg);
			goto out;
		}
		tgvm_memdevs_release(&md);
	}
	if (vms.n == 0 && cli_fleet_has_memdevs(inventory)) {
		/* No VMs, but memory devices: show the migration domains alone. */
		json_t *j = json ? json_object() : NULL;

		rc = cli_fleet_memdevs(inventory, j);
		if (j) {
			char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

			puts(s ? s : "{}");
			free(s);
			json_decref(j);
		}
		goto out;
	}
	if (vms.n == 0) {
		rc = cli_fail(TGVM_EXIT_USAGE, "fleet",
		              "no VMs: give --vm NAME=FEATURES, --vms FILE or --report FILE");
		goto out;
	}
	if (tgvm_modeldb_load_default(&db, &err) < 0) {
		rc = cli_fail_err("fleet", &err);
		goto out;
	}
	if (tgvm_inventory_load(inventory, db, &inv, &err) < 0) {
		rc = cli_fail(TGVM_EXIT_USAGE, "fleet", "%s", err.msg);
		goto out;
	}
	if (fo.first_host) {
		const struct tgvm_host *fh;

		if (tgvm_inventory_find(inv, fo.first_host, &fh, &err) < 0) {
			rc = cli_fail(TGVM_EXIT_USAGE, "fleet", "%s", err.msg);
			goto out;
		}
	}
	pl = calloc(vms.n * TGVM_POLICY__MAX, sizeof(*pl));
	if (!pl) {
		rc = cli_fail(TGVM_EXIT_FAILURE, "fleet", "out of memory");
		goto out;
	}
	if (tgvm_fleet_evaluate(inv, vms.v, vms.n, &fo, pl, &err) < 0) {
		rc = cli_fail_err("fleet", &err);
		goto out;
	}
	uint64_t total = tgvm_inventory_total(inv);
	if (json) {
		if (print_json(inv, vms.v, vms.n, pl, fo.cross_vendor, inventory) < 0) {
			rc = cli_fail(TGVM_EXIT_FAILURE, "fleet", "cannot write the JSON output");
			goto out;
		}
	} else {
		static const char *const hdr[] = {"VM",
		                                  "REQUIRES",
		                                  "PASSTHROUGH",
		                                  "BASELINE",
		                                  "MINIMAL (tgvm)",
		                                  "BASELINE TAKES AWAY",
		                                  "MINIMAL TAKES AWAY"};
		struct cli_table *t = cli_table_new(7, hdr);

		for (size_t i = 0; i < vms.n; i++) {
			const struct tgvm_placement *p = &pl[i * TGVM_POLICY__MAX];
			char a[48], b[48], m[48], need[48];
			char *lb = tgvm_featureset_to_string(&p[TGVM_POLICY_BASELINE].lost, " ");
			char *lm = tgvm_featureset_to_string(&p[TGVM_POLICY_MINIMAL].lost, " ");
			enum tgvm_psabi_level lvl = tgvm_psabi_required(&vms.v[i].required);
			int nreq = tgvm_featureset_count(&vms.v[i].required);

			if (nreq)
				snprintf(need, sizeof(need), "%s, %d feature%s",
				         tgvm_psabi_to_string(lvl), nreq, nreq == 1 ? "" : "s");
			else
				snprintf(need, sizeof(need), "x86-64 baseline");
			const char *row[] = {vms.v[i].name,
			                     need,
			                     pct(a, sizeof(a), &p[TGVM_POLICY_PASSTHROUGH], total),
			                     pct(b, sizeof(b), &p[TGVM_POLICY_BASELINE], total),
			                     pct(m, sizeof(m), &p[TGVM_POLICY_MINIMAL], total),
			                     lb && *lb ? lb : "-",
			                     lm && *lm ? lm : "-"};
			cli_table_add(t, row);
			free(lb);
			free(lm);
		}
		printf("%llu machines in %zu entries of '%s'%s\n\n", (unsigned long long)total,
		       inv->n, inv->path, fo.cross_vendor ? "; cross-vendor moves allowed" : "");
		cli_table_print(t, stdout);
		cli_table_free(t);
		printf(
		    "\nShare of the machines each VM may run on and move among. passthrough: the "
		    "VM sees the whole CPU\nof %s; baseline: the fleet's common "
		    "CPU%s, as FlexMigration/EVC mask it;\nminimal: what the software "
		    "requires plus the guarded features every such host has.%s\n",
		    fo.first_host ? fo.first_host : "the newest host that can run it",
		    fo.cross_vendor ? "" : " per vendor",
		    fo.cross_vendor || fo.first_host
		        ? ""
		        : "\nA VM of no particular vendor is placed per vendor (that vendor's "
		          "model on its hosts; it\nmoves only among them); its share counts "
		          "every vendor's.");
		cli_fleet_memdevs(inventory, NULL); /* nil-migration: devices and domains */
	}
	if (heatmap) {
		struct tgvm_heatmap *hm = NULL;
		char *svg = NULL;

		if (tgvm_heatmap_build(inv, vms.v, vms.n, &fo, &hm, &err) < 0) {
			rc = cli_fail_err("fleet", &err);
			goto out;
		}
		svg = tgvm_heatmap_svg(hm);
		if (!svg)
			tgvm_error_set(&err, ENOMEM, "out of memory drawing the heat map");
		if (!svg || write_heatmap(heatmap, svg, &err) < 0) {
			free(svg);
			tgvm_heatmap_free(hm);
			rc = cli_fail_err("fleet", &err);
			goto out;
		}
		if (!json && (hm->nrows < hm->row_groups || hm->ncols < hm->col_groups))
			printf("heat map written to %s (the %zu largest of %zu VM groups, %zu "
			       "largest of %zu CPU profiles)\n",
			       heatmap, hm->nrows, hm->row_groups, hm->ncols, hm->col_groups);
		else if (!json)
			printf("heat map written to %s\n", heatmap);
		free(svg);
		tgvm_heatmap_free(hm);
	}
	rc = TGVM_EXIT_OK;
out:
	free(vms.v);
	free(pl);
	tgvm_inventory_free(inv);
	tgvm_modeldb_free(db);
	return rc;
}
