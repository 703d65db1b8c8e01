// SPDX-License-Identifier: MIT
/*
 * The minimal CPU model: baseline plus needs, closed under dependencies, named
 * after the nearest QEMU model, and written as QEMU -cpu, libvirt XML and JSON.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static const char *const accel_names[TGVM_MODEL_ACCEL__MAX] = {
    [TGVM_MODEL_ACCEL_AUTO] = "auto",
    [TGVM_MODEL_ACCEL_TCG] = "tcg",
    [TGVM_MODEL_ACCEL_KVM] = "kvm",
};

const char *tgvm_model_accel_to_string(enum tgvm_model_accel a)
{
	return (unsigned)a < TGVM_MODEL_ACCEL__MAX ? accel_names[a] : "?";
}

int tgvm_model_accel_from_string(const char *s)
{
	for (int a = 0; a < TGVM_MODEL_ACCEL__MAX; a++)
		if (!strcasecmp(s, accel_names[a]))
			return a;
	return -EINVAL;
}

/*
 * The cost of writing @target as @m plus/minus flags. Hypervisor features
 * in @hv_ok may stay in the base for free; other base features outside the
 * target are removed.
 */
static int flag_cost(const struct tgvm_cpu_model *m, const struct tgvm_featureset *target,
                     const struct tgvm_featureset *hv_ok, struct tgvm_featureset *plus,
                     struct tgvm_featureset *minus)
{
	*plus = *target;
	tgvm_featureset_minus(plus, &m->features);
	*minus = m->features;
	tgvm_featureset_minus(minus, target);
	tgvm_featureset_minus(minus, hv_ok);
	return tgvm_featureset_count(plus) + tgvm_featureset_count(minus);
}

/* The vendors (1 << vendor) whose named QEMU models have @f; 0 when none has it. */
static unsigned feature_vendors(const struct tgvm_modeldb *db, enum tgvm_feature f)
{
	unsigned mask = 0;

	for (size_t i = 0; i < db->n; i++)
		if (tgvm_cpu_model_is_named(&db->models[i]) &&
		    tgvm_featureset_has(&db->models[i].features, f))
			mask |= 1u << db->models[i].vendor;
	return mask;
}

/* "amd" or "intel or amd" for a vendor mask. */
static const char *vendors_str(unsigned mask, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int v = 0; v < TGVM_VENDOR__MAX; v++) {
		int n;

		if (!(mask & (1u << v)))
			continue;
		n = snprintf(buf + len, size - len, "%s%s", len ? " or " : "",
		             tgvm_vendor_to_string(v));
		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
	}
	return buf;
}

/*
 * The vendor of the model: @want when given, else the first of intel, amd,
 * other that has every vendor-specific feature of @target. A feature QEMU
 * shows only on another vendor's models refuses (-EPERM), naming it.
 */
static int pick_vendor(const struct tgvm_modeldb *db, const struct tgvm_featureset *target,
                       enum tgvm_vendor want, enum tgvm_vendor *ret, struct tgvm_error *reterr)
{
	unsigned all = 0, allowed;
	char vb[64];

	for (int v = TGVM_VENDOR_UNKNOWN + 1; v < TGVM_VENDOR__MAX; v++)
		all |= 1u << v;
	allowed = all;
	TGVM_FEATURESET_FOREACH(f, target)
	{
		unsigned m = feature_vendors(db, f);

		if (!m || (m & all) == all)
			continue; /* no model has it (no evidence), or every vendor does */
		if (want != TGVM_VENDOR_UNKNOWN && !(m & (1u << want)))
			return tgvm_error_set(reterr, EPERM,
			                      "'%s' is a feature of %s CPUs only: no %s CPU model "
			                      "of QEMU %s has it",
			                      tgvm_feature_name(f), vendors_str(m, vb, sizeof(vb)),
			                      tgvm_vendor_to_string(want), db->qemu_version);
		if (!(allowed & m)) {
			struct tgvm_featureset other = *target;
			char *names;
			int r;

			/* Name the features that pull the other way. */
			tgvm_featureset_clear(&other);
			TGVM_FEATURESET_FOREACH(g, target)
			if ((int)g != f && feature_vendors(db, g) && !(feature_vendors(db, g) & m))
				tgvm_featureset_add(&other, g);
			names = tgvm_featureset_to_string(&other, ", ");
			r = tgvm_error_set(
			    reterr, EPERM,
			    "no CPU has both '%s' (%s only) and %s: QEMU %s has no model "
			    "of one vendor with all of them",
			    tgvm_feature_name(f), vendors_str(m, vb, sizeof(vb)),
			    names ? names : "the others", db->qemu_version);
			free(names);
			return r;
		}
		allowed &= m;
	}
	if (want != TGVM_VENDOR_UNKNOWN) {
		*ret = want;
		return 0;
	}
	for (int v = TGVM_VENDOR_INTEL; v < TGVM_VENDOR__MAX; v++)
		if (allowed & (1u << v)) {
			*ret = v;
			return 0;
		}
	*ret = TGVM_VENDOR_INTEL;
	return 0;
}

