// SPDX-License-Identifier: MIT
/* Corpus, pattern 6 ("entered from outside"): a program that exports its
 * functions (-rdynamic, for its plugins) keeps a CRC-32C function pointer
 * that starts at a chooser; the first call runs the chooser, which tests
 * CPUID for SSE4.2 and stores the SSE4.2 or the table version (as PostgreSQL
 * does). Exported alone is no unconditional way in: every caller in the
 * program is guarded, so SSE4.2 is guarded. Built with -DUNGUARDED_CALL, main
 * also calls the SSE4.2 version directly: required. */
#include <cpuid.h>
#include <nmmintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

uint32_t crc_sse42(uint32_t crc, const void *data, size_t len);
uint32_t crc_table(uint32_t crc, const void *data, size_t len);
static uint32_t crc_choose(uint32_t crc, const void *data, size_t len);

uint32_t (*crc_fn)(uint32_t, const void *, size_t) = crc_choose;

__attribute__((target("sse4.2"), noinline)) uint32_t crc_sse42(uint32_t crc, const void *data,
                                                               size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		crc = _mm_crc32_u8(crc, p[i]);
	return crc;
}

__attribute__((noinline)) uint32_t crc_table(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return crc;
}

static uint32_t crc_choose(uint32_t crc, const void *data, size_t len)
{
	unsigned int a, b, c, d;

	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2))
		crc_fn = crc_sse42;
	else
		crc_fn = crc_table;
	return crc_fn(crc, data, len);
}

int main(int argc, char **argv)
{
	static const char text[] = "123456789";
	uint32_t crc = crc_fn(~0u, text, (size_t)argc + 8);

	(void)argv;
#ifdef UNGUARDED_CALL
	crc = crc_sse42(crc, text, (size_t)argc);
#endif
	printf("%08x\n", ~crc);
	return 0;
}
