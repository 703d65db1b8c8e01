// SPDX-License-Identifier: MIT
/*
 * The CPU model database in memory: a sorted array of named models, lookup with
 * suggestions, and the JSON form used for the cache and for host profiles.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tgvm/model.h"
#include "util/util.h"

struct tgvm_modeldb *tgvm_modeldb_new(void)
{
	return calloc(1, sizeof(struct tgvm_modeldb));
}

void tgvm_modeldb_free(struct tgvm_modeldb *db)
{
	if (!db)
		return;
	free(db->models);
	free(db);
}

static int find_index(const struct tgvm_modeldb *db, const char *name, size_t *ret_pos)
{
	size_t lo = 0, hi = db->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(db->models[mid].name, name);

		if (c == 0) {
			*ret_pos = mid;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_pos = lo;
	return 0;
}

int tgvm_modeldb_add(struct tgvm_modeldb *db, const struct tgvm_cpu_model *m)
{
	struct tgvm_cpu_model *p;
	size_t pos;

	if (find_index(db, m->name, &pos))
		return -EEXIST;
	if (db->n >= TGVM_MODELDB_MAX)
		return -E2BIG;
	p = realloc(db->models, (db->n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	db->models = p;
	memmove(&p[pos + 1], &p[pos], (db->n - pos) * sizeof(*p));
	p[pos] = *m;
	db->n++;
	return 0;
}

const struct tgvm_cpu_model *tgvm_modeldb_find(const struct tgvm_modeldb *db, const char *name,
                                               bool follow_alias)
{
	const struct tgvm_cpu_model *m = NULL;
	size_t pos;

	if (!db || !name)
		return NULL;
	if (find_index(db, name, &pos))
		m = &db->models[pos];
	for (size_t i = 0; !m && i < db->n; i++)
		if (!strcasecmp(db->models[i].name, name))
			m = &db->models[i];
	if (m && follow_alias && m->alias_of[0]) {
		const struct tgvm_cpu_model *t = NULL;

		if (find_index(db, m->alias_of, &pos))
			t = &db->models[pos];
		if (t)
			m = t;
	}
	return m;
}

const char *tgvm_modeldb_suggest(const struct tgvm_modeldb *db, const char *name)
{
	const char *best = NULL;
	int best_d = 1000;
	size_t n = strlen(name);

	for (size_t i = 0; i < db->n; i++) {
		const char *cand = db->models[i].name;
		int d = tgvm_edit_distance(name, cand) * 2 + (strlen(cand) != n);

		/* A prefix ("Skylake" for "Skylake-Server") is a good hint too. */
		if (!strncasecmp(cand, name, n) && n >= 4)
			d = TGVM_MIN(d, 2 + (int)(strlen(cand) - n));
		if (d < best_d) {
			best_d = d;
			best = cand;
		}
	}
	if (best && best_d / 2 <= TGVM_MAX(2, (int)n / 3))
		return best;
	/* "Skylake" for "Skylake-Client": the shortest model the name begins. */
	best = NULL;
	for (size_t i = 0; n >= 3 && i < db->n; i++)
		if (!strncasecmp(db->models[i].name, name, n) &&
		    (!best || strlen(db->models[i].name) < strlen(best)))
			best = db->models[i].name;
	return best;
}

int tgvm_modeldb_lookup(const struct tgvm_modeldb *db, const char *name,
                        const struct tgvm_cpu_model **ret, struct tgvm_error *reterr)
{
	const struct tgvm_cpu_model *m = tgvm_modeldb_find(db, name, false);
	const char *sugg;

	if (m) {
		*ret = m;
		return 0;
	}
	sugg = tgvm_modeldb_suggest(db, name);
	if (sugg)
		return tgvm_error_set(reterr, ENOENT,
		                      "unknown CPU model '%s' (did you mean '%s'?); "
		                      "'tgvm host models' lists them",
		                      name, sugg);
	return tgvm_error_set(reterr, ENOENT,
	                      "unknown CPU model '%s'; 'tgvm host models' lists them", name);
}

bool tgvm_cpu_model_is_named(const struct tgvm_cpu_model *m)
{
	return strcmp(m->name, "max") && strcmp(m->name, "host") && strcmp(m->name, "base");
}