int tgvm_model_choose(const struct tgvm_modeldb *db, const struct tgvm_model_request *req,
                      struct tgvm_model_choice *ret, struct tgvm_error *reterr)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct tgvm_model_choice c;
	const struct tgvm_cpu_model *best = NULL;
	int best_plus = 1 << 30, r;
	struct tgvm_featureset target, unsettable, hv_ok, full;

	pthread_once(&once, hv_init);
	memset(&c, 0, sizeof(c));
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

		r = tgvm_error_set(reterr, ENOTSUP,
		                   "QEMU %s cannot present %s to a guest; a newer QEMU is needed",
		                   db->qemu_version, names ? names : "some features");
		free(names);
		return r;
	}
	r = pick_vendor(db, &target, req->vendor, &c.vendor, reterr);
	if (r < 0)
		return r;

	/* The accelerator: TCG gives what QEMU's 'max' expands to under TCG. */
	unsettable = target;
	tgvm_featureset_minus(&unsettable, &db->tcg_max);
	c.accel = req->accel;
	if (c.accel == TGVM_MODEL_ACCEL_AUTO)
		c.accel = tgvm_featureset_empty(&unsettable) ? TGVM_MODEL_ACCEL_TCG
		                                             : TGVM_MODEL_ACCEL_KVM;
	if (c.accel == TGVM_MODEL_ACCEL_TCG && !tgvm_featureset_empty(&unsettable)) {
		char *names = tgvm_featureset_to_string(&unsettable, ", ");

		r = tgvm_error_set(reterr, ENOTSUP,
		                   "TCG (QEMU %s) cannot present %s; only a model for KVM (--accel "
		                   "kvm) can have it",
		                   db->qemu_version, names ? names : "some features");
		free(names);
		return r;
	}
	hv_ok = hv_set;
	if (c.accel == TGVM_MODEL_ACCEL_TCG)
		tgvm_featureset_intersect(&hv_ok, &db->tcg_max);

	/*
	 * The base: a real CPU, so the guest sees a plausible one. Ranked by
	 * (runs on the target hosts as it is, features added, features removed,
	 * not deprecated): the closest model that already has every needed
	 * feature, masked down, rather than an old CPU given new features.
	 */
	int best_fits = -1, best_minus = 1 << 30;

	for (size_t i = 0; i < db->n; i++) {
		const struct tgvm_cpu_model *m = &db->models[i];
		struct tgvm_featureset plus, minus, own;
		int np, nm, fits;

		if (!tgvm_cpu_model_is_named(m) || m->vendor != c.vendor)
			continue;
		/* QEMU output names a versioned model (stable across QEMU releases);
		 * libvirt output an unversioned one (what libvirt's CPU map knows). */
		if (req->libvirt_names ? tgvm_cpu_model_version(m) > 0 : m->alias_of[0] != '\0')
			continue;
		/* TCG lacks something of it that no -flag of ours can take away. */
		if (c.accel == TGVM_MODEL_ACCEL_TCG && m->tcg_unnamed)
			continue;
		flag_cost(m, &target, &hv_ok, &plus, &minus);
		np = tgvm_featureset_count(&plus);
		nm = tgvm_featureset_count(&minus);
		own = m->features;
		tgvm_featureset_minus(&own, &hv_set);
		fits = !req->hosts_known || tgvm_featureset_subset(&own, &req->hosts_common);
		if (fits > best_fits || (fits == best_fits && np < best_plus) ||
		    (fits == best_fits && np == best_plus && nm < best_minus) ||
		    (fits == best_fits && np == best_plus && nm == best_minus && best &&
		     best->deprecated && !m->deprecated)) {
			best = m;
			best_fits = fits;
			best_plus = np;
			best_minus = nm;
		}
	}
	if (!best)
		return tgvm_error_set(reterr, ENOENT, "QEMU's model database has no %s CPU model",
		                      tgvm_vendor_to_string(c.vendor));
	{
		const char *vn = tgvm_vendor_to_string(c.vendor);
		const char *hosts = !req->hosts_known ? ""
		                    : best_fits       ? "; the target hosts can present it as it is"
		                                : "; no such model runs on every target host as it "
		                                  "is";

		if (!best_plus)
			snprintf(c.base_why, sizeof(c.base_why),
			         "the %s CPU closest to the needs that has all of them (%s): %d of "
			         "its features removed, none added%s",
			         vn, tgvm_psabi_to_string(tgvm_psabi_supported(&best->features)),
			         best_minus, hosts);
		else
			snprintf(c.base_why, sizeof(c.base_why),
			         "no %s model of QEMU %s has every needed feature; this one lacks "
			         "the fewest (%d added, %d removed)%s",
			         vn, db->qemu_version, best_plus, best_minus, hosts);
	}
	c.hosts_known = req->hosts_known;
	c.hosts_common = req->hosts_common;
	snprintf(c.base, sizeof(c.base), "%s", best->name);
	flag_cost(best, &target, &hv_ok, &c.plus, &c.minus);
	c.hv_kept = best->features;
	tgvm_featureset_minus(&c.hv_kept, &target);
	tgvm_featureset_minus(&c.hv_kept, &c.minus);
	c.presented = target;
	/* What TCG lacks of the whole -cpu string: QEMU's own answers for TCG
	 * ('max' expanded there, and the base's unavailable features). */
	full = target;
	tgvm_featureset_union(&full, &c.hv_kept);
	c.tcg_missing = full;
	tgvm_featureset_minus(&c.tcg_missing, &db->tcg_max);
	unsettable = best->tcg_unavailable;
	tgvm_featureset_intersect(&unsettable, &full);
	tgvm_featureset_union(&c.tcg_missing, &unsettable);
	c.lost = req->uses;
	tgvm_featureset_minus(&c.lost, &target);
	*ret = c;
	return 0;
}

