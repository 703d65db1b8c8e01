// SPDX-License-Identifier: MIT
/* tgvm help [VERB]: the verb list, or one verb's manual page. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/util.h"

#ifndef TGVM_VERSION
#define TGVM_VERSION "unknown"
#endif
#ifndef TGVM_MAN_DIR
#define TGVM_MAN_DIR ""
#endif
#ifndef TGVM_INSTALL_MAN_DIR
#define TGVM_INSTALL_MAN_DIR ""
#endif
#ifndef TGVM_INSTALL_DATA_DIR
#define TGVM_INSTALL_DATA_DIR ""
#endif

static int list_verbs(FILE *out)
{
	size_t n;
	const struct tgvm_cmd *cmds = cli_commands(&n);

	fprintf(out,
	        "usage: tgvm VERB [OPTIONS]\n\n"
	        "tgvm finds the CPU features a VM's software needs, presents only those,\n"
	        "tells where the VM may go, and moves it live between unlike hosts.\n\nverbs:\n");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %-9s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(out, "\n'tgvm help VERB' shows a verb's manual page.\n");
	return 0;
}

/*
 * scdoc source as plain text: "# NAME" headings in capitals, *bold* and
 * _underline_ marks dropped (an underscore inside a word stays), "\\*" and
 * "\\_" unescaped.
 */
static void print_plain(const char *text)
{
	bool line_start = true;

	for (const char *p = text; *p; p++) {
		if (line_start && p[0] == '#' && p[1] == ' ') {
			const char *e = strchr(p, '\n');

			for (p += 2; *p && *p != '\n'; p++)
				putchar(toupper((unsigned char)*p));
			if (!e)
				break;
			putchar('\n');
			continue; /* p is at the newline */
		}
		line_start = *p == '\n';
		if (p[0] == '\\' && (p[1] == '*' || p[1] == '_')) {
			putchar(*++p);
			continue;
		}
		if (*p == '*')
			continue;
		if (*p == '_' &&
		    (p == text || !isalnum((unsigned char)p[-1]) || !isalnum((unsigned char)p[1])))
			continue;
		putchar(*p);
	}
}

/* Show page tgvm-@name.1 with man(1) on a terminal; else its text. */
static int show_page(const char *name, const struct tgvm_cmd *c)
{
	char page[PATH_MAX], src[PATH_MAX], data[PATH_MAX];
	char *text = NULL;

	/* The built page, else the installed one; the scdoc source as text. */
	static const char *const man_dirs[] = {TGVM_MAN_DIR, TGVM_INSTALL_MAN_DIR};
	static const char *data_dirs[] = {NULL, TGVM_INSTALL_DATA_DIR};

	for (size_t i = 0; i < 2 && cli_isatty(stdout) && access("/usr/bin/man", X_OK) == 0; i++)
		if (*man_dirs[i] &&
		    snprintf(page, sizeof(page), "%s/tgvm-%s.1", man_dirs[i], name) <
		        (int)sizeof(page) &&
		    access(page, R_OK) == 0) {
			fflush(stdout);
			execl("/usr/bin/man", "man", "-l", page, (char *)NULL);
		}
	data_dirs[0] = tgvm_data_dir(data, sizeof(data)) == 0 ? data : "";
	for (size_t i = 0; i < 2 && !text; i++)
		if (!*data_dirs[i] ||
		    snprintf(src, sizeof(src), "%s/docs/man/tgvm-%s.1.scd", data_dirs[i], name) >=
		        (int)sizeof(src) ||
		    tgvm_file_read(src, 1 << 20, &text, NULL, NULL) < 0)
			text = NULL;
	if (text) {
		/* drop scdoc's header line */
		const char *body = strstr(text, "\n# ");

		print_plain(body ? body + 1 : text);
		free(text);
		return 0;
	}
	if (!c)
		return 1;
	printf("usage: %s\n\n%s\n", c->usage, c->summary);
	return 0;
}

int cmd_help(int argc, char **argv)
{
	const struct tgvm_cmd *c;
	char name[128];

	if (argc < 2)
		return list_verbs(stdout);
	if (argc > 3)
		return cli_fail(TGVM_EXIT_USAGE, "help", "unexpected argument '%s'", argv[3]);
	/* "host up" and "host-up": a sub-verb's own page, where there is one */
	snprintf(name, sizeof(name), "%s%s%s", argv[1], argc > 2 ? "-" : "",
	         argc > 2 ? argv[2] : "");
	if (strchr(name, '-') && !strchr(name, '/') && show_page(name, NULL) == 0)
		return 0;
	if (argc > 2)
		return cli_fail(TGVM_EXIT_USAGE, "help", "no page for '%s %s'", argv[1], argv[2]);
	c = cli_command_find(argv[1]);
	if (!c) {
		fprintf(stderr, "tgvm help: unknown verb '%s'\n", argv[1]);
		list_verbs(stderr);
		return TGVM_EXIT_USAGE;
	}
	return show_page(c->name, c);
}

int cmd_version(int argc, char **argv)
{
	if (argc > 1)
		return cli_fail(TGVM_EXIT_USAGE, "version", "unexpected argument '%s'", argv[1]);
	(void)argv;
	printf("tgvm %s\n", TGVM_VERSION);
	return 0;
}
