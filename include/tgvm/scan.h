/* SPDX-License-Identifier: MIT */
/*
 * Static discovery of the CPU features a guest's software needs. A scan reads
 * files, directory trees, initramfs archives and ext4 images, decodes the
 * x86-64 code of every ELF file in them and tells, per feature, whether it is
 * required (reachable without a CPU check) or only guarded (used after one),
 * per program with its libraries and for the whole input, with evidence.
 */
#ifndef TGVM_SCAN_H
#define TGVM_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tgvm/cpu.h"
#include "tgvm/error.h"

/* Version of the JSON report ("version" field); bumped on incompatible changes. */
#define TGVM_SCAN_JSON_VERSION 1

struct tgvm_scan_progress {
	uint64_t files_done, files_total;
	uint64_t bytes_done, bytes_total;
	const char *current; /* path being finished (valid during the call) */
};

struct tgvm_scan_options {
	unsigned jobs;    /* worker threads; 0 = one per online CPU */
	int hwcaps_level; /* 0: resolve libraries to their baseline copies; 2..4: prefer
			     glibc-hwcaps/x86-64-vN copies */
	/* Called from the calling thread between files; may be NULL. */
	void (*progress)(const struct tgvm_scan_progress *p, void *ud);
	void *progress_ud;
};

/* UNKNOWN: the scan could not tell whether the use can run without a CPU
 * check (the evidence's detail says why); neither required nor guarded. */
enum tgvm_scan_class {
	TGVM_SCAN_REQUIRED,
	TGVM_SCAN_GUARDED,
	TGVM_SCAN_UNKNOWN,
	TGVM_SCAN_CLASS__MAX
};
const char *tgvm_scan_class_to_string(enum tgvm_scan_class c); /* "required" */

/* One use of a feature, as found. Strings live as long as the report. */
struct tgvm_scan_evidence {
	enum tgvm_feature feature;
	enum tgvm_scan_class cls;
	const char *file;       /* path inside the input ("/usr/lib/x86_64-linux-gnu/libc.so.6") */
	const char *symbol;     /* the symbol whose [st_value, st_value + st_size) holds it */
	const char *near;       /* else the nearest symbol before it with the offset,
				"name+0x49"; both NULL: no symbol before it */
	uint64_t address;       /* virtual address of the instruction */
	const char *insn;       /* "vpaddd ymm0, ymm1, ymm2" */
	const char *guard;      /* guarded: "ifunc", "target_clones", "glibc-hwcaps",
				"cpu_model", "cpuid", "caller"; required: NULL */
	uint64_t guard_address; /* resolver, or the branch that tests the capability */
	const char *detail;     /* why: the reason it is required, or the guard in words */
};

/* A file that was analysed (an x86-64 ELF executable or shared object). */
struct tgvm_scan_file {
	const char *input; /* the PATH argument it came from */
	const char *path;
	bool program;
	bool is_static;
	int hwcaps_level; /* 2..4 when it sits in glibc-hwcaps/x86-64-vN, else 0 */
	int isa_needed;   /* level from GNU_PROPERTY_X86_ISA_1_NEEDED, 0 none */
	struct tgvm_featureset required, guarded;
	struct tgvm_featureset unknown; /* neither required nor guarded anywhere in the file */
	uint64_t code_bytes, insns;
	/* NULL, or why its section headers were not used and the file was read
	 * the way a loader reads it: PT_LOAD, PT_DYNAMIC, PT_GNU_EH_FRAME. */
	const char *segments;
};

/* A program with the libraries the dynamic loader would give it. */
struct tgvm_scan_program {
	const char *input;
	const char *path;
	const char *const *libraries; /* resolved paths, n_libraries of them */
	size_t n_libraries;
	const char *const *missing; /* DT_NEEDED names not found in the input */
	size_t n_missing;
	struct tgvm_featureset required, guarded; /* program plus libraries */
	enum tgvm_psabi_level psabi;              /* implied by required */
};

struct tgvm_scan_totals {
	struct tgvm_featureset required, guarded; /* guarded excludes required */
	enum tgvm_psabi_level psabi;
	/* Names count each name of a hard-linked file (every name is in the
	 * report); contents (bytes, code_bytes, insns) count each file once. */
	uint64_t files;     /* regular files seen, by name */
	uint64_t elf_files; /* analysed, by name */
	uint64_t programs;
	uint64_t non_elf, non_x86_64, errors;
	uint64_t hardlinks;        /* names of a file already analysed under another name */
	uint64_t segments;         /* analysed files read from their program headers alone */
	uint64_t duplicate_inputs; /* PATH arguments naming a file or tree named before */
	uint64_t code_bytes, insns, bytes;
	uint64_t elapsed_ns;
};

struct tgvm_scan_report;

/*
 * Scan @paths (files, directories, cpio archives, ext4 images) and build a
 * report in *ret (free with tgvm_scan_report_free()). Per-file problems
 * (corrupt ELF, unreadable entry) are counted and listed, not fatal; an input
 * that cannot be opened at all fails the call with -errno and its name in
 * @reterr. Cost: linear in code size; memory bounded by the largest file's
 * functions, files are mapped, not read.
 */
int tgvm_scan_run(const char *const *paths, size_t n_paths, const struct tgvm_scan_options *opts,
                  struct tgvm_scan_report **ret, struct tgvm_error *reterr);
void tgvm_scan_report_free(struct tgvm_scan_report *r); /* accepts NULL */

const struct tgvm_scan_totals *tgvm_scan_report_totals(const struct tgvm_scan_report *r);
size_t tgvm_scan_report_n_files(const struct tgvm_scan_report *r);
const struct tgvm_scan_file *tgvm_scan_report_file(const struct tgvm_scan_report *r, size_t i);
size_t tgvm_scan_report_n_programs(const struct tgvm_scan_report *r);
const struct tgvm_scan_program *tgvm_scan_report_program(const struct tgvm_scan_report *r,
                                                         size_t i);
/* Per-file errors: path and message, for i < n. */
size_t tgvm_scan_report_n_errors(const struct tgvm_scan_report *r);
void tgvm_scan_report_error(const struct tgvm_scan_report *r, size_t i, const char **ret_path,
                            const char **ret_msg);
/*
 * Evidence kept for @f (a few per file and class; every file that uses it is
 * represented). *ret points into the report. Returns the count.
 */
size_t tgvm_scan_report_evidence(const struct tgvm_scan_report *r, enum tgvm_feature f,
                                 const struct tgvm_scan_evidence **ret);

/*
 * The report as JSON (format in tgvm-scan(1)): *ret_json is a NUL-terminated
 * string the caller frees. -ENOMEM.
 */
int tgvm_scan_report_json(const struct tgvm_scan_report *r, char **ret_json,
                          struct tgvm_error *reterr);

/*
 * Read back a JSON report written by `tgvm scan --json` (what `tgvm model
 * --report` and `tgvm probe --scan` consume): the whole-input required and
 * guarded sets and the psABI level. Unknown feature names, a wrong "tool" or
 * a newer "version" fail with -EINVAL and the reason in @reterr.
 */
int tgvm_scan_report_load(const char *path, struct tgvm_featureset *ret_required,
                          struct tgvm_featureset *ret_guarded, enum tgvm_psabi_level *ret_psabi,
                          struct tgvm_error *reterr);

#endif
