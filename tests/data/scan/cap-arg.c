// SPDX-License-Identifier: MIT
/* Corpus: the capability travels as a function argument, as in zstd. cpuid
 * runs once; its answer is handed down as an "int bmi2" in a register, as a
 * bit of an "int flags" passed on the stack (the eighth argument), through a
 * function pointer picked at run time, and as the constant 1 that the BMI2
 * twin of a function passes to its helper (zstd's FSE_decompress_wksp_body
 * pattern). Each callee branches on it before BMI2 code. BMI2 is guarded.
 * Built with -DFLAG_FROM_ARGS the flag comes from argc instead: BMI2 is then
 * required (and used when run with no arguments). */
#include <cpuid.h>
#include <immintrin.h>
#include <stdio.h>

#define FLAG_BMI2 1
#define FLAG_FAST 2

__attribute__((noinline, unused)) static int detect_bmi2(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return (b & bit_BMI2) && (b & bit_BMI);
}

/* the helper's two bodies, picked by its last argument */
__attribute__((target("bmi2"), noinline)) static unsigned helper_bmi2(unsigned x, unsigned n)
{
	return _bzhi_u32(x, n) + (x >> 3);
}

__attribute__((noinline)) static unsigned helper_plain(unsigned x, unsigned n)
{
	return (n >= 32 ? x : x & ((1u << n) - 1)) + (x >> 3);
}

__attribute__((noinline)) static unsigned helper(unsigned x, unsigned n, int bmi2)
{
	if (bmi2)
		return helper_bmi2(x, n);
	return helper_plain(x, n);
}

/* twins of one body: the BMI2 one hands the helper a constant 1 */
__attribute__((target("bmi2"), noinline)) static unsigned body_bmi2(const unsigned *v, int n)
{
	unsigned s = 0;

	for (int i = 0; i < n; i++)
		s += _bzhi_u32(v[i], (unsigned)i + 3) + helper(v[i], (unsigned)n, 1);
	return s;
}

__attribute__((noinline)) static unsigned body_plain(const unsigned *v, int n)
{
	unsigned s = 0;

	for (int i = 0; i < n; i++)
		s += (v[i] & ((1u << (i + 3)) - 1)) + helper(v[i], (unsigned)n, 0);
	return s;
}

/* "int bmi2" in a register */
__attribute__((noinline)) static unsigned decode(const unsigned *v, int n, int bmi2)
{
	if (bmi2)
		return body_bmi2(v, n);
	return body_plain(v, n);
}

/* a flag word as the eighth argument: on the stack */
__attribute__((noinline)) static unsigned decode_many(const unsigned *v, int n, int a, int b,
                                                      int c, int d, int e, int flags)
{
	unsigned s = (unsigned)(a + b + c + d + e);

	if (flags & FLAG_BMI2)
		return s + body_bmi2(v, n);
	return s + body_plain(v, n);
}

__attribute__((noinline)) static unsigned decode_few(const unsigned *v, int n, int a, int b,
                                                     int c, int d, int e, int flags)
{
	unsigned s = (unsigned)(a * b + c * d + e);

	if (flags & FLAG_BMI2)
		return s ^ body_bmi2(v, n);
	return s ^ body_plain(v, n);
}

typedef unsigned (*decode_fn)(const unsigned *, int, int, int, int, int, int, int);

/* the same through a pointer chosen at run time (zstd's huf_compress) */
__attribute__((noinline)) static unsigned decode_any(const unsigned *v, int n, int flags)
{
	decode_fn f = n > 3 ? decode_many : decode_few;

	return f(v, n, 1, 2, 3, 4, 5, flags);
}

int main(int argc, char **argv)
{
	unsigned v[8];
#ifdef FLAG_FROM_ARGS
	/* the negative control: the same flag, not from a CPU check */
	int bmi2 = argc < 3;
#else
	int bmi2 = detect_bmi2();
#endif
	int flags = (bmi2 ? FLAG_BMI2 : 0) | (argc > 5 ? FLAG_FAST : 0);
	unsigned r;

	(void)argv;
	for (int i = 0; i < 8; i++) /* unknown to the compiler */
		v[i] = (unsigned)(argc * 77 + i * 13);
	r = decode(v, 8, bmi2);
	r += decode_many(v, 6, argc, 2, 3, 4, 5, flags);
	r += decode_any(v, argc + 4, flags);
	printf("%u\n", r);
	return 0;
}
