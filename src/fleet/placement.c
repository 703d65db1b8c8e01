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
	size_t first_entry;                   /* inventory index of that host */
	uint64_t hosts;                       /* machines with it */
	size_t entries;
};

/* One placement of a requirement: on the hosts of one vendor, or of all. */
struct vendor_eval {
	enum tgvm_vendor vendor;       /* the model's vendor */
	size_t first_entry;            /* SIZE_MAX: no host can run it */
	struct tgvm_featureset common; /* features all hosts accepting 'need' share */
	struct tgvm_featureset presented[TGVM_POLICY__MAX];
	bool runs[TGVM_POLICY__MAX];
	uint64_t hosts[TGVM_POLICY__MAX];
	size_t entries[TGVM_POLICY__MAX];
};

/*
 * VMs that require the same features (and vendor) land on the same hosts; all
 * the per-host work is done once per such group. Guarded features only change
 * what the VM loses, which is per VM and cheap. A VM without a vendor that may
 * not cross vendors is placed once per vendor of the fleet (it starts with
 * that vendor's model on that vendor's hosts); its machines are the sum.
 */
struct req_group {
	const struct tgvm_vm_needs *needs; /* the first VM with this requirement */
	struct tgvm_featureset need;       /* required + boot baseline, closed */
	size_t nev;
	struct vendor_eval ev[TGVM_VENDOR__MAX];
	size_t primary; /* the placement on the most machines (minimal policy) */
};

/* Where a VM starts: the named first host, else the newest machine that can
 * run it (most features), where a growing cloud puts new VMs. */
static size_t pick_first(const struct tgvm_inventory *inv, const struct profile_group *pg,
                         size_t npg, const struct tgvm_featureset *need, enum tgvm_vendor vendor,
                         const char *named)
{
	size_t best = SIZE_MAX;
	int best_n = -1;

	if (named && *named) {
		for (size_t i = 0; i < inv->n; i++)
			if (!strcmp(inv->hosts[i].name, named) &&
			    tgvm_host_accepts(&inv->hosts[i].profile, need, vendor, false, NULL))
				return i;
		return SIZE_MAX;
	}
	for (size_t h = 0; h < npg; h++) {
		int n;

		if (!tgvm_host_accepts(pg[h].profile, need, vendor, false, NULL))
			continue;
		n = tgvm_featureset_count(&pg[h].profile->features);
		if (n > best_n || (n == best_n && pg[h].first_entry < best)) {
			best_n = n;
			best = pg[h].first_entry;
		}
	}
	return best;
}

static void eval_vendor(struct vendor_eval *E, const struct req_group *G,
                        const struct tgvm_inventory *inv, const struct profile_group *pg,
                        size_t npg, const struct tgvm_featureset *base_by_vendor,
                        const bool *have_vendor, const struct tgvm_featureset *base_all,
                        const struct tgvm_fleet_opts *opts)
{
	bool cross = opts && opts->cross_vendor;
	bool any = false;

	E->first_entry =
	    pick_first(inv, pg, npg, &G->need, E->vendor, opts ? opts->first_host : NULL);
	if (E->first_entry == SIZE_MAX)
		return;
	if (E->vendor == TGVM_VENDOR_UNKNOWN)
		E->vendor = inv->hosts[E->first_entry].profile.vendor;

	E->presented[TGVM_POLICY_PASSTHROUGH] = inv->hosts[E->first_entry].profile.features;
	E->presented[TGVM_POLICY_BASELINE] =
	    cross ? *base_all : base_by_vendor[have_vendor[E->vendor] ? E->vendor : 0];
	E->presented[TGVM_POLICY_MINIMAL] = G->need;
	for (int p = 0; p < TGVM_POLICY__MAX; p++) {
		struct tgvm_featureset blocking = G->needs->required;

		tgvm_featureset_minus(&blocking, &E->presented[p]);
		E->runs[p] = tgvm_featureset_empty(&blocking);
	}
	for (size_t h = 0; h < npg; h++) {
		const struct tgvm_cpu_model *prof = pg[h].profile;

		for (int p = 0; p < TGVM_POLICY__MAX; p++) {
			if (!E->runs[p] ||
			    !tgvm_host_accepts(prof, &E->presented[p], E->vendor, cross, NULL))
				continue;
			E->hosts[p] += pg[h].hosts;
			E->entries[p] += pg[h].entries;
			if (p == TGVM_POLICY_MINIMAL) {
				if (!any)
					E->common = prof->features;
				else
					tgvm_featureset_intersect(&E->common, &prof->features);
				any = true;
			}
		}
	}
}

