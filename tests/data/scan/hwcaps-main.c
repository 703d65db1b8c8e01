// SPDX-License-Identifier: MIT
/* Corpus: a program that loads the hwcaps library. */
#include <stdio.h>

void hw_scale(float *restrict out, const float *restrict in, int n, float k);

int main(int argc, char **argv)
{
	float in[64], out[64];

	(void)argv;
	for (int i = 0; i < 64; i++)
		in[i] = (float)i;
	hw_scale(out, in, 64, (float)argc);
	printf("%f\n", out[argc]);
	return 0;
}
