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

#include "tgvm/qmp-monitor.h"
#include "util/util.h"

#define GREETING                                                                                   \
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "         \
	"\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}"
#define CAPS_OK "{\"return\": {}, \"id\": %ID%}"

enum step_kind {
	S_SEND,
	S_SEND_RAW,
	S_EXPECT,
	S_EXPECT_JSON,
	S_EXPECT_FD,
	S_CLOSE,
	S_SLEEP,
	S_SEND_BIG,
	S_END
};

struct step {
	enum step_kind kind;
	const char *text; /* S_SEND: %ID% is replaced by the last expected id; S_EXPECT: command;
	                     S_EXPECT_JSON: the whole request but its id */
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
		case S_EXPECT_JSON:
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
			id = json_object_get(req, "id");
			char *ids = id ? json_dumps(id, JSON_ENCODE_ANY) : NULL;
			snprintf(f->last_id, sizeof(f->last_id), "%s", ids ? ids : "null");
			free(ids);
			if (s->kind == S_EXPECT_JSON) {
				json_t *want = json_loads(s->text, 0, NULL);

				json_object_del(req, "id");
				if (!want || !json_equal(req, want)) {
					fprintf(stderr, "fake monitor: expected %s\n  got %s\n",
					        s->text, line);
					f->failures++;
				}
				json_decref(want);
			} else if (!req ||
			           strcmp(json_string_value(json_object_get(req, "execute")) ?: "",
			                  s->text)) {
				fprintf(stderr, "fake monitor: expected '%s', got %s\n", s->text,
				        line);
				f->failures++;
			}
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

/* ---- the typed monitor against the fake: the request sent, the struct read ---- */

#define OK_EMPTY "{\"return\": {}, \"id\": %ID%}"

/* Every command with arguments sends exactly these (recorded against QEMU 10). */
static void test_typed_requests(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT_JSON, "{\"execute\": \"stop\"}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"cont\"}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"migrate-set-capabilities\", \"arguments\": "
	                    "{\"capabilities\": [{\"capability\": \"events\", \"state\": true}, "
	                    "{\"capability\": \"x-ignore-shared\", \"state\": false}, "
	                    "{\"capability\": \"postcopy-ram\", \"state\": true}]}}"},
	    {S_SEND, OK_EMPTY},
	    /* only the fields that are set */
	    {S_EXPECT_JSON, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
	                    "{\"max-bandwidth\": 68719476736, \"multifd-channels\": 4}}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
	                    "{\"downtime-limit\": 0, \"max-postcopy-bandwidth\": 1000}}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"migrate-incoming\", \"arguments\": "
	                    "{\"uri\": \"fd:tgvm-stream\"}}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"migrate\", \"arguments\": "
	                    "{\"uri\": \"tcp:198.18.0.2:49200\"}}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"migrate\", \"arguments\": "
	                    "{\"uri\": \"tcp:198.18.0.2:49201\", \"resume\": true}}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"migrate-start-postcopy\"}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"migrate-pause\"}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"migrate-recover\", \"arguments\": "
	                    "{\"uri\": \"tcp:198.18.0.2:49201\"}}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"migrate_cancel\"}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON,
	     "{\"execute\": \"closefd\", \"arguments\": {\"fdname\": \"tgvm-stream\"}}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"human-monitor-command\", \"arguments\": "
	                    "{\"command-line\": \"logfile /tmp/x.trace\"}}"},
	    {S_SEND, "{\"return\": \"\", \"id\": %ID%}"},
	    {S_EXPECT_JSON, "{\"execute\": \"human-monitor-command\", \"arguments\": "
	                    "{\"command-line\": \"info version\"}}"},
	    {S_SEND, "{\"return\": \"10.0.2Debian 1:10.0.2+ds-2\\r\\n\", \"id\": %ID%}"},
	    {S_EXPECT_JSON, "{\"execute\": \"trace-event-set-state\", \"arguments\": "
	                    "{\"name\": \"vm_state_notify\", \"enable\": true}}"},
	    {S_SEND, OK_EMPTY},
	    {S_EXPECT_JSON, "{\"execute\": \"quit\"}"},
	    {S_SEND, OK_EMPTY},
	    {S_END},
	};
	const struct tgvm_qmp_migrate_cap_state caps[] = {
	    {TGVM_QMP_MIGRATE_CAP_EVENTS, true},
	    {TGVM_QMP_MIGRATE_CAP_X_IGNORE_SHARED, false},
	    {TGVM_QMP_MIGRATE_CAP_POSTCOPY_RAM, true},
	};
	const struct tgvm_qmp_migrate_cap_state bad_cap[] = {{TGVM_QMP_MIGRATE_CAP__MAX, true}};
	struct tgvm_qmp_migrate_params p1 = {.has_max_bandwidth = true,
	                                     .max_bandwidth = 64ull << 30,
	                                     .has_multifd_channels = true,
	                                     .multifd_channels = 4,
	                                     .downtime_limit = 99 /* not set: not sent */};
	struct tgvm_qmp_migrate_params p2 = {.has_downtime_limit = true,
	                                     .has_max_postcopy_bandwidth = true,
	                                     .max_postcopy_bandwidth = 1000};
	struct tgvm_qmp_migrate_params bad = {.has_multifd_channels = true, .multifd_channels = 0};
	struct tgvm_qmp_migrate_params huge = {.has_max_bandwidth = true,
	                                       .max_bandwidth = UINT64_MAX};
	struct tgvm_error err = {0};
	char *out = (char *)"untouched";
	struct fake f;
	struct qmp_conn *c;

	(void)state;
	c = open_fake(&f, script);
	assert_int_equal(tgvm_qmp_stop(c, 2000, &err), 0);
	assert_int_equal(tgvm_qmp_cont(c, 2000, &err), 0);
	/* refused before anything is sent: the fake would see them first */
	assert_int_equal(tgvm_qmp_migrate_set_capabilities(c, bad_cap, 1, 2000, &err), -EINVAL);
	assert_int_equal(tgvm_qmp_migrate_set_parameters(c, &bad, 2000, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "multifd-channels"));
	assert_int_equal(tgvm_qmp_migrate_set_parameters(c, &huge, 2000, &err), -EINVAL);
	assert_int_equal(tgvm_qmp_migrate_set_capabilities(c, caps, ARRAY_SIZE(caps), 2000, &err),
	                 0);
	assert_int_equal(tgvm_qmp_migrate_set_parameters(c, &p1, 2000, &err), 0);
	assert_int_equal(tgvm_qmp_migrate_set_parameters(c, &p2, 2000, &err), 0);
	assert_int_equal(tgvm_qmp_migrate_incoming(c, "fd:tgvm-stream", 2000, &err), 0);
	assert_int_equal(tgvm_qmp_migrate(c, "tcp:198.18.0.2:49200", false, 2000, &err), 0);
	assert_int_equal(tgvm_qmp_migrate(c, "tcp:198.18.0.2:49201", true, 2000, &err), 0);
	assert_int_equal(tgvm_qmp_migrate_start_postcopy(c, 2000, &err), 0);
	assert_int_equal(tgvm_qmp_migrate_pause(c, 2000, &err), 0);
	assert_int_equal(tgvm_qmp_migrate_recover(c, "tcp:198.18.0.2:49201", 2000, &err), 0);
	assert_int_equal(tgvm_qmp_migrate_cancel(c, 2000, &err), 0);
	assert_int_equal(tgvm_qmp_closefd(c, "tgvm-stream", 2000, &err), 0);
	assert_int_equal(
	    tgvm_qmp_human_monitor_command(c, "logfile /tmp/x.trace", 2000, NULL, &err), 0);
	assert_int_equal(tgvm_qmp_human_monitor_command(c, "info version", 2000, &out, &err), 0);
	assert_string_equal(out, "10.0.2Debian 1:10.0.2+ds-2\r\n");
	free(out);
	assert_int_equal(tgvm_qmp_trace_event_set_state(c, "vm_state_notify", true, 2000, &err), 0);
	assert_int_equal(tgvm_qmp_quit(c, 2000, &err), 0);
	qmp_conn_free(c);
	fake_finish(&f);
}

