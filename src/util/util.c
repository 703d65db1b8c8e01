// SPDX-License-Identifier: MIT
/* Checked parsing, buffers, string lists, bounded file I/O, clocks and directories. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tgvm/config.h"
#include "util/util.h"

int tgvm_parse_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end = NULL;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || !end || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int tgvm_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int tgvm_parse_int(const char *s, int min, int max, int *ret)
{
	long v;
	char *end = NULL;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || !end || *end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = (int)v;
	return 0;
}

int tgvm_parse_size(const char *s, uint64_t *ret_bytes)
{
	unsigned long long v;
	uint64_t mult = 1;
	char *end = NULL;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mult = 1ULL << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mult = 1ULL << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mult = 1ULL << 30;
		end++;
		break;
	case 't':
	case 'T':
		mult = 1ULL << 40;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (mult > 1 && (!strcmp(end, "iB") || !strcmp(end, "B") || !strcmp(end, "ib")))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*ret_bytes = v * mult;
	return 0;
}

void tgvm_buf_init(struct tgvm_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void tgvm_buf_release(struct tgvm_buf *b)
{
	free(b->data);
	tgvm_buf_init(b);
}

static int buf_reserve(struct tgvm_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int tgvm_buf_append(struct tgvm_buf *b, const void *p, size_t n)
{
	int r = buf_reserve(b, n);

	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int tgvm_buf_printf(struct tgvm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	r = buf_reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void tgvm_strv_init(struct tgvm_strv *s)
{
	s->v = NULL;
	s->n = 0;
	s->cap = 0;
}

void tgvm_strv_release(struct tgvm_strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	tgvm_strv_init(s);
}

static int strv_push_owned(struct tgvm_strv *s, char *str)
{
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		char **v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			free(str);
			return -ENOMEM;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
	return 0;
}

int tgvm_strv_push(struct tgvm_strv *s, const char *str)
{
	char *c = strdup(str);

	if (!c)
		return -ENOMEM;
	return strv_push_owned(s, c);
}

int tgvm_strv_pushf(struct tgvm_strv *s, const char *fmt, ...)
{
	va_list ap;
	char *c = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&c, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	return strv_push_owned(s, c);
}

bool tgvm_strv_contains(const struct tgvm_strv *s, const char *str)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], str))
			return true;
	return false;
}

int tgvm_strv_split(struct tgvm_strv *s, const char *str, const char *seps)
{
	const char *p = str;

	while (*p) {
		size_t n = strcspn(p, seps);

		if (n) {
			char *c = strndup(p, n);
			int r;

			if (!c)
				return -ENOMEM;
			r = strv_push_owned(s, c);
			if (r < 0)
				return r;
		}
		p += n;
		if (*p)
			p++;
	}
	return 0;
}

int tgvm_file_read(const char *path, size_t max, char **ret_data, size_t *ret_len,
                   struct tgvm_error *reterr)
{
	struct tgvm_buf b;
	char chunk[65536];
	int fd, r = 0;

	tgvm_buf_init(&b);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tgvm_error_set(reterr, errno, "cannot open '%s': %s", path, strerror(errno));
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = tgvm_error_set(reterr, errno, "cannot read '%s': %s", path,
			                   strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			r = tgvm_error_set(reterr, EFBIG, "'%s' is larger than %zu bytes", path,
			                   max);
			goto out;
		}
		r = tgvm_buf_append(&b, chunk, (size_t)n);
		if (r < 0) {
			r = tgvm_error_set(reterr, ENOMEM, "out of memory reading '%s'", path);
			goto out;
		}
	}
	if (!b.data && tgvm_buf_append(&b, "", 0) < 0) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory reading '%s'", path);
		goto out;
	}
	*ret_data = b.data;
	if (ret_len)
		*ret_len = b.len;
	b.data = NULL;
out:
	close(fd);
	tgvm_buf_release(&b);
	return r;
}

int tgvm_file_write(const char *path, const void *data, size_t len, struct tgvm_error *reterr)
{
	char tmp[PATH_MAX];
	const char *p = data;
	int fd, r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return tgvm_error_set(reterr, ENAMETOOLONG, "path too long: '%s'", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return tgvm_error_set(reterr, errno, "cannot create '%s': %s", tmp,
		                      strerror(errno));
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = tgvm_error_set(reterr, errno, "cannot write '%s': %s", tmp,
			                   strerror(errno));
			close(fd);
			unlink(tmp);
			return r;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0) {
		r = tgvm_error_set(reterr, errno, "cannot write '%s': %s", tmp, strerror(errno));
		unlink(tmp);
		return r;
	}
	if (rename(tmp, path) < 0) {
		r = tgvm_error_set(reterr, errno, "cannot rename '%s' to '%s': %s", tmp, path,
		                   strerror(errno));
		unlink(tmp);
	}
	return r;
}

int tgvm_mkdir_p(const char *path, struct tgvm_error *reterr)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return tgvm_error_set(reterr, ENAMETOOLONG, "bad directory path '%s'", path);
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0700) < 0 && errno != EEXIST)
				return tgvm_error_set(reterr, errno,
				                      "cannot create directory '%s': %s", buf,
				                      strerror(errno));
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

uint64_t tgvm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t tgvm_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int tgvm_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[101];

	if (la > 100 || lb > 100)
		return 100;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diag = row[0];

		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j];
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int best = diag + cost;

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return TGVM_MIN(row[lb], 100);
}

void tgvm_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int tgvm_cache_dir(char *buf, size_t size)
{
	const char *d = tgvm_config_get()->cache_dir;
	int n = d ? snprintf(buf, size, "%s", d)
	          : snprintf(buf, size, "/tmp/tgvm-cache-%d", (int)getuid());

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int tgvm_state_dir(char *buf, size_t size)
{
	const char *d = tgvm_config_get()->state_dir;
	int n = d               ? snprintf(buf, size, "%s", d)
	        : getuid() == 0 ? snprintf(buf, size, "/run/tgvm")
	                        : snprintf(buf, size, "/tmp/tgvm-state-%d", (int)getuid());

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

#ifndef TGVM_SOURCE_DIR
#define TGVM_SOURCE_DIR "."
#endif

int tgvm_data_dir(char *buf, size_t size)
{
	const char *d = tgvm_config_get()->data_dir;

	return snprintf(buf, size, "%s", d ? d : TGVM_SOURCE_DIR) >= (int)size ? -ENAMETOOLONG : 0;
}

void tgvm_buf_xml(struct tgvm_buf *b, const char *s)
{
	static const char *const ent[] = {
	    ['<'] = "&lt;", ['>'] = "&gt;", ['&'] = "&amp;", ['\''] = "&apos;", ['"'] = "&quot;"};

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < sizeof(ent) / sizeof(ent[0]) && ent[c])
			tgvm_buf_printf(b, "%s", ent[c]);
		else
			tgvm_buf_append(b, s, 1);
	}
}
