// SPDX-License-Identifier: MIT
/* Corpus: a GNU ifunc whose resolver picks an AVX2 implementation only on
 * CPUs that have it. AVX2 is guarded. */
#include <immintrin.h>
#include <stdio.h>

__attribute__((target("avx2"), noinline)) static int add_avx2(const int *v)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)v);
	__m256i b = _mm256_add_epi32(a, a);
	int out[8];

	_mm256_storeu_si256((__m256i *)out, b);
	return out[3];
}

__attribute__((noinline)) static int add_generic(const int *v)
{
	return v[3] * 2;
}

static int (*resolve_add(void))(const int *)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") ? add_avx2 : add_generic;
}

int add(const int *v) __attribute__((ifunc("resolve_add")));

int main(int argc, char **argv)
{
	int v[8];

	(void)argv;
	for (int i = 0; i < 8; i++) /* unknown to the compiler */
		v[i] = argc + i;

	printf("%d\n", add(v));
	return 0;
}
