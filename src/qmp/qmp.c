// SPDX-License-Identifier: MIT
/*
 * The QMP client: line framing over a non-blocking stream fd, the greeting and
 * capability negotiation, synchronous commands matched to replies by id, and a
 * bounded queue of asynchronous events stamped with QEMU's own clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tgvm/qmp.h"
#include "util/util.h"

#define QMP_READ_CHUNK 65536
#define QMP_EVENTS_MAX 4096 /* queued events; the oldest are dropped beyond */
#define QMP_RETRY_MS   10

struct qmp_conn {
	int fd;
	char *rbuf; /* bytes read but not yet framed into lines */
	size_t rlen;
	size_t rcap;
	uint64_t next_id;
	int version[3];
	int dead; /* positive errno once the stream is unusable */
	char dead_msg[256];
	struct qmp_event *events; /* ring of queued events */
	size_t ev_head;
	size_t ev_count;
	size_t ev_cap;
	uint64_t ev_dropped;
	char last_class[64];
	void (*hook)(const struct qmp_event *e, void *opaque);
	void *hook_opaque;
};

static int remaining_ms(uint64_t deadline_ns)
{
	uint64_t now = tgvm_now_ns();

	if (now >= deadline_ns)
		return 0;
	return (int)TGVM_MIN((deadline_ns - now + 999999) / 1000000, (uint64_t)INT32_MAX);
}

static uint64_t deadline_after(int timeout_ms)
{
	return tgvm_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
}

static int conn_fail(struct qmp_conn *c, int code, struct tgvm_error *reterr, const char *msg)
{
	if (!c->dead) {
		c->dead = code;
		snprintf(c->dead_msg, sizeof(c->dead_msg), "%s", msg);
	}
	return tgvm_error_set(reterr, c->dead, "qmp: %s", c->dead_msg);
}

void qmp_event_release(struct qmp_event *e)
{
	if (!e)
		return;
	json_decref(e->data);
	e->data = NULL;
}

static void event_push(struct qmp_conn *c, struct qmp_event *e)
{
	if (c->ev_count == c->ev_cap) {
		size_t cap = c->ev_cap ? c->ev_cap * 2 : 16;
		struct qmp_event *n;

		if (cap > QMP_EVENTS_MAX) {
			/* Full: drop the oldest so the newest (STOP, RESUME...) survive. */
			qmp_event_release(&c->events[c->ev_head]);
			c->ev_head = (c->ev_head + 1) % c->ev_cap;
			c->ev_count--;
			c->ev_dropped++;
		} else {
			n = malloc(cap * sizeof(*n));
			if (!n) {
				qmp_event_release(e);
				c->ev_dropped++;
				return;
			}
			for (size_t i = 0; i < c->ev_count; i++)
				n[i] = c->events[(c->ev_head + i) % c->ev_cap];
			free(c->events);
			c->events = n;
			c->ev_cap = cap;
			c->ev_head = 0;
		}
	}
	c->events[(c->ev_head + c->ev_count) % c->ev_cap] = *e;
	c->ev_count++;
}

/* Remove queued event @i (0 = oldest) into @ret, keeping the others in order. */
static void event_take(struct qmp_conn *c, size_t i, struct qmp_event *ret)
{
	*ret = c->events[(c->ev_head + i) % c->ev_cap];
	if (i == 0) {
		c->ev_head = (c->ev_head + 1) % c->ev_cap;
	} else {
		for (size_t k = i; k + 1 < c->ev_count; k++)
			c->events[(c->ev_head + k) % c->ev_cap] =
			    c->events[(c->ev_head + k + 1) % c->ev_cap];
	}
	c->ev_count--;
	if (c->ev_count == 0)
		c->ev_head = 0;
}

static int event_from_json(json_t *msg, struct qmp_event *ret)
{
	json_t *name = json_object_get(msg, "event");
	json_t *ts = json_object_get(msg, "timestamp");
	json_int_t sec = json_integer_value(json_object_get(ts, "seconds"));
	json_int_t usec = json_integer_value(json_object_get(ts, "microseconds"));

	memset(ret, 0, sizeof(*ret));
	snprintf(ret->name, sizeof(ret->name), "%s", json_string_value(name));
	if (sec > 0 && usec >= 0 && usec < 1000000)
		ret->timestamp_us = (uint64_t)sec * 1000000u + (uint64_t)usec;
	ret->received_ns = tgvm_wall_ns();
	ret->data = json_incref(json_object_get(msg, "data"));
	return 0;
}

