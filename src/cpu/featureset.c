// SPDX-License-Identifier: MIT
/*
 * Feature-set algebra, parsing and printing, the dependency graph between
 * features, the x86-64 psABI levels, the Linux boot baseline and vendors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tgvm/cpu.h"
#include "util/util.h"

/* Tail bits past TGVM_F__MAX are never set, so whole-word ops stay exact. */

void tgvm_featureset_union(struct tgvm_featureset *dst, const struct tgvm_featureset *a)
{
	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++)
		dst->w[i] |= a->w[i];
}

void tgvm_featureset_intersect(struct tgvm_featureset *dst, const struct tgvm_featureset *a)
{
	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++)
		dst->w[i] &= a->w[i];
}

void tgvm_featureset_minus(struct tgvm_featureset *dst, const struct tgvm_featureset *a)
{
	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++)
		dst->w[i] &= ~a->w[i];
}

bool tgvm_featureset_equal(const struct tgvm_featureset *a, const struct tgvm_featureset *b)
{
	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++)
		if (a->w[i] != b->w[i])
			return false;
	return true;
}

bool tgvm_featureset_subset(const struct tgvm_featureset *a, const struct tgvm_featureset *b)
{
	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++)
		if (a->w[i] & ~b->w[i])
			return false;
	return true;
}

bool tgvm_featureset_empty(const struct tgvm_featureset *s)
{
	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++)
		if (s->w[i])
			return false;
	return true;
}

int tgvm_featureset_count(const struct tgvm_featureset *s)
{
	int n = 0;

	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++)
		n += __builtin_popcountll(s->w[i]);
	return n;
}

int tgvm_featureset_next(const struct tgvm_featureset *s, int from)
{
	if (from < 0)
		from = 0;
	while (from < TGVM_F__MAX) {
		uint64_t w = s->w[from / 64] >> (from % 64);

		if (w)
			return from + __builtin_ctzll(w);
		from = (from / 64 + 1) * 64;
	}
	return -1;
}

/* One set per flag bit, built once: flag queries sit on hot paths (fleet placement). */
#define FLAG_BITS 3
static struct tgvm_featureset flag_sets[FLAG_BITS];
static pthread_once_t flag_sets_once = PTHREAD_ONCE_INIT;

static void flag_sets_init(void)
{
	for (int f = 0; f < TGVM_F__MAX; f++)
		for (int b = 0; b < FLAG_BITS; b++)
			if (tgvm_feature_info(f)->flags & (1u << b))
				tgvm_featureset_add(&flag_sets[b], f);
}

void tgvm_featureset_with_flags(struct tgvm_featureset *ret, unsigned mask)
{
	pthread_once(&flag_sets_once, flag_sets_init);
	tgvm_featureset_clear(ret);
	for (int b = 0; b < FLAG_BITS; b++)
		if (mask & (1u << b))
			tgvm_featureset_union(ret, &flag_sets[b]);
}

void tgvm_featureset_drop_flags(struct tgvm_featureset *s, unsigned mask)
{
	struct tgvm_featureset drop;

	tgvm_featureset_with_flags(&drop, mask);
	tgvm_featureset_minus(s, &drop);
}

int tgvm_featureset_parse(const char *list, struct tgvm_featureset *ret, struct tgvm_error *reterr)
{
	struct tgvm_featureset s = {{0}};
	struct tgvm_strv names;
	struct tgvm_buf bad;
	int r = 0;

	tgvm_strv_init(&names);
	tgvm_buf_init(&bad);
	if (tgvm_strv_split(&names, list, ", \t\n") < 0) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < names.n; i++) {
		const char *name = names.v[i];
		int f;

		/* Accept a QEMU-style leading '+' as well. */
		if (*name == '+')
			name++;
		f = tgvm_feature_from_name(name);
		if (f >= 0) {
			tgvm_featureset_add(&s, f);
			continue;
		}
		const char *sugg = tgvm_feature_suggest(name);
		if (bad.len)
			tgvm_buf_printf(&bad, ", ");
		if (sugg)
			tgvm_buf_printf(&bad, "'%s' (did you mean '%s'?)", name, sugg);
		else
			tgvm_buf_printf(&bad, "'%s'", name);
	}
	if (bad.len) {
		r = tgvm_error_set(reterr, ENOENT, "unknown CPU feature %s", bad.data);
		goto out;
	}
	*ret = s;
