// SPDX-License-Identifier: MIT
/*
 * Unit tests of the bundled-guest API: locating it in a scratch cache
 * (the configuration's cache_dir) that is missing, incomplete, malformed or complete;
 * composing the tgvm.* command line; reading markers from console logs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tgvm/config.h"
#include "tgvm/vm.h"
#include "util/util.h"

#define GOOD_MANIFEST                                                                              \
	"{\n  \"format\": 1,\n  \"kernel_version\": \"6.1.0-56-cloud-amd64\",\n"                   \
	"  \"modules\": [\"virtio_net\"],\n  \"source_hash\": \"abc123\"\n}\n"

struct scratch {
	char root[256];
	char guest[300];
};

static void put(const struct scratch *s, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", s->guest, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	struct scratch *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	snprintf(s->root, sizeof(s->root), "/tmp/tgvm-unit-guest.XXXXXX");
	assert_non_null(mkdtemp(s->root));
	snprintf(s->guest, sizeof(s->guest), "%s/guest", s->root);
	tgvm_config_set(&(struct tgvm_config){.cache_dir = s->root});
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct scratch *s = *state;
	char path[512];
	const char *names[] = {"vmlinuz", "initramfs.img", "manifest.json"};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", s->guest, names[i]);
		unlink(path);
	}
	rmdir(s->guest);
	rmdir(s->root);
	free(s);
	return 0;
}

static void test_locate_missing_dir(void **state)
{
	struct scratch *s = *state;
	struct tgvm_guest g;
	struct tgvm_error err = {0};

	memset(&g, 0x5a, sizeof(g));
	assert_int_equal(tgvm_guest_locate(&g, &err), -ENOENT);
	assert_int_equal(err.code, ENOENT);
	assert_non_null(strstr(err.msg, s->guest));
	assert_non_null(strstr(err.msg, "make setup"));
	assert_non_null(strstr(err.msg, "scripts/build-guest.sh"));
	/* Not touched on failure. */
	assert_int_equal((unsigned char)g.kernel[0], 0x5a);
	/* A NULL reterr is fine too. */
	assert_int_equal(tgvm_guest_locate(&g, NULL), -ENOENT);
}

static void test_locate_incomplete(void **state)
{
	struct scratch *s = *state;
	struct tgvm_guest g;
	struct tgvm_error err = {0};

	assert_int_equal(mkdir(s->guest, 0700), 0);
	put(s, "vmlinuz", "kernel");
	put(s, "initramfs.img", "initrd");
	/* No manifest: an unfinished build. */
	assert_int_equal(tgvm_guest_locate(&g, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "manifest.json"));
	assert_non_null(strstr(err.msg, "make setup"));

	/* An empty initramfs. */
	put(s, "manifest.json", GOOD_MANIFEST);
	put(s, "initramfs.img", "");
	assert_int_equal(tgvm_guest_locate(&g, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "initramfs.img"));
	assert_non_null(strstr(err.msg, "empty"));

	/* No kernel. */
	put(s, "initramfs.img", "initrd");
	snprintf(g.kernel, sizeof(g.kernel), "%s/vmlinuz", s->guest);
	assert_int_equal(unlink(g.kernel), 0);
	assert_int_equal(tgvm_guest_locate(&g, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "vmlinuz"));
}

static void test_locate_malformed_manifest(void **state)
{
	struct scratch *s = *state;
	struct tgvm_guest g;
	struct tgvm_error err = {0};

	assert_int_equal(mkdir(s->guest, 0700), 0);
	put(s, "vmlinuz", "kernel");
	put(s, "initramfs.img", "initrd");

	put(s, "manifest.json", "{\n  \"kernel_version\": \n");
	assert_int_equal(tgvm_guest_locate(&g, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "malformed"));
	assert_non_null(strstr(err.msg, "line"));

	put(s, "manifest.json", "[1, 2]");
	assert_int_equal(tgvm_guest_locate(&g, &err), -EINVAL);

	put(s, "manifest.json", "{\"source_hash\": \"x\"}");
	assert_int_equal(tgvm_guest_locate(&g, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "kernel_version"));

	put(s, "manifest.json", "{\"kernel_version\": \"6.1 evil\", \"source_hash\": \"x\"}");
	assert_int_equal(tgvm_guest_locate(&g, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "non-printable"));
}

static void test_locate_complete(void **state)
{
	struct scratch *s = *state;
	struct tgvm_guest g;
	struct tgvm_error err = {0};
	char want[512];

	assert_int_equal(mkdir(s->guest, 0700), 0);
	put(s, "vmlinuz", "kernel");
	put(s, "initramfs.img", "initrd-bytes");
	put(s, "manifest.json", GOOD_MANIFEST);
	assert_int_equal(tgvm_guest_locate(&g, &err), 0);
	assert_string_equal(g.dir, s->guest);
	snprintf(want, sizeof(want), "%s/vmlinuz", s->guest);
	assert_string_equal(g.kernel, want);
	snprintf(want, sizeof(want), "%s/initramfs.img", s->guest);
	assert_string_equal(g.initrd, want);
	snprintf(want, sizeof(want), "%s/manifest.json", s->guest);
	assert_string_equal(g.manifest, want);
	assert_string_equal(g.kernel_version, "6.1.0-56-cloud-amd64");
	assert_string_equal(g.source_hash, "abc123");
	assert_int_equal(g.initramfs_bytes, 12);
}

