// SPDX-License-Identifier: MIT
/*
 * Fleet evaluation speed: 10,000 hosts x 100,000 VMs under all three policies
 * on one core, against the naive per-VM, per-host check in the same run
 * (timed on a sample of VMs and scaled, since in full it takes minutes); then
 * the same input through `tgvm fleet`: the table, --json and --heatmap, each
 * with its wall time and peak memory (the child's maximum RSS).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

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

/* Write the synthetic inventory and VMs as the files a user would give. */
static int write_inputs(const char *dir, const struct tgvm_inventory *inv, const char *const *base,
                        const char *const *removed, const struct tgvm_vm_needs *vm, size_t vms)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/inventory.json", dir);
	if (!(f = fopen(path, "w")))
		return -1;
	fprintf(f, "{\"hosts\": [\n");
	for (size_t i = 0; i < inv->n; i++) {
		fprintf(f, "  {\"name\": \"%s\", \"profile\": {\"base\": \"%s\"",
		        inv->hosts[i].name, base[i]);
		if (removed[i])
			fprintf(f, ", \"remove\": [\"%s\"]", removed[i]);
		fprintf(f, "}}%s\n", i + 1 < inv->n ? "," : "");
	}
	fprintf(f, "]}\n");
	if (fclose(f))
		return -1;
	snprintf(path, sizeof(path), "%s/vms.json", dir);
	if (!(f = fopen(path, "w")))
		return -1;
	fprintf(f, "{\"vms\": [\n");
	for (size_t i = 0; i < vms; i++) {
		char *req = tgvm_featureset_to_string(&vm[i].required, "\", \"");
		char *gua = tgvm_featureset_to_string(&vm[i].guarded, "\", \"");

		fprintf(f,
		        "  {\"name\": \"%s\", \"required\": [%s%s%s], \"guarded\": [%s%s%s]}%s\n",
		        vm[i].name, *req ? "\"" : "", req, *req ? "\"" : "", *gua ? "\"" : "", gua,
		        *gua ? "\"" : "", i + 1 < vms ? "," : "");
		free(req);
		free(gua);
	}
	fprintf(f, "]}\n");
	return fclose(f) ? -1 : 0;
}

/* Run tgvm with @args, its output to @out; wall seconds and peak RSS in MiB. */
static int run_tgvm(const char *tgvm, char *const *args, const char *out, double *ret_s,
                    double *ret_mib)
{
	struct rusage ru;
	uint64_t t0 = tgvm_now_ns();
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(127);
		execv(tgvm, args);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		return -1;
	*ret_s = (double)(tgvm_now_ns() - t0) / 1e9;
	*ret_mib = (double)ru.ru_maxrss / 1024.0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static long file_size(const char *path)
{
	FILE *f = fopen(path, "r");
	long n = -1;

	if (f && !fseek(f, 0, SEEK_END))
		n = ftell(f);
	if (f)
		fclose(f);
	return n;
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
	const char **base = calloc(hosts, sizeof(*base)), **removed = calloc(hosts, sizeof(*base));
	inv.n = hosts;
	snprintf(inv.path, sizeof(inv.path), "synthetic");
	for (size_t i = 0; i < hosts; i++) {
		struct tgvm_host *h = &inv.hosts[i];

		snprintf(h->name, sizeof(h->name), "h%zu", i);
		h->count = 1;
		h->profile = *named[next() % nnamed];
		base[i] = h->profile.name;
		if (next() % 4 == 0) {
			enum tgvm_feature f = pool[next() % ARRAY_SIZE(pool)];

			/* the file form of the variation: {"base": M, "remove": [f]} */
			if (tgvm_featureset_has(&h->profile.features, f))
				removed[i] = tgvm_feature_name(f);
			tgvm_featureset_del(&h->profile.features, f);
		}
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

	/* The verb on the same input, as files: table, --json, --heatmap. */
	const char *tgvm = argc > 3 ? argv[3] : TGVM_BUILD_DIR "/tgvm";
	char dir[] = "/tmp/tgvm-bench-fleet-XXXXXX", inv_path[600], vms_path[600], out[600],
	     svg[600];
	int bad = 0;

	if (!mkdtemp(dir) || write_inputs(dir, &inv, base, removed, vm, vms) < 0) {
		fprintf(stderr, "bench-fleet: cannot write the inputs in /tmp\n");
		return 1;
	}
	snprintf(inv_path, sizeof(inv_path), "%s/inventory.json", dir);
	snprintf(vms_path, sizeof(vms_path), "%s/vms.json", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(svg, sizeof(svg), "%s/heatmap.svg", dir);
	printf("\ntgvm fleet on %zu host entries x %zu VMs (%s; %.1f MB of VMs file)\n", hosts, vms,
	       tgvm, (double)file_size(vms_path) / 1e6);
	printf("  %-10s %10s %12s %12s\n", "OUTPUT", "WALL", "PEAK RSS", "WRITTEN");
	struct {
		const char *what;
		const char *extra;
		const char *file;
	} runs[] = {
	    {"table", NULL, out},
	    {"json", "--json", out},
	    {"heatmap", "--heatmap", svg},
	};
	double table_mib = 0;
	for (size_t k = 0; k < ARRAY_SIZE(runs); k++) {
		char *args[12];
		int a = 0, rc;
		double sec = 0, mib = 0;

		args[a++] = "tgvm";
		args[a++] = "fleet";
		args[a++] = "--inventory";
		args[a++] = inv_path;
		args[a++] = "--vms";
		args[a++] = vms_path;
		if (runs[k].extra)
			args[a++] = (char *)runs[k].extra;
		if (runs[k].file == svg)
			args[a++] = svg;
		args[a] = NULL;
		rc = run_tgvm(tgvm, args, out, &sec, &mib);
		if (k == 0)
			table_mib = mib;
		printf("  %-10s %9.2fs %9.0f MiB %9.1f MB%s\n", runs[k].what, sec, mib,
		       (double)file_size(runs[k].file) / 1e6,
		       rc ? "  FAILED"
		          : (k && mib > 2 * table_mib ? "  (over 2x the table's)" : ""));
		bad |= rc != 0;
	}
	unlink(inv_path);
	unlink(vms_path);
	unlink(out);
	unlink(svg);
	rmdir(dir);

	free(pl);
	free(vm);
	free(base);
	free(removed);
	free(inv.hosts);
	tgvm_modeldb_free(db);
	return fast_ok == naive_ok && !bad ? 0 : 1;
}