out:
	tgvm_strv_release(&names);
	tgvm_buf_release(&bad);
	return r;
}

char *tgvm_featureset_to_string(const struct tgvm_featureset *s, const char *sep)
{
	struct tgvm_buf b;

	tgvm_buf_init(&b);
	if (tgvm_buf_append(&b, "", 0) < 0)
		return NULL;
	TGVM_FEATURESET_FOREACH(f, s)
	{
		if (tgvm_buf_printf(&b, "%s%s", b.len ? sep : "", tgvm_feature_name(f)) < 0) {
			tgvm_buf_release(&b);
			return NULL;
		}
	}
	return b.data;
}

/*
 * What each feature needs. Sources: the Intel SDM and AMD APM (an AVX
 * instruction needs XSAVE-managed YMM state; every AVX-512 extension is an
 * extension of AVX512F; AMX tiles need XFD-managed state), Linux's
 * cpuid-deps table and QEMU's feature dependencies.
 */
static const struct {
	enum tgvm_feature f;
	enum tgvm_feature needs;
	bool convention; /* not the architecture's: what real CPUs and software assume */
} deps[] = {
    {TGVM_F_SSE, TGVM_F_FXSR},
    {TGVM_F_SSE2, TGVM_F_SSE},
    {TGVM_F_PNI, TGVM_F_SSE2},
    {TGVM_F_SSSE3, TGVM_F_PNI},
    {TGVM_F_SSE4_1, TGVM_F_SSSE3},
    {TGVM_F_SSE4_2, TGVM_F_SSE4_1},
    {TGVM_F_SSE4A, TGVM_F_PNI},
    {TGVM_F_AES, TGVM_F_SSE2},
    {TGVM_F_PCLMULQDQ, TGVM_F_SSE2},
    {TGVM_F_SHA_NI, TGVM_F_SSE2},
    {TGVM_F_GFNI, TGVM_F_SSE2},
    {TGVM_F_MMXEXT, TGVM_F_MMX},
    {TGVM_F_3DNOW, TGVM_F_MMX},
    {TGVM_F_3DNOWEXT, TGVM_F_3DNOW},
    {TGVM_F_FXSR_OPT, TGVM_F_FXSR},
    {TGVM_F_XSAVEOPT, TGVM_F_XSAVE},
    {TGVM_F_XSAVEC, TGVM_F_XSAVE},
    {TGVM_F_XGETBV1, TGVM_F_XSAVE},
    {TGVM_F_XSAVES, TGVM_F_XSAVE},
    {TGVM_F_XFD, TGVM_F_XSAVE},
    {TGVM_F_AVX, TGVM_F_XSAVE},
    {TGVM_F_F16C, TGVM_F_AVX},
    {TGVM_F_FMA, TGVM_F_AVX},
    {TGVM_F_FMA4, TGVM_F_AVX},
    {TGVM_F_XOP, TGVM_F_AVX},
    {TGVM_F_AVX2, TGVM_F_AVX},
    {TGVM_F_VAES, TGVM_F_AVX},
    {TGVM_F_VAES, TGVM_F_AES},
    {TGVM_F_VPCLMULQDQ, TGVM_F_AVX},
    {TGVM_F_VPCLMULQDQ, TGVM_F_PCLMULQDQ},
    {TGVM_F_AVX_VNNI, TGVM_F_AVX2},
    {TGVM_F_AVX512F, TGVM_F_AVX},
    {TGVM_F_AVX512DQ, TGVM_F_AVX512F},
    {TGVM_F_AVX512IFMA, TGVM_F_AVX512F},
    {TGVM_F_AVX512PF, TGVM_F_AVX512F},
    {TGVM_F_AVX512ER, TGVM_F_AVX512F},
    {TGVM_F_AVX512CD, TGVM_F_AVX512F},
    {TGVM_F_AVX512BW, TGVM_F_AVX512F},
    {TGVM_F_AVX512VL, TGVM_F_AVX512F},
    {TGVM_F_AVX512VBMI, TGVM_F_AVX512BW},
    {TGVM_F_AVX512VBMI2, TGVM_F_AVX512BW},
    {TGVM_F_AVX512VNNI, TGVM_F_AVX512F},
    {TGVM_F_AVX512BITALG, TGVM_F_AVX512BW},
    {TGVM_F_AVX512_VPOPCNTDQ, TGVM_F_AVX512F},
    {TGVM_F_AVX512_4VNNIW, TGVM_F_AVX512F},
    {TGVM_F_AVX512_4FMAPS, TGVM_F_AVX512F},
    {TGVM_F_AVX512_VP2INTERSECT, TGVM_F_AVX512F},
    {TGVM_F_AVX512_BF16, TGVM_F_AVX512BW},
    {TGVM_F_AVX512_FP16, TGVM_F_AVX512BW},
    {TGVM_F_AMX_TILE, TGVM_F_XFD},
    {TGVM_F_AMX_INT8, TGVM_F_AMX_TILE},
    {TGVM_F_AMX_BF16, TGVM_F_AMX_TILE},
    {TGVM_F_SGX1, TGVM_F_SGX},
    {TGVM_F_SGX2, TGVM_F_SGX1},
    {TGVM_F_SGXLC, TGVM_F_SGX},
    {TGVM_F_SGX_EXINFO, TGVM_F_SGX},
    {TGVM_F_SGX_DEBUG, TGVM_F_SGX},
    {TGVM_F_SGX_MODE64, TGVM_F_SGX},
    {TGVM_F_SGX_PROVISIONKEY, TGVM_F_SGX},
    {TGVM_F_SGX_TOKENKEY, TGVM_F_SGX},
    {TGVM_F_SGX_KSS, TGVM_F_SGX},
    {TGVM_F_INTEL_PT_LIP, TGVM_F_INTEL_PT},
    {TGVM_F_PTWRITE, TGVM_F_INTEL_PT},
    {TGVM_F_X2APIC, TGVM_F_APIC},
    {TGVM_F_TSC_DEADLINE, TGVM_F_APIC},
    {TGVM_F_RDTSCP, TGVM_F_TSC},
    {TGVM_F_INVTSC, TGVM_F_TSC},
    {TGVM_F_PDPE1GB, TGVM_F_LM},
    {TGVM_F_LM, TGVM_F_PAE},
    {TGVM_F_LM, TGVM_F_SSE2},
    {TGVM_F_PCID, TGVM_F_LM},
    {TGVM_F_INVPCID, TGVM_F_PCID},
    {TGVM_F_LA57, TGVM_F_LM},
    {TGVM_F_STIBP, TGVM_F_SPEC_CTRL},
    {TGVM_F_SSBD, TGVM_F_SPEC_CTRL},
    {TGVM_F_NPT, TGVM_F_SVM},
    {TGVM_F_LBRV, TGVM_F_SVM},
    {TGVM_F_SVM_LOCK, TGVM_F_SVM},
    {TGVM_F_NRIP_SAVE, TGVM_F_SVM},
    {TGVM_F_TSC_SCALE, TGVM_F_SVM},
    {TGVM_F_VMCB_CLEAN, TGVM_F_SVM},
    {TGVM_F_FLUSHBYASID, TGVM_F_SVM},
    {TGVM_F_DECODEASSISTS, TGVM_F_SVM},
    {TGVM_F_PAUSE_FILTER, TGVM_F_SVM},
    {TGVM_F_PFTHRESHOLD, TGVM_F_SVM},
    {TGVM_F_AVIC, TGVM_F_SVM},
    {TGVM_F_V_VMSAVE_VMLOAD, TGVM_F_SVM},
    {TGVM_F_VGIF, TGVM_F_SVM},
    {TGVM_F_SVME_ADDR_CHK, TGVM_F_SVM},
    {TGVM_F_XSTORE_EN, TGVM_F_XSTORE},
    {TGVM_F_XCRYPT_EN, TGVM_F_XCRYPT},
    {TGVM_F_ACE2_EN, TGVM_F_ACE2},
    {TGVM_F_PHE_EN, TGVM_F_PHE},
    {TGVM_F_PMM_EN, TGVM_F_PMM},
    {TGVM_F_RDCTL_NO, TGVM_F_ARCH_CAPABILITIES},
    {TGVM_F_IBRS_ALL, TGVM_F_ARCH_CAPABILITIES},
    {TGVM_F_RSBA, TGVM_F_ARCH_CAPABILITIES},
    {TGVM_F_SKIP_L1DFL_VMENTRY, TGVM_F_ARCH_CAPABILITIES},
    {TGVM_F_SSB_NO, TGVM_F_ARCH_CAPABILITIES},
    {TGVM_F_MDS_NO, TGVM_F_ARCH_CAPABILITIES},
    {TGVM_F_PSCHANGE_MC_NO, TGVM_F_ARCH_CAPABILITIES},
    {TGVM_F_TSX_CTRL, TGVM_F_ARCH_CAPABILITIES},
    {TGVM_F_TAA_NO, TGVM_F_ARCH_CAPABILITIES},
    {TGVM_F_SPLIT_LOCK_DETECT, TGVM_F_CORE_CAPABILITY},
    {TGVM_F_KVMCLOCK_STABLE_BIT, TGVM_F_KVMCLOCK},
    /*
     * De-facto companions: every CPU that has the first has the second, and
     * real software relies on it. Measured with the bundled guest under TCG:
     * glibc 2.36's AVX2 string functions execute BMI1 instructions (busybox
     * dies of SIGILL with avx2 but no bmi1), and Linux 6.1 hangs at boot with
     * xsave but no xsaveopt.
     */
    {TGVM_F_AVX2, TGVM_F_BMI1, true},
    {TGVM_F_XSAVE, TGVM_F_XSAVEOPT, true},
    /*
     * The psABI levels nest: glibc picks hwcaps directories by level and
     * compilers targeting a level assume the ones below. Every CPU with AVX
     * has all of x86-64-v2; every CPU with AVX-512 all of x86-64-v3.
     */
    {TGVM_F_AVX, TGVM_F_SSE4_2, true},
    {TGVM_F_AVX, TGVM_F_POPCNT, true},
    {TGVM_F_AVX, TGVM_F_CX16, true},
    {TGVM_F_AVX, TGVM_F_LAHF_LM, true},
    {TGVM_F_AVX512F, TGVM_F_AVX2, true},
    {TGVM_F_AVX512F, TGVM_F_FMA, true},
    {TGVM_F_AVX512F, TGVM_F_F16C, true},
    {TGVM_F_AVX512F, TGVM_F_BMI2, true},
    {TGVM_F_AVX512F, TGVM_F_ABM, true},
    {TGVM_F_AVX512F, TGVM_F_MOVBE, true},
};

