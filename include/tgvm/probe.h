/* SPDX-License-Identifier: MIT */
/*
 * Dynamic discovery of the CPU features a workload needs ("disable and try"):
 * run it under QEMU's TCG with features taken away, which refuses a disabled
 * instruction, and find a minimal set with few runs (adaptive group testing,
 * runs in parallel, SIGILL decoded to jump to the missing feature), each of
 * its features then taken away alone to prove it needed.
 * Two workloads: a program under qemu-x86_64, or a guest (the bundled one by
 * default) under qemu-system-x86_64 running a check command. The result can
 * be cross-checked against a `tgvm scan` report.
 */
#ifndef TGVM_PROBE_H
#define TGVM_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tgvm/cpu.h"
#include "tgvm/error.h"

/* Version of the JSON report ("version" field, "tool": "tgvm-probe"). */
#define TGVM_PROBE_JSON_VERSION 1
#define TGVM_PROBE_JOBS_MAX     64
#define TGVM_PROBE_OUTPUT_MAX   (16u << 20) /* bytes of output compared per run */

enum tgvm_probe_mode { TGVM_PROBE_PROGRAM, TGVM_PROBE_VM, TGVM_PROBE_MODE__MAX };

enum tgvm_probe_outcome {
	TGVM_PROBE_PASS,
	TGVM_PROBE_SIGILL,   /* died of SIGILL (program), rc 132 (guest) */
	TGVM_PROBE_SIGNAL,   /* died of another signal */
	TGVM_PROBE_STATUS,   /* exit status differs from the reference */
	TGVM_PROBE_OUTPUT,   /* output differs from the reference */
	TGVM_PROBE_CHECK,    /* the --check command said no */
	TGVM_PROBE_TIMEOUT,  /* killed after the timeout */
	TGVM_PROBE_NORESULT, /* guest: no TGVM-RESULT line (kernel hang or panic) */
	TGVM_PROBE_OUTCOME__MAX
};
const char *tgvm_probe_outcome_to_string(enum tgvm_probe_outcome o); /* "sigill" */

struct tgvm_probe_progress {
	unsigned runs_done, runs_running;
	unsigned found;
	const char *last; /* words on the run just finished */
};

struct tgvm_probe_options {
	enum tgvm_probe_mode mode;
	const char *cpu_base; /* QEMU model the runs start from; NULL: "max" */
	/* Candidates: when set, exactly these (closed under dependencies, what
	 * the base cannot give is untestable); else every feature of the base
	 * beyond the Linux x86-64 baseline (program mode: user-visible ones). */
	bool have_candidates;
	struct tgvm_featureset candidates;
	/* A `tgvm scan --json` report: cross-checked; its required features are
	 * tried first; in VM mode without candidates it also sets them
	 * (required + guarded). NULL: none. */
	const char *scan_report;
	unsigned timeout_s; /* per run; 0: 60 (program) or 300 (VM) */
	unsigned jobs;      /* parallel runs; 0: online CPUs */
	const char *check;  /* shell command judging a run (its output on stdin,
			       TGVM_PROBE_STATUS in the environment); NULL: compare */
	/* Program mode. */
	char *const *argv;     /* NULL-terminated */
	const char *qemu_user; /* NULL: $TGVM_QEMU_USER or "qemu-x86_64" */
	/* VM mode. */
	const char *kernel, *initrd; /* NULL: the bundled guest */
	/* A raw disk image with an ext2/3/4 file system (whole disk or an
	 * MBR/GPT partition): attached as virtio-blk with snapshot=on (never
	 * written), mounted by the guest's init, @run runs chrooted in it.
	 * NULL: none. */
	const char *disk;
	const char *run;         /* command run in the guest (required) */
	unsigned mem_mib;        /* 0: 128 */
	const char *qemu_system; /* NULL: $TGVM_QEMU or "qemu-system-x86_64" */
	/* Called after each run, from a worker thread with the probe's lock held
	 * (calls never overlap); may be NULL. */
	void (*progress)(const struct tgvm_probe_progress *p, void *ud);
	void *progress_ud;
};

