// SPDX-License-Identifier: MIT
/* Corpus: a capability structure filled once, as Mesa's util_cpu_caps is.
 * The detector writes cpuid bits into a private copy, then assigns the whole
 * body into the public structure (a block copy: rep movsq or memcpy) and
 * sets a "done" word beside it. Readers take the public structure's address
 * once (lea) and test a bit field at base+offset in a loop that a format
 * table reaches through function pointers. F16C is guarded.
 * Negative control: the structure's first word is set from the command line
 * (not from cpuid); a branch on it guards POPCNT code, which stays required. */
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct caps_body {
	unsigned cacheline, family;
	unsigned has_sse3 : 1, has_ssse3 : 1, has_sse41 : 1, has_popcnt : 1, has_avx : 1,
	    has_f16c : 1, has_fma : 1;
	unsigned short cpu_to_l3[1024]; /* large: the assignment is a block copy */
};

struct cpu_caps {
	int user_level; /* offset 0: from the command line */
	int detect_done;
	struct caps_body body;
};

static struct caps_body detected;
static struct cpu_caps caps;

__attribute__((noinline)) static void detect_once(void)
{
	unsigned a, b, c, d;

	if (__get_cpuid(1, &a, &b, &c, &d)) {
		detected.family = (a >> 8) & 0xf;
		detected.has_sse3 = c & 1;
		detected.has_ssse3 = (c >> 9) & 1;
		detected.has_sse41 = (c >> 19) & 1;
		detected.has_popcnt = (c >> 23) & 1;
		detected.has_avx = (c >> 28) & 1;
		detected.has_f16c = (c >> 29) & 1;
		detected.has_fma = (c >> 12) & 1;
	}
	for (int i = 0; i < 1024; i++)
		detected.cpu_to_l3[i] = (unsigned short)(i & 3);
	caps.body = detected;
	__atomic_store_n(&caps.detect_done, 1, __ATOMIC_RELEASE);
}

static inline const struct cpu_caps *get_caps(void)
{
	if (__builtin_expect(!caps.detect_done, 0))
		detect_once();
	return &caps;
}

__attribute__((noinline)) static uint16_t half_slow(float f)
{
	union {
		float f;
		uint32_t u;
	} v = {f};

	return (uint16_t)(((v.u >> 16) & 0x8000) | ((((v.u >> 23) & 0xff) - 112) << 10 & 0x7c00) |
	                  ((v.u >> 13) & 0x3ff));
}

static inline uint16_t half_rtz(float f)
{
	if (get_caps()->body.has_f16c) {
		typedef float v4sf __attribute__((vector_size(16)));
		typedef short v8hi __attribute__((vector_size(16)));
		v4sf in = {f, 0, 0, 0};
		v8hi out;

		__asm__("vcvtps2ph $3, %1, %0" : "=x"(out) : "x"(in));
		return (uint16_t)out[0];
	}
	return half_slow(f);
}

static void pack_r16(uint16_t *dst, const float *src, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		dst[i] = half_rtz(src[i * 4]);
}

static void pack_rg16(uint16_t *dst, const float *src, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		dst[2 * i] = half_rtz(src[i * 4]);
		dst[2 * i + 1] = half_rtz(src[i * 4 + 1]);
	}
}

struct format {
	const char *name;
	void (*pack)(uint16_t *, const float *, unsigned);
};

static const struct format formats[] = {{"R16_FLOAT", pack_r16}, {"RG16_FLOAT", pack_rg16}};

__attribute__((noinline)) static unsigned count_bits(unsigned x)
{
	if (get_caps()->user_level > 1) { /* not a CPU check */
		unsigned r;

		__asm__("popcnt %1, %0" : "=r"(r) : "r"(x));
		return r;
	}
	return (unsigned)__builtin_popcount(x & 0xff) + (unsigned)__builtin_popcount(x >> 8);
}

int main(int argc, char **argv)
{
	float src[8] = {1.5f, 2.25f, (float)argc, 3, 4, 5, 6, 7};
	uint16_t dst[4] = {0};

	(void)argv;
	caps.user_level = argc;
	formats[argc & 1].pack(dst, src, 2);
	printf("%04x %04x %u\n", dst[0], dst[1], count_bits((unsigned)argc * 0x1011u));
	return 0;
}
