/* SPDX-License-Identifier: MIT */
/*
 * Internal helpers of the vm/ module: running programs with bounded output,
 * entering a host's network namespace, and process liveness checks.
 */
#ifndef TGVM_VM_INT_H
#define TGVM_VM_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "tgvm/vm.h"
#include "util/util.h"

#define VM_NETNS_DIR "/run/netns"

/*
 * Run @argv (argv[0] looked up in PATH) in network namespace @ns (NULL: ours),
 * wait at most @timeout_ms. Non-zero exit gives -EIO with the first line of its
 * stderr in @reterr. Output beyond 4 KiB is dropped.
 */
int vm_run(const char *ns, char *const *argv, int timeout_ms, struct tgvm_error *reterr);

/* true when namespace @ns exists. */
bool vm_netns_exists(const char *ns);
/* "tgvm-<host>" into @buf. */
void vm_host_netns(const char *host, char *buf, size_t size);

/* true when @pid is alive and not a zombie. */
bool vm_pid_alive(pid_t pid);
/* true when @pid runs a QEMU system emulator (guards against pid reuse). */
bool vm_pid_is_qemu(pid_t pid);
/* Wait up to @timeout_ms for @pid to be gone. true if it is. */
bool vm_pid_wait_gone(pid_t pid, int timeout_ms);

/* Sleep @ms milliseconds. */

/* 32-bit FNV-1a of @s. */
uint32_t vm_fnv1a(const char *s);

/* The QEMU binary: $TGVM_QEMU or "qemu-system-x86_64". */

/* The kernel command line of a VM given a kernel and no --append. */
#define VM_APPEND_DEFAULT "console=ttyS0 quiet"
/* 0 when @c's memdev and mem_file agree and the file path is usable by QEMU. */
int vm_config_check_memdev(const struct vm_config *c, struct tgvm_error *reterr);

#endif