static void eval_group(struct req_group *G, const struct tgvm_inventory *inv,
                       const struct profile_group *pg, size_t npg,
                       const struct tgvm_featureset *base_by_vendor, const bool *have_vendor,
                       const struct tgvm_featureset *base_all, const struct tgvm_fleet_opts *opts)
{
	bool cross = opts && opts->cross_vendor;
	bool named = opts && opts->first_host && *opts->first_host;

	G->nev = 0;
	if (G->needs->vendor != TGVM_VENDOR_UNKNOWN || cross || named) {
		/* One placement: the VM's vendor, or its first host's. */
		G->ev[G->nev++].vendor = G->needs->vendor;
	} else {
		for (int v = TGVM_VENDOR_INTEL; v < TGVM_VENDOR__MAX; v++)
			if (have_vendor[v])
				G->ev[G->nev++].vendor = v;
	}
	G->primary = 0;
	for (size_t k = 0; k < G->nev; k++) {
		struct vendor_eval *E = &G->ev[k];

		eval_vendor(E, G, inv, pg, npg, base_by_vendor, have_vendor, base_all, opts);
		if (E->first_entry == SIZE_MAX)
			continue;
		if (G->ev[G->primary].first_entry == SIZE_MAX ||
		    E->hosts[TGVM_POLICY_MINIMAL] > G->ev[G->primary].hosts[TGVM_POLICY_MINIMAL])
			G->primary = k;
	}
}

/*
 * tgvm's minimal model for a fleet: what the software requires, plus each
 * guarded feature that every host able to run the requirement has anyway, so
 * the VM keeps its fast paths wherever that costs it no host.
 */
static struct tgvm_featureset minimal_presented(const struct req_group *G,
                                                const struct vendor_eval *E,
                                                const struct tgvm_featureset *guarded)
{
	struct tgvm_featureset free_ = *guarded, out = G->need;

	tgvm_featureset_close(&free_);
	tgvm_featureset_intersect(&free_, &E->common);
	tgvm_featureset_union(&out, &free_);
	tgvm_featureset_close_down(&out);
	/* Closing down may only drop what was added, never a requirement. */
	tgvm_featureset_union(&out, &G->need);
	return out;
}

int tgvm_fleet_evaluate(const struct tgvm_inventory *inv, const struct tgvm_vm_needs *vms,
                        size_t nvms, const struct tgvm_fleet_opts *opts, struct tgvm_placement *ret,
                        struct tgvm_error *reterr)
{
	struct group_table ht = {0}, vt = {0};
	struct profile_group *pg = NULL;
	struct req_group *rg = NULL;
	size_t *group_of = NULL, npg = 0, nrg = 0;
	struct tgvm_featureset base_by_vendor[TGVM_VENDOR__MAX], base_all, boot, all = {{0}};
	bool have_vendor[TGVM_VENDOR__MAX] = {false};
	bool cross = opts && opts->cross_vendor;
	int r = 0;

	if (!inv->n)
		return tgvm_error_set(reterr, EINVAL, "the inventory has no hosts");
	tgvm_linux_baseline(&boot);
	for (int f = 0; f < TGVM_F__MAX; f++)
		tgvm_featureset_add(&all, f);

