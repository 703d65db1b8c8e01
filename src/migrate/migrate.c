// SPDX-License-Identifier: MIT
/*
 * The live-migration pipeline: check, prepare (destination QEMU paused with
 * -incoming defer), precopy (multifd, auto-converge) or postcopy, switch,
 * start, cleanup; each phase timestamped from QEMU's own events where it has
 * them. Owns the in-flight marker migration-active.json and the stored
 * timeline migration.json in the VM's state directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tgvm/migrate.h"
#include "tgvm/netprobe.h"
#include "tgvm/qmp.h"
#include "util/util.h"

#define POLL_MS            100
#define QMP_MS             5000
#define SPAWN_MS           30000
#define RESUME_WAIT_MS     15000
#define RAISE_AFTER_PASSES 3
#define RAISED_LIMIT_MS    300
#define STREAM_BUF_DEFAULT (512 << 10) /* SO_SNDBUF/SO_RCVBUF of the stream (vm/stream.c) */
#define STREAM_FD_NAME     "tgvm-migrate"
#define ANSWER_WAIT_MS     20000 /* the guest must answer from the destination within */
#define PROBE_TAIL_MS      500   /* probing goes on this long after the first answer */
#define PROGRESS_EVERY     (250ull * 1000000ull)
#define CANCEL_FILE        "cancel-request"
#define ACTIVE_FILE        "migration-active.json"
#define CLAIM_FILE         "migration.claim" /* the migrating process's pid */
#define TIMELINE_FILE      "migration.json"

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static const char *const mode_names[MIGRATE_MODE__MAX] = {"precopy", "postcopy", "auto"};
static const char *const phase_names[MIGRATE_PHASE__MAX] = {
    "check", "prepare", "precopy", "pause", "last-copy", "postcopy", "switch", "start", "cleanup",
};

const char *migrate_mode_to_string(enum migrate_mode m)
{
	return m < MIGRATE_MODE__MAX ? mode_names[m] : "?";
}

int migrate_mode_from_string(const char *s)
{
	for (int i = 0; i < MIGRATE_MODE__MAX; i++)
		if (!strcmp(s, mode_names[i]))
			return i;
	return -EINVAL;
}

const char *migrate_phase_to_string(enum migrate_phase p)
{
	return p < MIGRATE_PHASE__MAX ? phase_names[p] : "?";
}

void migrate_opts_init(struct migrate_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = MIGRATE_PRECOPY;
	o->converge_timeout_ms = 10000;
	o->downtime_limit_ms = 20; /* QEMU's own is 300; see RAISED_LIMIT_MS */
	o->check = migrate_check_cpu;
}

void migrate_timeline_init(struct migrate_timeline *t)
{
	memset(t, 0, sizeof(*t));
	t->qemu_downtime_ms = -1;
	t->vcpu_blackout_us = -1;
	t->total_ms = -1;
	t->net_blackout_us = -1;
	t->net_floor_us = -1;
	t->net_precopy_silence_us = -1;
	t->first_answer_us = -1;
	t->answers_again_us = INT64_MIN;
	t->net_switch_after_stop_us = -1;
	t->paused_sent = -1;
	t->paused_answered = -1;
	t->dest_translated_blocks = -1;
	t->extra = json_object();
}

void migrate_timeline_release(struct migrate_timeline *t)
{
	if (!t)
		return;
	json_decref(t->extra);
	t->extra = NULL;
}

static double ms_since(uint64_t base, uint64_t t)
{
	return t >= base ? (double)(t - base) / 1e6 : -(double)(base - t) / 1e6;
}

json_t *migrate_timeline_to_json(const struct migrate_timeline *t)
{
	json_t *j = json_object(), *phases = json_array(), *iters = json_array(), *dt;

	json_object_set_new(j, "vm", json_string(t->vm));
	json_object_set_new(j, "from", json_string(t->from));
	json_object_set_new(j, "to", json_string(t->to));
	json_object_set_new(j, "mode", json_string(migrate_mode_to_string(t->mode)));
	json_object_set_new(j, "status", json_string(t->status));
	json_object_set_new(j, "error", json_string(t->error));
	json_object_set_new(j, "postcopy_used", json_boolean(t->postcopy_used));
	json_object_set_new(j, "postcopy_reason", json_string(t->postcopy_reason));
	json_object_set_new(j, "postcopy_recovery_attempts",
	                    json_integer(t->postcopy_recovery_attempts));
	json_object_set_new(j, "downtime_limit_raised_ms",
	                    t->downtime_limit_raised_ms ? json_integer(t->downtime_limit_raised_ms)
	                                                : json_null());
	json_object_set_new(j, "started_unix_ns", json_integer((json_int_t)t->started_ns));
	json_object_set_new(j, "ended_unix_ns", json_integer((json_int_t)t->ended_ns));
	/* a migration still running: its phases and pipeline so far */
	uint64_t until = t->ended_ns ? t->ended_ns : tgvm_wall_ns();

	json_object_set_new(j, "pipeline_ms", json_real(ms_since(t->started_ns, until)));
	for (int p = 0; p < MIGRATE_PHASE__MAX; p++) {
		if (!t->phase_start_ns[p])
			continue;
		/* a phase left open (running, or cut short by a cancel) lasted until then */
		uint64_t end = t->phase_end_ns[p] ? t->phase_end_ns[p] : until;

		json_array_append_new(
		    phases, json_pack("{s:s, s:f, s:f}", "phase", phase_names[p], "start_ms",
		                      ms_since(t->started_ns, t->phase_start_ns[p]), "duration_ms",
		                      ms_since(t->phase_start_ns[p], end)));
	}
	json_object_set_new(j, "phases", phases);
	for (size_t i = 0; i < t->n_iter; i++) {
		const struct migrate_iteration *it = &t->iter[i];

		json_array_append_new(
		    iters, json_pack("{s:f, s:I, s:I, s:I, s:I, s:I}", "at_ms",
		                     ms_since(t->started_ns, it->t_ns), "pass",
		                     (json_int_t)it->dirty_sync_count, "remaining_bytes",
		                     (json_int_t)it->remaining_bytes, "transferred_bytes",
		                     (json_int_t)it->transferred_bytes, "dirty_rate_bytes_per_s",
		                     (json_int_t)it->dirty_rate_bps, "throughput_bytes_per_s",
		                     (json_int_t)it->throughput_bps));
	}
	json_object_set_new(j, "precopy_iterations", iters);
	dt = json_object();
	json_object_set_new(dt, "qemu_ms",
	                    t->qemu_downtime_ms >= 0 ? json_integer(t->qemu_downtime_ms)
	                                             : json_null());
	json_object_set_new(dt, "vcpu_blackout_ms",
	                    t->vcpu_blackout_us >= 0 ? json_real((double)t->vcpu_blackout_us / 1e3)
	                                             : json_null());
	json_object_set_new(dt, "network_blackout_ms",
	                    t->net_blackout_us >= 0 ? json_real((double)t->net_blackout_us / 1e3)
	                                            : json_null());
	json_object_set_new(dt, "probe_floor_ms",
	                    t->net_floor_us >= 0 ? json_real((double)t->net_floor_us / 1e3)
	                                         : json_null());
	json_object_set_new(j, "downtime", dt);
	json_t *np = json_object();
	json_object_set_new(np, "interval_us",
	                    t->probe_interval_us ? json_integer(t->probe_interval_us)
	                                         : json_null());
	json_object_set_new(np, "floor_answered", json_real(t->probe_floor_answered));
	json_object_set_new(np, "floor_rtt_median_us", json_real(t->probe_rtt_median_us));
	json_object_set_new(np, "precopy_longest_silence_ms",
	                    t->net_precopy_silence_us >= 0
	                        ? json_real((double)t->net_precopy_silence_us / 1e3)
	                        : json_null());
	if (t->net_gap_start_ns) {
		json_object_set_new(np, "blackout_start_ms",
		                    json_real(ms_since(t->started_ns, t->net_gap_start_ns)));
		json_object_set_new(np, "blackout_end_ms",
		                    json_real(ms_since(t->started_ns, t->net_gap_end_ns)));
	}
	json_object_set_new(np, "first_answer_after_resume_ms",
	                    t->first_answer_us >= 0 ? json_real((double)t->first_answer_us / 1e3)
	                                            : json_null());
	json_object_set_new(np, "blackout_end_after_resume_ms",
	                    t->answers_again_us != INT64_MIN
	                        ? json_real((double)t->answers_again_us / 1e3)
	                        : json_null());
	json_object_set_new(np, "sent_while_paused",
	                    t->paused_sent >= 0 ? json_integer(t->paused_sent) : json_null());
	json_object_set_new(np, "answered_of_paused",
	                    t->paused_answered >= 0 ? json_integer(t->paused_answered)
	                                            : json_null());
	json_object_set_new(np, "dest_translated_blocks",
	                    t->dest_translated_blocks >= 0 ? json_integer(t->dest_translated_blocks)
	                                                   : json_null());
	json_object_set_new(np, "fabric_switched_at_stop", json_boolean(t->net_switched));
	json_object_set_new(np, "switched_after_stop_ms",
	                    t->net_switch_after_stop_us >= 0
	                        ? json_real((double)t->net_switch_after_stop_us / 1e3)
	                        : json_null());
	json_object_set_new(np, "note", json_string(t->probe_note));
	json_object_set_new(j, "network_probe", np);
	json_object_set_new(j, "qemu_total_ms",
	                    t->total_ms >= 0 ? json_integer(t->total_ms) : json_null());
	json_object_set_new(j, "transferred_bytes", json_integer((json_int_t)t->transferred_bytes));
	if (t->extra)
		json_object_update(j, t->extra); /* hooks' fields (may fill network_blackout_ms) */
	return j;
}

