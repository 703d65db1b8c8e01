// SPDX-License-Identifier: MIT
/*
 * tgvm vm start|list|stop|console: run VMs (QEMU processes) on simulated
 * hosts. Option parsing and printing only; src/vm/ does the work.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tgvm/fleet.h"
#include "tgvm/memdev.h"
#include "tgvm/migrate.h"
#include "tgvm/model.h"
#include "tgvm/netprobe.h"
#include "tgvm/vm.h"
#include "tgvm/vmstart.h"
#include "util/util.h"

static void vm_usage(void)
{
	fprintf(
	    stderr,
	    "usage: tgvm vm start NAME --host HOST [--mem SIZE] [--cpus N] [--model CPU]\n"
	    "                     [--kernel FILE [--initrd FILE] [--append LINE] | --disk IMAGE]\n"
	    "                     [--ip ADDR] [--workload LIST] [--memdev DEVICE] [--dry-run] "
	    "[--json]\n"
	    "       tgvm vm list [--json]\n"
	    "       tgvm vm stop NAME...\n"
	    "       tgvm vm console NAME [--log]\n"
	    "       tgvm vm ping NAME [--duration SECONDS] [--interval-us N] [--port N] "
	    "[--json]\n");
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -ENOMEM;
}

/* A dry run's QEMU command line: one line, or a JSON array of arguments. */
static void print_argv(const struct tgvm_strv *v, bool json)
{
	if (json) {
		json_t *a = json_array();
		char *s;

		for (size_t i = 0; i < v->n; i++)
			json_array_append_new(a, json_string(v->v[i]));
		s = json_dumps(a, JSON_INDENT(2));
		if (s)
			puts(s);
		free(s);
		json_decref(a);
		return;
	}
	for (size_t i = 0; i < v->n; i++)
		printf("%s%s", i ? " " : "", v->v[i]);
	printf("\n");
}

/* What a started VM got: its stored config as JSON, or one line. */
static void print_started(const char *name, bool json)
{
	struct tgvm_error err = {0};
	struct vm_config now;

	if (vm_load(name, &now, &err) < 0)
		return;
	if (json) {
		json_t *j = vm_config_to_json(&now);
		char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

		if (s)
			puts(s);
		free(s);
		json_decref(j);
	} else {
		int kind = vm_machine_kind(now.machine);

		printf("VM '%s' started on host '%s' (address %s, %s, %s, -cpu %s)\n", now.name,
		       now.host, now.ip, now.accel, kind >= 0 ? vm_machine_to_string(kind) : "?",
		       now.cpu ? now.cpu : "qemu64");
		if (now.memdev[0])
			printf("its memory is on device '%s' (%s)\n", now.memdev, now.mem_file);
	}
	vm_config_release(&now);
}

struct vm_start_args {
	struct vm_config cfg;
	const char *workload, *memdev;
	bool dry, json, model_auto, model_given;
};

