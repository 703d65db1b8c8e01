/* SPDX-License-Identifier: MIT */
/*
 * The typed QMP monitor: one C function per QMP command tgvm sends, on top of
 * the framing of qmp.h (libvirt's qemu_monitor.c is the model). No module
 * outside src/qmp/ writes a QMP command name; src/qmp/commands.list names
 * every command this file covers, and scripts/check-qmp-layering.sh holds
 * the rest of the tree to it.
 *
 * Every call: @c is the connection, @timeout_ms bounds the wait for the reply,
 * returns 0 or a negative errno, fills its ret_ arguments only on success, and
 * fails as qmp_conn_command() does: a QMP error gives -EREMOTEIO with QEMU's
 * class and description in @reterr (and qmp_conn_last_error_class()), a closed
 * socket -EPIPE, no reply -ETIMEDOUT; a reply of the wrong shape -EPROTO.
 */
#ifndef TGVM_QMP_MONITOR_H
#define TGVM_QMP_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tgvm/error.h"
#include "tgvm/qmp.h"

#define TGVM_QMP_WORD_MAX     48   /* a status word kept as QEMU sent it */
#define TGVM_QMP_DESC_MAX     512  /* error-desc of query-migrate, cut beyond */
#define TGVM_QMP_CPU_DEFS_MAX 4096 /* entries of query-cpu-definitions */
#define TGVM_QMP_CPU_UNAV_MAX 1024 /* unavailable-features of one definition */
#define TGVM_QMP_CPU_NAME_MAX 128  /* a CPU model or feature name, with its NUL */

/* ---- run state: query-status, stop, cont, quit ---- */

/* QEMU's RunState. OTHER stands for a word this table does not know. */
enum tgvm_qmp_run_state {
	TGVM_QMP_RUN_STATE_OTHER,
	TGVM_QMP_RUN_STATE_DEBUG,
	TGVM_QMP_RUN_STATE_INMIGRATE,
	TGVM_QMP_RUN_STATE_INTERNAL_ERROR,
	TGVM_QMP_RUN_STATE_IO_ERROR,
	TGVM_QMP_RUN_STATE_PAUSED,
	TGVM_QMP_RUN_STATE_POSTMIGRATE,
	TGVM_QMP_RUN_STATE_PRELAUNCH,
	TGVM_QMP_RUN_STATE_FINISH_MIGRATE,
	TGVM_QMP_RUN_STATE_RESTORE_VM,
	TGVM_QMP_RUN_STATE_RUNNING,
	TGVM_QMP_RUN_STATE_SAVE_VM,
	TGVM_QMP_RUN_STATE_SHUTDOWN,
	TGVM_QMP_RUN_STATE_SUSPENDED,
	TGVM_QMP_RUN_STATE_WATCHDOG,
	TGVM_QMP_RUN_STATE_GUEST_PANICKED,
	TGVM_QMP_RUN_STATE_COLO,
	TGVM_QMP_RUN_STATE__MAX
};
/* QEMU's word ("paused"); NULL for OTHER or out of range. */
const char *tgvm_qmp_run_state_to_string(enum tgvm_qmp_run_state s);
/* The state for QEMU's word, or -EINVAL when the table does not know it. */
int tgvm_qmp_run_state_from_string(const char *s);

struct tgvm_qmp_status {
	bool running;                   /* QEMU's "running" */
	enum tgvm_qmp_run_state state;  /* OTHER when the word is unknown */
	char status[TGVM_QMP_WORD_MAX]; /* QEMU's word as sent, "" if none */
};

/* query-status into *ret. A reply without a boolean "running" is -EPROTO. */
int tgvm_qmp_query_status(struct qmp_conn *c, int timeout_ms, struct tgvm_qmp_status *ret,
                          struct tgvm_error *reterr);
/* stop: pause the vCPUs (a STOP event follows). */
int tgvm_qmp_stop(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr);
/* cont: resume the vCPUs (a RESUME event follows). */
int tgvm_qmp_cont(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr);
/* quit: QEMU exits after replying; the connection then reports -EPIPE. */
int tgvm_qmp_quit(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr);

/* ---- migration ---- */

