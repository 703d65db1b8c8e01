// SPDX-License-Identifier: MIT
/*
 * The loader scan-system.py runs a library with: dlopen() it with every symbol
 * bound now, which runs its ifunc resolvers and constructors (the code a
 * library executes in every program that loads it), then unload it. Exported
 * functions are not called: their arguments are unknown, so no call is safe
 * in general. Exit 0 when the library loaded, 2 when the loader refused it.
 */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	void *h;

	if (argc != 2) {
		fprintf(stderr, "usage: dlopen-loader LIBRARY\n");
		return 2;
	}
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 2;
	}
	printf("loaded\n");
	fflush(stdout);
	dlclose(h);
	return 0;
}
