// SPDX-License-Identifier: MIT
/*
 * Unit tests of the QMP client: a scripted fake monitor on a socketpair replays
 * recorded QEMU 7.2 traffic (greeting, replies, events, errors, a close in the
 * middle of a reply, a 9 MiB line, garbage), then the same calls on a real QEMU.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tgvm/qmp.h"
#include "util/util.h"

#define GREETING                                                                                   \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "         \
	"\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}"
#define CAPS_OK "{\"return\": {}, \"id\": %ID%}"

enum step_kind { S_SEND, S_SEND_RAW, S_EXPECT, S_EXPECT_FD, S_CLOSE, S_SLEEP, S_SEND_BIG, S_END };

struct step {
	enum step_kind kind;
	const char *text; /* S_SEND: %ID% is replaced by the last expected id; S_EXPECT: command */
	long n;           /* S_SLEEP: ms; S_SEND_BIG: bytes */
};

struct fake {
	int fd;
	const struct step *script;
	pthread_t thread;
	int failures; /* expectations that did not hold, checked by the test */
	char last_id[64];
};

static void fake_write(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return; /* the client went away; that can be the point of the test */
		p += w;
		n -= (size_t)w;
	}
}

/* The first byte of a line with the descriptor that came with it (-1: none). */
static int fake_read_fd(int fd, char *first)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = first, .iov_len = 1};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *cm;
	int got = -1;

	if (recvmsg(fd, &mh, 0) != 1)
		return -2;
	cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&got, CMSG_DATA(cm), sizeof(int));
	return got;
}

static int fake_read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		char ch;
		ssize_t r = read(fd, &ch, 1);

		if (r <= 0)
			return -1;
		if (ch == '\n')
			break;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return 0;
}

static void *fake_run(void *arg)
{
	struct fake *f = arg;
	char line[4096];

	for (const struct step *s = f->script; s->kind != S_END; s++) {
		switch (s->kind) {
		case S_SEND:
		case S_SEND_RAW: {
			struct tgvm_buf b;
			const char *p = s->text, *at;

			tgvm_buf_init(&b);
			while ((at = strstr(p, "%ID%"))) {
				tgvm_buf_append(&b, p, (size_t)(at - p));
				tgvm_buf_append(&b, f->last_id, strlen(f->last_id));
				p = at + 4;
			}
			tgvm_buf_append(&b, p, strlen(p));
			if (s->kind == S_SEND)
				tgvm_buf_append(&b, "\r\n", 2);
			fake_write(f->fd, b.data, b.len);
			tgvm_buf_release(&b);
			break;
		}
		case S_EXPECT_FD: /* a descriptor with the command: write "x" into it */
		case S_EXPECT: {
			json_t *req, *id;
			int got = -1;

			if (s->kind == S_EXPECT_FD) {
				got = fake_read_fd(f->fd, line);
				if (got < 0 ||
				    fake_read_line(f->fd, line + 1, sizeof(line) - 1) < 0) {
					f->failures++;
					goto out;
				}
				if (write(got, "x", 1) != 1)
					f->failures++;
				close(got);
			} else if (fake_read_line(f->fd, line, sizeof(line)) < 0) {
				f->failures++;
				goto out;
			}
			req = json_loads(line, 0, NULL);
			if (!req || strcmp(json_string_value(json_object_get(req, "execute")) ?: "",
			                   s->text))
				f->failures++;
			id = json_object_get(req, "id");
			char *ids = id ? json_dumps(id, JSON_ENCODE_ANY) : NULL;
			snprintf(f->last_id, sizeof(f->last_id), "%s", ids ? ids : "null");
			free(ids);
			json_decref(req);
			break;
		}
		case S_CLOSE:
			close(f->fd);
			f->fd = -1;
			return NULL;
		case S_SLEEP: {
			struct timespec ts = {.tv_sec = s->n / 1000,
			                      .tv_nsec = (s->n % 1000) * 1000000L};
			nanosleep(&ts, NULL);
			break;
		}
		case S_SEND_BIG: {
			char *big = malloc((size_t)s->n + 32);

			memcpy(big, "{\"return\": \"", 12);
			memset(big + 12, 'x', (size_t)s->n);
			memcpy(big + 12 + s->n, "\"}\r\n", 4);
			fake_write(f->fd, big, (size_t)s->n + 16);
			free(big);
			break;
		}
		case S_END:
			break;
		}
	}
	/* Script done: stay connected until the client hangs up. */
	while (read(f->fd, line, sizeof(line)) > 0)
		;
out:
	close(f->fd);
	f->fd = -1;
	return NULL;
}

