// SPDX-License-Identifier: MIT
/*
 * The TCP connection a migration stream runs on, made by tgvm instead of
 * QEMU: both ends are opened inside the hosts' namespaces and handed to the
 * two QEMUs (QMP getfd, "fd:NAME" URIs), so that tgvm chooses the socket
 * buffers. With the kernel's autotuning the stream could queue tens of MiB
 * between the QEMUs (here up to 32 MiB receive buffer): the source then
 * believes it has sent what the destination has yet to load, and stops the
 * VM too early.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "tgvm/vm.h"
#include "util/proc.h"
#include "util/util.h"
#include "vm/vm-int.h"

struct stream_end {
	struct sockaddr_in addr; /* listen: bind here (port 0: any); connect: there */
	int buf_bytes;           /* SO_SNDBUF / SO_RCVBUF, 0: autotuning */
	int fd;
};

static void set_buffers(int fd, int bytes)
{
	if (bytes <= 0)
		return;
	/* Failures leave the kernel's autotuning: slower switchover, not wrong. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

/* Runs in the destination's namespace (tgvm_in_netns). */
static int listen_here(void *arg)
{
	struct stream_end *e = arg;
	socklen_t len = sizeof(e->addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	set_buffers(fd, e->buf_bytes); /* accepted sockets inherit them */
	if (bind(fd, (struct sockaddr *)&e->addr, sizeof(e->addr)) < 0 || listen(fd, 1) < 0 ||
	    getsockname(fd, (struct sockaddr *)&e->addr, &len) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	e->fd = fd;
	return 0;
}

/* Runs in the source's namespace: a non-blocking connect, finished by the caller. */
static int connect_here(void *arg)
{
	struct stream_end *e = arg;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	set_buffers(fd, e->buf_bytes);
	if (connect(fd, (struct sockaddr *)&e->addr, sizeof(e->addr)) < 0 && errno != EINPROGRESS) {
		int r = -errno;

		close(fd);
		return r;
	}
	e->fd = fd;
	return 0;
}

/* Back to blocking mode: QEMU expects a plain stream socket. */
static int make_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ? -errno : 0;
}

/* Is @peer the local end of @fd (the connection we made, not another)? */
static bool is_peer(int fd, const struct sockaddr_in *peer)
{
	struct sockaddr_in me;
	socklen_t len = sizeof(me);

	return getsockname(fd, (struct sockaddr *)&me, &len) == 0 &&
	       me.sin_port == peer->sin_port && me.sin_addr.s_addr == peer->sin_addr.s_addr;
}

int vm_stream_connect(const char *from, const char *to, const char *to_addr, int buf_bytes,
                      int timeout_ms, struct vm_stream *ret, struct tgvm_error *reterr)
{
	char src_ns[300], dst_ns[300];
	struct stream_end l = {.addr.sin_family = AF_INET, .buf_bytes = buf_bytes, .fd = -1};
	struct stream_end c = {.buf_bytes = buf_bytes, .fd = -1};
	uint64_t deadline = tgvm_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	int r, acc = -1;

	ret->src_fd = ret->dst_fd = -1;
	ret->port = 0;
	if (inet_pton(AF_INET, to_addr, &l.addr.sin_addr) != 1)
		return tgvm_error_set(reterr, EINVAL, "host '%s' has no IPv4 address ('%s')", to,
		                      to_addr);
	vm_host_netns(from, src_ns, sizeof(src_ns));
	vm_host_netns(to, dst_ns, sizeof(dst_ns));
	r = tgvm_in_netns(dst_ns, listen_here, &l);
	if (r < 0)
		return tgvm_error_set(reterr, -r, "cannot listen on %s in host '%s': %s", to_addr,
		                      to, strerror(-r));
	c.addr = l.addr;
	r = tgvm_in_netns(src_ns, connect_here, &c);
	if (r < 0) {
		tgvm_error_set(reterr, -r, "cannot connect from host '%s' to %s:%u: %s", from,
		               to_addr, ntohs(l.addr.sin_port), strerror(-r));
		goto fail;
	}
	/* Accept on the destination, then wait until the source's connect is done. */
	while (acc < 0) {
		struct pollfd p = {.fd = l.fd, .events = POLLIN};
		uint64_t now = tgvm_now_ns();

		if (now >= deadline) {
			r = tgvm_error_set(reterr, ETIMEDOUT,
			                   "no connection from host '%s' to %s:%u within %d ms",
			                   from, to_addr, ntohs(l.addr.sin_port), timeout_ms);
			goto fail;
		}
		if (poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1) < 0 && errno != EINTR) {
			r = tgvm_error_set(reterr, errno, "poll: %s", strerror(errno));
			goto fail;
		}
		acc = accept4(l.fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
		if (acc < 0 && errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
			r = tgvm_error_set(reterr, errno, "accept on host '%s': %s", to,
			                   strerror(errno));
			goto fail;
		}
		plen = sizeof(peer);
		if (acc >= 0 && !is_peer(c.fd, &peer)) { /* not ours: keep waiting */
			close(acc);
			acc = -1;
		}
	}
	struct pollfd p = {.fd = c.fd, .events = POLLOUT};
	int soerr = 0;
	socklen_t slen = sizeof(soerr);

	if (poll(&p, 1, timeout_ms) != 1 ||
	    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0 || soerr) {
		r = tgvm_error_set(reterr, soerr ? soerr : ETIMEDOUT,
		                   "connection from host '%s' to %s:%u failed: %s", from, to_addr,
		                   ntohs(l.addr.sin_port), strerror(soerr ? soerr : ETIMEDOUT));
		goto fail;
	}
	if ((r = make_blocking(c.fd)) < 0 || (r = make_blocking(acc)) < 0) {
		tgvm_error_set(reterr, -r, "fcntl: %s", strerror(-r));
		goto fail;
	}
	close(l.fd);
	ret->src_fd = c.fd;
	ret->dst_fd = acc;
	ret->port = ntohs(l.addr.sin_port);
	return 0;
fail:
	if (acc >= 0)
		close(acc);
	if (c.fd >= 0)
		close(c.fd);
	close(l.fd);
	return r < 0 ? r : -EIO;
}

void vm_stream_close(struct vm_stream *s)
{
	if (s->src_fd >= 0)
		close(s->src_fd);
	if (s->dst_fd >= 0)
		close(s->dst_fd);
	s->src_fd = s->dst_fd = -1;
}