struct mig {
	bool claimed; /* CLAIM_FILE is ours */
	const struct migrate_opts *o;
	struct migrate_timeline *t;
	struct vm_config src, dst;
	struct vm_host src_host, dst_host;
	char vmdir[4096];
	char indir[4200];
	struct qmp_conn *sq, *dq;
	int dst_pid;
	bool src_was_running;
	bool stop_seen, resume_seen, src_done, dst_done, switch_hooked;
	uint64_t stop_ns, resume_ns, src_done_ns, dst_done_ns;
	uint64_t last_progress_ns;
	uint64_t page_size;
	struct netprobe *np;
	struct vm_netswitch *sw;           /* prepared network switch, fired at STOP */
	uint64_t probe_from_ns;            /* end of the floor window */
	uint64_t last_bytes, last_move_ns; /* stall detection */
	uint64_t last_recover_ns;
	int recover_listens;     /* migrate-recover calls that took on the destination */
	struct vm_stream stream; /* tgvm's connection for the stream (fd >= 0 until handed over) */
	bool stream_fd;          /* the stream runs on it ("fd:" URIs), not on QEMU's own TCP */
	unsigned port;           /* the destination's migration port */
	struct vm_stream_watch *watch; /* its queues, NULL when they cannot be watched */
	int64_t queued_at_stop; /* stream bytes not yet read by the destination at STOP, -1 */
};

static int write_json_file(const char *dir, const char *name, json_t *j, struct tgvm_error *reterr)
{
	char path[4400], *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	int r;

	if (!s)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	r = tgvm_file_write(path, s, strlen(s), reterr);
	free(s);
	return r;
}

static json_t *read_json_file(const char *dir, const char *name)
{
	char path[4400], *data = NULL;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (tgvm_file_read(path, 8u << 20, &data, NULL, NULL) < 0)
		return NULL;
	j = json_loads(data, 0, NULL);
	free(data);
	return j;
}

static void write_active(struct mig *m, const char *status)
{
	json_t *j = migrate_timeline_to_json(m->t);

	json_object_set_new(j, "migrator_pid", json_integer(getpid()));
	json_object_set_new(j, "incoming_dir", json_string(m->indir));
	json_object_set_new(j, "qemu_status", json_string(status));
	json_object_set_new(j, "status", json_string("active"));
	write_json_file(m->vmdir, ACTIVE_FILE, j, NULL);
	json_decref(j);
}

static int qmp_set_caps(struct qmp_conn *q, const char *const *names, const bool *on, size_t n,
                        struct tgvm_error *reterr)
{
	json_t *caps = json_array(), *args;
	int r;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(
		    caps, json_pack("{s:s, s:b}", "capability", names[i], "state", on[i]));
	args = json_pack("{s:o}", "capabilities", caps);
	r = qmp_conn_command(q, "migrate-set-capabilities", args, QMP_MS, NULL, reterr);
	json_decref(args);
	return r;
}

static int simple_cmd(struct qmp_conn *q, const char *cmd, json_t *args, struct tgvm_error *reterr)
{
	int r = qmp_conn_command(q, cmd, args, QMP_MS, NULL, reterr);

	json_decref(args);
	return r;
}

static void phase_begin(struct mig *m, enum migrate_phase p, uint64_t at)
{
	m->t->phase_start_ns[p] = at ? at : tgvm_wall_ns();
}

static void phase_end(struct mig *m, enum migrate_phase p, uint64_t at)
{
	if (m->t->phase_start_ns[p])
		m->t->phase_end_ns[p] = at ? at : tgvm_wall_ns();
}

static uint64_t event_ns(const struct qmp_event *e)
{
	return e->timestamp_us ? e->timestamp_us * 1000ull : e->received_ns;
}

static void src_event(struct mig *m, const struct qmp_event *e)
{
	const char *st = json_string_value(json_object_get(e->data, "status"));

	if (!strcmp(e->name, "STOP") && !m->stop_seen) {
		m->stop_seen = true;
		m->stop_ns = event_ns(e);
		m->t->stop_event_us = e->timestamp_us;
	} else if (!strcmp(e->name, "MIGRATION") && st && !strcmp(st, "completed")) {
		m->src_done = true;
		m->src_done_ns = event_ns(e);
	}
}

