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

#include "tgvm/fleet.h"
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
	if (!json_is_array(a) || json_array_size(a) > 4096)
		return tgvm_error_set(reterr, EINVAL, "\"%s\" must be an array of feature names",
		                      what);
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
                         struct tgvm_error *reterr)
{
	const struct tgvm_cpu_model *m;
	int r;

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
	r = tgvm_cpu_model_from_json(p, &h->profile, reterr);
	if (r < 0)
		return r;
	snprintf(h->profile_name, sizeof(h->profile_name), "%s", h->profile.name);
	return 0;
}

int tgvm_inventory_from_json(json_t *j, const char *origin, const struct tgvm_modeldb *db,
                             struct tgvm_inventory **ret, struct tgvm_error *reterr)
{
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
		if (!json_object_get(h, "profile")) {
			r = tgvm_error_set(reterr, EINVAL, "'%s': host '%s' has no \"profile\"",
			                   origin, name);
			goto out;
		}
		r = parse_profile(json_object_get(h, "profile"), db, host, reterr);
		if (r < 0) {
			tgvm_error_prefix(reterr, "'%s': host '%s'", origin, name);
			goto out;
		}
		inv->n++;
	}
	*ret = inv;
	inv = NULL;
out:
	tgvm_inventory_free(inv);
	return r;
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
	free(text);
	if (!j)
		return tgvm_error_set(reterr, EINVAL, "'%s', line %d, column %d: %s", path,
		                      jerr.line, jerr.column, jerr.text);
	r = tgvm_inventory_from_json(j, path, db, ret, reterr);
	json_decref(j);
	return r;
}

int tgvm_needs_from_report(const char *path, struct tgvm_vm_needs *ret, struct tgvm_error *reterr)
{
	struct tgvm_vm_needs n;
	json_error_t jerr;
	char *text = NULL;
	const char *tool, *base;
	json_t *j, *v;
	int r;

	memset(&n, 0, sizeof(n));
	r = tgvm_file_read(path, 256u << 20, &text, NULL, reterr);
	if (r < 0)
		return r;
	j = json_loads(text, 0, &jerr);
	free(text);
	if (!j)
		return tgvm_error_set(reterr, EINVAL, "'%s', line %d, column %d: %s", path,
		                      jerr.line, jerr.column, jerr.text);
	if (!json_is_object(j) || !json_is_array(json_object_get(j, "required"))) {
		r = tgvm_error_set(reterr, EINVAL,
		                   "'%s' is not a tgvm report: it has no \"required\" feature list",
		                   path);
		goto out;
	}
	r = names_to_set(json_object_get(j, "required"), "required", &n.required, reterr);
	if (r >= 0)
		r = names_to_set(json_object_get(j, "guarded"), "guarded", &n.guarded, reterr);
	if (r < 0) {
		tgvm_error_prefix(reterr, "'%s'", path);
		goto out;
	}
	v = json_object_get(j, "vendor");
	if (json_is_string(v)) {
		int vd = tgvm_vendor_from_string(json_string_value(v));

		n.vendor = vd < 0 ? TGVM_VENDOR_UNKNOWN : vd;
	}
	tool = json_string_value(json_object_get(j, "tool"));
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
	snprintf(n.name, sizeof(n.name), "%s", json_is_string(v) ? json_string_value(v) : base);
	*ret = n;
out:
	json_decref(j);
	return r;
}