void tgvm_feature_deps(enum tgvm_feature f, struct tgvm_featureset *ret)
{
	tgvm_featureset_clear(ret);
	for (size_t i = 0; i < ARRAY_SIZE(deps); i++)
		if (deps[i].f == f)
			tgvm_featureset_add(ret, deps[i].needs);
}

/* Add what members need, transitively; @arch_only: the architecture's needs alone. */
static void close_up(struct tgvm_featureset *s, bool arch_only)
{
	bool changed = true;

	while (changed) {
		changed = false;
		for (size_t i = 0; i < ARRAY_SIZE(deps); i++) {
			if (arch_only && deps[i].convention)
				continue;
			if (tgvm_featureset_has(s, deps[i].f) &&
			    !tgvm_featureset_has(s, deps[i].needs)) {
				tgvm_featureset_add(s, deps[i].needs);
				changed = true;
			}
		}
	}
}

/* Remove members whose needs are missing, transitively; @arch_only as above. */
static void close_down(struct tgvm_featureset *s, bool arch_only)
{
	bool changed = true;

	while (changed) {
		changed = false;
		for (size_t i = 0; i < ARRAY_SIZE(deps); i++) {
			if (arch_only && deps[i].convention)
				continue;
			if (tgvm_featureset_has(s, deps[i].f) &&
			    !tgvm_featureset_has(s, deps[i].needs)) {
				tgvm_featureset_del(s, deps[i].f);
				changed = true;
			}
		}
	}
}

