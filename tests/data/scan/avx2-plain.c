// SPDX-License-Identifier: MIT
/* Corpus: AVX2 used with no CPU check at all (built with -mavx2). Required. */
#include <immintrin.h>
#include <stdio.h>

__attribute__((noinline)) static int sum8(const int *v)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)v);
	__m256i b = _mm256_add_epi32(a, _mm256_set1_epi32(1));
	int out[8];

	_mm256_storeu_si256((__m256i *)out, b);
	return out[0] + out[7];
}

int main(int argc, char **argv)
{
	int v[8];

	(void)argv;
	for (int i = 0; i < 8; i++) /* unknown to the compiler */
		v[i] = argc + i;

	printf("%d\n", sum8(v));
	return 0;
}