bool tgvm_model_fit_host(const struct tgvm_model_fit *fit, const struct tgvm_model_choice *c,
                         const struct tgvm_host *h)
{
	if (c->cross_vendor)
		return tgvm_host_accepts(&h->profile, &c->presented, c->vendor, true, NULL);
	return (fit->vendors & (1u << h->profile.vendor)) &&
	       tgvm_host_accepts(&h->profile, &c->presented, h->profile.vendor, false, NULL);
}

/* Count the machines of @inv that can run @c (its vendor's, or any with cross_vendor). */
static void fit_count(const struct tgvm_inventory *inv, const struct tgvm_model_choice *c,
                      struct tgvm_model_fit *fit)
{
	for (size_t i = 0; i < inv->n; i++) {
		const struct tgvm_host *h = &inv->hosts[i];

		if (!c->cross_vendor && h->profile.vendor != c->vendor)
			continue;
		if (!tgvm_host_accepts(&h->profile, &c->presented, c->vendor, c->cross_vendor,
		                       NULL))
			continue;
		fit->machines += h->count;
		fit->by_vendor[h->profile.vendor] += h->count;
		fit->entries++;
	}
}

/*
 * Why no machine of @inv runs @presented: the features none of the
 * machines of the counted vendors has, else what each of the largest
 * profiles lacks.
 */
static int fit_refuse(const struct tgvm_inventory *inv, const struct tgvm_featureset *presented,
                      unsigned vendors, bool cross, struct tgvm_error *reterr)
{
	struct tgvm_featureset none_has, missing;
	struct tgvm_buf b;
	bool any = false;
	int r, shown = 0;

	tgvm_buf_init(&b);
	for (size_t i = 0; i < inv->n; i++) {
		const struct tgvm_host *h = &inv->hosts[i];

		if (!cross && !(vendors & (1u << h->profile.vendor)))
			continue;
		tgvm_host_accepts(&h->profile, presented, h->profile.vendor, true, &missing);
		if (!any)
			none_has = missing;
		else
			tgvm_featureset_intersect(&none_has, &missing);
		any = true;
	}
	if (!any) {
		char vb[64];

		r = tgvm_error_set(reterr, EPERM,
		                   "no machine in '%s' can run it: it has no %s "
		                   "machine",
		                   inv->path, vendors_str(vendors, vb, sizeof(vb)));
		goto out;
	}
	if (!tgvm_featureset_empty(&none_has)) {
		char *names = tgvm_featureset_to_string(&none_has, ", ");

		r = tgvm_error_set(reterr, EPERM, "no machine in '%s' can run it: none has %s",
		                   inv->path, names ? names : "what it needs");
		free(names);
		goto out;
	}
	/* Each lacks something else: name what the first few entries lack. */
	for (size_t i = 0; i < inv->n && shown < 4; i++) {
		const struct tgvm_host *h = &inv->hosts[i];
		char *names;

		if (!cross && !(vendors & (1u << h->profile.vendor)))
			continue;
		tgvm_host_accepts(&h->profile, presented, h->profile.vendor, true, &missing);
		names = tgvm_featureset_to_string(&missing, " ");
		tgvm_buf_printf(&b, "%s'%s' lacks %s", shown ? "; " : "", h->name,
		                names ? names : "?");
		free(names);
		shown++;
	}
	r = tgvm_error_set(reterr, EPERM, "no machine in '%s' can run it: %s%s", inv->path,
	                   b.data ? b.data : "", inv->n > (size_t)shown ? "; ..." : "");
out:
	tgvm_buf_release(&b);
	return r;
}

