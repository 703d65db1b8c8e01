/* SPDX-License-Identifier: MIT */
/* Running helper programs: capture their output (bounded) and exit status. */
#ifndef TGVM_UTIL_PROC_H
#define TGVM_UTIL_PROC_H

#include <stddef.h>

#include "tgvm/error.h"

/*
 * Run @argv (argv[0] searched in PATH) with stdin from /dev/null, capture up to
 * @max bytes of stdout (rest discarded) and wait at most @timeout_ms (then
 * SIGKILL). *ret_out (may be NULL) is NUL-terminated, caller frees;
 * *ret_status gets the wait status. -ENOENT when the program is missing,
 * -ETIMEDOUT on timeout.
 */
int tgvm_run_capture(char *const argv[], size_t max, int timeout_ms, char **ret_out,
                     int *ret_status, struct tgvm_error *reterr);

/*
 * Call @fn(@arg) on a short-lived thread that has joined network namespace
 * @netns (a name under /run/netns; NULL: ours), so that sockets it makes
 * live there while the caller's own namespace never changes (setns is per
 * thread). Returns what @fn returned (0 or -errno), or -errno when the
 * namespace cannot be joined or the thread not started.
 */
int tgvm_in_netns(const char *netns, int (*fn)(void *arg), void *arg);

#endif
