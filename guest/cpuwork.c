// SPDX-License-Identifier: MIT
/*
 * cpuwork: a known answer for CPU feature discovery. It executes POPCNT and
 * BMI2's PDEP unconditionally (no CPUID check), so on a CPU model without
 * either it dies of SIGILL, and prints a fixed checksum when both work. Apart
 * from what static glibc does behind its own CPUID checks, these two are the
 * only instructions beyond the x86-64 baseline in this program.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ROUNDS 100000u

static inline uint64_t do_popcnt(uint64_t x)
{
	uint64_t r;

	__asm__ volatile("popcnt %1, %0" : "=r"(r) : "r"(x));
	return r;
}

static inline uint64_t do_pdep(uint64_t src, uint64_t mask)
{
	uint64_t r;

	__asm__ volatile("pdep %2, %1, %0" : "=r"(r) : "r"(src), "r"(mask));
	return r;
}

int main(int argc, char **argv)
{
	uint64_t x = UINT64_C(0x0123456789abcdef), sum = 0;
	unsigned i;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: cpuwork\nExecutes POPCNT and PDEP (BMI2) unconditionally and "
		       "prints\n'CPUWORK ok popcnt bmi2 checksum=0x...'; dies of SIGILL "
		       "without them.\n");
		return 0;
	}
	for (i = 0; i < ROUNDS; i++) {
		/* xorshift64 keeps the inputs varied and the answer fixed. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		sum = sum * 31 + do_popcnt(x);
		sum ^= do_pdep(x, UINT64_C(0x5555aaaa3333cccc) ^ sum);
	}
	printf("CPUWORK ok popcnt bmi2 checksum=0x%016" PRIx64 "\n", sum);
	return 0;
}
