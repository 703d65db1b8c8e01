// SPDX-License-Identifier: MIT
/* Corpus: ordinary code built with -march=x86-64-v2, -v3 and -v4: the
 * compiler uses the level's instructions anywhere, unguarded. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static int count_bits(const unsigned long *v, int n)
{
	int s = 0;

	for (int i = 0; i < n; i++)
		s += __builtin_popcountl(v[i]);
	return s;
}

__attribute__((noinline)) static void scale(float *restrict out, const float *restrict in, int n,
					    float k)
{
	for (int i = 0; i < n; i++)
		out[i] = in[i] * k + 1.0f;
}

int main(int argc, char **argv)
{
	static unsigned long v[1024];
	static float in[1024], out[1024];

	(void)argv;
	for (int i = 0; i < 1024; i++) {
		v[i] = (unsigned long)i * (unsigned long)argc;
		in[i] = (float)i;
	}
	scale(out, in, 1024, (float)argc);
	printf("%d %f\n", count_bits(v, 1024), out[argc]);
	return 0;
}
