// SPDX-License-Identifier: MIT
/*
 * The live-migration pipeline: one function per phase (check, prepare,
 * precopy, pause, last-copy, switch, start, postcopy, cleanup), run in order
 * by a small driver that timestamps each phase back to back, runs the
 * phases' hooks, and settles a move that cannot go on (failure, signal,
 * cancel) by the one rule of state.c: before the destination has the VM it
 * is rolled back, after it is completed.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate/migrate-int.h"
#include "vm/vm-int.h"

#define POLL_MS            100
#define SPAWN_MS           30000
#define RAISE_AFTER_PASSES 3
#define RAISED_LIMIT_MS    300
#define STREAM_BUF_DEFAULT (512 << 10) /* SO_SNDBUF/SO_RCVBUF of the stream (vm/stream.c) */
#define JOURNAL_EVERY      (250ull * 1000000ull)

void migrate_opts_init(struct migrate_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = MIGRATE_PRECOPY;
	o->converge_timeout_ms = 10000;
	o->downtime_limit_ms = 20; /* QEMU's own is 300; see RAISED_LIMIT_MS */
	o->check = tgvm_host_check_cpu;
	o->test_stop_at = -1;
}

static int hooks_run(struct mig *m, enum migrate_phase p, enum migrate_hook_when w,
                     struct tgvm_error *reterr)
{
	for (size_t i = 0; i < m->o->n_hooks && i < MIGRATE_HOOKS_MAX; i++) {
		const struct migrate_hook *h = &m->o->hooks[i];
		int r;

		if (h->phase != p || h->when != w || !h->fn)
			continue;
		m->run.sq = m->sq;
		m->run.dq = m->dq;
		r = h->fn(&m->run, h->opaque, w == MIGRATE_HOOK_ROLLBACK ? NULL : reterr);
		if (r < 0 && w != MIGRATE_HOOK_ROLLBACK)
			return r;
	}
	return 0;
}

/* ---- what the QEMUs say ---- */

static uint64_t event_ns(const struct qmp_event *e)
{
	return e->timestamp_us ? e->timestamp_us * 1000ull : e->received_ns;
}

static bool is_completed(const struct qmp_event *e)
{
	const char *st = json_string_value(json_object_get(e->data, "status"));

	return !strcmp(e->name, "MIGRATION") && st && !strcmp(st, "completed");
}

static void src_event(struct mig *m, const struct qmp_event *e)
{
	if (!strcmp(e->name, "STOP") && !m->stop_seen) {
		m->stop_seen = true;
		m->stop_ns = m->stop_ns ? m->stop_ns : event_ns(e);
		m->t->stop_event_us = e->timestamp_us;
	} else if (is_completed(e) && !m->src_done) {
		m->src_done = true;
		m->src_done_ns = event_ns(e);
	}
}

static void dst_event(struct mig *m, const struct qmp_event *e)
{
	if (!strcmp(e->name, "RESUME") && !m->resume_seen) {
		m->resume_seen = true;
		m->resume_ns = event_ns(e);
		m->t->resume_event_us = e->timestamp_us;
	} else if (is_completed(e) && !m->dst_done) {
		m->dst_done = true;
		m->dst_done_ns = event_ns(e);
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
		dst_event(m, &e);
		qmp_event_release(&e);
	}
	if (r < 0) {
		if (r == -EPIPE && !m->resume_seen)
			return tgvm_error_set(reterr, EPIPE,
			                      "the destination QEMU on host '%s' died during %s",
			                      m->dst_host.name, migrate_phase_to_string(m->phase));
		return tgvm_error_prefix(reterr, "destination QEMU");
	}
	return 0;
}

/* The source's STOP, the moment it is read (even while a command waits):
 * the network switch cannot wait for a reply the stopped QEMU sends late. */
static void src_stop_hook(const struct qmp_event *e, void *opaque)
{
	struct mig *m = opaque;

	if (!strcmp(e->name, "STOP") && !m->stop_ns) {
		m->stop_ns = event_ns(e);
		mig_net_switch(m);
		/* What the destination must still load before the last copy. */
		m->queued_at_stop = vm_stream_queued(m->watch);
	}
}

/* One query-migrate sample into the timeline; m->qemu_status gets QEMU's word. */
static int sample(struct mig *m, struct tgvm_error *reterr)
{
	struct tgvm_qmp_migrate_info mi;
	struct migrate_timeline *t = m->t;
	int r = tgvm_qmp_query_migrate(m->sq, MIG_QMP_MS, &mi, reterr);

	if (r < 0)
		return tgvm_error_prefix(reterr, "source QEMU");
	snprintf(m->qemu_status, sizeof(m->qemu_status), "%s", mig_status_word(&mi));
	if (mi.has_ram) {
		const struct tgvm_qmp_migrate_ram *ram = &mi.ram;
		int64_t pass = ram->has_dirty_sync_count ? (int64_t)ram->dirty_sync_count : -1;
		struct migrate_iteration it = {
		    .t_ns = tgvm_wall_ns(),
		    .dirty_sync_count = pass,
		    .remaining_bytes = ram->has_remaining ? (int64_t)ram->remaining : -1,
		    .transferred_bytes = ram->has_transferred ? (int64_t)ram->transferred : -1,
		    .dirty_rate_bps =
		        ram->has_dirty_pages_rate
		            ? (int64_t)(ram->dirty_pages_rate *
		                        (ram->has_page_size && ram->page_size ? ram->page_size
		                                                              : 4096))
		            : -1,
		    .throughput_bps = ram->has_mbps ? (int64_t)(ram->mbps * 1e6 / 8) : -1,
		};

		/* One entry per pass: a new pass appends, the same pass updates. */
		if (t->n_iter > 0 && t->iter[t->n_iter - 1].dirty_sync_count == pass)
			t->iter[t->n_iter - 1] = it;
		else if (t->n_iter < MIGRATE_ITER_MAX)
			t->iter[t->n_iter++] = it;
		if (it.transferred_bytes >= 0)
			t->transferred_bytes = (uint64_t)it.transferred_bytes;
	}
	if (mi.has_downtime)
		t->qemu_downtime_ms = mi.downtime;
	if (mi.has_total_time)
		t->total_ms = mi.total_time;
	if (mi.status == TGVM_QMP_MIGRATION_STATUS_FAILED)
		return tgvm_error_set(reterr, EIO, "migration failed in QEMU: %s",
		                      mi.error_desc[0] ? mi.error_desc : "no reason given");
	if (mi.status == TGVM_QMP_MIGRATION_STATUS_CANCELLED)
		return tgvm_error_set(reterr, ECANCELED, "migration was cancelled in QEMU");
	if (mi.status == TGVM_QMP_MIGRATION_STATUS_COMPLETED && !m->src_done) {
		m->src_done = true;
		m->src_done_ns = tgvm_wall_ns();
	}
	return 0;
}

