// SPDX-License-Identifier: MIT
/*
 * One run of a guest under qemu-system-x86_64 -accel tcg with some CPU
 * features taken away: boot the kernel (the bundled guest by default), let
 * its init run the check command (chrooted in a user's disk image, attached
 * with snapshot=on, when one is given), read "TGVM-RESULT rc=N", the
 * command's output and the kernel's report of a fatal SIGILL (TGVM-FAULT
 * lines: the faulting instruction's bytes, decoded here) from the serial
 * console on QEMU's stdout.
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

/*
 * The bytes of a kernel "Code:" line from the faulting instruction on: the
 * one in <..> is at the instruction pointer. Returns the count (0: no marker).
 */
static size_t code_bytes(const char *p, const char *end, uint8_t *ret, size_t max)
{
	size_t n = 0;
	bool at = false;

	while (p < end && n < max) {
		int hi, lo;

		while (p < end && *p == ' ')
			p++;
		if (p < end && *p == '<') {
			at = true;
			p++;
		}
		if (end - p < 2 || (hi = tgvm_hexval(p[0])) < 0 || (lo = tgvm_hexval(p[1])) < 0)
			break;
		if (at)
			ret[n++] = (uint8_t)(hi << 4 | lo);
		p += 2;
		if (p < end && *p == '>')
			p++;
	}
	return n;
}

int probe_vm_fault(const char *log, size_t len, const struct tgvm_featureset *present,
                   struct probe_obs *o)
{
	static const char tag[] = "TGVM-FAULT ";
	const char *p = log, *end = log + len;
	bool in_block = false, user = false;
	uint64_t rip = 0;
	char where[64] = "";

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *t = p;

		/* Init's copy of the kernel log (TGVM-FAULT lines), or the
		 * console itself: an oops is printed there whatever the log level. */
		if ((size_t)(le - p) > sizeof(tag) - 1 && !memcmp(p, tag, sizeof(tag) - 1))
			t += sizeof(tag) - 1;
		if (t < le && *t == '[') {
			const char *c = memchr(t, ']', (size_t)(le - t));

			t = c && c + 1 < le ? c + 2 : le;
		}
		while (le > t && (le[-1] == '\r' || le[-1] == ' '))
			le--;
		if (memmem(t, (size_t)(le - t), "fatal signal 4.", 15)) {
			in_block = true; /* a user process killed by SIGILL */
			user = true;
			rip = 0;
			where[0] = 0;
		} else if (memmem(t, (size_t)(le - t), "invalid opcode: ", 16)) {
			in_block = true; /* the kernel's own invalid opcode (an oops) */
			user = false;
			rip = 0;
			where[0] = 0;
		} else if (in_block && le - t > 5 && !memcmp(t, "RIP: ", 5)) {
			/* user: "RIP: 0033:0x4015b6"; kernel: "RIP: 0010:func+0x1/0x2" */
			const char *x = memchr(t + 5, ':', (size_t)(le - t - 5));

			if (x) {
				snprintf(where, sizeof(where), "%.*s", (int)(le - x - 1), x + 1);
				if (!strncmp(where, "0x", 2))
					rip = strtoull(where + 2, NULL, 16);
			}
		} else if (in_block && le - t > 6 && !memcmp(t, "Code: ", 6)) {
			uint8_t bytes[64];
			size_t nb = code_bytes(t + 6, le, bytes, sizeof(bytes));
			char text[96];

			in_block = false;
			if (nb == 0)
				goto next;
			o->sigill_addr = rip;
			o->sigill_feature =
			    probe_decode_fault(bytes, nb, rip, present, text, sizeof(text));
			if (o->sigill_feature >= 0)
				snprintf(o->fault, sizeof(o->fault), "SIGILL %s%s: %s needs %s",
				         user ? "at " : "in the kernel at ", where[0] ? where : "?",
				         text, tgvm_feature_name(o->sigill_feature));
			else
				snprintf(o->fault, sizeof(o->fault), "SIGILL %s%s: %s",
				         user ? "at " : "in the kernel at ", where[0] ? where : "?",
				         text);
			return 1;
		}
	next:
		p = nl ? nl + 1 : end;
	}
	return 0;
}

/*
 * "TGVM-ERROR what": init could not set up the run (a disk it cannot mount).
 * It comes instead of TGVM-RUN-BEGIN, so the command's output never counts.
 */
static int guest_error(const char *log, struct tgvm_error *reterr)
{
	const char *e = strstr(log, "TGVM-ERROR ");
	size_t n;

	if (!e || strstr(log, "TGVM-RUN-BEGIN"))
		return 0;
	e += 11;
	n = strcspn(e, "\r\n");
	return tgvm_error_set(reterr, EINVAL, "the guest cannot run the command: %.*s",
	                      (int)TGVM_MIN(n, 200), e);
}

int probe_run_vm(const struct probe_ctx *ctx, const char *cpu,
                 const struct tgvm_featureset *present, struct probe_obs *ret,
                 struct tgvm_error *reterr)
{
	const struct tgvm_probe_options *opt = ctx->opt;
	struct probe_obs o = {.sigill_feature = -1};
	char mem[16], *log = NULL, *drive = NULL;
	struct tgvm_error err = {0};
	int status = 0, r, rc;
	const char *qemu = opt->qemu_system;

	if (!qemu)
		qemu = vm_qemu_binary();
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
	                NULL,         NULL,
	                NULL};

	if (ctx->disk) {
		/* virtio-blk; snapshot=on: the guest's writes go to a temporary
		 * overlay, the image is only read. A comma in the path is doubled. */
		struct tgvm_buf b;
		int e = 0;

		tgvm_buf_init(&b);
		e |= tgvm_buf_printf(&b, "file=");
		for (const char *c = ctx->disk; *c; c++)
			e |=
			    tgvm_buf_append(&b, c, 1) | (*c == ',' ? tgvm_buf_append(&b, c, 1) : 0);
		e |= tgvm_buf_printf(&b, ",format=%s,if=virtio,snapshot=on", ctx->disk_format);
		if (e < 0 || !b.data) {
			tgvm_buf_release(&b);
			return -ENOMEM;
		}
		drive = b.data;
		argv[sizeof(argv) / sizeof(argv[0]) - 3] = "-drive";
		argv[sizeof(argv) / sizeof(argv[0]) - 2] = drive;
	}
	r = tgvm_run_capture(argv, SERIAL_MAX, (int)ctx->timeout_ms, &log, &status, &err);
	free(drive);
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
	r = guest_error(log, reterr);
	if (r < 0) {
		free(log);
		return r;
	}
	run_output(log, &o);
	{
		/* The report follows the result (the command's own output
		 * cannot fake it); without a result, an oops anywhere. */
		const char *from = strstr(log, "TGVM-RESULT rc=");

		from = from ? from : log;
		probe_vm_fault(from, strlen(from), present, &o);
	}
	if (tgvm_guest_parse_result(log, strlen(log), &rc) == 1) {
		o.exited = true;
		o.status = rc;
		if (rc == 128 + SIGILL) {
			o.outcome = TGVM_PROBE_SIGILL;
			snprintf(o.detail, sizeof(o.detail), "rc=%d: %.240s", rc,
			         o.fault[0] ? o.fault : "SIGILL in the guest");
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
