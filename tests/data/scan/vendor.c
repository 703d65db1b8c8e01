// SPDX-License-Identifier: MIT
/* Corpus, pattern 4: code behind a CPU vendor check (a VIA/Centaur-only
 * random-number path, as OpenSSL's padlock engine has: the vendor string
 * from leaf 0, then the Centaur leaf 0xC0000001 flags kept in a flag) and
 * behind a family/model check (a Haswell-only MOVBE loop chosen by model).
 * The xstore and movbe uses are guarded; a generic path runs elsewhere. */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>

static int use_rng;
static int fast_movbe;

__attribute__((noinline)) static void probe_cpu(void)
{
	unsigned int a, b, c, d, max;
	char vendor[13];

	max = __get_cpuid_max(0, &b);
	if (max == 0)
		return;
	__cpuid(0, a, b, c, d);
	memcpy(vendor, &b, 4);
	memcpy(vendor + 4, &d, 4);
	memcpy(vendor + 8, &c, 4);
	vendor[12] = 0;
	if (!strcmp(vendor, "CentaurHauls")) {
		__cpuid(0xC0000000, a, b, c, d);
		if (a >= 0xC0000001) {
			__cpuid(0xC0000001, a, b, c, d);
			use_rng = (d & 0xC) == 0xC;
		}
	}
	if (!strcmp(vendor, "GenuineIntel")) {
		unsigned int family, model;

		__cpuid(1, a, b, c, d);
		family = (a >> 8) & 0xf;
		model = ((a >> 4) & 0xf) | ((a >> 12) & 0xf0);
		fast_movbe = family == 6 && (model == 0x3c || model == 0x3f);
	}
}

__attribute__((noinline)) static unsigned int padlock_random(void)
{
	unsigned int buf[2] = {0, 0};
	void *p = buf;

	__asm__ volatile(".byte 0x0f, 0xa7, 0xc0" /* xstore */
	                 : "+D"(p)
	                 : "d"(0)
	                 : "memory", "eax");
	return buf[0];
}

__attribute__((noinline)) static unsigned int load_be_movbe(const unsigned int *v)
{
	unsigned int r;

	__asm__("movbe %1, %0" : "=r"(r) : "m"(*v));
	return r;
}

__attribute__((noinline)) static unsigned int load_be(const unsigned int *v)
{
	return __builtin_bswap32(*v);
}

int main(int argc, char **argv)
{
	unsigned int v = 0x01020304u * (unsigned int)argc, r = 0;

	(void)argv;
	probe_cpu();
	if (use_rng)
		r = padlock_random() & 0;
	r += fast_movbe ? load_be_movbe(&v) : load_be(&v);
	printf("%08x\n", r);
	return 0;
}
