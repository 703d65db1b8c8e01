// SPDX-License-Identifier: MIT
/*
 * The inventory: hosts, their CPU profiles (a QEMU model, a model with
 * features added or removed, or a detected profile) and how many of each;
 * and the VM needs read from reports of scan, probe and model.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fleet/fleet-int.h"
#include "tgvm/fleet.h"
#include "tgvm/vm.h"
#include "util/util.h"

void tgvm_inventory_free(struct tgvm_inventory *inv)
{
	if (!inv)
		return;
	free(inv->hosts);
	free(inv);
}

uint64_t tgvm_inventory_total(const struct tgvm_inventory *inv)
{
	uint64_t n = 0;

	for (size_t i = 0; i < inv->n; i++)
		n += inv->hosts[i].count;
	return n;
}

int tgvm_inventory_find(const struct tgvm_inventory *inv, const char *name,
                        const struct tgvm_host **ret, struct tgvm_error *reterr)
{
	const char *best = NULL;
	int best_d = 1000;

	for (size_t i = 0; i < inv->n; i++) {
		int d;

		if (!strcmp(inv->hosts[i].name, name)) {
			*ret = &inv->hosts[i];
			return 0;
		}
		d = tgvm_edit_distance(name, inv->hosts[i].name);
		if (d < best_d) {
			best_d = d;
			best = inv->hosts[i].name;
		}
	}
	if (best && best_d <= TGVM_MAX(2, (int)strlen(name) / 3))
		return tgvm_error_set(reterr, ENOENT,
		                      "unknown host '%s' in '%s' (did you mean '%s'?)", name,
		                      inv->path, best);
	return tgvm_error_set(reterr, ENOENT, "unknown host '%s': '%s' has no such host", name,
	                      inv->path);
}

/* Line of the first `"key"` followed by a colon in @text, or 0. */
static int key_line(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = text ? strchr(text, '"') : NULL; p; p = strchr(p + 1, '"')) {
		const char *q = p + 1 + klen;
		int line = 1;

		if (strncmp(p + 1, key, klen) || *q != '"')
			continue;
		for (q++; *q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'; q++)
			;
		if (*q != ':')
			continue;
		for (const char *c = text; c < p; c++)
			line += *c == '\n';
		return line;
	}
	return 0;
}

int tgvm_json_check_keys(json_t *obj, const char *const *known, const char *text,
                         const char *origin, const char *where, struct tgvm_error *reterr)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return 0;
	json_object_foreach(obj, key, v)
	{
		const char *best = NULL;
		int best_d = 1000, line;
		char at[32] = "";

		(void)v;
		if (!strcmp(key, "comment") || !strncmp(key, "x-", 2))
			continue;
		for (size_t i = 0; known[i]; i++) {
			int d;

			if (!strcmp(key, known[i]))
				break;
			d = tgvm_edit_distance(key, known[i]);
			if (d < best_d) {
				best_d = d;
				best = known[i];
			}
			if (!known[i + 1])
				goto unknown;
		}
		continue;
	unknown:
		line = key_line(text, key);
		if (line)
			snprintf(at, sizeof(at), ", line %d", line);
		if (best && best_d <= TGVM_MAX(2, (int)strlen(key) / 3))
			return tgvm_error_set(reterr, EINVAL,
			                      "'%s'%s: unknown key \"%s\" in %s (did you mean "
			                      "\"%s\"?)",
			                      origin, at, key, where, best);
		return tgvm_error_set(reterr, EINVAL,
		                      "'%s'%s: unknown key \"%s\" in %s (an \"x-\" prefix marks "
		                      "a key of your own)",
		                      origin, at, key, where);
	}
	return 0;
}

static int names_to_set(json_t *a, const char *what, struct tgvm_featureset *ret,
                        struct tgvm_error *reterr)
{
	struct tgvm_featureset s = {{0}};
	size_t i;
	json_t *v;

