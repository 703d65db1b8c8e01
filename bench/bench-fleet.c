// SPDX-License-Identifier: MIT
/*
 * Fleet evaluation speed: 10,000 hosts x 100,000 VMs under all three policies
 * on one core, against the naive per-VM, per-host check in the same run
 * (timed on a sample of VMs and scaled, since in full it takes minutes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tgvm/fleet.h"
#include "util/util.h"

#define HOSTS        10000
#define VMS          100000
#define NAIVE_SAMPLE 1000

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	struct tgvm_modeldb *db = NULL;
	struct tgvm_error err = {0};
	struct tgvm_inventory inv = {0};
	const struct tgvm_cpu_model *named[512];
	size_t nnamed = 0, hosts = HOSTS, vms = VMS;
	static const enum tgvm_feature pool[] = {
	    TGVM_F_POPCNT,  TGVM_F_SSE4_2,   TGVM_F_SSSE3,    TGVM_F_AVX,        TGVM_F_AVX2,
	    TGVM_F_BMI2,    TGVM_F_FMA,      TGVM_F_AES,      TGVM_F_PCLMULQDQ,  TGVM_F_SHA_NI,
	    TGVM_F_AVX512F, TGVM_F_AVX512BW, TGVM_F_AVX512VL, TGVM_F_MOVBE,      TGVM_F_ADX,
	    TGVM_F_RDSEED,  TGVM_F_VAES,     TGVM_F_GFNI,     TGVM_F_AVX512VNNI, TGVM_F_CX16,
	};

	if (argc > 1)
		hosts = strtoul(argv[1], NULL, 10);
	if (argc > 2)
		vms = strtoul(argv[2], NULL, 10);
	if (tgvm_modeldb_load_default(&db, &err) < 0) {
		fprintf(stderr, "bench-fleet: %s\n", err.msg);
		return 1;
	}
	for (size_t i = 0; i < db->n && nnamed < 512; i++)
		if (tgvm_cpu_model_is_named(&db->models[i]) && !db->models[i].alias_of[0] &&
		    tgvm_psabi_supported(&db->models[i].features) >= TGVM_PSABI_V2)
			named[nnamed++] = &db->models[i];

	/* Hosts: a model each, with a microcode/BIOS variation in 1 of 4 (a feature off). */
	inv.hosts = calloc(hosts, sizeof(*inv.hosts));
	inv.n = hosts;
	snprintf(inv.path, sizeof(inv.path), "synthetic");
	for (size_t i = 0; i < hosts; i++) {
		struct tgvm_host *h = &inv.hosts[i];

		snprintf(h->name, sizeof(h->name), "h%zu", i);
		h->count = 1;
		h->profile = *named[next() % nnamed];
		if (next() % 4 == 0)
			tgvm_featureset_del(&h->profile.features, pool[next() % ARRAY_SIZE(pool)]);
	}
	/* VMs: 0-4 required and 0-4 guarded features from a pool of 20. */
	struct tgvm_vm_needs *vm = calloc(vms, sizeof(*vm));
	for (size_t i = 0; i < vms; i++) {
		snprintf(vm[i].name, sizeof(vm[i].name), "vm%zu", i);
		for (int k = (int)(next() % 5); k > 0; k--)
			tgvm_featureset_add(&vm[i].required, pool[next() % ARRAY_SIZE(pool)]);
		for (int k = (int)(next() % 5); k > 0; k--)
			tgvm_featureset_add(&vm[i].guarded, pool[next() % ARRAY_SIZE(pool)]);
		tgvm_featureset_close(&vm[i].required);
	}
	struct tgvm_placement *pl = calloc(vms * TGVM_POLICY__MAX, sizeof(*pl));
	struct tgvm_fleet_opts fo = {0};

	uint64_t t0 = tgvm_now_ns();
	if (tgvm_fleet_evaluate(&inv, vm, vms, &fo, pl, &err) < 0) {
		fprintf(stderr, "bench-fleet: %s\n", err.msg);
		return 1;
	}
	double tgvm_s = (double)(tgvm_now_ns() - t0) / 1e9;

	/* Baseline: for each VM, each host, the minimal-policy check. */
	struct tgvm_featureset boot;
	tgvm_linux_baseline(&boot);
	uint64_t naive_ok = 0;
	size_t sample = vms < NAIVE_SAMPLE ? vms : NAIVE_SAMPLE;
	t0 = tgvm_now_ns();
	for (size_t i = 0; i < sample; i++) {
		struct tgvm_featureset need = vm[i].required;

		tgvm_featureset_union(&need, &boot);
		tgvm_featureset_close(&need);
		for (size_t j = 0; j < hosts; j++)
			naive_ok += tgvm_host_accepts(&inv.hosts[j].profile, &need,
			                              TGVM_VENDOR_UNKNOWN, true, NULL);
	}
	double naive_s = (double)(tgvm_now_ns() - t0) / 1e9 * (double)vms / (double)sample;
	/* Check the two agree on the sample (with cross-vendor, as computed above). */
	uint64_t fast_ok = 0;
	fo.cross_vendor = true;
	tgvm_fleet_evaluate(&inv, vm, sample, &fo, pl, &err);
	for (size_t i = 0; i < sample; i++)
		fast_ok += pl[i * TGVM_POLICY__MAX + TGVM_POLICY_MINIMAL].hosts;

	printf("fleet evaluation, %zu hosts x %zu VMs, 3 policies, one core (QEMU %s models)\n",
	       hosts, vms, db->qemu_version);
	printf("  tgvm (grouped):            %8.3f s\n", tgvm_s);
	printf("  naive pairwise (minimal only, scaled from %zu VMs): %8.3f s\n", sample, naive_s);
	printf("  speed-up:                  %8.1fx\n", naive_s / tgvm_s);
	printf("  goal < 1 s:                %s\n", tgvm_s < 1.0 ? "met" : "NOT met");
	printf("  sample agreement:          %s (%llu vs %llu host matches)\n",
	       fast_ok == naive_ok ? "yes" : "NO", (unsigned long long)fast_ok,
	       (unsigned long long)naive_ok);
	free(pl);
	free(vm);
	free(inv.hosts);
	tgvm_modeldb_free(db);
	return fast_ok == naive_ok ? 0 : 1;
}