/*
 * The target hosts of @req on @inv for @vendor (UNKNOWN with cross_vendor:
 * every vendor): the features all machines able to run the needs share, so
 * the base is a CPU they can present as it is.
 */
static void target_hosts(const struct tgvm_inventory *inv, struct tgvm_model_request *req,
                         enum tgvm_vendor vendor)
{
	struct tgvm_featureset target;

	tgvm_linux_baseline(&target);
	tgvm_featureset_union(&target, &req->need);
	tgvm_featureset_close(&target);
	req->hosts_known = false;
	for (size_t i = 0; i < inv->n; i++) {
		const struct tgvm_cpu_model *p = &inv->hosts[i].profile;

		if (!req->cross_vendor && vendor != TGVM_VENDOR_UNKNOWN && p->vendor != vendor)
			continue;
		if (!tgvm_host_accepts(p, &target, p->vendor, true, NULL))
			continue;
		if (!req->hosts_known)
			req->hosts_common = p->features;
		else
			tgvm_featureset_intersect(&req->hosts_common, &p->features);
		req->hosts_known = true;
	}
}

int tgvm_model_choose_fleet(const struct tgvm_modeldb *db, const struct tgvm_model_request *req,
                            const struct tgvm_inventory *inv, struct tgvm_model_choice *ret,
                            struct tgvm_model_fit *ret_fit, struct tgvm_error *reterr)
{
	struct tgvm_model_choice best, c;
	struct tgvm_model_fit fit;
	struct tgvm_error first = {0};
	bool have = false, present[TGVM_VENDOR__MAX] = {false};
	int r = 0;

	memset(&fit, 0, sizeof(fit));
	fit.total = tgvm_inventory_total(inv);
	if (req->vendor != TGVM_VENDOR_UNKNOWN || req->cross_vendor) {
		struct tgvm_model_request rv = *req;

		target_hosts(inv, &rv, req->vendor);
		r = tgvm_model_choose(db, &rv, &best, reterr);
		if (r < 0)
			return r;
		fit.vendors = req->cross_vendor ? ~0u : 1u << best.vendor;
		fit_count(inv, &best, &fit);
		have = true;
	} else {
		/* Placed per vendor: each vendor's model on that vendor's machines. */
		for (size_t i = 0; i < inv->n; i++)
			present[inv->hosts[i].profile.vendor] = true;
		for (int v = TGVM_VENDOR_INTEL; v < TGVM_VENDOR__MAX; v++) {
			struct tgvm_model_request rv = *req;
			struct tgvm_model_fit one;
			struct tgvm_error e = {0};

			if (!present[v])
				continue;
			rv.vendor = v;
			target_hosts(inv, &rv, v);
			r = tgvm_model_choose(db, &rv, &c, &e);
			if (r == -EPERM || r == -ENOENT) {
				/* the needs rule this vendor out, or QEMU has no model of it */
				if (!first.code)
					first = e;
				continue;
			}
			if (r < 0) {
				if (reterr)
					*reterr = e;
				return r;
			}
			memset(&one, 0, sizeof(one));
			fit_count(inv, &c, &one);
			fit.vendors |= 1u << v;
			fit.machines += one.machines;
			fit.entries += one.entries;
			fit.by_vendor[v] = one.machines;
			if (!have || one.machines > fit.by_vendor[best.vendor]) {
				best = c;
				have = true;
			}
		}
		if (!have) {
			/* every vendor of the inventory is ruled out: say why (the first) */
			if (!first.code)
				first.code = EPERM;
			if (!reterr)
				return -first.code;
			*reterr = first;
			return tgvm_error_prefix(reterr, "no machine in '%s' can run it",
			                         inv->path);
		}
	}
	if (!fit.machines)
		return fit_refuse(inv, &best.presented, fit.vendors, req->cross_vendor, reterr);
	*ret = best;
	if (ret_fit)
		*ret_fit = fit;
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
	if (c->vendor == TGVM_VENDOR_INTEL || c->vendor == TGVM_VENDOR_AMD)
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
	json_object_set_new(j, "accel", json_string(tgvm_model_accel_to_string(c->accel)));
	json_object_set_new(j, "base", json_string(c->base));
	json_object_set_new(j, "base_why", json_string(c->base_why));
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
