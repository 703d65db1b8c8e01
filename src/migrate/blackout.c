// SPDX-License-Identifier: MIT
/*
 * What the network sees of a move: the UDP blackout probe (its floor before
 * the move, the silence around the switch, the datagrams sent while the VM
 * was paused, the destination's TCG cold start) and the fabric switch that
 * points the VM's MAC at the destination the moment the source stops.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "migrate/migrate-int.h"

#define ANSWER_WAIT_MS 20000 /* the guest must answer from the destination within */
#define PROBE_TAIL_MS  500   /* probing goes on this long after the first answer */

/*
 * Start the network blackout probe and measure its floor: the longest silence
 * with no migration running. When the guest cannot answer at this rate (under
 * TCG it may not), slow down until it answers 90% without queueing (median
 * round trip within 10 intervals), at most to once a millisecond, and say so.
 */
void mig_probe_begin(struct mig *m)
{
	const struct migrate_opts *o = m->o;
	struct migrate_timeline *t = m->t;
	int interval = o->probe_interval_us > 0 ? o->probe_interval_us : NETPROBE_INTERVAL_US;
	int floor_ms = o->probe_floor_ms > 0 ? o->probe_floor_ms : 1000;
	struct tgvm_error err = {0};

	if (o->probe_interval_us < 0) {
		snprintf(t->probe_note, sizeof(t->probe_note), "network probe off");
		return;
	}
	if (!m->src.ip[0]) {
		snprintf(t->probe_note, sizeof(t->probe_note), "the VM has no address to probe");
		return;
	}
	for (;;) {
		struct netprobe_stats a, b;
		uint64_t from;
		double answered;
		bool queued;

		if (netprobe_start(tgvm_net_probe_ns(), m->src.ip, NETPROBE_PORT, interval, &m->np,
		                   &err) < 0) {
			snprintf(t->probe_note, sizeof(t->probe_note), "%s", err.msg);
			return;
		}
		tgvm_sleep_ms(100); /* ARP and the first replies */
		from = tgvm_wall_ns();
		netprobe_stats(m->np, from, 0, &a);
		tgvm_sleep_ms(floor_ms);
		netprobe_stats(m->np, from, tgvm_wall_ns(), &b);
		answered = b.sent > a.sent
		               ? (double)(b.received - a.received) / (double)(b.sent - a.sent)
		               : 0;
		if (b.received == a.received) {
			snprintf(
			    t->probe_note, sizeof(t->probe_note),
			    "the VM does not answer UDP on %s:%d (no udp-responder): no network "
			    "blackout measured",
			    m->src.ip, NETPROBE_PORT);
			netprobe_free(m->np);
			m->np = NULL;
			return;
		}
		if (answered > 1)
			answered = 1; /* replies to datagrams sent before the window */
		/* A guest that answers late at this rate queues the probe's own
		 * datagrams: after any pause it first works off that queue, and the
		 * blackout would measure the probe. */
		queued = b.rtt_median_us > 10.0 * interval;
		if ((answered >= 0.9 && !queued) || interval >= 1000) {
			t->probe_interval_us = interval;
			t->probe_floor_answered = answered;
			t->probe_rtt_median_us = b.rtt_median_us;
			t->net_floor_us = (int64_t)((b.longest.end_ns - b.longest.start_ns) / 1000);
			if (interval != (o->probe_interval_us > 0 ? o->probe_interval_us
			                                          : NETPROBE_INTERVAL_US))
				snprintf(
				    t->probe_note, sizeof(t->probe_note),
				    "probe slowed to every %d us: at a faster rate the guest "
				    "answered less than 90%% or queued the datagrams (round trip "
				    "over 10 intervals)",
				    interval);
			break;
		}
		netprobe_free(m->np);
		m->np = NULL;
		interval *= 2;
	}
	m->probe_from_ns = tgvm_wall_ns();
}

/*
 * One event from the destination within @wait_ms: 1 when one came (@bad
 * holds its name when it was a reset, shutdown or panic, else ""), 0 none.
 * Without a destination monitor it only waits.
 */
static int dest_event(struct mig *m, int wait_ms, char *bad, size_t size)
{
	struct qmp_event e;

	bad[0] = '\0';
	if (!m->dq) {
		if (wait_ms)
			tgvm_sleep_ms(wait_ms);
		return 0;
	}
	if (qmp_conn_next_event(m->dq, wait_ms, &e, NULL) <= 0)
		return 0;
	if (!strcmp(e.name, "RESET") || !strcmp(e.name, "SHUTDOWN") ||
	    !strcmp(e.name, "GUEST_PANICKED"))
		snprintf(bad, size, "%s", e.name);
	qmp_event_release(&e);
	return 1;
}

/* Translation blocks the destination's TCG has built so far; -1 unknown (KVM). */
static int64_t dest_translated_blocks(struct mig *m)
{
	int64_t n = -1;

	if (!m->dq || tgvm_qmp_x_query_jit(m->dq, MIG_QMP_MS, &n, NULL) < 0)
		return -1; /* KVM: QEMU refuses */
	return n;
}

/*
 * After RESUME on the destination: the guest must come back there. A reset,
 * shutdown or panic event from the destination, or (when the probe worked
 * before) no answer within ANSWER_WAIT_MS, is an error; the VM stays on the
 * destination all the same (it has run guest code there: its source is never
 * resumed). After the first answer the probe goes on for PROBE_TAIL_MS, so a
 * stall right after it counts too. An interrupt ends the waiting. Then read
 * the silence around the switch and what became of the datagrams sent while
 * the VM was paused.
 */
