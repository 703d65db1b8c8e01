/* SPDX-License-Identifier: MIT */
/*
 * Internal interface of the scan analysis: the ELF view (elf.c), the ISA-set
 * to CPUID-feature map (isa-map.c), function discovery and control-flow graphs
 * (cfg.c), the required/guarded classification (guard.c) and the per-file
 * result that report.c aggregates.
 */
#ifndef TGVM_SCAN_INT_H
#define TGVM_SCAN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <Zydis/Zydis.h>

#include "tgvm/cpu.h"
#include "tgvm/error.h"
#include "tgvm/scan.h"
#include "util/util.h"

/* Bounds on what an ELF file may ask of us. */
#define SCAN_ELF_SECTIONS_MAX 65536
#define SCAN_ELF_SEGMENTS_MAX 4096
#define SCAN_ELF_SYMBOLS_MAX  (4u << 20)
#define SCAN_ELF_RELOCS_MAX   (16u << 20)
#define SCAN_ELF_FDES_MAX     (4u << 20)
#define SCAN_ELF_NEEDED_MAX   1024
#define SCAN_FUNC_INSNS_MAX   (1u << 20)         /* instructions kept for one function's graph */
#define SCAN_ICACHE_MAX       ((size_t)64 << 20) /* decoded instructions kept per file */
#define SCAN_EVIDENCE_PER_FILE                                                                     \
	6 /* findings kept per feature and class in a file,
					one per function */

/* qsort() that accepts an empty (NULL) array. */
static inline void scan_sort(void *v, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	if (n > 1)
		qsort(v, n, size, cmp);
}

/* ---- isa-map.c ---- */

#define SCAN_INSN_FEATURES_MAX 4
/*
 * Features @insn needs, written to @ret (up to SCAN_INSN_FEATURES_MAX); returns
 * their number. Covers every Zydis ISA set plus the per-instruction rules
 * (EVEX vector length, mnemonics whose set is too coarse).
 */
int scan_isa_features(const ZydisDecodedInstruction *insn, enum tgvm_feature *ret);
/* For tests: is @set mapped (possibly to nothing, deliberately)? Its features. */
bool scan_isa_set_mapped(ZydisISASet set);
int scan_isa_set_features(ZydisISASet set, enum tgvm_feature *ret);

/* ---- elf.c ---- */

struct scan_sec {
	uint64_t addr, size, off;
	uint64_t flags;
	uint32_t type;
	const char *name;
	uint64_t align; /* sh_addralign while the table is checked */
};

struct scan_sym {
	uint64_t addr, size;
	const char *name;
	uint8_t type; /* STT_* */
	uint8_t bind;
	uint8_t vis;
	bool dyn; /* from .dynsym */
};

struct scan_gotsym { /* a GOT slot (or any relocated word) naming a symbol */
	uint64_t slot;
	const char *name;
};

struct scan_range {
	uint64_t start, end;
};

/* A reference from code to a function start: a call, jump or lea. */
struct scan_ref {
	uint64_t to;
	uint64_t site;
	uint64_t from; /* start of the function holding the site */
	bool lea;      /* address taken, not called or jumped to */
};

struct scan_elf {
	const uint8_t *data;
	size_t size;
	void *elf; /* Elf * */
	uint16_t type;
	uint64_t entry;
	bool has_interp, has_dynamic;
	struct scan_sec *secs; /* allocated sections */
	size_t nsecs;
	struct scan_sec *code; /* the executable PROGBITS ones among them, in order */
	size_t ncode;
	struct scan_sym *syms; /* FUNC, IFUNC, OBJECT and NOTYPE symbols, sorted by address */
	size_t nsyms;
	uint64_t *irel; /* resolver addresses (IRELATIVE addends, IFUNC symbols), sorted */
	size_t nirel;
	struct scan_range *fdes; /* from .eh_frame and .debug_frame, sorted */
	size_t nfdes;
	uint64_t *entries; /* entry point, DT_INIT/FINI, init/fini arrays */
	size_t nentries;
	uint64_t *dataref; /* code addresses stored in data (relocations, absolute words), sorted */
	size_t ndataref;
	struct scan_ref *dslots; /* the same as (code address .to, data slot .site), sorted */
	size_t ndslots;
	struct scan_ref *dptrs; /* data addresses stored in data: (.to, slot .site), sorted */
	size_t ndptrs;
	struct scan_gotsym *gotsyms; /* sorted by slot */
	size_t ngotsyms;
	struct tgvm_strv needed;
	struct tgvm_strv imports; /* undefined dynamic symbols */
	bool has_soname;
	int isa_needed; /* highest psABI level in GNU_PROPERTY_X86_ISA_1_NEEDED, 0 none */
	/* Read from the program headers alone (PT_LOAD, PT_DYNAMIC,
	 * PT_GNU_EH_FRAME): the section headers were missing or did not
	 * describe what the loader maps, for the reason in @why. */
	bool from_segments;
	char why[96];
};

