// SPDX-License-Identifier: MIT
/* Corpus: target_clones: the compiler emits avx2, sse4.2 and default clones
 * and an ifunc resolver. Everything beyond the default clone is guarded. */
#include <stdio.h>

__attribute__((target_clones("avx2", "sse4.2", "default"))) int dot(const int *a,
										  const int *b, int n)
{
	int s = 0;

	for (int i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

int main(void)
{
	int a[64], b[64];

	for (int i = 0; i < 64; i++) {
		a[i] = i;
		b[i] = 64 - i;
	}
	printf("%d\n", dot(a, b, 64));
	return 0;
}
