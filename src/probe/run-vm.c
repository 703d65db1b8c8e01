// SPDX-License-Identifier: MIT
/*
 * One run of a guest under qemu-system-x86_64 -accel tcg with some CPU
 * features taken away: boot the kernel (the bundled guest by default), let
 * its init run the check command, read "TGVM-RESULT rc=N" and the command's
 * output from the serial console on QEMU's stdout.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "probe/probe-int.h"
#include "tgvm/vm.h"
#include "util/proc.h"
#include "util/util.h"

#define SERIAL_MAX (4u << 20)

/* The command's output: the lines between TGVM-RUN-BEGIN and TGVM-RESULT, '\r' dropped. */
static void run_output(const char *log, struct probe_obs *o)
{
	const char *b = strstr(log, "TGVM-RUN-BEGIN"), *e;
	struct tgvm_buf out;

	tgvm_buf_init(&out);
	if (b) {
		b = strchr(b, '\n');
		b = b ? b + 1 : log + strlen(log);
		e = strstr(b, "TGVM-RESULT rc=");
		if (!e)
			e = b + strlen(b);
		for (const char *p = b; p < e; p++)
			if (*p != '\r')
				tgvm_buf_append(&out, p, 1);
	}
	if (!out.data)
		tgvm_buf_append(&out, "", 0);
	o->out = out.data;
	o->out_len = out.len;
}

int probe_run_vm(const struct probe_ctx *ctx, const char *cpu, struct probe_obs *ret,
                 struct tgvm_error *reterr)
{
	const struct tgvm_probe_options *opt = ctx->opt;
	struct probe_obs o = {.sigill_feature = -1};
	char mem[16], *log = NULL;
	struct tgvm_error err = {0};
	int status = 0, r, rc;
	const char *qemu = opt->qemu_system;

	if (!qemu)
		qemu = getenv("TGVM_QEMU") && *getenv("TGVM_QEMU") ? getenv("TGVM_QEMU")
		                                                   : "qemu-system-x86_64";
	snprintf(mem, sizeof(mem), "%u", opt->mem_mib ? opt->mem_mib : 128);
	char *argv[] = {(char *)qemu, "-accel",
	                "tcg",        "-cpu",
	                (char *)cpu,  "-m",
	                mem,          "-smp",
	                "1",          "-display",
	                "none",       "-monitor",
	                "none",       "-serial",
	                "stdio",      "-nic",
	                "none",       "-no-reboot",
	                "-kernel",    (char *)ctx->kernel,
	                "-initrd",    (char *)ctx->initrd,
	                "-append",    ctx->append,
	                NULL};

	r = tgvm_run_capture(argv, SERIAL_MAX, (int)ctx->timeout_ms, &log, &status, &err);
	if (r == -ETIMEDOUT) {
		o.outcome = TGVM_PROBE_TIMEOUT;
		snprintf(o.detail, sizeof(o.detail), "no TGVM-RESULT within %u s; killed",
		         ctx->timeout_ms / 1000);
		o.out = strdup("");
		*ret = o;
		return o.out ? 0 : -ENOMEM;
	}
	if (r < 0) {
		*reterr = err;
		return r;
	}
	run_output(log, &o);
	if (tgvm_guest_parse_result(log, strlen(log), &rc) == 1) {
		o.exited = true;
		o.status = rc;
		if (rc == 128 + SIGILL) {
			o.outcome = TGVM_PROBE_SIGILL;
			snprintf(o.detail, sizeof(o.detail), "rc=%d: SIGILL in the guest", rc);
		} else {
			o.outcome = TGVM_PROBE_PASS;
			snprintf(o.detail, sizeof(o.detail), "rc=%d", rc);
		}
	} else {
		const char *panic = strstr(log, "Kernel panic");
		const char *nl = panic ? strchr(panic, '\n') : NULL;

		o.outcome = TGVM_PROBE_NORESULT;
		o.status = -1;
		if (panic)
			snprintf(o.detail, sizeof(o.detail), "no TGVM-RESULT: %.*s",
			         (int)(nl ? TGVM_MIN((size_t)(nl - panic), 200) : 200), panic);
		else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			snprintf(o.detail, sizeof(o.detail),
			         "no TGVM-RESULT: qemu exited with status %d", WEXITSTATUS(status));
		else
			snprintf(o.detail, sizeof(o.detail),
			         "no TGVM-RESULT: the guest stopped before the command ended");
		for (char *p = o.detail; *p; p++)
			if (*p == '\r' || *p == '\n')
				*p = ' ';
	}
	free(log);
	*ret = o;
	return 0;
}