/* Parse @data (which must stay mapped). Non-ELF: -ENOEXEC; other machine: -EXDEV. */
int scan_elf_open(const uint8_t *data, size_t size, struct scan_elf *ret,
                  struct tgvm_error *reterr);
void scan_elf_release(struct scan_elf *e);
/* Executable bytes at @addr: pointer and bytes left in that section, or NULL. */
const uint8_t *scan_elf_code(const struct scan_elf *e, uint64_t addr, size_t *ret_avail);
const struct scan_sec *scan_elf_section_at(const struct scan_elf *e, uint64_t addr);
/* Symbol containing @addr, else the nearest function symbol below it (or NULL). */
const struct scan_sym *scan_elf_symbol_near(const struct scan_elf *e, uint64_t addr);
/* Symbol whose [st_value, st_value + st_size) holds @addr (or NULL). */
const struct scan_sym *scan_elf_symbol_containing(const struct scan_elf *e, uint64_t addr);
const struct scan_sym *scan_elf_symbol_at(const struct scan_elf *e, uint64_t addr);
const struct scan_sym *scan_elf_symbol_named(const struct scan_elf *e, const char *name);
const char *scan_elf_gotsym(const struct scan_elf *e, uint64_t slot);
bool scan_u64_sorted_has(const uint64_t *v, size_t n, uint64_t x);

/* ---- cfg.c ---- */

enum scan_insn_kind {
	SCAN_I_PLAIN,
	SCAN_I_JCC,
	SCAN_I_JMP,     /* direct unconditional */
	SCAN_I_JMP_IND, /* indirect unconditional */
	SCAN_I_CALL,    /* direct */
	SCAN_I_CALL_IND,
	SCAN_I_RET,
	SCAN_I_STOP, /* ud2, hlt, int3: no fall-through */
};

struct scan_insn {
	uint64_t addr;
	uint64_t target; /* branch target, rip-relative memory address, or 0 */
	uint8_t len;
	uint8_t kind;
	uint8_t nfeat;
	uint8_t ripmem : 1; /* target is a rip-relative memory operand (or lea) */
	uint8_t is_lea : 1;
	uint8_t cpuid : 1;
	uint8_t nop : 1;   /* padding: nop of any length */
	uint8_t fsmem : 1; /* a memory operand with an fs segment */
	uint16_t feat[SCAN_INSN_FEATURES_MAX];
	uint32_t block;
	int32_t disp; /* displacement of a memory operand that is not rip-relative */
};

struct scan_block {
	uint32_t first, n; /* instructions */
	uint32_t succ[2];  /* UINT32_MAX none */
	uint32_t idom;     /* UINT32_MAX for roots */
	uint32_t npred;
	bool ind_succ;        /* ends in an indirect jump: successors are the orphans */
	bool check;           /* ends in a branch on a capability */
	int32_t check_origin; /* index into the function's origins */
	bool select;          /* a cmov/setcc in it picks by a capability */
	uint8_t never;        /* its jcc tests a value that is 0 on every way in:
				 1 the branch is never taken, 2 the fall-through is never */
	uint8_t never_edge;   /* that edge: k + 1 for succ[k], 0 none */
	bool guarded;         /* strictly dominated by a check block */
	int32_t guard_block;  /* the dominating check block */
};