/*
 * QEMU prints uint64 values (e.g. in query-cpu-model-expansion) that jansson's
 * int64 cannot hold. Copy @line with every integer literal outside strings
 * that has 19 or more digits turned into a real ("...".0), so it parses as a
 * double. Caller frees; NULL on ENOMEM.
 */
static char *widen_big_integers(const char *line, size_t len, size_t *ret_len)
{
	struct tgvm_buf b;
	bool in_str = false;
	size_t i = 0;

	tgvm_buf_init(&b);
	while (i < len) {
		char ch = line[i];

		if (in_str) {
			size_t n = (ch == '\\' && i + 1 < len) ? 2 : 1;

			if (ch == '"')
				in_str = false;
			if (tgvm_buf_append(&b, line + i, n) < 0)
				goto oom;
			i += n;
			continue;
		}
		if (ch == '"')
			in_str = true;
		if ((ch == '-' || (ch >= '0' && ch <= '9')) &&
		    (i == 0 || strchr(":,[ \t", line[i - 1]))) {
			size_t j = i + (ch == '-'), digits = 0;

			while (j < len && line[j] >= '0' && line[j] <= '9') {
				j++;
				digits++;
			}
			if (tgvm_buf_append(&b, line + i, j - i) < 0)
				goto oom;
			if (digits >= 19 && (j == len || !strchr(".eE", line[j])) &&
			    tgvm_buf_append(&b, ".0", 2) < 0)
				goto oom;
			i = j;
			continue;
		}
		if (tgvm_buf_append(&b, line + i, 1) < 0)
			goto oom;
		i++;
	}
	*ret_len = b.len;
	return b.data;
oom:
	tgvm_buf_release(&b);
	return NULL;
}

/*
 * Take one complete line out of the read buffer and parse it. Returns 1 with
 * *ret_msg (a JSON object), 0 when no complete line is buffered, or -errno.
 */
static int take_line(struct qmp_conn *c, json_t **ret_msg, struct tgvm_error *reterr)
{
	char *nl;
	size_t len;
	json_t *msg;
	json_error_t jerr;

	for (;;) {
		nl = c->rlen ? memchr(c->rbuf, '\n', c->rlen) : NULL;
		if (!nl) {
			if (c->rlen > TGVM_QMP_MSG_MAX) {
				char m[128];

				snprintf(m, sizeof(m),
				         "monitor sent a message longer than %u bytes",
				         TGVM_QMP_MSG_MAX);
				return conn_fail(c, EMSGSIZE, reterr, m);
			}
			return 0;
		}
		len = (size_t)(nl - c->rbuf);
		if (len > TGVM_QMP_MSG_MAX) {
			char m[128];

			snprintf(m, sizeof(m), "monitor sent a message longer than %u bytes",
			         TGVM_QMP_MSG_MAX);
			return conn_fail(c, EMSGSIZE, reterr, m);
		}
		size_t skip = 0;
		while (skip < len &&
		       (c->rbuf[skip] == ' ' || c->rbuf[skip] == '\r' || c->rbuf[skip] == '\t'))
			skip++;
		if (skip == len) { /* blank line: nothing to parse */
			memmove(c->rbuf, nl + 1, c->rlen - len - 1);
			c->rlen -= len + 1;
			continue;
		}
		msg = json_loadb(c->rbuf, len, JSON_DISABLE_EOF_CHECK, &jerr);
		if (!msg && strstr(jerr.text, "too big")) {
			size_t wlen = 0;
			char *wide = widen_big_integers(c->rbuf, len, &wlen);

			if (wide)
				msg = json_loadb(wide, wlen, JSON_DISABLE_EOF_CHECK, &jerr);
			free(wide);
		}
		memmove(c->rbuf, nl + 1, c->rlen - len - 1);
		c->rlen -= len + 1;
		if (!msg || !json_is_object(msg)) {
			char m[256];

			json_decref(msg);
			snprintf(m, sizeof(m), "monitor sent invalid JSON: %s",
			         msg ? "not an object" : jerr.text);
			return conn_fail(c, EPROTO, reterr, m);
		}
		*ret_msg = msg;
		return 1;
	}
}