static bool cancel_requested(const struct mig *m)
{
	char path[4400];

	snprintf(path, sizeof(path), "%s/" MIG_CANCEL_FILE, m->vmdir);
	return access(path, F_OK) == 0;
}

/* The VM's own port on the destination when QEMU listens itself (the
 * baseline, multifd; postcopy recovery uses the 16 after it). */
static unsigned hashed_port(const struct mig *m)
{
	return 49152u + vm_fnv1a(m->src.name) % 8000u;
}

/*
 * Postcopy recovery (the link broke after the switch): once both sides are
 * paused, the destination listens again and the source resumes the stream
 * (QEMU's migrate-recover / migrate resume=true). Called about once a second
 * until it takes; failures just mean "not yet".
 */
static void postcopy_recover(struct mig *m)
{
	struct tgvm_qmp_migrate_info di;
	char uri[96];

	if (tgvm_qmp_query_migrate(m->dq, MIG_QMP_MS, &di, NULL) < 0)
		return;
	snprintf(uri, sizeof(uri), "tcp:%s:%u", m->dst_host.address,
	         hashed_port(m) + 1u + (unsigned)(m->recover_listens % 16));
	if (di.status == TGVM_QMP_MIGRATION_STATUS_POSTCOPY_PAUSED) {
		if (tgvm_qmp_migrate_recover(m->dq, uri, MIG_QMP_MS, NULL) < 0)
			return;
		m->recover_listens++;
	}
	if (!m->recover_listens)
		return;
	snprintf(uri, sizeof(uri), "tcp:%s:%u", m->dst_host.address,
	         hashed_port(m) + (unsigned)(m->recover_listens - 1) % 16 + 1u);
	if (tgvm_qmp_migrate(m->sq, uri, true, MIG_QMP_MS, NULL) == 0)
		m->t->postcopy_recovery_attempts++;
}

/* Precopy going on: raise the downtime limit, or turn to postcopy, when due. */
static int steer(struct mig *m, uint64_t now, struct tgvm_error *reterr)
{
	const struct migrate_opts *o = m->o;
	struct migrate_timeline *t = m->t;
	const struct migrate_iteration *it = t->n_iter ? &t->iter[t->n_iter - 1] : NULL;
	int64_t pass = it ? it->dirty_sync_count : 0;
	bool go = false;

	if (strcmp(m->qemu_status, "active"))
		return 0;
	/* A guest that dirties memory faster than a 20 ms stop can carry never
	 * converges. After RAISE_AFTER_PASSES passes accept QEMU's own 300 ms,
	 * so that precopy ends in a few more passes (auto mode turns to
	 * postcopy instead, after --converge-timeout). */
	if (!m->limit_raised && !o->qemu_defaults && o->downtime_limit_ms < RAISED_LIMIT_MS &&
	    pass >= RAISE_AFTER_PASSES) {
		struct tgvm_qmp_migrate_params p = {.has_downtime_limit = true,
		                                    .downtime_limit = RAISED_LIMIT_MS};

		m->limit_raised = true;
		if (tgvm_qmp_migrate_set_parameters(m->sq, &p, MIG_QMP_MS, NULL) == 0)
			t->downtime_limit_raised_ms = RAISED_LIMIT_MS;
	}
	if (m->postcopy_asked || o->mode == MIGRATE_PRECOPY)
		return 0;
	if (o->mode == MIGRATE_POSTCOPY && pass >= 2) {
		go = true;
		snprintf(t->postcopy_reason, sizeof(t->postcopy_reason),
		         "postcopy requested: switched after the first full pass");
	} else if (o->mode == MIGRATE_AUTO &&
	           now - m->precopy_start_ns >= (uint64_t)o->converge_timeout_ms * 1000000ull) {
		go = true;
		snprintf(t->postcopy_reason, sizeof(t->postcopy_reason),
		         "precopy did not converge within %d ms (%" PRId64
		         " MiB left, dirtying %" PRId64 " MiB/s)",
		         o->converge_timeout_ms,
		         it && it->remaining_bytes > 0 ? it->remaining_bytes >> 20 : 0,
		         it && it->dirty_rate_bps > 0 ? it->dirty_rate_bps >> 20 : 0);
	}
	if (!go)
		return 0;
	m->postcopy_asked = true;
	if (tgvm_qmp_migrate_start_postcopy(m->sq, MIG_QMP_MS, reterr) < 0)
		return tgvm_error_prefix(reterr, "cannot switch to postcopy");
	t->postcopy_used = true;
	return 0;
}

/* A stream that stops moving (a link down, a peer that hangs) would leave
 * QEMU waiting on TCP for minutes: give up before the switch; in postcopy
 * pause both channels so QEMU notices, and recover when the link is back. */
