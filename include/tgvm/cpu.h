/* SPDX-License-Identifier: MIT */
/*
 * The CPU vocabulary every part of tgvm speaks: features (CPUID bits with their
 * QEMU and Linux names), fixed-size feature sets and their algebra, the
 * dependency closure, the x86-64 psABI levels, vendors and named CPU models.
 */
#ifndef TGVM_CPU_H
#define TGVM_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tgvm/error.h"

enum tgvm_feature {
#define FEAT(id, qn, ln, leaf, sub, reg, bit, fl) TGVM_F_##id,
#include "tgvm/features.def"
#undef FEAT
	TGVM_F__MAX
};

enum tgvm_cpuid_reg {
	TGVM_REG_EAX,
	TGVM_REG_EBX,
	TGVM_REG_ECX,
	TGVM_REG_EDX,
	TGVM_REG_MSR,
	TGVM_REG__MAX
};

/* Feature flags (see tgvm/features.def). */
#define TGVM_FF_HV     (1u << 0) /* provided by the hypervisor on any host */
#define TGVM_FF_SYS    (1u << 1) /* kernel-only: no user instruction needs it */
#define TGVM_FF_NOQEMU (1u << 2) /* QEMU 7.2 cannot set it */

struct tgvm_feature_info {
	const char *id;         /* "SSE4_1" */
	const char *qemu_name;  /* "sse4.1" */
	const char *linux_name; /* "sse4_1"; "" when Linux prints none */
	uint32_t leaf;          /* CPUID leaf, or MSR index for TGVM_REG_MSR */
	uint32_t subleaf;
	enum tgvm_cpuid_reg reg;
	uint8_t bit;
	unsigned flags;
};

#define TGVM_FEATURESET_WORDS ((TGVM_F__MAX + 63) / 64)

/* A set of features; plain value type, copy freely. Zero-initialised is empty. */
struct tgvm_featureset {
	uint64_t w[TGVM_FEATURESET_WORDS];
};

/* Feature lookup. Names match QEMU's, Linux's, and QEMU's aliases, ignoring case
 * and treating '-', '_' and '.' alike. Returns the feature or -ENOENT. O(n). */
const struct tgvm_feature_info *tgvm_feature_info(enum tgvm_feature f);
const char *tgvm_feature_name(enum tgvm_feature f);
int tgvm_feature_from_name(const char *name);
/* Closest known name to @name for "did you mean", or NULL if nothing is close. */
const char *tgvm_feature_suggest(const char *name);
const char *tgvm_cpuid_reg_to_string(enum tgvm_cpuid_reg r);

/* Set algebra; all O(words). */
static inline void tgvm_featureset_clear(struct tgvm_featureset *s)
{
	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++)
		s->w[i] = 0;
}
static inline void tgvm_featureset_add(struct tgvm_featureset *s, enum tgvm_feature f)
{
	s->w[f / 64] |= 1ULL << (f % 64);
}
static inline void tgvm_featureset_del(struct tgvm_featureset *s, enum tgvm_feature f)
{
	s->w[f / 64] &= ~(1ULL << (f % 64));
}
static inline bool tgvm_featureset_has(const struct tgvm_featureset *s, enum tgvm_feature f)
{
	return (s->w[f / 64] >> (f % 64)) & 1;
}
void tgvm_featureset_union(struct tgvm_featureset *dst, const struct tgvm_featureset *a);
void tgvm_featureset_intersect(struct tgvm_featureset *dst, const struct tgvm_featureset *a);
void tgvm_featureset_minus(struct tgvm_featureset *dst, const struct tgvm_featureset *a);
bool tgvm_featureset_equal(const struct tgvm_featureset *a, const struct tgvm_featureset *b);
/* true when every feature of @a is in @b */
bool tgvm_featureset_subset(const struct tgvm_featureset *a, const struct tgvm_featureset *b);
bool tgvm_featureset_empty(const struct tgvm_featureset *s);
int tgvm_featureset_count(const struct tgvm_featureset *s);
/* Next member >= @from, or -1. Iterate: for (f = next(s,0); f >= 0; f = next(s,f+1)). */
int tgvm_featureset_next(const struct tgvm_featureset *s, int from);
#define TGVM_FEATURESET_FOREACH(f, s)                                                              \
	for (int f = tgvm_featureset_next((s), 0); f >= 0; f = tgvm_featureset_next((s), f + 1))