/* Read what the fd has, waiting up to @timeout_ms for the first byte. 1 read, 0 timeout. */
static int fill(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	ssize_t n;
	int r;

	if (c->dead)
		return tgvm_error_set(reterr, c->dead, "qmp: %s", c->dead_msg);
	r = poll(&p, 1, timeout_ms);
	if (r < 0) {
		if (errno == EINTR)
			return 0;
		return tgvm_error_set(reterr, errno, "qmp: poll: %s", strerror(errno));
	}
	if (r == 0)
		return 0;
	if (c->rcap - c->rlen < QMP_READ_CHUNK) {
		size_t cap = c->rcap ? c->rcap * 2 : 2 * QMP_READ_CHUNK;
		char *b;

		while (cap - c->rlen < QMP_READ_CHUNK)
			cap *= 2;
		/* take_line() fails past TGVM_QMP_MSG_MAX, so this bounds the buffer too. */
		cap = TGVM_MIN(cap, (size_t)TGVM_QMP_MSG_MAX + 2 * QMP_READ_CHUNK);
		b = realloc(c->rbuf, cap);
		if (!b)
			return tgvm_error_set(reterr, ENOMEM, "qmp: out of memory");
		c->rbuf = b;
		c->rcap = cap;
	}
	n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		char m[128];

		snprintf(m, sizeof(m), "read from monitor: %s", strerror(errno));
		return conn_fail(c, errno == ECONNRESET ? EPIPE : errno, reterr, m);
	}
	if (n == 0)
		return conn_fail(c, EPIPE, reterr, "monitor closed the connection");
	c->rlen += (size_t)n;
	return 1;
}

/*
 * Next message that is not an event (events are queued on the way), waiting
 * until @deadline_ns. 1 with *ret_msg, 0 on timeout, -errno.
 */
static int read_message(struct qmp_conn *c, uint64_t deadline_ns, bool want_reply, json_t **ret_msg,
                        struct tgvm_error *reterr)
{
	json_t *msg = NULL;
	int r;

	for (;;) {
		r = take_line(c, &msg, reterr);
		if (r < 0)
			return r;
		if (r > 0) {
			if (json_object_get(msg, "event") &&
			    json_is_string(json_object_get(msg, "event"))) {
				struct qmp_event e;

				event_from_json(msg, &e);
				json_decref(msg);
				if (c->hook)
					c->hook(&e, c->hook_opaque);
				event_push(c, &e);
				if (!want_reply)
					return 1;
				continue;
			}
			if (!want_reply) {
				json_decref(msg); /* a late reply nobody waits for */
				continue;
			}
			*ret_msg = msg;
			return 1;
		}
		r = fill(c, remaining_ms(deadline_ns), reterr);
		if (r < 0)
			return r;
		if (r == 0 && tgvm_now_ns() >= deadline_ns)
			return 0;
	}
}

/* Send @fd (when >= 0) as SCM_RIGHTS with the first byte of @data. */
static ssize_t send_with_fd(int sock, const char *data, size_t len, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;

	if (fd < 0)
		return send(sock, data, len, MSG_NOSIGNAL);
	mh.msg_control = ctl;
	mh.msg_controllen = sizeof(ctl);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

static int write_all(struct qmp_conn *c, const char *data, size_t len, int pass_fd,
                     uint64_t deadline_ns, struct tgvm_error *reterr)
{
	while (len > 0) {
		struct pollfd p = {.fd = c->fd, .events = POLLOUT};
		ssize_t n;
		int r = poll(&p, 1, remaining_ms(deadline_ns));

		if (r < 0 && errno != EINTR)
			return tgvm_error_set(reterr, errno, "qmp: poll: %s", strerror(errno));
		if (r == 0)
			return tgvm_error_set(reterr, ETIMEDOUT, "qmp: monitor does not read");
		if (r < 0)
			continue;
		n = send_with_fd(c->fd, data, len, pass_fd);
		if (n < 0 && errno == ENOTSOCK && pass_fd < 0)
			n = write(c->fd, data, len);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			char m[128];

			snprintf(m, sizeof(m), "write to monitor: %s", strerror(errno));
			return conn_fail(c, (errno == ECONNRESET || errno == EPIPE) ? EPIPE : errno,
			                 reterr, m);
		}
		data += n;
		len -= (size_t)n;
		pass_fd = -1; /* it went with the first bytes */
	}
	return 0;
}

