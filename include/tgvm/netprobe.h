/* SPDX-License-Identifier: MIT */
/*
 * The network blackout as users feel it: from a namespace of its own (the
 * fabric's probe namespace), send sequence-numbered UDP datagrams at a fixed
 * interval to a responder in the guest (the bundled guest's udp-responder
 * echoes them) and timestamp the replies. A blackout is a gap between two
 * consecutive replies; the probe keeps the longest gaps with their wall-clock
 * times so a caller can ask for the longest gap inside any window.
 */
#ifndef TGVM_NETPROBE_H
#define TGVM_NETPROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "tgvm/error.h"

#define NETPROBE_PORT        7777 /* udp-responder's default port */
#define NETPROBE_INTERVAL_US 200  /* the bound: every 0.2 ms or less */
#define NETPROBE_GAPS_MAX    4096 /* gaps kept (the longest when more occur) */
#define NETPROBE_GAP_MIN_US  1000 /* shorter silences are not kept as gaps */

struct netprobe;

struct netprobe_gap {
	uint64_t start_ns; /* wall clock of the last reply before the silence */
	uint64_t end_ns;   /* wall clock of the first reply after it */
};

struct netprobe_stats {
	uint64_t sent, received; /* datagrams, whole run */
	uint64_t first_reply_ns, last_reply_ns;
	struct netprobe_gap longest; /* zero when no gap in the window */
	double rtt_median_us;        /* of replies in the window; 0 when none */
};

/*
 * Start probing @addr:@port (dotted IPv4) from network namespace @netns
 * (a name under /run/netns; NULL: the caller's own) every @interval_us
 * (0: NETPROBE_INTERVAL_US). Two threads run until netprobe_stop(). Needs
 * CAP_SYS_ADMIN to enter @netns. *ret is owned by the caller
 * (netprobe_free).
 */
int netprobe_start(const char *netns, const char *addr, int port, int interval_us,
                   struct netprobe **ret, struct tgvm_error *reterr);

/* Stop sending and receiving; the gathered figures stay readable. */
void netprobe_stop(struct netprobe *p);

/*
 * Figures for the window [@from_ns, @to_ns] (wall clock; 0 for an open end):
 * the longest silence that overlaps the window, whole (not cut at the
 * window's edges; one still going on ends now), and the median round trip of
 * replies inside it. Safe while the probe runs.
 */
void netprobe_stats(struct netprobe *p, uint64_t from_ns, uint64_t to_ns,
                    struct netprobe_stats *ret);

struct netprobe_window {
	uint64_t sent;                 /* datagrams sent inside the window */
	uint64_t answered;             /* of those, answered (at any time) */
	uint64_t first_reply_after_ns; /* first reply received after the window; 0 none */
};

/*
 * What became of the datagrams sent in [@from_ns, @to_ns] (wall clock), and
 * when the first reply after @to_ns came. Counts the first RTT_MAX datagrams
 * of a run. Safe while the probe runs (replies still on the way are not
 * answered yet).
 */
void netprobe_window(struct netprobe *p, uint64_t from_ns, uint64_t to_ns,
                     struct netprobe_window *ret);

/* Wall clock of the last reply, 0 when none came yet. */
uint64_t netprobe_last_reply_ns(struct netprobe *p);

/* Stops it if needed and frees; accepts NULL. */
void netprobe_free(struct netprobe *p);

#endif
