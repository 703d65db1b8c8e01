/* SPDX-License-Identifier: MIT */
/*
 * Live migration of a VM between simulated hosts as a pipeline of named
 * phases (check, prepare, precopy, pause, last-copy, switch, start, cleanup),
 * each timestamped; QEMU moves the bytes over TCP across the fabric. The
 * timeline (with precopy iterations and three downtime figures) is returned
 * and stored as $TGVM_STATE_DIR/vms/NAME/migration.json.
 */
#ifndef TGVM_MIGRATE_H
#define TGVM_MIGRATE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "tgvm/error.h"
#include "tgvm/hostcheck.h"
#include "tgvm/model.h"
#include "tgvm/vm.h"

enum migrate_mode {
	MIGRATE_PRECOPY,  /* auto-converge; multifd on request */
	MIGRATE_POSTCOPY, /* one precopy pass, then postcopy */
	MIGRATE_AUTO,     /* precopy; postcopy if it has not converged within a bound */
	MIGRATE_MODE__MAX
};
const char *migrate_mode_to_string(enum migrate_mode m);
int migrate_mode_from_string(const char *s);

enum migrate_phase {
	MIGRATE_PHASE_CHECK,
	MIGRATE_PHASE_PREPARE,
	MIGRATE_PHASE_PRECOPY,
	MIGRATE_PHASE_PAUSE,     /* source vCPUs stopped (QMP STOP on the source) */
	MIGRATE_PHASE_LAST_COPY, /* the last dirty pages and device state */
	MIGRATE_PHASE_POSTCOPY,  /* only in postcopy: destination runs, pages pulled */
	MIGRATE_PHASE_SWITCH,    /* source done, destination loading */
	MIGRATE_PHASE_START,     /* destination vCPUs run (QMP RESUME on the destination) */
	MIGRATE_PHASE_CLEANUP,
	MIGRATE_PHASE__MAX
};
const char *migrate_phase_to_string(enum migrate_phase p);

#define MIGRATE_ITER_MAX 512

/* One precopy pass as QEMU counted it; -1 where QEMU did not say. */
struct migrate_iteration {
	uint64_t t_ns;            /* wall clock when sampled */
	int64_t dirty_sync_count; /* QEMU's pass number */
	int64_t remaining_bytes;
	int64_t transferred_bytes;
	int64_t dirty_rate_bps; /* dirty-pages-rate * page size */
	int64_t throughput_bps; /* mbps from QEMU, in bytes/s */
};

struct migrate_timeline {
	char vm[TGVM_NAME_MAX];
	char from[TGVM_NAME_MAX];
	char to[TGVM_NAME_MAX];
	enum migrate_mode mode;
	bool postcopy_used; /* postcopy was switched on (never silently: see reason) */
	char postcopy_reason[128];
	int downtime_limit_raised_ms;   /* precopy raised its downtime limit to this; 0 not */
	int postcopy_recovery_attempts; /* resumes of the postcopy stream asked after a break */
	uint64_t phase_start_ns[MIGRATE_PHASE__MAX]; /* wall clock; 0 when the phase did not run */
	uint64_t phase_end_ns[MIGRATE_PHASE__MAX];
	size_t n_iter;
	struct migrate_iteration iter[MIGRATE_ITER_MAX];
	/* Outcome */
	char status[24];                /* "completed", "failed", "cancelled", "refused" */
	char error[TGVM_ERROR_MSG_MAX]; /* what went wrong, "" on success */
	int64_t qemu_downtime_ms;       /* QEMU's own figure; -1 unknown */
	int64_t vcpu_blackout_us;       /* STOP on source -> RESUME on destination; -1 unknown */
	int64_t total_ms;               /* QEMU's total-time; -1 unknown */
	uint64_t transferred_bytes;     /* RAM moved */
	uint64_t stop_event_us;         /* QEMU timestamps of those events; 0 unknown */
	uint64_t resume_event_us;
	uint64_t started_ns, ended_ns; /* whole pipeline, wall clock */
	/* Network blackout from the UDP probe (see tgvm/netprobe.h); -1 unknown. */
	int64_t net_blackout_us;        /* longest silence around the switch (STOP..RESUME) */
	int64_t net_floor_us;           /* longest silence with no migration, just before */
	int64_t net_precopy_silence_us; /* longest silence from prepare until the switch */
	int probe_interval_us;          /* 0: no probe ran */
	double probe_floor_answered;    /* share of datagrams answered in the floor window */
	double probe_rtt_median_us;     /* in the floor window */
	uint64_t net_gap_start_ns, net_gap_end_ns; /* the blackout's silence, wall clock */
	int64_t first_answer_us;                   /* RESUME -> first reply from the destination */
	int64_t answers_again_us;         /* RESUME -> end of the blackout; INT64_MIN unknown */
	int64_t net_switch_after_stop_us; /* STOP -> forwarding entries replaced */
	int64_t paused_sent;              /* datagrams sent from STOP to RESUME */
	int64_t paused_answered;          /* of those, answered (late) by the destination */
	int64_t
	    dest_translated_blocks; /* TCG blocks the new QEMU built by the end of the probe; -1 KVM */
	bool net_switched;          /* the fabric was pointed at the destination */
	char probe_note[TGVM_ERROR_MSG_MAX]; /* why a figure is missing, or "" */
	json_t *extra;                       /* owned; hooks may add fields (network blackout...) */
};