	pg = calloc(inv->n, sizeof(*pg));
	rg = calloc(nvms ? nvms : 1, sizeof(*rg));
	group_of = calloc(nvms ? nvms : 1, sizeof(*group_of));
	if (!pg || !rg || !group_of || group_table_init(&ht, inv->n) < 0 ||
	    group_table_init(&vt, nvms) < 0) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory evaluating the fleet");
		goto out;
	}

	/* Group hosts by profile (features + vendor); the baselines on the way. */
	base_all = all;
	for (int v = 0; v < TGVM_VENDOR__MAX; v++)
		base_by_vendor[v] = all;
	for (size_t i = 0; i < inv->n; i++) {
		const struct tgvm_cpu_model *p = &inv->hosts[i].profile;
		size_t s = set_hash(&p->features, NULL, p->vendor) & (ht.cap - 1);

		while (ht.slot[s] >= 0) {
			const struct tgvm_cpu_model *q = pg[ht.slot[s]].profile;

			if (q->vendor == p->vendor &&
			    tgvm_featureset_equal(&q->features, &p->features))
				break;
			s = (s + 1) & (ht.cap - 1);
		}
		if (ht.slot[s] < 0) {
			ht.slot[s] = (int64_t)npg;
			pg[npg].profile = p;
			pg[npg++].first_entry = i;
		}
		pg[ht.slot[s]].hosts += inv->hosts[i].count;
		pg[ht.slot[s]].entries++;
		tgvm_featureset_intersect(&base_all, &p->features);
		tgvm_featureset_intersect(&base_by_vendor[p->vendor], &p->features);
		have_vendor[p->vendor] = true;
	}

	/* Group VMs by requirement and evaluate each group against each profile. */
	for (size_t i = 0; i < nvms; i++) {
		const struct tgvm_vm_needs *n = &vms[i];
		size_t s = set_hash(&n->required, NULL, n->vendor) & (vt.cap - 1);

		while (vt.slot[s] >= 0) {
			const struct tgvm_vm_needs *q = rg[vt.slot[s]].needs;

			if (q->vendor == n->vendor &&
			    tgvm_featureset_equal(&q->required, &n->required))
				break;
			s = (s + 1) & (vt.cap - 1);
		}
		if (vt.slot[s] < 0) {
			struct req_group *G = &rg[nrg];

			vt.slot[s] = (int64_t)nrg++;
			G->needs = n;
			G->need = n->required;
			tgvm_featureset_union(&G->need, &boot);
			tgvm_featureset_close(&G->need);
			eval_group(G, inv, pg, npg, base_by_vendor, have_vendor, &base_all, opts);
		}
		group_of[i] = (size_t)vt.slot[s];
	}

	/* Per VM: what it sees and loses (on its primary placement), and where. */
	for (size_t i = 0; i < nvms; i++) {
		const struct req_group *G = &rg[group_of[i]];
		const struct vendor_eval *P = &G->ev[G->primary];
		bool placed = P->first_entry != SIZE_MAX;
		struct tgvm_featureset uses = vms[i].required;

		tgvm_featureset_union(&uses, &vms[i].guarded);
		for (int p = 0; p < TGVM_POLICY__MAX; p++) {
			struct tgvm_placement *pl = &ret[i * TGVM_POLICY__MAX + p];

			memset(pl, 0, sizeof(*pl));
			pl->vendor = placed ? P->vendor : vms[i].vendor;
			if (placed)
				snprintf(pl->first_host, sizeof(pl->first_host), "%s",
				         inv->hosts[P->first_entry].name);
			pl->presented = !placed ? G->need
			                : p == TGVM_POLICY_MINIMAL
			                    ? minimal_presented(G, P, &vms[i].guarded)
			                    : P->presented[p];
			pl->lost = uses;
			tgvm_featureset_minus(&pl->lost, &pl->presented);
			pl->blocking = vms[i].required;
			tgvm_featureset_minus(&pl->blocking, &pl->presented);
			for (size_t k = 0; k < G->nev; k++) {
				const struct vendor_eval *E = &G->ev[k];

				if (E->first_entry == SIZE_MAX || !E->runs[p])
					continue;
				pl->runs = true;
				pl->hosts += E->hosts[p];
				pl->entries += E->entries[p];
				if (!cross)
					pl->hosts_by_vendor[E->vendor] += E->hosts[p];
			}
		}
		if (!opts || !opts->matrix)
			continue;
		for (size_t j = 0; j < inv->n; j++) {
			uint8_t bits = 0;

			for (size_t k = 0; k < G->nev; k++) {
				const struct vendor_eval *E = &G->ev[k];

				if (E->first_entry == SIZE_MAX)
					continue;
				for (int p = 0; p < TGVM_POLICY__MAX; p++)
					if (E->runs[p] && tgvm_host_accepts(&inv->hosts[j].profile,
					                                    &E->presented[p],
					                                    E->vendor, cross, NULL))
						bits |= (uint8_t)(1u << p);
			}
			opts->matrix[i * inv->n + j] = bits;
		}
	}
out:
	free(ht.slot);
	free(vt.slot);
	free(pg);
	free(rg);
	free(group_of);
	return r;
}
