// SPDX-License-Identifier: MIT
/* Corpus, patterns 2 and 5: a constructor asks a CPU-information function
 * (cpuid, xgetbv, result cached in a global) for the best variant and keeps
 * its index and the function picked from a table of variants; the program
 * calls through the pointer, and a test hook steps the index down (as QEMU's
 * buffer_is_zero does). The index is a capability: AVX2 is guarded. */
#include <cpuid.h>
#include <immintrin.h>
#include <stdio.h>

#define INFO_SSE2 1u
#define INFO_AVX2 2u

typedef int (*sum_fn)(const int *v);

static unsigned int cpuinfo;
static unsigned int used_accel;
static sum_fn accel;

__attribute__((noinline)) unsigned int cpuinfo_get(void)
{
	unsigned int a, b, c, d, info = INFO_SSE2;

	if (cpuinfo)
		return cpuinfo;
	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE) && (c & bit_AVX)) {
		unsigned int lo, hi;

		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		if ((lo & 6) == 6 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX2))
			info |= INFO_AVX2;
	}
	cpuinfo = info;
	return info;
}

__attribute__((noinline)) static int sum_plain(const int *v)
{
	int s = 0;

	for (int i = 0; i < 8; i++)
		s += v[i] * (i + 1);
	return s;
}

__attribute__((noinline)) static int sum_sse2(const int *v)
{
	return sum_plain(v);
}

__attribute__((target("avx2"), noinline)) static int sum_avx2(const int *v)
{
	__m256i a = _mm256_loadu_si256((const __m256i *)v);
	__m256i m = _mm256_mullo_epi32(a, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8));
	int out[8], s = 0;

	_mm256_storeu_si256((__m256i *)out, m);
	for (int i = 0; i < 8; i++)
		s += out[i];
	return s;
}

static const sum_fn accel_table[] = {sum_plain, sum_sse2, sum_avx2};

static unsigned int best_accel(void)
{
	unsigned int info = cpuinfo_get();

	if (info & INFO_AVX2)
		return 2;
	return info & INFO_SSE2 ? 1 : 0;
}

__attribute__((constructor)) static void init_accel(void)
{
	used_accel = best_accel();
	accel = accel_table[used_accel];
}

/* a test hook: the next slower variant, 0 when there is none */
__attribute__((noinline)) int next_accel(void)
{
	if (used_accel == 0)
		return 0;
	accel = accel_table[--used_accel];
	return 1;
}

int main(int argc, char **argv)
{
	int v[8];

	(void)argv;
	for (int i = 0; i < 8; i++)
		v[i] = argc + i;
	if (argc > 5)
		next_accel();
	printf("%d\n", accel(v));
	return 0;
}
