// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness of the disk image reader: the input is a disk image (a
 * bare ext2/3/4 file system or one behind an MBR/GPT table), handed to
 * scan_fs_open_with() through a memfd, then walked and read like a guest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scan_fs *fs = NULL;
	char path[64];
	int fd = memfd_create("fuzz-ext4", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (scan_fs_open_with(path, &fuzz_limits, &fs, NULL) == 0) {
			/* A lone file is rooted at the host's "/": not this reader. */
			if (scan_fs_kind(fs) != SCAN_FS_FILE)
				fuzz_exercise(fs);
			scan_fs_free(fs);
		}
	}
	close(fd);
	return 0;
}