static int drain_events(struct mig *m, struct tgvm_error *reterr)
{
	struct qmp_event e;
	int r;

	while ((r = qmp_conn_next_event(m->sq, 0, &e, reterr)) > 0) {
		src_event(m, &e);
		qmp_event_release(&e);
	}
	if (r < 0)
		return tgvm_error_prefix(reterr, "source QEMU");
	while ((r = qmp_conn_next_event(m->dq, 0, &e, reterr)) > 0) {
		const char *st = json_string_value(json_object_get(e.data, "status"));

		if (!strcmp(e.name, "RESUME") && !m->resume_seen) {
			m->resume_seen = true;
			m->resume_ns = event_ns(&e);
			m->t->resume_event_us = e.timestamp_us;
		} else if (!strcmp(e.name, "MIGRATION") && st && !strcmp(st, "completed")) {
			m->dst_done = true;
			m->dst_done_ns = event_ns(&e);
		}
		qmp_event_release(&e);
	}
	if (r < 0) {
		if (r == -EPIPE && !m->resume_seen)
			return tgvm_error_set(
			    reterr, EPIPE, "the destination QEMU on host '%s' died during precopy",
			    m->dst_host.name);
		return tgvm_error_prefix(reterr, "destination QEMU");
	}
	return 0;
}

static uint64_t jnum(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
	if (json_is_real(v))
		return json_real_value(v) > 0 ? (uint64_t)json_real_value(v) : 0;
	return 0;
}

/* One query-migrate sample; *ret_status gets QEMU's status word. */
static int sample(struct mig *m, char *ret_status, size_t size, struct tgvm_error *reterr)
{
	json_t *ret = NULL, *ram;
	const char *st;
	int r = qmp_conn_command(m->sq, "query-migrate", NULL, QMP_MS, &ret, reterr);

	if (r < 0)
		return tgvm_error_prefix(reterr, "source QEMU");
	st = json_string_value(json_object_get(ret, "status"));
	snprintf(ret_status, size, "%s", st ? st : "none");
	ram = json_object_get(ret, "ram");
	if (ram) {
		uint64_t pass = jnum(ram, "dirty-sync-count");
		struct migrate_iteration it = {
		    .t_ns = tgvm_wall_ns(),
		    .dirty_sync_count = pass,
		    .remaining_bytes = jnum(ram, "remaining"),
		    .transferred_bytes = jnum(ram, "transferred"),
		    .dirty_rate_bps = jnum(ram, "dirty-pages-rate") *
		                      (jnum(ram, "page-size") ? jnum(ram, "page-size") : 4096),
		    .throughput_bps =
		        (uint64_t)(json_number_value(json_object_get(ram, "mbps")) * 1e6 / 8),
		};
		struct migrate_timeline *t = m->t;

		/* One entry per pass: a new pass appends, the same pass updates. */
		if (t->n_iter > 0 && t->iter[t->n_iter - 1].dirty_sync_count == pass)
			t->iter[t->n_iter - 1] = it;
		else if (t->n_iter < MIGRATE_ITER_MAX)
			t->iter[t->n_iter++] = it;
		t->transferred_bytes = it.transferred_bytes;
	}
	if (json_object_get(ret, "downtime"))
		m->t->qemu_downtime_ms = (int64_t)jnum(ret, "downtime");
	if (json_object_get(ret, "total-time"))
		m->t->total_ms = (int64_t)jnum(ret, "total-time");
	if (st && !strcmp(st, "failed")) {
		const char *desc = json_string_value(json_object_get(ret, "error-desc"));

		r = tgvm_error_set(reterr, EIO, "migration failed in QEMU: %s",
		                   desc ? desc : "no reason given");
	}
	json_decref(ret);
	return r;
}

/* Wait until the source has no migration in flight (a cancel takes a moment). */
static void wait_source_idle(struct qmp_conn *q, int timeout_ms)
{
	uint64_t until = tgvm_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (tgvm_now_ns() < until) {
		json_t *ret = NULL;
		const char *s;
		bool busy;

		if (qmp_conn_command(q, "query-migrate", NULL, QMP_MS, &ret, NULL) < 0)
			return;
		s = json_string_value(json_object_get(ret, "status"));
		busy =
		    s && (!strcmp(s, "cancelling") || !strcmp(s, "active") || !strcmp(s, "setup") ||
		          !strcmp(s, "device") || !strcmp(s, "pre-switchover"));
		json_decref(ret);
		if (!busy)
			return;
		sleep_ms(20);
	}
}

static bool cancel_requested(const struct mig *m)
{
	char path[4400];

	snprintf(path, sizeof(path), "%s/" CANCEL_FILE, m->vmdir);
	return access(path, F_OK) == 0;
}

/*
 * Start the network blackout probe and measure its floor: the longest silence
 * with no migration running. When the guest cannot answer at this rate (under
 * TCG it may not), slow down until it answers 90% without queueing (median
 * round trip within 10 intervals), at most to once a millisecond, and say so.
 */
static void probe_begin(struct mig *m)
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
		sleep_ms(100); /* ARP and the first replies */
		from = tgvm_wall_ns();
		netprobe_stats(m->np, from, 0, &a);
		sleep_ms(floor_ms);
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
			sleep_ms(wait_ms);
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
	json_t *ret = NULL;
	const char *text, *at;
	long long n = -1;

	if (!m->dq || qmp_conn_command(m->dq, "x-query-jit", NULL, QMP_MS, &ret, NULL) < 0)
		return -1;
	text = json_string_value(json_object_get(ret, "human-readable-text"));
	if (text && (at = strstr(text, "TB count")) && sscanf(at + 8, "%lld", &n) != 1)
		n = -1;
	json_decref(ret);
	return n;
}

/*
 * After the switch, while the source still holds the VM paused: the guest must
 * come back on the destination. A reset, shutdown or panic event from the
 * destination, or (when the probe worked before) no answer within
 * ANSWER_WAIT_MS, fails the migration, and the caller resumes the source.
 * After the first answer the probe goes on for PROBE_TAIL_MS, so a stall
 * right after it counts too (and a reset then still rolls back). Then read
 * the silence around the switch and what became of the datagrams sent while
 * the VM was paused.
 */
