// SPDX-License-Identifier: MIT
/*
 * memwriter: runs inside the bundled guest, fills N MiB with a pattern derived
 * from (page index, generation) and keeps rewriting it at a set rate, counting
 * every page it writes. On request (UDP "verify", or SIGUSR1) it checks every
 * page against the generation it must hold, so a live migration that lost or
 * stalled a page is caught, and the counter and boot id show the guest never
 * restarted. The request protocol is described in guest/README.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAGE           4096u
#define WORDS          (PAGE / sizeof(uint64_t))
#define CHUNK_PAGES    64u /* 256 KiB between looks at the socket */
#define MAX_MIB        65536u
#define REPORT_MAX     512
#define MIX_K          UINT64_C(0x9e3779b97f4a7c15)
#define RATE_MAX       UINT64_MAX
#define NS_PER_S       UINT64_C(1000000000)
#define NS_PER_MS      UINT64_C(1000000)
#define CATCHUP_MAX_NS (100 * NS_PER_MS) /* never burst more than 100 ms of backlog */

static volatile sig_atomic_t want_verify, want_status, want_stop;

struct memwriter {
	uint64_t *mem;
	uint64_t pages;
	uint64_t cursor;  /* next page to write in the current sweep */
	uint64_t gen;     /* completed sweeps: pages >= cursor hold gen, pages < cursor gen+1 */
	uint64_t counter; /* pages written since start, the initial fill included */
	uint64_t rate;    /* bytes per second; 0 = never rewrite; RATE_MAX = as fast as possible */
	uint64_t mib;
	uint64_t mark; /* a value set by 'mark N': where the guest's memory came from */
	uint64_t start_ns;
	char boot_id[40];
};

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_verify = 1;
	else if (sig == SIGUSR2)
		want_status = 1;
	else
		want_stop = 1;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* splitmix64 finaliser: a different seed for each (page, generation). */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

/* Word 0 names the page and its generation; the others follow from it. */
static uint64_t page_header(uint64_t page, uint64_t gen)
{
	return (page << 32) | (gen & 0xffffffffu);
}

static void page_write(struct memwriter *w, uint64_t page, uint64_t gen)
{
	uint64_t *p = w->mem + page * WORDS;
	uint64_t h = page_header(page, gen), seed = mix64(h);
	size_t j;

	p[0] = h;
	for (j = 1; j < WORDS; j++)
		p[j] = seed ^ (j * MIX_K);
	w->counter++;
}

/* Returns true when @page holds exactly the pattern of @gen. */
static bool page_check(const struct memwriter *w, uint64_t page, uint64_t gen)
{
	const uint64_t *p = w->mem + page * WORDS;
	uint64_t h = page_header(page, gen), seed = mix64(h);
	uint64_t diff = p[0] ^ h;
	size_t j;

	for (j = 1; j < WORDS; j++)
		diff |= p[j] ^ (seed ^ (j * MIX_K));
	return diff == 0;
}

static uint64_t page_expected_gen(const struct memwriter *w, uint64_t page)
{
	return page < w->cursor ? w->gen + 1 : w->gen;
}

static void read_boot_id(char *buf, size_t size)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	size_t n;

	snprintf(buf, size, "unknown");
	if (!f)
		return;
	if (fgets(buf, (int)size, f)) {
		n = strcspn(buf, "\n");
		buf[n] = '\0';
	}
	fclose(f);
}

static void format_rate(const struct memwriter *w, char *buf, size_t size)
{
	if (w->rate == RATE_MAX)
		snprintf(buf, size, "max");
	else
		snprintf(buf, size, "%" PRIu64, w->rate >> 20);
}

/* The fields every report ends with. */
static void format_tail(const struct memwriter *w, char *buf, size_t size)
{
	char rate[24];

	format_rate(w, rate, sizeof(rate));
	snprintf(buf, size,
	         "pages=%" PRIu64 " gen=%" PRIu64 " cursor=%" PRIu64 " counter=%" PRIu64
	         " mib=%" PRIu64 " rate=%s uptime_ms=%" PRIu64 " boot_id=%s pid=%d mark=%" PRIu64,
	         w->pages, w->gen, w->cursor, w->counter, w->mib, rate,
	         clock_ns(CLOCK_BOOTTIME) / NS_PER_MS, w->boot_id, (int)getpid(), w->mark);
}

static void report_status(const struct memwriter *w, char *buf, size_t size)
{
	char tail[REPORT_MAX];

	format_tail(w, tail, sizeof(tail));
	snprintf(buf, size, "MEMWRITER status %s", tail);
}

