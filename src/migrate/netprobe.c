// SPDX-License-Identifier: MIT
/*
 * UDP blackout probe: a sender thread paced by an absolute monotonic timer and
 * a receiver thread that timestamps the echoed datagrams. The socket is made
 * inside the probe namespace by a short-lived thread (setns is per thread), so
 * the caller's own namespace never changes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tgvm/netprobe.h"
#include "util/proc.h"
#include "util/util.h"

#define MAGIC        0x50564754u /* "TGVP" */
#define RTT_MAX      (1u << 20)  /* round trips kept (about 200 s at 0.2 ms) */
#define RECV_POLL_MS 50

struct packet {
	uint32_t magic;
	uint32_t pad;
	uint64_t seq;
	uint64_t sent_mono_ns;
};

struct rtt {
	uint64_t at_ns; /* wall clock of the reply */
	uint32_t us;
};

struct netprobe {
	int fd;
	int interval_us;
	atomic_bool stop;
	bool started;
	pthread_t tx, rx;
	pthread_mutex_t lock;
	uint64_t sent, received;
	uint64_t started_ns, first_reply_ns, last_reply_ns, stopped_ns;
	struct netprobe_gap *gaps;
	size_t n_gaps;
	struct rtt *rtts;
	size_t n_rtts, cap_rtts;
	uint64_t *sent_at; /* wall clock of datagram seq (index seq - 1), up to RTT_MAX */
	size_t cap_sent;
	uint64_t last_seq; /* highest sequence number handed out */
	uint8_t *answered; /* bit seq - 1: a reply came */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct sock_req {
	struct sockaddr_in to;
	int fd;
};

/* Runs inside the probe's namespace (tgvm_in_netns): make and connect the socket. */
static int sock_open(void *arg)
{
	struct sock_req *q = arg;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0 || connect(fd, (struct sockaddr *)&q->to, sizeof(q->to)) < 0) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	q->fd = fd;
	return 0;
}