static int probe_finish(struct mig *m, struct tgvm_error *reterr)
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
	while (m->np && !bad[0] && tgvm_now_ns() < until &&
	       netprobe_last_reply_ns(m->np) <= m->resume_ns)
		dest_event(m, 2, bad, sizeof(bad));
	if (m->np && !bad[0] && netprobe_last_reply_ns(m->np) > m->resume_ns) {
		until = tgvm_now_ns() + (uint64_t)PROBE_TAIL_MS * 1000000ull;
		while (!bad[0] && tgvm_now_ns() < until)
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

static void net_switch(struct mig *m);

/* The source's STOP, the moment it is read (even while a command waits):
 * the network switch cannot wait for a reply the stopped QEMU sends late. */
static void src_stop_hook(const struct qmp_event *e, void *opaque)
{
	struct mig *m = opaque;

	if (!strcmp(e->name, "STOP") && !m->stop_ns) {
		m->stop_ns = e->timestamp_us ? e->timestamp_us * 1000ull : e->received_ns;
		net_switch(m);
		/* What the destination must still load before the last copy. */
		m->queued_at_stop = vm_stream_queued(m->watch);
	}
}

/* Before the switch: open what the network switch needs (see net_switch). */
static void net_switch_prepare(struct mig *m)
{
	struct tgvm_error err = {0};

	if (m->o->no_net_switch || m->o->qemu_defaults || !m->src.mac[0])
		return;
	if (vm_net_switch_prepare(m->src.mac, m->dst_host.name, m->dst.tap, &m->sw, &err) < 0)
		snprintf(m->t->probe_note, sizeof(m->t->probe_note), "%s", err.msg);
}

/* At the source's STOP: frames for the VM go to the destination from now on. */
static void net_switch(struct mig *m)
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

/* The VM's own port on the destination when QEMU listens itself (the
 * baseline, multifd; postcopy recovery uses the 16 after it). */
static unsigned hashed_port(const struct mig *m)
{
	return 49152u + name_hash(m->src.name) % 8000u;
}

static int prepare(struct mig *m, struct tgvm_error *reterr)
{
	const struct migrate_opts *o = m->o;
	struct vm_launch l = {.dir = m->indir, .incoming = true};
	bool pc = o->mode != MIGRATE_PRECOPY;
	bool mfd = o->mode == MIGRATE_PRECOPY && o->multifd_channels > 0;
	const char *src_caps[] = {"events", "multifd", "auto-converge", "postcopy-ram",
	                          "x-ignore-shared"};
	const bool src_on[] = {true, mfd, o->mode != MIGRATE_POSTCOPY && !o->qemu_defaults, pc,
	                       o->ignore_shared};
	const char *dst_caps[] = {"events", "multifd", "postcopy-ram", "x-ignore-shared"};
	const bool dst_on[] = {true, mfd, pc, o->ignore_shared};
	int channels = o->multifd_channels;
	json_t *st = NULL, *params;
	char uri[96];
	int r;

	/* tgvm's own connection for the stream, except for the baseline (QEMU
	 * as it comes) and multifd (QEMU opens one connection per channel). */
	m->stream_fd = !o->qemu_defaults && !mfd;
	r = vm_spawn(&m->dst, &l, SPAWN_MS, &m->dst_pid, reterr);
	if (r < 0)
		return tgvm_error_prefix(reterr, "cannot start the destination on host '%s'",
		                         m->dst_host.name);
	if ((r = vm_qmp_open(m->indir, QMP_MS, &m->dq, reterr)) < 0)
		return tgvm_error_prefix(reterr, "destination QEMU");
	if ((r = vm_qmp_open(m->vmdir, QMP_MS, &m->sq, reterr)) < 0)
		return tgvm_error_prefix(reterr, "source QEMU");
	if (qmp_conn_command(m->sq, "query-status", NULL, QMP_MS, &st, reterr) < 0)
		return tgvm_error_prefix(reterr, "source QEMU");
	m->src_was_running = json_is_true(json_object_get(st, "running"));
	json_decref(st);
	wait_source_idle(m->sq, 30000); /* a migration cancelled just before may still wind down */
	/* QEMU refuses while the thread of a just-cancelled migration winds down. */
	for (int tries = 0; tries < 150; tries++) {
		r = qmp_set_caps(m->sq, src_caps, src_on, ARRAY_SIZE(src_caps), reterr);
		if (r != -EREMOTEIO || !reterr || !strstr(reterr->msg, "in progress"))
			break;
		sleep_ms(200);
	}
	if (r < 0 || (r = qmp_set_caps(m->dq, dst_caps, dst_on, ARRAY_SIZE(dst_caps), reterr)) < 0)
		return tgvm_error_prefix(reterr, "cannot set migration capabilities");
	if (o->qemu_defaults)
		goto params_done; /* the baseline: QEMU as it comes */
	params = json_pack("{s:I}", "max-bandwidth",
	                   (json_int_t)(o->max_bandwidth ? o->max_bandwidth : (64ull << 30)));
	if (o->downtime_limit_ms > 0)
		json_object_set_new(params, "downtime-limit", json_integer(o->downtime_limit_ms));
	if (o->max_bandwidth) /* the user's cap holds in postcopy too (QEMU: unlimited) */
		json_object_set_new(params, "max-postcopy-bandwidth",
		                    json_integer((json_int_t)o->max_bandwidth));
	if (mfd)
		json_object_set_new(params, "multifd-channels", json_integer(channels));
	if ((r = simple_cmd(m->sq, "migrate-set-parameters", params, reterr)) < 0)
		return tgvm_error_prefix(reterr, "cannot set migration parameters");
	if (mfd && (r = simple_cmd(m->dq, "migrate-set-parameters",
	                           json_pack("{s:i}", "multifd-channels", channels), reterr)) < 0)
		return tgvm_error_prefix(reterr, "cannot set migration parameters");
params_done:
	if (m->stream_fd) {
		int buf = o->stream_buffer < 0 ? 0 /* autotuning */
		          : o->stream_buffer   ? o->stream_buffer
		                               : STREAM_BUF_DEFAULT;

		r = vm_stream_connect(m->src_host.name, m->dst_host.name, m->dst_host.address, buf,
		                      QMP_MS, &m->stream, reterr);
		if (r < 0)
			return tgvm_error_prefix(reterr, "migration stream");
		m->port = m->stream.port;
		if ((r = qmp_conn_getfd(m->dq, STREAM_FD_NAME, m->stream.dst_fd, QMP_MS, reterr)) <
		        0 ||
		    (r = qmp_conn_getfd(m->sq, STREAM_FD_NAME, m->stream.src_fd, QMP_MS, reterr)) <
		        0)
			return tgvm_error_prefix(reterr,
			                         "cannot hand the stream's connection to QEMU");
		vm_stream_close(&m->stream); /* the QEMUs hold their ends now */
		snprintf(uri, sizeof(uri), "fd:" STREAM_FD_NAME);
	} else {
		m->port = hashed_port(m);
		snprintf(uri, sizeof(uri), "tcp:%s:%u", m->dst_host.address, m->port);
	}
	json_object_set_new(
	    m->t->extra, "stream",
	    json_pack("{s:s, s:s, s:i, s:o}", "connection", m->stream_fd ? "tgvm" : "qemu",
	              "address", m->dst_host.address, "port", (int)m->port, "buffer_bytes",
	              m->stream_fd && m->stream.buf_bytes > 0 ? json_integer(m->stream.buf_bytes)
	                                                      : json_null()));
	if ((r = simple_cmd(m->dq, "migrate-incoming", json_pack("{s:s}", "uri", uri), reterr)) < 0)
		return tgvm_error_prefix(reterr, "destination cannot take the stream on %s:%u",
		                         m->dst_host.address, m->port);
	if (o->hooks.before_migrate) /* nil-migration (shared.c) */
		o->hooks.before_migrate(m->sq, m->dq, m->indir, m->t, o->hooks.opaque);
	net_switch_prepare(m);
	/* Not with multifd: its channels share the port and one would be a guess. */
	if (!mfd && vm_stream_watch_open(m->src_host.name, m->dst_host.name, m->src_host.address,
	                                 m->stream_fd ? m->stream.src_port : 0, m->dst_host.address,
	                                 m->port, &m->watch, NULL) < 0)
		m->watch = NULL; /* then queued_at_stop_bytes stays null */
	qmp_conn_set_event_hook(m->sq, src_stop_hook, m);
	if ((r = simple_cmd(m->sq, "migrate", json_pack("{s:s}", "uri", uri), reterr)) < 0)
		return tgvm_error_prefix(reterr, "source cannot start migrating to %s:%u",
		                         m->dst_host.address, m->port);
	return 0;
}

/*
 * Postcopy recovery (the link broke after the switch): once both sides are
 * paused, the destination listens again and the source resumes the stream
 * (QEMU's migrate-recover / migrate resume=true). Called about once a second
 * until it takes; failures just mean "not yet".
 */
static void postcopy_recover(struct mig *m)
{
	json_t *st = NULL;
	const char *ds;
	bool paused;
	char uri[96];

	if (qmp_conn_command(m->dq, "query-migrate", NULL, QMP_MS, &st, NULL) < 0)
		return;
	ds = json_string_value(json_object_get(st, "status"));
	paused = ds && !strcmp(ds, "postcopy-paused");
	json_decref(st);
	snprintf(uri, sizeof(uri), "tcp:%s:%u", m->dst_host.address,
	         hashed_port(m) + 1u + (unsigned)(m->recover_listens % 16));
	if (paused) {
		if (simple_cmd(m->dq, "migrate-recover", json_pack("{s:s}", "uri", uri), NULL) < 0)
			return;
		m->recover_listens++;
	}
	if (!m->recover_listens)
		return;
	snprintf(uri, sizeof(uri), "tcp:%s:%u", m->dst_host.address,
	         hashed_port(m) + (unsigned)(m->recover_listens - 1) % 16 + 1u);
	if (simple_cmd(m->sq, "migrate", json_pack("{s:s, s:b}", "uri", uri, "resume", 1), NULL) ==
	    0)
		m->t->postcopy_recovery_attempts++;
}

static int run(struct mig *m, struct tgvm_error *reterr)
{
	const struct migrate_opts *o = m->o;
	struct migrate_timeline *t = m->t;
	uint64_t deadline, precopy_start, now;
	char status[32] = "setup";
	bool postcopy_asked = false, limit_raised = false;
	int r;

	deadline =
	    tgvm_now_ns() + (uint64_t)(o->timeout_ms > 0 ? o->timeout_ms : 600000) * 1000000ull;
	int stall_ms = o->stall_timeout_ms > 0 ? o->stall_timeout_ms : 10000;
	phase_begin(m, MIGRATE_PHASE_PRECOPY, 0);
	precopy_start = tgvm_now_ns();
	for (;;) {
		if ((r = drain_events(m, reterr)) < 0)
			return r;
		if (m->stop_seen && !m->switch_hooked) {
			m->switch_hooked = true;
			net_switch(m);
			if (o->hooks.switchover)
				o->hooks.switchover(&m->src, &m->src_host, &m->dst_host, t,
				                    o->hooks.opaque);
		}
		if (m->src_done)
			break;
		if ((r = sample(m, status, sizeof(status), reterr)) < 0) {
			if (!vm_dir_pid(m->indir) && !m->resume_seen) {
				char why[TGVM_ERROR_MSG_MAX / 2];

				snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1,
				         reterr ? reterr->msg : "");
				return tgvm_error_set(
				    reterr, EPIPE,
				    "the destination QEMU on host '%s' died during "
				    "precopy (%s)",
				    m->dst_host.name, why);
			}
			return r;
		}
		if (!strcmp(status, "completed"))
			break;
		/* QEMU's own connection (the baseline): learn its source port now,
		 * while the dump that takes costs nothing that waits (a no-op once
		 * known, and for tgvm's connection). */
		if (m->watch && !m->stop_seen && !strcmp(status, "active"))
			vm_stream_watch_find(m->watch);
		/* A stream that stops moving (a link down, a peer that hangs) would
		 * leave QEMU waiting on TCP for minutes: give up and roll back. */
		now = tgvm_now_ns();
		if (t->transferred_bytes != m->last_bytes || !m->last_move_ns) {
			m->last_bytes = t->transferred_bytes;
			m->last_move_ns = now;
		} else if ((!strcmp(status, "active") || !strcmp(status, "setup")) &&
		           now - m->last_move_ns >= (uint64_t)stall_ms * 1000000ull) {
			return tgvm_error_set(
			    reterr, ETIMEDOUT,
			    "the migration stream to host '%s' moved nothing for %d ms "
			    "(link down or destination stuck)",
			    m->dst_host.name, stall_ms);
		}
		if (!strcmp(status, "postcopy-active") && t->n_iter &&
		    t->iter[t->n_iter - 1].remaining_bytes > 0 &&
		    now - m->last_move_ns >= (uint64_t)stall_ms * 1000000ull) {
			/* The VM already runs on the destination and pulls its pages
			 * from here: neither side may go. Pause both channels so QEMU
			 * notices at once, then recover when the link is back. */
			qmp_conn_command(m->sq, "migrate-pause", NULL, QMP_MS, NULL, NULL);
			qmp_conn_command(m->dq, "migrate-pause", NULL, QMP_MS, NULL, NULL);
			m->last_move_ns = now;
		}
		if (!strcmp(status, "postcopy-paused") &&
		    now - m->last_recover_ns >= 1000ull * 1000000ull) {
			postcopy_recover(m);
			m->last_recover_ns = now;
		}
		if (!strcmp(status, "cancelled"))
			return tgvm_error_set(reterr, ECANCELED, "migration was cancelled");
		if (!vm_dir_pid(m->indir) && !m->resume_seen)
			return tgvm_error_set(
			    reterr, EPIPE, "the destination QEMU on host '%s' died during %s",
			    m->dst_host.name,
			    !strcmp(status, "postcopy-active") ? "postcopy" : "precopy");
		if (cancel_requested(m)) {
			if (t->postcopy_used || !strncmp(status, "postcopy", 8))
				return tgvm_error_set(reterr, EBUSY,
				                      "cannot cancel: postcopy already switched "
				                      "the VM to host '%s'",
				                      m->dst_host.name);
			return tgvm_error_set(reterr, ECANCELED, "migration cancelled by request");
		}
		now = tgvm_now_ns();
		if (now >= deadline)
			return tgvm_error_set(reterr, ETIMEDOUT,
			                      "migration did not finish within %d ms",
			                      o->timeout_ms > 0 ? o->timeout_ms : 600000);
		/* A guest that dirties memory faster than a 20 ms stop can carry
		 * never converges. After RAISE_AFTER_PASSES passes accept QEMU's own
		 * 300 ms, so that precopy ends in a few more passes (auto mode turns
		 * to postcopy instead, after --converge-timeout). */
		if (!limit_raised && !o->qemu_defaults && o->downtime_limit_ms < RAISED_LIMIT_MS &&
		    !strcmp(status, "active") && t->n_iter &&
		    t->iter[t->n_iter - 1].dirty_sync_count >= RAISE_AFTER_PASSES) {
			limit_raised = true;
			if (simple_cmd(m->sq, "migrate-set-parameters",
			               json_pack("{s:i}", "downtime-limit", RAISED_LIMIT_MS),
			               NULL) == 0)
				t->downtime_limit_raised_ms = RAISED_LIMIT_MS;
		}
		if (!postcopy_asked && !strcmp(status, "active") && o->mode != MIGRATE_PRECOPY) {
			uint64_t pass = t->n_iter ? t->iter[t->n_iter - 1].dirty_sync_count : 0;
			bool go = false;

			if (o->mode == MIGRATE_POSTCOPY && pass >= 2) {
				go = true;
				snprintf(t->postcopy_reason, sizeof(t->postcopy_reason),
				         "postcopy requested: switched after the first full pass");
			} else if (o->mode == MIGRATE_AUTO &&
			           now - precopy_start >=
			               (uint64_t)o->converge_timeout_ms * 1000000ull) {
				const struct migrate_iteration *it =
				    t->n_iter ? &t->iter[t->n_iter - 1] : NULL;

				go = true;
				snprintf(t->postcopy_reason, sizeof(t->postcopy_reason),
				         "precopy did not converge within %d ms (%" PRIu64
				         " MiB left, dirtying %" PRIu64 " MiB/s)",
				         o->converge_timeout_ms, it ? it->remaining_bytes >> 20 : 0,
				         it ? it->dirty_rate_bps >> 20 : 0);
			}
			if (go) {
				postcopy_asked = true;
				if ((r = qmp_conn_command(m->sq, "migrate-start-postcopy", NULL,
				                          QMP_MS, NULL, reterr)) < 0)
					return tgvm_error_prefix(reterr,
					                         "cannot switch to postcopy");
				t->postcopy_used = true;
			}
		}
		if (o->hooks.progress)
			o->hooks.progress(t, status, o->hooks.opaque);
		if (tgvm_wall_ns() - m->last_progress_ns >= PROGRESS_EVERY) {
			m->last_progress_ns = tgvm_wall_ns();
			write_active(m, status);
		}
		/* Sleep until the next sample, but wake at once for the source's
		 * events: the network is switched the moment STOP comes. */
		struct qmp_event ev;
		if (qmp_conn_next_event(m->sq, POLL_MS, &ev, NULL) > 0) {
			src_event(m, &ev);
			qmp_event_release(&ev);
		}
	}
	/* The source is done; the destination loads the device state and resumes. */
	sample(m, status, sizeof(status), NULL);
	uint64_t wait_until = tgvm_now_ns() + (uint64_t)RESUME_WAIT_MS * 1000000ull;
	while (!m->resume_seen || (!m->dst_done && !t->postcopy_used)) {
		struct qmp_event e;

		if (tgvm_now_ns() >= wait_until)
			break;
		r = qmp_conn_next_event(m->dq, 50, &e, reterr);
		if (r < 0)
			return tgvm_error_prefix(reterr, "destination QEMU after switchover");
		if (r == 0)
			continue;
		const char *st = json_string_value(json_object_get(e.data, "status"));
		if (!strcmp(e.name, "RESUME") && !m->resume_seen) {
			m->resume_seen = true;
			m->resume_ns = event_ns(&e);
			t->resume_event_us = e.timestamp_us;
		} else if (!strcmp(e.name, "MIGRATION") && st && !strcmp(st, "completed")) {
			m->dst_done = true;
			m->dst_done_ns = event_ns(&e);
		}
		qmp_event_release(&e);
	}
	drain_events(m, NULL);
	if (!m->resume_seen) {
		json_t *st = NULL;
		bool running = false;

		if (qmp_conn_command(m->dq, "query-status", NULL, QMP_MS, &st, NULL) == 0)
			running = json_is_true(json_object_get(st, "running"));
		json_decref(st);
		if (!running)
			return tgvm_error_set(reterr, EIO,
			                      "the destination did not resume after the switch");
	}
	return 0;
}