/* Start a fake monitor playing @script; returns the client's end of the socketpair. */
static int fake_start(struct fake *f, const struct step *script)
{
	int sv[2];

	memset(f, 0, sizeof(*f));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->fd = sv[1];
	f->script = script;
	assert_int_equal(pthread_create(&f->thread, NULL, fake_run, f), 0);
	return sv[0];
}

static void fake_finish(struct fake *f)
{
	pthread_join(f->thread, NULL);
	assert_int_equal(f->failures, 0);
}

static struct qmp_conn *open_fake(struct fake *f, const struct step *script)
{
	struct qmp_conn *c = NULL;
	struct tgvm_error err = {0};
	int fd = fake_start(f, script);

	assert_int_equal(qmp_conn_open_fd(fd, 2000, &c, &err), 0);
	assert_non_null(c);
	return c;
}

static void test_greeting_command_events(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT, "query-status"},
	    /* events arrive between a command and its reply, as they do from QEMU */
	    {S_SEND, "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 250}, "
	             "\"event\": \"STOP\"}"},
	    {S_SEND, "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 7}, "
	             "\"event\": \"MIGRATION\", \"data\": {\"status\": \"active\"}}"},
	    {S_SEND, "{\"return\": {\"status\": \"paused\", \"singlestep\": false, \"running\": "
	             "false}, \"id\": %ID%}"},
	    {S_SEND, "{\"timestamp\": {\"seconds\": 1700000002, \"microseconds\": 0}, "
	             "\"event\": \"RESUME\"}"},
	    {S_END},
	};
	struct fake f;
	struct qmp_conn *c = open_fake(&f, script);
	struct tgvm_error err = {0};
	struct qmp_event ev;
	json_t *ret = NULL;
	int maj, min, mic;

	(void)state;
	qmp_conn_version(c, &maj, &min, &mic);
	assert_int_equal(maj, 7);
	assert_int_equal(min, 2);
	assert_int_equal(mic, 22);

	assert_int_equal(qmp_conn_command(c, "query-status", NULL, 2000, &ret, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "paused");
	json_decref(ret);

	/* wait_event takes RESUME and leaves STOP and MIGRATION queued in order */
	assert_int_equal(qmp_conn_wait_event(c, "RESUME", 2000, &ev, &err), 1);
	assert_string_equal(ev.name, "RESUME");
	assert_int_equal(ev.timestamp_us, 1700000002000000ull);
	qmp_event_release(&ev);

	assert_int_equal(qmp_conn_next_event(c, 0, &ev, &err), 1);
	assert_string_equal(ev.name, "STOP");
	assert_int_equal(ev.timestamp_us, 1700000000000250ull);
	assert_true(ev.received_ns > 0);
	assert_null(ev.data);
	qmp_event_release(&ev);

	assert_int_equal(qmp_conn_next_event(c, 0, &ev, &err), 1);
	assert_string_equal(ev.name, "MIGRATION");
	assert_string_equal(json_string_value(json_object_get(ev.data, "status")), "active");
	qmp_event_release(&ev);

	assert_int_equal(qmp_conn_next_event(c, 50, &ev, &err), 0);
	qmp_conn_free(c);
	fake_finish(&f);
}

#define EV(n)                                                                                      \
	"{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": " #n "}, \"event\": \"E" #n   \
	"\"}"

static void test_event_order(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_SEND, EV(1)},
	    {S_SEND, EV(2)},
	    {S_SEND, EV(3)},
	    {S_SEND, EV(4)},
	    {S_SEND, EV(5)},
	    {S_END},
	};
	static const int order[] = {1, 2, 4, 5};
	struct fake f;
	struct qmp_conn *c = open_fake(&f, script);
	struct tgvm_error err = {0};
	struct qmp_event ev;
	char want[8];

	(void)state;
	assert_int_equal(qmp_conn_wait_event(c, "E3", 2000, &ev, &err), 1);
	assert_int_equal(ev.timestamp_us, 1700000000000003ull);
	qmp_event_release(&ev);
	/* the others come out once each, oldest first */
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(qmp_conn_next_event(c, 2000, &ev, &err), 1);
		snprintf(want, sizeof(want), "E%d", order[i]);
		assert_string_equal(ev.name, want);
		qmp_event_release(&ev);
	}
	assert_int_equal(qmp_conn_next_event(c, 0, &ev, &err), 0);
	qmp_conn_free(c);
	fake_finish(&f);
}