/* QEMU's MigrationStatus. OTHER stands for a word this table does not know. */
enum tgvm_qmp_migration_status {
	TGVM_QMP_MIGRATION_STATUS_OTHER,
	TGVM_QMP_MIGRATION_STATUS_NONE,
	TGVM_QMP_MIGRATION_STATUS_SETUP,
	TGVM_QMP_MIGRATION_STATUS_CANCELLING,
	TGVM_QMP_MIGRATION_STATUS_CANCELLED,
	TGVM_QMP_MIGRATION_STATUS_ACTIVE,
	TGVM_QMP_MIGRATION_STATUS_POSTCOPY_ACTIVE,
	TGVM_QMP_MIGRATION_STATUS_POSTCOPY_PAUSED,
	TGVM_QMP_MIGRATION_STATUS_POSTCOPY_RECOVER_SETUP,
	TGVM_QMP_MIGRATION_STATUS_POSTCOPY_RECOVER,
	TGVM_QMP_MIGRATION_STATUS_COMPLETED,
	TGVM_QMP_MIGRATION_STATUS_FAILED,
	TGVM_QMP_MIGRATION_STATUS_COLO,
	TGVM_QMP_MIGRATION_STATUS_PRE_SWITCHOVER,
	TGVM_QMP_MIGRATION_STATUS_DEVICE,
	TGVM_QMP_MIGRATION_STATUS_WAIT_UNPLUG,
	TGVM_QMP_MIGRATION_STATUS__MAX
};
/* QEMU's word ("postcopy-active"); NULL for OTHER or out of range. */
const char *tgvm_qmp_migration_status_to_string(enum tgvm_qmp_migration_status s);
/* The status for QEMU's word, or -EINVAL when the table does not know it. */
int tgvm_qmp_migration_status_from_string(const char *s);

/*
 * The "ram" object of query-migrate. Each has_X is false when QEMU did not
 * send X (or sent something that is not a non-negative number): X is then 0
 * and means nothing, so never print it.
 */
struct tgvm_qmp_migrate_ram {
	bool has_transferred, has_remaining, has_total, has_duplicate, has_normal;
	bool has_dirty_pages_rate, has_page_size, has_mbps, has_dirty_sync_count;
	bool has_postcopy_requests, has_precopy_bytes, has_downtime_bytes;
	uint64_t transferred;       /* bytes */
	uint64_t remaining;         /* bytes */
	uint64_t total;             /* bytes */
	uint64_t duplicate;         /* zero pages */
	uint64_t normal;            /* pages */
	uint64_t dirty_pages_rate;  /* pages per second */
	uint64_t page_size;         /* bytes */
	double mbps;                /* megabits per second */
	uint64_t dirty_sync_count;  /* passes over memory */
	uint64_t postcopy_requests; /* pages the destination faulted for */
	uint64_t precopy_bytes;     /* bytes */
	uint64_t downtime_bytes;    /* bytes */
};

/* query-migrate. Times are in ms; has_X false: QEMU did not say. */
struct tgvm_qmp_migrate_info {
	bool has_status; /* false: QEMU sent none (no migration yet), status NONE */
	enum tgvm_qmp_migration_status status;
	char status_word[TGVM_QMP_WORD_MAX]; /* as sent; "" without one */
	bool has_error_desc;
	char error_desc[TGVM_QMP_DESC_MAX]; /* "" without one; cut to fit */
	bool has_total_time, has_downtime, has_setup_time, has_expected_downtime;
	int64_t total_time;
	int64_t downtime;
	int64_t setup_time;
	int64_t expected_downtime;
	bool has_ram;
	struct tgvm_qmp_migrate_ram ram;
};

/* query-migrate into *ret (no allocation: nothing to free). */
int tgvm_qmp_query_migrate(struct qmp_conn *c, int timeout_ms, struct tgvm_qmp_migrate_info *ret,
                           struct tgvm_error *reterr);

