// SPDX-License-Identifier: MIT
/* Corpus: the capability kept in a heap structure's field at a small offset,
 * as zstd keeps "int bmi2" at offset 8 of ZSTD_CCtx. cpuid runs once when the
 * context is made; later functions load c->bmi2, branch on it, and hand it
 * down as an argument. A helper that every caller passes bmi2 = 0 (zstd's
 * dictionary loading) never takes its BMI2 side. BMI2 is guarded.
 * Negative controls in the same program: another structure with a flag at
 * the same offset 8, set from the command line, guards LZCNT code (required);
 * and the side of a zeroed argument that does run uses POPCNT (required).
 * Built with -DFLAG_FROM_ARGS, c->bmi2 comes from argc: BMI2 is then required
 * (and used when run with no arguments). */
#include <cpuid.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __clang__ /* clang has no noipa: it may fold table_fill's constant away */
#define NOIPA noinline
#else
#define NOIPA noipa
#endif

struct ctx {
	int stage, changed;
	int bmi2; /* offset 8: from cpuid */
	char pad[0x200 - 12];
	unsigned *tab;       /* 0x200 */
	unsigned n;          /* 0x208 */
	unsigned seed;       /* 0x20c */
	unsigned long total; /* 0x210 */
};

/* a flag at the same offset in another structure: not a CPU check */
struct opts {
	int level, verbose;
	int fast; /* offset 8: from the command line */
	char pad[0x300 - 12];
	unsigned *buf;     /* 0x300 */
	unsigned len;      /* 0x308 */
	unsigned long sum; /* 0x310 */
};

static inline __attribute__((always_inline, unused)) int has_bmi2(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return (b & bit_BMI2) && (b & bit_BMI);
}

__attribute__((noinline)) static struct ctx *ctx_new(unsigned *tab, unsigned n, int argc)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->tab = tab;
	c->n = n;
	c->seed = (unsigned)argc * 7u;
#ifdef FLAG_FROM_ARGS
	c->bmi2 = argc < 3;
#else
	c->bmi2 = has_bmi2();
#endif
	return c;
}

__attribute__((target("bmi2"), noinline)) static unsigned sum_bmi2(const unsigned *v, unsigned n)
{
	unsigned s = 0;

	for (unsigned i = 0; i < n; i++)
		s += _bzhi_u32(v[i], i + 3);
	return s;
}

__attribute__((noinline)) static unsigned sum_plain(const unsigned *v, unsigned n)
{
	unsigned s = 0;

	for (unsigned i = 0; i < n; i++)
		s += v[i] & ((1u << (i + 3)) - 1);
	return s;
}

/* the flag handed down as an argument */
__attribute__((noinline)) static unsigned sum_any(const unsigned *v, unsigned n, int bmi2)
{
	if (bmi2)
		return sum_bmi2(v, n) + 1;
	return sum_plain(v, n) + 1;
}

/* the field tested where the context is used */
__attribute__((noinline)) static void ctx_run(struct ctx *c)
{
	if (c->bmi2)
		c->total += sum_bmi2(c->tab, c->n);
	else
		c->total += sum_plain(c->tab, c->n);
	c->total += sum_any(c->tab, c->n - (c->seed & 1), c->bmi2);
}

__attribute__((target("popcnt"), noinline)) static unsigned pop_sum(const unsigned *v, unsigned n)
{
	unsigned s = 0;

	for (unsigned i = 0; i < n; i++)
		s += (unsigned)__builtin_popcount(v[i]);
	return s;
}

/* every caller passes bmi2 = 0: the BMI2 side never runs, the other does */
__attribute__((NOIPA)) static unsigned table_fill(const unsigned *v, unsigned n, int bmi2)
{
	if (bmi2)
		return sum_bmi2(v, n) ^ 1;
	return pop_sum(v, n) ^ 1;
}

__attribute__((target("lzcnt"), noinline)) static unsigned lz_sum(const unsigned *v, unsigned n)
{
	unsigned s = 0;

	for (unsigned i = 0; i < n; i++)
		s += (unsigned)__builtin_clz(v[i] | 1);
	return s;
}

__attribute__((noinline)) static unsigned lz_plain(const unsigned *v, unsigned n)
{
	unsigned s = 0;

	for (unsigned i = 0; i < n; i++)
		for (unsigned x = v[i] | 1; !(x & 0x80000000u); x <<= 1)
			s++;
	return s;
}

/* the decoy: offset 8 of struct opts guards LZCNT, which stays required */
__attribute__((noinline)) static void opts_run(struct opts *o)
{
	if (o->fast)
		o->sum += lz_sum(o->buf, o->len);
	else
		o->sum += lz_plain(o->buf, o->len);
}

int main(int argc, char **argv)
{
	unsigned v[8];
	struct ctx *c;
	struct opts *o = calloc(1, sizeof(*o));
	unsigned long r;

	(void)argv;
	for (int i = 0; i < 8; i++) /* unknown to the compiler */
		v[i] = (unsigned)(argc * 77 + i * 13);
	c = ctx_new(v, 8, argc);
	if (!c || !o)
		return 1;
	o->buf = v;
	o->len = 8;
	o->fast = argc > 2;
	ctx_run(c);
	opts_run(o);
	r = c->total + o->sum + table_fill(v, 8, 0) + table_fill(v + 2, 6, 0);
	printf("%lu\n", r);
	free(c);
	free(o);
	return 0;
}
