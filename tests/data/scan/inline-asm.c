// SPDX-License-Identifier: MIT
/* Corpus: inline assembly the compiler knows nothing about: an unguarded
 * popcnt (required) and an rdrand behind a hand-written cpuid test (guarded). */
#include <cpuid.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	unsigned long x = (unsigned long)argc * 0xf0f0f0f0UL, n;
	unsigned int a, b, c, d;

	(void)argv;
	__asm__("popcnt %1, %0" : "=r"(n) : "r"(x));
	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_RDRND)) {
		unsigned long r;
		unsigned char ok;

		__asm__ volatile("rdrand %0; setc %1" : "=r"(r), "=qm"(ok));
		n += ok;
	}
	printf("%lu\n", n);
	return 0;
}
