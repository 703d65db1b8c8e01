// SPDX-License-Identifier: MIT
/*
 * tgvm-boot: the small helper the guest's init uses. `get KEY` prints the
 * value of a kernel command-line parameter parsed exactly as the kernel does
 * (double quotes group words, the quotes themselves are dropped); `ms` prints
 * milliseconds since boot (CLOCK_BOOTTIME), finer than /proc/uptime.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CMDLINE_MAX 8192

/*
 * Split the next parameter off @args the way the kernel's next_arg() does.
 * Returns the rest of the string; *param and *val point into @args.
 */
static char *next_arg(char *args, char **param, char **val)
{
	size_t i, equals = 0;
	int in_quote = 0, quoted = 0;
	char *next;

	if (*args == '"') {
		args++;
		in_quote = 1;
		quoted = 1;
	}
	for (i = 0; args[i]; i++) {
		if (isspace((unsigned char)args[i]) && !in_quote)
			break;
		if (equals == 0 && args[i] == '=')
			equals = i;
		if (args[i] == '"')
			in_quote = !in_quote;
	}
	*param = args;
	if (!equals) {
		*val = NULL;
	} else {
		args[equals] = '\0';
		*val = args + equals + 1;
		if (**val == '"') {
			(*val)++;
			if (i > 0 && args[i - 1] == '"')
				args[i - 1] = '\0';
		}
	}
	if (quoted && i > 0 && args[i - 1] == '"')
		args[i - 1] = '\0';
	if (args[i]) {
		args[i] = '\0';
		next = args + i + 1;
	} else {
		next = args + i;
	}
	while (isspace((unsigned char)*next))
		next++;
	return next;
}

static int cmd_get(const char *key, const char *path)
{
	static char buf[CMDLINE_MAX];
	char *p, *param, *val, *found = NULL;
	FILE *f = fopen(path, "r");
	size_t n;
	int seen = 0;

	if (!f) {
		fprintf(stderr, "tgvm-boot: cannot open '%s': %s\n", path, strerror(errno));
		return 2;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = buf;
	while (isspace((unsigned char)*p))
		p++;
	/* The last occurrence wins, as for most kernel parameters. */
	while (*p) {
		p = next_arg(p, &param, &val);
		if (strcmp(param, key) == 0) {
			found = val;
			seen = 1;
		}
	}
	if (!seen)
		return 1;
	printf("%s\n", found ? found : "");
	return 0;
}

int main(int argc, char **argv)
{
	struct timespec ts;

	if (argc >= 3 && strcmp(argv[1], "get") == 0)
		return cmd_get(argv[2], argc >= 4 ? argv[3] : "/proc/cmdline");
	if (argc == 2 && strcmp(argv[1], "ms") == 0) {
		clock_gettime(CLOCK_BOOTTIME, &ts);
		printf("%" PRIu64 "\n",
		       (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
		return 0;
	}
	fprintf(stderr, "usage: tgvm-boot get KEY [FILE] | tgvm-boot ms\n"
	                "get prints the value of kernel parameter KEY (exit 1 when absent).\n");
	return 2;
}
