// SPDX-License-Identifier: MIT
/* tgvm's entry point: finds the verb in one static table and runs it; the
 * hidden 'tgvm __complete' answers the bash completion from the same table. */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tgvm/config.h"
#include "util/util.h"

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
     "tgvm migrate VM --to HOST [--mode precopy|postcopy|auto|shared|nil]\n"
     "tgvm migrate VM --decouple DEVICE | --recouple\n"
     "tgvm migrate status [VM] | cancel VM"},
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

/* Sub-verbs, and which of them (or of the verb itself, "") parse options. */
static const struct {
	const char *verb;
	const char *const subs[6];
	const char *const with_options[6];
} sub_verbs[] = {
    {"host", {"models", "show", "detect", "up", "down"}, {"models", "show", "detect", "up"}},
    {"vm", {"start", "list", "stop", "console", "ping"}, {"start", "ping"}},
    {"migrate", {"status", "cancel"}, {""}},
    {"model", {NULL}, {""}},
    {"fleet", {NULL}, {""}},
    {"scan", {NULL}, {""}},
    {"probe", {NULL}, {""}},
};

static bool in_list(const char *const *l, size_t n, const char *s)
{
	for (size_t i = 0; i < n && l[i]; i++)
		if (!strcmp(l[i], s))
			return true;
	return false;
}

/*
 * The long options of VERB [SUB], read from its own getopt table: an empty
 * option name ("--=") is a prefix of every one, so getopt_long refuses it as
 * ambiguous and names them all (or the only one) on stderr, before the verb
 * does anything. Only verbs that parse options first are asked.
 */
static int complete_options(const char *verb, const char *sub)
{
	char buf[16384], *p;
	size_t len = 0;
	int fds[2], status;
	bool ok = false;
	pid_t pid;

	for (size_t i = 0; i < sizeof(sub_verbs) / sizeof(sub_verbs[0]); i++)
		if (!strcmp(sub_verbs[i].verb, verb))
			ok = in_list(sub_verbs[i].with_options, 6, sub ? sub : "");
	if (!ok || pipe(fds) < 0)
		return 0;
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(fds[1], 2);
		close(fds[0]);
		execl("/proc/self/exe", "tgvm", verb, sub ? sub : "--=", sub ? "--=" : NULL,
		      (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	for (ssize_t n;
	     len + 1 < sizeof(buf) && (n = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0;)
		len += (size_t)n;
	close(fds[0]);
	waitpid(pid, &status, 0);
	buf[len] = '\0';
	/* "option '--=' is ambiguous; possibilities: '--a' '--b'" or "option '--a' ..." */
	p = strstr(buf, "possibilities:");
	p = p ? p : buf;
	while ((p = strstr(p, "'--"))) {
		size_t n = strspn(p + 1, "-abcdefghijklmnopqrstuvwxyz0123456789");

		if (n > 2 && p[1 + n] == '\'')
			printf("%.*s\n", (int)n, p + 1);
		p += 1 + n;
	}
	return 0;
}

/* The names in the state directory's @what ("hosts": NAME.json, "vms": NAME/). */
static int complete_state(const char *what)
{
	char dir[4096];
	struct dirent *e;
	DIR *d;

	if (tgvm_state_dir(dir, sizeof(dir)) < 0 || strlen(dir) + strlen(what) + 2 >= sizeof(dir))
		return 0;
	strncat(dir, "/", sizeof(dir) - strlen(dir) - 1);
	strncat(dir, what, sizeof(dir) - strlen(dir) - 1);
	if (!(d = opendir(dir)))
		return 0;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (e->d_name[0] == '.')
			continue;
		if (!strcmp(what, "hosts")) {
			if (n > 5 && !strcmp(e->d_name + n - 5, ".json"))
				printf("%.*s\n", (int)(n - 5), e->d_name);
		} else {
			printf("%s\n", e->d_name);
		}
	}
	closedir(d);
	return 0;
}

/*
 * tgvm __complete verbs | subverbs VERB | options VERB [SUB] | hosts | vms:
 * one word a line, for completion/tgvm.bash. Always exits 0.
 */
static int complete(int argc, char **argv)
{
	size_t n = sizeof(commands) / sizeof(commands[0]);

	if (argc < 2)
		return 0;
	if (!strcmp(argv[1], "verbs"))
		for (size_t i = 0; i < n; i++)
			printf("%s\n", commands[i].name);
	else if (!strcmp(argv[1], "subverbs") && argc > 2)
		for (size_t i = 0; i < sizeof(sub_verbs) / sizeof(sub_verbs[0]); i++)
			for (size_t k = 0;
			     k < 6 && !strcmp(sub_verbs[i].verb, argv[2]) && sub_verbs[i].subs[k];
			     k++)
				printf("%s\n", sub_verbs[i].subs[k]);
	else if (!strcmp(argv[1], "options") && argc > 2)
		return complete_options(argv[2], argc > 3 ? argv[3] : NULL);
	else if (!strcmp(argv[1], "hosts") || !strcmp(argv[1], "vms"))
		return complete_state(argv[1]);
	return 0;
}

/* A namespace prefix tgvm would not use is refused, not replaced: a demo or
 * test whose hosts fell back to the default prefix would tear down the
 * user's own hosts. */
static bool netns_prefix_ok(const char *p)
{
	return !p || !*p ||
	       (strlen(p) <= 12 && strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(p));
}

int main(int argc, char **argv)
{
	const struct tgvm_cmd *cmd;

	if (!netns_prefix_ok(getenv("TGVM_NETNS_PREFIX"))) {
		fprintf(stderr,
		        "tgvm: TGVM_NETNS_PREFIX '%s' is not a namespace prefix (at most 12 of "
		        "a-z, 0-9 and '-')\n",
		        getenv("TGVM_NETNS_PREFIX"));
		return TGVM_EXIT_USAGE;
	}
	config_from_env();
	if (argc < 2)
		return cmd_help(1, argv) == 0 ? TGVM_EXIT_USAGE : TGVM_EXIT_USAGE;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return cmd_version(argc - 1, argv + 1);
	if (!strcmp(argv[1], "__complete"))
		return complete(argc - 1, argv + 1);
	cmd = cli_command_find(argv[1]);
	if (!cmd) {
		fprintf(stderr, "tgvm: unknown verb '%s'; 'tgvm help' lists them\n", argv[1]);
		return TGVM_EXIT_USAGE;
	}
	return cmd->fn(argc - 1, argv + 1);
}
