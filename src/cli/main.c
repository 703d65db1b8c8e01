// SPDX-License-Identifier: MIT
/* tgvm's entry point: finds the verb in one static table and runs it. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct tgvm_cmd commands[] = {
    {"help", cmd_help, "help on a verb", "tgvm help [VERB]"},
    {"version", cmd_version, "print the version", "tgvm version"},
    {"scan", cmd_scan, "which CPU features a guest's software needs",
     "tgvm scan PATH... [--json] [--explain FEATURE] [--per-program] [-j N] [--hwcaps LEVEL]"},
};

const struct tgvm_cmd *cli_commands(size_t *ret_n)
{
	*ret_n = sizeof(commands) / sizeof(commands[0]);
	return commands;
}

const struct tgvm_cmd *cli_command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct tgvm_cmd *cmd;

	if (argc < 2)
		return cmd_help(1, argv) == 0 ? TGVM_EXIT_USAGE : TGVM_EXIT_USAGE;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return cmd_version(argc - 1, argv + 1);
	cmd = cli_command_find(argv[1]);
	if (!cmd) {
		fprintf(stderr, "tgvm: unknown verb '%s'; 'tgvm help' lists them\n", argv[1]);
		return TGVM_EXIT_USAGE;
	}
	return cmd->fn(argc - 1, argv + 1);
}