int tgvm_cpu_model_version(const struct tgvm_cpu_model *m)
{
	const char *v = strrchr(m->name, '-');
	int n;

	if (!v || v[1] != 'v' || tgvm_parse_int(v + 2, 1, 1000, &n) < 0)
		return 0;
	return n;
}

static json_t *featureset_to_json(const struct tgvm_featureset *s)
{
	json_t *a = json_array();

	TGVM_FEATURESET_FOREACH(f, s)
	json_array_append_new(a, json_string(tgvm_feature_name(f)));
	return a;
}

json_t *tgvm_cpu_model_to_json(const struct tgvm_cpu_model *m)
{
	json_t *j = json_object();

	json_object_set_new(j, "name", json_string(m->name));
	if (m->alias_of[0])
		json_object_set_new(j, "alias_of", json_string(m->alias_of));
	json_object_set_new(j, "vendor", json_string(tgvm_vendor_to_string(m->vendor)));
	json_object_set_new(j, "family", json_integer(m->family));
	json_object_set_new(j, "model", json_integer(m->model));
	json_object_set_new(j, "stepping", json_integer(m->stepping));
	json_object_set_new(j, "model_id", json_string(m->model_id));
	json_object_set_new(j, "migration_safe", json_boolean(m->migration_safe));
	json_object_set_new(j, "deprecated", json_boolean(m->deprecated));
	json_object_set_new(j, "psabi",
	                    json_string(tgvm_psabi_to_string(tgvm_psabi_supported(&m->features))));
	json_object_set_new(j, "features", featureset_to_json(&m->features));
	if (!tgvm_featureset_empty(&m->tcg_unavailable))
		json_object_set_new(j, "tcg_unavailable", featureset_to_json(&m->tcg_unavailable));
	if (m->tcg_unnamed)
		json_object_set_new(j, "tcg_unnamed", json_true());
	return j;
}

/* Read an array of feature names; unknown ones are an error naming them. */
static int featureset_from_json(json_t *a, const char *what, struct tgvm_featureset *ret,
                                struct tgvm_error *reterr)
{
	struct tgvm_featureset s = {{0}};
	size_t i;
	json_t *v;

	if (!json_is_array(a))
		return tgvm_error_set(reterr, EINVAL, "'%s' must be an array of feature names",
		                      what);
	if (json_array_size(a) > 4096)
		return tgvm_error_set(reterr, E2BIG, "'%s' has too many entries", what);
	json_array_foreach(a, i, v)
	{
		const char *name = json_string_value(v);
		int f;

		if (!name)
			return tgvm_error_set(reterr, EINVAL, "'%s' entry %zu is not a string",
			                      what, i);
		f = tgvm_feature_from_name(name);
		if (f < 0) {
			const char *sugg = tgvm_feature_suggest(name);

			if (sugg)
				return tgvm_error_set(
				    reterr, ENOENT,
				    "unknown CPU feature '%s' in '%s' (did you mean '%s'?)", name,
				    what, sugg);
			return tgvm_error_set(reterr, ENOENT, "unknown CPU feature '%s' in '%s'",
			                      name, what);
		}
		tgvm_featureset_add(&s, f);
	}
	*ret = s;
	return 0;
}

