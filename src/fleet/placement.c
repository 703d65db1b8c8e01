// SPDX-License-Identifier: MIT
/*
 * Placement of VMs on a fleet under the three policies: passthrough, the
 * fleet-wide baseline (FlexMigration/EVC) and tgvm's minimal model.
 * Identical VMs and identical host profiles are evaluated once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tgvm/fleet.h"
#include "util/util.h"

static const char *const policy_names[TGVM_POLICY__MAX] = {
    [TGVM_POLICY_PASSTHROUGH] = "passthrough",
    [TGVM_POLICY_BASELINE] = "baseline",
    [TGVM_POLICY_MINIMAL] = "minimal",
};

const char *tgvm_policy_to_string(enum tgvm_policy p)
{
	return (unsigned)p < TGVM_POLICY__MAX ? policy_names[p] : "?";
}

int tgvm_policy_from_string(const char *s)
{
	for (int p = 0; p < TGVM_POLICY__MAX; p++)
		if (!strcasecmp(s, policy_names[p]))
			return p;
	return -EINVAL;
}

/* Hash of a feature set and vendor, for grouping equal ones. */
static uint64_t set_hash(const struct tgvm_featureset *a, const struct tgvm_featureset *b, int v)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)v;

	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++) {
		h = (h ^ a->w[i]) * 1099511628211ULL;
		h ^= h >> 29;
		if (b)
			h = (h ^ b->w[i]) * 1099511628211ULL;
	}
	return h;
}

/* An open-addressing table from hash+key to the first index with that key. */
struct group_table {
	size_t cap;
	int64_t *slot; /* index into the items, or -1 */
};

static int group_table_init(struct group_table *t, size_t n)
{
	t->cap = 16;
	while (t->cap < n * 2)
		t->cap *= 2;
	t->slot = malloc(t->cap * sizeof(*t->slot));
	if (!t->slot)
		return -ENOMEM;
	memset(t->slot, 0xff, t->cap * sizeof(*t->slot));
	return 0;
}

struct profile_group {
	const struct tgvm_cpu_model *profile; /* of the first host with it */
	uint64_t hosts;                       /* machines with it */
	size_t entries;
};

struct vm_group {
	const struct tgvm_vm_needs *needs; /* the first VM with them */
	struct tgvm_placement place[TGVM_POLICY__MAX];
	size_t first_entry; /* inventory entry it starts on, or SIZE_MAX */
};

/*
 * tgvm's minimal model for a fleet: what the software requires, plus each
 * guarded feature that every host able to run the requirement has anyway, so
 * the VM keeps its fast paths wherever that costs it no host.
 */
static struct tgvm_featureset minimal_presented(const struct profile_group *pg, size_t npg,
                                                const struct tgvm_featureset *need,
                                                const struct tgvm_featureset *guarded,
                                                enum tgvm_vendor vendor, bool cross)
{
	struct tgvm_featureset common, free_ = *guarded, out = *need;
	bool any = false;

	memset(&common, 0, sizeof(common));
	for (size_t h = 0; h < npg; h++) {
		if (!tgvm_host_accepts(pg[h].profile, need, vendor, cross, NULL))
			continue;
		if (!any)
			common = pg[h].profile->features;
		else
			tgvm_featureset_intersect(&common, &pg[h].profile->features);
		any = true;
	}
	if (!any)
		return out;
	tgvm_featureset_close(&free_);
	tgvm_featureset_intersect(&free_, &common);
	tgvm_featureset_union(&out, &free_);
	tgvm_featureset_close_down(&out);
	/* Closing down may only drop what was added, never a requirement. */
	tgvm_featureset_union(&out, need);
	return out;
}

static bool vendor_ok(enum tgvm_vendor vm, enum tgvm_vendor host, bool cross)
{
	return cross || vm == TGVM_VENDOR_UNKNOWN || vm == host;
}

