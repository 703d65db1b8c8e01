// SPDX-License-Identifier: MIT
/* Shared by the verbs: error printing, TTY detection and aligned tables. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_fail(int code, const char *verb, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tgvm %s: ", verb);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int cli_exit_code(int code)
{
	switch (code) {
	case EPERM: /* refused: the answer is no */
		return TGVM_EXIT_NO;
	case EINVAL: /* what the user gave: a value, a name, a file */
	case ENOENT:
	case ERANGE:
	case ENAMETOOLONG:
	case EEXIST:
	case ENOTDIR:
	case EISDIR:
	case E2BIG:
	case ENOTSUP: /* an input of a kind tgvm cannot read (qcow2, btrfs) */
		return TGVM_EXIT_USAGE;
	default:
		return TGVM_EXIT_FAILURE;
	}
}

int cli_fail_err(const char *verb, const struct tgvm_error *err)
{
	return cli_fail(cli_exit_code(err->code), verb, "%s", err->msg[0] ? err->msg : "failed");
}

int cli_refused(const char *verb, const struct tgvm_error *err)
{
	/* An unknown VM or host is bad input, not a refusal: say it as such. */
	if (err->code == ENOENT)
		return cli_fail(TGVM_EXIT_USAGE, verb, "%s", err->msg[0] ? err->msg : "not found");
	return cli_fail(TGVM_EXIT_NO, verb, "refused: %s", err->msg[0] ? err->msg : "refused");
}

int cli_usage(const char *verb)
{
	const struct tgvm_cmd *c = cli_command_find(verb);

	if (c)
		fprintf(stderr, "usage: %s\n", c->usage);
	return TGVM_EXIT_USAGE;
}

bool cli_isatty(FILE *f)
{
	return isatty(fileno(f));
}

bool cli_color(FILE *f)
{
	const char *nc = getenv("NO_COLOR");

	return cli_isatty(f) && !(nc && *nc);
}

struct cli_table {
	int ncols;
	char **cells; /* rows * ncols */
	size_t rows;
	size_t cap;
	bool *right;
};

struct cli_table *cli_table_new(int ncols, const char *const *headers)
{
	struct cli_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->right = calloc((size_t)ncols, sizeof(bool));
	if (!t->right || cli_table_add(t, headers) < 0) {
		cli_table_free(t);
		return NULL;
	}
	return t;
}

void cli_table_free(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*c));

		if (!c)
			return -1;
		t->cells = c;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncols; i++) {
		char *s = strdup(cells[i] ? cells[i] : "-");

		if (!s) {
			for (int j = 0; j < i; j++)
				free(t->cells[t->rows * (size_t)t->ncols + (size_t)j]);
			return -1;
		}
		t->cells[t->rows * (size_t)t->ncols + (size_t)i] = s;
	}
	t->rows++;
	return 0;
}

void cli_table_align_right(struct cli_table *t, int col)
{
	if (col >= 0 && col < t->ncols)
		t->right[col] = true;
}

/* Display width of UTF-8 text: count code points, not bytes. */
static int text_width(const char *s)
{
	int w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void cli_table_print(const struct cli_table *t, FILE *out)
{
	int *width = calloc((size_t)t->ncols, sizeof(int));
	bool bold = cli_color(out);

	if (!width)
		return;
	for (size_t r = 0; r < t->rows; r++)
		for (int c = 0; c < t->ncols; c++) {
			int w = text_width(t->cells[r * (size_t)t->ncols + (size_t)c]);

			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->rows; r++) {
		if (r == 0 && bold)
			fputs("\033[1m", out);
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
			int pad = width[c] - text_width(s);
			bool last = c == t->ncols - 1;

			if (t->right[c] && r > 0)
				fprintf(out, "%*s%s", pad, "", s);
			else
				fprintf(out, "%s%*s", s, last ? 0 : pad, "");
			if (!last)
				fputs("  ", out);
		}
		if (r == 0 && bold)
			fputs("\033[0m", out);
		fputc('\n', out);
	}
	free(width);
}