static int copy_str(char *dst, size_t size, json_t *v, const char *what, struct tgvm_error *reterr)
{
	const char *s = json_string_value(v);

	if (!s)
		return tgvm_error_set(reterr, EINVAL, "'%s' must be a string", what);
	if (strlen(s) >= size)
		return tgvm_error_set(reterr, ENAMETOOLONG, "'%s' is longer than %zu characters",
		                      what, size - 1);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

int tgvm_cpu_model_from_json(json_t *j, struct tgvm_cpu_model *ret, struct tgvm_error *reterr)
{
	struct tgvm_cpu_model m;
	json_t *v;
	int r;

	memset(&m, 0, sizeof(m));
	if (!json_is_object(j))
		return tgvm_error_set(reterr, EINVAL, "a CPU model must be a JSON object");
	r = copy_str(m.name, sizeof(m.name), json_object_get(j, "name"), "name", reterr);
	if (r < 0)
		return r;
	v = json_object_get(j, "alias_of");
	if (v && (r = copy_str(m.alias_of, sizeof(m.alias_of), v, "alias_of", reterr)) < 0)
		return r;
	v = json_object_get(j, "model_id");
	if (v && (r = copy_str(m.model_id, sizeof(m.model_id), v, "model_id", reterr)) < 0)
		return r;
	v = json_object_get(j, "vendor");
	if (v) {
		r = tgvm_vendor_from_string(json_string_value(v));
		if (r < 0)
			return tgvm_error_set(
			    reterr, EINVAL, "model '%s': unknown vendor (use \"intel\" or \"amd\")",
			    m.name);
		m.vendor = r;
	}
	m.family = (int)json_integer_value(json_object_get(j, "family"));
	m.model = (int)json_integer_value(json_object_get(j, "model"));
	m.stepping = (int)json_integer_value(json_object_get(j, "stepping"));
	m.migration_safe = json_is_true(json_object_get(j, "migration_safe"));
	m.deprecated = json_is_true(json_object_get(j, "deprecated"));
	m.tcg_unnamed = json_is_true(json_object_get(j, "tcg_unnamed"));
	v = json_object_get(j, "features");
	if (!v)
		return tgvm_error_set(reterr, EINVAL, "model '%s' has no \"features\"", m.name);
	r = featureset_from_json(v, "features", &m.features, reterr);
	if (r < 0)
		return tgvm_error_prefix(reterr, "model '%s'", m.name);
	v = json_object_get(j, "tcg_unavailable");
	if (v && (r = featureset_from_json(v, "tcg_unavailable", &m.tcg_unavailable, reterr)) < 0)
		return tgvm_error_prefix(reterr, "model '%s'", m.name);
	*ret = m;
	return 0;
}

json_t *tgvm_modeldb_to_json(const struct tgvm_modeldb *db)
{
	json_t *j = json_object(), *a = json_array();

	json_object_set_new(j, "format", json_string("tgvm-cpu-models"));
	json_object_set_new(j, "version", json_integer(TGVM_MODELDB_FORMAT));
	json_object_set_new(j, "qemu_version", json_string(db->qemu_version));
	json_object_set_new(j, "settable", featureset_to_json(&db->settable));
	json_object_set_new(j, "tcg_max", featureset_to_json(&db->tcg_max));
	for (size_t i = 0; i < db->n; i++)
		json_array_append_new(a, tgvm_cpu_model_to_json(&db->models[i]));
	json_object_set_new(j, "models", a);
	return j;
}

int tgvm_modeldb_from_json(json_t *j, struct tgvm_modeldb **ret, struct tgvm_error *reterr)
{
	struct tgvm_modeldb *db = NULL;
	json_t *a, *v;
	size_t i;
	int r;

	if (!json_is_object(j) ||
	    strcmp(json_string_value(json_object_get(j, "format")) ?: "", "tgvm-cpu-models"))
		return tgvm_error_set(reterr, EINVAL, "not a tgvm CPU model database");
	if (json_integer_value(json_object_get(j, "version")) != TGVM_MODELDB_FORMAT)
		return tgvm_error_set(reterr, EINVAL,
		                      "CPU model database of another format version (want %d)",
		                      TGVM_MODELDB_FORMAT);
	a = json_object_get(j, "models");
	if (!json_is_array(a))
		return tgvm_error_set(reterr, EINVAL, "CPU model database has no \"models\" array");
	db = tgvm_modeldb_new();
	if (!db)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	r = copy_str(db->qemu_version, sizeof(db->qemu_version), json_object_get(j, "qemu_version"),
	             "qemu_version", reterr);
	if (r < 0)
		goto out;
	r = featureset_from_json(json_object_get(j, "settable"), "settable", &db->settable, reterr);
	if (r < 0)
		goto out;
	r = featureset_from_json(json_object_get(j, "tcg_max"), "tcg_max", &db->tcg_max, reterr);
	if (r < 0)
		goto out;
	json_array_foreach(a, i, v)
	{
		struct tgvm_cpu_model m;

		r = tgvm_cpu_model_from_json(v, &m, reterr);
		if (r < 0)
			goto out;
		r = tgvm_modeldb_add(db, &m);
		if (r < 0) {
			r = tgvm_error_set(reterr, -r, "cannot add model '%s' to the database",
			                   m.name);
			goto out;
		}
	}
	*ret = db;
	db = NULL;
out:
	tgvm_modeldb_free(db);
	return r;
}