/* One option of `vm start` into @a: 0, or the exit code of a bad value (reported). */
static int vm_start_opt(int c, const char *arg, struct vm_start_args *a)
{
	int r = 0;

	switch (c) {
	case 'H':
		if (strlen(arg) >= sizeof(a->cfg.host))
			r = -EINVAL;
		else
			snprintf(a->cfg.host, sizeof(a->cfg.host), "%s", arg);
		break;
	case 'm':
		if (tgvm_parse_size(arg, &a->cfg.mem_bytes) < 0) {
			return cli_fail(TGVM_EXIT_USAGE, "vm start",
			                "cannot read memory size '%s' (e.g. 256M, 1G)", arg);
		}
		break;
	case 'c':
		if (tgvm_parse_int(arg, 1, TGVM_VM_CPUS_MAX, &a->cfg.cpus) < 0) {
			return cli_fail(TGVM_EXIT_USAGE, "vm start",
			                "cpus must be 1 to %d, not '%s'", TGVM_VM_CPUS_MAX, arg);
		}
		break;
	case 'M':
		a->model_given = true;
		a->model_auto = !strcmp(arg, "auto");
		if (!a->model_auto)
			r = set_str(&a->cfg.cpu, arg);
		break;
	case 'k':
		r = set_str(&a->cfg.kernel, arg);
		break;
	case 'i':
		r = set_str(&a->cfg.initrd, arg);
		break;
	case 'a':
		r = set_str(&a->cfg.append, arg);
		break;
	case 'd':
		r = set_str(&a->cfg.disk, arg);
		break;
	case 'I':
		snprintf(a->cfg.ip, sizeof(a->cfg.ip), "%s", arg);
		if (!tgvm_net_addr_ok(arg))
			r = -EINVAL;
		break;
	case 'A':
		snprintf(a->cfg.accel, sizeof(a->cfg.accel), "%s", arg);
		break;
	case 'X': {
		int kind = vm_machine_from_string(arg);

		if (kind < 0)
			return cli_fail(TGVM_EXIT_USAGE, "vm start",
			                "unknown machine '%s' (q35, pc or microvm)", arg);
		snprintf(a->cfg.machine, sizeof(a->cfg.machine), "%s", vm_machine_qemu(kind));
		break;
	}
	case 'n':
		a->dry = true;
		break;
	case 'D':
		a->memdev = arg;
		break;
	case 'j':
		a->json = true;
		break;
	case 'w':
		if (strlen(arg) > 512 || strpbrk(arg, " \t\n\"'"))
			r = -EINVAL;
		a->workload = arg;
		break;
	default:
		vm_usage();
		return TGVM_EXIT_USAGE;
	}
	if (r < 0) {
		const char *what = c == 'I'   ? "--ip: a guest address is 198.18.0.1 to "
		                                "198.19.255.254 (the fabric's /15)"
		                   : c == 'H' ? "--host: not a host name"
		                   : c == 'w' ? "--workload: no spaces or quotes, at most "
		                                "512 characters"
		                              : "out of memory";

		return cli_fail(TGVM_EXIT_USAGE, "vm start", "bad value '%s' (%s)", arg, what);
	}
	return 0;
}

static int vm_start_cmd(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"host", required_argument, NULL, 'H'},
	    {"mem", required_argument, NULL, 'm'},
	    {"cpus", required_argument, NULL, 'c'},
	    {"model", required_argument, NULL, 'M'},
	    {"kernel", required_argument, NULL, 'k'},
	    {"initrd", required_argument, NULL, 'i'},
	    {"append", required_argument, NULL, 'a'},
	    {"disk", required_argument, NULL, 'd'},
	    {"ip", required_argument, NULL, 'I'},
	    {"accel", required_argument, NULL, 'A'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"json", no_argument, NULL, 'j'},
	    {"memdev", required_argument, NULL, 'D'},
	    {"help", no_argument, NULL, 'h'},
	    {"workload", required_argument, NULL, 'w'},
	    {"machine", required_argument, NULL, 'X'},
	    {NULL, 0, NULL, 0},
	};
	struct vm_start_args a = {.workload = "udp-responder"};
	struct vm_config cfg;
	struct tgvm_error err = {0};
	int c, rc = TGVM_EXIT_OK;

	vm_config_init(&a.cfg);
	optind = 1;
	while ((c = getopt_long(argc, argv, "H:m:c:M:k:i:a:d:I:A:njhw:D:X:", opts, NULL)) != -1)
		if ((rc = vm_start_opt(c, optarg, &a)) != 0) {
			vm_config_release(&a.cfg);
			return rc;
		}
	cfg = a.cfg;
	const char *workload = a.workload, *memdev = a.memdev;
	bool dry = a.dry, json = a.json, model_auto = a.model_auto, model_given = a.model_given;

	if (optind != argc - 1 || !cfg.host[0]) {
		if (optind >= argc)
			fprintf(stderr, "tgvm vm start: which name?\n");
		else if (optind < argc - 1)
			fprintf(stderr, "tgvm vm start: unexpected argument '%s'%s\n",
			        argv[optind + 1],
			        cfg.host[0] ? "" : " (the host goes after --host)");
		else
			fprintf(stderr, "tgvm vm start: no host (--host HOST)\n");
		vm_config_release(&cfg);
		vm_usage();
		return TGVM_EXIT_USAGE;
	}
	snprintf(cfg.name, sizeof(cfg.name), "%s", argv[optind]);
	if (strlen(argv[optind]) >= sizeof(cfg.name)) {
		vm_config_release(&cfg);
		return cli_fail(TGVM_EXIT_USAGE, "vm start", "VM name '%s' is too long",
		                argv[optind]);
	}
	if (!strcmp(cfg.name, "status") || !strcmp(cfg.name, "cancel")) {
		vm_config_release(&cfg);
		return cli_fail(TGVM_EXIT_USAGE, "vm start",
		                "'%s' cannot name a VM ('tgvm migrate %s' is a sub-verb)",
		                argv[optind], argv[optind]);
	}
	struct tgvm_vm_start_req req = {.cfg = &cfg,
	                                .model_auto = model_auto,
	                                .model_given = model_given,
	                                .workload = workload,
	                                .memdev = memdev,
	                                .dry_run = dry};
	struct tgvm_vm_start_info info;

	if (tgvm_vm_start(&req, &info, &err) < 0) {
		vm_config_release(&cfg);
		return cli_fail_err("vm start", &err);
	}
	if (info.scanned[0])
		fprintf(stderr,
		        "model auto: the software in '%s' requires %s beyond the boot baseline: "
		        "-cpu %s\n",
		        info.scanned, info.needs && *info.needs ? info.needs : "nothing", cfg.cpu);
	if (dry)
		print_argv(info.argv, json);
	else
		print_started(cfg.name, json);
	tgvm_vm_start_info_release(&info);
	vm_config_release(&cfg);
	return rc;
}

