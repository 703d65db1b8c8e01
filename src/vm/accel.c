// SPDX-License-Identifier: MIT
/*
 * Choosing the accelerator: KVM only after a short probe boot proves it runs a
 * stock Linux kernel (a PVM-backed /dev/kvm opens fine and then hangs the
 * guest), TCG otherwise. The verdict is cached per host kernel and QEMU binary.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "tgvm/vm.h"
#include "vm/vm-int.h"

static const char *const accel_names[VM_ACCEL__MAX] = {
    [VM_ACCEL_TCG] = "tcg",
    [VM_ACCEL_KVM] = "kvm",
};

const char *vm_accel_to_string(enum vm_accel a)
{
	return a < VM_ACCEL__MAX ? accel_names[a] : "?";
}

int vm_accel_from_string(const char *s)
{
	for (int i = 0; i < VM_ACCEL__MAX; i++)
		if (!strcmp(s, accel_names[i]))
			return i;
	return -EINVAL;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int vm_tsc_early_arg(char *buf, size_t size)
{
	uint64_t t0 = mono_ns(), c0 = __rdtsc(), t1, c1;
	struct timespec d = {.tv_nsec = 20 * 1000 * 1000};

	nanosleep(&d, NULL);
	t1 = mono_ns();
	c1 = __rdtsc();
	if (t1 <= t0 || c1 <= c0)
		return -EIO;
	/* kHz = cycles per millisecond */
	uint64_t khz = (c1 - c0) * 1000000ull / (t1 - t0);
	if (khz < 100000 || khz > 20000000) /* 0.1 to 20 GHz, else the counter is not a clock */
		return -EIO;
	snprintf(buf, size, "tsc_early_khz=%llu", (unsigned long long)khz);
	return 0;
}

/* "kernel release|qemu binary size+mtime": what the verdict depends on. */
static void verdict_key(char *buf, size_t size)
{
	struct utsname u;
	struct stat st = {0};
	char path[512] = "";
	const char *q = vm_qemu_binary();

	uname(&u);
	if (q[0] == '/')
		snprintf(path, sizeof(path), "%s", q);
	else
		snprintf(path, sizeof(path), "/usr/bin/%s", q);
	stat(path, &st);
	snprintf(buf, size, "%s|%s|%lld+%lld", u.release, path, (long long)st.st_size,
	         (long long)st.st_mtime);
}

static int cache_path(char *buf, size_t size)
{
	char dir[4096];

	if (tgvm_cache_dir(dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	return snprintf(buf, size, "%s/accel.json", dir) >= (int)size ? -ENAMETOOLONG : 0;
}

static int cache_read(const char *key, char *reason, size_t rsize)
{
	char path[4200], *data = NULL;
	json_t *j;
	int a = -1;

	if (cache_path(path, sizeof(path)) < 0 ||
	    tgvm_file_read(path, 65536, &data, NULL, NULL) < 0)
		return -1;
	j = json_loads(data, 0, NULL);
	free(data);
	if (j && !strcmp(json_string_value(json_object_get(j, "key")) ?: "", key)) {
		a = vm_accel_from_string(json_string_value(json_object_get(j, "accel")) ?: "");
		if (reason)
			snprintf(reason, rsize, "%s (cached)",
			         json_string_value(json_object_get(j, "reason")) ?: "");
	}
	json_decref(j);
	return a;
}

static void cache_write(const char *key, enum vm_accel a, const char *reason)
{
	char dir[4096], path[4200], *text;
	json_t *j = json_pack("{s:s, s:s, s:s}", "key", key, "accel", vm_accel_to_string(a),
	                      "reason", reason);

	text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	if (text && tgvm_cache_dir(dir, sizeof(dir)) == 0 && tgvm_mkdir_p(dir, NULL) == 0 &&
	    cache_path(path, sizeof(path)) == 0)
		tgvm_file_write(path, text, strlen(text), NULL);
	free(text);
}

/*
 * Boot @kernel under KVM with no root disk: a working KVM reaches "VFS: Unable
 * to mount root fs", panics and (panic=-1, -no-reboot) QEMU exits by itself.
 */
static bool kvm_boots(const char *kernel, int timeout_ms, char *reason, size_t rsize)
{
	char tmpl[] = "/tmp/tgvm-kvmprobe-XXXXXX";
	int fd = mkstemp(tmpl), status = 0;
	uint64_t deadline = tgvm_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	bool ok = false;
	pid_t pid;

	if (fd < 0) {
		snprintf(reason, rsize, "cannot create a probe log: %s", strerror(errno));
		return false;
	}
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(fd, 1);
		dup2(null, 2);
		execlp(vm_qemu_binary(), vm_qemu_binary(), "-accel", "kvm", "-cpu", "host", "-m",
		       "128", "-nodefaults", "-no-user-config", "-display", "none", "-serial",
		       "stdio", "-no-reboot", "-kernel", kernel, "-append",
		       "console=ttyS0 panic=-1 loglevel=4", (char *)NULL);
		_exit(127);
	}
	if (pid < 0) {
		close(fd);
		unlink(tmpl);
		snprintf(reason, rsize, "fork: %s", strerror(errno));
		return false;
	}
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (tgvm_now_ns() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(reason, rsize,
			         "a probe boot under KVM did not finish within %d ms "
			         "(a PVM-backed /dev/kvm hangs stock Linux)",
			         timeout_ms);
			goto out;
		}
		tgvm_sleep_ms(20);
	}
	char *log = NULL;
	tgvm_file_read(tmpl, 1 << 20, &log, NULL, NULL);
	if (log && (strstr(log, "VFS:") || strstr(log, "Kernel panic"))) {
		ok = true;
		snprintf(reason, rsize, "a probe boot under KVM reached the kernel's root mount");
	} else {
		snprintf(reason, rsize, "a probe boot under KVM ended without booting the kernel");
	}
	free(log);
out:
	close(fd);
	unlink(tmpl);
	return ok;
}

enum vm_accel vm_accel_choose(const char *kernel, int timeout_ms, char *ret_reason,
                              size_t reason_size)
{
	char key[1024], reason[256] = "";
	const char *env = tgvm_config_get()->accel;
	enum vm_accel a;
	int fd, cached;

	if (env && *env && vm_accel_from_string(env) >= 0) {
		if (ret_reason)
			snprintf(ret_reason, reason_size,
			         "chosen by the configuration (TGVM_ACCEL)");
		return (enum vm_accel)vm_accel_from_string(env);
	}
	fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (ret_reason)
			snprintf(ret_reason, reason_size, "/dev/kvm cannot be opened: %s",
			         strerror(errno));
		return VM_ACCEL_TCG;
	}
	close(fd);
	verdict_key(key, sizeof(key));
	cached = cache_read(key, ret_reason, reason_size);
	if (cached >= 0)
		return (enum vm_accel)cached;
	if (!kernel || access(kernel, R_OK) < 0) {
		if (ret_reason)
			snprintf(ret_reason, reason_size, "no kernel to probe KVM with");
		return VM_ACCEL_TCG; /* not cached: a later call with a kernel decides */
	}
	a = kvm_boots(kernel, timeout_ms, reason, sizeof(reason)) ? VM_ACCEL_KVM : VM_ACCEL_TCG;
	cache_write(key, a, reason);
	if (ret_reason)
		snprintf(ret_reason, reason_size, "%s", reason);
	return a;
}