/* Fill phases from the event times gathered by run(). */
static void settle_phases(struct mig *m)
{
	struct migrate_timeline *t = m->t;
	uint64_t pre_end = m->stop_ns ? m->stop_ns : m->src_done_ns;

	if (pre_end)
		phase_end(m, MIGRATE_PHASE_PRECOPY, pre_end);
	if (m->stop_ns) {
		phase_begin(m, MIGRATE_PHASE_PAUSE, m->stop_ns);
		phase_end(m, MIGRATE_PHASE_PAUSE, m->stop_ns);
	}
	if (t->postcopy_used) {
		if (m->stop_ns && m->resume_ns) {
			phase_begin(m, MIGRATE_PHASE_SWITCH, m->stop_ns);
			phase_end(m, MIGRATE_PHASE_SWITCH, m->resume_ns);
		}
		if (m->resume_ns) {
			phase_begin(m, MIGRATE_PHASE_START, m->resume_ns);
			phase_end(m, MIGRATE_PHASE_START, m->resume_ns);
			phase_begin(m, MIGRATE_PHASE_POSTCOPY, m->resume_ns);
			phase_end(m, MIGRATE_PHASE_POSTCOPY,
			          m->src_done_ns ? m->src_done_ns : tgvm_wall_ns());
		}
	} else {
		if (m->stop_ns && m->src_done_ns) {
			phase_begin(m, MIGRATE_PHASE_LAST_COPY, m->stop_ns);
			phase_end(m, MIGRATE_PHASE_LAST_COPY, m->src_done_ns);
		}
		if (m->src_done_ns) {
			/* The destination loads the device state, then resumes (RESUME
			 * comes before its own "completed"). */
			uint64_t sw_end =
			    m->resume_ns > m->src_done_ns ? m->resume_ns : m->src_done_ns;

			phase_begin(m, MIGRATE_PHASE_SWITCH, m->src_done_ns);
			phase_end(m, MIGRATE_PHASE_SWITCH, sw_end);
			if (m->resume_ns) {
				phase_begin(m, MIGRATE_PHASE_START, sw_end);
				phase_end(m, MIGRATE_PHASE_START, sw_end);
			}
		}
	}
	if (m->stop_ns && m->resume_ns && m->resume_ns >= m->stop_ns)
		t->vcpu_blackout_us = (int64_t)((m->resume_ns - m->stop_ns) / 1000);
}