struct scan_func {
	uint64_t start, end; /* end = 0: extent unknown, found by following control flow */
	uint32_t flags;
	int32_t guard_kind; /* enum scan_guard_kind when guarded as a whole */
	uint64_t guard_addr;
	uint64_t guard_from;        /* site the guard was inherited from (SCAN_G_CALLER) */
	uint8_t cap_return;         /* returns a capability: 1 value, 2 pointer */
	uint32_t nuses;             /* uses of features that need classifying */
	struct scan_range *gblocks; /* guarded address ranges, once computed */
	uint64_t *gchecks;          /* the check guarding each range, shifted left by one;
					bit 0 set: the range only selects addresses (a lea
					before the check) */
	uint32_t ngblocks;
	uint32_t visit_q; /* the guard search that marked it VISITING */
	uint64_t disps;   /* 64-bit filter of its memory displacements (see scan_disp_bit) */
	struct scan_insn *icache; /* its decoded instructions, kept in the guard phase */
	uint32_t nicache;
	uint32_t entry_val;  /* registers holding a capability on every way in */
	uint32_t entry_stk;  /* stack arguments (bit i: entry rsp+8*(i+1)) likewise */
	uint32_t entry_zero; /* registers (bits 0-15) and stack arguments (bit 16+i) every
				caller passes as 0 */
	uint16_t clobbers;   /* caller-saved registers a call to it may change (SCAN_FN_CLOBSET) */
};

#define SCAN_FN_DECODED   (1u << 0)
#define SCAN_FN_ENTRY     (1u << 1) /* reachable from outside: exported, entry, data ref */
#define SCAN_FN_CPUID     (1u << 2) /* runs cpuid/xgetbv */
#define SCAN_FN_DETECTOR  (1u << 3) /* cpuid function or calls one */
#define SCAN_FN_GUARDED   (1u << 4)
#define SCAN_FN_VISITING  (1u << 5)
#define SCAN_FN_RESOLVED  (1u << 6) /* guard question answered */
#define SCAN_FN_SUMMARY   (1u << 7) /* cap_return computed */
#define SCAN_FN_USES      (1u << 8) /* has uses needing classification */
#define SCAN_FN_RESOLVER  (1u << 9)
#define SCAN_FN_DATAREF   (1u << 10) /* its address is stored in data */
#define SCAN_FN_ENTRYSET  (1u << 11) /* entry_val computed */
#define SCAN_FN_ENTRYBUSY (1u << 12) /* entry_val being computed */
#define SCAN_FN_LIVE      (1u << 13) /* reachable from outside (else dead code) */
#define SCAN_FN_ENTRYPROV (1u << 14) /* entry_val computed, cut short somewhere */
#define SCAN_FN_GPARTIAL  (1u << 15) /* gblocks computed without callers' state */
#define SCAN_FN_MAYCAP    (1u << 16) /* may return a capability (see may_cap) */
#define SCAN_FN_CAPBASE   (1u << 17) /* runs cpuid or rdssp, or reads fs */
#define SCAN_FN_EXPORTED  (1u << 18) /* a dynamic symbol names it (also sets ENTRY) */
#define SCAN_FN_CLOBSET   (1u << 19) /* clobbers computed */
#define SCAN_FN_CLOBBUSY  (1u << 20) /* clobbers being computed */

/* The bit of a function's displacement filter that @disp sets. */
static inline uint64_t scan_disp_bit(int64_t disp)
{
	return 1ull << (((uint64_t)disp * 0x9E3779B97F4A7C15ull) >> 58);
}

struct scan_graph { /* one function's instructions and blocks; reused buffers */
	struct scan_insn *insns;
	size_t ninsns, cap_insns;
	struct scan_block *blocks;
	size_t nblocks, cap_blocks;
	uint32_t entry; /* block holding the function's first instruction */
	bool doms;      /* blocks' idom computed (scan_cfg_dominators) */
};

enum scan_guard_kind {
	SCAN_G_NONE,
	SCAN_G_IFUNC,
	SCAN_G_CLONE,
	SCAN_G_HWCAPS,
	SCAN_G_CPU_MODEL, /* __builtin_cpu_supports through __cpu_model */
	SCAN_G_CPUID_VAR, /* branch on a value derived from cpuid/xgetbv */
	SCAN_G_CALLER,    /* only called from guarded code */
	SCAN_G__MAX
};
const char *scan_guard_kind_to_string(enum scan_guard_kind k);