struct hook_seen {
	int calls;
	char first[64];
};

static void record_hook(const struct qmp_event *e, void *opaque)
{
	struct hook_seen *h = opaque;

	if (!h->calls++)
		snprintf(h->first, sizeof(h->first), "%s", e->name);
}

/* The hook runs the moment an event is read, while a command still waits. */
static void test_event_hook_during_command(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT, "query-migrate"},
	    {S_SEND, EV(7)},
	    {S_SLEEP, NULL, 50},
	    {S_SEND, "{\"return\": {\"status\": \"completed\"}, \"id\": %ID%}"},
	    {S_END},
	};
	struct fake f;
	struct qmp_conn *c = open_fake(&f, script);
	struct tgvm_error err = {0};
	struct hook_seen h = {0};
	struct qmp_event ev;
	json_t *ret = NULL;

	(void)state;
	qmp_conn_set_event_hook(c, record_hook, &h);
	assert_int_equal(qmp_conn_command(c, "query-migrate", NULL, 2000, &ret, &err), 0);
	json_decref(ret);
	assert_int_equal(h.calls, 1); /* before the reply came */
	assert_string_equal(h.first, "E7");
	/* still queued for the ordinary reader */
	assert_int_equal(qmp_conn_next_event(c, 0, &ev, &err), 1);
	assert_string_equal(ev.name, "E7");
	qmp_event_release(&ev);
	assert_int_equal(h.calls, 1); /* not called twice */
	qmp_conn_free(c);
	fake_finish(&f);
}

/* getfd: the descriptor travels with the command (SCM_RIGHTS) and arrives open. */
static void test_getfd(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT_FD, "getfd"},
	    {S_SEND, "{\"return\": {}, \"id\": %ID%}"},
	    {S_END, NULL},
	};
	struct tgvm_error err = {0};
	struct fake f;
	struct qmp_conn *c;
	int p[2];
	char ch = 0;

	(void)state;
	c = open_fake(&f, script);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(qmp_conn_getfd(c, "mig", p[1], 2000, &err), 0);
	close(p[1]);
	assert_int_equal(read(p[0], &ch, 1), 1); /* written by the monitor through its copy */
	assert_int_equal(ch, 'x');
	assert_int_equal(qmp_conn_getfd(c, "mig", -1, 2000, &err), -EBADF);
	close(p[0]);
	qmp_conn_free(c);
	fake_finish(&f);
}

static void test_big_integers(void **state)
{
	/* QEMU prints uint64 values past INT64_MAX; a string that looks like one stays as is */
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT, "query-cpu-model-expansion"},
	    {S_SEND, "{\"return\": {\"model\": {\"props\": {\"x\": 18446744073709551552, "
	             "\"s\": \"18446744073709551552\", \"n\": -7}}}, \"id\": %ID%}"},
	    {S_END},
	};
	struct fake f;
	struct qmp_conn *c = open_fake(&f, script);
	struct tgvm_error err = {0};
	json_t *ret = NULL, *props;

	(void)state;
	assert_int_equal(qmp_conn_command(c, "query-cpu-model-expansion", NULL, 2000, &ret, &err),
	                 0);
	props = json_object_get(json_object_get(ret, "model"), "props");
	assert_true(json_is_real(json_object_get(props, "x")));
	assert_true(json_real_value(json_object_get(props, "x")) > 1.8e19);
	assert_string_equal(json_string_value(json_object_get(props, "s")), "18446744073709551552");
	assert_int_equal(json_integer_value(json_object_get(props, "n")), -7);
	json_decref(ret);
	qmp_conn_free(c);
	fake_finish(&f);
}