/* Migration capabilities tgvm sets (QEMU's MigrationCapability, a subset). */
enum tgvm_qmp_migrate_cap {
	TGVM_QMP_MIGRATE_CAP_EVENTS,
	TGVM_QMP_MIGRATE_CAP_MULTIFD,
	TGVM_QMP_MIGRATE_CAP_AUTO_CONVERGE,
	TGVM_QMP_MIGRATE_CAP_POSTCOPY_RAM,
	TGVM_QMP_MIGRATE_CAP_X_IGNORE_SHARED,
	TGVM_QMP_MIGRATE_CAP_PAUSE_BEFORE_SWITCHOVER,
	TGVM_QMP_MIGRATE_CAP_RETURN_PATH,
	TGVM_QMP_MIGRATE_CAP_XBZRLE,
	TGVM_QMP_MIGRATE_CAP_ZERO_COPY_SEND,
	TGVM_QMP_MIGRATE_CAP__MAX
};
/* QEMU's name ("x-ignore-shared"); NULL out of range. */
const char *tgvm_qmp_migrate_cap_to_string(enum tgvm_qmp_migrate_cap cap);
/* The capability for QEMU's name, or -EINVAL. */
int tgvm_qmp_migrate_cap_from_string(const char *s);

struct tgvm_qmp_migrate_cap_state {
	enum tgvm_qmp_migrate_cap cap;
	bool state;
};

/*
 * migrate-set-capabilities: set the @n capabilities of @caps (borrowed) in
 * one command. A capability out of range is -EINVAL, nothing sent.
 */
int tgvm_qmp_migrate_set_capabilities(struct qmp_conn *c,
                                      const struct tgvm_qmp_migrate_cap_state *caps, size_t n,
                                      int timeout_ms, struct tgvm_error *reterr);

/* Migration parameters; only those with has_X set are sent. */
struct tgvm_qmp_migrate_params {
	bool has_max_bandwidth, has_downtime_limit, has_max_postcopy_bandwidth;
	bool has_multifd_channels;
	uint64_t max_bandwidth;          /* bytes per second */
	uint64_t downtime_limit;         /* ms */
	uint64_t max_postcopy_bandwidth; /* bytes per second; 0: unlimited */
	int multifd_channels;
};

/*
 * migrate-set-parameters with the set fields of @p (borrowed). A value above
 * INT64_MAX, or multifd-channels outside 1..255, is -EINVAL, nothing sent.
 */
int tgvm_qmp_migrate_set_parameters(struct qmp_conn *c, const struct tgvm_qmp_migrate_params *p,
                                    int timeout_ms, struct tgvm_error *reterr);

/*
 * migrate: start sending to @uri ("tcp:HOST:PORT", "fd:NAME", "unix:PATH").
 * @resume: resume a paused postcopy migration (QEMU's "resume": true).
 */
int tgvm_qmp_migrate(struct qmp_conn *c, const char *uri, bool resume, int timeout_ms,
                     struct tgvm_error *reterr);
/* migrate-incoming: a QEMU started with -incoming defer listens on @uri. */
int tgvm_qmp_migrate_incoming(struct qmp_conn *c, const char *uri, int timeout_ms,
                              struct tgvm_error *reterr);
/* migrate_cancel: cancel the outgoing migration (status goes cancelling, cancelled). */
int tgvm_qmp_migrate_cancel(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr);
/* migrate-pause: pause a postcopy migration (either side); it can be resumed. */
int tgvm_qmp_migrate_pause(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr);
/* migrate-start-postcopy: switch a running precopy (postcopy-ram on) to postcopy. */
int tgvm_qmp_migrate_start_postcopy(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr);
/* migrate-recover: a destination in postcopy-paused listens on @uri for the resume. */
int tgvm_qmp_migrate_recover(struct qmp_conn *c, const char *uri, int timeout_ms,
                             struct tgvm_error *reterr);

/* ---- descriptors ---- */

/* getfd: same as qmp_conn_getfd() (@fd is sent, the caller keeps its own copy). */
int tgvm_qmp_getfd(struct qmp_conn *c, const char *fdname, int fd, int timeout_ms,
                   struct tgvm_error *reterr);
/* closefd: QEMU closes the descriptor it holds as @fdname; none by that name: -EREMOTEIO. */
int tgvm_qmp_closefd(struct qmp_conn *c, const char *fdname, int timeout_ms,
                     struct tgvm_error *reterr);

