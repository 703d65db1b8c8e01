// SPDX-License-Identifier: MIT
/* The feature table: lookup by id and by any of a feature's names, suggestions. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tgvm/cpu.h"
#include "util/util.h"

#define FF_HV     TGVM_FF_HV
#define FF_SYS    TGVM_FF_SYS
#define FF_NOQEMU TGVM_FF_NOQEMU
#define EAX       TGVM_REG_EAX
#define EBX       TGVM_REG_EBX
#define ECX       TGVM_REG_ECX
#define EDX       TGVM_REG_EDX
#define MSR       TGVM_REG_MSR

static const struct tgvm_feature_info feature_table[TGVM_F__MAX] = {
#define FEAT(id_, qn, ln, leaf_, sub, reg_, bit_, fl)                                              \
	[TGVM_F_##id_] = {.id = #id_,                                                              \
	                  .qemu_name = qn,                                                         \
	                  .linux_name = ln,                                                        \
	                  .leaf = leaf_,                                                           \
	                  .subleaf = sub,                                                          \
	                  .reg = reg_,                                                             \
	                  .bit = bit_,                                                             \
	                  .flags = fl},
#include "tgvm/features.def"
#undef FEAT
};

/* Other spellings in use: QEMU's aliases, assembler/compiler names, Zydis names. */
static const struct {
	const char *alias;
	enum tgvm_feature f;
} aliases[] = {
    {"xd", TGVM_F_NX},
    {"i64", TGVM_F_LM},
    {"pclmuldq", TGVM_F_PCLMULQDQ},
    {"pclmul", TGVM_F_PCLMULQDQ},
    {"ffxsr", TGVM_F_FXSR_OPT},
    {"sse3", TGVM_F_PNI},
    {"lzcnt", TGVM_F_ABM},
    {"sha", TGVM_F_SHA_NI},
    {"bmi", TGVM_F_BMI1},
    {"cmpxchg16b", TGVM_F_CX16},
    {"cmpxchg8b", TGVM_F_CX8},
    {"lahf", TGVM_F_LAHF_LM},
    {"sse41", TGVM_F_SSE4_1},
    {"sse42", TGVM_F_SSE4_2},
    {"avx512vpopcntdq", TGVM_F_AVX512_VPOPCNTDQ},
    {"avx512fp16", TGVM_F_AVX512_FP16},
    {"avx512bf16", TGVM_F_AVX512_BF16},
    {"avx5124fmaps", TGVM_F_AVX512_4FMAPS},
    {"avx5124vnniw", TGVM_F_AVX512_4VNNIW},
    {"avx512vp2intersect", TGVM_F_AVX512_VP2INTERSECT},
    {"avxvnni", TGVM_F_AVX_VNNI},
    {"monitorx", TGVM_F_MONITORX},
    {"rdrnd", TGVM_F_RDRAND},
    {"fsgs", TGVM_F_FSGSBASE},
    {"prefetchw", TGVM_F_3DNOWPREFETCH},
    {"constant-tsc", TGVM_F_INVTSC},
    {"shstk", TGVM_F_CET_SS},
    {"keylocker", TGVM_F_KEYLOCKER},
    {"sgx-lc", TGVM_F_SGXLC},
    {"kvmclock2", TGVM_F_KVMCLOCK},
    {"mmx-ext", TGVM_F_MMXEXT},
};

const struct tgvm_feature_info *tgvm_feature_info(enum tgvm_feature f)
{
	if ((unsigned)f >= TGVM_F__MAX)
		return NULL;
	return &feature_table[f];
}

const char *tgvm_feature_name(enum tgvm_feature f)
{
	if ((unsigned)f >= TGVM_F__MAX)
		return "?";
	return feature_table[f].qemu_name;
}

const char *tgvm_cpuid_reg_to_string(enum tgvm_cpuid_reg r)
{
	static const char *const names[TGVM_REG__MAX] = {"eax", "ebx", "ecx", "edx", "msr"};

	if ((unsigned)r >= TGVM_REG__MAX)
		return "?";
	return names[r];
}

/* Compare names case-insensitively with '-', '_' and '.' all equal. */
static bool name_eq(const char *a, const char *b)
{
	for (;; a++, b++) {
		int ca = tolower((unsigned char)*a), cb = tolower((unsigned char)*b);

		if (ca == '_' || ca == '.')
			ca = '-';
		if (cb == '_' || cb == '.')
			cb = '-';
		if (ca != cb)
			return false;
		if (!ca)
			return true;
	}
}

static const char *linux_name(const struct tgvm_feature_info *fi)
{
	return fi->linux_name ? fi->linux_name : fi->qemu_name;
}

int tgvm_feature_from_name(const char *name)
{
	if (!name || !*name)
		return -ENOENT;
	for (int i = 0; i < TGVM_F__MAX; i++) {
		const char *ln = linux_name(&feature_table[i]);

		if (name_eq(name, feature_table[i].qemu_name) || (*ln && name_eq(name, ln)))
			return i;
	}
	for (size_t i = 0; i < ARRAY_SIZE(aliases); i++)
		if (name_eq(name, aliases[i].alias))
			return aliases[i].f;
	return -ENOENT;
}

const char *tgvm_feature_suggest(const char *name)
{
	const char *best = NULL;
	int best_d = 1000;
	char low[64];
	size_t n = strlen(name);

	if (n >= sizeof(low))
		return NULL;
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	for (int i = 0; i < TGVM_F__MAX; i++) {
		const char *cand = feature_table[i].qemu_name;
		/* Ties go to a name of the same length: "avx3" is "avx2", not "avx". */
		int d = tgvm_edit_distance(low, cand) * 2 + (strlen(cand) != n);

		if (d < best_d) {
			best_d = d;
			best = feature_table[i].qemu_name;
		}
	}
	/* Close enough to be a typo: at most a third of the name, at least 1. */
	if (best && best_d / 2 <= TGVM_MAX(1, (int)n / 3))
		return best;
	return NULL;
}
