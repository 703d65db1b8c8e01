// SPDX-License-Identifier: MIT
/* Run a helper program with a deadline and capture its standard output. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/proc.h"
#include "util/util.h"

int tgvm_run_capture(char *const argv[], size_t max, int timeout_ms, char **ret_out,
                     int *ret_status, struct tgvm_error *reterr)
{
	int pfd[2] = {-1, -1}, status = 0, r = 0;
	uint64_t deadline = tgvm_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	struct tgvm_buf out;
	bool killed = false;
	pid_t pid;

	tgvm_buf_init(&out);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return tgvm_error_set(reterr, errno, "cannot create a pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		r = tgvm_error_set(reterr, errno, "cannot fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 2);
		}
		dup2(pfd[1], 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	pfd[1] = -1;
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		uint64_t now = tgvm_now_ns();
		char chunk[4096];
		ssize_t n;

		if (now >= deadline) {
			kill(pid, SIGKILL);
			killed = true;
			break;
		}
		if (poll(&p, 1, (int)((deadline - now) / 1000000ULL) + 1) <= 0)
			continue;
		n = read(pfd[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out.len < max)
			tgvm_buf_append(&out, chunk, TGVM_MIN((size_t)n, max - out.len));
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (killed) {
		r = tgvm_error_set(reterr, ETIMEDOUT, "'%s' did not finish within %d ms", argv[0],
		                   timeout_ms);
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		r = tgvm_error_set(reterr, ENOENT, "cannot run '%s': not found", argv[0]);
		goto out;
	}
	if (!out.data)
		tgvm_buf_append(&out, "", 0);
	if (ret_out) {
		*ret_out = out.data;
		out.data = NULL;
	}
	if (ret_status)
		*ret_status = status;
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	tgvm_buf_release(&out);
	return r;
}

struct netns_call {
	const char *netns;
	int (*fn)(void *arg);
	void *arg;
	int r;
};

static void *netns_thread(void *p)
{
	struct netns_call *c = p;
	char path[300];
	int fd;

	if (c->netns) {
		snprintf(path, sizeof(path), "/run/netns/%s", c->netns);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			c->r = -errno;
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		close(fd);
	}
	c->r = c->fn(c->arg);
	return NULL;
}

int tgvm_in_netns(const char *netns, int (*fn)(void *arg), void *arg)
{
	struct netns_call c = {.netns = netns, .fn = fn, .arg = arg};
	pthread_t t;
	int r;

	if (netns && strlen(netns) > 255)
		return -ENAMETOOLONG;
	r = pthread_create(&t, NULL, netns_thread, &c);
	if (r != 0)
		return -r;
	pthread_join(t, NULL);
	return c.r;
}
