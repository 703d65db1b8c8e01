/* SPDX-License-Identifier: MIT */
/*
 * Error reporting of libtgvm. Library functions return 0 or a negative errno;
 * the words a user needs (the file, the host, the missing feature) go into an
 * optional struct tgvm_error that the caller owns, usually on its stack.
 */
#ifndef TGVM_ERROR_H
#define TGVM_ERROR_H

#include <stddef.h>

#define TGVM_ERROR_MSG_MAX 1024

struct tgvm_error {
	int code;                     /* positive errno, 0 when unset */
	char msg[TGVM_ERROR_MSG_MAX]; /* lowercase, what failed first */
};

/*
 * Record an error in @reterr (may be NULL) and return -@code, so that a
 * function can end with `return tgvm_error_set(reterr, ENOENT, "...", ...);`.
 * @code is a positive errno value; a value <= 0 is taken as EIO.
 */
int tgvm_error_set(struct tgvm_error *reterr, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clear @reterr (may be NULL). */
void tgvm_error_clear(struct tgvm_error *reterr);

/*
 * Prefix the message already in @reterr with a formatted context, as in
 * "host 'rome-1': <old message>". Returns -reterr->code (or -EIO).
 */
int tgvm_error_prefix(struct tgvm_error *reterr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