static void test_qmp_error_class(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT, "migrate-incoming"},
	    {S_SEND, "{\"id\": %ID%, \"error\": {\"class\": \"GenericError\", \"desc\": "
	             "\"The incoming migration has already been started\"}}"},
	    {S_EXPECT, "query-nothing"},
	    {S_SEND, "{\"id\": %ID%, \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
	             "\"The command query-nothing has not been found\"}}"},
	    {S_EXPECT, "query-status"},
	    {S_SEND, "{\"return\": {\"status\": \"running\"}, \"id\": %ID%}"},
	    {S_END},
	};
	struct fake f;
	struct qmp_conn *c = open_fake(&f, script);
	struct tgvm_error err = {0};
	json_t *ret = NULL;
	json_t *args = json_pack("{s:s}", "uri", "tcp:198.18.0.2:4444");

	(void)state;
	assert_int_equal(qmp_conn_command(c, "migrate-incoming", args, 2000, &ret, &err),
	                 -EREMOTEIO);
	json_decref(args);
	assert_null(ret);
	assert_string_equal(qmp_conn_last_error_class(c), "GenericError");
	assert_non_null(strstr(err.msg, "already been started"));
	assert_non_null(strstr(err.msg, "migrate-incoming"));

	assert_int_equal(qmp_conn_command(c, "query-nothing", NULL, 2000, NULL, &err), -EREMOTEIO);
	assert_string_equal(qmp_conn_last_error_class(c), "CommandNotFound");

	/* the connection stays usable after a QMP error */
	assert_int_equal(qmp_conn_command(c, "query-status", NULL, 2000, NULL, &err), 0);
	assert_null(qmp_conn_last_error_class(c));
	qmp_conn_free(c);
	fake_finish(&f);
}

static void test_close_mid_reply(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT, "query-migrate"},
	    {S_SEND_RAW, "{\"return\": {\"status\": \"acti"},
	    {S_CLOSE},
	    {S_END},
	};
	struct fake f;
	struct qmp_conn *c = open_fake(&f, script);
	struct tgvm_error err = {0};
	json_t *ret = NULL;
	struct qmp_event ev;

	(void)state;
	assert_int_equal(qmp_conn_command(c, "query-migrate", NULL, 2000, &ret, &err), -EPIPE);
	assert_null(ret);
	assert_non_null(strstr(err.msg, "closed"));
	/* every later call fails the same way at once, never hangs */
	assert_int_equal(qmp_conn_command(c, "query-status", NULL, 2000, NULL, &err), -EPIPE);
	assert_true(qmp_conn_next_event(c, 1000, &ev, &err) == -EPIPE);
	qmp_conn_free(c);
	fake_finish(&f);
}

static void test_oversized_line(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT, "query-cpu-model-expansion"},
	    {S_SEND_BIG, NULL, 9l << 20},
	    {S_END},
	};
	struct fake f;
	struct qmp_conn *c = open_fake(&f, script);
	struct tgvm_error err = {0};
	json_t *ret = NULL;

	(void)state;
	assert_int_equal(qmp_conn_command(c, "query-cpu-model-expansion", NULL, 10000, &ret, &err),
	                 -EMSGSIZE);
	assert_null(ret);
	assert_non_null(strstr(err.msg, "longer than"));
	assert_int_equal(qmp_conn_command(c, "query-status", NULL, 100, NULL, &err), -EMSGSIZE);
	qmp_conn_free(c); /* the fake's write of the rest fails with EPIPE and it ends */
	fake_finish(&f);
}

static void test_garbage(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT, "query-status"},
	    {S_SEND, "{\"return\": {\"status\": ru\x01nning}}"},
	    {S_END},
	};
	struct fake f;
	struct qmp_conn *c = open_fake(&f, script);
	struct tgvm_error err = {0};

	(void)state;
	assert_int_equal(qmp_conn_command(c, "query-status", NULL, 2000, NULL, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "invalid JSON"));
	qmp_conn_free(c);
	fake_finish(&f);
}

static void test_garbage_greeting(void **state)
{
	static const struct step script[] = {
	    {S_SEND, "[1, 2, 3]"},
	    {S_END},
	};
	static const struct step banner[] = {
	    {S_SEND, "{\"hello\": {}}"},
	    {S_END},
	};
	struct fake f;
	struct qmp_conn *c = NULL;
	struct tgvm_error err = {0};

	(void)state;
	assert_int_equal(qmp_conn_open_fd(fake_start(&f, script), 2000, &c, &err), -EPROTO);
	assert_null(c);
	fake_finish(&f);
	assert_int_equal(qmp_conn_open_fd(fake_start(&f, banner), 2000, &c, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "QMP banner"));
	fake_finish(&f);
}