/* Check every page; the report names the first bad one and how many are bad. */
static void report_verify(const struct memwriter *w, char *buf, size_t size)
{
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC), page, bad = 0, first = 0;
	uint64_t found_header = 0, ms;
	char tail[REPORT_MAX];

	for (page = 0; page < w->pages; page++) {
		if (page_check(w, page, page_expected_gen(w, page)))
			continue;
		if (bad++ == 0) {
			first = page;
			found_header = w->mem[page * WORDS];
		}
	}
	ms = (clock_ns(CLOCK_MONOTONIC) - t0) / NS_PER_MS;
	format_tail(w, tail, sizeof(tail));
	if (bad == 0) {
		snprintf(buf, size, "MEMWRITER ok %s verify_ms=%" PRIu64, tail, ms);
		return;
	}
	snprintf(buf, size,
	         "MEMWRITER bad page=%" PRIu64 " expected_gen=%" PRIu64 " found_page=%" PRIu64
	         " found_gen=%" PRIu64 " bad_pages=%" PRIu64 " %s verify_ms=%" PRIu64,
	         first, page_expected_gen(w, first), found_header >> 32, found_header & 0xffffffffu,
	         bad, tail, ms);
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char *end = NULL;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || !end || *end || v < min || v > max)
		return -1;
	*ret = v;
	return 0;
}

static int udp_open(uint64_t port)
{
	struct sockaddr_in a;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_ANY);
	a.sin_port = htons((unsigned short)port);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Flip one bit of page @arg, so that a test can prove 'verify' catches a
 * damaged page. The next rewrite of that page repairs it.
 */
static void corrupt_page(struct memwriter *w, const char *arg, char *buf, size_t size)
{
	uint64_t page;

	if (parse_u64(arg, 0, w->pages - 1, &page) < 0) {
		snprintf(buf, size, "MEMWRITER error invalid page '%.32s' (0..%" PRIu64 ")", arg,
		         w->pages - 1);
		return;
	}
	w->mem[page * WORDS + WORDS / 2] ^= 1;
	snprintf(buf, size, "MEMWRITER corrupted page=%" PRIu64, page);
}

