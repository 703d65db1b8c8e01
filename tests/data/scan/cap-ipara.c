// SPDX-License-Identifier: MIT
/* Corpus, pattern 3: a CPUID result kept in a global capability structure
 * and handed down as a bool argument, several calls deep, to code that picks
 * BMI2 variants by it (zstd's "flags & HUF_flags_bmi2"). Between receiving
 * the flag and passing it on, the caller calls a local function that GCC
 * knows leaves the flag's register alone (IPA register allocation), so the
 * flag is still in a caller-saved register after that call. BMI2 is guarded.
 * Built with -DFLAG_FROM_ARGS the flag comes from the command line: BMI2 is
 * then required. */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>

struct caps {
	int bmi2;
	int sse42;
};
static struct caps g_caps;

__attribute__((noinline)) static void caps_init(struct caps *c)
{
	unsigned int a, b, cc, d;

	memset(c, 0, sizeof(*c));
	if (__get_cpuid_count(7, 0, &a, &b, &cc, &d))
		c->bmi2 = !!(b & bit_BMI2) && !!(b & bit_BMI);
}

__attribute__((target("bmi,bmi2,lzcnt"), noinline)) static unsigned int
body_bmi2(const unsigned char *p, size_t n, unsigned int *hist, unsigned int sh, unsigned int w,
          unsigned int k)
{
	unsigned int s = 0;

	for (size_t i = 0; i < n; i++) {
		hist[p[i] & 15]++;
		s += (w << (p[i] & sh)) >> 1;
		s += (unsigned int)__builtin_clz(p[i] | 1) + k;
	}
	return s;
}

__attribute__((noinline)) static unsigned int body_default(const unsigned char *p, size_t n,
                                                           unsigned int *hist, unsigned int sh,
                                                           unsigned int w, unsigned int k)
{
	unsigned int s = 0;

	for (size_t i = 0; i < n; i++) {
		hist[p[i] & 15]++;
		s += (w << (p[i] & sh)) >> 1;
		s += (unsigned int)__builtin_clz(p[i] | 1) + k;
	}
	return s;
}

/* the dispatcher: the flag is a stack argument */
__attribute__((noinline)) static unsigned int read_stats(const unsigned char *p, size_t n,
                                                         unsigned int *hist, unsigned int sh,
                                                         unsigned int w, unsigned int k,
                                                         unsigned int pad, int flags)
{
	(void)pad;
	if (flags & 1)
		return body_bmi2(p, n, hist, sh, w, k);
	return body_default(p, n, hist, sh, w, k);
}

__attribute__((noinline)) static size_t check_header(const unsigned char *p, size_t n)
{
	return n > 2 && p[0] == 'z' ? 2 : 0;
}

/* receives the flag in a register, calls a local helper, passes it on */
__attribute__((noinline)) static unsigned int load_entropy(const unsigned char *p, size_t n,
                                                           unsigned int *hist, unsigned int sh,
                                                           unsigned int w, int bmi2)
{
	size_t h = check_header(p, n);

	if (!h)
		return read_stats(p, n, hist, sh, w, 7, 0, bmi2);
	return read_stats(p + h, n - h, hist, sh, w, 3, 0, bmi2);
}

int main(int argc, char **argv)
{
	unsigned int hist[16] = {0};
	const char *text = argc > 1 ? argv[1] : "zstd frame header and payload";

	caps_init(&g_caps);
#ifdef FLAG_FROM_ARGS
	g_caps.bmi2 = argc < 3; /* used when run with no arguments */
#endif
	printf("%u\n", load_entropy((const unsigned char *)text, strlen(text), hist, 7,
	                            (unsigned int)argc, g_caps.bmi2));
	return 0;
}