/* After a failure before the switch: keep the source running, remove the destination. */
static void roll_back(struct mig *m)
{
	json_t *st = NULL;

	/* A STOP read while cancelling (a last copy that was under way) must
	 * not point the network at a destination that is about to go. */
	if (m->sq)
		qmp_conn_set_event_hook(m->sq, NULL, NULL);
	if (m->t->net_switched &&
	    vm_net_switch(m->src.mac, m->src_host.name, m->src.tap, NULL) == 0)
		m->t->net_switched = false;

	if (m->sq)
		qmp_conn_command(m->sq, "migrate_cancel", NULL, QMP_MS, NULL, NULL);
	/* Gone, the destination cannot hold the source's stream open. */
	qmp_conn_free(m->dq);
	m->dq = NULL;
	vm_kill_dir(m->indir, m->dst_host.name, m->dst.tap, NULL);
	/* Keep what the guest printed on the destination, for the post-mortem. */
	char from[4400], to[4400];
	snprintf(from, sizeof(from), "%s/serial.log", m->indir);
	snprintf(to, sizeof(to), "%s/serial.log.failed-%s", m->vmdir, m->dst_host.name);
	rename(from, to);
	vm_rm_rf(m->indir);
	if (m->sq) {
		/* The source may hold our connection's end (getfd) without having
		 * used it: let it go (an error just means it had none). */
		if (m->stream_fd) {
			json_t *a = json_pack("{s:s}", "fdname", STREAM_FD_NAME);

			qmp_conn_command(m->sq, "closefd", a, QMP_MS, NULL, NULL);
			json_decref(a);
		}
		wait_source_idle(m->sq, 30000);
		if (m->src_was_running &&
		    qmp_conn_command(m->sq, "query-status", NULL, QMP_MS, &st, NULL) == 0) {
			if (!json_is_true(json_object_get(st, "running")))
				qmp_conn_command(m->sq, "cont", NULL, QMP_MS, NULL, NULL);
		}
		json_decref(st);
	}
}

