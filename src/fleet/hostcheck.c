// SPDX-License-Identifier: MIT
/*
 * Whether a host can run a VM's CPU model, the rule both `vm start` and a
 * migration's check apply: the features the VM's -cpu string presents must
 * all be in the host's CPU profile (from the inventory that created the
 * host, else what this machine can present: its detected CPU under KVM,
 * TCG's maximum under TCG), and the vendor must match.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tgvm/cpu.h"
#include "tgvm/fleet.h"
#include "tgvm/hostcheck.h"
#include "tgvm/model.h"
#include "util/util.h"

/*
 * Features presented by "Base,+a,-b,c=on,d=off": the base model's set with
 * the changes applied. Properties that are not CPU features (pmu=off,
 * migratable=on, ...) are ignored. The base must be in @db.
 */
static int cpu_string_features(const struct tgvm_modeldb *db, const char *cpu,
                               struct tgvm_featureset *ret, enum tgvm_vendor *ret_vendor,
                               struct tgvm_error *reterr)
{
	struct tgvm_strv parts;
	const struct tgvm_cpu_model *base;
	struct tgvm_featureset s;
	int r = 0;

	tgvm_strv_init(&parts);
	if (tgvm_strv_split(&parts, cpu, ",") < 0 || parts.n == 0) {
		tgvm_strv_release(&parts);
		return tgvm_error_set(reterr, EINVAL, "empty CPU model");
	}
	if ((r = tgvm_modeldb_lookup(db, parts.v[0], &base, reterr)) < 0)
		goto out;
	s = base->features;
	for (size_t i = 1; i < parts.n; i++) {
		char name[128];
		const char *p = parts.v[i], *eq = strchr(p, '=');
		bool on = true;
		int f;

		if (*p == '+' || *p == '-') {
			on = *p == '+';
			p++;
		}
		size_t len = eq ? (size_t)(eq - p) : strlen(p);
		if (len == 0 || len >= sizeof(name))
			continue;
		memcpy(name, p, len);
		name[len] = '\0';
		if (eq)
			on = !strcmp(eq + 1, "on") || !strcmp(eq + 1, "true") ||
			     !strcmp(eq + 1, "yes");
		f = tgvm_feature_from_name(name);
		if (f < 0)
			continue; /* a property, not a feature */
		if (on)
			tgvm_featureset_add(&s, f);
		else
			tgvm_featureset_del(&s, f);
	}
	*ret = s;
	*ret_vendor = base->vendor;
out:
	tgvm_strv_release(&parts);
	return r;
}

int tgvm_host_profile(const struct vm_host *h, const char *accel, const struct tgvm_modeldb *db,
                      enum tgvm_vendor vm_vendor, struct tgvm_cpu_model *ret,
                      struct tgvm_error *reterr)
{
	int r;

	if (h->profile[0]) { /* recorded when the host came up */
		int v = tgvm_vendor_from_string(h->profile_vendor);

		memset(ret, 0, sizeof(*ret));
		snprintf(ret->name, sizeof(ret->name), "%s", h->profile);
		ret->vendor = v < 0 ? TGVM_VENDOR_UNKNOWN : (enum tgvm_vendor)v;
		if ((r = tgvm_featureset_parse(h->profile_features, &ret->features, reterr)) < 0)
			tgvm_error_prefix(reterr, "host '%s': recorded profile", h->name);
		return r < 0 ? r : 0;
	}
	if (h->inventory[0]) { /* recorded by an older tgvm: the file as it is now */
		struct tgvm_inventory *inv = NULL;
		const struct tgvm_host *ih;

		if ((r = tgvm_inventory_load(h->inventory, db, &inv, reterr)) >= 0 &&
		    (r = tgvm_inventory_find(inv, h->name, &ih, reterr)) >= 0)
			*ret = ih->profile;
		tgvm_inventory_free(inv);
		return r < 0 ? r : 0;
	}
	if (accel && !strcmp(accel, "kvm"))
		return tgvm_cpu_detect(ret, NULL, reterr);
	/* A simulated host without a profile runs TCG here: what TCG can present. */
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->name, sizeof(ret->name), "TCG");
	ret->vendor = vm_vendor;
	ret->features = db->tcg_max;
	return 0;
}

int tgvm_host_check_cpu(const struct vm_config *vm, const struct vm_host *dst, void *opaque,
                        struct tgvm_error *reterr)
{
	struct tgvm_modeldb *db = NULL;
	struct tgvm_cpu_model profile;
	struct tgvm_featureset want, missing;
	enum tgvm_vendor vendor = TGVM_VENDOR_UNKNOWN;
	const char *cpu = vm->cpu ? vm->cpu : "qemu64";
	int r;

	(void)opaque;
	if ((r = tgvm_modeldb_load_default(&db, reterr)) < 0)
		return r;
	if ((r = cpu_string_features(db, cpu, &want, &vendor, reterr)) < 0) {
		tgvm_error_prefix(reterr, "VM '%s'", vm->name);
		goto out;
	}
	if ((r = tgvm_host_profile(dst, vm->accel, db, vendor, &profile, reterr)) < 0)
		goto out;
	if (!tgvm_host_accepts(&profile, &want, vendor, false, &missing)) {
		char *list = tgvm_featureset_to_string(&missing, ", ");

		if (tgvm_featureset_empty(&missing))
			r = tgvm_error_set(reterr, EPERM,
			                   "host '%s' (%s) cannot run VM '%s' (-cpu %s): CPU "
			                   "vendor differs",
			                   dst->name, profile.name, vm->name, cpu);
		else
			r = tgvm_error_set(reterr, EPERM,
			                   "host '%s' (%s) lacks %s, which VM '%s' is given "
			                   "(-cpu %s)",
			                   dst->name, profile.name, list ? list : "features",
			                   vm->name, cpu);
		free(list);
		goto out;
	}
	r = 0;
out:
	tgvm_modeldb_free(db);
	return r;
}