void migrate_timeline_init(struct migrate_timeline *t);
/*
 * The timeline @j (the JSON form) drawn as SVG: the pipeline's phases and
 * precopy progress, and the switchover zoomed with both blackouts. Returns a
 * malloc'd NUL-terminated document the caller frees, or NULL when @j has no
 * timeline (or memory ran out).
 */
char *migrate_timeline_svg(json_t *j);
void migrate_timeline_release(struct migrate_timeline *t);
/* Stable JSON form (see tgvm-migrate(1)); new reference. */
json_t *migrate_timeline_to_json(const struct migrate_timeline *t);

/*
 * The check of the destination: return 0 when @dst may run @vm, else a
 * negative errno with the reason (the missing features) in @reterr. It must
 * not change anything.
 */
typedef int (*migrate_check_fn)(const struct vm_config *vm, const struct vm_host *dst, void *opaque,
                                struct tgvm_error *reterr);

/*
 * What a phase hook sees of a move in flight. The QMP connections are the
 * pipeline's (valid while the hook runs; NULL before prepare and after
 * cleanup); a hook may add fields to t->extra.
 */
struct vm_memdev_lease;
struct qmp_conn;

struct migrate_run {
	const struct vm_config *src, *dst;
	const struct vm_host *src_host, *dst_host;
	struct qmp_conn *sq, *dq;
	const char *vmdir; /* the VM's state directory */
	const char *indir; /* the destination's state directory */
	struct migrate_timeline *t;
};

enum migrate_hook_when {
	MIGRATE_HOOK_BEFORE,   /* before the phase runs; an error fails the move there */
	MIGRATE_HOOK_AFTER,    /* after it ran; an error fails the move there */
	MIGRATE_HOOK_ROLLBACK, /* the move is rolled back after this phase ran (every phase
	                          that ran, the last first); errors ignored */
	MIGRATE_HOOK__MAX
};

/*
 * One step another layer adds to a phase (storage, network, plane, devices):
 * @fn runs on the pipeline's thread and must return quickly; 0 or -errno
 * with @reterr filled. Hooks of one phase and moment run in array order.
 */
struct migrate_hook {
	enum migrate_phase phase;
	enum migrate_hook_when when;
	int (*fn)(struct migrate_run *run, void *opaque, struct tgvm_error *reterr);
	void *opaque;
};
#define MIGRATE_HOOKS_MAX 16

/*
 * What must happen with a move's shared memory once it is settled, also when
 * a later process settles it (recorded in the move's journal): hand the
 * lease of @lease_file to the destination host, or free a device file.
 * Empty strings: nothing.
 */
struct migrate_actions {
	char lease_file[4096]; /* completed: the lease of this RAM file moves to the destination */
	char free_on_complete[4096]; /* completed: this RAM file (and its lease) is freed */
	char free_on_rollback[4096]; /* rolled back: this RAM file (and its lease) is freed */
};

struct migrate_opts {
	enum migrate_mode mode;
	int downtime_limit_ms;   /* 0: QEMU's default (300 ms); migrate_opts_init sets 20 */
	bool downtime_limit_set; /* the user chose it (informational) */
	uint64_t max_bandwidth;  /* bytes/s; 0: unlimited */
	int converge_timeout_ms; /* auto: switch to postcopy after this much precopy (default 10 s) */
	int multifd_channels; /* precopy; 0: no multifd (36 s vs 2.4 s for 128 MiB under TCG here) */
	int timeout_ms;       /* whole migration; 0: 10 minutes */
	int stall_timeout_ms;   /* precopy: fail when no byte moved for this long; 0: 10 s */
	int probe_interval_us;  /* network blackout probe: 0 default (0.2 ms), -1 none */
	int probe_floor_ms;     /* probe alone first, to measure its floor; 0: 1000 */
	bool no_net_switch;     /* leave the fabric to learn from the VM's own announce */
	int stream_buffer;      /* bytes of each socket buffer of tgvm's stream connection;
	                           0: default (512 KiB), -1: the kernel's autotuning */
	bool qemu_defaults;     /* baseline: QEMU as it comes (no parameters, no auto-converge,
	                           no network switch), measured the same way */
	migrate_check_fn check; /* NULL: no CPU check */
	void *check_opaque;
	struct migrate_hook hooks[MIGRATE_HOOKS_MAX];
	size_t n_hooks;
	/* Every sample during precopy (about every 100 ms): progress display. */
	void (*progress)(const struct migrate_timeline *t, const char *status, void *opaque);
	void *progress_opaque;
	/*
	 * Set (to the signal number) by the caller's signal handler: the move
	 * stops at the next safe point. Before the destination has the VM it is
	 * cancelled (the VM runs on the source); after, it is completed. Postcopy
	 * after the switch always completes. NULL: not interruptible.
	 */
	const volatile sig_atomic_t *interrupt;
	/* Tests: the process stops itself (SIGSTOP) when this phase begins; -1 never. */
	int test_stop_at;
	struct migrate_actions actions;
	struct vm_memdev_lease *lease_held; /* the caller holds this lease's lock (handoff) */
	const char *test_fault;             /* tests only (tgvm-migrate(1), FAULTS); NULL: none */
	/* nil-migration (src/migrate/shared.c, tgvm/memdev.h) */
	bool ignore_shared; /* x-ignore-shared on both sides: RAM on a shared device is not sent */
	bool same_host;     /* @to may be the VM's own host (decouple, recouple) */
	/* Change the destination's copy of the config (RAM backing, tap) before it starts. */
	int (*prepare_dst)(struct vm_config *dst, void *opaque, struct tgvm_error *reterr);
	void *prepare_opaque;
	const char *step; /* stored as "step" in the timeline when set ("handoff", ...) */
};