/* Per-file analysis state (one thread owns it). */
struct scan_file {
	const char *path;
	struct scan_elf elf;
	ZydisDecoder dec;
	struct scan_func *funcs; /* sorted by start */
	size_t nfuncs, cap_funcs;
	struct scan_ref *refs; /* sorted by .to */
	size_t nrefs, cap_refs;
	struct scan_ref *drefs; /* loads of writable data: .to the address, sorted */
	size_t ndrefs, cap_drefs;
	struct scan_range *caps; /* capability variables: address ranges */
	size_t ncaps, cap_caps;
	struct tgvm_strv cap_names; /* description of each cap range */
	int64_t capfields[16];      /* structure offsets stored from cpuid results */
	size_t ncapfields;
	struct {
		int64_t disp;
		uint32_t mask;
	} capbits[16]; /* flag bits of a structure field set only under a check */
	size_t ncapbits;
	/* A one-bit cpuid flag stored at a small offset (zstd's cctx->bmi2 at 8):
	 * the field counts only where the base register is also used with at
	 * least SCAN_SHAPE_MATCH of the large displacements the storing
	 * function used with its base (see guard.c, shape_match). */
	struct scan_capshape {
		int64_t disp;
		uint64_t store; /* address of a store that set it */
		uint32_t n;
		int64_t other[32]; /* the storing functions' other large displacements */
	} capshapes[4];
	size_t ncapshapes;
	struct scan_graph g;
	int hwcaps_level;               /* from the path: glibc-hwcaps/x86-64-vN */
	uint64_t cur_func;              /* start of the function being classified */
	uint64_t entry_cut;             /* entry states cut short by a cycle or a bound */
	uint32_t guard_qid;             /* guard searches started */
	struct scan_ref *dslot_by_site; /* elf.dslots sorted by slot, built when needed */
	/* What each call site (parallel to refs) hands its callee, computed once
	 * per caller: [0] without the caller's own entry state, [1] with it. */
	struct scan_siteinfo {
		uint32_t got, nz, sgot, snz, kon;
	} (*sinfo)[2];
	uint8_t *sinfo_have; /* bit 0, bit 1: sinfo[i][0], [1] filled */
	/* What calls through code pointers a function takes with lea hand their
	 * targets (per caller, with its own entry state), once computed. */
	struct scan_leainfo {
		uint32_t got, nz, sgot, snz;
		size_t nsites;
		bool escaped, have;
	} * leainfo;
	uint32_t *refs_byfrom; /* indices into refs, sorted by .from */
	bool maycap_ready;     /* SCAN_FN_MAYCAP computed */
	bool icache_on;        /* functions are final: keep decoded instructions */
	size_t icache_bytes;   /* memory they take, at most SCAN_ICACHE_MAX */
	uint64_t entry_work;   /* callers analysed for entry states */
	uint64_t code_bytes, insns;
	struct scan_result *res;
};

int scan_cfg_discover(struct scan_file *sf, struct tgvm_error *reterr);
/* Features every x86-64 Linux guest has: recorded as required, never classified. */
bool scan_feature_trivial(enum tgvm_feature f);
/* Decode function @fi into sf->g with blocks (dominators on demand). */
int scan_cfg_build(struct scan_file *sf, size_t fi);
/* Fill the blocks' idom of @g, once per build. -ENOMEM. */
int scan_cfg_dominators(struct scan_graph *g);
/* Index of the instruction at @addr in @g (sorted by address), or -1. */
long scan_cfg_insn_find(const struct scan_graph *g, uint64_t addr);
int scan_func_index(const struct scan_file *sf, uint64_t addr); /* containing function or -1 */
int scan_func_at(const struct scan_file *sf, uint64_t addr);    /* starting exactly there or -1 */
int scan_decode_one(const struct scan_file *sf, uint64_t addr, ZydisDecodedInstruction *insn,
                    ZydisDecodedOperand *ops);

