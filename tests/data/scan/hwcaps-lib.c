// SPDX-License-Identifier: MIT
/* Corpus: one library built twice, baseline and -march=x86-64-v3 into
 * glibc-hwcaps/x86-64-v3/; the loader picks the v3 copy only on v3 CPUs. */
__attribute__((noinline)) void hw_scale(float *restrict out, const float *restrict in, int n,
					float k)
{
	for (int i = 0; i < n; i++)
		out[i] = in[i] * k + 1.0f;
}