/* QEMU 10's query-migrate during precopy, after it, after a failure, before any. */
static void test_query_migrate(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT_JSON, "{\"execute\": \"query-migrate\"}"},
	    {S_SEND, "{\"return\": {\"expected-downtime\": 300, \"status\": \"active\", "
	             "\"setup-time\": 5, \"total-time\": 1503, \"ram\": {\"total\": 537403392, "
	             "\"postcopy-requests\": 0, \"dirty-sync-count\": 2, \"multifd-bytes\": 0, "
	             "\"pages-per-second\": 32710, \"downtime-bytes\": 0, \"page-size\": 4096, "
	             "\"remaining\": 132218880, \"postcopy-bytes\": 0, \"mbps\": 1073.9488, "
	             "\"transferred\": 200845678, \"dirty-sync-missed-zero-copy\": 0, "
	             "\"precopy-bytes\": 200845678, \"duplicate\": 50123, "
	             "\"dirty-pages-rate\": 12345, \"normal\": 48912}}, \"id\": %ID%}"},
	    {S_EXPECT, "query-migrate"},
	    {S_SEND,
	     "{\"return\": {\"status\": \"completed\", \"setup-time\": 3, \"downtime\": 12, "
	     "\"total-time\": 2010, \"ram\": {\"transferred\": 10000000000000000000, "
	     "\"mbps\": 0, \"downtime-bytes\": 373000}}, \"id\": %ID%}"},
	    {S_EXPECT, "query-migrate"},
	    {S_SEND, "{\"return\": {\"status\": \"failed\", \"error-desc\": \"Unable to write to "
	             "socket: Broken pipe\"}, \"id\": %ID%}"},
	    {S_EXPECT, "query-migrate"},
	    {S_SEND, "{\"return\": {}, \"id\": %ID%}"},
	    /* a status this build does not know, and fields of the wrong type */
	    {S_EXPECT, "query-migrate"},
	    {S_SEND, "{\"return\": {\"status\": \"postcopy-frobnicating\", \"downtime\": \"12\", "
	             "\"total-time\": 1.5, \"ram\": {\"transferred\": -5, \"remaining\": true, "
	             "\"mbps\": \"fast\"}}, \"id\": %ID%}"},
	    {S_EXPECT, "query-migrate"},
	    {S_SEND, "{\"return\": [], \"id\": %ID%}"},
	    {S_END},
	};
	struct tgvm_qmp_migrate_info m, keep;
	struct tgvm_error err = {0};
	struct fake f;
	struct qmp_conn *c;

	(void)state;
	c = open_fake(&f, script);
	assert_int_equal(tgvm_qmp_query_migrate(c, 2000, &m, &err), 0);
	assert_true(m.has_status);
	assert_int_equal(m.status, TGVM_QMP_MIGRATION_STATUS_ACTIVE);
	assert_string_equal(m.status_word, "active");
	assert_false(m.has_error_desc);
	assert_true(m.has_expected_downtime);
	assert_int_equal(m.expected_downtime, 300);
	assert_true(m.has_setup_time);
	assert_int_equal(m.setup_time, 5);
	assert_true(m.has_total_time);
	assert_int_equal(m.total_time, 1503);
	assert_false(m.has_downtime); /* not said during precopy: not 0 */
	assert_true(m.has_ram);
	assert_true(m.ram.has_total && m.ram.total == 537403392);
	assert_true(m.ram.has_transferred && m.ram.transferred == 200845678);
	assert_true(m.ram.has_remaining && m.ram.remaining == 132218880);
	assert_true(m.ram.has_duplicate && m.ram.duplicate == 50123);
	assert_true(m.ram.has_normal && m.ram.normal == 48912);
	assert_true(m.ram.has_dirty_pages_rate && m.ram.dirty_pages_rate == 12345);
	assert_true(m.ram.has_page_size && m.ram.page_size == 4096);
	assert_true(m.ram.has_mbps && m.ram.mbps > 1073.9 && m.ram.mbps < 1074.0);
	assert_true(m.ram.has_dirty_sync_count && m.ram.dirty_sync_count == 2);
	assert_true(m.ram.has_postcopy_requests && m.ram.postcopy_requests == 0);
	assert_true(m.ram.has_precopy_bytes && m.ram.precopy_bytes == 200845678);
	assert_true(m.ram.has_downtime_bytes && m.ram.downtime_bytes == 0);

	assert_int_equal(tgvm_qmp_query_migrate(c, 2000, &m, &err), 0);
	assert_int_equal(m.status, TGVM_QMP_MIGRATION_STATUS_COMPLETED);
	assert_true(m.has_downtime);
	assert_int_equal(m.downtime, 12);
	assert_false(m.has_expected_downtime);
	/* a uint64 that jansson reads as a real still counts */
	assert_true(m.ram.has_transferred);
	assert_true(m.ram.transferred == 10000000000000000000ull);
	assert_true(m.ram.has_mbps && m.ram.mbps == 0); /* QEMU said 0: that is a 0 */
	assert_true(m.ram.has_downtime_bytes && m.ram.downtime_bytes == 373000);
	assert_false(m.ram.has_remaining);
	assert_false(m.ram.has_total);
	assert_false(m.ram.has_page_size);
	assert_false(m.ram.has_dirty_sync_count);

	assert_int_equal(tgvm_qmp_query_migrate(c, 2000, &m, &err), 0);
	assert_int_equal(m.status, TGVM_QMP_MIGRATION_STATUS_FAILED);
	assert_true(m.has_error_desc);
	assert_string_equal(m.error_desc, "Unable to write to socket: Broken pipe");
	assert_false(m.has_ram);
	assert_false(m.has_total_time);

	/* QEMU sends {} until a migration ever starts */
	assert_int_equal(tgvm_qmp_query_migrate(c, 2000, &m, &err), 0);
	assert_false(m.has_status);
	assert_int_equal(m.status, TGVM_QMP_MIGRATION_STATUS_NONE);
	assert_string_equal(m.status_word, "");
	assert_false(m.has_ram || m.has_total_time || m.has_downtime || m.has_setup_time ||
	             m.has_expected_downtime || m.has_error_desc);
	assert_false(m.ram.has_transferred || m.ram.has_mbps);

	assert_int_equal(tgvm_qmp_query_migrate(c, 2000, &m, &err), 0);
	assert_true(m.has_status);
	assert_int_equal(m.status, TGVM_QMP_MIGRATION_STATUS_OTHER);
	assert_string_equal(m.status_word, "postcopy-frobnicating");
	assert_false(m.has_downtime);
	assert_false(m.has_total_time);
	assert_true(m.has_ram);
	assert_false(m.ram.has_transferred);
	assert_false(m.ram.has_remaining);
	assert_false(m.ram.has_mbps);

	/* a reply of the wrong shape: -EPROTO, and *ret is left as it was */
	memset(&keep, 0x5a, sizeof(keep));
	m = keep;
	assert_int_equal(tgvm_qmp_query_migrate(c, 2000, &m, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "query-migrate"));
	assert_memory_equal(&m, &keep, sizeof(m));
	qmp_conn_free(c);
	fake_finish(&f);
}

