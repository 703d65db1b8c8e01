/* SPDX-License-Identifier: MIT */
/*
 * A QMP (QEMU Machine Protocol) client: one connection to one QEMU monitor
 * over a UNIX socket (or any connected stream fd). Commands are synchronous
 * with a timeout; asynchronous events that arrive meanwhile are queued with
 * QEMU's own timestamp and read with qmp_conn_next_event(). Every message is
 * bounded in size (TGVM_QMP_MSG_MAX); a monitor that closes, stalls or sends
 * garbage gives an error, never a hang or a crash.
 */
#ifndef TGVM_QMP_H
#define TGVM_QMP_H

#include <stdint.h>

#include <jansson.h>

#include "tgvm/error.h"

#define TGVM_QMP_MSG_MAX (8u << 20) /* one message; query-cpu-model-expansion is ~20 KiB */

struct qmp_conn;

struct qmp_event {
	char name[64];         /* "STOP", "RESUME", "MIGRATION", ... */
	uint64_t timestamp_us; /* QEMU's wall-clock timestamp (seconds*1e6 + microseconds) */
	uint64_t received_ns;  /* our CLOCK_REALTIME when the line was read */
	json_t *data;          /* owned by the event; may be NULL */
};

/*
 * Connect to the QMP socket at @path, waiting up to @timeout_ms for it to
 * appear and accept, read the greeting and negotiate capabilities.
 * On success *ret owns the connection; free it with qmp_conn_free().
 */
int qmp_conn_open(const char *path, int timeout_ms, struct qmp_conn **ret,
                  struct tgvm_error *reterr);
/* Same, over an already connected stream @fd (taken over: closed by qmp_conn_free). */
int qmp_conn_open_fd(int fd, int timeout_ms, struct qmp_conn **ret, struct tgvm_error *reterr);
void qmp_conn_free(struct qmp_conn *c); /* accepts NULL; closes the socket */

/* The QEMU version from the greeting, e.g. major=7 minor=2 micro=22. */
void qmp_conn_version(const struct qmp_conn *c, int *major, int *minor, int *micro);

/*
 * Run @command with @args (borrowed, may be NULL) and wait up to @timeout_ms
 * for its reply. On success *ret_return (may be NULL) gets a new reference to
 * the "return" value. A QMP error gives -EREMOTEIO with QEMU's class and
 * description in @reterr; a closed socket -EPIPE; a timeout -ETIMEDOUT.
 */
int qmp_conn_command(struct qmp_conn *c, const char *command, json_t *args, int timeout_ms,
                     json_t **ret_return, struct tgvm_error *reterr);

/*
 * QMP's getfd: hand descriptor @fd (the caller keeps its own copy) to the
 * monitor's process under @fdname (SCM_RIGHTS with the command), for a later
 * "fd:NAME" URI. Errors as qmp_conn_command.
 */
int qmp_conn_getfd(struct qmp_conn *c, const char *fdname, int fd, int timeout_ms,
                   struct tgvm_error *reterr);

/*
 * Next queued event, or wait up to @timeout_ms for one (0: do not wait).
 * Returns 1 and fills @ret (release with qmp_event_release), 0 on timeout,
 * or a negative errno when the connection is gone.
 */
int qmp_conn_next_event(struct qmp_conn *c, int timeout_ms, struct qmp_event *ret,
                        struct tgvm_error *reterr);
/*
 * Wait up to @timeout_ms for the event named @name and take the oldest one
 * queued (1 and @ret filled, 0 on timeout, -errno). Other events stay queued
 * in their order, for qmp_conn_next_event().
 */
int qmp_conn_wait_event(struct qmp_conn *c, const char *name, int timeout_ms, struct qmp_event *ret,
                        struct tgvm_error *reterr);
void qmp_event_release(struct qmp_event *e);

/* The socket fd, for poll() in callers that watch several monitors at once. */
int qmp_conn_fd(const struct qmp_conn *c);

/*
 * QEMU's error class ("GenericError", "CommandNotFound", ...) of the last
 * command that failed with -EREMOTEIO, or NULL if the last command did not get
 * a QMP error. Owned by @c, valid until the next command.
 */
const char *qmp_conn_last_error_class(const struct qmp_conn *c);
/*
 * Call @fn (NULL: none) on every event the moment it is read, also while a
 * command waits for its reply, before the event is queued as usual. @fn must
 * be quick and must not use @c.
 */
void qmp_conn_set_event_hook(struct qmp_conn *c,
                             void (*fn)(const struct qmp_event *e, void *opaque), void *opaque);

/* How many events were dropped because the queue was full (it keeps the newest 4096). */
uint64_t qmp_conn_events_dropped(const struct qmp_conn *c);

#endif