static const char *const moved_files[] = {"qmp.sock", "console.sock", "serial.log",
                                          "qemu.log", "pid",          "config.json"};

/* After the switch: stop the source, move the destination's state into the VM's directory. */
static int finish(struct mig *m, struct tgvm_error *reterr)
{
	char from[4400], to[4400];
	int r;

	qmp_conn_free(m->sq);
	m->sq = NULL;
	qmp_conn_free(m->dq);
	m->dq = NULL;
	r = vm_kill_dir(m->vmdir, m->src_host.name, m->src.tap, reterr);
	if (r < 0)
		return tgvm_error_prefix(reterr, "cannot stop the source QEMU");
	snprintf(from, sizeof(from), "%s/serial.log", m->vmdir);
	snprintf(to, sizeof(to), "%s/serial.log.%s", m->vmdir, m->src_host.name);
	rename(from, to);
	for (size_t i = 0; i < ARRAY_SIZE(moved_files); i++) {
		snprintf(from, sizeof(from), "%s/%s", m->indir, moved_files[i]);
		snprintf(to, sizeof(to), "%s/%s", m->vmdir, moved_files[i]);
		if (rename(from, to) < 0 && errno != ENOENT)
			return tgvm_error_set(reterr, errno, "cannot move '%s': %s", from,
			                      strerror(errno));
	}
	vm_rm_rf(m->indir);
	return 0;
}

/*
 * One migration of a VM at a time: CLAIM_FILE made with O_EXCL holds the
 * migrating process's pid. A claim whose process is gone is stale and taken
 * over; a live one refuses with EBUSY.
 */
static int claim(struct mig *m, const char *name, struct tgvm_error *reterr)
{
	char path[4400];

	snprintf(path, sizeof(path), "%s/" CLAIM_FILE, m->vmdir);
	for (int tries = 0; tries < 3; tries++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		char *text = NULL;
		long pid = 0;

		if (fd >= 0) {
			dprintf(fd, "%ld\n", (long)getpid());
			close(fd);
			m->claimed = true;
			return 0;
		}
		if (errno != EEXIST)
			return tgvm_error_set(reterr, errno, "cannot create '%s': %s", path,
			                      strerror(errno));
		if (tgvm_file_read(path, 64, &text, NULL, NULL) == 0)
			pid = strtol(text, NULL, 10);
		free(text);
		if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) == 0)
			return tgvm_error_set(reterr, EBUSY,
			                      "VM '%s' is already migrating (tgvm process %ld; "
			                      "'tgvm migrate cancel %s' stops it)",
			                      name, pid, name);
		unlink(path); /* stale: its process is gone */
	}
	return tgvm_error_set(reterr, EBUSY, "VM '%s': cannot claim '%s'", name, path);
}

int migrate_vm(const char *name, const char *to, const struct migrate_opts *o,
               struct migrate_timeline *ret, struct tgvm_error *reterr)
{
	struct mig m = {
	    .o = o, .t = ret, .stream = {.src_fd = -1, .dst_fd = -1}, .queued_at_stop = -1};
	struct migrate_timeline *t = ret;
	char path[4400];
	int r;

	migrate_timeline_init(t);
	t->started_ns = tgvm_wall_ns();
	t->mode = o->mode;
	if (o->step) /* nil-migration (shared.c) */
		json_object_set_new(t->extra, "step", json_string(o->step));
	snprintf(t->vm, sizeof(t->vm), "%s", name);
	snprintf(t->to, sizeof(t->to), "%s", to);
	snprintf(t->status, sizeof(t->status), "refused");
	vm_config_init(&m.src);
	vm_config_init(&m.dst);
	phase_begin(&m, MIGRATE_PHASE_CHECK, t->started_ns);

	/* ---- check: nothing is changed until it passes ---- */
	if ((r = vm_load(name, &m.src, reterr)) < 0)
		goto refused;
	snprintf(t->from, sizeof(t->from), "%s", m.src.host);
	vm_dir(name, m.vmdir, sizeof(m.vmdir));
	if (!vm_dir_pid(m.vmdir)) {
		r = tgvm_error_set(reterr, ESRCH, "VM '%s' is not running", name);
		goto refused;
	}
	if (vm_has_incoming(m.vmdir)) {
		r = tgvm_error_set(
		    reterr, EBUSY,
		    "VM '%s' is already migrating ('tgvm migrate cancel %s' stops it)", name, name);
		goto refused;
	}
	if ((r = claim(&m, name, reterr)) < 0)
		goto refused;
	if ((r = host_get(to, &m.dst_host, reterr)) < 0)
		goto refused;
	if (!strcmp(to, m.src.host) && !o->same_host) {
		r = tgvm_error_set(reterr, EALREADY, "VM '%s' already runs on host '%s'", name, to);
		goto refused;
	}
	if ((r = host_get(m.src.host, &m.src_host, reterr)) < 0)
		goto refused;
	if (o->check && (r = o->check(&m.src, &m.dst_host, o->check_opaque, reterr)) < 0) {
		if (r != -EPERM)
			tgvm_error_prefix(reterr, "cannot check host '%s'", to);
		r = -EPERM;
		goto refused;
	}
	phase_end(&m, MIGRATE_PHASE_CHECK, 0);