static void test_query_status(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT_JSON, "{\"execute\": \"query-status\"}"},
	    {S_SEND,
	     "{\"return\": {\"status\": \"postmigrate\", \"running\": false}, \"id\": %ID%}"},
	    {S_EXPECT, "query-status"},
	    {S_SEND, "{\"return\": {\"status\": \"running\", \"singlestep\": false, "
	             "\"running\": true}, \"id\": %ID%}"},
	    {S_EXPECT, "query-status"},
	    {S_SEND, "{\"return\": {\"status\": \"hibernating\", \"running\": false}, "
	             "\"id\": %ID%}"},
	    {S_EXPECT, "query-status"},
	    {S_SEND, "{\"return\": {\"status\": \"running\"}, \"id\": %ID%}"},
	    {S_END},
	};
	struct tgvm_qmp_status st, keep;
	struct tgvm_error err = {0};
	struct fake f;
	struct qmp_conn *c;

	(void)state;
	c = open_fake(&f, script);
	assert_int_equal(tgvm_qmp_query_status(c, 2000, &st, &err), 0);
	assert_false(st.running);
	assert_int_equal(st.state, TGVM_QMP_RUN_STATE_POSTMIGRATE);
	assert_string_equal(st.status, "postmigrate");
	assert_int_equal(tgvm_qmp_query_status(c, 2000, &st, &err), 0);
	assert_true(st.running);
	assert_int_equal(st.state, TGVM_QMP_RUN_STATE_RUNNING);
	assert_int_equal(tgvm_qmp_query_status(c, 2000, &st, &err), 0);
	assert_int_equal(st.state, TGVM_QMP_RUN_STATE_OTHER); /* the word is kept */
	assert_string_equal(st.status, "hibernating");
	memset(&keep, 0x5a, sizeof(keep));
	st = keep;
	assert_int_equal(tgvm_qmp_query_status(c, 2000, &st, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "running"));
	assert_memory_equal(&st, &keep, sizeof(st));
	qmp_conn_free(c);
	fake_finish(&f);
}