static void *tx_main(void *arg)
{
	struct netprobe *p = arg;
	uint64_t next = mono_ns(), step = (uint64_t)p->interval_us * 1000ull, seq = 0;

	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	while (!atomic_load(&p->stop)) {
		struct packet pk = {.magic = MAGIC, .seq = seq + 1, .sent_mono_ns = mono_ns()};
		struct timespec ts;
		uint64_t wall = tgvm_wall_ns();

		seq++;
		pthread_mutex_lock(&p->lock);
		if (seq > p->cap_sent && p->cap_sent < RTT_MAX) {
			size_t cap = p->cap_sent ? p->cap_sent * 2 : 4096;
			uint64_t *n1 = realloc(p->sent_at, cap * sizeof(*n1));
			uint8_t *n2 = n1 ? realloc(p->answered, cap / 8) : NULL;

			if (n1)
				p->sent_at = n1;
			if (n2) {
				memset(n2 + p->cap_sent / 8, 0, (cap - p->cap_sent) / 8);
				p->answered = n2;
				p->cap_sent = cap;
			}
		}
		if (seq <= p->cap_sent)
			p->sent_at[seq - 1] = wall; /* before the send: a reply cannot beat it */
		p->last_seq = seq;
		pthread_mutex_unlock(&p->lock);
		if (send(p->fd, &pk, sizeof(pk), MSG_DONTWAIT) == (ssize_t)sizeof(pk)) {
			pthread_mutex_lock(&p->lock);
			p->sent++;
			pthread_mutex_unlock(&p->lock);
		} else if (seq <= p->cap_sent) {
			pthread_mutex_lock(&p->lock);
			p->sent_at[seq - 1] = 0; /* not sent: not counted as lost */
			pthread_mutex_unlock(&p->lock);
		}
		next += step;
		if (mono_ns() > next + 50 * step) /* fell far behind (host busy): do not burst */
			next = mono_ns();
		ts.tv_sec = (time_t)(next / 1000000000ull);
		ts.tv_nsec = (long)(next % 1000000000ull);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	return NULL;
}

/* Keep the gap; when the table is full, it replaces the shortest if longer. */
static void gap_add(struct netprobe *p, uint64_t start, uint64_t end)
{
	size_t shortest = 0;

	if (p->n_gaps < NETPROBE_GAPS_MAX) {
		p->gaps[p->n_gaps++] = (struct netprobe_gap){start, end};
		return;
	}
	for (size_t i = 1; i < p->n_gaps; i++)
		if (p->gaps[i].end_ns - p->gaps[i].start_ns <
		    p->gaps[shortest].end_ns - p->gaps[shortest].start_ns)
			shortest = i;
	if (end - start > p->gaps[shortest].end_ns - p->gaps[shortest].start_ns)
		p->gaps[shortest] = (struct netprobe_gap){start, end};
}

static void *rx_main(void *arg)
{
	struct netprobe *p = arg;
	struct pollfd pfd = {.fd = p->fd, .events = POLLIN};

	while (!atomic_load(&p->stop)) {
		struct packet pk;
		ssize_t n;

		if (poll(&pfd, 1, RECV_POLL_MS) <= 0)
			continue;
		n = recv(p->fd, &pk, sizeof(pk), MSG_DONTWAIT);
		if (n != (ssize_t)sizeof(pk) || pk.magic != MAGIC)
			continue; /* ICMP errors (ECONNREFUSED) and strangers */
		uint64_t now = tgvm_wall_ns(), rtt = mono_ns() - pk.sent_mono_ns;

		pthread_mutex_lock(&p->lock);
		p->received++;
		if (!p->first_reply_ns)
			p->first_reply_ns = now;
		if (p->last_reply_ns && now - p->last_reply_ns >= NETPROBE_GAP_MIN_US * 1000ull)
			gap_add(p, p->last_reply_ns, now);
		p->last_reply_ns = now;
		if (pk.seq >= 1 && pk.seq <= p->cap_sent)
			p->answered[(pk.seq - 1) / 8] |= (uint8_t)(1u << ((pk.seq - 1) % 8));
		if (p->n_rtts == p->cap_rtts && p->cap_rtts < RTT_MAX) {
			size_t cap = p->cap_rtts ? p->cap_rtts * 2 : 4096;
			struct rtt *n2 = realloc(p->rtts, cap * sizeof(*n2));

			if (n2) {
				p->rtts = n2;
				p->cap_rtts = cap;
			}
		}
		if (p->n_rtts < p->cap_rtts)
			p->rtts[p->n_rtts++] = (struct rtt){
			    now, rtt > UINT32_MAX * 1000ull ? UINT32_MAX : (uint32_t)(rtt / 1000)};
		pthread_mutex_unlock(&p->lock);
	}
	return NULL;
}

int netprobe_start(const char *netns, const char *addr, int port, int interval_us,
                   struct netprobe **ret, struct tgvm_error *reterr)
{
	struct sock_req q = {.fd = -1};
	struct netprobe *p = NULL;
	int r;

	if (port <= 0 || port > 65535 || interval_us < 0 || interval_us > 1000000)
		return tgvm_error_set(reterr, EINVAL, "netprobe: bad port or interval");
	q.to.sin_family = AF_INET;
	q.to.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &q.to.sin_addr) != 1)
		return tgvm_error_set(reterr, EINVAL, "netprobe: '%s' is not an IPv4 address",
		                      addr);
	r = tgvm_in_netns(netns, sock_open, &q);
	if (r < 0)
		return tgvm_error_set(reterr, -r, "netprobe: cannot open a socket in '%s': %s",
		                      netns ? netns : "this namespace", strerror(-r));
	p = calloc(1, sizeof(*p));
	if (!p || !(p->gaps = calloc(NETPROBE_GAPS_MAX, sizeof(*p->gaps)))) {
		free(p);
		close(q.fd);
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	}
	p->fd = q.fd;
	p->interval_us = interval_us ? interval_us : NETPROBE_INTERVAL_US;
	p->started_ns = tgvm_wall_ns();
	pthread_mutex_init(&p->lock, NULL);
	if (pthread_create(&p->rx, NULL, rx_main, p) != 0) {
		netprobe_free(p);
		return tgvm_error_set(reterr, EAGAIN, "netprobe: cannot start a thread");
	}
	if (pthread_create(&p->tx, NULL, tx_main, p) != 0) {
		atomic_store(&p->stop, true);
		pthread_join(p->rx, NULL);
		netprobe_free(p);
		return tgvm_error_set(reterr, EAGAIN, "netprobe: cannot start a thread");
	}
	p->started = true;
	*ret = p;
	return 0;
}