int mig_probe_finish(struct mig *m, struct tgvm_error *reterr)
{
	struct migrate_timeline *t = m->t;
	struct netprobe_stats st;
	struct netprobe_window w;
	uint64_t until = tgvm_now_ns() + (uint64_t)ANSWER_WAIT_MS * 1000000ull;
	uint64_t from = m->stop_ns ? m->stop_ns : m->resume_ns;
	char bad[64];

	if (!m->resume_ns)
		return 0;
	while (dest_event(m, 0, bad, sizeof(bad)) > 0 && !bad[0])
		;
	/* Without the probe: the destination must at least stay up and not
	 * reset or stop for PROBE_TAIL_MS before its source is given up. */
	until = tgvm_now_ns() + (uint64_t)PROBE_TAIL_MS * 1000000ull;
	while (!m->np && !bad[0] && tgvm_now_ns() < until && !mig_interrupted(m)) {
		if (!vm_dir_pid(m->indir))
			return tgvm_error_set(
			    reterr, EPIPE,
			    "the destination QEMU on host '%s' died after it resumed "
			    "the VM",
			    m->dst_host.name);
		dest_event(m, 20, bad, sizeof(bad));
	}
	until = tgvm_now_ns() + (uint64_t)ANSWER_WAIT_MS * 1000000ull;
	while (m->np && !bad[0] && tgvm_now_ns() < until && !mig_interrupted(m) &&
	       netprobe_last_reply_ns(m->np) <= m->resume_ns)
		dest_event(m, 2, bad, sizeof(bad));
	if (m->np && !bad[0] && netprobe_last_reply_ns(m->np) > m->resume_ns) {
		until = tgvm_now_ns() + (uint64_t)PROBE_TAIL_MS * 1000000ull;
		while (!bad[0] && tgvm_now_ns() < until && !mig_interrupted(m))
			dest_event(m, 5, bad, sizeof(bad));
		/* After the window: the query holds QEMU's big lock a moment. */
		t->dest_translated_blocks = dest_translated_blocks(m);
	}
	netprobe_stop(m->np);
	if (bad[0])
		return tgvm_error_set(reterr, EIO,
		                      "the guest reset or stopped right after it resumed on host "
		                      "'%s' (QMP %s)",
		                      m->dst_host.name, bad);
	if (!m->np)
		return 0;
	if (netprobe_last_reply_ns(m->np) <= m->resume_ns && mig_interrupted(m)) {
		snprintf(t->probe_note, sizeof(t->probe_note),
		         "interrupted before the guest answered from host '%s'", m->dst_host.name);
		return 0;
	}
	if (netprobe_last_reply_ns(m->np) <= m->resume_ns)
		return tgvm_error_set(reterr, EIO,
		                      "the guest answered on the source but not within %d ms after "
		                      "it resumed on host '%s'",
		                      ANSWER_WAIT_MS, m->dst_host.name);
	netprobe_window(m->np, from, m->resume_ns, &w);
	t->paused_sent = (int64_t)w.sent;
	t->paused_answered = (int64_t)w.answered;
	if (w.first_reply_after_ns)
		t->first_answer_us = (int64_t)((w.first_reply_after_ns - m->resume_ns) / 1000);
	netprobe_stats(m->np, from, 0, &st);
	if (st.longest.end_ns) {
		t->net_blackout_us = (int64_t)((st.longest.end_ns - st.longest.start_ns) / 1000);
		t->net_gap_start_ns = st.longest.start_ns;
		t->net_gap_end_ns = st.longest.end_ns;
		t->answers_again_us =
		    (int64_t)(st.longest.end_ns / 1000) - (int64_t)(m->resume_ns / 1000);
	} else {
		t->net_blackout_us = 0; /* no silence of 1 ms or more around the switch */
	}
	if (m->probe_from_ns && from > m->probe_from_ns) {
		netprobe_stats(m->np, m->probe_from_ns, from - 1, &st);
		t->net_precopy_silence_us =
		    st.longest.end_ns && st.longest.end_ns <= from
		        ? (int64_t)((st.longest.end_ns - st.longest.start_ns) / 1000)
		        : 0;
	}
	return 0;
}

/* Before the switch: open what the network switch needs (see net_switch). */
void mig_net_switch_prepare(struct mig *m)
{
	struct tgvm_error err = {0};

	if (m->o->no_net_switch || m->o->qemu_defaults || !m->src.mac[0])
		return;
	if (vm_net_switch_prepare(m->src.mac, m->dst_host.name, m->dst.tap, &m->sw, &err) < 0)
		snprintf(m->t->probe_note, sizeof(m->t->probe_note), "%s", err.msg);
}

/* At the source's STOP: frames for the VM go to the destination from now on. */
void mig_net_switch(struct mig *m)
{
	struct tgvm_error err = {0};

	if (!m->sw || m->t->net_switched)
		return;
	if (vm_net_switch_fire(m->sw, &err) == 0) {
		uint64_t now = tgvm_wall_ns();

		m->t->net_switched = true;
		m->t->net_switch_after_stop_us =
		    now > m->stop_ns ? (int64_t)((now - m->stop_ns) / 1000) : 0;
	} else
		snprintf(m->t->probe_note, sizeof(m->t->probe_note), "%s", err.msg);
}

/* A rollback: frames for the VM go back to the source. */
void mig_net_switch_back(struct mig *m)
{
	if (m->t->net_switched &&
	    vm_net_switch(m->src.mac, m->src_host.name, m->src.tap, NULL) == 0)
		m->t->net_switched = false;
}