/* Keep only features without any of the flags in @mask. */
void tgvm_featureset_drop_flags(struct tgvm_featureset *s, unsigned mask);
/* The set of all features having any flag of @mask. */
void tgvm_featureset_with_flags(struct tgvm_featureset *ret, unsigned mask);

/*
 * Parse "avx2,bmi2 sse4.1" (comma or space separated) into @ret (cleared first).
 * Unknown names fail with -ENOENT; @reterr names each and the closest known one.
 */
int tgvm_featureset_parse(const char *list, struct tgvm_featureset *ret, struct tgvm_error *reterr);
/* Names joined by @sep, in table order. Caller frees. NULL on ENOMEM. */
char *tgvm_featureset_to_string(const struct tgvm_featureset *s, const char *sep);

/*
 * Dependencies. tgvm_featureset_close() adds every feature a member needs,
 * transitively (avx2 -> avx -> xsave), so the set is never self-contradictory.
 * tgvm_featureset_close_down() instead removes every member whose needs are
 * not all present (taking avx away takes avx2 away). Both O(deps * depth).
 */
void tgvm_featureset_close(struct tgvm_featureset *s);
void tgvm_featureset_close_down(struct tgvm_featureset *s);
/*
 * The same over the architecture's dependencies alone (an AVX instruction
 * needs XSAVE-managed state; SSE4.2 extends SSE4.1), without the conventions
 * the table also holds: de-facto companions (avx2 with bmi1, xsave with
 * xsaveopt) and the nesting of the psABI levels (avx with sse4.2, popcnt).
 * A CPU missing a conventional companion is unusual but runs; one missing an
 * architectural need cannot be built. O(deps * depth).
 */
void tgvm_featureset_close_arch(struct tgvm_featureset *s);
void tgvm_featureset_close_down_arch(struct tgvm_featureset *s);
/* Direct needs of @f into @ret (cleared first). */
void tgvm_feature_deps(enum tgvm_feature f, struct tgvm_featureset *ret);

/* x86-64 psABI micro-architecture levels. */
enum tgvm_psabi_level {
	TGVM_PSABI_NONE, /* not even x86-64 baseline */
	TGVM_PSABI_V1,
	TGVM_PSABI_V2,
	TGVM_PSABI_V3,
	TGVM_PSABI_V4,
	TGVM_PSABI__MAX
};
const char *tgvm_psabi_to_string(enum tgvm_psabi_level l); /* "x86-64-v2" */
int tgvm_psabi_from_string(const char *s);                 /* level or -EINVAL */
/* The features a level promises (cumulative: v3 includes v2 and v1). */
void tgvm_psabi_set(enum tgvm_psabi_level l, struct tgvm_featureset *ret);
/* Highest level all of whose features @s has (what a CPU supports). */
enum tgvm_psabi_level tgvm_psabi_supported(const struct tgvm_featureset *s);
/* Lowest level whose features cover the level-features in @s (what code needs). */
enum tgvm_psabi_level tgvm_psabi_required(const struct tgvm_featureset *s);

/* What a 64-bit Linux guest kernel needs to boot: x86-64-v1 plus the system
 * features it relies on (paging, APIC, TSC, MSRs, SYSCALL, NX). */
void tgvm_linux_baseline(struct tgvm_featureset *ret);

enum tgvm_vendor {
	TGVM_VENDOR_UNKNOWN,
	TGVM_VENDOR_INTEL,
	TGVM_VENDOR_AMD,
	TGVM_VENDOR_OTHER,
	TGVM_VENDOR__MAX
};
const char *tgvm_vendor_to_string(enum tgvm_vendor v);    /* "intel" */
int tgvm_vendor_from_string(const char *s);               /* accepts "GenuineIntel" too */
const char *tgvm_vendor_cpuid_string(enum tgvm_vendor v); /* "GenuineIntel" */

#endif