static void test_cmdline(void **state)
{
	struct tgvm_guest_args a = {0};
	struct tgvm_error err = {0};
	char *line = NULL, big[4096];

	(void)state;
	assert_int_equal(tgvm_guest_cmdline(NULL, &line, &err), 0);
	assert_string_equal(line, TGVM_GUEST_BASE_APPEND);
	free(line);

	a.run = "echo \"hi\"; exit 3";
	a.ip = "198.18.0.2/24";
	a.workload = "udp-responder,memwriter:--mib=64";
	a.poweroff = true;
	a.extra = "tgvm.debug=1";
	assert_int_equal(tgvm_guest_cmdline(&a, &line, &err), 0);
	/* base64 of: echo "hi"; exit 3 */
	assert_string_equal(
	    line,
	    "console=ttyS0 panic=-1 quiet cryptomgr.notests no_timer_check tgvm.ip=198.18.0.2/24 "
	    "tgvm.workload=udp-responder,memwriter:--mib=64 tgvm.poweroff=1 "
	    "tgvm.run64=ZWNobyAiaGkiOyBleGl0IDM= tgvm.debug=1");
	free(line);

	/* Padding: 1 and 2 trailing bytes. */
	memset(&a, 0, sizeof(a));
	a.run = "ab";
	assert_int_equal(tgvm_guest_cmdline(&a, &line, &err), 0);
	assert_non_null(strstr(line, " tgvm.run64=YWI="));
	free(line);
	a.run = "abcd";
	assert_int_equal(tgvm_guest_cmdline(&a, &line, &err), 0);
	assert_non_null(strstr(line, " tgvm.run64=YWJjZA=="));
	free(line);

	/* A value that would split into two kernel words. */
	memset(&a, 0, sizeof(a));
	a.ip = "198.18.0.2 /24";
	line = NULL;
	assert_int_equal(tgvm_guest_cmdline(&a, &line, &err), -EINVAL);
	assert_null(line);
	assert_non_null(strstr(err.msg, "tgvm.ip"));
	a.ip = NULL;
	a.workload = "memwriter:\"x\"";
	assert_int_equal(tgvm_guest_cmdline(&a, &line, &err), -EINVAL);

	/* Longer than the kernel accepts. */
	memset(&a, 0, sizeof(a));
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	a.run = big;
	assert_int_equal(tgvm_guest_cmdline(&a, &line, &err), -E2BIG);
	assert_null(line);
	assert_non_null(strstr(err.msg, "2047"));
}

static void test_parse_markers(void **state)
{
	static const char log[] = "\x1b"
	                          "c\x1b[2J\r\n"
	                          "[    4.1] some kernel line\r\n"
	                          "TGVM-READY ms=4829 kernel=6.1.0 boot_id=5b03\r\n"
	                          "TGVM-RUN-BEGIN\r\n"
	                          "output TGVM-RESULT rc=9\r\n"
	                          "TGVM-RESULT rc=132\r\n"
	                          "[    5.2] reboot: Power down\r\n";
	int rc = -1;
	uint64_t ms = 0;

	(void)state;
	assert_int_equal(tgvm_guest_parse_result(log, strlen(log), &rc), 1);
	assert_int_equal(rc, 132);
	assert_int_equal(tgvm_guest_parse_ready(log, strlen(log), &ms), 1);
	assert_int_equal(ms, 4829);

	/* Not there (yet), cut in the middle, malformed, or NULL: no answer. */
	rc = -1;
	assert_int_equal(tgvm_guest_parse_result(log, 60, &rc), 0);
	assert_int_equal(rc, -1);
	assert_int_equal(tgvm_guest_parse_result("TGVM-RESULT rc=\n", 16, &rc), 0);
	assert_int_equal(tgvm_guest_parse_result("TGVM-RESULT rc=12x\n", 19, &rc), 0);
	assert_int_equal(tgvm_guest_parse_result("TGVM-RESULT rc=999\n", 19, &rc), 0);
	assert_int_equal(tgvm_guest_parse_result(NULL, 10, &rc), 0);
	assert_int_equal(tgvm_guest_parse_ready("TGVM-READYms=1\n", 15, &ms), 0);
	assert_int_equal(tgvm_guest_parse_ready("TGVM-READY ms=99999999999999999999999\n", 38, &ms),
	                 0);

	/* The last line need not end in a newline; the last result wins. */
	assert_int_equal(tgvm_guest_parse_result("TGVM-RESULT rc=1\nTGVM-RESULT rc=0", 33, &rc), 1);
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_locate_missing_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_locate_incomplete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_locate_malformed_manifest, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_locate_complete, setup, teardown),
	    cmocka_unit_test(test_cmdline),
	    cmocka_unit_test(test_parse_markers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