	/* ---- prepare ---- */
	snprintf(t->status, sizeof(t->status), "failed");
	if (vm_config_copy(&m.dst, &m.src) < 0) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory");
		goto out;
	}
	snprintf(m.dst.host, sizeof(m.dst.host), "%s", to);
	if (o->prepare_dst && (r = o->prepare_dst(&m.dst, o->prepare_opaque, reterr)) < 0)
		goto out; /* nil-migration (shared.c): RAM backing of the destination */
	snprintf(m.indir, sizeof(m.indir), "%s/in-%" PRIu64, m.vmdir, t->started_ns / 1000000);
	snprintf(path, sizeof(path), "%s/" CANCEL_FILE, m.vmdir);
	unlink(path);
	probe_begin(&m);
	phase_begin(&m, MIGRATE_PHASE_PREPARE, 0);
	write_active(&m, "setup");
	r = prepare(&m, reterr);
	phase_end(&m, MIGRATE_PHASE_PREPARE, 0);
	if (r < 0)
		goto rollback;

	/* ---- precopy ... start ---- */
	r = run(&m, reterr);
	settle_phases(&m);
	json_t *stream = json_object_get(t->extra, "stream");
	if (stream)
		json_object_set_new(stream, "queued_at_stop_bytes",
		                    m.queued_at_stop >= 0 ? json_integer(m.queued_at_stop)
		                                          : json_null());
	if (r < 0) {
		if (t->postcopy_used && m.resume_seen) {
			/* The VM already runs on the destination: do not kill it. */
			tgvm_error_prefix(reterr,
			                  "postcopy broke after the switch to '%s' (QEMU's "
			                  "postcopy recovery can resume it)",
			                  to);
			goto out;
		}
		goto rollback;
	}
	if (o->hooks.after_start)
		o->hooks.after_start(&m.src, &m.src_host, &m.dst_host, t, o->hooks.opaque);

	/* The guest must answer from the destination before the source is torn
	 * down (quitting a big QEMU also costs CPU the resumed guest needs). If it
	 * does not, the source still holds the VM, paused: resume it there. */
	if ((r = probe_finish(&m, reterr)) < 0) {
		tgvm_error_prefix(reterr, "migration rolled back to host '%s'", m.src.host);
		goto rollback;
	}

	/* ---- cleanup ---- */
	phase_begin(&m, MIGRATE_PHASE_CLEANUP, 0);
	r = finish(&m, reterr);
	phase_end(&m, MIGRATE_PHASE_CLEANUP, 0);
	if (r < 0)
		goto out;
	if (o->mode == MIGRATE_POSTCOPY && !t->postcopy_used)
		snprintf(t->postcopy_reason, sizeof(t->postcopy_reason),
		         "requested, not used: precopy finished its first full pass and the "
		         "migration with it, before the switch to postcopy");
	snprintf(t->status, sizeof(t->status), "completed");
	goto out;

rollback:
	if (r == -ECANCELED)
		snprintf(t->status, sizeof(t->status), "cancelled");
	roll_back(&m);
	goto out;
refused:
	phase_end(&m, MIGRATE_PHASE_CHECK, 0);
	snprintf(t->status, sizeof(t->status), "refused");
out:
	t->ended_ns = tgvm_wall_ns();
	if (r < 0 && reterr)
		snprintf(t->error, sizeof(t->error), "%s", reterr->msg);
	qmp_conn_free(m.sq);
	qmp_conn_free(m.dq);
	netprobe_free(m.np);
	vm_net_switch_free(m.sw);
	vm_stream_close(&m.stream);
	vm_stream_watch_free(m.watch);
	if (m.vmdir[0] && strcmp(t->status, "refused")) {
		json_t *j = migrate_timeline_to_json(t);

		write_json_file(m.vmdir, TIMELINE_FILE, j, NULL);
		json_decref(j);
		snprintf(path, sizeof(path), "%s/" ACTIVE_FILE, m.vmdir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/" CANCEL_FILE, m.vmdir);
		unlink(path);
	}
	if (m.claimed) {
		/* the VM directory may have followed the VM: the claim is in it */
		snprintf(path, sizeof(path), "%s/" CLAIM_FILE, m.vmdir);
		unlink(path);
	}
	vm_config_release(&m.src);
	vm_config_release(&m.dst);
	return r;
}

int migrate_status(const char *name, json_t **ret, bool *ret_active, struct tgvm_error *reterr)
{
	char dir[4096];
	json_t *j;
	int r;

	if ((r = tgvm_name_check("VM", name, reterr)) < 0)
		return r;
	vm_dir(name, dir, sizeof(dir));
	if (access(dir, F_OK) < 0)
		return tgvm_error_set(reterr, ENOENT, "no VM named '%s'", name);
	j = read_json_file(dir, ACTIVE_FILE);
	if (j) {
		json_int_t pid = json_integer_value(json_object_get(j, "migrator_pid"));

		if (pid > 0 && kill((pid_t)pid, 0) == 0) {
			json_int_t st = json_integer_value(json_object_get(j, "started_unix_ns"));
			uint64_t now = tgvm_wall_ns();

			if (st > 0 && (uint64_t)st <= now) /* still running: so far */
				json_object_set_new(j, "pipeline_ms",
				                    json_real((double)(now - (uint64_t)st) / 1e6));
			*ret = j;
			*ret_active = true;
			return 0;
		}
		json_decref(j);
	}
	j = read_json_file(dir, TIMELINE_FILE);
	if (!j)
		return tgvm_error_set(reterr, ENOENT, "VM '%s' has not been migrated", name);
	*ret = j;
	*ret_active = false;
	return 0;
}

int migrate_cancel_request(const char *name, struct tgvm_error *reterr)
{
	char dir[4096], path[4400];
	json_t *j;
	json_int_t pid = 0;
	int r;

	if ((r = tgvm_name_check("VM", name, reterr)) < 0)
		return r;
	vm_dir(name, dir, sizeof(dir));
	if (access(dir, F_OK) < 0)
		return tgvm_error_set(reterr, ENOENT, "no VM named '%s'", name);
	j = read_json_file(dir, ACTIVE_FILE);
	if (j)
		pid = json_integer_value(json_object_get(j, "migrator_pid"));
	json_decref(j);
	if (!j && !vm_has_incoming(dir))
		return tgvm_error_set(reterr, ENOENT, "VM '%s' is not migrating", name);
	snprintf(path, sizeof(path), "%s/" ACTIVE_FILE, dir);
	if (pid > 0 && kill((pid_t)pid, 0) == 0) {
		char cpath[4400];

		snprintf(cpath, sizeof(cpath), "%s/" CANCEL_FILE, dir);
		if ((r = tgvm_file_write(cpath, "cancel\n", 7, reterr)) < 0)
			return r;
		/* The migrate process rolls back and removes its marker. */
		for (int i = 0; i < 3000 && access(path, F_OK) == 0; i++)
			sleep_ms(10);
		if (access(path, F_OK) == 0)
			return tgvm_error_set(
			    reterr, ETIMEDOUT,
			    "the migrate process (pid %d) did not stop within 30 s", (int)pid);
		return 0;
	}
	/* Nobody drives it any more: clean up here. */
	struct qmp_conn *q = NULL;
	if (vm_qmp_open(dir, 2000, &q, NULL) == 0) {
		json_t *st = NULL;

		qmp_conn_command(q, "migrate_cancel", NULL, QMP_MS, NULL, NULL);
		if (qmp_conn_command(q, "query-status", NULL, QMP_MS, &st, NULL) == 0) {
			const char *s = json_string_value(json_object_get(st, "status"));

			if (s && (!strcmp(s, "paused") || !strcmp(s, "postmigrate") ||
			          !strcmp(s, "finish-migrate")))
				qmp_conn_command(q, "cont", NULL, QMP_MS, NULL, NULL);
		}
		json_decref(st);
		qmp_conn_free(q);
	}
	vm_kill_incoming(dir);
	unlink(path);
	return 0;
}