	if (!a) {
		tgvm_featureset_clear(ret);
		return 0;
	}
	if (!json_is_array(a))
		return tgvm_error_set(reterr, EINVAL, "\"%s\" must be an array of feature names",
		                      what);
	if (json_array_size(a) > TGVM_FEATURE_LIST_MAX)
		return tgvm_error_set(reterr, E2BIG,
		                      "\"%s\" has %zu entries, more than %d, the limit for a "
		                      "feature list",
		                      what, json_array_size(a), TGVM_FEATURE_LIST_MAX);
	json_array_foreach(a, i, v)
	{
		const char *n = json_string_value(v);
		int f = n ? tgvm_feature_from_name(n) : -EINVAL;

		if (f < 0) {
			const char *sugg = n ? tgvm_feature_suggest(n) : NULL;

			if (!n)
				return tgvm_error_set(reterr, EINVAL, "\"%s\"[%zu] is not a string",
				                      what, i);
			if (sugg)
				return tgvm_error_set(
				    reterr, ENOENT,
				    "unknown CPU feature '%s' in \"%s\" (did you mean '%s'?)", n,
				    what, sugg);
			return tgvm_error_set(reterr, ENOENT, "unknown CPU feature '%s' in \"%s\"",
			                      n, what);
		}
		tgvm_featureset_add(&s, f);
	}
	*ret = s;
	return 0;
}

/* One host's "profile": a model name, {"base", "add", "remove"}, or a full profile. */
static int parse_profile(json_t *p, const struct tgvm_modeldb *db, struct tgvm_host *h,
                         const char *text, const char *origin, struct tgvm_error *reterr)
{
	static const char *const edit_keys[] = {"base", "add", "remove", "name", NULL};
	/* what tgvm host detect --json and tgvm host show --json print */
	static const char *const full_keys[] = {"name",        "alias_of",
	                                        "vendor",      "family",
	                                        "model",       "stepping",
	                                        "model_id",    "migration_safe",
	                                        "deprecated",  "psabi",
	                                        "features",    "tcg_unavailable",
	                                        "tcg_unnamed", "disabled_by_kernel",
	                                        "source",      NULL};
	const struct tgvm_cpu_model *m;
	char where[TGVM_HOST_NAME_MAX + 32];
	int r;

	snprintf(where, sizeof(where), "the profile of host '%s'", h->name);

	if (json_is_string(p)) {
		r = tgvm_modeldb_lookup(db, json_string_value(p), &m, reterr);
		if (r < 0)
			return r;
		h->profile = *m;
		snprintf(h->profile_name, sizeof(h->profile_name), "%s", m->name);
		return 0;
	}
	if (!json_is_object(p))
		return tgvm_error_set(reterr, EINVAL,
		                      "\"profile\" must be a QEMU model name or an object");
	if (json_object_get(p, "base")) {
		struct tgvm_featureset add, del;

		r = tgvm_json_check_keys(p, edit_keys, text, origin, where, reterr);
		if (r < 0)
			return r;
		const char *base = json_string_value(json_object_get(p, "base"));
		json_t *v;

		if (!base)
			return tgvm_error_set(reterr, EINVAL, "\"base\" must be a QEMU model name");
		r = tgvm_modeldb_lookup(db, base, &m, reterr);
		if (r < 0)
			return r;
		h->profile = *m;
		r = names_to_set(json_object_get(p, "add"), "add", &add, reterr);
		if (r < 0)
			return r;
		r = names_to_set(json_object_get(p, "remove"), "remove", &del, reterr);
		if (r < 0)
			return r;
		tgvm_featureset_union(&h->profile.features, &add);
		tgvm_featureset_close(&h->profile.features);
		tgvm_featureset_minus(&h->profile.features, &del);
		tgvm_featureset_close_down(&h->profile.features);
		v = json_object_get(p, "name");
		if (json_is_string(v))
			snprintf(h->profile_name, sizeof(h->profile_name), "%s",
			         json_string_value(v));
		else
			snprintf(h->profile_name, sizeof(h->profile_name), "%.40s+%d-%d", base,
			         tgvm_featureset_count(&add), tgvm_featureset_count(&del));
		snprintf(h->profile.name, sizeof(h->profile.name), "%s", h->profile_name);
		return 0;
	}
	r = tgvm_json_check_keys(p, full_keys, text, origin, where, reterr);
	if (r < 0)
		return r;
	r = tgvm_cpu_model_from_json(p, &h->profile, reterr);
	if (r < 0)
		return r;
	snprintf(h->profile_name, sizeof(h->profile_name), "%s", h->profile.name);
	return 0;
}

