/* SPDX-License-Identifier: MIT */
/*
 * nil-migration over a shared memory device (tgvm/memdev.h), built on the
 * migration pipeline of tgvm/migrate.h: decouple (a running VM's RAM moves
 * from host-private memory onto the device, live, on its own host), handoff
 * (only CPU and device state cross to a host that maps the same device;
 * x-ignore-shared) and recouple (RAM back to private memory, live). Each
 * step returns a full migration timeline; its "step" field names it.
 */
#ifndef TGVM_NIL_H
#define TGVM_NIL_H

#include <stdbool.h>
#include <stddef.h>

#include "tgvm/error.h"
#include "tgvm/migrate.h"

enum nil_step { NIL_DECOUPLE, NIL_HANDOFF, NIL_RECOUPLE, NIL_STEP__MAX };
const char *nil_step_to_string(enum nil_step s);

struct nil_opts {
	/*
	 * Handoff only: enable QEMU trace events on both QEMUs for the switch and
	 * store "breakdown" (vCPU stop, device save, transfer, load, start,
	 * announce, in ms) in the timeline. Logging costs a little blackout.
	 */
	bool breakdown;
};

/*
 * Hand VM @name over to host @to: both must map the VM's memory device (else
 * -EPERM naming the device and its hosts, nothing changed); the VM's lease
 * must name its current host (a VM already handed off is refused: -EPERM)
 * and not be held by another handoff (-EBUSY). Then @o's pipeline runs with
 * x-ignore-shared: the source stops, CPU and device state cross, the
 * destination starts from the same memory; the lease moves to @to. If the
 * destination dies before it runs, the VM continues on the source from the
 * same memory. The timeline gains "stream_bytes" (what the source QEMU wrote
 * during the migration, stream and logs), "stop_event_us"/"resume_event_us"
 * and, with @n->breakdown, "breakdown". @n may be NULL.
 */
int migrate_handoff(const char *name, const char *to, const struct migrate_opts *o,
                    const struct nil_opts *n, struct migrate_timeline *ret,
                    struct tgvm_error *reterr);

/*
 * Move VM @name's RAM onto memory device @memdev of its host, live: capacity
 * is reserved first (-ENOSPC when full), then a precopy migration to a QEMU
 * on the same host whose RAM is the device file. On failure the reservation
 * is returned and the VM runs on as before.
 */
int migrate_decouple(const char *name, const char *memdev, const struct migrate_opts *o,
                     struct migrate_timeline *ret, struct tgvm_error *reterr);

/* Move VM @name's RAM from its memory device back to private RAM, live; frees the device space. */
int migrate_recouple(const char *name, const struct migrate_opts *o, struct migrate_timeline *ret,
                     struct tgvm_error *reterr);

/*
 * All three: decouple onto @memdev (NULL: the first device both the VM's host
 * and @to map; skipped when the VM is already on a device), handoff to @to,
 * recouple. ret[i] (initialised here, release each with
 * migrate_timeline_release) gets step i's timeline; *ret_n how many ran.
 * Stops at the first failure.
 */
int migrate_nil(const char *name, const char *to, const char *memdev, const struct migrate_opts *o,
                const struct nil_opts *n, struct migrate_timeline ret[NIL_STEP__MAX], size_t *ret_n,
                struct tgvm_error *reterr);

#endif