/* A QMP error and a closed socket come back from the typed calls unchanged. */
static void test_typed_errors(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT, "migrate-start-postcopy"},
	    {S_SEND, "{\"id\": %ID%, \"error\": {\"class\": \"GenericError\", \"desc\": \"Enable "
	             "postcopy with migrate_set_capability before the start of migration\"}}"},
	    {S_EXPECT, "x-query-jit"},
	    {S_SEND, "{\"id\": %ID%, \"error\": {\"class\": \"GenericError\", \"desc\": \"JIT "
	             "information is only available with accel=tcg\"}}"},
	    {S_EXPECT, "query-migrate"},
	    {S_SEND_RAW, "{\"return\": {\"status\": \"acti"},
	    {S_CLOSE},
	    {S_END},
	};
	struct tgvm_qmp_migrate_info m, keep;
	struct tgvm_qmp_status st;
	struct tgvm_error err = {0};
	int64_t tb = 42;
	struct fake f;
	struct qmp_conn *c;

	(void)state;
	c = open_fake(&f, script);
	assert_int_equal(tgvm_qmp_migrate_start_postcopy(c, 2000, &err), -EREMOTEIO);
	assert_string_equal(qmp_conn_last_error_class(c), "GenericError");
	assert_non_null(strstr(err.msg, "migrate-start-postcopy"));
	assert_non_null(strstr(err.msg, "Enable postcopy"));
	assert_int_equal(tgvm_qmp_x_query_jit(c, 2000, &tb, &err), -EREMOTEIO);
	assert_int_equal(tb, 42);
	memset(&keep, 0x5a, sizeof(keep));
	m = keep;
	assert_int_equal(tgvm_qmp_query_migrate(c, 2000, &m, &err), -EPIPE);
	assert_memory_equal(&m, &keep, sizeof(m));
	assert_int_equal(tgvm_qmp_query_status(c, 2000, &st, &err), -EPIPE);
	assert_int_equal(tgvm_qmp_cont(c, 2000, &err), -EPIPE);
	qmp_conn_free(c);
	fake_finish(&f);
}