static int inventory_from_json(json_t *j, const char *text, const char *origin,
                               const struct tgvm_modeldb *db, struct tgvm_inventory **ret,
                               struct tgvm_error *reterr)
{
	static const char *const top_keys[] = {"hosts", "memdevs", NULL};
	static const char *const host_keys[] = {"name",    "profile", "count",
	                                        "address", "machine", NULL};
	struct tgvm_inventory *inv = NULL;
	json_t *hosts, *h;
	size_t i;
	int r = 0;

	hosts = json_is_object(j) ? json_object_get(j, "hosts") : NULL;
	if (!json_is_array(hosts))
		return tgvm_error_set(reterr, EINVAL,
		                      "'%s': expected an object with a \"hosts\" array", origin);
	if (json_array_size(hosts) == 0)
		return tgvm_error_set(reterr, EINVAL, "'%s': \"hosts\" is empty", origin);
	r = tgvm_json_check_keys(j, top_keys, text, origin, "the inventory", reterr);
	if (r < 0)
		return r;
	if (json_array_size(hosts) > TGVM_INVENTORY_HOSTS_MAX)
		return tgvm_error_set(reterr, E2BIG, "'%s': more than %d hosts", origin,
		                      TGVM_INVENTORY_HOSTS_MAX);
	inv = calloc(1, sizeof(*inv));
	if (inv)
		inv->hosts = calloc(json_array_size(hosts), sizeof(*inv->hosts));
	if (!inv || !inv->hosts) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory");
		goto out;
	}
	snprintf(inv->path, sizeof(inv->path), "%s", origin);
	json_array_foreach(hosts, i, h)
	{
		struct tgvm_host *host = &inv->hosts[inv->n];
		const char *name = json_string_value(json_object_get(h, "name"));
		json_t *count = json_object_get(h, "count"), *addr = json_object_get(h, "address");

		if (!json_is_object(h) || !name || !*name) {
			r = tgvm_error_set(reterr, EINVAL, "'%s': host %zu has no \"name\"", origin,
			                   i);
			goto out;
		}
		if (strlen(name) >= sizeof(host->name) ||
		    strspn(name, "abcdefghijklmnopqrstuvwxyz"
		                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != strlen(name)) {
			r = tgvm_error_set(reterr, EINVAL,
			                   "'%s': host name '%s' must be letters, digits, '-', '_' "
			                   "or '.', at most %zu characters",
			                   origin, name, sizeof(host->name) - 1);
			goto out;
		}
		for (size_t k = 0; k < inv->n; k++)
			if (!strcmp(inv->hosts[k].name, name)) {
				r = tgvm_error_set(reterr, EEXIST,
				                   "'%s': host '%s' is listed twice", origin, name);
				goto out;
			}
		snprintf(host->name, sizeof(host->name), "%s", name);
		{
			char where[TGVM_HOST_NAME_MAX + 16];

			snprintf(where, sizeof(where), "host '%s'", name);
			r = tgvm_json_check_keys(h, host_keys, text, origin, where, reterr);
			if (r < 0)
				goto out;
		}
		host->count = 1;
		if (count) {
			if (!json_is_integer(count) || json_integer_value(count) < 1 ||
			    json_integer_value(count) > 10000000) {
				r = tgvm_error_set(reterr, EINVAL,
				                   "'%s': host '%s': \"count\" must be an integer "
				                   "from 1 to 10000000",
				                   origin, name);
				goto out;
			}
			host->count = (uint64_t)json_integer_value(count);
		}
		if (addr) {
			const char *a = json_string_value(addr);

			if (!a || strlen(a) >= sizeof(host->address)) {
				r = tgvm_error_set(reterr, EINVAL,
				                   "'%s': host '%s': bad \"address\"", origin,
				                   name);
				goto out;
			}
			snprintf(host->address, sizeof(host->address), "%s", a);
		}
		if (json_object_get(h, "machine")) {
			const char *mk = json_string_value(json_object_get(h, "machine"));

			if (!mk || vm_machine_from_string(mk) < 0) {
				r = tgvm_error_set(reterr, EINVAL,
				                   "'%s': host '%s': \"machine\" must be \"q35\", "
				                   "\"pc\" or \"microvm\"",
				                   origin, name);
				goto out;
			}
			snprintf(host->machine, sizeof(host->machine), "%s", mk);
		}
		if (!json_object_get(h, "profile")) {
			r = tgvm_error_set(reterr, EINVAL, "'%s': host '%s' has no \"profile\"",
			                   origin, name);
			goto out;
		}
		r = parse_profile(json_object_get(h, "profile"), db, host, text, origin, reterr);
		if (r < 0) {
			if (!strstr(reterr ? reterr->msg : "", "unknown key"))
				tgvm_error_prefix(reterr, "'%s': host '%s'", origin, name);
			goto out;
		}
		inv->n++;
	}
	/* The memory devices are part of the inventory: bad ones make it bad input. */
	{
		struct tgvm_memdevs md;

		r = fleet_memdevs_from_json(j, text, origin, &md, reterr);
		if (r < 0)
			goto out;
		tgvm_memdevs_release(&md);
	}
	*ret = inv;
	inv = NULL;
out:
	tgvm_inventory_free(inv);
	return r;
}

