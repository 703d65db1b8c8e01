// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the ELF analysis of one file: the reader (sections,
 * symbols, .eh_frame/.debug_frame FDEs, relocations, dynamic entries, notes)
 * and everything scan_analyse runs on what it read (function discovery,
 * control-flow graphs, the guard data-flow, the per-file result).
 */
#include <stdint.h>
#include <string.h>

#include "scan/scan-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan_result res;

	memset(&res, 0, sizeof(res));
	/* a hwcaps path exercises that branch as well */
	scan_analyse(size & 1 ? "/usr/lib/glibc-hwcaps/x86-64-v3/libfuzz.so" : "/fuzz", data, size,
	             &res);
	/* Findings must carry terminated strings. */
	for (size_t i = 0; i < res.nfindings; i++) {
		const struct scan_finding *f = &res.findings[i];

		if ((f->symbol && strlen(f->symbol) > (1u << 20)) ||
		    (f->insn && strlen(f->insn) > 4096) || f->feature >= TGVM_F__MAX)
			__builtin_trap();
	}
	scan_result_free(&res);
	return 0;
}