static int vm_list_cmd(int argc, char **argv)
{
	struct vm_info *v = NULL;
	struct tgvm_error err = {0};
	bool json = argc > 1 && !strcmp(argv[1], "--json");
	size_t n = 0;

	if (argc > 2 || (argc == 2 && !json)) {
		vm_usage();
		return TGVM_EXIT_USAGE;
	}
	/* A move whose tgvm process is gone is settled first, from the QEMUs:
	 * the list then shows each VM once, where it runs. */
	migrate_reconcile_all(0, NULL);
	if (vm_list(&v, &n, &err) < 0)
		return cli_fail_err("vm list", &err);
	if (json) {
		json_t *a = json_array();
		char *s;

		for (size_t i = 0; i < n; i++) {
			json_t *j = vm_config_to_json(&v[i].config);

			json_object_set_new(j, "pid", json_integer(v[i].pid));
			json_object_set_new(j, "state", json_string(v[i].state));
			json_object_set_new(j, "migrating", json_boolean(v[i].migrating));
			json_array_append_new(a, j);
		}
		s = json_dumps(a, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (s)
			puts(s);
		free(s);
		json_decref(a);
	} else if (n == 0) {
		printf("no VMs\n");
	} else {
		static const char *const hdr[] = {"VM",  "HOST", "STATE", "ADDRESS",
		                                  "MEM", "CPUS", "PID",   "CPU MODEL"};
		struct cli_table *t = cli_table_new(8, hdr);

		for (size_t i = 0; t && i < n; i++) {
			char mem[32], cpus[16], pid[16], state[40];
			const char *row[8] = {v[i].config.name,
			                      v[i].config.host,
			                      state,
			                      v[i].config.ip,
			                      mem,
			                      cpus,
			                      pid,
			                      v[i].config.cpu ? v[i].config.cpu : "qemu64"};

			snprintf(mem, sizeof(mem), "%lluM",
			         (unsigned long long)(v[i].config.mem_bytes >> 20));
			snprintf(cpus, sizeof(cpus), "%d", v[i].config.cpus);
			snprintf(pid, sizeof(pid), "%d", v[i].pid);
			snprintf(state, sizeof(state), "%s%s", v[i].state,
			         v[i].migrating && strcmp(v[i].state, "migrating") ? " (migrating)"
			                                                           : "");
			cli_table_add(t, row);
		}
		if (t) {
			cli_table_align_right(t, 4);
			cli_table_align_right(t, 5);
			cli_table_align_right(t, 6);
			cli_table_print(t, stdout);
		}
		cli_table_free(t);
	}
	vm_info_free(v, n);
	return TGVM_EXIT_OK;
}

static int vm_stop_cmd(int argc, char **argv)
{
	struct tgvm_error err = {0};
	int rc = TGVM_EXIT_OK;

	if (argc < 2) {
		vm_usage();
		return TGVM_EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++)
		if (vm_stop(argv[i], &err) < 0)
			rc = cli_fail_err("vm stop", &err);
	return rc;
}

/* Relay the terminal to the VM's serial console socket until Ctrl-] or EOF. */
static int vm_console_cmd(int argc, char **argv)
{
	char dir[4096], path[4200];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct termios saved, raw;
	bool tty = isatty(0), log = argc > 2 && !strcmp(argv[2], "--log");
	int fd, rc = TGVM_EXIT_OK;

	if (argc < 2 || argc > 3 || (argc == 3 && !log)) {
		vm_usage();
		return TGVM_EXIT_USAGE;
	}
	if (tgvm_name_check("VM", argv[1], NULL) < 0 || vm_dir(argv[1], dir, sizeof(dir)) < 0 ||
	    access(dir, F_OK) < 0)
		return cli_fail(TGVM_EXIT_USAGE, "vm console", "no VM named '%s'", argv[1]);
	if (log) {
		char *data = NULL;
		size_t len = 0;
		struct tgvm_error err = {0};

		snprintf(path, sizeof(path), "%s/serial.log", dir);
		if (tgvm_file_read(path, 64u << 20, &data, &len, &err) < 0)
			return cli_fail_err("vm console", &err);
		fwrite(data, 1, len, stdout);
		free(data);
		return TGVM_EXIT_OK;
	}
	if (!vm_dir_pid(dir))
		return cli_fail(TGVM_EXIT_FAILURE, "vm console",
		                "VM '%s' is not running ('tgvm vm console %s --log' shows what it "
		                "printed)",
		                argv[1], argv[1]);
	snprintf(path, sizeof(path), "%s/console.sock", dir);
	if (strlen(path) >= sizeof(sa.sun_path))
		return cli_fail(TGVM_EXIT_FAILURE, "vm console", "socket path too long");
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return cli_fail(TGVM_EXIT_FAILURE, "vm console", "cannot connect to '%s': %s", path,
		                strerror(e));
	}
	if (tty) {
		fprintf(stderr, "connected to '%s' (Ctrl-] to leave)\r\n", argv[1]);
		tcgetattr(0, &saved);
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	}
	for (;;) {
		struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
		char buf[4096];
		ssize_t n;

		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents) {
			n = read(0, buf, sizeof(buf));
			if (n <= 0)
				break;
			if (tty && memchr(buf, 0x1d, (size_t)n))
				break;
			if (write(fd, buf, (size_t)n) != n)
				break;
		}
		if (p[1].revents) {
			n = read(fd, buf, sizeof(buf));
			if (n <= 0) {
				rc = TGVM_EXIT_FAILURE;
				break;
			}
			if (write(1, buf, (size_t)n) != n)
				break;
		}
	}
	if (tty) {
		tcsetattr(0, TCSANOW, &saved);
		fprintf(stderr, "\n");
	}
	close(fd);
	return rc;
}