static int watch_stream(struct mig *m, uint64_t now, struct tgvm_error *reterr)
{
	struct migrate_timeline *t = m->t;
	int stall_ms = m->o->stall_timeout_ms > 0 ? m->o->stall_timeout_ms : 10000;
	bool stalled;

	if (t->transferred_bytes != m->last_bytes || !m->last_move_ns) {
		m->last_bytes = t->transferred_bytes;
		m->last_move_ns = now;
	}
	stalled = now - m->last_move_ns >= (uint64_t)stall_ms * 1000000ull;
	if (stalled && (!strcmp(m->qemu_status, "active") || !strcmp(m->qemu_status, "setup")))
		return tgvm_error_set(reterr, ETIMEDOUT,
		                      "the migration stream to host '%s' moved nothing for %d ms "
		                      "(link down or destination stuck)",
		                      m->dst_host.name, stall_ms);
	if (stalled && !strcmp(m->qemu_status, "postcopy-active") && t->n_iter &&
	    t->iter[t->n_iter - 1].remaining_bytes > 0) {
		tgvm_qmp_migrate_pause(m->sq, MIG_QMP_MS, NULL);
		tgvm_qmp_migrate_pause(m->dq, MIG_QMP_MS, NULL);
		m->last_move_ns = now;
	}
	if (!strcmp(m->qemu_status, "postcopy-paused") &&
	    now - m->last_recover_ns >= 1000ull * 1000000ull) {
		postcopy_recover(m);
		m->last_recover_ns = now;
	}
	return 0;
}

enum until { UNTIL_STOP, UNTIL_SRC_DONE };

/*
 * Drive QEMU's migration until the source stops (@u UNTIL_STOP) or has sent
 * everything (UNTIL_SRC_DONE): sample, steer, watch the stream, keep the
 * journal, wake at once on the source's events. Returns -EINTR on a signal
 * and -ECANCELED on a cancel request while the destination does not have the
 * VM yet (postcopy after the switch goes on regardless).
 */
static int drive(struct mig *m, enum until u, struct tgvm_error *reterr)
{
	const struct migrate_opts *o = m->o;
	uint64_t now;
	int r;

	for (;;) {
		if ((r = drain_events(m, reterr)) < 0)
			return r;
		if (m->src_done || (u == UNTIL_STOP && m->stop_seen))
			return 0;
		if (!m->postcopy_asked && mig_interrupted(m))
			return tgvm_error_set(reterr, EINTR, "interrupted by signal %d",
			                      m->interrupted);
		if (!m->postcopy_asked && cancel_requested(m))
			return tgvm_error_set(reterr, ECANCELED, "migration cancelled by request");
		if ((r = sample(m, reterr)) < 0) {
			if (!vm_dir_pid(m->indir) && !m->resume_seen)
				return tgvm_error_set(
				    reterr, EPIPE,
				    "the destination QEMU on host '%s' died during %s",
				    m->dst_host.name, migrate_phase_to_string(m->phase));
			return r;
		}
		if (m->src_done)
			return 0;
		/* QEMU's own connection (the baseline): learn its source port now,
		 * while the dump that takes costs nothing that waits. */
		if (m->watch && !m->stop_seen && !strcmp(m->qemu_status, "active"))
			vm_stream_watch_find(m->watch);
		now = tgvm_now_ns();
		if ((r = watch_stream(m, now, reterr)) < 0)
			return r;
		if (!vm_dir_pid(m->indir) && !m->resume_seen)
			return tgvm_error_set(reterr, EPIPE,
			                      "the destination QEMU on host '%s' died during %s",
			                      m->dst_host.name, migrate_phase_to_string(m->phase));
		if (now >= m->deadline_ns)
			return tgvm_error_set(reterr, ETIMEDOUT,
			                      "migration did not finish within %d ms",
			                      o->timeout_ms > 0 ? o->timeout_ms : 600000);
		if ((r = steer(m, now, reterr)) < 0)
			return r;
		if (o->progress)
			o->progress(m->t, m->qemu_status, o->progress_opaque);
		if (tgvm_wall_ns() - m->last_progress_ns >= JOURNAL_EVERY) {
			m->last_progress_ns = tgvm_wall_ns();
			mig_journal_write(m);
		}
		/* Sleep until the next sample, but wake at once for the source's
		 * events: the network is switched the moment STOP comes. */
		struct qmp_event ev;
		if (qmp_conn_next_event(m->sq, POLL_MS, &ev, NULL) > 0) {
			src_event(m, &ev);
			qmp_event_release(&ev);
		}
	}
}

/* ---- the phases ---- */

/*
 * Both sides of a move are the same machine kind: the destination QEMU is
 * started with the source's -machine, and a host whose inventory names a
 * kind runs only that kind. -EPERM (refused) with both kinds named.
 */
static int check_machine(struct mig *m, struct tgvm_error *reterr)
{
	int kind = vm_machine_kind(m->src.machine);
	const char *vk = kind >= 0 ? vm_machine_to_string(kind) : m->src.machine;

	if (kind < 0)
		return tgvm_error_set(reterr, EINVAL, "VM '%s': unknown machine '%s'", m->src.name,
		                      m->src.machine);
	if (m->dst_host.machine[0] && strcmp(m->dst_host.machine, vk))
		return tgvm_error_set(reterr, EPERM,
		                      "VM '%s' is a %s VM and host '%s' runs %s VMs: both sides of "
		                      "a move must be the same machine kind",
		                      m->src.name, vk, m->dst_host.name, m->dst_host.machine);
	return 0;
}

