// SPDX-License-Identifier: MIT
/* Corpus: __builtin_cpu_supports guarding a call to an AVX2 function (and an
 * unguarded POPCNT function, built with -mpopcnt, that is required). */
#include <immintrin.h>
#include <stdio.h>

__attribute__((target("avx2"), noinline)) static int mul_avx2(const int *v)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)v);
	__m256i b = _mm256_mullo_epi32(a, a);
	int out[8];

	_mm256_storeu_si256((__m256i *)out, b);
	return out[2];
}

__attribute__((target("popcnt"), noinline)) static int bits(unsigned long x)
{
	return __builtin_popcountl(x);
}

int main(int argc, char **argv)
{
	int v[8];
	int r = bits((unsigned long)argc * 0x1234567);

	(void)argv;
	for (int i = 0; i < 8; i++) /* unknown to the compiler */
		v[i] = argc + i;
	if (__builtin_cpu_supports("avx2"))
		r += mul_avx2(v);
	else
		r += v[2] * v[2];
	printf("%d\n", r);
	return 0;
}
