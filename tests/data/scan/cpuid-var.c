// SPDX-License-Identifier: MIT
/* Corpus: hand-written cpuid/xgetbv detection kept in a capability variable
 * (as OpenSSL, zstd, libjpeg-turbo do), tested before calling AVX2 and SHA
 * code. Also built stripped. AVX2 and SHA are guarded. */
#include <cpuid.h>
#include <immintrin.h>
#include <stdio.h>

static unsigned int cpu_caps[2];

__attribute__((noinline)) static void detect(unsigned int *caps)
{
	unsigned int a, b, c, d;

	caps[0] = caps[1] = 0;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d))
		caps[1] = b;
	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE)) {
		unsigned int lo, hi;

		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		if ((lo & 6) == 6)
			caps[0] = c;
	}
}

__attribute__((target("avx2"), noinline)) static int avx2_sum(const int *v)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)v);
	/* vpermd with a run-time index: no compiler turns this into scalar code */
	__m256i b = _mm256_permutevar8x32_epi32(a, _mm256_set1_epi32(v[0] & 7));
	int out[8];

	_mm256_storeu_si256((__m256i *)out, b);
	return out[5];
}

__attribute__((target("sha,sse4.1"), noinline)) static int sha_round(const int *v)
{
	__m128i a = _mm_loadu_si128((const __m128i *)v);
	__m128i b = _mm_sha256msg1_epu32(a, a);

	return _mm_extract_epi32(b, 1);
}

int main(int argc, char **argv)
{
	int v[8];
	int r = 0;

	(void)argv;
	for (int i = 0; i < 8; i++) /* unknown to the compiler */
		v[i] = argc + i;

	detect(cpu_caps);
	if ((cpu_caps[1] & bit_AVX2) && (cpu_caps[0] & bit_AVX))
		r += avx2_sum(v);
	if (cpu_caps[1] & bit_SHA)
		r += sha_round(v);
	printf("%d\n", r);
	return 0;
}
