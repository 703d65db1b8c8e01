/* SPDX-License-Identifier: MIT */
/*
 * Starting a VM as `tgvm vm start` does (src/fleet/vmstart.c): the bundled
 * guest when no kernel or disk is given, the CPU model (the host vendor's
 * generic model, or the minimal model from a scan of what the guest runs),
 * the host's CPU check, RAM on a shared memory device, and QEMU itself;
 * cheap checks before the scan, and nothing left behind on failure.
 */
#ifndef TGVM_VMSTART_H
#define TGVM_VMSTART_H

#include <stdbool.h>

#include "tgvm/error.h"
#include "tgvm/vm.h"

struct tgvm_vm_start_req {
	struct vm_config *cfg; /* name, host, mem, cpus, kernel/initrd/append/disk, ip, accel;
	                          cpu NULL for the default. Completed in place. */
	bool model_auto;       /* the minimal model from a scan (--model auto) */
	bool model_given;      /* cfg->cpu or model_auto came from the user */
	const char *workload;  /* the bundled guest's tgvm.workload (NULL: udp-responder) */
	const char *memdev;    /* place the VM's RAM on this shared device, or NULL */
	bool dry_run;          /* do not start: ret->argv holds QEMU's command line */
};

struct tgvm_vm_start_info {
	char scanned[4096]; /* model auto: the file scanned, "" when none */
	char *needs;        /* model auto: features required beyond the boot baseline (malloc'd) */
	struct tgvm_strv *argv; /* dry run: QEMU's argument vector (owned) */
};

void tgvm_vm_start_info_init(struct tgvm_vm_start_info *i);
void tgvm_vm_start_info_release(struct tgvm_vm_start_info *i);

/*
 * Start the VM of @req (or, with dry_run, only build its command line).
 * Returns 0; -EINVAL/-ENOENT/-EEXIST for bad input (bad name or size, no
 * such host, a VM of that name), -EPERM when the host cannot present the
 * model (the features in @reterr), other -errno on failure. @ret is filled
 * on success; release it with tgvm_vm_start_info_release(). Cost: the model
 * auto scan reads the whole initramfs or image (seconds).
 */
int tgvm_vm_start(const struct tgvm_vm_start_req *req, struct tgvm_vm_start_info *ret,
                  struct tgvm_error *reterr);

#endif
