// SPDX-License-Identifier: MIT
/* Corpus, pattern 1 as a static library brings it: a random-number device
 * whose constructor picks RDSEED or RDRAND after a CPU check and whose method
 * calls the choice through a pointer, linked in whole but never used by the
 * program (global functions a PIE does not export, reached from nothing). A
 * second source uses RDRAND with no check at all, equally unreachable. The
 * scan cannot know that nothing jumps there: unknown, with the rule, never
 * required; the program runs without either feature. */
#include <cpuid.h>
#include <immintrin.h>
#include <stdio.h>

struct rnd {
	unsigned int (*func)(void *);
	void *arg;
};

unsigned int dead_rdrand(void *arg)
{
	unsigned int v;

	(void)arg;
	for (int i = 0; i < 100; i++)
		if (_rdrand32_step(&v))
			return v;
	return 0;
}

__attribute__((target("rdseed"))) unsigned int dead_rdseed(void *fallback)
{
	unsigned int v;

	for (int i = 0; i < 100; i++)
		if (_rdseed32_step(&v))
			return v;
	return fallback ? dead_rdrand(NULL) : 0;
}

void dead_rnd_init(struct rnd *r)
{
	unsigned int a, b, c, d;

	r->func = NULL;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_RDSEED)) {
		r->func = dead_rdseed;
		return;
	}
	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_RDRND))
		r->func = dead_rdrand;
}

unsigned int dead_rnd_get(struct rnd *r)
{
	return r->func ? r->func(r->arg) : 0;
}

/* no check at all, and no caller */
unsigned int dead_unchecked(void)
{
	unsigned int v = 0;

	_rdrand32_step(&v);
	return v;
}

int main(void)
{
	printf("ok\n");
	return 0;
}
