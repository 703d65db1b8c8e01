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
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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
	/* The FORCE forms pass net.core.[rw]mem_max (208 KiB on a default
	 * kernel); without CAP_NET_ADMIN the plain ones, capped. What the socket
	 * got is recorded (vm_stream.buf_bytes). Failures leave the kernel's
	 * autotuning: a slower switchover, not a wrong one. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

/* Milliseconds left until @deadline (tgvm_now_ns), 0 when past. */
static int ms_left(uint64_t deadline)
{
	uint64_t now = tgvm_now_ns();

	return now >= deadline ? 0 : (int)((deadline - now) / 1000000ull) + 1;
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
	ret->port = ret->src_port = 0;
	ret->buf_bytes = 0;
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
	/* Accept on the destination (a refused or unreachable connect ends the
	 * wait at once), then wait until the source's connect is done. */
	while (acc < 0) {
		struct pollfd p[2] = {{.fd = l.fd, .events = POLLIN}, {.fd = c.fd, .events = 0}};
		int soerr = 0;
		socklen_t slen = sizeof(soerr);

		if (!ms_left(deadline)) {
			r = tgvm_error_set(reterr, ETIMEDOUT,
			                   "no connection from host '%s' to %s:%u within %d ms",
			                   from, to_addr, ntohs(l.addr.sin_port), timeout_ms);
			goto fail;
		}
		if (poll(p, 2, ms_left(deadline)) < 0 && errno != EINTR) {
			r = tgvm_error_set(reterr, errno, "connecting host '%s' to '%s': poll: %s",
			                   from, to, strerror(errno));
			goto fail;
		}
		if ((p[1].revents & (POLLERR | POLLHUP)) &&
		    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr) {
			r = tgvm_error_set(reterr, soerr,
			                   "connection from host '%s' to %s:%u failed: %s", from,
			                   to_addr, ntohs(l.addr.sin_port), strerror(soerr));
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

	if (poll(&p, 1, ms_left(deadline)) != 1 ||
	    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0 || soerr) {
		r = tgvm_error_set(reterr, soerr ? soerr : ETIMEDOUT,
		                   "connection from host '%s' to %s:%u failed: %s", from, to_addr,
		                   ntohs(l.addr.sin_port), strerror(soerr ? soerr : ETIMEDOUT));
		goto fail;
	}
	if ((r = make_blocking(c.fd)) < 0 || (r = make_blocking(acc)) < 0) {
		tgvm_error_set(reterr, -r, "connection from host '%s' to '%s': fcntl: %s", from, to,
		               strerror(-r));
		goto fail;
	}
	struct sockaddr_in me;
	socklen_t mlen = sizeof(me);

	close(l.fd);
	ret->src_fd = c.fd;
	ret->dst_fd = acc;
	ret->port = ntohs(l.addr.sin_port);
	ret->src_port =
	    getsockname(c.fd, (struct sockaddr *)&me, &mlen) == 0 ? ntohs(me.sin_port) : 0;
	int got = 0;
	socklen_t glen = sizeof(got);

	ret->buf_bytes =
	    buf_bytes > 0 && getsockopt(acc, SOL_SOCKET, SO_RCVBUF, &got, &glen) == 0 ? got / 2 : 0;
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

/* ---- how much of the stream is on its way (sock_diag) ---- */

/*
 * The queues of one connection, asked by its 4-tuple over NETLINK_SOCK_DIAG
 * (an exact lookup: /proc/net/tcp or a dump walks the whole established hash
 * table, 5.7 ms here, too slow for the moment the VM stops). One netlink
 * socket per namespace, opened beforehand.
 */
struct vm_stream_watch {
	int src_nl, dst_nl;          /* in the source's / destination's namespace */
	struct sockaddr_in src, dst; /* the connection's two ends */
	bool have_src_port;          /* QEMU's own connection: found later (vm_stream_watch_find) */
};

static int diag_open_here(void *arg)
{
	int *fd = arg;
	struct timeval tv = {.tv_sec = 0, .tv_usec = 200000}; /* no answer waits longer */

	*fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (*fd < 0)
		return -errno;
	if (setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		int r = -errno;

		close(*fd);
		*fd = -1;
		return r;
	}
	return 0;
}

/*
 * One request: by 4-tuple (@dump false: the local end @local, the remote
 * @remote) or a dump of the established connections to local port
 * @local->sin_port. For each answer, @fn(msg, arg). 0, or -errno.
 */
static int diag_ask(int nl, const struct sockaddr_in *local, const struct sockaddr_in *remote,
                    bool dump, void (*fn)(const struct inet_diag_msg *m, void *arg), void *arg)
{
	static uint32_t next_seq; /* tgvm's migration thread is the only caller */
	uint32_t seq = ++next_seq;
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req = {
	    .nh = {.nlmsg_len = sizeof(req),
	           .nlmsg_type = SOCK_DIAG_BY_FAMILY,
	           .nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0),
	           .nlmsg_seq = seq},
	    .r = {.sdiag_family = AF_INET,
	          .sdiag_protocol = IPPROTO_TCP,
	          .idiag_states = dump ? 1u << 1 /* TCP_ESTABLISHED */ : ~0u,
	          .id = {.idiag_sport = local->sin_port,
	                 .idiag_dport = dump ? 0 : remote->sin_port,
	                 .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
	};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	long buf[2048]; /* aligned for nlmsghdr */
	bool answered = false;

	req.r.id.idiag_src[0] = local->sin_addr.s_addr;
	if (!dump)
		req.r.id.idiag_dst[0] = remote->sin_addr.s_addr;
	if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);

		if (n < 0)
			return -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue; /* the late answer to an earlier request */
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				return h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) ? e->error
				                                                : -EPROTO;
			}
			if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
			    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
				fn(NLMSG_DATA(h), arg);
				answered = true;
			}
		}
		if (!dump && answered)
			return 0; /* one answer */
	}
}