static int ph_check(struct mig *m, struct tgvm_error *reterr)
{
	const struct migrate_opts *o = m->o;
	const char *name = m->t->vm, *to = m->t->to;
	int r;

	if ((r = vm_load(name, &m->src, reterr)) < 0)
		return r;
	snprintf(m->t->from, sizeof(m->t->from), "%s", m->src.host);
	vm_dir(name, m->vmdir, sizeof(m->vmdir));
	if (!vm_dir_pid(m->vmdir))
		return tgvm_error_set(reterr, ESRCH, "VM '%s' is not running", name);
	if ((r = mig_claim(m->vmdir, name, reterr)) < 0)
		return r;
	m->claimed = true;
	if (vm_has_incoming(m->vmdir))
		return tgvm_error_set(reterr, EBUSY,
		                      "VM '%s' has a move left half done ('tgvm migrate status %s' "
		                      "settles it)",
		                      name, name);
	if ((r = host_get(to, &m->dst_host, reterr)) < 0)
		return r;
	if (!strcmp(to, m->src.host) && !o->same_host)
		return tgvm_error_set(reterr, EALREADY, "VM '%s' already runs on host '%s'", name,
		                      to);
	if ((r = host_get(m->src.host, &m->src_host, reterr)) < 0)
		return r;
	if ((r = check_machine(m, reterr)) < 0)
		return r;
	if (o->check && (r = o->check(&m->src, &m->dst_host, o->check_opaque, reterr)) < 0) {
		if (r != -EPERM)
			tgvm_error_prefix(reterr, "cannot check host '%s'", to);
		return -EPERM;
	}
	return 0;
}

/* Capabilities and parameters on both QEMUs. */
static int set_migration_params(struct mig *m, bool mfd, struct tgvm_error *reterr)
{
	const struct migrate_opts *o = m->o;
	bool pc = o->mode != MIGRATE_PRECOPY;
	const struct tgvm_qmp_migrate_cap_state src_caps[] = {
	    {TGVM_QMP_MIGRATE_CAP_EVENTS, true},
	    {TGVM_QMP_MIGRATE_CAP_MULTIFD, mfd},
	    {TGVM_QMP_MIGRATE_CAP_AUTO_CONVERGE, o->mode != MIGRATE_POSTCOPY && !o->qemu_defaults},
	    {TGVM_QMP_MIGRATE_CAP_POSTCOPY_RAM, pc},
	    {TGVM_QMP_MIGRATE_CAP_X_IGNORE_SHARED, o->ignore_shared},
	};
	const struct tgvm_qmp_migrate_cap_state dst_caps[] = {
	    {TGVM_QMP_MIGRATE_CAP_EVENTS, true},
	    {TGVM_QMP_MIGRATE_CAP_MULTIFD, mfd},
	    {TGVM_QMP_MIGRATE_CAP_POSTCOPY_RAM, pc},
	    {TGVM_QMP_MIGRATE_CAP_X_IGNORE_SHARED, o->ignore_shared},
	};
	struct tgvm_qmp_migrate_params p = {0};
	int r;

	mig_wait_source_idle(m->sq,
	                     30000); /* a migration cancelled just before may still wind down */
	/* QEMU refuses while the thread of a just-cancelled migration winds down. */
	for (int tries = 0; tries < 150; tries++) {
		r = tgvm_qmp_migrate_set_capabilities(m->sq, src_caps, ARRAY_SIZE(src_caps),
		                                      MIG_QMP_MS, reterr);
		if (r != -EREMOTEIO || !reterr || !strstr(reterr->msg, "in progress"))
			break;
		tgvm_sleep_ms(200);
	}
	if (r < 0 || (r = tgvm_qmp_migrate_set_capabilities(m->dq, dst_caps, ARRAY_SIZE(dst_caps),
	                                                    MIG_QMP_MS, reterr)) < 0)
		return tgvm_error_prefix(reterr, "cannot set migration capabilities");
	if (o->qemu_defaults)
		return 0; /* the baseline: QEMU as it comes */
	p.has_max_bandwidth = true;
	p.max_bandwidth = o->max_bandwidth ? o->max_bandwidth : (64ull << 30);
	if (o->downtime_limit_ms > 0) {
		p.has_downtime_limit = true;
		p.downtime_limit = (uint64_t)o->downtime_limit_ms;
	}
	if (o->max_bandwidth) { /* the user's cap holds in postcopy too (QEMU: unlimited) */
		p.has_max_postcopy_bandwidth = true;
		p.max_postcopy_bandwidth = o->max_bandwidth;
	}
	if (mfd) {
		p.has_multifd_channels = true;
		p.multifd_channels = o->multifd_channels;
	}
	if ((r = tgvm_qmp_migrate_set_parameters(m->sq, &p, MIG_QMP_MS, reterr)) < 0)
		return tgvm_error_prefix(reterr, "cannot set migration parameters");
	if (mfd) {
		struct tgvm_qmp_migrate_params dp = {.has_multifd_channels = true,
		                                     .multifd_channels = o->multifd_channels};

		if ((r = tgvm_qmp_migrate_set_parameters(m->dq, &dp, MIG_QMP_MS, reterr)) < 0)
			return tgvm_error_prefix(reterr, "cannot set migration parameters");
	}
	return 0;
}

/* The stream: tgvm's own connection handed to both QEMUs ("fd:"), except
 * for the baseline (QEMU as it comes) and multifd (one connection per
 * channel); the destination listens on it. */
static int open_stream(struct mig *m, bool mfd, char *uri, size_t size, struct tgvm_error *reterr)
{
	const struct migrate_opts *o = m->o;
	int r;

	m->stream_fd = !o->qemu_defaults && !mfd;
	if (m->stream_fd) {
		int buf = o->stream_buffer < 0 ? 0 /* autotuning */
		          : o->stream_buffer   ? o->stream_buffer
		                               : STREAM_BUF_DEFAULT;

		r = vm_stream_connect(m->src_host.name, m->dst_host.name, m->dst_host.address, buf,
		                      MIG_QMP_MS, &m->stream, reterr);
		if (r < 0)
			return tgvm_error_prefix(reterr, "migration stream");
		m->port = m->stream.port;
		if ((r = tgvm_qmp_getfd(m->dq, MIG_STREAM_FD_NAME, m->stream.dst_fd, MIG_QMP_MS,
		                        reterr)) < 0 ||
		    (r = tgvm_qmp_getfd(m->sq, MIG_STREAM_FD_NAME, m->stream.src_fd, MIG_QMP_MS,
		                        reterr)) < 0)
			return tgvm_error_prefix(reterr,
			                         "cannot hand the stream's connection to QEMU");
		vm_stream_close(&m->stream); /* the QEMUs hold their ends now */
		snprintf(uri, size, "fd:" MIG_STREAM_FD_NAME);
	} else {
		m->port = hashed_port(m);
		snprintf(uri, size, "tcp:%s:%u", m->dst_host.address, m->port);
	}
	json_object_set_new(
	    m->t->extra, "stream",
	    json_pack("{s:s, s:s, s:i, s:o}", "connection", m->stream_fd ? "tgvm" : "qemu",
	              "address", m->dst_host.address, "port", (int)m->port, "buffer_bytes",
	              m->stream_fd && m->stream.buf_bytes > 0 ? json_integer(m->stream.buf_bytes)
	                                                      : json_null()));
	if ((r = tgvm_qmp_migrate_incoming(m->dq, uri, MIG_QMP_MS, reterr)) < 0)
		return tgvm_error_prefix(reterr, "destination cannot take the stream on %s:%u",
		                         m->dst_host.address, m->port);
	return 0;
}