int tgvm_inventory_from_json(json_t *j, const char *origin, const struct tgvm_modeldb *db,
                             struct tgvm_inventory **ret, struct tgvm_error *reterr)
{
	return inventory_from_json(j, NULL, origin, db, ret, reterr);
}

int tgvm_inventory_load(const char *path, const struct tgvm_modeldb *db,
                        struct tgvm_inventory **ret, struct tgvm_error *reterr)
{
	json_error_t jerr;
	char *text = NULL;
	json_t *j;
	int r;

	r = tgvm_file_read(path, TGVM_INVENTORY_FILE_MAX, &text, NULL, reterr);
	if (r < 0)
		return r;
	j = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		free(text);
		return tgvm_error_set(reterr, EINVAL, "'%s', line %d, column %d: %s", path,
		                      jerr.line, jerr.column, jerr.text);
	}
	r = inventory_from_json(j, text, path, db, ret, reterr);
	free(text);
	json_decref(j);
	return r;
}

/* The files an incomplete scan report could not read, as "PATH: ERROR" lines. */
static char *unread_files(json_t *errors, size_t *ret_n)
{
	struct tgvm_buf b;
	size_t i;
	json_t *e;

	tgvm_buf_init(&b);
	tgvm_buf_append(&b, "", 0);
	*ret_n = 0;
	json_array_foreach(errors, i, e)
	{
		const char *p = json_string_value(json_object_get(e, "path"));
		const char *m = json_string_value(json_object_get(e, "error"));

		tgvm_buf_printf(&b, "%s: %s\n", p ? p : "?", m ? m : "not read");
		(*ret_n)++;
	}
	return b.data;
}