static void test_timeout_then_late_reply(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT, "query-migrate"},
	    {S_SLEEP, NULL, 300},
	    {S_SEND, "{\"return\": {\"status\": \"late\"}, \"id\": %ID%}"},
	    {S_EXPECT, "query-status"},
	    {S_SEND, "{\"return\": {\"status\": \"running\"}, \"id\": %ID%}"},
	    {S_END},
	};
	struct fake f;
	struct qmp_conn *c = open_fake(&f, script);
	struct tgvm_error err = {0};
	json_t *ret = NULL;

	(void)state;
	assert_int_equal(qmp_conn_command(c, "query-migrate", NULL, 100, &ret, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "query-migrate"));
	/* the late reply to query-migrate must not be taken for query-status's */
	assert_int_equal(qmp_conn_command(c, "query-status", NULL, 3000, &ret, &err), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "status")), "running");
	json_decref(ret);
	qmp_conn_free(c);
	fake_finish(&f);
}

static void test_no_greeting(void **state)
{
	static const struct step script[] = {
	    {S_SLEEP, NULL, 10},
	    {S_END},
	};
	struct fake f;
	struct qmp_conn *c = NULL;
	struct tgvm_error err = {0};
	uint64_t t0 = tgvm_now_ns();

	(void)state;
	assert_int_equal(qmp_conn_open_fd(fake_start(&f, script), 200, &c, &err), -ETIMEDOUT);
	assert_null(c);
	assert_true(tgvm_now_ns() - t0 < 5000000000ull); /* bounded, not a hang */
	fake_finish(&f);
}

struct late_listener {
	char path[108];
	int delay_ms;
};

static void *listen_late(void *arg)
{
	struct late_listener *l = arg;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timespec ts = {.tv_nsec = (long)l->delay_ms * 1000000L};
	int s, a;

	nanosleep(&ts, NULL);
	memcpy(sa.sun_path, l->path, strlen(l->path) + 1);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0) {
		close(s);
		return NULL;
	}
	a = accept(s, NULL, NULL);
	close(s);
	if (a >= 0) {
		char line[256];

		fake_write(a, GREETING "\r\n", strlen(GREETING) + 2);
		if (fake_read_line(a, line, sizeof(line)) == 0) {
			static const char ok[] = "{\"return\": {}, \"id\": \"tgvm-1\"}\r\n";

			fake_write(a, ok, strlen(ok));
		}
		while (read(a, line, sizeof(line)) > 0)
			;
		close(a);
	}
	return NULL;
}

static void test_connect_retries(void **state)
{
	struct late_listener l = {.delay_ms = 150};
	struct qmp_conn *c = NULL;
	struct tgvm_error err = {0};
	char dir[] = "/tmp/tgvm-test-qmp-XXXXXX";
	pthread_t t;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(l.path, sizeof(l.path), "%s/qmp.sock", dir);

	/* nothing there: a bounded wait and a clear error */
	assert_int_equal(qmp_conn_open(l.path, 100, &c, &err), -ETIMEDOUT);
	assert_non_null(strstr(err.msg, "qmp.sock"));

	/* the socket appears later: the client waits for it */
	assert_int_equal(pthread_create(&t, NULL, listen_late, &l), 0);
	assert_int_equal(qmp_conn_open(l.path, 5000, &c, &err), 0);
	qmp_conn_free(c);
	pthread_join(t, NULL);
	unlink(l.path);
	rmdir(dir);
}

/* ---- real QEMU ---- */

static bool have_qemu(void)
{
	return access("/usr/bin/qemu-system-x86_64", X_OK) == 0 ||
	       system("command -v qemu-system-x86_64 >/dev/null 2>&1") == 0;
}