static int ph_prepare(struct mig *m, struct tgvm_error *reterr)
{
	const struct migrate_opts *o = m->o;
	char serial[4400], path[4400];
	struct vm_launch l = {.dir = m->indir, .incoming = true, .serial_log = serial};
	bool mfd = o->mode == MIGRATE_PRECOPY && o->multifd_channels > 0;
	struct tgvm_qmp_status st;
	int dst_pid, r;

	if (vm_config_copy(&m->dst, &m->src) < 0)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	snprintf(m->dst.host, sizeof(m->dst.host), "%s", m->dst_host.name);
	if (o->prepare_dst && (r = o->prepare_dst(&m->dst, o->prepare_opaque, reterr)) < 0)
		return r; /* nil-migration (shared.c): RAM backing of the destination */
	snprintf(m->indir, sizeof(m->indir), "%s/in-%" PRIu64, m->vmdir,
	         m->t->started_ns / 1000000);
	snprintf(serial, sizeof(serial), "%s/serial.log", m->vmdir); /* one console log per VM */
	snprintf(path, sizeof(path), "%s/" MIG_CANCEL_FILE, m->vmdir);
	unlink(path);
	if ((r = vm_qmp_open(m->vmdir, MIG_QMP_MS, &m->sq, reterr)) < 0)
		return tgvm_error_prefix(reterr, "source QEMU");
	if (tgvm_qmp_query_status(m->sq, MIG_QMP_MS, &st, reterr) < 0)
		return tgvm_error_prefix(reterr, "source QEMU");
	m->src_was_running = st.running;
	mig_probe_begin(m);
	mig_journal_write(m); /* before the destination exists: a crash from here is settled */
	r = vm_spawn(&m->dst, &l, SPAWN_MS, &dst_pid, reterr);
	if (r < 0)
		return tgvm_error_prefix(reterr, "cannot start the destination on host '%s'",
		                         m->dst_host.name);
	if ((r = vm_qmp_open(m->indir, MIG_QMP_MS, &m->dq, reterr)) < 0)
		return tgvm_error_prefix(reterr, "destination QEMU");
	m->run.sq = m->sq;
	m->run.dq = m->dq;
	if ((r = set_migration_params(m, mfd, reterr)) < 0)
		return r;
	char uri[96];
	if ((r = open_stream(m, mfd, uri, sizeof(uri), reterr)) < 0)
		return r;
	mig_net_switch_prepare(m);
	/* Not with multifd: its channels share the port and one would be a guess. */
	if (!mfd && vm_stream_watch_open(m->src_host.name, m->dst_host.name, m->src_host.address,
	                                 m->stream_fd ? m->stream.src_port : 0, m->dst_host.address,
	                                 m->port, &m->watch, NULL) < 0)
		m->watch = NULL; /* then queued_at_stop_bytes stays null */
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	return 0;
}

static int ph_precopy(struct mig *m, struct tgvm_error *reterr)
{
	const struct migrate_opts *o = m->o;
	int r;

	m->deadline_ns =
	    tgvm_now_ns() + (uint64_t)(o->timeout_ms > 0 ? o->timeout_ms : 600000) * 1000000ull;
	m->precopy_start_ns = tgvm_now_ns();
	qmp_conn_set_event_hook(m->sq, src_stop_hook, m);
	if ((r = tgvm_qmp_migrate(m->sq, m->uri, false, MIG_QMP_MS, reterr)) < 0)
		return tgvm_error_prefix(reterr, "source cannot start migrating to %s:%u",
		                         m->dst_host.address, m->port);
	r = drive(m, UNTIL_STOP, reterr);
	m->phase_mark_ns = m->stop_ns ? m->stop_ns : m->src_done_ns;
	return r;
}

/* The source stopped the VM: the network points at the destination now. */
static int ph_pause(struct mig *m, struct tgvm_error *reterr)
{
	(void)reterr;
	if (!m->switch_hooked) {
		m->switch_hooked = true;
		mig_net_switch(m);
	}
	/* The pause lasts from STOP until the network points at the destination. */
	if (m->t->net_switched && m->t->net_switch_after_stop_us >= 0)
		m->phase_mark_ns = m->stop_ns + (uint64_t)m->t->net_switch_after_stop_us * 1000ull;
	else
		m->phase_mark_ns = m->stop_ns;
	return 0;
}

static int ph_last_copy(struct mig *m, struct tgvm_error *reterr)
{
	int r = drive(m, UNTIL_SRC_DONE, reterr);

	m->phase_mark_ns = m->src_done_ns;
	return r;
}