/* ---- guard.c ---- */

int scan_guard_classify(struct scan_file *sf, struct tgvm_error *reterr);
bool scan_is_cap_addr(const struct scan_file *sf, uint64_t addr, size_t *ret_idx);

/* ---- report.c: the result of one file ---- */

/* UNKNOWN: a use the analysis cannot place (say why in the finding's detail):
 * reported apart, neither required nor guarded. */
enum scan_class { SCAN_C_REQUIRED, SCAN_C_GUARDED, SCAN_C_UNKNOWN, SCAN_C__MAX };

struct scan_finding {
	uint16_t feature;
	uint8_t cls;
	uint8_t guard_kind;
	uint64_t addr;
	uint64_t guard_addr;
	uint64_t func;
	char *symbol; /* the symbol holding it, or NULL */
	char *near;   /* else the nearest one before it, "name+0x49", or NULL */
	char *insn;
	char *detail; /* reason (required) or guard description (guarded) */
};

struct scan_cond {
	struct tgvm_featureset features;
	bool always;
	uint32_t first_name, n_names; /* in cond_names */
};

struct scan_result {
	char *path;
	int status; /* 0 analysed, -ENOEXEC not ELF, -EXDEV other machine, else error */
	char *error;
	bool program; /* an executable (ET_EXEC, or PIE with an interpreter or entry) */
	bool is_static;
	struct tgvm_strv needed;
	struct tgvm_strv imports;
	/* Required uses, by the way in: always (entry point, constructor, address
	 * stored in data, code nothing visibly calls) or only when a program calls
	 * one of the exported functions named (a library's API). */
	struct scan_cond *conds;
	size_t nconds;
	struct tgvm_strv cond_names;
	struct tgvm_featureset req, grd, unk;
	uint32_t count[SCAN_C__MAX][TGVM_F__MAX];
	struct scan_finding *findings;
	size_t nfindings, cap_findings;
	uint64_t code_bytes, insns, size;
	int isa_needed, hwcaps_level;
	/* Read from the program headers alone, and why ("" when the
	 * section headers were used). */
	char segments[96];
	bool linked;   /* loaded by some program of the input */
	bool hardlink; /* another name of a file analysed under an earlier name */
};

void scan_result_free(struct scan_result *r);
/* Deep copy of @src into @dst under the name @path (copied). -ENOMEM, with
 * @dst left empty. */
int scan_result_copy(struct scan_result *dst, const struct scan_result *src, const char *path);
/* 2..4 when @path lies in glibc-hwcaps/x86-64-vN/, else 0: the one thing a
 * file's analysis takes from its name. */
int scan_hwcaps_level_of(const char *path);
/* Record that the required features @fs are reached as @always/@names say. */
int scan_result_cond(struct scan_result *r, const struct tgvm_featureset *fs, bool always,
                     const struct tgvm_strv *names);

/* ---- scan.c: the whole report ---- */

struct scan_error {
	char *path;
	char *msg;
};

struct tgvm_scan_report {
	struct tgvm_strv inputs;
	struct scan_result *results; /* every regular file looked at */
	size_t nresults, cap_results;
	size_t *result_input; /* index into inputs */
	struct tgvm_scan_file *files;
	size_t nfiles;
	struct tgvm_scan_program *progs;
	struct tgvm_strv *prog_libs, *prog_missing;
	size_t nprogs;
	struct tgvm_scan_evidence *ev; /* sorted by feature, then class */
	size_t nev;
	size_t ev_start[TGVM_F__MAX + 1];
	struct scan_error *errors;
	size_t nerrors;
	struct tgvm_scan_totals totals;
	struct tgvm_featureset library_only; /* required only by library API no program calls */
};
/* Record one use of @f at @addr; keeps counts, and evidence within bounds. */
int scan_result_use(struct scan_file *sf, enum tgvm_feature f, enum scan_class cls, uint64_t addr,
                    const char *detail, enum scan_guard_kind gk, uint64_t guard_addr);
/* Analyse one ELF image: fills @res (already holding path and size). */
int scan_analyse(const char *path, const uint8_t *data, size_t size, struct scan_result *res);

#endif
