/* SPDX-License-Identifier: MIT */
/*
 * Inside the migration engine: the state of one move (struct mig) shared by
 * the phases (migrate.c), the blackout probe and network switch (blackout.c)
 * and the journal that lets a move interrupted at any moment be settled from
 * the QEMUs themselves (state.c).
 */
#ifndef TGVM_MIGRATE_INT_H
#define TGVM_MIGRATE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "tgvm/memdev.h"
#include "tgvm/migrate.h"
#include "tgvm/netprobe.h"
#include "tgvm/qmp-monitor.h"
#include "tgvm/qmp.h"
#include "tgvm/vm.h"
#include "util/util.h"

#define MIG_QMP_MS         5000
#define MIG_STREAM_FD_NAME "tgvm-migrate"
#define MIG_CANCEL_FILE    "cancel-request"
#define MIG_ACTIVE_FILE    "migration-active.json" /* the journal of a move in flight */
#define MIG_CLAIM_FILE     "migration.claim"       /* the migrating process's pid */
#define MIG_TIMELINE_FILE  "migration.json"        /* the last move's timeline */
#define MIG_LOG_FILE       "tgvm.log"              /* one line per decision, kept */
#define MIG_RESUME_WAIT_MS 15000

/* QEMU's word for a migration status ("none" when it sent none). */
static inline const char *mig_status_word(const struct tgvm_qmp_migrate_info *mi)
{
	return mi->status_word[0] ? mi->status_word : "none";
}

/* A migration still moving (a cancel takes a moment to wind down). */
static inline bool mig_in_flight(enum tgvm_qmp_migration_status s)
{
	return s == TGVM_QMP_MIGRATION_STATUS_SETUP || s == TGVM_QMP_MIGRATION_STATUS_CANCELLING ||
	       s == TGVM_QMP_MIGRATION_STATUS_ACTIVE ||
	       s == TGVM_QMP_MIGRATION_STATUS_PRE_SWITCHOVER ||
	       s == TGVM_QMP_MIGRATION_STATUS_DEVICE || s == TGVM_QMP_MIGRATION_STATUS_WAIT_UNPLUG;
}

static inline bool mig_is_postcopy(enum tgvm_qmp_migration_status s)
{
	return s == TGVM_QMP_MIGRATION_STATUS_POSTCOPY_ACTIVE ||
	       s == TGVM_QMP_MIGRATION_STATUS_POSTCOPY_PAUSED ||
	       s == TGVM_QMP_MIGRATION_STATUS_POSTCOPY_RECOVER_SETUP ||
	       s == TGVM_QMP_MIGRATION_STATUS_POSTCOPY_RECOVER;
}

struct mig {
	struct migrate_run run; /* what hooks see; first member */
	const struct migrate_opts *o;
	struct migrate_timeline *t;
	struct vm_config src, dst;
	struct vm_host src_host, dst_host;
	char vmdir[4096];
	char indir[4200];
	struct qmp_conn *sq, *dq;
	bool claimed;
	bool src_was_running;
	bool stop_seen, resume_seen, src_done, dst_done, switch_hooked;
	uint64_t stop_ns, resume_ns, src_done_ns, dst_done_ns;
	uint64_t last_progress_ns;
	uint64_t last_bytes, last_move_ns; /* stall detection */
	uint64_t last_recover_ns;
	uint64_t deadline_ns, precopy_start_ns;
	char qemu_status[TGVM_QMP_WORD_MAX]; /* the source's migration status, last sample */
	bool postcopy_asked, limit_raised;
	int recover_listens; /* migrate-recover calls that took on the destination */
	struct netprobe *np;
	struct vm_netswitch *sw; /* prepared network switch, fired at STOP */
	uint64_t probe_from_ns;  /* end of the floor window */
	struct vm_stream stream; /* tgvm's connection for the stream (fd >= 0 until handed over) */
	bool stream_fd;          /* the stream runs on it ("fd:" URIs), not on QEMU's own TCP */
	unsigned port;           /* the destination's migration port */
	struct vm_stream_watch *watch; /* its queues, NULL when they cannot be watched */
	int64_t queued_at_stop;        /* stream bytes not yet read by the destination at STOP */
	enum migrate_phase phase;      /* the phase running now */
	uint64_t phase_mark_ns;        /* a phase's own end time (a QEMU event), 0: now */
	int interrupted;               /* the signal that interrupted the move, 0 none */
	bool keep_journal;             /* left for a later process to settle */
	char uri[96];                  /* the stream's URI for the source */
};

/* The signal that interrupted the move (the caller's flag), 0 none; sticky. */
static inline int mig_interrupted(struct mig *m)
{
	if (!m->interrupted && m->o->interrupt && *m->o->interrupt)
		m->interrupted = *m->o->interrupt;
	return m->interrupted;
}

/* ---- blackout.c: the UDP blackout probe and the network switch ---- */
void mig_probe_begin(struct mig *m);
int mig_probe_finish(struct mig *m, struct tgvm_error *reterr);
void mig_net_switch_prepare(struct mig *m);
void mig_net_switch(struct mig *m);
void mig_net_switch_back(struct mig *m);

/* ---- state.c: claim, journal, settling ---- */
int mig_claim(const char *vmdir, const char *name, struct tgvm_error *reterr);
void mig_unclaim(const char *vmdir);
/* Write the journal of @m (what a later process needs to settle the move). */
void mig_journal_write(struct mig *m);
void mig_log(const char *vmdir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int mig_write_json(const char *dir, const char *name, json_t *j, struct tgvm_error *reterr);
json_t *mig_read_json(const char *dir, const char *name);
/* Stop the source, move the destination's files into the VM's directory. */
int mig_finish(const char *vmdir, const char *indir, const char *src_host, const char *src_tap,
               struct tgvm_error *reterr);
/* Remove the destination, point the network back, resume the source if it ran. */
void mig_roll_back(struct mig *m);
/* One line in the VM's console log where it changed hosts (the log is kept whole). */
void mig_serial_mark(const char *vmdir, const char *what);
/* Run the completion (or rollback) actions of the move's memory lease and files. */
int mig_actions_run(const struct migrate_actions *a, bool completed, const char *dst_host,
                    struct vm_memdev_lease *held, struct tgvm_error *reterr);
/* The source's migration no longer in flight (a cancel takes a moment). */
void mig_wait_source_idle(struct qmp_conn *q, int timeout_ms);

enum mig_verdict {
	MIG_VERDICT_ROLLBACK, /* the destination never ran: the source keeps the VM */
	MIG_VERDICT_COMPLETE, /* the destination has (or will have) run: it keeps the VM */
	MIG_VERDICT_WAIT,     /* postcopy: the destination runs, the source still holds pages */
	MIG_VERDICT_LOST,     /* the source died before the destination had the VM */
};
/*
 * Decide where a move that cannot go on (interrupted, tgvm gone) ends, from
 * the QEMUs: a destination that runs or has completed its incoming
 * migration keeps the VM; else the source's migration is cancelled, and if
 * the source had already sent everything the destination keeps it after all.
 * @resume_seen: a RESUME from the destination was seen. @sq/@dq may be NULL
 * (that QEMU is gone). Appends the evidence to @why.
 */
enum mig_verdict mig_settle(struct qmp_conn *sq, struct qmp_conn *dq, bool resume_seen, char *why,
                            size_t why_size);

#endif