/* The destination loads what came last and resumes the VM. */
static int ph_switch(struct mig *m, struct tgvm_error *reterr)
{
	uint64_t until = tgvm_now_ns() + (uint64_t)MIG_RESUME_WAIT_MS * 1000000ull;
	struct tgvm_qmp_status st;
	int r;

	while (!m->resume_seen || (!m->dst_done && !m->t->postcopy_used)) {
		struct qmp_event e;

		if (tgvm_now_ns() >= until)
			break;
		r = qmp_conn_next_event(m->dq, 50, &e, reterr);
		if (r < 0)
			return tgvm_error_prefix(reterr, "destination QEMU after switchover");
		if (r == 0)
			continue;
		dst_event(m, &e);
		qmp_event_release(&e);
	}
	drain_events(m, NULL);
	if (!m->resume_seen) {
		if (tgvm_qmp_query_status(m->dq, MIG_QMP_MS, &st, NULL) < 0 || !st.running)
			return tgvm_error_set(reterr, EIO,
			                      "the destination did not resume after the switch");
		m->resume_seen = true;
		m->resume_ns = tgvm_wall_ns();
	}
	mig_journal_write(m); /* the destination runs: from here the move only completes */
	m->phase_mark_ns = m->resume_ns;
	return 0;
}

/* The guest runs on the destination: it must answer there. */
static int ph_start(struct mig *m, struct tgvm_error *reterr)
{
	struct migrate_timeline *t = m->t;
	json_t *stream = json_object_get(t->extra, "stream");

	if (m->stop_ns && m->resume_ns >= m->stop_ns)
		t->vcpu_blackout_us = (int64_t)((m->resume_ns - m->stop_ns) / 1000);
	if (stream)
		json_object_set_new(stream, "queued_at_stop_bytes",
		                    m->queued_at_stop >= 0 ? json_integer(m->queued_at_stop)
		                                           : json_null());
	/* A destination that died once it had resumed has lost the VM (with or
	 * without the probe: it must be alive before its source is given up). */
	if (!vm_dir_pid(m->indir))
		return tgvm_error_set(
		    reterr, EPIPE, "the destination QEMU on host '%s' died after it resumed the VM",
		    m->dst_host.name);
	return mig_probe_finish(m, reterr);
}

static int ph_postcopy(struct mig *m, struct tgvm_error *reterr)
{
	int r = drive(m, UNTIL_SRC_DONE, reterr);

	m->phase_mark_ns = m->src_done_ns;
	return r;
}

static int ph_cleanup(struct mig *m, struct tgvm_error *reterr)
{
	char what[256];
	int r;

	sample(m, NULL); /* QEMU's final downtime and totals */
	qmp_conn_free(m->sq);
	m->sq = m->run.sq = NULL;
	qmp_conn_free(m->dq);
	m->dq = m->run.dq = NULL;
	mig_journal_write(m); /* phase "cleanup": a crash from here completes */
	if ((r = mig_finish(m->vmdir, m->indir, m->src_host.name, m->src.tap, reterr)) < 0)
		return r;
	snprintf(what, sizeof(what), "VM moved from host '%s' to host '%s'", m->src_host.name,
	         m->dst_host.name);
	mig_serial_mark(m->vmdir, what);
	return mig_actions_run(&m->o->actions, true, m->dst_host.name, m->o->lease_held, reterr);
}

static bool is_postcopy(const struct mig *m)
{
	return m->t->postcopy_used;
}

static bool no_stop(const struct mig *m)
{
	return !m->stop_seen;
}

static bool not_postcopy(const struct mig *m)
{
	return !m->t->postcopy_used;
}

static const struct {
	enum migrate_phase phase;
	int (*run)(struct mig *m, struct tgvm_error *reterr);
	bool (*skip)(const struct mig *m);
} phases[] = {
    {MIGRATE_PHASE_CHECK, ph_check, NULL},
    {MIGRATE_PHASE_PREPARE, ph_prepare, NULL},
    {MIGRATE_PHASE_PRECOPY, ph_precopy, NULL},
    {MIGRATE_PHASE_PAUSE, ph_pause, no_stop},
    {MIGRATE_PHASE_LAST_COPY, ph_last_copy, is_postcopy},
    {MIGRATE_PHASE_SWITCH, ph_switch, NULL},
    {MIGRATE_PHASE_START, ph_start, NULL},
    {MIGRATE_PHASE_POSTCOPY, ph_postcopy, not_postcopy},
    {MIGRATE_PHASE_CLEANUP, ph_cleanup, NULL},
};

/* ---- the driver ---- */

/* Phase @i: hooks before, the phase, hooks after; timestamps back to back. */
static int phase_run(struct mig *m, size_t i, uint64_t *prev_end, struct tgvm_error *reterr)
{
	struct migrate_timeline *t = m->t;
	enum migrate_phase p = phases[i].phase;
	uint64_t end;
	int r;

	m->phase = p;
	m->phase_mark_ns = 0;
	t->phase_start_ns[p] = *prev_end;
	if (m->o->test_stop_at == (int)p)
		raise(SIGSTOP); /* tests: a signal or a kill arrives exactly here */
	/* Until the source is told to migrate, a signal stops the move before
	 * the next phase (later ones are watched inside the phases). */
	if (p <= MIGRATE_PHASE_PRECOPY && mig_interrupted(m))
		r = tgvm_error_set(reterr, EINTR, "interrupted by signal %d", m->interrupted);
	else
		r = hooks_run(m, p, MIGRATE_HOOK_BEFORE, reterr);
	if (r == 0)
		r = phases[i].run(m, reterr);
	if (r == 0)
		r = hooks_run(m, p, MIGRATE_HOOK_AFTER, reterr);
	end = m->phase_mark_ns && m->phase_mark_ns >= *prev_end ? m->phase_mark_ns : tgvm_wall_ns();
	if (end < *prev_end)
		end = *prev_end;
	t->phase_end_ns[p] = end;
	*prev_end = end;
	return r;
}

/* Run phases from index @from to the end; the index that failed into *ret_at. */
static int phases_run(struct mig *m, size_t from, uint64_t *prev_end, size_t *ret_at,
                      struct tgvm_error *reterr)
{
	for (size_t i = from; i < ARRAY_SIZE(phases); i++) {
		int r;

		if (phases[i].skip && phases[i].skip(m))
			continue;
		*ret_at = i;
		if ((r = phase_run(m, i, prev_end, reterr)) < 0)
			return r;
	}
	return 0;
}

