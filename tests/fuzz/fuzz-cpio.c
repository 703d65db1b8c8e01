// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the cpio/initramfs reader: the input is an archive
 * (plain or compressed); every file is walked and read, symlinks resolved,
 * directories listed and the libraries of the first ELF file resolved.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan_fs *fs = NULL;

	if (scan_cpio_open_memory(data, size, "fuzz.cpio", &fuzz_limits, &fs, NULL) < 0)
		return 0;
	fuzz_exercise(fs);
	scan_fs_free(fs);
	return 0;
}