static void test_x_query_jit(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT_JSON, "{\"execute\": \"x-query-jit\"}"},
	    {S_SEND, "{\"return\": {\"human-readable-text\": \"Accelerator settings:\\n"
	             "one-insn-per-tb: off\\n\\nTranslation buffer state:\\n"
	             "gen code size       48837696/1073736704\\nTB count            6712\\n"
	             "TB avg target size  17 max=1734 bytes\\n\"}, \"id\": %ID%}"},
	    {S_EXPECT, "x-query-jit"},
	    {S_SEND, "{\"return\": {\"human-readable-text\": \"no statistics\\n\"}, \"id\": %ID%}"},
	    {S_EXPECT, "x-query-jit"},
	    {S_SEND, "{\"return\": {}, \"id\": %ID%}"},
	    {S_END},
	};
	struct tgvm_error err = {0};
	int64_t tb = 0;
	struct fake f;
	struct qmp_conn *c;

	(void)state;
	c = open_fake(&f, script);
	assert_int_equal(tgvm_qmp_x_query_jit(c, 2000, &tb, &err), 0);
	assert_int_equal(tb, 6712);
	assert_int_equal(tgvm_qmp_x_query_jit(c, 2000, &tb, &err), 0);
	assert_int_equal(tb, -1);
	tb = 7;
	assert_int_equal(tgvm_qmp_x_query_jit(c, 2000, &tb, &err), -EPROTO);
	assert_int_equal(tb, 7);
	qmp_conn_free(c);
	fake_finish(&f);
}

static void test_cpu_queries(void **state)
{
	static const struct step script[] = {
	    {S_SEND, GREETING},
	    {S_EXPECT, "qmp_capabilities"},
	    {S_SEND, CAPS_OK},
	    {S_EXPECT_JSON, "{\"execute\": \"query-cpu-definitions\"}"},
	    {S_SEND, "{\"return\": [{\"name\": \"Skylake-Client\", \"typename\": "
	             "\"Skylake-Client-x86_64-cpu\", \"unavailable-features\": [\"hle\", \"rtm\", "
	             "7], \"alias-of\": \"Skylake-Client-v1\", \"static\": false, "
	             "\"migration-safe\": true, \"deprecated\": false}, "
	             "{\"name\": \"base\", \"static\": true, \"migration-safe\": true}, "
	             "{\"typename\": \"nameless\"}, "
	             "{\"name\": \"486\", \"unavailable-features\": [], \"deprecated\": true}], "
	             "\"id\": %ID%}"},
	    {S_EXPECT_JSON, "{\"execute\": \"query-cpu-model-expansion\", \"arguments\": "
	                    "{\"type\": \"full\", \"model\": {\"name\": \"max\"}}}"},
	    {S_SEND, "{\"return\": {\"model\": {\"name\": \"max\", \"props\": {\"avx2\": true, "
	             "\"family\": 6, \"model-id\": \"QEMU TCG CPU version 2.5+\", "
	             "\"vendor\": \"AuthenticAMD\"}}}, \"id\": %ID%}"},
	    {S_EXPECT_JSON, "{\"execute\": \"query-cpu-model-expansion\", \"arguments\": "
	                    "{\"type\": \"static\", \"model\": {\"name\": \"Haswell\", "
	                    "\"props\": {\"avx2\": false}}}}"},
	    {S_SEND, "{\"return\": {\"model\": {\"name\": \"base\"}}, \"id\": %ID%}"},
	    {S_EXPECT, "query-cpu-model-expansion"},
	    {S_SEND, "{\"return\": {\"model\": {\"props\": {}}}, \"id\": %ID%}"},
	    {S_EXPECT, "query-cpu-definitions"},
	    {S_SEND, "{\"return\": {\"name\": \"max\"}, \"id\": %ID%}"},
	    {S_END},
	};
	struct tgvm_qmp_cpu_model m = {0};
	struct tgvm_qmp_cpu_def *defs = NULL;
	struct tgvm_error err = {0};
	json_t *props = json_pack("{s:b}", "avx2", false);
	size_t n = 0;
	struct fake f;
	struct qmp_conn *c;

	(void)state;
	c = open_fake(&f, script);
	assert_int_equal(tgvm_qmp_query_cpu_definitions(c, 2000, &defs, &n, &err), 0);
	assert_int_equal(n, 3); /* the nameless entry is skipped */
	assert_string_equal(defs[0].name, "Skylake-Client");
	assert_string_equal(defs[0].alias_of, "Skylake-Client-v1");
	assert_true(defs[0].migration_safe);
	assert_false(defs[0].is_static);
	assert_true(defs[0].has_unavailable_features);
	assert_int_equal(defs[0].n_unavailable, 2); /* the number is no name */
	assert_string_equal(defs[0].unavailable_features[0], "hle");
	assert_string_equal(defs[0].unavailable_features[1], "rtm");
	assert_string_equal(defs[1].name, "base");
	assert_true(defs[1].is_static);
	assert_string_equal(defs[1].alias_of, "");
	assert_false(defs[1].has_unavailable_features);
	assert_string_equal(defs[2].name, "486");
	assert_true(defs[2].deprecated);
	assert_true(defs[2].has_unavailable_features);
	assert_int_equal(defs[2].n_unavailable, 0);
	tgvm_qmp_cpu_defs_free(defs, n);

	assert_int_equal(tgvm_qmp_query_cpu_model_expansion(c, TGVM_QMP_CPU_EXPANSION_FULL, "max",
	                                                    NULL, 2000, &m, &err),
	                 0);
	assert_string_equal(m.name, "max");
	assert_true(json_is_true(json_object_get(m.props, "avx2")));
	assert_int_equal(json_integer_value(json_object_get(m.props, "family")), 6);
	tgvm_qmp_cpu_model_release(&m);
	assert_null(m.props);
	tgvm_qmp_cpu_model_release(&m); /* twice is fine */

	assert_int_equal(tgvm_qmp_query_cpu_model_expansion(c, TGVM_QMP_CPU_EXPANSION_STATIC,
	                                                    "Haswell", props, 2000, &m, &err),
	                 0);
	assert_int_equal(props->refcount, 1); /* borrowed */
	assert_string_equal(m.name, "base");
	assert_true(json_is_object(m.props));
	assert_int_equal(json_object_size(m.props), 0);
	tgvm_qmp_cpu_model_release(&m);

	assert_int_equal(tgvm_qmp_query_cpu_model_expansion(c, TGVM_QMP_CPU_EXPANSION_FULL, "max",
	                                                    NULL, 2000, &m, &err),
	                 -EPROTO);
	assert_null(m.props);
	assert_int_equal(tgvm_qmp_query_cpu_model_expansion(c, TGVM_QMP_CPU_EXPANSION__MAX, "max",
	                                                    NULL, 2000, &m, &err),
	                 -EINVAL);
	defs = NULL;
	n = 99;
	assert_int_equal(tgvm_qmp_query_cpu_definitions(c, 2000, &defs, &n, &err), -EPROTO);
	assert_null(defs);
	assert_int_equal(n, 99);
	json_decref(props);
	qmp_conn_free(c);
	fake_finish(&f);
}