void netprobe_stop(struct netprobe *p)
{
	if (!p || !p->started)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->tx, NULL);
	pthread_join(p->rx, NULL);
	p->started = false;
	p->stopped_ns = tgvm_wall_ns();
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void netprobe_stats(struct netprobe *p, uint64_t from_ns, uint64_t to_ns,
                    struct netprobe_stats *ret)
{
	uint64_t hi = to_ns ? to_ns : UINT64_MAX, best = 0;
	uint32_t *v = NULL;
	size_t n = 0;

	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&p->lock);
	ret->sent = p->sent;
	ret->received = p->received;
	ret->first_reply_ns = p->first_reply_ns;
	ret->last_reply_ns = p->last_reply_ns;
	for (size_t i = 0; i < p->n_gaps; i++) {
		uint64_t s = p->gaps[i].start_ns, e = p->gaps[i].end_ns;

		if (e < from_ns || s > hi)
			continue;
		if (e - s > best) {
			best = e - s;
			ret->longest = (struct netprobe_gap){s, e};
		}
	}
	/* A silence still going on at the end of the window counts too. */
	uint64_t end = p->started ? tgvm_wall_ns() : p->stopped_ns;
	uint64_t last = p->last_reply_ns ? p->last_reply_ns : p->started_ns;
	if (last <= hi && end > last && end - last >= NETPROBE_GAP_MIN_US * 1000ull &&
	    end - last > best)
		ret->longest = (struct netprobe_gap){last, end};
	for (size_t i = 0; i < p->n_rtts; i++)
		if (p->rtts[i].at_ns >= from_ns && p->rtts[i].at_ns <= hi)
			n++;
	if (n)
		v = malloc(n * sizeof(*v));
	if (v) {
		size_t k = 0;

		for (size_t i = 0; i < p->n_rtts; i++)
			if (p->rtts[i].at_ns >= from_ns && p->rtts[i].at_ns <= hi)
				v[k++] = p->rtts[i].us;
	}
	pthread_mutex_unlock(&p->lock);
	if (v) {
		qsort(v, n, sizeof(*v), cmp_u32);
		ret->rtt_median_us = n % 2 ? v[n / 2] : (v[n / 2 - 1] + (double)v[n / 2]) / 2;
		free(v);
	}
}

void netprobe_window(struct netprobe *p, uint64_t from_ns, uint64_t to_ns,
                     struct netprobe_window *ret)
{
	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->cap_sent && i < p->last_seq; i++) {
		uint64_t at = p->sent_at[i];

		if (!at || at < from_ns || at > to_ns)
			continue;
		ret->sent++;
		if (p->answered[i / 8] & (1u << (i % 8)))
			ret->answered++;
	}
	for (size_t i = 0; i < p->n_rtts; i++)
		if (p->rtts[i].at_ns > to_ns) {
			ret->first_reply_after_ns = p->rtts[i].at_ns;
			break;
		}
	pthread_mutex_unlock(&p->lock);
}

uint64_t netprobe_last_reply_ns(struct netprobe *p)
{
	uint64_t t;

	pthread_mutex_lock(&p->lock);
	t = p->last_reply_ns;
	pthread_mutex_unlock(&p->lock);
	return t;
}

void netprobe_free(struct netprobe *p)
{
	if (!p)
		return;
	netprobe_stop(p);
	if (p->fd >= 0)
		close(p->fd);
	pthread_mutex_destroy(&p->lock);
	free(p->gaps);
	free(p->rtts);
	free(p->sent_at);
	free(p->answered);
	free(p);
}
