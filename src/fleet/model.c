// SPDX-License-Identifier: MIT
/*
 * The minimal CPU model: baseline plus needs, closed under dependencies, named
 * after the nearest QEMU model, and written as QEMU -cpu, libvirt XML and JSON.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tgvm/fleet.h"
#include "util/util.h"

static struct tgvm_featureset hv_set;

static void hv_init(void)
{
	tgvm_featureset_with_flags(&hv_set, TGVM_FF_HV);
}

bool tgvm_host_accepts(const struct tgvm_cpu_model *host, const struct tgvm_featureset *model,
                       enum tgvm_vendor model_vendor, bool cross_vendor,
                       struct tgvm_featureset *ret_missing)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const struct tgvm_featureset *hvp = &hv_set;
	bool vendor_ok =
	    cross_vendor || model_vendor == TGVM_VENDOR_UNKNOWN || host->vendor == model_vendor;
	uint64_t any = 0;

	/* Hot: called distinct-VMs x distinct-profiles times by the fleet evaluation. */
	pthread_once(&once, hv_init);
	if (!ret_missing) {
		if (!vendor_ok)
			return false;
		for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++)
			any |= model->w[i] & ~host->features.w[i] & ~hvp->w[i];
		return !any;
	}
	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++) {
		ret_missing->w[i] = model->w[i] & ~host->features.w[i] & ~hvp->w[i];
		any |= ret_missing->w[i];
	}
	return vendor_ok && !any;
}

/* The cost of writing @target as @m plus/minus flags; HV features are free. */
static int flag_cost(const struct tgvm_cpu_model *m, const struct tgvm_featureset *target,
                     struct tgvm_featureset *plus, struct tgvm_featureset *minus)
{
	*plus = *target;
	tgvm_featureset_minus(plus, &m->features);
	*minus = m->features;
	tgvm_featureset_minus(minus, target);
	tgvm_featureset_drop_flags(minus, TGVM_FF_HV);
	return tgvm_featureset_count(plus) + tgvm_featureset_count(minus);
}

int tgvm_model_choose(const struct tgvm_modeldb *db, const struct tgvm_model_request *req,
                      struct tgvm_model_choice *ret, struct tgvm_error *reterr)
{
	struct tgvm_model_choice c;
	const struct tgvm_cpu_model *best = NULL;
	int best_cost = 1 << 30, best_plus = 1 << 30;
	struct tgvm_featureset target, unsettable;

	memset(&c, 0, sizeof(c));
	c.vendor = req->vendor == TGVM_VENDOR_UNKNOWN ? TGVM_VENDOR_INTEL : req->vendor;
	c.cross_vendor = req->cross_vendor;
	tgvm_linux_baseline(&target);
	tgvm_featureset_union(&target, &req->need);
	tgvm_featureset_close(&target);

	/* A feature this QEMU cannot set cannot be presented: say which. */
	unsettable = target;
	tgvm_featureset_minus(&unsettable, &db->settable);
	tgvm_featureset_drop_flags(&unsettable, TGVM_FF_HV);
	if (!tgvm_featureset_empty(&unsettable)) {
		char *names = tgvm_featureset_to_string(&unsettable, ", ");
		int r = tgvm_error_set(
		    reterr, ENOTSUP, "QEMU %s cannot present %s to a guest; a newer QEMU is needed",
		    db->qemu_version, names ? names : "some features");
		free(names);
		return r;
	}

	for (size_t i = 0; i < db->n; i++) {
		const struct tgvm_cpu_model *m = &db->models[i];
		struct tgvm_featureset plus, minus;
		int cost, np;

		if (!tgvm_cpu_model_is_named(m) || m->vendor != c.vendor)
			continue;
		/* QEMU output names a versioned model (stable across QEMU releases);
		 * libvirt output an unversioned one (what libvirt's CPU map knows). */
		if (req->libvirt_names ? tgvm_cpu_model_version(m) > 0 : m->alias_of[0] != '\0')
			continue;
		cost = flag_cost(m, &target, &plus, &minus);
		np = tgvm_featureset_count(&plus);
		if (cost < best_cost || (cost == best_cost && np < best_plus) ||
		    (cost == best_cost && np == best_plus && best && best->deprecated &&
		     !m->deprecated)) {
			best = m;
			best_cost = cost;
			best_plus = np;
		}
	}
	if (!best)
		return tgvm_error_set(reterr, ENOENT, "QEMU %s has no CPU model of vendor '%s'",
		                      db->qemu_version, tgvm_vendor_to_string(c.vendor));
	snprintf(c.base, sizeof(c.base), "%s", best->name);
	flag_cost(best, &target, &c.plus, &c.minus);
	c.hv_kept = best->features;
	tgvm_featureset_minus(&c.hv_kept, &target);
	tgvm_featureset_minus(&c.hv_kept, &c.minus);
	c.presented = target;
	c.tcg_missing = target;
	tgvm_featureset_minus(&c.tcg_missing, &db->tcg_max);
	c.lost = req->uses;
	tgvm_featureset_minus(&c.lost, &target);
	*ret = c;
	return 0;
}

