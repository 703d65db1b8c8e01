/* SPDX-License-Identifier: MIT */
/*
 * What every verb of the tgvm command line shares: the verb table entry,
 * printing of errors, terminal detection, and aligned text tables.
 */
#ifndef TGVM_CLI_H
#define TGVM_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "tgvm/error.h"

/* Exit codes: 0 ok, 1 the answer is "no" (refused, incompatible), 2 usage, 3 failure. */
#define TGVM_EXIT_OK      0
#define TGVM_EXIT_NO      1
#define TGVM_EXIT_USAGE   2
#define TGVM_EXIT_FAILURE 3

struct tgvm_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
	const char *usage;
};

/* Each verb, in its own cmd-VERB.c. */
int cmd_help(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_host(int argc, char **argv);
int cmd_fleet(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_vm(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
/* tgvm host up|down, dispatched from cmd_host() (cmd-host-net.c). */
int cmd_host_up(int argc, char **argv);
int cmd_host_down(int argc, char **argv);

/* Every form of `tgvm migrate VM ...`, parsed once (cmd-migrate.c). */
#include <jansson.h>

#include "tgvm/migrate.h"
#include "tgvm/nil.h"
struct cli_migrate_args {
	const char *vm, *to, *svg;
	const char *nil_mode; /* "shared" or "nil", else NULL */
	const char *decouple; /* the device, for --decouple */
	bool recouple, json, mode_given;
	const char *memdev; /* --mode nil --memdev */
	struct nil_opts nil;
	struct migrate_opts o;
};
/* The nil-migration steps (cmd-migrate-nil.c): run, print, exit code. */
int cli_migrate_nil(struct cli_migrate_args *a);
/* Memory devices and migration domains of @inventory: a table, or into @json_out (cli-memdev.c). */
int cli_fleet_memdevs(const char *inventory, json_t *json_out);
bool cli_fleet_has_memdevs(const char *inventory);
/* The table form of a stored migration timeline (cmd-migrate.c). */
void cli_migrate_print_timeline(json_t *j);
/*
 * The exit code of a move that returned @r with timeline status @status and
 * error @err (cmd-migrate.c): 0 done (also when a signal came too late to
 * stop it, said on stderr), 1/2 refused, 128+signal cancelled by a signal,
 * 3 failed.
 */
int cli_migrate_exit(int r, const char *vm, const char *status, const char *from, const char *to,
                     const struct tgvm_error *err);

/* Signals during a move (cli-signal.c): the flag the engine reads. */
#include <signal.h>
const volatile sig_atomic_t *cli_interrupt_install(void);
int cli_interrupt_signal(void); /* the first signal received, 0 none */
/* TGVM_TEST_STOP_AT / TGVM_TEST_FAULT into @o (tests only; tgvm-migrate(1)). */
void cli_migrate_test_env(struct migrate_opts *o);

const struct tgvm_cmd *cli_commands(size_t *ret_n);
const struct tgvm_cmd *cli_command_find(const char *name);

/* "tgvm VERB: MESSAGE" on stderr; returns @code for `return cli_fail(...)`. */
int cli_fail(int code, const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The exit code for an error of errno @code: 1 refused (EPERM), 2 bad input
 * (EINVAL, ENOENT, ERANGE, EEXIST, ...: a value, a name or a file the user
 * gave), 3 anything else. */
int cli_exit_code(int code);
/* Print @err's message; returns cli_exit_code(@err->code). */
int cli_fail_err(const char *verb, const struct tgvm_error *err);
/* "refused: MESSAGE" for a check that said no: 2 when a name is unknown
 * (ENOENT), else 1. */
int cli_refused(const char *verb, const struct tgvm_error *err);
/* Usage line of @verb on stderr; returns TGVM_EXIT_USAGE. */
int cli_usage(const char *verb);

bool cli_isatty(FILE *f);
bool cli_color(FILE *f); /* tty and NO_COLOR unset */

/* A text table: add rows of cells, then print with columns aligned. */
struct cli_table;
struct cli_table *cli_table_new(int ncols, const char *const *headers);
void cli_table_free(struct cli_table *t);
/* Copies @cells[0..ncols-1] (NULL prints as "-"). */
int cli_table_add(struct cli_table *t, const char *const *cells);
/* Right-align column @col (numbers). */
void cli_table_align_right(struct cli_table *t, int col);
void cli_table_print(const struct cli_table *t, FILE *out);

#endif
