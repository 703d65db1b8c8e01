// SPDX-License-Identifier: MIT
/* Corpus, pattern 2: __builtin_cpu_supports (libgcc's __cpu_model) tested
 * once in a constructor that stores a function pointer and a flag, both used
 * much later and elsewhere: a lexer's line search through the pointer (an
 * SSE4.2 variant, as GCC's libcpp has), a population count behind the flag.
 * SSE4.2 and POPCNT are guarded. */
#include <nmmintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef const char *(*search_fn)(const char *s, const char *end);

static search_fn search_line;
static bool have_popcnt;

__attribute__((noinline)) static const char *search_plain(const char *s, const char *end)
{
	while (s < end && *s != '\n' && *s != '\\' && *s != '?')
		s++;
	return s;
}

__attribute__((target("sse4.2"), noinline)) static const char *search_sse42(const char *s,
                                                                           const char *end)
{
	const __m128i set = _mm_setr_epi8('\n', '\\', '?', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

	while (end - s >= 16) {
		__m128i d;
		int i;

		memcpy(&d, s, 16);
		i = _mm_cmpestri(set, 3, d, 16, _SIDD_UBYTE_OPS | _SIDD_CMP_EQUAL_ANY);
		if (i < 16)
			return s + i;
		s += 16;
	}
	return search_plain(s, end);
}

__attribute__((target("popcnt"), noinline)) static int count_fast(unsigned long v)
{
	return __builtin_popcountl(v);
}

__attribute__((noinline)) static int count_slow(unsigned long v)
{
	int n = 0;

	for (; v; v &= v - 1)
		n++;
	return n;
}

__attribute__((constructor)) static void init_lexer(void)
{
	__builtin_cpu_init();
	search_line = __builtin_cpu_supports("sse4.2") ? search_sse42 : search_plain;
	have_popcnt = __builtin_cpu_supports("popcnt");
}

__attribute__((noinline)) static int lex(const char *text)
{
	const char *end = text + strlen(text);
	int lines = 0;

	for (const char *p = search_line(text, end); p < end; p = search_line(p + 1, end))
		lines += *p == '\n';
	return lines;
}

int main(int argc, char **argv)
{
	static const char text[] = "int main(void)\n{\n\treturn 0; /* a line long enough */\n}\n";
	unsigned long bits = (unsigned long)argc * 0x0101010101ul;

	(void)argv;
	printf("%d %d\n", lex(text), have_popcnt ? count_fast(bits) : count_slow(bits));
	return 0;
}