int tgvm_needs_from_report(const char *path, bool allow_incomplete, struct tgvm_vm_needs *ret,
                           char **ret_unread, struct tgvm_error *reterr)
{
	/* what tgvm_needs_from_report() reads */
	static const char *const plain_keys[] = {"required", "guarded", "vendor", "name", NULL};
	static const char *const read_keys[] = {"tool",    "version",      "required",
	                                        "guarded", "vendor",       "name",
	                                        "errors",  "reference_ok", "untestable_required",
	                                        NULL};
	struct tgvm_vm_needs n;
	json_error_t jerr;
	char *text = NULL, *unread = NULL;
	const char *tool, *base, *key;
	json_t *j, *v;
	int r;

	memset(&n, 0, sizeof(n));
	r = tgvm_file_read(path, 256u << 20, &text, NULL, reterr);
	if (r < 0)
		return r;
	j = json_loads(text, 0, &jerr);
	if (!j) {
		free(text);
		return tgvm_error_set(reterr, EINVAL, "'%s', line %d, column %d: %s", path,
		                      jerr.line, jerr.column, jerr.text);
	}
	if (!json_is_object(j) || !json_is_array(json_object_get(j, "required"))) {
		r = tgvm_error_set(reterr, EINVAL,
		                   "'%s' is not a tgvm report: it has no \"required\" feature list",
		                   path);
		goto out;
	}
	tool = json_string_value(json_object_get(j, "tool"));
	if (!tool) {
		r = tgvm_json_check_keys(j, plain_keys, text, path, "the report", reterr);
		if (r < 0)
			goto out;
	} else {
		/* A tool's report has fields of its own; refuse only a typo of one we read. */
		json_object_foreach(j, key, v)
		{
			for (size_t i = 0; read_keys[i]; i++) {
				int d = tgvm_edit_distance(key, read_keys[i]);

				if (d == 0)
					break;
				if (d <= 2 && (size_t)d * 3 <= strlen(key)) {
					r = tgvm_json_check_keys(j, read_keys, text, path,
					                         "the report", reterr);
					if (r < 0)
						goto out;
				}
			}
		}
	}
	r = names_to_set(json_object_get(j, "required"), "required", &n.required, reterr);
	if (r >= 0)
		r = names_to_set(json_object_get(j, "guarded"), "guarded", &n.guarded, reterr);
	if (r < 0) {
		tgvm_error_prefix(reterr, "'%s'", path);
		goto out;
	}
	v = json_object_get(j, "vendor");
	if (v) {
		int vd = json_is_string(v) ? tgvm_vendor_from_string(json_string_value(v)) : -1;

		if (vd < 0) {
			r = tgvm_error_set(reterr, EINVAL,
			                   "'%s': unknown \"vendor\" (intel, amd or other)", path);
			goto out;
		}
		n.vendor = vd;
	}
	v = json_object_get(j, "errors");
	if (json_array_size(v) > 0) {
		size_t nu;

		unread = unread_files(v, &nu);
		if (!allow_incomplete) {
			const char *nl = unread ? strchr(unread, '\n') : NULL;

			r = tgvm_error_set(
			    reterr, EINVAL,
			    "'%s' is incomplete: %zu file%s could not be read (%.*s%s); "
			    "a model from it could lack what they need: repair the "
			    "input, or give --allow-incomplete",
			    path, nu, nu == 1 ? "" : "s", nl ? (int)(nl - unread) : 0,
			    unread ? unread : "", nu > 1 ? ", ..." : "");
			goto out;
		}
	}
	if (tool && !strcmp(tool, "tgvm-probe")) {
		/* A probe whose reference run failed found nothing to go by. */
		if (json_is_false(json_object_get(j, "reference_ok"))) {
			r = tgvm_error_set(reterr, EINVAL,
			                   "'%s': the probe's reference run failed; it has no "
			                   "answer to build a model from",
			                   path);
			goto out;
		}
		/* What the scan required and TCG could not test stays required. */
		r = names_to_set(json_object_get(j, "untestable_required"), "untestable_required",
		                 &n.guarded, reterr);
		if (r < 0) {
			tgvm_error_prefix(reterr, "'%s'", path);
			goto out;
		}
		tgvm_featureset_union(&n.required, &n.guarded);
		tgvm_featureset_clear(&n.guarded);
	}
	v = json_object_get(j, "name");
	base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	if (json_is_string(v) && strlen(json_string_value(v)) > TGVM_VM_NAME_LEN) {
		r = tgvm_error_set(reterr, ENAMETOOLONG,
		                   "'%s': \"name\" is longer than %d characters, the limit for VM "
		                   "names",
		                   path, TGVM_VM_NAME_LEN);
		goto out;
	}
	snprintf(n.name, sizeof(n.name), "%.*s", TGVM_VM_NAME_LEN,
	         json_is_string(v) ? json_string_value(v) : base);
	*ret = n;
	if (ret_unread) {
		*ret_unread = unread;
		unread = NULL;
	}
out:
	free(unread);
	free(text);
	json_decref(j);
	return r;
}
