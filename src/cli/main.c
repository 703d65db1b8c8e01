// SPDX-License-Identifier: MIT
/* tgvm's entry point: finds the verb in one static table and runs it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tgvm/config.h"

static const struct tgvm_cmd commands[] = {
    {"model", cmd_model, "the minimal CPU model for a VM's needs (-cpu, libvirt XML, JSON)",
     "tgvm model (--need LIST | --report FILE)... [--vendor intel|amd] [--cross-vendor]\n"
     "           [--inventory FILE] [--format text|qemu|libvirt|json] [--json]"},
    {"host", cmd_host, "host CPU profiles: QEMU's models, this machine's CPU; simulated hosts",
     "tgvm host models [--json] [--all] [--vendor intel|amd]\n"
     "tgvm host detect [--json] [--name NAME]\n"
     "tgvm host show MODEL [--json]\n"
     "tgvm host up [--inventory FILE | --hosts A,B | HOST...] [--json]\n"
     "tgvm host down [HOST...]"},
    {"fleet", cmd_fleet, "where each VM may run and move under each policy; heat map",
     "tgvm fleet [--inventory FILE] (--vm NAME=FEATURES[:GUARDED] | --vms FILE | --report "
     "FILE)...\n"
     "           [--cross-vendor] [--json] [--heatmap FILE.svg|FILE.png]"},
    {"help", cmd_help, "help on a verb", "tgvm help [VERB]"},
    {"version", cmd_version, "print the version", "tgvm version"},
    {"scan", cmd_scan, "which CPU features a guest's software needs",
     "tgvm scan PATH... [--json] [--explain FEATURE] [--per-program] [-j N] [--hwcaps LEVEL]"},
    {"probe", cmd_probe, "run a workload with CPU features taken away; the minimal set it needs",
     "tgvm probe [--cpu-base MODEL] [--candidates LIST | --scan REPORT] [--timeout S] [-j N]\n"
     "           [--check CMD] [--json] [--runs] -- CMD ARGS...\n"
     "tgvm probe --vm [--kernel FILE --initrd FILE] [--disk IMAGE] --run CMD [--mem MIB] "
     "[OPTIONS]"},
    {"vm", cmd_vm, "run VMs on hosts", "tgvm vm start|list|stop|console ..."},
    {"migrate", cmd_migrate, "live-migrate a VM to another host",
     "tgvm migrate VM --to HOST [--mode precopy|postcopy|auto] | status VM | cancel VM"},
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

/* The environment, read once, given to the library (tgvm(1), ENVIRONMENT). */
static void config_from_env(void)
{
	static char cache[4096], state[4096];
	struct tgvm_config c = {0};
	const char *v;

	c.qemu = getenv("TGVM_QEMU");
	c.accel = getenv("TGVM_ACCEL");
	c.netns_prefix = getenv("TGVM_NETNS_PREFIX");
	c.keep_trace = getenv("TGVM_KEEP_TRACE") != NULL;
	c.data_dir = getenv("TGVM_DATA_DIR");
	if ((v = getenv("TGVM_CACHE_DIR")) && *v)
		snprintf(cache, sizeof(cache), "%s", v);
	else if ((v = getenv("XDG_CACHE_HOME")) && *v)
		snprintf(cache, sizeof(cache), "%s/tgvm", v);
	else if ((v = getenv("HOME")) && *v)
		snprintf(cache, sizeof(cache), "%s/.cache/tgvm", v);
	c.cache_dir = cache[0] ? cache : NULL;
	if ((v = getenv("TGVM_STATE_DIR")) && *v)
		snprintf(state, sizeof(state), "%s", v);
	else if (getuid() != 0 && (v = getenv("XDG_RUNTIME_DIR")) && *v)
		snprintf(state, sizeof(state), "%s/tgvm", v);
	c.state_dir = state[0] ? state : NULL;
	tgvm_config_set(&c);
}

int main(int argc, char **argv)
{
	const struct tgvm_cmd *cmd;

	config_from_env();
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