static size_t phase_index(enum migrate_phase p)
{
	for (size_t i = 0; i < ARRAY_SIZE(phases); i++)
		if (phases[i].phase == p)
			return i;
	return 0;
}

static const char *signal_name(int sig)
{
	return sig == SIGINT    ? "SIGINT"
	       : sig == SIGTERM ? "SIGTERM"
	       : sig == SIGHUP  ? "SIGHUP"
	                        : "signal";
}

/* A monitor connection that broke is not a QEMU that died: while the
 * process in @dir lives, settle the move over a fresh connection (events
 * still queued on the old one go to @on_event first). */
static void reconnect(struct mig *m, struct qmp_conn **q, const char *dir,
                      void (*on_event)(struct mig *m, const struct qmp_event *e))
{
	struct qmp_conn *fresh = NULL;
	struct qmp_event e;
	int r = 0;

	while (*q && (r = qmp_conn_next_event(*q, 0, &e, NULL)) > 0) {
		on_event(m, &e);
		qmp_event_release(&e);
	}
	if (!*q || r != -EPIPE || !dir[0] || !vm_dir_pid(dir) ||
	    vm_qmp_open(dir, MIG_QMP_MS, &fresh, NULL) < 0)
		return;
	qmp_conn_free(*q);
	*q = fresh;
	m->run.sq = m->sq;
	m->run.dq = m->dq;
}

/*
 * The move cannot go on past phase @at (@r, the reason in @reterr): settle
 * it. Up to prepare nothing ran on the destination; later the QEMUs decide
 * (mig_settle). A completed move runs its remaining phases; an interrupt
 * there no longer stops it.
 */
static int settle(struct mig *m, size_t at, int r, uint64_t *prev_end, struct tgvm_error *reterr)
{
	struct migrate_timeline *t = m->t;
	enum mig_verdict v = MIG_VERDICT_ROLLBACK;
	char why[TGVM_ERROR_MSG_MAX] = "";
	int r2;

	if (phases[at].phase == MIGRATE_PHASE_CLEANUP) {
		/* Past the decision: the journal says "cleanup", a later call finishes. */
		m->keep_journal = true;
		return tgvm_error_prefix(reterr,
		                         "VM '%s' runs on host '%s' but its move is not tidied up "
		                         "('tgvm migrate status %s' finishes it)",
		                         t->vm, m->dst_host.name, t->vm);
	}
	reconnect(m, &m->sq, m->vmdir, src_event);
	reconnect(m, &m->dq, m->indir, dst_event);
	if (phases[at].phase >= MIGRATE_PHASE_PRECOPY) {
		drain_events(m, NULL);
		v = m->resume_seen ? MIG_VERDICT_COMPLETE
		                   : mig_settle(m->sq, m->dq, m->resume_seen, why, sizeof(why));
		if (v == MIG_VERDICT_COMPLETE && t->postcopy_used && !m->src_done &&
		    phases[at].phase == MIGRATE_PHASE_POSTCOPY)
			v = MIG_VERDICT_WAIT;
		/* The destination had the VM and is gone: nothing to complete or
		 * wait for, and its source may not be resumed. */
		if ((v == MIG_VERDICT_COMPLETE || v == MIG_VERDICT_WAIT) && m->indir[0] &&
		    !vm_dir_pid(m->indir)) {
			v = MIG_VERDICT_LOST;
			snprintf(why, sizeof(why),
			         "the destination QEMU on host '%s' died after it ran "
			         "the VM",
			         m->dst_host.name);
		}
	}
	json_object_set_new(t->extra, "settled",
	                    json_pack("{s:s, s:s, s:s}", "at_phase",
	                              migrate_phase_to_string(phases[at].phase), "verdict",
	                              v == MIG_VERDICT_COMPLETE ? "completed"
	                              : v == MIG_VERDICT_WAIT   ? "postcopy still running"
	                              : v == MIG_VERDICT_LOST   ? "lost"
	                                                        : "rolled back",
	                              "evidence", why));
	mig_log(m->vmdir, "move to '%s' stopped in %s (%s): %s%s%s", m->dst_host.name,
	        migrate_phase_to_string(phases[at].phase), reterr ? reterr->msg : "",
	        v == MIG_VERDICT_COMPLETE ? "completing it"
	        : v == MIG_VERDICT_WAIT   ? "postcopy goes on"
	                                  : "rolling back",
	        why[0] ? "; " : "", why);
	switch (v) {
	case MIG_VERDICT_WAIT:
		if (phases[at].phase == MIGRATE_PHASE_POSTCOPY) {
			/* Postcopy itself broke: both QEMUs stay, the VM runs on the
			 * destination; a later 'migrate status' settles it. */
			m->keep_journal = true;
			return tgvm_error_prefix(
			    reterr,
			    "postcopy broke after the switch to '%s' (the VM "
			    "runs there and its source keeps the pages it still "
			    "needs; QEMU's postcopy recovery can resume it)",
			    m->dst_host.name);
		}
		/* fall through */
	case MIG_VERDICT_COMPLETE: {
		/* The destination has the VM: finish the move whatever stopped it. */
		struct tgvm_error e2 = {0};
		/* From the switch (it waits for RESUME), or past what already ran. */
		size_t from =
		    phase_index(m->resume_seen ? MIGRATE_PHASE_START : MIGRATE_PHASE_SWITCH);

		if (from <= at)
			from = at + 1;
		if (!m->t->postcopy_used && v == MIG_VERDICT_WAIT)
			m->t->postcopy_used = true;
		r2 = phases_run(m, from, prev_end, &at, &e2);
		if (r2 < 0) {
			tgvm_error_set(reterr, -r2, "%s", e2.msg);
			return r2;
		}
		snprintf(t->status, sizeof(t->status), "completed");
		if (r == -EINTR || r == -ECANCELED)
			return 0; /* asked to stop, but too late: the move is done */
		/* A failure the move survived (the guest did not answer...). */
		return r;
	}
	case MIG_VERDICT_LOST:
		snprintf(t->status, sizeof(t->status), "failed");
		if (!m->resume_seen) { /* the source died: remove the destination too */
			mig_roll_back(m);
			return tgvm_error_set(
			    reterr, EIO, "VM '%s' is lost: its source QEMU died (%s)", t->vm, why);
		}
		/* It ran on the destination, which died: the source is not resumed
		 * (that would take the guest back in time); it stays paused. */
		qmp_conn_free(m->dq);
		m->dq = m->run.dq = NULL;
		vm_kill_dir(m->indir, m->dst_host.name, m->dst.tap, NULL);
		vm_rm_rf(m->indir);
		return tgvm_error_set(reterr, EIO,
		                      "VM '%s' is lost: %s; its source on host '%s' still holds it "
		                      "paused as it was before the switch, and is not resumed "
		                      "('tgvm vm stop %s' removes it)",
		                      t->vm, why, m->src_host.name, t->vm);
	case MIG_VERDICT_ROLLBACK:
		break;
	}
	mig_roll_back(m);
	/* Every phase that ran is undone, the last first. */
	for (size_t i = at + 1; i-- > 0;)
		if (t->phase_start_ns[phases[i].phase])
			hooks_run(m, phases[i].phase, MIGRATE_HOOK_ROLLBACK, NULL);
	mig_actions_run(&m->o->actions, false, NULL, NULL, NULL);
	snprintf(t->status, sizeof(t->status), "%s",
	         r == -EINTR || r == -ECANCELED ? "cancelled" : "failed");
	if (phases[at].phase >= MIGRATE_PHASE_SWITCH && r != -EINTR && r != -ECANCELED)
		tgvm_error_prefix(reterr, "migration rolled back to host '%s'", m->src.host);
	return r;
}