void migrate_opts_init(struct migrate_opts *o);

/*
 * Move VM @name to host @to. Check first (host is up, is not the VM's host,
 * @o->check); on refusal returns -EPERM with the reason and changes nothing.
 * Then prepare the destination QEMU (same devices and -cpu, paused,
 * -incoming defer, in @to's namespace), migrate over TCP to @to's address,
 * and on success quit the source and move the state directory to the
 * destination's. On any failure or cancel (migrate_cancel_request), the VM
 * keeps running on the source and no destination QEMU or tap is left.
 * @ret (initialised here; release with migrate_timeline_release) is filled
 * whenever the pipeline ran, also on failure. Blocks until done.
 */
int migrate_vm(const char *name, const char *to, const struct migrate_opts *o,
               struct migrate_timeline *ret, struct tgvm_error *reterr);

/*
 * Ask a running migration of VM @name to stop before switchover. If no
 * migrate process is alive any more, clean up what it left (destination QEMU,
 * tap, paused source) directly. -ENOENT when nothing is migrating.
 */
int migrate_cancel_request(const char *name, struct tgvm_error *reterr);

/*
 * Status of VM @name's migration: the live progress of one in flight, else the
 * last stored timeline. A move whose tgvm process is gone is settled first
 * (migrate_reconcile). *ret is a new JSON reference; *ret_active tells which.
 */
int migrate_status(const char *name, json_t **ret, bool *ret_active, struct tgvm_error *reterr);

/*
 * Every VM's move in flight and its last one: a JSON array of
 * {"vm", "active", "status", "from", "to", "mode", "ended_unix_ns"}, newest
 * first. Settles moves whose process is gone first. New reference.
 */
int migrate_status_all(json_t **ret, struct tgvm_error *reterr);

enum migrate_recovery_action {
	MIGRATE_RECOVERY_NONE,        /* nothing was left half done */
	MIGRATE_RECOVERY_BUSY,        /* a live tgvm process drives the move */
	MIGRATE_RECOVERY_COMPLETED,   /* the destination had the VM: the move was completed */
	MIGRATE_RECOVERY_ROLLED_BACK, /* it never ran there: the source keeps the VM */
	MIGRATE_RECOVERY_WAITING,     /* postcopy: the destination runs, pages still coming */
	MIGRATE_RECOVERY_LOST,        /* the source QEMU died before the switch */
	MIGRATE_RECOVERY__MAX
};
const char *migrate_recovery_action_to_string(enum migrate_recovery_action a);

struct migrate_recovery {
	enum migrate_recovery_action action;
	char host[TGVM_NAME_MAX];          /* where the VM runs now ("" when lost) */
	char evidence[TGVM_ERROR_MSG_MAX]; /* what the QEMUs said */
};

/*
 * Settle a move of VM @name that its tgvm process left (killed, crashed):
 * from the two QEMUs' run and migration states, complete it (the
 * destination ran guest code, or had everything) or roll it back (it never
 * ran: the source resumes). Once the destination has run guest code the
 * source is never resumed. The decision and its evidence go to the VM's
 * tgvm.log and timeline. Cost: a few QMP round trips; postcopy waits up to
 * @wait_ms for the source to finish sending pages.
 */
int migrate_reconcile(const char *name, int wait_ms, struct migrate_recovery *ret,
                      struct tgvm_error *reterr);
/* The same for every VM; the number of moves settled, or -errno. */
int migrate_reconcile_all(int wait_ms, struct tgvm_error *reterr);

#endif
