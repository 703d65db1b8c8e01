// SPDX-License-Identifier: MIT
/*
 * Processes for the vm/ module: running `ip` and friends in a namespace with a
 * bounded wait and captured stderr, and telling whether a pid is a live QEMU.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vm/vm-int.h"

#define RUN_OUT_MAX 4096

uint32_t vm_fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

const char *vm_qemu_binary(void)
{
	const char *q = tgvm_config_get()->qemu;

	return q ? q : "qemu-system-x86_64";
}

const char *tgvm_netns_prefix(void)
{
	static char pfx[16];
	const char *e;

	if (pfx[0])
		return pfx;
	e = tgvm_config_get()->netns_prefix;
	if (e && *e && strlen(e) <= 12 &&
	    strspn(e, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(e))
		snprintf(pfx, sizeof(pfx), "%s", e);
	else
		snprintf(pfx, sizeof(pfx), "tgvm-");
	return pfx;
}

const char *tgvm_net_fabric_ns(void)
{
	static char ns[32];

	snprintf(ns, sizeof(ns), "%sfabric", tgvm_netns_prefix());
	return ns;
}

const char *tgvm_net_probe_ns(void)
{
	static char ns[32];

	snprintf(ns, sizeof(ns), "%sprobe", tgvm_netns_prefix());
	return ns;
}

void vm_host_netns(const char *host, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s", tgvm_netns_prefix(), host);
}

bool vm_netns_exists(const char *ns)
{
	char path[256];

	snprintf(path, sizeof(path), VM_NETNS_DIR "/%s", ns);
	return access(path, F_OK) == 0;
}

/* In a forked child: join @ns. Returns 0 or -1 (errno set). */
static int enter_netns(const char *ns)
{
	char path[256];
	int fd, r;

	snprintf(path, sizeof(path), VM_NETNS_DIR "/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = setns(fd, CLONE_NEWNET);
	close(fd);
	return r;
}

int vm_run(const char *ns, char *const *argv, int timeout_ms, struct tgvm_error *reterr)
{
	char out[RUN_OUT_MAX];
	size_t outlen = 0;
	int pipefd[2], status = 0, r;
	uint64_t deadline = tgvm_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return tgvm_error_set(reterr, errno, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		r = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return tgvm_error_set(reterr, r, "fork: %s", strerror(r));
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (ns && enter_netns(ns) < 0) {
			dprintf(pipefd[1], "cannot enter namespace '%s': %s\n", ns,
			        strerror(errno));
			_exit(126);
		}
		dup2(null, 0);
		dup2(null, 1);
		dup2(pipefd[1], 2);
		execvp(argv[0], argv);
		dprintf(2, "cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
		uint64_t now = tgvm_now_ns();
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000ull) + 1;
		ssize_t n;

		if (left == 0)
			break;
		if (poll(&p, 1, left) <= 0)
			continue;
		if (outlen < sizeof(out) - 1)
			n = read(pipefd[0], out + outlen, sizeof(out) - 1 - outlen);
		else {
			char sink[512];

			n = read(pipefd[0], sink, sizeof(sink));
		}
		if (n == 0)
			break;
		if (n > 0 && outlen < sizeof(out) - 1)
			outlen += (size_t)n;
	}
	close(pipefd[0]);
	out[outlen] = '\0';
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return tgvm_error_set(reterr, errno, "waitpid: %s", strerror(errno));
		if (tgvm_now_ns() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return tgvm_error_set(reterr, ETIMEDOUT, "'%s' did not finish within %d ms",
			                      argv[0], timeout_ms);
		}
		tgvm_sleep_ms(5);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = '\0';
	/* Name the command with its arguments: "ip -n tgvm-a link add ...: File exists". */
	struct tgvm_buf cmd;
	tgvm_buf_init(&cmd);
	for (size_t i = 0; argv[i] && cmd.len < 200; i++)
		tgvm_buf_printf(&cmd, "%s%s", i ? " " : "", argv[i]);
	r = tgvm_error_set(reterr, WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ENOENT : EIO,
	                   "'%s' failed: %s", cmd.data ? cmd.data : argv[0],
	                   out[0] ? out : "no message");
	tgvm_buf_release(&cmd);
	return r;
}

int vm_net_ip(const char *ns, struct tgvm_error *reterr, ...)
{
	char *argv[40];
	size_t n = 0;
	va_list ap;
	const char *a;

	argv[n++] = "ip";
	if (ns) {
		argv[n++] = "-n";
		argv[n++] = (char *)ns;
	}
	va_start(ap, reterr);
	while ((a = va_arg(ap, const char *)) && n < ARRAY_SIZE(argv) - 1)
		argv[n++] = (char *)a;
	va_end(ap);
	argv[n] = NULL;
	return vm_run(NULL, argv, 10000, reterr);
}

bool vm_pid_alive(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;
	bool alive = false;

	if (pid <= 0 || kill(pid, 0) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f)) {
		char *p = strrchr(buf, ')');

		alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	}
	fclose(f);
	return alive;
}

bool vm_pid_is_qemu(pid_t pid)
{
	char path[64], buf[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "qemu") != NULL;
}

bool vm_pid_wait_gone(pid_t pid, int timeout_ms)
{
	uint64_t deadline = tgvm_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		/* Reap it if it is our child (not daemonized yet). */
		waitpid(pid, NULL, WNOHANG);
		if (!vm_pid_alive(pid))
			return true;
		if (tgvm_now_ns() >= deadline)
			return false;
		tgvm_sleep_ms(10);
	}
}