static void exercise_real(struct qmp_conn *c)
{
	struct tgvm_error err = {0};
	struct qmp_event stop, resume;
	json_t *ret = NULL;
	int maj = 0;

	qmp_conn_version(c, &maj, NULL, NULL);
	assert_true(maj >= 6);
	assert_int_equal(qmp_conn_command(c, "query-status", NULL, 5000, &ret, &err), 0);
	assert_non_null(json_object_get(ret, "status"));
	json_decref(ret);

	assert_int_equal(qmp_conn_command(c, "stop", NULL, 5000, NULL, &err), 0);
	assert_int_equal(qmp_conn_command(c, "cont", NULL, 5000, NULL, &err), 0);
	assert_int_equal(qmp_conn_wait_event(c, "RESUME", 5000, &resume, &err), 1);
	assert_int_equal(qmp_conn_wait_event(c, "STOP", 5000, &stop, &err), 1);
	assert_true(stop.timestamp_us > 0);
	assert_true(resume.timestamp_us >= stop.timestamp_us);
	qmp_event_release(&stop);
	qmp_event_release(&resume);

	assert_int_equal(qmp_conn_command(c, "no-such-command", NULL, 5000, NULL, &err),
	                 -EREMOTEIO);
	assert_string_equal(qmp_conn_last_error_class(c), "CommandNotFound");

	assert_int_equal(qmp_conn_command(c, "query-cpu-definitions", NULL, 10000, &ret, &err), 0);
	assert_true(json_array_size(ret) > 10);
	json_decref(ret);

	assert_int_equal(qmp_conn_command(c, "quit", NULL, 5000, NULL, &err), 0);
	/* QEMU then exits: the connection reports it is gone, without hanging */
	int r = qmp_conn_command(c, "query-status", NULL, 5000, NULL, &err);
	assert_true(r == -EPIPE || r == -ETIMEDOUT);
}

static void test_real_qemu_stdio(void **state)
{
	struct qmp_conn *c = NULL;
	struct tgvm_error err = {0};
	int sv[2], status;
	pid_t pid;

	(void)state;
	if (!have_qemu())
		skip();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(sv[1], 0);
		dup2(sv[1], 1);
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "none", "-accel",
		       "tcg", "-nodefaults", "-nographic", "-qmp", "stdio", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	assert_int_equal(qmp_conn_open_fd(sv[0], 20000, &c, &err), 0);
	exercise_real(c);
	qmp_conn_free(c);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
}

static void test_real_qemu_socket(void **state)
{
	char dir[] = "/tmp/tgvm-test-qmp-XXXXXX", path[128], arg[160];
	struct qmp_conn *c = NULL;
	struct tgvm_error err = {0};
	struct stat st;
	int status;
	pid_t pid;

	(void)state;
	if (!have_qemu())
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/qmp.sock", dir);
	snprintf(arg, sizeof(arg), "unix:%s,server=on,wait=off", path);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "none", "-accel",
		       "tcg", "-nodefaults", "-display", "none", "-qmp", arg, (char *)NULL);
		_exit(127);
	}
	assert_int_equal(qmp_conn_open(path, 20000, &c, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	/* getfd: QEMU holds the pipe's write end until closefd (the migration's
	 * "fd:NAME" sockets travel this way) */
	int p[2];
	char ch;
	json_t *name = json_pack("{s:s}", "fdname", "tgvm-test");

	assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(qmp_conn_getfd(c, "tgvm-test", p[1], 5000, &err), 0);
	close(p[1]);
	assert_int_equal(read(p[0], &ch, 1), -1); /* a writer is still open: QEMU's */
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(qmp_conn_command(c, "closefd", name, 5000, NULL, &err), 0);
	assert_int_equal(read(p[0], &ch, 1), 0); /* now no writer is left */
	assert_int_equal(qmp_conn_command(c, "closefd", name, 5000, NULL, &err), -EREMOTEIO);
	json_decref(name);
	close(p[0]);
	exercise_real(c);
	qmp_conn_free(c);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_greeting_command_events),
	    cmocka_unit_test(test_qmp_error_class),
	    cmocka_unit_test(test_big_integers),
	    cmocka_unit_test(test_getfd),
	    cmocka_unit_test(test_event_order),
	    cmocka_unit_test(test_event_hook_during_command),
	    cmocka_unit_test(test_close_mid_reply),
	    cmocka_unit_test(test_oversized_line),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_garbage_greeting),
	    cmocka_unit_test(test_timeout_then_late_reply),
	    cmocka_unit_test(test_no_greeting),
	    cmocka_unit_test(test_connect_retries),
	    cmocka_unit_test(test_real_qemu_stdio),
	    cmocka_unit_test(test_real_qemu_socket),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
