// SPDX-License-Identifier: MIT
/*
 * udp-responder: runs inside the bundled guest and echoes every UDP datagram
 * back to its sender at once, unchanged. The migration downtime probe sends
 * sequence-numbered datagrams to it and times the echoes; the numbers are the
 * sender's business. Replies never block: a full socket buffer drops a reply.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH     64
#define MAX_DGRAM 2048

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int parse_port(const char *s, int *ret)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || !end || *end || end == s || v < 1 || v > 65535)
		return -1;
	*ret = (int)v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: udp-responder [--port=PORT] [--ready-file=PATH]\n"
	           "Echoes each UDP datagram back to its sender (default port 7777).\n");
}

static void write_ready(const char *path)
{
	FILE *f;

	if (!path || !*path)
		return;
	f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"ready-file", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static char bufs[BATCH][MAX_DGRAM];
	struct sockaddr_in6 peers[BATCH];
	struct mmsghdr msgs[BATCH];
	struct iovec iovs[BATCH];
	struct sockaddr_in6 addr;
	struct sigaction sa;
	const char *ready = NULL;
	unsigned long long echoed = 0, dropped = 0;
	socklen_t addrlen;
	int port = 7777, fd, c, off = 0, one = 1;

	while ((c = getopt_long(argc, argv, "p:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_port(optarg, &port) < 0) {
				fprintf(stderr, "udp-responder: invalid port '%s'\n", optarg);
				return 2;
			}
			break;
		case 'r':
			ready = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	/* One IPv6 socket with v4-mapped addresses answers both families. */
	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	memset(&addr, 0, sizeof(addr));
	if (fd >= 0) {
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
		addr.sin6_family = AF_INET6;
		addr.sin6_addr = in6addr_any;
		addr.sin6_port = htons((unsigned short)port);
		addrlen = sizeof(addr);
	} else {
		/* A kernel booted with ipv6.disable=1: plain IPv4. */
		struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;

		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (fd < 0) {
			fprintf(stderr, "udp-responder: socket: %s\n", strerror(errno));
			return 1;
		}
		a4->sin_family = AF_INET;
		a4->sin_addr.s_addr = htonl(INADDR_ANY);
		a4->sin_port = htons((unsigned short)port);
		addrlen = sizeof(*a4);
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr, addrlen) < 0) {
		fprintf(stderr, "udp-responder: cannot bind UDP port %d: %s\n", port,
		        strerror(errno));
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("UDP-RESPONDER listening port=%d pid=%d\n", port, (int)getpid());
	write_ready(ready);

	while (!stop) {
		int n, i, sent;

		for (i = 0; i < BATCH; i++) {
			iovs[i].iov_base = bufs[i];
			iovs[i].iov_len = MAX_DGRAM;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_name = &peers[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(peers[i]);
			msgs[i].msg_hdr.msg_iov = &iovs[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		/* Block for the first datagram, then take whatever else is queued. */
		n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "udp-responder: recv: %s\n", strerror(errno));
			return 1;
		}
		for (i = 0; i < n; i++) {
			/* Echo exactly what came, truncated datagrams included. */
			iovs[i].iov_len = msgs[i].msg_len;
		}
		sent = sendmmsg(fd, msgs, (unsigned int)n, MSG_DONTWAIT);
		if (sent < 0)
			sent = 0;
		echoed += (unsigned long long)sent;
		dropped += (unsigned long long)(n - sent);
	}
	printf("UDP-RESPONDER stopped echoed=%llu dropped=%llu\n", echoed, dropped);
	close(fd);
	return 0;
}
