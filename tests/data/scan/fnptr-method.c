// SPDX-License-Identifier: MIT
/* Corpus, pattern 1: the CPU check in one function, the use in another,
 * reached through a function pointer kept in an object (a random-number
 * device that picks RDSEED, RDRAND or a software generator when it is
 * constructed, as C++ standard libraries do, and calls it through the pointer
 * later); another method only compares the pointer with them. The checks
 * follow a vendor test; the choice between two RDSEED
 * variants (one falling back to RDRAND by a direct call) is a cmov. Both are
 * guarded. Built with -DCOMPARE_THEN_CALL, the compared address is also
 * called without a check: RDRAND is then required. */
#include <cpuid.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>

struct rnd {
	unsigned int (*func)(void *);
	void *arg;
	unsigned int state;
};

__attribute__((noinline)) static unsigned int hw_rdrand(void *arg)
{
	unsigned int v;

	(void)arg;
	for (int i = 0; i < 100; i++)
		if (_rdrand32_step(&v))
			return v;
	return 0;
}

__attribute__((noinline, target("rdseed"))) static unsigned int hw_rdseed(void *fallback)
{
	unsigned int v;

	for (int i = 0; i < 100; i++)
		if (_rdseed32_step(&v))
			return v;
	if (fallback)
		return ((unsigned int (*)(void *))fallback)(NULL);
	return 0;
}

__attribute__((noinline, target("rdseed"))) static unsigned int hw_rdseed_rdrand(void *arg)
{
	unsigned int v;

	(void)arg;
	for (int i = 0; i < 100; i++)
		if (_rdseed32_step(&v))
			return v;
	return hw_rdrand(NULL);
}

__attribute__((noinline)) static unsigned int sw_rand(void *arg)
{
	struct rnd *r = arg;

	r->state = r->state * 1103515245u + 12345u;
	return r->state >> 16;
}

/* The constructor: probe the CPU once (on known vendors), keep the choice. */
__attribute__((noinline)) static void rnd_init(struct rnd *r, int want_hw)
{
	unsigned int a, b, c, d;

	r->func = sw_rand;
	r->arg = r;
	r->state = 1;
	if (!want_hw)
		return;
	if (__get_cpuid_max(0, &b) > 0 && (b == signature_INTEL_ebx || b == signature_AMD_ebx)) {
		__cpuid_count(7, 0, a, b, c, d);
		if (b & bit_RDSEED) {
			__cpuid(1, a, b, c, d);
			if (c & bit_RDRND) {
				r->func = hw_rdseed_rdrand;
				return;
			}
			r->func = hw_rdseed;
			return;
		}
	}
	if (__get_cpuid_max(0, &b) > 0 && (b == signature_INTEL_ebx || b == signature_AMD_ebx)) {
		__cpuid(1, a, b, c, d);
		if (c & bit_RDRND) {
			r->func = hw_rdrand;
			return;
		}
	}
}

/* Another method compares the pointer with the hardware sources (as
 * std::random_device::entropy() does): an address compared is no way in. */
__attribute__((noinline)) static double rnd_entropy(const struct rnd *r)
{
#ifdef COMPARE_THEN_CALL
	/* the negative control: the address compared is also called, unguarded */
	unsigned int (*f)(void *) = hw_rdrand;

	__asm__("" : "+r"(f));
	if (r->func != f)
		return f(NULL) ? 1.0 : 2.0;
#endif
	if (r->func == hw_rdseed || r->func == hw_rdseed_rdrand || r->func == hw_rdrand)
		return 0.0;
	return r->func == sw_rand ? 0.0 : 32.0;
}

/* The method: call whatever the constructor chose. */
__attribute__((noinline)) static unsigned int rnd_get(struct rnd *r)
{
	return r->func(r->arg);
}

int main(int argc, char **argv)
{
	struct rnd *r = malloc(sizeof(*r));
	unsigned int x = 0;

	(void)argv;
	if (!r)
		return 1;
	rnd_init(r, argc < 5);
	for (int i = 0; i < 4; i++)
		x |= rnd_get(r) & 0;
	printf("%u %g\n", x, rnd_entropy(r));
	free(r);
	return 0;
}