/*
 * Probe the VM's UDP echo responder from the fabric's probe namespace: the
 * longest silence is the network blackout the probe can see, and with no
 * migration running it is the probe's own floor.
 */
static int vm_ping_cmd(int argc, char **argv)
{
	static const struct option opts[] = {{"duration", required_argument, NULL, 'd'},
	                                     {"interval-us", required_argument, NULL, 'i'},
	                                     {"port", required_argument, NULL, 'p'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {NULL, 0, NULL, 0}};
	struct tgvm_error err = {0};
	struct vm_config cfg;
	struct netprobe *np = NULL;
	struct netprobe_stats st;
	double seconds = 2;
	int interval = NETPROBE_INTERVAL_US, port = NETPROBE_PORT;
	bool json = false;
	uint64_t t0, t1;
	int c, rc = TGVM_EXIT_OK;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end = NULL;

		switch (c) {
		case 'd':
			seconds = strtod(optarg, &end);
			if (!end || *end || !(seconds > 0 && seconds <= 3600))
				return cli_fail(TGVM_EXIT_USAGE, "vm ping",
				                "--duration wants seconds in (0, 3600], not '%s'",
				                optarg);
			break;
		case 'i':
		case 'p':
			if (tgvm_parse_int(optarg, c == 'i' ? 10 : 1, c == 'i' ? 1000000 : 65535,
			                   c == 'i' ? &interval : &port) < 0)
				return cli_fail(TGVM_EXIT_USAGE, "vm ping", "bad %s '%s'",
				                c == 'i' ? "--interval-us" : "--port", optarg);
			break;
		case 'j':
			json = true;
			break;
		default:
			vm_usage();
			return TGVM_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		vm_usage();
		return TGVM_EXIT_USAGE;
	}
	vm_config_init(&cfg);
	if (vm_load(argv[optind], &cfg, &err) < 0) {
		vm_config_release(&cfg);
		return cli_fail_err("vm ping", &err);
	}
	{
		char dir[4096];

		if (vm_dir(cfg.name, dir, sizeof(dir)) == 0 && !vm_dir_pid(dir)) {
			rc = cli_fail(TGVM_EXIT_FAILURE, "vm ping",
			              "VM '%s' is not running (its QEMU is gone; 'tgvm vm stop %s' "
			              "removes it)",
			              cfg.name, cfg.name);
			vm_config_release(&cfg);
			return rc;
		}
	}
	if (netprobe_start(tgvm_net_probe_ns(), cfg.ip, port, interval, &np, &err) < 0) {
		vm_config_release(&cfg);
		return cli_fail_err("vm ping", &err);
	}
	t0 = tgvm_wall_ns();
	usleep((useconds_t)(seconds * 1e6));
	t1 = tgvm_wall_ns();
	netprobe_stop(np);
	netprobe_stats(np, t0, t1, &st);
	double gap = (double)(st.longest.end_ns - st.longest.start_ns) / 1e6;
	if (json) {
		printf("{\"vm\": \"%s\", \"address\": \"%s\", \"port\": %d, \"interval_us\": %d, "
		       "\"duration_s\": %.3f, \"sent\": %llu, \"received\": %llu, "
		       "\"longest_gap_ms\": %.3f, \"rtt_median_us\": %.1f}\n",
		       cfg.name, cfg.ip, port, interval, seconds, (unsigned long long)st.sent,
		       (unsigned long long)st.received, gap, st.rtt_median_us);
	} else {
		printf("%s (%s:%d): %llu sent, %llu answered (%.1f%%), longest silence %.3f ms, "
		       "median round trip %.0f us\n",
		       cfg.name, cfg.ip, port, (unsigned long long)st.sent,
		       (unsigned long long)st.received,
		       st.sent ? 100.0 * (double)st.received / (double)st.sent : 0.0, gap,
		       st.rtt_median_us);
	}
	if (!st.received)
		rc = cli_fail(TGVM_EXIT_FAILURE, "vm ping", "VM '%s' did not answer on %s:%d/udp",
		              cfg.name, cfg.ip, port);
	netprobe_free(np);
	vm_config_release(&cfg);
	return rc;
}

int cmd_vm(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} sub[] = {
	    {"start", vm_start_cmd},     {"list", vm_list_cmd}, {"stop", vm_stop_cmd},
	    {"console", vm_console_cmd}, {"ping", vm_ping_cmd},
	};

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		vm_usage();
		return TGVM_EXIT_USAGE;
	}
	for (size_t i = 0; i < ARRAY_SIZE(sub); i++)
		if (!strcmp(argv[1], sub[i].name))
			return sub[i].fn(argc - 1, argv + 1);
	cli_fail(TGVM_EXIT_USAGE, "vm", "unknown sub-verb '%s' (start, list, stop, console, ping)",
	         argv[1]);
	return TGVM_EXIT_USAGE;
}