void tgvm_featureset_close(struct tgvm_featureset *s)
{
	close_up(s, false);
}

void tgvm_featureset_close_down(struct tgvm_featureset *s)
{
	close_down(s, false);
}

void tgvm_featureset_close_arch(struct tgvm_featureset *s)
{
	close_up(s, true);
}

void tgvm_featureset_close_down_arch(struct tgvm_featureset *s)
{
	close_down(s, true);
}

/* The psABI levels, as the x86-64 psABI supplement defines them. */
static const enum tgvm_feature level_v1[] = {
    TGVM_F_CMOV,    TGVM_F_CX8, TGVM_F_FPU,  TGVM_F_FXSR, TGVM_F_MMX,
    TGVM_F_SYSCALL, TGVM_F_SSE, TGVM_F_SSE2, TGVM_F_LM,
};
static const enum tgvm_feature level_v2[] = {
    TGVM_F_CX16,   TGVM_F_LAHF_LM, TGVM_F_POPCNT, TGVM_F_PNI,
    TGVM_F_SSE4_1, TGVM_F_SSE4_2,  TGVM_F_SSSE3,
};
static const enum tgvm_feature level_v3[] = {
    TGVM_F_AVX, TGVM_F_AVX2, TGVM_F_BMI1,  TGVM_F_BMI2,  TGVM_F_F16C,
    TGVM_F_FMA, TGVM_F_ABM,  TGVM_F_MOVBE, TGVM_F_XSAVE,
};
static const enum tgvm_feature level_v4[] = {
    TGVM_F_AVX512F, TGVM_F_AVX512BW, TGVM_F_AVX512CD, TGVM_F_AVX512DQ, TGVM_F_AVX512VL,
};

