// SPDX-License-Identifier: MIT
/*
 * One run of a program under qemu-x86_64 with some CPU features taken away.
 * QEMU's gdb stub (on a unix socket) stops the program at every signal, so a
 * SIGILL is seen with the guest's registers: tgvm reads the faulting
 * instruction, decodes it with the scan module's ISA map to learn which
 * missing feature it needed, then lets the signal through. Also: what
 * qemu-x86_64 -cpu max cannot present (TCG's gaps), measured by asking.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "probe/probe-int.h"
#include "scan/scan-int.h"
#include "util/proc.h"
#include "util/util.h"

#define GDB_PACKET_MAX 8192 /* a 'g' reply is 1216 hex digits */
#define STDERR_KEEP    2048
#define GDB_SIGILL     4 /* gdb's signal numbers match Linux for the first 15 */
#define GDB_CONNECT_MS 5000
#define GDB_REPLY_MS   5000
#define X86_64_RIP_HEX (16 * 16) /* 'g': rax..r15 (8 bytes each) then rip */
#define INSN_BYTES_MAX 15

static atomic_uint sock_seq;

void probe_obs_release(struct probe_obs *o)
{
	free(o->out);
	o->out = NULL;
	o->out_len = 0;
}

int probe_decode_fault(const uint8_t *bytes, size_t len, uint64_t addr,
                       const struct tgvm_featureset *present, char *ret_text, size_t text_size)
{
	ZydisDecoder dec;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisFormatter fmt;
	enum tgvm_feature f[SCAN_INSN_FEATURES_MAX];
	int nf, missing = -1;

	if (text_size)
		snprintf(ret_text, text_size, "(undecodable)");
	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, bytes, len, &in, ops)))
		return -1;
	ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL);
	if (text_size &&
	    !ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&fmt, &in, ops, in.operand_count_visible,
	                                                  ret_text, text_size, addr, NULL)))
		snprintf(ret_text, text_size, "(unformattable)");
	nf = scan_isa_features(&in, f);
	for (int i = 0; i < nf && missing < 0; i++)
		if (!tgvm_featureset_has(present, f[i]))
			missing = (int)f[i];
	return missing;
}

/* ---- a minimal gdb remote protocol client ---- */

struct gdb {
	int fd;
	char buf[GDB_PACKET_MAX];
	size_t len;
};

static int gdb_send(struct gdb *g, const char *payload)
{
	char pkt[128];
	unsigned sum = 0;
	int n;

	for (const char *p = payload; *p; p++)
		sum += (unsigned char)*p;
	n = snprintf(pkt, sizeof(pkt), "$%s#%02x", payload, sum & 0xff);
	if (n < 0 || (size_t)n >= sizeof(pkt))
		return -E2BIG;
	for (int off = 0; off < n;) {
		ssize_t w = send(g->fd, pkt + off, (size_t)(n - off), MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EPIPE;
		off += (int)w;
	}
	return 0;
}

/*
 * Take one complete packet out of the buffer into @ret (NUL-terminated) and
 * acknowledge it. 1 when one was there, 0 when more bytes are needed.
 */
static int gdb_take(struct gdb *g, char *ret, size_t size)
{
	char *start = memchr(g->buf, '$', g->len), *hash;
	size_t plen, used;

	if (!start) {
		g->len = 0; /* acks and noise */
		return 0;
	}
	hash = memchr(start, '#', g->len - (size_t)(start - g->buf));
	if (!hash || (size_t)(hash - g->buf) + 3 > g->len)
		return 0;
	plen = (size_t)(hash - start - 1);
	if (plen >= size)
		plen = size - 1;
	memcpy(ret, start + 1, plen);
	ret[plen] = 0;
	used = (size_t)(hash - g->buf) + 3;
	memmove(g->buf, g->buf + used, g->len - used);
	g->len -= used;
	(void)!send(g->fd, "+", 1, MSG_NOSIGNAL);
	return 1;
}

/* Read into the buffer; 0 on EOF, <0 on error, >0 bytes. */
static ssize_t gdb_fill(struct gdb *g)
{
	ssize_t n;

	if (g->len == sizeof(g->buf))
		g->len = 0; /* a runaway packet: drop it */
	n = recv(g->fd, g->buf + g->len, sizeof(g->buf) - g->len, 0);
	if (n > 0)
		g->len += (size_t)n;
	return n;
}

/* Wait for the next packet (the program is stopped, so nothing else moves). */
static int gdb_wait(struct gdb *g, char *ret, size_t size, int timeout_ms)
{
	uint64_t deadline = tgvm_now_ns() + (uint64_t)timeout_ms * 1000000ULL;

	for (;;) {
		struct pollfd p = {.fd = g->fd, .events = POLLIN};
		uint64_t now = tgvm_now_ns();

		if (gdb_take(g, ret, size))
			return 0;
		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)((deadline - now) / 1000000ULL) + 1) <= 0)
			continue;
		if (gdb_fill(g) <= 0)
			return -EPIPE;
	}
}

