// SPDX-License-Identifier: MIT
/*
 * VM processes: starting QEMU daemonized inside a host's namespace with its
 * state directory, stopping it (QMP quit, then signals, all bounded), and
 * listing what runs. The accelerator probe lives in accel.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tgvm/qmp-monitor.h"
#include "tgvm/memdev.h"
#include "tgvm/vm.h"
#include "vm/vm-int.h"

#define VM_MAX     1024
#define VM_QUIT_MS 3000
#define VM_TERM_MS 3000

static int vms_dir(char *buf, size_t size)
{
	char state[4096];
	int n;

	if (tgvm_state_dir(state, sizeof(state)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, size, "%s/vms", state);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int vm_dir(const char *name, char *buf, size_t size)
{
	char d[4096];
	int n;

	if (vms_dir(d, sizeof(d)) < 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, size, "%s/%s", d, name);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int read_pidfile(const char *dir)
{
	char path[4200], *data = NULL;
	int pid = 0;

	snprintf(path, sizeof(path), "%s/pid", dir);
	if (tgvm_file_read(path, 64, &data, NULL, NULL) < 0)
		return 0;
	data[strcspn(data, "\r\n ")] = '\0';
	if (tgvm_parse_int(data, 1, INT32_MAX, &pid) < 0)
		pid = 0;
	free(data);
	return pid;
}

int vm_dir_pid(const char *dir)
{
	int pid = read_pidfile(dir);

	return pid > 0 && vm_pid_alive(pid) && vm_pid_is_qemu(pid) ? pid : 0;
}

int vm_qmp_open(const char *dir, int timeout_ms, struct qmp_conn **ret, struct tgvm_error *reterr)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/qmp.sock", dir);
	return qmp_conn_open(path, timeout_ms, ret, reterr);
}

/* Last non-empty line of @dir/qemu.log, which holds QEMU's complaint. */
static void qemu_log_tail(const char *dir, char *buf, size_t size)
{
	char path[4200], *data = NULL;
	size_t len = 0;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "%s/qemu.log", dir);
	if (tgvm_file_read(path, 1 << 20, &data, &len, NULL) < 0)
		return;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	char *line = strrchr(data, '\n');
	snprintf(buf, size, "%s", line ? line + 1 : data);
	free(data);
}

static int write_config(const struct vm_config *c, const char *dir, struct tgvm_error *reterr)
{
	char path[4200], *text = NULL;
	json_t *j = vm_config_to_json(c);
	int r;

	text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (!text)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/config.json", dir);
	r = tgvm_file_write(path, text, strlen(text), reterr);
	free(text);
	return r;
}

static int tap_up(const struct vm_config *c, struct tgvm_error *reterr)
{
	char ns[64];
	int r;

	vm_host_netns(c->host, ns, sizeof(ns));
	/* A tap left behind by a crash is reused as it is. */
	r = vm_net_ip(ns, NULL, "link", "show", c->tap, NULL);
	if (r < 0 &&
	    (r = vm_net_ip(ns, reterr, "tuntap", "add", "dev", c->tap, "mode", "tap", NULL)) < 0)
		return r;
	if ((r = vm_net_ip(ns, reterr, "link", "set", c->tap, "master", "br0", "up", NULL)) < 0)
		return r;
	return 0;
}

static void tap_down(const char *host, const char *tap)
{
	char ns[64];

	vm_host_netns(host, ns, sizeof(ns));
	if (vm_netns_exists(ns))
		vm_net_ip(ns, NULL, "link", "del", tap, NULL);
}

int vm_spawn(const struct vm_config *c, const struct vm_launch *l, int timeout_ms, int *ret_pid,
             struct tgvm_error *reterr)
{
	struct tgvm_strv argv;
	struct qmp_conn *q = NULL;
	char ns[64], path[4200], tail[512];
	int r, status = 0, pid = 0;
	uint64_t deadline = tgvm_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	pid_t child;