static int command(struct qmp_conn *c, const char *command, json_t *args, int pass_fd,
                   int timeout_ms, json_t **ret_return, struct tgvm_error *reterr)
{
	uint64_t deadline = deadline_after(timeout_ms);
	json_t *req = NULL, *reply = NULL;
	char id[32], *text = NULL;
	int r;

	c->last_class[0] = '\0';
	if (c->dead)
		return tgvm_error_set(reterr, c->dead, "qmp: %s", c->dead_msg);
	snprintf(id, sizeof(id), "tgvm-%" PRIu64, ++c->next_id);
	req = json_pack("{s:s, s:s}", "execute", command, "id", id);
	if (!req)
		return tgvm_error_set(reterr, ENOMEM, "qmp: out of memory");
	if (args && json_object_set(req, "arguments", args) < 0) {
		r = tgvm_error_set(reterr, EINVAL, "qmp: bad arguments for '%s'", command);
		goto out;
	}
	text = json_dumps(req, JSON_COMPACT);
	if (!text) {
		r = tgvm_error_set(reterr, ENOMEM, "qmp: out of memory");
		goto out;
	}
	size_t tlen = strlen(text);
	char *line = realloc(text, tlen + 2);
	if (!line) {
		r = tgvm_error_set(reterr, ENOMEM, "qmp: out of memory");
		goto out;
	}
	text = line;
	memcpy(text + tlen, "\n", 2);
	r = write_all(c, text, tlen + 1, pass_fd, deadline, reterr);
	if (r < 0)
		goto out;

	for (;;) {
		json_t *rid;

		r = read_message(c, deadline, true, &reply, reterr);
		if (r < 0)
			goto out;
		if (r == 0) {
			r = tgvm_error_set(reterr, ETIMEDOUT, "qmp: no reply to '%s' within %d ms",
			                   command, timeout_ms);
			goto out;
		}
		rid = json_object_get(reply, "id");
		if (json_is_string(rid) && !strcmp(json_string_value(rid), id))
			break;
		if (!rid && json_object_get(reply, "error")) {
			/* QEMU could not parse our request and so has no id to echo. */
			break;
		}
		json_decref(reply); /* reply to an earlier command that timed out */
		reply = NULL;
	}

	json_t *err = json_object_get(reply, "error");
	if (err) {
		const char *cls = json_string_value(json_object_get(err, "class"));
		const char *desc = json_string_value(json_object_get(err, "desc"));

		snprintf(c->last_class, sizeof(c->last_class), "%s", cls ? cls : "GenericError");
		r = tgvm_error_set(reterr, EREMOTEIO, "qmp: '%s' failed: %s: %s", command,
		                   c->last_class, desc ? desc : "no description");
		goto out;
	}
	json_t *ret = json_object_get(reply, "return");
	if (!ret) {
		r = tgvm_error_set(reterr, EPROTO,
		                   "qmp: reply to '%s' has neither return nor error", command);
		goto out;
	}
	if (ret_return)
		*ret_return = json_incref(ret);
	r = 0;
out:
	free(text);
	json_decref(req);
	json_decref(reply);
	return r;
}

int qmp_conn_command(struct qmp_conn *c, const char *cmd, json_t *args, int timeout_ms,
                     json_t **ret_return, struct tgvm_error *reterr)
{
	return command(c, cmd, args, -1, timeout_ms, ret_return, reterr);
}

int qmp_conn_getfd(struct qmp_conn *c, const char *fdname, int fd, int timeout_ms,
                   struct tgvm_error *reterr)
{
	json_t *args = json_pack("{s:s}", "fdname", fdname);
	int r;

	if (!args)
		return tgvm_error_set(reterr, ENOMEM, "qmp: out of memory");
	if (fd < 0)
		r = tgvm_error_set(reterr, EBADF, "qmp: no descriptor to pass as '%s'", fdname);
	else
		r = command(c, "getfd", args, fd, timeout_ms, NULL, reterr);
	json_decref(args);
	return r;
}

const char *qmp_conn_last_error_class(const struct qmp_conn *c)
{
	return c->last_class[0] ? c->last_class : NULL;
}

int qmp_conn_next_event(struct qmp_conn *c, int timeout_ms, struct qmp_event *ret,
                        struct tgvm_error *reterr)
{
	uint64_t deadline = deadline_after(timeout_ms);
	int r;

	for (;;) {
		if (c->ev_count > 0) {
			event_take(c, 0, ret);
			return 1;
		}
		/* Drain what is already readable even when not waiting. */
		r = read_message(c, deadline, false, NULL, reterr);
		if (r < 0)
			return r;
		if (r == 0 && c->ev_count == 0)
			return 0;
	}
}

