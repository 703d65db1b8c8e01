/* SPDX-License-Identifier: MIT */
/*
 * Internal interface of tgvm probe: the group-testing search over abstract
 * items (search.c, knows nothing of CPUs), the two ways of running a workload
 * with features taken away (run-user.c: qemu-x86_64 with a gdb stub to catch
 * SIGILL; run-vm.c: the bundled guest under qemu-system-x86_64), and the
 * driver that ties them to the CPU vocabulary (probe.c).
 */
#ifndef TGVM_PROBE_INT_H
#define TGVM_PROBE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tgvm/cpu.h"
#include "tgvm/error.h"
#include "tgvm/probe.h"

/* ---- search.c: adaptive group testing ---- */

/*
 * Finds the needed items among n candidates with tests of the form "does the
 * workload still pass with this group taken away?". The workload is assumed
 * to need a set N of items and pass exactly when none of N is taken away (a
 * monotone conjunction); under that assumption every item reported found is
 * certified by a failing test that took away no other needed item.
 *
 * Groups are sized like Hwang's generalised binary splitting, with the
 * number of needed items still hidden estimated from the groups tested whole
 * so far (maximum likelihood; nothing found yet: the whole rest is one
 * group). Without hints and one test at a time it takes at most
 * k*log2(n/k) + 2k + log2(n+1) + 2 tests for k needed among n, as measured
 * (tests/unit/test-probe.c; no search not told k keeps k*log2(n/k) + 2k). A failing group is split
 * in halves until one needed item is isolated; a hint (the item a SIGILL
 * named) jumps straight to it: the group minus the hint is tried next.
 * Groups of different lanes are disjoint, so their tests are independent and
 * may run at the same time, in any number.
 */
struct probe_search;

struct probe_test {
	uint32_t id;
	const uint32_t *items; /* the items this test takes away (valid until its result) */
	size_t n;
	const uint32_t *cleared; /* items known not needed, also taken away */
	size_t ncleared;
};

/* New search over @n items (0..n-1); NULL on ENOMEM. Free with probe_search_free(). */
struct probe_search *probe_search_new(size_t n);
void probe_search_free(struct probe_search *s);
/*
 * Try item @item first, on its own (a hint from elsewhere, such as a static
 * scan that says it is required). Call before the first probe_search_next().
 */
void probe_search_suspect(struct probe_search *s, uint32_t item);
/*
 * Declare @item needed without a test of its own (a dependency of an item
 * found needed: taking it away takes that one away too). Only items not yet
 * in a test are taken.
 */
void probe_search_declare(struct probe_search *s, uint32_t item);
/*
 * The next test to run, if one can be chosen now: 1 and *ret filled; 0 when
 * every test that could run is waiting for a result (or the search is done).
 */
int probe_search_next(struct probe_search *s, struct probe_test *ret);
/* Report test @id: @pass, and @hint, an item the failure points at or -1. */
void probe_search_result(struct probe_search *s, uint32_t id, bool pass, int hint);
bool probe_search_done(const struct probe_search *s);
/* Items found needed so far (sorted); count returned. */
size_t probe_search_found(const struct probe_search *s, const uint32_t **ret);
/* Tests issued so far. */
unsigned probe_search_tests(const struct probe_search *s);

/*
 * probe.c: sort the search's set @found by the runs that took each of its
 * features away alone, @fails_alone holding those whose run failed. Proven:
 * its run failed. Implied: its run passed, but a proven feature needs it by
 * the architecture's dependencies (transitively; conventions such as
 * avx2 with bmi1 do not count). Dropped: the rest, whose run passed and which
 * nothing proven needs. The three partition @found.
 */
void probe_classify(const struct tgvm_featureset *found, const struct tgvm_featureset *fails_alone,
                    struct tgvm_featureset *ret_proven, struct tgvm_featureset *ret_implied,
                    struct tgvm_featureset *ret_dropped);

/* ---- run-user.c / run-vm.c: one run of the workload ---- */

struct probe_ctx;

/*
 * What one run saw. @out holds its output (program: stdout; VM: the lines
 * between TGVM-RUN-BEGIN and TGVM-RESULT), owned by the caller of the runner.
 */
struct probe_obs {
	enum tgvm_probe_outcome outcome; /* PASS here means "ran to the end" */
	int status;                      /* program: wait status; VM: the guest's rc */
	bool exited;                     /* program: WIFEXITED; VM: a TGVM-RESULT came */
	char *out;
	size_t out_len;
	bool out_truncated;
	int sigill_feature; /* feature the faulting instruction needs and lacked, or -1 */
	uint64_t sigill_addr;
	char detail[256]; /* the reason in words */
	char fault[256];  /* VM: the decoded SIGILL the kernel reported ("" none) */
};

void probe_obs_release(struct probe_obs *o);

/* Run the program under qemu-x86_64 -cpu @cpu; @present is the set the CPU has. */
int probe_run_user(const struct probe_ctx *ctx, const char *cpu,
                   const struct tgvm_featureset *present, struct probe_obs *ret,
                   struct tgvm_error *reterr);
/*
 * Boot the guest under qemu-system-x86_64 -accel tcg -cpu @cpu (@present the
 * set it has) and run the command. Errors: QEMU cannot run, -EINVAL when the
 * guest's init says it cannot run the command (TGVM-ERROR: a disk image it
 * cannot mount), -ENOMEM.
 */
int probe_run_vm(const struct probe_ctx *ctx, const char *cpu,
                 const struct tgvm_featureset *present, struct probe_obs *ret,
                 struct tgvm_error *reterr);
/*
 * The first SIGILL the guest kernel reported in the serial log @log (@len
 * bytes): init's TGVM-FAULT lines after the result (print-fatal-signals=1:
 * "fatal signal 4.", "RIP: 0033:0x...", "Code: ... <0f> ..."), or an oops for
 * an invalid opcode in the kernel printed on the console. Decodes the bytes
 * from the marked one and sets @o's sigill_feature (the first feature of the
 * instruction that @present lacks, or -1), sigill_addr and fault (words).
 * Returns 1 when a Code: line was found, else 0 (@o untouched).
 */
int probe_vm_fault(const char *log, size_t len, const struct tgvm_featureset *present,
                   struct probe_obs *o);

/*
 * Decode the instruction at @bytes (@len of them, at @addr) and name the
 * first feature it needs that @present lacks (or -1); @ret_text gets it in
 * Intel syntax. Uses the scan module's ISA map.
 */
int probe_decode_fault(const uint8_t *bytes, size_t len, uint64_t addr,
                       const struct tgvm_featureset *present, char *ret_text, size_t text_size);

/*
 * Features qemu-x86_64 -cpu max cannot present on this QEMU (TCG lacks
 * them), measured by asking it for each settable one: QEMU warns for every
 * requested feature TCG cannot give. @qemu is the binary.
 */
int probe_user_unavailable(const char *qemu, const struct tgvm_featureset *ask,
                           struct tgvm_featureset *ret, struct tgvm_error *reterr);

struct probe_ctx {
	const struct tgvm_probe_options *opt;
	const char *tmpdir;
	char *const *argv; /* program mode: the command, argv[0] resolved to a path */
	/* VM mode: kernel, initrd and the -append line. */
	const char *kernel, *initrd;
	char *append;
	const char *disk, *disk_format; /* a user's image attached with snapshot=on, or NULL */
	unsigned timeout_ms;
	unsigned seq; /* socket names; only touched with the driver's lock held */
};

#endif
