/* SPDX-License-Identifier: MIT */
/*
 * QEMU virtual machines and what they boot. This part: the bundled guest
 * (Debian's cloud kernel and tgvm's initramfs, built into the cache by
 * scripts/build-guest.sh): where it is, how to tell it what to do on the
 * kernel command line, and how to read its answer from the serial console.
 * The markers, keys and ports are documented in guest/README.md.
 */
#ifndef TGVM_VM_H
#define TGVM_VM_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tgvm/error.h"

/* ---- The bundled guest (src/vm/guest.c) ---- */

/* Console lines the guest's init prints, each at the start of a line. */
#define TGVM_GUEST_READY_MARKER  "TGVM-READY"      /* "TGVM-READY ms=N kernel=V boot_id=U" */
#define TGVM_GUEST_RESULT_MARKER "TGVM-RESULT rc=" /* "TGVM-RESULT rc=N" after tgvm.run */

/* UDP ports of the guest's workloads (their defaults). */
#define TGVM_GUEST_UDP_ECHO_PORT  7777 /* udp-responder: echoes every datagram */
#define TGVM_GUEST_MEMWRITER_PORT 7778 /* memwriter: "verify" / "status" requests */

/*
 * Kernel arguments every boot of the bundled guest starts with: serial
 * console, reboot (QEMU exits with -no-reboot) on panic, no boot chatter, and
 * no crypto self-tests (about a second of TCG time; the guest uses no crypto).
 */
#define TGVM_GUEST_BASE_APPEND "console=ttyS0 panic=-1 quiet cryptomgr.notests"
/* The kernel's own command-line limit on x86 (COMMAND_LINE_SIZE). */
#define TGVM_GUEST_CMDLINE_MAX 2048

struct tgvm_guest {
	char dir[PATH_MAX];       /* $TGVM_CACHE_DIR/guest */
	char kernel[PATH_MAX];    /* dir/vmlinuz: pass to QEMU -kernel */
	char initrd[PATH_MAX];    /* dir/initramfs.img: pass to QEMU -initrd */
	char manifest[PATH_MAX];  /* dir/manifest.json */
	char kernel_version[128]; /* e.g. "6.1.0-56-cloud-amd64", from the manifest */
	char source_hash[72];     /* sha256 of the guest/ sources it was built from */
	uint64_t initramfs_bytes; /* size of initrd */
};

/*
 * Find the bundled guest in the cache ($TGVM_CACHE_DIR/guest, else
 * $XDG_CACHE_HOME/tgvm/guest, else ~/.cache/tgvm/guest) and read its
 * manifest. Fills *ret on success only. Errors: -ENOENT when the guest or one
 * of its files is missing (the message tells the user to run 'make setup' or
 * scripts/build-guest.sh), -EINVAL for a malformed manifest, -ENAMETOOLONG.
 * Cost: three stat() calls and one small file read; builds nothing.
 */
int tgvm_guest_locate(struct tgvm_guest *ret, struct tgvm_error *reterr);

/* What to ask of one boot; NULL/false fields are left out. */
struct tgvm_guest_args {
	const char *run;      /* shell command run once (sent base64 as tgvm.run64) */
	const char *ip;       /* "198.18.1.2/24" for eth0 (tgvm.ip) */
	const char *gateway;  /* default route (tgvm.gw) */
	const char *workload; /* "udp-responder,memwriter:--mib=64" (tgvm.workload) */
	bool poweroff;        /* power off after @run (tgvm.poweroff=1) */
	const char *extra;    /* appended verbatim, e.g. "tgvm.debug=1" */
};

/*
 * Build the kernel command line (-append) for the bundled guest:
 * TGVM_GUEST_BASE_APPEND followed by the tgvm.* keys of @args. On success
 * *ret_cmdline is a new string the caller frees. Errors: -EINVAL when a
 * value holds a space, a quote or a control character (named in @reterr),
 * -E2BIG when the line exceeds TGVM_GUEST_CMDLINE_MAX - 1, -ENOMEM.
 */
int tgvm_guest_cmdline(const struct tgvm_guest_args *args, char **ret_cmdline,
                       struct tgvm_error *reterr);

/*
 * Find the last "TGVM-RESULT rc=N" line in the serial console output @log
 * of @len bytes (need not be NUL-terminated; "\r\n" line ends are fine).
 * Returns 1 and sets *ret_rc, or 0 when the guest has not printed it (yet).
 * O(len).
 */
int tgvm_guest_parse_result(const char *log, size_t len, int *ret_rc);

/*
 * Find the "TGVM-READY ms=N ..." line in @log. Returns 1 and sets *ret_ms
 * (milliseconds from kernel start to ready, the guest's own clock), or 0.
 */
int tgvm_guest_parse_ready(const char *log, size_t len, uint64_t *ret_ms);

#endif