	tgvm_strv_init(&argv);
	vm_host_netns(c->host, ns, sizeof(ns));
	if (!vm_netns_exists(ns))
		return tgvm_error_set(reterr, ENOENT, "host '%s' is not up", c->host);
	if ((r = vm_qemu_argv(c, l, &argv, reterr)) < 0)
		return r;
	if ((r = tgvm_mkdir_p(l->dir, reterr)) < 0)
		goto out;
	chmod(l->dir, 0700);
	if ((r = write_config(c, l->dir, reterr)) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/pid", l->dir);
	unlink(path);
	if ((r = tap_up(c, reterr)) < 0)
		goto out;

	child = fork();
	if (child < 0) {
		r = tgvm_error_set(reterr, errno, "fork: %s", strerror(errno));
		goto fail;
	}
	if (child == 0) {
		int nsfd, log, null;

		snprintf(path, sizeof(path), VM_NETNS_DIR "/%s", ns);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0)
			_exit(126);
		umask(077);
		snprintf(path, sizeof(path), "%s/qemu.log", l->dir);
		log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		null = open("/dev/null", O_RDWR);
		if (log < 0 || null < 0)
			_exit(126);
		dup2(null, 0);
		dup2(log, 1);
		dup2(log, 2);
		setsid();
		execvp(argv.v[0], argv.v);
		dprintf(2, "cannot run '%s': %s\n", argv.v[0], strerror(errno));
		_exit(127);
	}
	/* With -daemonize the first process exits once QEMU is initialised. */
	for (;;) {
		r = waitpid(child, &status, WNOHANG);
		if (r == child)
			break;
		if (tgvm_now_ns() >= deadline) {
			kill(child, SIGKILL);
			waitpid(child, &status, 0);
			r = tgvm_error_set(reterr, ETIMEDOUT,
			                   "VM '%s': QEMU did not start within %d ms", c->name,
			                   timeout_ms);
			goto fail;
		}
		tgvm_sleep_ms(5);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		qemu_log_tail(l->dir, tail, sizeof(tail));
		if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
			r = tgvm_error_set(reterr, EIO, "VM '%s': cannot enter namespace '%s'",
			                   c->name, ns);
		else
			r = tgvm_error_set(reterr, EIO, "VM '%s': QEMU failed to start: %s",
			                   c->name, tail[0] ? tail : "no message");
		goto fail;
	}
	pid = read_pidfile(l->dir);
	if (pid <= 0) {
		r = tgvm_error_set(reterr, EIO, "VM '%s': QEMU wrote no pid file", c->name);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/qmp.sock", l->dir);
	chmod(path, 0600);
	{
		uint64_t now = tgvm_now_ns();
		int left = now >= deadline ? 1 : (int)((deadline - now) / 1000000ull) + 1;

		r = qmp_conn_open(path, left, &q, reterr);
	}
	if (r < 0) {
		tgvm_error_prefix(reterr, "VM '%s'", c->name);
		goto fail;
	}
	qmp_conn_free(q);
	if (ret_pid)
		*ret_pid = pid;
	r = 0;
	goto out;
fail:
	if (pid > 0 && vm_pid_is_qemu(pid)) {
		kill(pid, SIGKILL);
		vm_pid_wait_gone(pid, 2000);
	}
	tap_down(c->host, c->tap);
out:
	tgvm_strv_release(&argv);
	return r;
}

static int rm_rf(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[4400];

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			rm_rf(path);
		else
			unlink(path);
	}
	closedir(d);
	return rmdir(dir) < 0 ? -errno : 0;
}

/* Pick the lowest free guest address 198.19.0.2 ... 198.19.255.254. */
static int pick_ip(struct vm_config *c, struct tgvm_error *reterr)
{
	struct vm_info *all = NULL;
	size_t n = 0;
	int r = vm_list(&all, &n, reterr);

	if (r < 0)
		return r;
	for (int i = 2; i < 65535; i++) {
		char a[TGVM_ADDR_MAX];
		bool used = false;

		if ((i & 0xff) == 0 || (i & 0xff) == 0xff)
			continue;
		snprintf(a, sizeof(a), "198.19.%d.%d", i >> 8, i & 0xff);
		for (size_t k = 0; k < n && !used; k++)
			used = !strcmp(all[k].config.ip, a);
		if (!used) {
			memcpy(c->ip, a, sizeof(a));
			vm_info_free(all, n);
			return 0;
		}
	}
	vm_info_free(all, n);
	return tgvm_error_set(reterr, ENOSPC, "no free guest address");
}

/* A guest address the user gave must not be another VM's or a host's. */
static int ip_free(const struct vm_config *c, struct tgvm_error *reterr)
{
	struct vm_info *all = NULL;
	struct vm_host *hosts = NULL;
	size_t n = 0, nh = 0;
	int r = 0;

	if (vm_list(&all, &n, NULL) == 0)
		for (size_t k = 0; k < n && !r; k++)
			if (!strcmp(all[k].config.ip, c->ip))
				r = tgvm_error_set(
				    reterr, EEXIST,
				    "address %s is in use by VM '%s' (leave out --ip "
				    "and tgvm picks a free one)",
				    c->ip, all[k].config.name);
	vm_info_free(all, n);
	if (!r && host_list(&hosts, &nh, NULL) == 0)
		for (size_t k = 0; k < nh && !r; k++)
			if (!strcmp(hosts[k].address, c->ip))
				r = tgvm_error_set(reterr, EEXIST, "address %s is host '%s''s own",
				                   c->ip, hosts[k].name);
	free(hosts);
	return r;
}