/* One run of the workload. */
struct tgvm_probe_run_info {
	const char *phase;               /* "reference", "search", "minimal", "verify" */
	struct tgvm_featureset removed;  /* candidates taken away (closure included) */
	enum tgvm_probe_outcome outcome; /* PASS or why it failed */
	int status;                      /* program: exit status or 128+signal; VM: guest rc */
	int sigill_feature;              /* decoded from the faulting instruction, -1 none */
	uint64_t sigill_addr;
	bool hinted; /* a failure whose SIGILL named a feature taken away: the search jumped */
	int alone;   /* "minimal": the one feature of the found set taken away; else -1 */
	char detail[256];
	char fault[256]; /* VM: the SIGILL the guest kernel reported, decoded ("" none) */
	uint64_t ns;
};

struct tgvm_probe_result {
	enum tgvm_probe_mode mode;
	char cpu_base[64];
	char workload[512];                /* the command, or the guest command */
	char disk[4096];                   /* VM: the disk image given, "" none */
	struct tgvm_featureset reference;  /* what the reference run had */
	struct tgvm_featureset fixed;      /* present in every run, never tested */
	struct tgvm_featureset candidates; /* tested */
	struct tgvm_featureset untestable; /* wanted but TCG cannot present them */
	struct tgvm_featureset required;   /* proven + implied (or the search's set, !minimal) */
	bool verified;                     /* the run with exactly fixed+required passed */
	/* Each feature of the search's set taken away alone, one run each: */
	struct tgvm_featureset proven;  /* that run failed: needed */
	struct tgvm_featureset implied; /* it passed; a proven feature needs it architecturally */
	struct tgvm_featureset dropped; /* it passed and nothing proven needs it: not required */
	bool minimal;                   /* verified, and every required feature proven or implied */
	bool reference_ok;              /* the reference run ran to the end */
	/* Cross-check with a scan report (have_scan). */
	bool have_scan;
	struct tgvm_featureset scan_required, scan_guarded;
	struct tgvm_featureset false_positive;  /* scan: required; runs without it */
	struct tgvm_featureset false_negative;  /* fails without it; scan: guarded or absent */
	struct tgvm_featureset scan_untestable; /* scan: required; TCG cannot tell */
	unsigned runs;                          /* every run, reference and verification included */
	unsigned search_runs;                   /* the group tests alone */
	unsigned minimal_runs;                  /* one feature taken away alone, each */
	unsigned hinted; /* failures whose SIGILL named the feature (runs with hinted set) */
	uint64_t wall_ns;
	size_t nruns;
	struct tgvm_probe_run_info *run; /* in the order they finished */
};

/*
 * Probe the workload of @opt. Fills *ret (free with tgvm_probe_result_free)
 * when the search ran to its end, even when the reference run failed (then
 * reference_ok is false and nothing was searched: see run[0]). Errors:
 * -ENOENT (QEMU, the program, the guest or the command in the disk image
 * missing), -EINVAL (bad options, unreadable scan report, a disk image
 * without an ext2/3/4 file system or one the guest cannot mount), the
 * disk image's open error (-EACCES, -ENOTSUP for qcow2), -ENOMEM. Cost: search runs ≈ k·log2(n/k) + 2k for k
 * needed among n candidates (at most log2(n+1) + 2 more without SIGILL hints,
 * one at a time, as measured; see tgvm-probe(1)), @jobs at a time; then one
 * run per feature found, and one or two verification runs.
 */
int tgvm_probe_run(const struct tgvm_probe_options *opt, struct tgvm_probe_result **ret,
                   struct tgvm_error *reterr);
void tgvm_probe_result_free(struct tgvm_probe_result *r); /* accepts NULL */

/*
 * The result as JSON ("tool": "tgvm-probe"; fields in tgvm-probe(1)); the
 * "required" list is what `tgvm model --report` reads. Caller frees *ret_json.
 */
int tgvm_probe_result_json(const struct tgvm_probe_result *r, char **ret_json,
                           struct tgvm_error *reterr);

#endif