/* Every enum value has a name that maps back to it; unknown words do not map. */
static void test_enum_tables(void **state)
{
	(void)state;
	assert_null(tgvm_qmp_run_state_to_string(TGVM_QMP_RUN_STATE_OTHER));
	assert_null(tgvm_qmp_run_state_to_string(TGVM_QMP_RUN_STATE__MAX));
	for (int i = 1; i < TGVM_QMP_RUN_STATE__MAX; i++) {
		const char *s = tgvm_qmp_run_state_to_string(i);

		assert_non_null(s);
		assert_int_equal(tgvm_qmp_run_state_from_string(s), i);
	}
	assert_null(tgvm_qmp_migration_status_to_string(TGVM_QMP_MIGRATION_STATUS_OTHER));
	for (int i = 1; i < TGVM_QMP_MIGRATION_STATUS__MAX; i++) {
		const char *s = tgvm_qmp_migration_status_to_string(i);

		assert_non_null(s);
		assert_int_equal(tgvm_qmp_migration_status_from_string(s), i);
	}
	for (int i = 0; i < TGVM_QMP_MIGRATE_CAP__MAX; i++)
		assert_int_equal(
		    tgvm_qmp_migrate_cap_from_string(tgvm_qmp_migrate_cap_to_string(i)), i);
	for (int i = 0; i < TGVM_QMP_CPU_EXPANSION__MAX; i++)
		assert_int_equal(
		    tgvm_qmp_cpu_expansion_from_string(tgvm_qmp_cpu_expansion_to_string(i)), i);
	assert_int_equal(tgvm_qmp_migration_status_from_string("wait-unplug"),
	                 TGVM_QMP_MIGRATION_STATUS_WAIT_UNPLUG);
	assert_int_equal(tgvm_qmp_migration_status_from_string("frobnicating"), -EINVAL);
	assert_int_equal(tgvm_qmp_migration_status_from_string(NULL), -EINVAL);
	assert_int_equal(tgvm_qmp_run_state_from_string(""), -EINVAL);
	assert_int_equal(tgvm_qmp_migrate_cap_from_string("x-ignore-shared"),
	                 TGVM_QMP_MIGRATE_CAP_X_IGNORE_SHARED);
}

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

/*
 * A QEMU with no machine, vCPUs not started (-S), its QMP on a UNIX socket
 * @dir/@name.sock (stdio cannot carry descriptors for getfd).
 */
static struct qmp_conn *spawn_idle_qemu(const char *dir, const char *name, bool incoming,
                                        pid_t *ret_pid)
{
	struct qmp_conn *c = NULL;
	struct tgvm_error err = {0};
	char path[256], arg[300];
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s.sock", dir, name);
	snprintf(arg, sizeof(arg), "unix:%s,server=on,wait=off", path);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-S", "-machine", "none",
		       "-accel", "tcg", "-nodefaults", "-display", "none", "-qmp", arg,
		       incoming ? "-incoming" : NULL, "defer", (char *)NULL);
		_exit(127);
	}
	assert_int_equal(qmp_conn_open(path, 20000, &c, &err), 0);
	unlink(path);
	*ret_pid = pid;
	return c;
}

static void quit_qemu(struct qmp_conn *c, pid_t pid)
{
	struct tgvm_error err = {0};
	int status;

	assert_int_equal(tgvm_qmp_quit(c, 5000, &err), 0);
	qmp_conn_free(c);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
}

/*
 * The typed calls on real QEMUs: what an idle -S QEMU answers, what it
 * refuses (QMP errors from the typed calls), and a whole migration of an
 * empty machine over a descriptor handed over by getfd, as tgvm moves VMs.
 */