/* A microvm kernel under TCG gets its TSC rate on the command line (vm_tsc_early_arg()). */
static int microvm_tsc(struct vm_config *c, struct tgvm_error *reterr)
{
	const char *a = c->append ? c->append : VM_APPEND_DEFAULT;
	char arg[64], *na = NULL;

	if (vm_machine_kind(c->machine) != VM_MACHINE_MICROVM || !c->kernel ||
	    strcmp(c->accel, "tcg") || strstr(a, "tsc_early_khz="))
		return 0;
	if (vm_tsc_early_arg(arg, sizeof(arg)) < 0)
		return 0; /* the kernel may still calibrate against the PIT */
	if (asprintf(&na, "%s %s", a, arg) < 0)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	free(c->append);
	c->append = na;
	return 0;
}

int vm_start(const struct vm_config *in, struct tgvm_error *reterr)
{
	struct vm_config c;
	struct vm_host h;
	char dir[4200], reason[256];
	struct vm_launch l = {.dir = dir};
	int r;

	if ((r = vm_config_copy(&c, in)) < 0)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	if ((r = vm_config_finish(&c, reterr)) < 0)
		goto out;
	if ((r = host_get(c.host, &h, reterr)) < 0)
		goto out;
	if (vm_dir(c.name, dir, sizeof(dir)) < 0) {
		r = tgvm_error_set(reterr, ENAMETOOLONG, "state directory path too long");
		goto out;
	}
	{
		/* The directory is the VM's claim on its name: made with one mkdir,
		 * so that of two starts of one name only one goes on. */
		char parent[4096];

		if (vms_dir(parent, sizeof(parent)) < 0) {
			r = tgvm_error_set(reterr, ENAMETOOLONG, "state directory path too long");
			goto out;
		}
		if ((r = tgvm_mkdir_p(parent, reterr)) < 0)
			goto out;
		if (mkdir(dir, 0700) < 0) {
			if (errno == EEXIST)
				r = tgvm_error_set(reterr, EEXIST,
				                   vm_dir_pid(dir)
				                       ? "VM '%s' already exists"
				                       : "VM '%s' already exists (not "
				                         "running, or still starting; "
				                         "'tgvm vm stop %s' removes it)",
				                   c.name, c.name);
			else
				r = tgvm_error_set(reterr, errno, "cannot create '%s': %s", dir,
				                   strerror(errno));
			goto out;
		}
	}
	if ((!c.ip[0] && (r = pick_ip(&c, reterr)) < 0) ||
	    (in->ip[0] && (r = ip_free(&c, reterr)) < 0)) {
		rmdir(dir);
		goto out;
	}
	if (!c.accel[0])
		snprintf(
		    c.accel, sizeof(c.accel), "%s",
		    vm_accel_to_string(vm_accel_choose(c.kernel, 20000, reason, sizeof(reason))));
	if ((r = microvm_tsc(&c, reterr)) < 0) {
		rm_rf(dir);
		goto out;
	}
	r = vm_spawn(&c, &l, 30000, NULL, reterr);
	if (r < 0)
		rm_rf(dir);
out:
	vm_config_release(&c);
	return r;
}

int vm_kill_dir(const char *dir, const char *host, const char *tap, struct tgvm_error *reterr)
{
	struct qmp_conn *q = NULL;
	int pid = vm_dir_pid(dir);

	if (pid > 0) {
		if (vm_qmp_open(dir, 1000, &q, NULL) == 0) {
			tgvm_qmp_quit(q, 1000, NULL);
			qmp_conn_free(q);
		}
		if (!vm_pid_wait_gone(pid, VM_QUIT_MS)) {
			kill(pid, SIGTERM);
			if (!vm_pid_wait_gone(pid, VM_TERM_MS)) {
				kill(pid, SIGKILL);
				if (!vm_pid_wait_gone(pid, VM_TERM_MS))
					return tgvm_error_set(reterr, EBUSY,
					                      "QEMU pid %d does not die", pid);
			}
		}
	}
	if (host && tap && tap[0])
		tap_down(host, tap);
	return 0;
}

int vm_load(const char *name, struct vm_config *ret, struct tgvm_error *reterr)
{
	char dir[4200], path[4300], *data = NULL;
	json_t *j;
	json_error_t jerr;
	int r;

	if ((r = tgvm_name_check("VM", name, reterr)) < 0)
		return r;
	if (vm_dir(name, dir, sizeof(dir)) < 0)
		return tgvm_error_set(reterr, ENAMETOOLONG, "state directory path too long");
	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (access(dir, F_OK) < 0)
		return tgvm_error_set(reterr, ENOENT, "no VM named '%s'", name);
	if ((r = tgvm_file_read(path, 1 << 20, &data, NULL, reterr)) < 0)
		return r;
	j = json_loads(data, 0, &jerr);
	free(data);
	if (!j)
		return tgvm_error_set(reterr, EINVAL, "'%s': line %d: %s", path, jerr.line,
		                      jerr.text);
	r = vm_config_from_json(j, ret, reterr);
	json_decref(j);
	if (r < 0)
		tgvm_error_prefix(reterr, "'%s'", path);
	return r;
}