/* The program stopped with SIGILL: read rip and the bytes there, decode. */
static void gdb_sigill(struct gdb *g, const struct tgvm_featureset *present, struct probe_obs *o)
{
	char reply[GDB_PACKET_MAX], req[64], text[128];
	uint8_t bytes[INSN_BYTES_MAX];
	uint64_t rip = 0;
	size_t nb = 0;

	snprintf(o->detail, sizeof(o->detail), "SIGILL (instruction not read)");
	if (gdb_send(g, "g") < 0 || gdb_wait(g, reply, sizeof(reply), GDB_REPLY_MS) < 0 ||
	    strlen(reply) < X86_64_RIP_HEX + 16)
		return;
	for (int i = 7; i >= 0; i--) { /* little-endian bytes */
		int hi = tgvm_hexval(reply[X86_64_RIP_HEX + 2 * i]),
		    lo = tgvm_hexval(reply[X86_64_RIP_HEX + 2 * i + 1]);

		if (hi < 0 || lo < 0)
			return;
		rip = rip << 8 | (uint64_t)(hi << 4 | lo);
	}
	o->sigill_addr = rip;
	snprintf(req, sizeof(req), "m%llx,%x", (unsigned long long)rip, INSN_BYTES_MAX);
	if (gdb_send(g, req) < 0 || gdb_wait(g, reply, sizeof(reply), GDB_REPLY_MS) < 0)
		return;
	for (size_t i = 0; i + 1 < strlen(reply) && nb < sizeof(bytes); i += 2) {
		int hi = tgvm_hexval(reply[i]), lo = tgvm_hexval(reply[i + 1]);

		if (hi < 0 || lo < 0)
			break;
		bytes[nb++] = (uint8_t)(hi << 4 | lo);
	}
	o->sigill_feature = probe_decode_fault(bytes, nb, rip, present, text, sizeof(text));
	if (o->sigill_feature >= 0)
		snprintf(o->detail, sizeof(o->detail), "SIGILL at 0x%llx: %s needs %s",
		         (unsigned long long)rip, text, tgvm_feature_name(o->sigill_feature));
	else
		snprintf(o->detail, sizeof(o->detail), "SIGILL at 0x%llx: %s",
		         (unsigned long long)rip, text);
}

static int gdb_connect(const char *path, pid_t pid, struct gdb *ret, struct tgvm_error *reterr)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint64_t deadline = tgvm_now_ns() + GDB_CONNECT_MS * 1000000ULL;

	if (strlen(path) >= sizeof(sa.sun_path))
		return tgvm_error_set(reterr, ENAMETOOLONG, "socket path '%s' is too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), st;

		if (fd < 0)
			return tgvm_error_set(reterr, errno, "cannot create a socket: %s",
			                      strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			ret->fd = fd;
			ret->len = 0;
			return 0;
		}
		close(fd);
		if (waitpid(pid, &st, WNOHANG) == pid) {
			if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
				return tgvm_error_set(reterr, ENOPKG, "cannot run qemu-x86_64");
			return tgvm_error_set(reterr, EIO,
			                      "qemu-x86_64 ended before its gdb stub was reachable "
			                      "(status %d)",
			                      st);
		}
		if (tgvm_now_ns() >= deadline)
			return tgvm_error_set(reterr, ETIMEDOUT,
			                      "qemu-x86_64's gdb stub did not appear at '%s'",
			                      path);
		nanosleep(&(struct timespec){0, 2000000}, NULL);
	}
}

static void keep_tail(char *keep, size_t *klen, const char *p, size_t n)
{
	if (n >= STDERR_KEEP) {
		memcpy(keep, p + n - (STDERR_KEEP - 1), STDERR_KEEP - 1);
		*klen = STDERR_KEEP - 1;
	} else {
		if (*klen + n >= STDERR_KEEP) {
			size_t drop = *klen + n - (STDERR_KEEP - 1);

			memmove(keep, keep + drop, *klen - drop);
			*klen -= drop;
		}
		memcpy(keep + *klen, p, n);
		*klen += n;
	}
	keep[*klen] = 0;
}

int probe_run_user(const struct probe_ctx *ctx, const char *cpu,
                   const struct tgvm_featureset *present, struct probe_obs *ret,
                   struct tgvm_error *reterr)
{
	const struct tgvm_probe_options *opt = ctx->opt;
	char sock[512], errkeep[STDERR_KEEP];
	size_t argc = 0, errlen = 0;
	char **argv = NULL;
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, r = 0, status = 0;
	struct gdb g = {.fd = -1};
	struct probe_obs o = {.sigill_feature = -1};
	struct tgvm_buf out;
	bool out_eof = false, err_eof = false, timed_out = false, gdb_stopped_ill = false;
	uint64_t deadline;
	pid_t pid = -1;

