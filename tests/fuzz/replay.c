// SPDX-License-Identifier: MIT
/*
 * Replays a fuzzer's corpus and every crash ever found (tests/fuzz/regress/)
 * through its harness without libFuzzer, so `make check` keeps them fixed
 * under the ASan/UBSan build. Arguments: files or directories.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay(const char *path, int *count)
{
	char *data = NULL;
	size_t n = 0;
	struct tgvm_error err = {0};

	if (tgvm_file_read(path, 64 << 20, &data, &n, &err) < 0) {
		fprintf(stderr, "replay: %s\n", err.msg);
		return -1;
	}
	LLVMFuzzerTestOneInput((const uint8_t *)data, n);
	free(data);
	(*count)++;
	return 0;
}

int main(int argc, char **argv)
{
	int count = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		struct dirent **ents = NULL;
		int n;

		if (stat(argv[i], &st) < 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			if (replay(argv[i], &count) < 0)
				return 1;
			continue;
		}
		n = scandir(argv[i], &ents, NULL, alphasort);
		for (int k = 0; k < n; k++) {
			char p[4096];

			if (ents[k]->d_name[0] != '.' &&
			    snprintf(p, sizeof(p), "%s/%s", argv[i], ents[k]->d_name) <
			        (int)sizeof(p) &&
			    replay(p, &count) < 0)
				return 1;
			free(ents[k]);
		}
		free(ents);
	}
	printf("replayed %d inputs\n", count);
	return 0;
}
