/* SPDX-License-Identifier: MIT */
/*
 * Small helpers every module uses: checked number parsing, growable buffers
 * and string lists, bounded file reads, clocks, name suggestions and the
 * project's directories. Nothing here knows CPUs, ELF or QEMU.
 */
#ifndef TGVM_UTIL_H
#define TGVM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tgvm/config.h"
#include "tgvm/error.h"

#define ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))
#define TGVM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TGVM_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Parse a whole string as a base-10 (or 0x-prefixed) unsigned integer. 0 or -EINVAL/-ERANGE. */
int tgvm_parse_u64(const char *s, uint64_t *ret);
int tgvm_parse_int(const char *s, int min, int max, int *ret);

/* The value of hex digit @c (either case), or -1. */
int tgvm_hexval(char c);
/* Parse "512M", "1G", "4096" (bytes), "2GiB" into bytes. 0 or -EINVAL/-ERANGE. */
int tgvm_parse_size(const char *s, uint64_t *ret_bytes);

/* Growable byte buffer; always NUL-terminated after a successful append. */
struct tgvm_buf {
	char *data;
	size_t len;
	size_t cap;
};
void tgvm_buf_init(struct tgvm_buf *b);
void tgvm_buf_release(struct tgvm_buf *b);
int tgvm_buf_append(struct tgvm_buf *b, const void *p, size_t n);
int tgvm_buf_printf(struct tgvm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append @s with XML's five special characters escaped (for SVG text). */
void tgvm_buf_xml(struct tgvm_buf *b, const char *s);

/* NULL-terminated list of owned strings. */
struct tgvm_strv {
	char **v;
	size_t n;
	size_t cap;
};
void tgvm_strv_init(struct tgvm_strv *s);
void tgvm_strv_release(struct tgvm_strv *s);
int tgvm_strv_push(struct tgvm_strv *s, const char *str); /* copies */
int tgvm_strv_pushf(struct tgvm_strv *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool tgvm_strv_contains(const struct tgvm_strv *s, const char *str);
/* Split @str at each of the characters in @seps, skipping empty fields. */
int tgvm_strv_split(struct tgvm_strv *s, const char *str, const char *seps);

/*
 * Read a whole file into a NUL-terminated buffer of at most @max bytes.
 * Caller frees *ret_data. -EFBIG when larger, with the path in @reterr.
 */
int tgvm_file_read(const char *path, size_t max, char **ret_data, size_t *ret_len,
                   struct tgvm_error *reterr);
/* Write @len bytes atomically (temp file + rename). */
int tgvm_file_write(const char *path, const void *data, size_t len, struct tgvm_error *reterr);
/* mkdir -p with mode 0700 for created directories. */
int tgvm_mkdir_p(const char *path, struct tgvm_error *reterr);

/* Monotonic and wall clocks in nanoseconds. */
uint64_t tgvm_now_ns(void);
uint64_t tgvm_wall_ns(void);

/* Levenshtein distance, capped at 100; for "did you mean" suggestions. */
int tgvm_edit_distance(const char *a, const char *b);

/*
 * Directories. The cache (QEMU model database, bundled guest) lives in
 * $TGVM_CACHE_DIR, else $XDG_CACHE_HOME/tgvm, else ~/.cache/tgvm. State (VMs,
 * hosts, migrations) in $TGVM_STATE_DIR, else /run/tgvm for root, else
 * $XDG_RUNTIME_DIR/tgvm. The data dir (bundled examples, guest recipe) is
 * the configuration's data_dir ($TGVM_DATA_DIR), else the source tree the binary was built from.
 * Each writes into @buf of @size and returns 0 or -ENAMETOOLONG.
 */
/* Sleep @ms milliseconds (a signal does not cut it short). */
void tgvm_sleep_ms(int ms);
int tgvm_cache_dir(char *buf, size_t size);
int tgvm_state_dir(char *buf, size_t size);
int tgvm_data_dir(char *buf, size_t size);

#endif