static void test_real_qemu_typed(void **state)
{
	const struct tgvm_qmp_migrate_cap_state caps[] = {
	    {TGVM_QMP_MIGRATE_CAP_EVENTS, true},
	    {TGVM_QMP_MIGRATE_CAP_X_IGNORE_SHARED, true},
	};
	struct tgvm_qmp_migrate_params p = {.has_max_bandwidth = true,
	                                    .max_bandwidth = 1ull << 30,
	                                    .has_downtime_limit = true,
	                                    .downtime_limit = 250,
	                                    .has_max_postcopy_bandwidth = true,
	                                    .max_postcopy_bandwidth = 1ull << 29,
	                                    .has_multifd_channels = true,
	                                    .multifd_channels = 3};
	struct tgvm_qmp_migrate_info mi;
	struct tgvm_qmp_status st;
	struct tgvm_qmp_cpu_def *defs = NULL;
	struct tgvm_qmp_cpu_model model = {0};
	struct tgvm_error err = {0};
	struct qmp_conn *src, *dst;
	struct qmp_event ev;
	json_t *params = NULL, *off;
	char *out = NULL;
	int64_t tb = -2;
	size_t n = 0;
	bool has_max = false;
	char dir[] = "/tmp/tgvm-test-qmp-XXXXXX";
	pid_t spid, dpid;
	int sv[2], p2[2];

	(void)state;
	if (!have_qemu())
		skip();
	assert_non_null(mkdtemp(dir));
	src = spawn_idle_qemu(dir, "src", false, &spid);
	dst = spawn_idle_qemu(dir, "dst", true, &dpid);

	assert_int_equal(tgvm_qmp_query_status(src, 5000, &st, &err), 0);
	assert_false(st.running);
	assert_int_equal(st.state, TGVM_QMP_RUN_STATE_PRELAUNCH);
	assert_int_equal(tgvm_qmp_query_status(dst, 5000, &st, &err), 0);
	assert_int_equal(st.state, TGVM_QMP_RUN_STATE_INMIGRATE);

	/* no migration yet: QEMU says nothing, and nothing is made up */
	assert_int_equal(tgvm_qmp_query_migrate(src, 5000, &mi, &err), 0);
	assert_false(mi.has_status);
	assert_int_equal(mi.status, TGVM_QMP_MIGRATION_STATUS_NONE);
	assert_false(mi.has_ram || mi.has_total_time || mi.has_downtime);

	/* what a migration sets, read back */
	assert_int_equal(tgvm_qmp_migrate_set_capabilities(src, caps, ARRAY_SIZE(caps), 5000, &err),
	                 0);
	assert_int_equal(tgvm_qmp_migrate_set_capabilities(dst, caps, ARRAY_SIZE(caps), 5000, &err),
	                 0);
	assert_int_equal(tgvm_qmp_migrate_set_parameters(src, &p, 5000, &err), 0);
	assert_int_equal(
	    qmp_conn_command(src, "query-migrate-parameters", NULL, 5000, &params, &err), 0);
	assert_int_equal(json_integer_value(json_object_get(params, "max-bandwidth")), 1 << 30);
	assert_int_equal(json_integer_value(json_object_get(params, "downtime-limit")), 250);
	assert_int_equal(json_integer_value(json_object_get(params, "max-postcopy-bandwidth")),
	                 1 << 29);
	assert_int_equal(json_integer_value(json_object_get(params, "multifd-channels")), 3);
	json_decref(params);

	/* refused by QEMU outside a migration: the typed calls report its error */
	assert_int_equal(tgvm_qmp_migrate_start_postcopy(src, 5000, &err), -EREMOTEIO);
	assert_int_equal(tgvm_qmp_migrate_pause(src, 5000, &err), -EREMOTEIO);
	assert_non_null(strstr(err.msg, "postcopy"));
	assert_int_equal(tgvm_qmp_migrate_recover(dst, "unix:/nonexistent/x", 5000, &err),
	                 -EREMOTEIO);
	assert_int_equal(tgvm_qmp_migrate_cancel(src, 5000, &err), 0); /* nothing to cancel */
	assert_int_equal(tgvm_qmp_trace_event_set_state(src, "vm_state_notify", true, 5000, &err),
	                 0);
	assert_int_equal(tgvm_qmp_trace_event_set_state(src, "no_such_event", true, 5000, &err),
	                 -EREMOTEIO);
	assert_int_equal(tgvm_qmp_human_monitor_command(src, "info version", 5000, &out, &err), 0);
	assert_true(strtol(out, NULL, 10) >= 6);
	free(out);
	assert_int_equal(tgvm_qmp_x_query_jit(src, 5000, &tb, &err), 0);
	assert_true(tb >= 0); /* TCG: the count is there (0 before any code ran) */
	assert_int_equal(tgvm_qmp_stop(src, 5000, &err), 0);

	/* CPU models, as the fleet reads them */
	assert_int_equal(tgvm_qmp_query_cpu_definitions(src, 10000, &defs, &n, &err), 0);
	assert_true(n > 10);
	for (size_t i = 0; i < n; i++)
		has_max |= !strcmp(defs[i].name, "max") && defs[i].has_unavailable_features;
	assert_true(has_max);
	tgvm_qmp_cpu_defs_free(defs, n);
	assert_int_equal(tgvm_qmp_query_cpu_model_expansion(src, TGVM_QMP_CPU_EXPANSION_FULL, "max",
	                                                    NULL, 10000, &model, &err),
	                 0);
	assert_true(json_is_true(json_object_get(model.props, "sse2")));
	assert_non_null(json_object_get(model.props, "family"));
	tgvm_qmp_cpu_model_release(&model);
	off = json_pack("{s:b}", "sse4.2", false);
	assert_int_equal(tgvm_qmp_query_cpu_model_expansion(src, TGVM_QMP_CPU_EXPANSION_STATIC,
	                                                    "Nehalem", off, 10000, &model, &err),
	                 0);
	assert_string_equal(model.name, "base");
	assert_true(json_is_false(json_object_get(model.props, "sse4.2")));
	tgvm_qmp_cpu_model_release(&model);
	json_decref(off);
	assert_int_equal(tgvm_qmp_query_cpu_model_expansion(src, TGVM_QMP_CPU_EXPANSION_FULL,
	                                                    "no-such-cpu", NULL, 10000, &model,
	                                                    &err),
	                 -EREMOTEIO);

	/* closefd lets go of what getfd handed over */
	assert_int_equal(pipe2(p2, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(tgvm_qmp_getfd(src, "spare", p2[1], 5000, &err), 0);
	close(p2[1]);
	assert_int_equal(tgvm_qmp_closefd(src, "spare", 5000, &err), 0);
	char ch;
	assert_int_equal(read(p2[0], &ch, 1), 0);
	close(p2[0]);
	assert_int_equal(tgvm_qmp_closefd(src, "spare", 5000, &err), -EREMOTEIO);

	/* a whole migration over a connection of ours, as tgvm's stream */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(tgvm_qmp_getfd(dst, "mig", sv[1], 5000, &err), 0);
	assert_int_equal(tgvm_qmp_getfd(src, "mig", sv[0], 5000, &err), 0);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(tgvm_qmp_migrate_incoming(dst, "fd:mig", 5000, &err), 0);
	assert_int_equal(tgvm_qmp_migrate_incoming(dst, "fd:mig", 5000, &err), -EREMOTEIO);
	assert_int_equal(tgvm_qmp_migrate(src, "fd:mig", false, 5000, &err), 0);
	for (;;) {
		assert_int_equal(qmp_conn_wait_event(src, "MIGRATION", 20000, &ev, &err), 1);
		const char *s = json_string_value(json_object_get(ev.data, "status"));
		bool done = s && (!strcmp(s, "completed") || !strcmp(s, "failed"));

		if (done)
			assert_string_equal(s, "completed");
		qmp_event_release(&ev);
		if (done)
			break;
	}
	assert_int_equal(tgvm_qmp_query_migrate(src, 5000, &mi, &err), 0);
	assert_int_equal(mi.status, TGVM_QMP_MIGRATION_STATUS_COMPLETED);
	assert_string_equal(mi.status_word, "completed");
	assert_true(mi.has_total_time && mi.total_time >= 0);
	assert_true(mi.has_downtime && mi.downtime >= 0);
	assert_true(mi.has_setup_time);
	assert_true(mi.has_ram);
	assert_true(mi.ram.has_transferred);
	/* mbps: QEMU leaves it out when the move took no measurable time */
	assert_true(!mi.ram.has_mbps || mi.ram.mbps >= 0);
	assert_true(mi.ram.has_dirty_sync_count && mi.ram.dirty_sync_count >= 1);
	assert_false(mi.has_error_desc);
	/* The source leaves finish-migrate a moment after its MIGRATION event. */
	for (int i = 0; i < 500; i++) {
		assert_int_equal(tgvm_qmp_query_status(src, 5000, &st, &err), 0);
		if (st.state != TGVM_QMP_RUN_STATE_FINISH_MIGRATE)
			break;
		usleep(10000);
	}
	assert_int_equal(st.state, TGVM_QMP_RUN_STATE_POSTMIGRATE);
	assert_int_equal(tgvm_qmp_query_status(dst, 5000, &st, &err), 0);
	assert_int_not_equal(st.state, TGVM_QMP_RUN_STATE_INMIGRATE);

	quit_qemu(src, spid);
	quit_qemu(dst, dpid);
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
	    cmocka_unit_test(test_typed_requests),
	    cmocka_unit_test(test_query_migrate),
	    cmocka_unit_test(test_query_status),
	    cmocka_unit_test(test_typed_errors),
	    cmocka_unit_test(test_x_query_jit),
	    cmocka_unit_test(test_cpu_queries),
	    cmocka_unit_test(test_enum_tables),
	    cmocka_unit_test(test_real_qemu_typed),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