static const struct {
	const enum tgvm_feature *f;
	size_t n;
} levels[TGVM_PSABI__MAX] = {
    [TGVM_PSABI_V1] = {level_v1, ARRAY_SIZE(level_v1)},
    [TGVM_PSABI_V2] = {level_v2, ARRAY_SIZE(level_v2)},
    [TGVM_PSABI_V3] = {level_v3, ARRAY_SIZE(level_v3)},
    [TGVM_PSABI_V4] = {level_v4, ARRAY_SIZE(level_v4)},
};

static const char *const psabi_names[TGVM_PSABI__MAX] = {
    [TGVM_PSABI_NONE] = "none",    [TGVM_PSABI_V1] = "x86-64-v1", [TGVM_PSABI_V2] = "x86-64-v2",
    [TGVM_PSABI_V3] = "x86-64-v3", [TGVM_PSABI_V4] = "x86-64-v4",
};

const char *tgvm_psabi_to_string(enum tgvm_psabi_level l)
{
	if ((unsigned)l >= TGVM_PSABI__MAX)
		return "?";
	return psabi_names[l];
}

int tgvm_psabi_from_string(const char *s)
{
	for (int l = 0; l < TGVM_PSABI__MAX; l++)
		if (!strcasecmp(s, psabi_names[l]) || (l && !strcasecmp(s, psabi_names[l] + 7)))
			return l;
	if (!strcasecmp(s, "x86-64"))
		return TGVM_PSABI_V1;
	return -EINVAL;
}