char *tgvm_model_qemu_string(const struct tgvm_model_choice *c)
{
	struct tgvm_buf b;

	tgvm_buf_init(&b);
	tgvm_buf_printf(&b, "%s", c->base);
	TGVM_FEATURESET_FOREACH(f, &c->minus)
	tgvm_buf_printf(&b, ",-%s", tgvm_feature_name(f));
	TGVM_FEATURESET_FOREACH(f, &c->plus)
	tgvm_buf_printf(&b, ",+%s", tgvm_feature_name(f));
	if (tgvm_buf_printf(&b, ",enforce") < 0) {
		tgvm_buf_release(&b);
		return NULL;
	}
	return b.data;
}

/* libvirt's CPU map spells a few features differently from QEMU. */
static const char *libvirt_feature_name(enum tgvm_feature f)
{
	static const struct {
		enum tgvm_feature f;
		const char *name;
	} names[] = {
	    {TGVM_F_LAHF_LM, "lahf_lm"},           {TGVM_F_CMP_LEGACY, "cmp_legacy"},
	    {TGVM_F_FXSR_OPT, "fxsr_opt"},         {TGVM_F_NODEID_MSR, "nodeid_msr"},
	    {TGVM_F_PERFCTR_CORE, "perfctr_core"}, {TGVM_F_PERFCTR_NB, "perfctr_nb"},
	    {TGVM_F_PCLMULQDQ, "pclmuldq"},        {TGVM_F_DS_CPL, "ds_cpl"},
	    {TGVM_F_TSC_ADJUST, "tsc_adjust"},     {TGVM_F_SVM_LOCK, "svm-lock"},
	    {TGVM_F_NRIP_SAVE, "nrip-save"},       {TGVM_F_SYSCALL, "syscall"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].f == f)
			return names[i].name;
	return tgvm_feature_name(f);
}

char *tgvm_model_libvirt_xml(const struct tgvm_model_choice *c)
{
	struct tgvm_buf b;

	tgvm_buf_init(&b);
	tgvm_buf_printf(&b, "<cpu mode='custom' match='exact' check='full'>\n");
	tgvm_buf_printf(&b, "  <model fallback='forbid'>%s</model>\n", c->base);
	tgvm_buf_printf(&b, "  <vendor>%s</vendor>\n",
	                c->vendor == TGVM_VENDOR_AMD ? "AMD" : "Intel");
	TGVM_FEATURESET_FOREACH(f, &c->plus)
	tgvm_buf_printf(&b, "  <feature policy='require' name='%s'/>\n", libvirt_feature_name(f));
	TGVM_FEATURESET_FOREACH(f, &c->minus)
	tgvm_buf_printf(&b, "  <feature policy='disable' name='%s'/>\n", libvirt_feature_name(f));
	if (tgvm_buf_printf(&b, "</cpu>\n") < 0) {
		tgvm_buf_release(&b);
		return NULL;
	}
	return b.data;
}

static json_t *names_json(const struct tgvm_featureset *s)
{
	json_t *a = json_array();

	TGVM_FEATURESET_FOREACH(f, s)
	json_array_append_new(a, json_string(tgvm_feature_name(f)));
	return a;
}

json_t *tgvm_model_choice_to_json(const struct tgvm_model_choice *c)
{
	json_t *j = json_object();
	char *q = tgvm_model_qemu_string(c), *x = tgvm_model_libvirt_xml(c);

	json_object_set_new(j, "tool", json_string("tgvm-model"));
	json_object_set_new(j, "version", json_integer(1));
	json_object_set_new(j, "vendor", json_string(tgvm_vendor_to_string(c->vendor)));
	json_object_set_new(j, "cross_vendor", json_boolean(c->cross_vendor));
	json_object_set_new(j, "base", json_string(c->base));
	json_object_set_new(j, "plus", names_json(&c->plus));
	json_object_set_new(j, "minus", names_json(&c->minus));
	json_object_set_new(j, "features", names_json(&c->presented));
	json_object_set_new(j, "required", names_json(&c->presented));
	json_object_set_new(j, "psabi",
	                    json_string(tgvm_psabi_to_string(tgvm_psabi_supported(&c->presented))));
	json_object_set_new(j, "lost", names_json(&c->lost));
	json_object_set_new(j, "tcg_missing", names_json(&c->tcg_missing));
	json_object_set_new(j, "qemu_cpu", json_string(q ? q : ""));
	json_object_set_new(j, "libvirt_xml", json_string(x ? x : ""));
	free(q);
	free(x);
	return j;
}