int migrate_vm(const char *name, const char *to, const struct migrate_opts *o,
               struct migrate_timeline *ret, struct tgvm_error *reterr)
{
	struct mig m = {
	    .o = o, .t = ret, .stream = {.src_fd = -1, .dst_fd = -1}, .queued_at_stop = -1};
	struct migrate_timeline *t = ret;
	uint64_t prev_end;
	size_t at = 0;
	int r;

	migrate_timeline_init(t);
	t->started_ns = prev_end = tgvm_wall_ns();
	t->mode = o->mode;
	if (o->step) /* nil-migration (shared.c) */
		json_object_set_new(t->extra, "step", json_string(o->step));
	snprintf(t->vm, sizeof(t->vm), "%s", name);
	snprintf(t->to, sizeof(t->to), "%s", to);
	snprintf(t->status, sizeof(t->status), "failed");
	vm_config_init(&m.src);
	vm_config_init(&m.dst);
	m.run = (struct migrate_run){.src = &m.src,
	                             .dst = &m.dst,
	                             .src_host = &m.src_host,
	                             .dst_host = &m.dst_host,
	                             .vmdir = m.vmdir,
	                             .indir = m.indir,
	                             .t = t};

	/* A move of this VM that an earlier process left is settled first. */
	struct migrate_recovery rec;
	if (tgvm_name_check("VM", name, NULL) == 0)
		migrate_reconcile(name, 0, &rec, NULL);
	r = phases_run(&m, 0, &prev_end, &at, reterr);
	if (r < 0 && phases[at].phase == MIGRATE_PHASE_CHECK) {
		snprintf(t->status, sizeof(t->status), "refused");
		if (mig_interrupted(&m)) {
			snprintf(t->status, sizeof(t->status), "cancelled");
			r = tgvm_error_set(reterr, EINTR, "interrupted before anything changed");
		}
	} else if (r < 0) {
		r = settle(&m, at, r, &prev_end, reterr);
	} else {
		snprintf(t->status, sizeof(t->status), "completed");
	}
	if (!strcmp(t->status, "completed") && o->mode == MIGRATE_POSTCOPY && !t->postcopy_used)
		snprintf(t->postcopy_reason, sizeof(t->postcopy_reason),
		         "requested, not used: precopy finished its first full pass and the "
		         "migration with it, before the switch to postcopy");
	if (m.interrupted)
		json_object_set_new(t->extra, "interrupted_by",
		                    json_string(signal_name(m.interrupted)));
	t->ended_ns = tgvm_wall_ns();
	if (r < 0 && reterr)
		snprintf(t->error, sizeof(t->error), "%s", reterr->msg);
	qmp_conn_free(m.sq);
	qmp_conn_free(m.dq);
	netprobe_free(m.np);
	vm_net_switch_free(m.sw);
	vm_stream_close(&m.stream);
	vm_stream_watch_free(m.watch);
	if (m.vmdir[0] && strcmp(t->status, "refused") && m.claimed && m.keep_journal) {
		mig_journal_write(&m);
	} else if (m.vmdir[0] && strcmp(t->status, "refused") && m.claimed) {
		json_t *j = migrate_timeline_to_json(t);
		char path[4400];

		mig_write_json(m.vmdir, MIG_TIMELINE_FILE, j, NULL);
		json_decref(j);
		if (strcmp(t->error, "") || m.interrupted)
			mig_log(m.vmdir, "move to '%s': %s%s%s", to, t->status,
			        t->error[0] ? ": " : "", t->error);
		snprintf(path, sizeof(path), "%s/" MIG_ACTIVE_FILE, m.vmdir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/" MIG_CANCEL_FILE, m.vmdir);
		unlink(path);
	}
	if (m.claimed)
		mig_unclaim(
		    m.vmdir); /* the VM directory may have followed the VM: the claim is in it */
	vm_config_release(&m.src);
	vm_config_release(&m.dst);
	return r;
}