void tgvm_psabi_set(enum tgvm_psabi_level l, struct tgvm_featureset *ret)
{
	tgvm_featureset_clear(ret);
	for (int i = TGVM_PSABI_V1; i <= (int)l && i < TGVM_PSABI__MAX; i++)
		for (size_t j = 0; j < levels[i].n; j++)
			tgvm_featureset_add(ret, levels[i].f[j]);
}

enum tgvm_psabi_level tgvm_psabi_supported(const struct tgvm_featureset *s)
{
	enum tgvm_psabi_level best = TGVM_PSABI_NONE;
	struct tgvm_featureset lv;

	for (int l = TGVM_PSABI_V1; l < TGVM_PSABI__MAX; l++) {
		tgvm_psabi_set(l, &lv);
		if (!tgvm_featureset_subset(&lv, s))
			break;
		best = l;
	}
	return best;
}

enum tgvm_psabi_level tgvm_psabi_required(const struct tgvm_featureset *s)
{
	struct tgvm_featureset all, mine, lv;

	tgvm_psabi_set(TGVM_PSABI_V4, &all);
	mine = *s;
	tgvm_featureset_intersect(&mine, &all);
	for (int l = TGVM_PSABI_V1; l < TGVM_PSABI__MAX; l++) {
		tgvm_psabi_set(l, &lv);
		if (tgvm_featureset_subset(&mine, &lv))
			return l;
	}
	return TGVM_PSABI_V4;
}

void tgvm_linux_baseline(struct tgvm_featureset *ret)
{
	static const enum tgvm_feature sys[] = {
	    TGVM_F_DE,    TGVM_F_PSE,     TGVM_F_TSC,  TGVM_F_MSR,        TGVM_F_PAE, TGVM_F_MCE,
	    TGVM_F_APIC,  TGVM_F_SEP,     TGVM_F_MTRR, TGVM_F_PGE,        TGVM_F_MCA, TGVM_F_PAT,
	    TGVM_F_PSE36, TGVM_F_CLFLUSH, TGVM_F_NX,   TGVM_F_HYPERVISOR,
	};

	tgvm_psabi_set(TGVM_PSABI_V1, ret);
	for (size_t i = 0; i < ARRAY_SIZE(sys); i++)
		tgvm_featureset_add(ret, sys[i]);
	tgvm_featureset_close(ret);
}

static const struct {
	const char *name;
	const char *cpuid;
} vendors[TGVM_VENDOR__MAX] = {
    [TGVM_VENDOR_UNKNOWN] = {"unknown", ""},
    [TGVM_VENDOR_INTEL] = {"intel", "GenuineIntel"},
    [TGVM_VENDOR_AMD] = {"amd", "AuthenticAMD"},
    [TGVM_VENDOR_OTHER] = {"other", ""},
};

const char *tgvm_vendor_to_string(enum tgvm_vendor v)
{
	if ((unsigned)v >= TGVM_VENDOR__MAX)
		return "?";
	return vendors[v].name;
}

const char *tgvm_vendor_cpuid_string(enum tgvm_vendor v)
{
	if ((unsigned)v >= TGVM_VENDOR__MAX)
		return "";
	return vendors[v].cpuid;
}

int tgvm_vendor_from_string(const char *s)
{
	if (!s)
		return -EINVAL;
	for (int v = 0; v < TGVM_VENDOR__MAX; v++)
		if (!strcasecmp(s, vendors[v].name) ||
		    (*vendors[v].cpuid && !strcmp(s, vendors[v].cpuid)))
			return v;
	/* Other x86 vendors seen in CPUID: Hygon, Zhaoxin/Centaur, VIA. */
	if (!strcmp(s, "HygonGenuine") || !strcmp(s, "CentaurHauls") || !strcmp(s, "  Shanghai  "))
		return TGVM_VENDOR_OTHER;
	return -EINVAL;
}