/* ---- diagnostics ---- */

/*
 * x-query-jit: the TCG statistics; *ret_tb_count gets the "TB count" line,
 * -1 when the text has none. Under KVM QEMU refuses: -EREMOTEIO.
 */
int tgvm_qmp_x_query_jit(struct qmp_conn *c, int timeout_ms, int64_t *ret_tb_count,
                         struct tgvm_error *reterr);
/*
 * human-monitor-command: run the HMP line @command_line ("logfile /x");
 * *ret_output (may be NULL) gets what HMP printed, freed by the caller with
 * free(). Note that HMP reports most of its errors as output, not as errors.
 */
int tgvm_qmp_human_monitor_command(struct qmp_conn *c, const char *command_line, int timeout_ms,
                                   char **ret_output, struct tgvm_error *reterr);
/* trace-event-set-state: enable or disable the trace event(s) @name (a pattern). */
int tgvm_qmp_trace_event_set_state(struct qmp_conn *c, const char *name, bool enable,
                                   int timeout_ms, struct tgvm_error *reterr);

/* ---- CPU models ---- */

struct tgvm_qmp_cpu_def {
	char name[TGVM_QMP_CPU_NAME_MAX];
	char alias_of[TGVM_QMP_CPU_NAME_MAX]; /* "" when not an alias */
	bool migration_safe;
	bool is_static;
	bool deprecated;
	bool has_unavailable_features; /* false: QEMU did not check (no accelerator) */
	char **unavailable_features;   /* n_unavailable names, owned by the array */
	size_t n_unavailable;
};

/*
 * query-cpu-definitions: *ret gets an array of *ret_n models (at most
 * TGVM_QMP_CPU_DEFS_MAX, more is -EPROTO), in QEMU's order, freed with
 * tgvm_qmp_cpu_defs_free(). Entries whose name does not fit are skipped.
 * Unavailable features are those the running accelerator cannot give.
 */
int tgvm_qmp_query_cpu_definitions(struct qmp_conn *c, int timeout_ms,
                                   struct tgvm_qmp_cpu_def **ret, size_t *ret_n,
                                   struct tgvm_error *reterr);
void tgvm_qmp_cpu_defs_free(struct tgvm_qmp_cpu_def *defs, size_t n); /* accepts NULL */

enum tgvm_qmp_cpu_expansion {
	TGVM_QMP_CPU_EXPANSION_STATIC, /* a static base model plus the props that differ */
	TGVM_QMP_CPU_EXPANSION_FULL,   /* every property with its value */
	TGVM_QMP_CPU_EXPANSION__MAX
};
const char *tgvm_qmp_cpu_expansion_to_string(enum tgvm_qmp_cpu_expansion t); /* NULL out of range */
int tgvm_qmp_cpu_expansion_from_string(const char *s);                       /* or -EINVAL */

/* The model of a query-cpu-model-expansion reply. */
struct tgvm_qmp_cpu_model {
	char name[TGVM_QMP_CPU_NAME_MAX]; /* the model's (or the static base's) name */
	json_t *props;                    /* owned: an object, {} when QEMU sent none */
};
/* Drop the props of @m (accepts NULL; safe twice). */
void tgvm_qmp_cpu_model_release(struct tgvm_qmp_cpu_model *m);

/*
 * query-cpu-model-expansion of model @name with @props (borrowed, may be
 * NULL: none) as @type. QEMU expands under the accelerator it runs with, so
 * "max" or "host" read there is what that accelerator can give on that host.
 * Feature props are booleans; family/model/stepping are numbers and
 * model-id/vendor strings; a uint64 past INT64_MAX arrives as a real (see
 * qmp.h). On success *ret is filled; release it with tgvm_qmp_cpu_model_release().
 */
int tgvm_qmp_query_cpu_model_expansion(struct qmp_conn *c, enum tgvm_qmp_cpu_expansion type,
                                       const char *name, json_t *props, int timeout_ms,
                                       struct tgvm_qmp_cpu_model *ret, struct tgvm_error *reterr);

#endif
