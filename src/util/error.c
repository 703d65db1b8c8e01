// SPDX-License-Identifier: MIT
/* struct tgvm_error: formatting and prefixing of user-facing error messages. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tgvm/error.h"

#define TGVM_MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

int tgvm_error_set(struct tgvm_error *reterr, int code, const char *fmt, ...)
{
	va_list ap;

	if (code <= 0)
		code = EIO;
	if (reterr) {
		reterr->code = code;
		va_start(ap, fmt);
		vsnprintf(reterr->msg, sizeof(reterr->msg), fmt, ap);
		va_end(ap);
	}
	return -code;
}

void tgvm_error_clear(struct tgvm_error *reterr)
{
	if (reterr) {
		reterr->code = 0;
		reterr->msg[0] = '\0';
	}
}

int tgvm_error_prefix(struct tgvm_error *reterr, const char *fmt, ...)
{
	char head[TGVM_ERROR_MSG_MAX];
	char old[TGVM_ERROR_MSG_MAX];
	va_list ap;

	if (!reterr)
		return -EIO;
	if (reterr->code <= 0)
		reterr->code = EIO;
	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, reterr->msg, sizeof(old));
	/* Truncation is fine here: the head matters more than the tail. */
	size_t n = strnlen(head, sizeof(head) - 1);
	size_t room = sizeof(reterr->msg) - 1;
	size_t at = TGVM_MIN_SZ(n, room);
	memcpy(reterr->msg, head, at);
	if (at + 2 <= room) {
		memcpy(reterr->msg + at, ": ", 2);
		at += 2;
	}
	n = TGVM_MIN_SZ(strnlen(old, sizeof(old) - 1), room - at);
	memcpy(reterr->msg + at, old, n);
	reterr->msg[at + n] = '\0';
	return -reterr->code;
}
