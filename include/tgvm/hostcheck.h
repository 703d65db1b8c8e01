/* SPDX-License-Identifier: MIT */
/*
 * Whether a host can present a VM's CPU model: the rule `vm start` and a
 * migration's check share (src/fleet/hostcheck.c).
 */
#ifndef TGVM_HOSTCHECK_H
#define TGVM_HOSTCHECK_H

#include "tgvm/error.h"
#include "tgvm/model.h"
#include "tgvm/vm.h"

/*
 * Can host @dst run @vm? The default check of a migration and of
 * `vm start`: the host's CPU profile (from the inventory that
 * created the host, else this machine's CPU under KVM or TCG's maximum under
 * TCG) must contain every feature the
 * VM's -cpu string presents, and the vendor must match. @opaque unused.
 */
int tgvm_host_check_cpu(const struct vm_config *vm, const struct vm_host *dst, void *opaque,
                        struct tgvm_error *reterr);

/*
 * Host @h's CPU profile as the check sees it: from the inventory that created
 * it, else this machine's CPU when @accel is "kvm", else TCG's maximum (with
 * @vm_vendor, since TCG presents either vendor).
 */
int tgvm_host_profile(const struct vm_host *h, const char *accel, const struct tgvm_modeldb *db,
                      enum tgvm_vendor vm_vendor, struct tgvm_cpu_model *ret,
                      struct tgvm_error *reterr);

#endif