	tgvm_buf_init(&out);
	errkeep[0] = 0;
	snprintf(sock, sizeof(sock), "%s/gdb-%u.sock", ctx->tmpdir, atomic_fetch_add(&sock_seq, 1));
	unlink(sock);
	while (ctx->argv[argc])
		argc++;
	argv = calloc(argc + 6, sizeof(char *));
	if (!argv)
		return -ENOMEM;
	argv[0] = (char *)(opt->qemu_user ? opt->qemu_user : "qemu-x86_64");
	argv[1] = "-g";
	argv[2] = sock;
	argv[3] = "-cpu";
	argv[4] = (char *)cpu;
	for (size_t i = 0; i < argc; i++)
		argv[5 + i] = ctx->argv[i];
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		r = tgvm_error_set(reterr, errno, "cannot create a pipe: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = tgvm_error_set(reterr, errno, "cannot fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		struct rlimit nocore = {0, 0};
		int devnull = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		setrlimit(RLIMIT_CORE, &nocore); /* qemu-user would write qemu_*.core files */
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;
	deadline = tgvm_now_ns() + (uint64_t)ctx->timeout_ms * 1000000ULL;
	r = gdb_connect(sock, pid, &g, reterr);
	if (r == -EIO) {
		/* QEMU refused the program: say what it said. */
		char chunk[512];
		ssize_t n = read(errp[0], chunk, sizeof(chunk) - 1);
		char *nl;

		chunk[n > 0 ? n : 0] = 0;
		nl = strchr(chunk, '\n');
		if (nl)
			*nl = 0;
		r = tgvm_error_set(reterr, ENOEXEC, "cannot run '%s' under qemu-x86_64: %s",
		                   ctx->argv[0], *chunk ? chunk : "it exited at once");
		pid = -1; /* reaped by gdb_connect */
		goto out;
	}
	if (r < 0)
		goto out;
	{
		char reply[256];

		/* The program waits at its first instruction; let it go. */
		if (gdb_send(&g, "?") < 0 || gdb_wait(&g, reply, sizeof(reply), GDB_REPLY_MS) < 0 ||
		    gdb_send(&g, "c") < 0) {
			r = tgvm_error_set(reterr, EIO, "qemu-x86_64's gdb stub does not answer");
			goto out;
		}
	}
	while (!out_eof || !err_eof || g.fd >= 0) {
		struct pollfd p[3] = {{.fd = out_eof ? -1 : outp[0], .events = POLLIN},
		                      {.fd = err_eof ? -1 : errp[0], .events = POLLIN},
		                      {.fd = g.fd, .events = POLLIN}};
		uint64_t now = tgvm_now_ns();
		char chunk[4096];
		ssize_t n;

		if (now >= deadline) {
			timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 3, (int)TGVM_MIN((deadline - now) / 1000000ULL + 1, 1000)) <= 0)
			continue;
		if (p[0].revents) {
			n = read(outp[0], chunk, sizeof(chunk));
			if (n <= 0 && !(n < 0 && errno == EINTR))
				out_eof = true;
			else if (n > 0 && out.len < TGVM_PROBE_OUTPUT_MAX)
				tgvm_buf_append(
				    &out, chunk,
				    TGVM_MIN((size_t)n, TGVM_PROBE_OUTPUT_MAX - out.len));
			else if (n > 0)
				o.out_truncated = true;
		}
		if (p[1].revents) {
			n = read(errp[0], chunk, sizeof(chunk));
			if (n <= 0 && !(n < 0 && errno == EINTR))
				err_eof = true;
			else if (n > 0)
				keep_tail(errkeep, &errlen, chunk, (size_t)n);
		}
		if (g.fd >= 0 && p[2].revents) {
			char pkt[GDB_PACKET_MAX];

			if (gdb_fill(&g) <= 0) {
				close(g.fd);
				g.fd = -1;
				continue;
			}
			while (g.fd >= 0 && gdb_take(&g, pkt, sizeof(pkt))) {
				int sig;
				char cont[16];

				if (pkt[0] == 'W' || pkt[0] == 'X') {
					close(g.fd);
					g.fd = -1;
					break;
				}
				if ((pkt[0] != 'T' && pkt[0] != 'S') || tgvm_hexval(pkt[1]) < 0 ||
				    tgvm_hexval(pkt[2]) < 0)
					continue;
				sig = tgvm_hexval(pkt[1]) << 4 | tgvm_hexval(pkt[2]);
				if (sig == GDB_SIGILL) {
					gdb_sigill(&g, present, &o);
					gdb_stopped_ill = true;
				}
				snprintf(cont, sizeof(cont), "C%02x", sig);
				if (gdb_send(&g, cont) < 0) {
					close(g.fd);
					g.fd = -1;
				}
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	o.status = status;
	if (timed_out) {
		o.outcome = TGVM_PROBE_TIMEOUT;
		snprintf(o.detail, sizeof(o.detail), "killed after %u s", ctx->timeout_ms / 1000);
	} else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGILL) {
		o.outcome = TGVM_PROBE_SIGILL;
		if (!gdb_stopped_ill)
			snprintf(o.detail, sizeof(o.detail), "SIGILL");
	} else if (WIFSIGNALED(status)) {
		o.outcome = TGVM_PROBE_SIGNAL;
		snprintf(o.detail, sizeof(o.detail), "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	} else {
		o.outcome = TGVM_PROBE_PASS;
		o.exited = true;
		if (WEXITSTATUS(status) == 127 && out.len == 0 &&
		    strstr(errkeep, "Error while loading")) {
			r = tgvm_error_set(reterr, ENOENT, "qemu-x86_64 cannot load '%s': %s",
			                   ctx->argv[0], errkeep);
			goto out;
		}
		snprintf(o.detail, sizeof(o.detail), "exit status %d", WEXITSTATUS(status));
		/* A SIGILL the program caught itself (a capability probe) is no failure. */
		o.sigill_feature = -1;
	}
	if (!out.data)
		tgvm_buf_append(&out, "", 0);
	o.out = out.data;
	o.out_len = out.len;
	out.data = NULL;
	*ret = o;
out:
	if (pid > 0) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (g.fd >= 0)
		close(g.fd);
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	unlink(sock);
	tgvm_buf_release(&out);
	free(argv);
	return r;
}

int probe_user_unavailable(const char *qemu, const struct tgvm_featureset *ask,
                           struct tgvm_featureset *ret, struct tgvm_error *reterr)
{
	struct tgvm_buf cpu;
	int errp[2] = {-1, -1}, status, r = 0;
	struct tgvm_featureset un;
	char *text = NULL;
	size_t len = 0;
	pid_t pid;

	tgvm_featureset_clear(&un);
	tgvm_buf_init(&cpu);
	tgvm_buf_printf(&cpu, "max");
	TGVM_FEATURESET_FOREACH(f, ask)
	tgvm_buf_printf(&cpu, ",+%s", tgvm_feature_info(f)->qemu_name);
	if (!cpu.data)
		return -ENOMEM;
	if (pipe2(errp, O_CLOEXEC) < 0) {
		r = tgvm_error_set(reterr, errno, "cannot create a pipe: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		r = tgvm_error_set(reterr, errno, "cannot fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		dup2(errp[1], 2);
		/* Any program will do: QEMU checks the CPU before loading it. */
		execlp(qemu, qemu, "-cpu", cpu.data, "/bin/true", (char *)NULL);
		_exit(127);
	}
	close(errp[1]);
	errp[1] = -1;
	{
		struct tgvm_buf e;
		char chunk[4096];
		ssize_t n;

		tgvm_buf_init(&e);
		while ((n = read(errp[0], chunk, sizeof(chunk))) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			if (e.len < (1u << 20))
				tgvm_buf_append(&e, chunk, (size_t)n);
		}
		text = e.data;
		len = e.len;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !text) {
		r = tgvm_error_set(reterr, ENOPKG, "cannot run '%s' (install qemu-user)", qemu);
		goto out;
	}
	/* "warning: TCG doesn't support requested feature: CPUID.07H:EBX.avx512f [bit 16]" */
	for (const char *p = text; p && (p = strstr(p, "doesn't support requested feature: "));) {
		const char *name, *end;
		char buf[64];
		int f;

		p += strlen("doesn't support requested feature: ");
		end = strpbrk(p, " \n");
		if (!end)
			break;
		/* The name follows the first '.' after "CPUID.07H:EBX" or "MSR(10AH)". */
		name = memchr(p, ':', (size_t)(end - p));
		if (!name)
			name = memchr(p, ')', (size_t)(end - p));
		name = name ? memchr(name, '.', (size_t)(end - name)) : NULL;
		name = name ? name + 1 : p;
		snprintf(buf, sizeof(buf), "%.*s", (int)(end - name), name);
		f = tgvm_feature_from_name(buf);
		if (f >= 0)
			tgvm_featureset_add(&un, f);
		p = end;
	}
	(void)len;
	*ret = un;
out:
	free(text);
	if (errp[0] >= 0)
		close(errp[0]);
	if (errp[1] >= 0)
		close(errp[1]);
	tgvm_buf_release(&cpu);
	return r;
}