int vm_stop(const char *name, struct tgvm_error *reterr)
{
	struct vm_config c;
	char dir[4200];
	int r;

	if ((r = vm_load(name, &c, reterr)) < 0) {
		/* A directory without a readable config is still removed. */
		if (r != -ENOENT && vm_dir(name, dir, sizeof(dir)) == 0) {
			vm_kill_dir(dir, NULL, NULL, NULL);
			rm_rf(dir);
			return 0;
		}
		return r;
	}
	vm_dir(name, dir, sizeof(dir));
	/* Migration destinations (in-*), if one was left behind. */
	vm_kill_incoming(dir);
	r = vm_kill_dir(dir, c.host, c.tap, reterr);
	if (r == 0)
		rm_rf(dir);
	if (r == 0 && c.mem_file) /* nil-migration: give its memory device space back */
		vm_memdev_free(c.mem_file);
	vm_config_release(&c);
	return r;
}

/* Each subdirectory in-* of @dir: a migration destination's state. */
static int each_incoming(const char *dir, bool kill_them)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char sub[4400], cfgp[4500], *data = NULL;
		struct vm_config dc;
		json_t *j = NULL;

		if (strncmp(de->d_name, "in-", 3))
			continue;
		n++;
		if (!kill_them)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		snprintf(cfgp, sizeof(cfgp), "%s/config.json", sub);
		if (tgvm_file_read(cfgp, 1 << 20, &data, NULL, NULL) == 0)
			j = json_loads(data, 0, NULL);
		free(data);
		if (j && vm_config_from_json(j, &dc, NULL) == 0) {
			vm_kill_dir(sub, dc.host, dc.tap, NULL);
			vm_config_release(&dc);
		} else {
			vm_kill_dir(sub, NULL, NULL, NULL);
		}
		json_decref(j);
		rm_rf(sub);
	}
	closedir(d);
	return n;
}

bool vm_has_incoming(const char *dir)
{
	return each_incoming(dir, false) > 0;
}

void vm_kill_incoming(const char *dir)
{
	each_incoming(dir, true);
}

int vm_rm_rf(const char *dir)
{
	return rm_rf(dir);
}

static int info_cmp(const void *a, const void *b)
{
	return strcmp(((const struct vm_info *)a)->config.name,
	              ((const struct vm_info *)b)->config.name);
}

void vm_info_free(struct vm_info *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		vm_config_release(&v[i].config);
	free(v);
}

int vm_list(struct vm_info **ret, size_t *ret_n, struct tgvm_error *reterr)
{
	char dir[4096], sub[4400];
	struct vm_info *v = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d;

	if (vms_dir(dir, sizeof(dir)) < 0)
		return tgvm_error_set(reterr, ENAMETOOLONG, "state directory path too long");
	d = opendir(dir);
	if (!d) {
		if (errno != ENOENT)
			return tgvm_error_set(reterr, errno, "cannot open '%s': %s", dir,
			                      strerror(errno));
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	while ((de = readdir(d)) && n < VM_MAX) {
		struct vm_info info = {0}, *nv;
		struct qmp_conn *q = NULL;
		struct tgvm_qmp_status st;

		if (de->d_name[0] == '.' || tgvm_name_check("VM", de->d_name, NULL) < 0)
			continue;
		if (vm_load(de->d_name, &info.config, NULL) < 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		info.pid = vm_dir_pid(sub);
		snprintf(info.state, sizeof(info.state), "%s", info.pid ? "unknown" : "dead");
		if (info.pid && vm_has_incoming(sub))
			snprintf(info.state, sizeof(info.state), "migrating");
		else if (info.pid && vm_qmp_open(sub, 1000, &q, NULL) == 0) {
			if (tgvm_qmp_query_status(q, 1000, &st, NULL) == 0)
				snprintf(info.state, sizeof(info.state), "%.*s",
				         (int)sizeof(info.state) - 1,
				         st.status[0] ? st.status : "unknown");
			qmp_conn_free(q);
		}
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		info.migrating = vm_has_incoming(sub);
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			vm_config_release(&info.config);
			vm_info_free(v, n);
			closedir(d);
			return tgvm_error_set(reterr, ENOMEM, "out of memory");
		}
		v = nv;
		v[n++] = info;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), info_cmp);
	*ret = v;
	*ret_n = n;
	return 0;
}
