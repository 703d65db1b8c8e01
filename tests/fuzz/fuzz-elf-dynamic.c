// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the dynamic-section reader that library resolution
 * uses (PT_INTERP, DT_NEEDED, DT_RPATH/DT_RUNPATH, DT_SONAME via libelf).
 */
#include <stdint.h>
#include <string.h>

#include "scan/source-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan_elf_dynamic d;
	size_t total = 0;

	if (scan_elf_dynamic_parse(data, size, &d, NULL) < 0)
		return 0;
	/* Every string must be terminated and bounded. */
	for (size_t i = 0; i < d.needed.n; i++)
		total += strlen(d.needed.v[i]);
	if (d.interp)
		total += strlen(d.interp);
	if (d.rpath)
		total += strlen(d.rpath);
	if (d.runpath)
		total += strlen(d.runpath);
	if (d.soname)
		total += strlen(d.soname);
	if (total > (size_t)d.needed.n * SCAN_PATH_MAX + 4 * SCAN_PATH_MAX)
		__builtin_trap();
	scan_elf_dynamic_release(&d);
	return 0;
}