int qmp_conn_wait_event(struct qmp_conn *c, const char *name, int timeout_ms, struct qmp_event *ret,
                        struct tgvm_error *reterr)
{
	uint64_t deadline = deadline_after(timeout_ms);
	size_t seen = 0;
	int r;

	for (;;) {
		for (size_t i = seen; i < c->ev_count; i++) {
			struct qmp_event *e = &c->events[(c->ev_head + i) % c->ev_cap];

			if (!strcmp(e->name, name)) {
				event_take(c, i, ret);
				return 1;
			}
		}
		seen = c->ev_count;
		r = read_message(c, deadline, false, NULL, reterr);
		if (r < 0)
			return r;
		if (r == 0 && tgvm_now_ns() >= deadline)
			return 0;
		if (seen > c->ev_count) /* oldest dropped: rescan */
			seen = 0;
	}
}

static int negotiate(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr)
{
	uint64_t deadline = deadline_after(timeout_ms);
	json_t *greeting = NULL, *ver;
	int r;

	r = read_message(c, deadline, true, &greeting, reterr);
	if (r < 0)
		return r;
	if (r == 0)
		return tgvm_error_set(reterr, ETIMEDOUT, "qmp: no greeting within %d ms",
		                      timeout_ms);
	ver = json_object_get(json_object_get(json_object_get(greeting, "QMP"), "version"), "qemu");
	if (!ver) {
		json_decref(greeting);
		return conn_fail(c, EPROTO, reterr, "monitor did not greet with a QMP banner");
	}
	c->version[0] = (int)json_integer_value(json_object_get(ver, "major"));
	c->version[1] = (int)json_integer_value(json_object_get(ver, "minor"));
	c->version[2] = (int)json_integer_value(json_object_get(ver, "micro"));
	json_decref(greeting);
	r = remaining_ms(deadline);
	return qmp_conn_command(c, "qmp_capabilities", NULL, r > 0 ? r : 1, NULL, reterr);
}

int qmp_conn_open_fd(int fd, int timeout_ms, struct qmp_conn **ret, struct tgvm_error *reterr)
{
	struct qmp_conn *c;
	int flags, r;

	if (fd < 0)
		return tgvm_error_set(reterr, EBADF, "qmp: no monitor fd");
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return tgvm_error_set(reterr, ENOMEM, "qmp: out of memory");
	}
	c->fd = fd;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		r = tgvm_error_set(reterr, errno, "qmp: fcntl: %s", strerror(errno));
		goto fail;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	r = negotiate(c, timeout_ms, reterr);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	qmp_conn_free(c);
	return r;
}

int qmp_conn_open(const char *path, int timeout_ms, struct qmp_conn **ret,
                  struct tgvm_error *reterr)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint64_t deadline = deadline_after(timeout_ms);
	int fd = -1, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return tgvm_error_set(reterr, ENAMETOOLONG, "qmp: socket path '%s' is too long",
		                      path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return tgvm_error_set(reterr, errno, "qmp: socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
		if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN)
			return tgvm_error_set(reterr, err, "qmp: cannot connect to '%s': %s", path,
			                      strerror(err));
		if (tgvm_now_ns() >= deadline)
			return tgvm_error_set(reterr, ETIMEDOUT,
			                      "qmp: cannot connect to '%s' within %d ms: %s", path,
			                      timeout_ms, strerror(err));
		struct timespec ts = {.tv_nsec = QMP_RETRY_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	int left = remaining_ms(deadline);
	return qmp_conn_open_fd(fd, left > 0 ? left : 1, ret, reterr);
}

void qmp_conn_free(struct qmp_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	for (size_t i = 0; i < c->ev_count; i++)
		qmp_event_release(&c->events[(c->ev_head + i) % c->ev_cap]);
	free(c->events);
	free(c->rbuf);
	free(c);
}

void qmp_conn_version(const struct qmp_conn *c, int *major, int *minor, int *micro)
{
	if (major)
		*major = c->version[0];
	if (minor)
		*minor = c->version[1];
	if (micro)
		*micro = c->version[2];
}

int qmp_conn_fd(const struct qmp_conn *c)
{
	return c->fd;
}

void qmp_conn_set_event_hook(struct qmp_conn *c,
                             void (*fn)(const struct qmp_event *e, void *opaque), void *opaque)
{
	c->hook = fn;
	c->hook_opaque = opaque;
}

uint64_t qmp_conn_events_dropped(const struct qmp_conn *c)
{
	return c->ev_dropped;
}