int tgvm_fleet_evaluate(const struct tgvm_inventory *inv, const struct tgvm_vm_needs *vms,
                        size_t nvms, const struct tgvm_fleet_opts *opts, struct tgvm_placement *ret,
                        struct tgvm_error *reterr)
{
	struct group_table ht = {0}, vt = {0};
	struct profile_group *pg = NULL;
	struct vm_group *vg = NULL;
	size_t *host_group = NULL, *vm_group_of = NULL, npg = 0, nvg = 0;
	struct tgvm_featureset base_by_vendor[TGVM_VENDOR__MAX], base_all, boot;
	bool have_vendor[TGVM_VENDOR__MAX] = {false};
	bool cross = opts && opts->cross_vendor;
	int r = 0;

	if (!inv->n)
		return tgvm_error_set(reterr, EINVAL, "the inventory has no hosts");
	tgvm_linux_baseline(&boot);

	/* Group hosts by profile (features + vendor). */
	pg = calloc(inv->n, sizeof(*pg));
	host_group = calloc(inv->n, sizeof(*host_group));
	vg = calloc(nvms ? nvms : 1, sizeof(*vg));
	vm_group_of = calloc(nvms ? nvms : 1, sizeof(*vm_group_of));
	if (!pg || !host_group || !vg || !vm_group_of || group_table_init(&ht, inv->n) < 0 ||
	    group_table_init(&vt, nvms) < 0) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory evaluating the fleet");
		goto out;
	}
	memset(&base_all, 0xff, sizeof(base_all));
	for (int v = 0; v < TGVM_VENDOR__MAX; v++)
		memset(&base_by_vendor[v], 0xff, sizeof(base_by_vendor[v]));
	for (size_t i = 0; i < inv->n; i++) {
		const struct tgvm_cpu_model *p = &inv->hosts[i].profile;
		uint64_t h = set_hash(&p->features, NULL, p->vendor);
		size_t s = h & (ht.cap - 1);

		while (ht.slot[s] >= 0) {
			const struct tgvm_cpu_model *q = pg[ht.slot[s]].profile;

			if (q->vendor == p->vendor &&
			    tgvm_featureset_equal(&q->features, &p->features))
				break;
			s = (s + 1) & (ht.cap - 1);
		}
		if (ht.slot[s] < 0) {
			ht.slot[s] = (int64_t)npg;
			pg[npg++].profile = p;
		}
		host_group[i] = (size_t)ht.slot[s];
		pg[host_group[i]].hosts += inv->hosts[i].count;
		pg[host_group[i]].entries++;
		tgvm_featureset_intersect(&base_all, &p->features);
		tgvm_featureset_intersect(&base_by_vendor[p->vendor], &p->features);
		have_vendor[p->vendor] = true;
	}
	/* Mask off bits past the vocabulary that the 0xff fill set. */
	{
		struct tgvm_featureset all = {{0}};

		for (int f = 0; f < TGVM_F__MAX; f++)
			tgvm_featureset_add(&all, f);
		tgvm_featureset_intersect(&base_all, &all);
		for (int v = 0; v < TGVM_VENDOR__MAX; v++)
			tgvm_featureset_intersect(&base_by_vendor[v], &all);
	}

	/* Group VMs by needs. */
	for (size_t i = 0; i < nvms; i++) {
		const struct tgvm_vm_needs *n = &vms[i];
		uint64_t h = set_hash(&n->required, &n->guarded, n->vendor);
		size_t s = h & (vt.cap - 1);

		while (vt.slot[s] >= 0) {
			const struct tgvm_vm_needs *q = vg[vt.slot[s]].needs;

			if (q->vendor == n->vendor &&
			    tgvm_featureset_equal(&q->required, &n->required) &&
			    tgvm_featureset_equal(&q->guarded, &n->guarded))
				break;
			s = (s + 1) & (vt.cap - 1);
		}
		if (vt.slot[s] < 0) {
			vt.slot[s] = (int64_t)nvg;
			vg[nvg++].needs = n;
		}
		vm_group_of[i] = (size_t)vt.slot[s];
	}

	for (size_t g = 0; g < nvg; g++) {
		struct vm_group *G = &vg[g];
		const struct tgvm_vm_needs *n = G->needs;
		struct tgvm_featureset need = n->required, uses;
		const struct tgvm_cpu_model *first = NULL;
		enum tgvm_vendor vendor = n->vendor;

		tgvm_featureset_union(&need, &boot);
		tgvm_featureset_close(&need);
		uses = n->required;
		tgvm_featureset_union(&uses, &n->guarded);

		/* Where it starts: the named first host, else the newest machine that
		 * can run it (most features), where a growing cloud puts new VMs. */
		G->first_entry = SIZE_MAX;
		for (size_t i = 0; i < inv->n; i++) {
			const struct tgvm_cpu_model *p = &inv->hosts[i].profile;

			if (!tgvm_host_accepts(p, &need, vendor, true, NULL) ||
			    !vendor_ok(vendor, p->vendor, false))
				continue;
			if (opts && opts->first_host && *opts->first_host) {
				if (!strcmp(inv->hosts[i].name, opts->first_host)) {
					G->first_entry = i;
					first = p;
				}
				continue;
			}
			if (!first || tgvm_featureset_count(&p->features) >
			                  tgvm_featureset_count(&first->features)) {
				G->first_entry = i;
				first = p;
			}
		}
		if (vendor == TGVM_VENDOR_UNKNOWN && first)
			vendor = first->vendor;

		for (int p = 0; p < TGVM_POLICY__MAX; p++) {
			struct tgvm_placement *pl = &G->place[p];
			struct tgvm_featureset presented;

			if (first)
				snprintf(pl->first_host, sizeof(pl->first_host), "%s",
				         inv->hosts[G->first_entry].name);
			if (p == TGVM_POLICY_PASSTHROUGH)
				presented = first ? first->features : need;
			else if (p == TGVM_POLICY_BASELINE)
				presented = cross
				                ? base_all
				                : base_by_vendor[have_vendor[vendor] ? vendor : 0];
			else
				presented =
				    minimal_presented(pg, npg, &need, &n->guarded, vendor, cross);
			pl->presented = presented;
			pl->lost = uses;
			tgvm_featureset_minus(&pl->lost, &presented);
			pl->blocking = n->required;
			tgvm_featureset_minus(&pl->blocking, &presented);
			pl->runs = first && tgvm_featureset_empty(&pl->blocking);
			if (!pl->runs)
				continue;
			for (size_t h = 0; h < npg; h++)
				if (tgvm_host_accepts(pg[h].profile, &presented, vendor, cross,
				                      NULL)) {
					pl->hosts += pg[h].hosts;
					pl->entries += pg[h].entries;
				}
		}
	}

	for (size_t i = 0; i < nvms; i++) {
		const struct vm_group *G = &vg[vm_group_of[i]];

		for (int p = 0; p < TGVM_POLICY__MAX; p++)
			ret[i * TGVM_POLICY__MAX + p] = G->place[p];
	}
	if (opts && opts->matrix) {
		for (size_t i = 0; i < nvms; i++) {
			const struct vm_group *G = &vg[vm_group_of[i]];
			enum tgvm_vendor vendor = G->needs->vendor;

			if (vendor == TGVM_VENDOR_UNKNOWN && G->first_entry != SIZE_MAX)
				vendor = inv->hosts[G->first_entry].profile.vendor;
			for (size_t j = 0; j < inv->n; j++) {
				uint8_t bits = 0;

				for (int p = 0; p < TGVM_POLICY__MAX; p++)
					if (G->place[p].runs &&
					    tgvm_host_accepts(&inv->hosts[j].profile,
					                      &G->place[p].presented, vendor, cross,
					                      NULL))
						bits |= (uint8_t)(1u << p);
				opts->matrix[i * inv->n + j] = bits;
			}
		}
	}
out:
	free(ht.slot);
	free(vt.slot);
	free(pg);
	free(vg);
	free(host_group);
	free(vm_group_of);
	return r;
}