int vm_stream_watch_open(const char *from, const char *to, const char *from_addr,
                         unsigned from_port, const char *to_addr, unsigned to_port,
                         struct vm_stream_watch **ret, struct tgvm_error *reterr)
{
	struct vm_stream_watch *w = calloc(1, sizeof(*w));
	char ns[300];
	int r;

	*ret = NULL;
	if (!w)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	w->src_nl = w->dst_nl = -1;
	w->src.sin_family = w->dst.sin_family = AF_INET;
	w->src.sin_port = htons((uint16_t)from_port);
	w->dst.sin_port = htons((uint16_t)to_port);
	w->have_src_port = from_port != 0;
	if (inet_pton(AF_INET, from_addr, &w->src.sin_addr) != 1 ||
	    inet_pton(AF_INET, to_addr, &w->dst.sin_addr) != 1) {
		vm_stream_watch_free(w);
		return tgvm_error_set(reterr, EINVAL, "stream watch: bad address '%s' or '%s'",
		                      from_addr, to_addr);
	}
	vm_host_netns(from, ns, sizeof(ns));
	r = tgvm_in_netns(ns, diag_open_here, &w->src_nl);
	if (r == 0) {
		vm_host_netns(to, ns, sizeof(ns));
		r = tgvm_in_netns(ns, diag_open_here, &w->dst_nl);
	}
	if (r < 0) {
		vm_stream_watch_free(w);
		return tgvm_error_set(reterr, -r,
		                      "stream watch: no sock_diag socket in host '%s' or '%s': %s",
		                      from, to, strerror(-r));
	}
	*ret = w;
	return 0;
}

static void take_remote_port(const struct inet_diag_msg *m, void *arg)
{
	struct vm_stream_watch *w = arg;

	if (!w->have_src_port && m->id.idiag_dst[0] == w->src.sin_addr.s_addr) {
		w->src.sin_port = m->id.idiag_dport;
		w->have_src_port = true;
	}
}

int vm_stream_watch_find(struct vm_stream_watch *w)
{
	if (w->have_src_port)
		return 0;
	/* A dump, filtered to the local port (slow: only while precopy runs). */
	int r = diag_ask(w->dst_nl, &w->dst, NULL, true, take_remote_port, w);

	return r < 0 ? r : w->have_src_port ? 0 : -ENOENT;
}

struct queues {
	bool found;
	uint32_t rq, wq;
};

static void take_queues(const struct inet_diag_msg *m, void *arg)
{
	struct queues *q = arg;

	q->found = true;
	q->rq = m->idiag_rqueue;
	q->wq = m->idiag_wqueue;
}

int64_t vm_stream_queued(struct vm_stream_watch *w)
{
	struct queues s = {0}, d = {0};

	if (!w || !w->have_src_port ||
	    diag_ask(w->src_nl, &w->src, &w->dst, false, take_queues, &s) < 0 ||
	    diag_ask(w->dst_nl, &w->dst, &w->src, false, take_queues, &d) < 0 || !s.found ||
	    !d.found)
		return -1;
	return (int64_t)s.wq + (int64_t)d.rq;
}

void vm_stream_watch_free(struct vm_stream_watch *w)
{
	if (!w)
		return;
	if (w->src_nl >= 0)
		close(w->src_nl);
	if (w->dst_nl >= 0)
		close(w->dst_nl);
	free(w);
}