/* Answer every queued request; each reply is also printed on the console. */
static void udp_serve(struct memwriter *w, int fd)
{
	char req[256], reply[REPORT_MAX * 2];
	struct sockaddr_storage peer;
	socklen_t plen;
	ssize_t n;

	for (;;) {
		plen = sizeof(peer);
		n = recvfrom(fd, req, sizeof(req) - 1, 0, (struct sockaddr *)&peer, &plen);
		if (n < 0)
			return;
		req[n] = '\0';
		while (n > 0 && (req[n - 1] == '\n' || req[n - 1] == '\r' || req[n - 1] == ' '))
			req[--n] = '\0';
		if (strcmp(req, "verify") == 0)
			report_verify(w, reply, sizeof(reply));
		else if (strcmp(req, "status") == 0)
			report_status(w, reply, sizeof(reply));
		else if (strncmp(req, "corrupt ", 8) == 0)
			corrupt_page(w, req + 8, reply, sizeof(reply));
		else if (strncmp(req, "mark ", 5) == 0 &&
		         parse_u64(req + 5, 0, UINT64_MAX, &w->mark) == 0)
			report_status(w, reply, sizeof(reply));
		else
			snprintf(
			    reply, sizeof(reply),
			    "MEMWRITER error unknown request '%.64s' (want 'verify', 'status', "
			    "'mark N' or 'corrupt PAGE')",
			    req);
		printf("%s\n", reply);
		(void)sendto(fd, reply, strlen(reply), MSG_DONTWAIT, (struct sockaddr *)&peer,
		             plen);
	}
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

static void usage(FILE *f)
{
	fprintf(f, "usage: memwriter [--mib=N] [--rate=MIB_PER_S|max|0] [--port=PORT] "
	           "[--status-every=SEC] [--ready-file=PATH]\n"
	           "Fills N MiB (default 64) with a (page, generation) pattern and rewrites it\n"
	           "at RATE MiB/s (default max; 0 fills once and stays idle). UDP requests on\n"
	           "PORT (default 7778, 0 disables): 'verify' or 'status'. SIGUSR1 verifies,\n"
	           "SIGUSR2 prints the status, both on stdout.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"mib", required_argument, NULL, 'm'},
	    {"rate", required_argument, NULL, 'r'},
	    {"port", required_argument, NULL, 'p'},
	    {"status-every", required_argument, NULL, 's'},
	    {"ready-file", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct memwriter w = {0};
	char line[REPORT_MAX * 2];
	struct sigaction sa;
	sigset_t block, waitmask;
	const char *ready = NULL;
	uint64_t port = 7778, status_every = 0, v, next_ns, next_status_ns, chunk_ns = 0;
	int c, fd = -1;

	w.mib = 64;
	w.rate = RATE_MAX;
	while ((c = getopt_long(argc, argv, "m:r:p:s:R:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (parse_u64(optarg, 1, MAX_MIB, &w.mib) < 0) {
				fprintf(stderr, "memwriter: invalid --mib '%s' (1..%u)\n", optarg,
				        MAX_MIB);
				return 2;
			}
			break;
		case 'r':
			if (strcmp(optarg, "max") == 0) {
				w.rate = RATE_MAX;
			} else if (parse_u64(optarg, 0, 1u << 20, &v) == 0) {
				w.rate = v << 20;
			} else {
				fprintf(stderr,
				        "memwriter: invalid --rate '%s' (MiB/s, 'max' or 0)\n",
				        optarg);
				return 2;
			}
			break;
		case 'p':
			if (parse_u64(optarg, 0, 65535, &port) < 0) {
				fprintf(stderr, "memwriter: invalid --port '%s'\n", optarg);
				return 2;
			}
			break;
		case 's':
			if (parse_u64(optarg, 0, 86400, &status_every) < 0) {
				fprintf(stderr, "memwriter: invalid --status-every '%s'\n", optarg);
				return 2;
			}
			break;
		case 'R':
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

	setvbuf(stdout, NULL, _IOLBF, 0);
	read_boot_id(w.boot_id, sizeof(w.boot_id));
	w.pages = (w.mib << 20) / PAGE;
	w.mem = mmap(NULL, w.mib << 20, PROT_READ | PROT_WRITE,
	             MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (w.mem == MAP_FAILED) {
		fprintf(stderr, "memwriter: cannot map %" PRIu64 " MiB: %s\n", w.mib,
		        strerror(errno));
		return 1;
	}
	if (port) {
		fd = udp_open(port);
		if (fd < 0) {
			fprintf(stderr, "memwriter: cannot bind UDP port %" PRIu64 ": %s\n", port,
			        strerror(errno));
			return 1;
		}
	}

	/* Signals stay blocked except inside ppoll(), so none is ever missed. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &waitmask);

	/* Ready once the socket is bound: requests queue until the fill is done. */
	write_ready(ready);
	w.start_ns = clock_ns(CLOCK_MONOTONIC);
	for (v = 0; v < w.pages; v++)
		page_write(&w, v, 0);
	format_rate(&w, line, sizeof(line));
	printf("MEMWRITER started mib=%" PRIu64 " pages=%" PRIu64 " rate=%s port=%" PRIu64
	       " fill_ms=%" PRIu64 " boot_id=%s pid=%d\n",
	       w.mib, w.pages, line, port, (clock_ns(CLOCK_MONOTONIC) - w.start_ns) / NS_PER_MS,
	       w.boot_id, (int)getpid());

	if (w.rate != RATE_MAX && w.rate != 0)
		chunk_ns = (uint64_t)CHUNK_PAGES * PAGE * NS_PER_S / w.rate;
	next_ns = clock_ns(CLOCK_MONOTONIC);
	next_status_ns = next_ns + status_every * NS_PER_S;

	while (!want_stop) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now = clock_ns(CLOCK_MONOTONIC), wait_ns = 0, i;
		struct timespec ts, *tsp = &ts;

		if (w.rate == 0) {
			tsp = NULL;
		} else if (now < next_ns) {
			wait_ns = next_ns - now;
		}
		if (status_every) {
			uint64_t until = next_status_ns > now ? next_status_ns - now : 0;

			if (!tsp || until < wait_ns)
				wait_ns = until;
			tsp = &ts;
		}
		if (tsp) {
			ts.tv_sec = (time_t)(wait_ns / NS_PER_S);
			ts.tv_nsec = (long)(wait_ns % NS_PER_S);
		}
		if (ppoll(&pfd, fd >= 0 ? 1 : 0, tsp, &waitmask) > 0 && (pfd.revents & POLLIN))
			udp_serve(&w, fd);
		if (want_verify) {
			want_verify = 0;
			report_verify(&w, line, sizeof(line));
			printf("%s\n", line);
		}
		if (want_status) {
			want_status = 0;
			report_status(&w, line, sizeof(line));
			printf("%s\n", line);
		}
		now = clock_ns(CLOCK_MONOTONIC);
		if (status_every && now >= next_status_ns) {
			report_status(&w, line, sizeof(line));
			printf("%s\n", line);
			next_status_ns = now + status_every * NS_PER_S;
		}
		if (w.rate == 0 || now < next_ns)
			continue;

		for (i = 0; i < CHUNK_PAGES; i++) {
			page_write(&w, w.cursor, w.gen + 1);
			if (++w.cursor == w.pages) {
				w.cursor = 0;
				w.gen++;
			}
		}
		if (chunk_ns) {
			next_ns += chunk_ns;
			if (next_ns + CATCHUP_MAX_NS < now)
				next_ns = now;
		}
	}
	report_status(&w, line, sizeof(line));
	printf("%s\n", line);
	return 0;
}
