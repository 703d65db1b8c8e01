// SPDX-License-Identifier: MIT
/*
 * Required or guarded: for each use of a feature beyond the x86-64 baseline,
 * find the CPU check that protects it. Whole functions are guarded when an
 * ifunc resolver or a target_clones dispatcher returns them, when their
 * library sits in a glibc-hwcaps directory, or when every caller reaches them
 * only from guarded code. Inside a function, a small forward data-flow over
 * its graph follows values derived from cpuid/xgetbv (directly, through
 * registers and stack slots, through capability variables such as
 * __cpu_model or OPENSSL_ia32cap_P and functions returning them, and into
 * callees as register or stack arguments, several calls deep) into branch
 * conditions; a block that every path reaches through such a branch, on one
 * side of it only, is guarded. Whole-function guards are a search over
 * callers (a group calling each other is guarded when its ways in are).
 * Anything not proven guarded is required, with the reason.
 */
#include <errno.h>
#include <pthread.h>
#include <gelf.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan-int.h"

static const char *const guard_names[SCAN_G__MAX] = {
    [SCAN_G_NONE] = "none",           [SCAN_G_IFUNC] = "ifunc",
    [SCAN_G_CLONE] = "target_clones", [SCAN_G_HWCAPS] = "glibc-hwcaps",
    [SCAN_G_CPU_MODEL] = "cpu_model", [SCAN_G_CPUID_VAR] = "cpuid",
    [SCAN_G_CALLER] = "caller",
};

const char *scan_guard_kind_to_string(enum scan_guard_kind k)
{
	return (unsigned)k < SCAN_G__MAX ? guard_names[k] : "?";
}

/* Variables that hold CPU capabilities, by name (when symbols survive). */
static const char *const cap_var_names[] = {
    "__cpu_model",                               /* libgcc: __builtin_cpu_supports */
    "__cpu_features2",                           /* libgcc */
    "_dl_x86_cpu_features",                      /* glibc (static) */
    "_rtld_global_ro",                           /* glibc: GLRO(dl_x86_cpu_features) */
    "_rtld_local_ro",       "OPENSSL_ia32cap_P", /* OpenSSL */
    "OPENSSL_ia32cap_X",    "x86_64_cpuid_info",
};

/* Functions returning a pointer to capabilities, or a capability word. */
static const char *const cap_ptr_funcs[] = {
    "__x86_get_cpu_features",
    "_dl_x86_get_cpu_features",
    "__get_cpu_features",
    "__x86_get_cpuid_feature_leaf",
};
static const char *const cap_val_funcs[] = {
    "OPENSSL_ia32_cpuid",
    "__builtin_cpu_supports",
};

/* TGVM_TRACE=1 prints the analysis' steps on stderr (for developers). */
static bool trace_on(void)
{
	static atomic_int on = -1;
	int v = atomic_load_explicit(&on, memory_order_relaxed);

	if (v < 0) {
		v = getenv("TGVM_TRACE") != NULL;
		atomic_store_explicit(&on, v, memory_order_relaxed);
	}
	return v;
}

static bool name_in(const char *n, const char *const *list, size_t len)
{
	if (!n)
		return false;
	for (size_t i = 0; i < len; i++) {
		size_t l = strlen(list[i]);

		if (!strncmp(n, list[i], l) && (n[l] == 0 || n[l] == '@'))
			return true;
	}
	return false;
}

bool scan_is_cap_addr(const struct scan_file *sf, uint64_t addr, size_t *ret_idx)
{
	for (size_t i = 0; i < sf->ncaps; i++) /* few entries */
		if (addr >= sf->caps[i].start && addr < sf->caps[i].end) {
			if (ret_idx)
				*ret_idx = i;
			return true;
		}
	return false;
}

/*
 * A symbol's whole object is a capability when one word of it is (a "caps[2]"
 * array, a small flags structure), up to this size. A larger structure (Mesa's
 * util_cpu_caps, 2 KiB) keeps other things beside the flags (a CPU count set
 * from the command line, say), so only the bytes written from cpuid count.
 */
#define CAP_OBJECT_MAX 64

static int add_cap(struct scan_file *sf, uint64_t start, uint64_t end, const char *why)
{
	const struct scan_sym *s = scan_elf_symbol_near(&sf->elf, start);
	int r;

	if (s && s->type == STT_OBJECT && s->size && s->size <= CAP_OBJECT_MAX &&
	    start - s->addr < s->size) {
		start = s->addr;
		end = TGVM_MAX(end, s->addr + s->size);
	}
	for (size_t i = 0; i < sf->ncaps; i++)
		if (start < sf->caps[i].end && end > sf->caps[i].start) {
			sf->caps[i].start = TGVM_MIN(start, sf->caps[i].start);
			sf->caps[i].end = TGVM_MAX(end, sf->caps[i].end);
			return 0;
		}
	if (sf->ncaps == sf->cap_caps) {
		size_t nc = sf->cap_caps ? sf->cap_caps * 2 : 16;
		struct scan_range *nv = realloc(sf->caps, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		sf->caps = nv;
		sf->cap_caps = nc;
	}
	sf->caps[sf->ncaps++] = (struct scan_range){start, end};
	if (s && s->type == STT_OBJECT && start == s->addr)
		r = tgvm_strv_push(&sf->cap_names, s->name);
	else
		r = tgvm_strv_pushf(&sf->cap_names, "%s at 0x%llx", why, (unsigned long long)start);
	return r;
}

/* ---- the data-flow ---- */

#define NREG      16
#define FLAGS_BIT 16
#define NSLOT     12
/* Stack arguments followed into a callee: entry-relative offsets 8, 16, ... */
#define NSTKARG 16
/* How many callers deep a register or stack argument is followed. */
#define ENTRY_DEPTH_MAX 12
/* Callers analysed for entry states in one file, beyond which no more are. */
#define ENTRY_WORK_MAX 20000

/* T_WEAK: read from a large capability structure (glibc's cpu_features sits
 * in _rtld_global_ro beside page sizes and cache thresholds); it becomes a
 * capability (T_VAL) only once a single bit is selected from it. */
enum { T_NONE = 0, T_VAL = 1, T_PTR = 2, T_WEAK = 4 };

/* Origin kinds of a pointer (T_PTR) that are not themselves a capability
 * address: the base of a structure whose capability words lie a little above
 * it (Mesa: lea r13, [util_cpu_caps]; test byte [r13+0x19], 0x20), where each
 * load's displacement decides; and two different such bases met at a join. */
#define ORG_CAP_BASE     11
#define ORG_CAP_BASE_MIX 12
/* How far above a structure's base its first capability word may start. */
#define CAP_BASE_REACH 64

struct origin {
	int kind; /* 0 cpuid, 1 xgetbv, 2 variable, 3 call, ORG_CAP_BASE ... */
	uint64_t addr;
	int cap;          /* index into caps/cap_names for kind 2 */
	const char *name; /* function name for kind 3 */
};

struct tstate {
	uint32_t val;         /* regs + flags carrying a capability value */
	uint32_t ptr;         /* regs holding a pointer to capabilities */
	uint32_t weak;        /* regs holding a value read from a large capability structure */
	uint32_t bigptr;      /* pointers (in ptr) to such a structure */
	uint32_t bitv;        /* capabilities reduced to one bit (flags kept by zstd, ...) */
	uint32_t zero, konst; /* registers known to hold 0, or a nonzero constant */
	uint32_t fp;          /* registers holding a code address taken with lea here */
	uint32_t fmask[NREG]; /* weak values: the bits that carry the capability */
	uint16_t org[NREG + 1];
	/* Stack slots. rsp-based slots are keyed by their offset from the
	 * stack pointer at function entry (sp below), so a push and a later
	 * [rsp+N] meet; rbp-based ones by their displacement. */
	struct {
		int32_t disp;
		uint8_t base; /* 4 rsp, 5 rbp; 0 unused */
		uint8_t t;
		uint8_t k; /* block-local: SLOT_ZERO or SLOT_KONST */
		uint16_t org;
	} slot[NSLOT];
	int32_t sp;     /* rsp minus rsp at entry */
	uint8_t sp_set; /* sp is known on some way in */
	uint8_t zflags; /* the flags come from testing a value known to be 0 (block-local) */
};
#define SLOT_ZERO  1
#define SLOT_KONST 2
#define SLOT_ZARG  3 /* an argument every caller passes as 0 (entry state only) */

/*
 * What the data-flow reads of a decoded instruction, kept once per
 * instruction of the function while its fixpoint runs: a fifth of Zydis's
 * records, so that a large function's instructions stay in cache across the
 * visits. Field names follow ZydisDecodedInstruction/ZydisDecodedOperand;
 * each field is copied from the member of the same name (for an operand, of
 * whichever union member is named, as reading Zydis's own record would), so
 * every read gives what it gave on Zydis's record.
 */
struct ana_insn {
	ZydisMnemonic mnemonic;
	uint8_t length;
	uint8_t operand_count_visible;
	uint16_t operand_width;
	struct {
		ZydisInstructionCategory category;
	} meta;
	const ZydisAccessedFlags *cpu_flags;
	/* Answers that depend on the instruction alone, found once: */
	bool code_lea;     /* a lea of an address in code (fp_update) */
	int32_t callee;    /* direct call: scan_func_at(target) */
	const char *cname; /* direct call: call_target_name(target); indirect through
			      rip: the GOT slot's symbol */
};

struct ana_op {
	uint8_t type; /* ZydisOperandType */
	uint8_t actions;
	uint16_t size;
	struct {
		ZydisRegister value;
	} reg;
	struct {
		ZydisRegister segment, base, index;
		struct {
			int64_t value;
		} disp;
	} mem;
	struct {
		union {
			uint64_t u;
			int64_t s;
		} value;
	} imm;
};

/* Operand records kept for an instruction: its visible ones, and at least
 * two (zeroed) so that a look at the second of a one-operand instruction
 * reads a zero, not its neighbour's. */
#define ANA_OPS_MIN 2

struct ana {
	struct scan_file *sf;
	size_t fi;
	struct tstate *in, *out;
	struct origin *orgs;
	size_t norgs, caporgs;
	struct ana_insn *ins; /* per instruction */
	struct ana_op **ops;  /* per instruction: its operands, in opv */
	struct ana_op *opv;   /* every instruction's operands, in order */
	uint8_t *ok;
	bool nested;                 /* computing a caller's state: no entry state of its own */
	int depth;                   /* callers followed to get here (entry state of a caller) */
	bool no_entry;               /* cheap first pass: no state from callers */
	int8_t rbp_frame;            /* 0 unknown, 1 rbp is a frame pointer, 2 not */
	uint8_t shape_memo[4][NREG]; /* shape_match: 0 unknown, 1 no, 2 yes */
};

/*
 * Capability fields at small offsets (struct scan_capshape). A one-bit value
 * derived from cpuid stored to [reg+OFF] with OFF below CAPFIELD_MIN_DISP
 * says nothing about other structures' fields at OFF (every struct has a
 * field at 8). The storing function's other large displacements through the
 * same register (>= SHAPE_MIN_DISP) stand in for the structure's type: a load
 * of [reg'+OFF] elsewhere is the capability only when that function also uses
 * reg' with at least SHAPE_MATCH of them. Without that evidence the load is
 * an ordinary value, and what it guards stays required.
 */
#define SHAPE_MIN_DISP 0x100
#define SHAPE_MATCH    2

static int reg_index(ZydisRegister r);

/* Does the function in @a use rbp as a frame pointer (mov rbp, rsp)? */
static bool ana_rbp_frame(struct ana *a)
{
	if (!a->rbp_frame) {
		a->rbp_frame = 2;
		for (size_t k = 0; k < a->sf->g.ninsns; k++)
			if (a->ok[k] && a->ins[k].operand_count_visible >= 2 &&
			    a->ops[k][0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
			    a->ops[k][0].reg.value == ZYDIS_REGISTER_RBP &&
			    ((a->ops[k][1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
			      a->ops[k][1].reg.value == ZYDIS_REGISTER_RSP) ||
			     (a->ops[k][1].type == ZYDIS_OPERAND_TYPE_MEMORY &&
			      a->ops[k][1].mem.base == ZYDIS_REGISTER_RSP))) {
				a->rbp_frame = 1;
				break;
			}
	}
	return a->rbp_frame == 1;
}

/* Large displacements (not @skip) used with base register @b in @a's
 * function, or a register copied to or from it ("mov r8, rax"), into @ret
 * (distinct, at most @max); returns their number. */
static uint32_t base_disps(const struct ana *a, int b, int64_t skip, int64_t *ret, uint32_t max)
{
	uint32_t n = 0, regs = 1u << b;

	for (size_t k = 0; k < a->sf->g.ninsns; k++) {
		const struct ana_op *op = a->ops[k];
		int x, y;

		if (a->ok[k] && a->ins[k].mnemonic == ZYDIS_MNEMONIC_MOV &&
		    a->ins[k].operand_count_visible == 2 &&
		    op[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    op[1].type == ZYDIS_OPERAND_TYPE_REGISTER && op[0].size == 64 &&
		    (x = reg_index(op[0].reg.value)) >= 0 &&
		    (y = reg_index(op[1].reg.value)) >= 0 && x != 4 && y != 4 && (x == b || y == b))
			regs |= 1u << x | 1u << y;
	}
	for (size_t k = 0; k < a->sf->g.ninsns && n < max; k++) {
		if (!a->ok[k])
			continue;
		for (int i = 0; i < a->ins[k].operand_count_visible && n < max; i++) {
			const struct ana_op *op = &a->ops[k][i];
			int64_t d = op->mem.disp.value;
			uint32_t j;

			if (op->type != ZYDIS_OPERAND_TYPE_MEMORY || reg_index(op->mem.base) < 0 ||
			    !(regs & (1u << reg_index(op->mem.base))) || d == skip ||
			    (d < SHAPE_MIN_DISP && d > -SHAPE_MIN_DISP))
				continue;
			for (j = 0; j < n && ret[j] != d; j++)
				;
			if (j == n)
				ret[n++] = d;
		}
	}
	return n;
}

/* Is base register @b in @a's function the structure of capshape @ci? */
static bool shape_match(struct ana *a, int b, size_t ci)
{
	const struct scan_capshape *cs = &a->sf->capshapes[ci];

	if (!a->shape_memo[ci][b]) {
		int64_t d[64];
		uint32_t n = base_disps(a, b, cs->disp, d, ARRAY_SIZE(d)), hit = 0;

		for (uint32_t i = 0; i < n; i++)
			for (uint32_t j = 0; j < cs->n; j++)
				hit += d[i] == cs->other[j];
		a->shape_memo[ci][b] = hit >= SHAPE_MATCH ? 2 : 1;
	}
	return a->shape_memo[ci][b] == 2;
}

static uint32_t entry_taint(struct scan_file *sf, size_t fi, int depth, uint32_t *ret_stk,
                            uint32_t *ret_zero);
static int may_cap(struct scan_file *sf);
static bool func_guarded(struct scan_file *sf, size_t fi, int depth);

static int reg_index_slow(ZydisRegister r)
{
	ZydisRegister big = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);

	if (big >= ZYDIS_REGISTER_RAX && big <= ZYDIS_REGISTER_R15)
		return big - ZYDIS_REGISTER_RAX;
	return -1;
}

/* reg_index_slow() of every register, filled once: the transfer function
 * asks it for every operand of every visit. */
static int8_t reg_index_table[ZYDIS_REGISTER_MAX_VALUE + 1];
static pthread_once_t reg_index_once = PTHREAD_ONCE_INIT;

static void reg_index_fill(void)
{
	for (int r = 0; r <= ZYDIS_REGISTER_MAX_VALUE; r++)
		reg_index_table[r] = (int8_t)reg_index_slow((ZydisRegister)r);
}

static atomic_bool reg_index_ready;

static int reg_index(ZydisRegister r)
{
	if ((unsigned)r > ZYDIS_REGISTER_MAX_VALUE)
		return reg_index_slow(r);
	if (!atomic_load_explicit(&reg_index_ready, memory_order_acquire)) {
		pthread_once(&reg_index_once, reg_index_fill);
		atomic_store_explicit(&reg_index_ready, true, memory_order_release);
	}
	return reg_index_table[r];
}

#define CALLER_SAVED  0x0fc7u /* rax rcx rdx rsi rdi r8-r11 */
#define CLOBBER_DEPTH 8

/*
 * The caller-saved registers a direct call to function @fi may change: those
 * its instructions write (hidden operands included: cpuid, syscall, rep movs,
 * mul) and those of the functions it calls or tail-jumps to, transitively.
 * GCC's interprocedural register allocation keeps a value in r9 across a call
 * to a local function that leaves r9 alone (zstd's bmi2 flag). Any doubt (an
 * extent unknown, an indirect call or jump, a call outside the known
 * functions, a cycle, an undecodable byte, a deep chain) answers all of them.
 * Memoised per function; O(its code) once.
 */
static uint16_t func_clobbers(struct scan_file *sf, size_t fi, int depth)
{
	struct scan_func *fn = &sf->funcs[fi];
	uint64_t start = fn->start, end = fn->end;
	uint16_t m = 0;

	if (fn->flags & SCAN_FN_CLOBSET)
		return fn->clobbers;
	if ((fn->flags & SCAN_FN_CLOBBUSY) || depth > CLOBBER_DEPTH || !end || end <= start ||
	    end - start > (1u << 16))
		return CALLER_SAVED;
	fn->flags |= SCAN_FN_CLOBBUSY;
	for (uint64_t pc = start; pc < end && m != CALLER_SAVED;) {
		ZydisDecodedInstruction in;
		ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
		ZydisDecoderContext ctx;
		size_t avail;
		const uint8_t *p = scan_elf_code(&sf->elf, pc, &avail);
		bool rel;
		uint64_t t = 0;

		if (!p ||
		    !ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&sf->dec, &ctx, p, avail, &in)) ||
		    !ZYAN_SUCCESS(
		        ZydisDecoderDecodeOperands(&sf->dec, &ctx, &in, ops, in.operand_count))) {
			m = CALLER_SAVED;
			break;
		}
		for (uint8_t k = 0; k < in.operand_count; k++) {
			int r;

			if (ops[k].type == ZYDIS_OPERAND_TYPE_REGISTER &&
			    (ops[k].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) &&
			    (r = reg_index(ops[k].reg.value)) >= 0)
				m |= (uint16_t)(1u << r) & CALLER_SAVED;
		}
		rel = in.operand_count_visible >= 1 &&
		      ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && ops[0].imm.is_relative;
		if (rel)
			t = pc + in.length + (uint64_t)ops[0].imm.value.s;
		if (in.meta.category == ZYDIS_CATEGORY_CALL ||
		    ((in.meta.category == ZYDIS_CATEGORY_UNCOND_BR ||
		      in.meta.category == ZYDIS_CATEGORY_COND_BR) &&
		     (!rel || t < start || t >= end))) {
			int ci = rel ? scan_func_at(sf, t) : -1;

			if (ci < 0 || (size_t)ci == fi) {
				m = ci < 0 ? CALLER_SAVED : m;
			} else {
				m |= func_clobbers(sf, (size_t)ci, depth + 1);
				fn = &sf->funcs[fi];
			}
		}
		pc += in.length;
	}
	fn = &sf->funcs[fi];
	fn->flags &= ~SCAN_FN_CLOBBUSY;
	/* an answer cut short by a cycle or the depth is not kept */
	if (depth == 0 || m == CALLER_SAVED) {
		fn->clobbers = m;
		fn->flags |= SCAN_FN_CLOBSET;
	}
	return m;
}

static uint16_t new_origin(struct ana *a, int kind, uint64_t addr, int cap, const char *name)
{
	for (size_t i = 0; i < a->norgs; i++)
		if (a->orgs[i].kind == kind && a->orgs[i].addr == addr)
			return (uint16_t)(i + 1);
	if (a->norgs == a->caporgs) {
		size_t nc = a->caporgs ? a->caporgs * 2 : 8;
		struct origin *nv;

		if (nc > 60000)
			return 1;
		nv = realloc(a->orgs, nc * sizeof(*nv));
		if (!nv)
			return a->norgs ? 1 : 0;
		a->orgs = nv;
		a->caporgs = nc;
	}
	a->orgs[a->norgs++] = (struct origin){kind, addr, cap, name};
	return (uint16_t)a->norgs;
}

static const char *call_target_name(const struct scan_file *sf, uint64_t target)
{
	const struct scan_sym *s = scan_elf_symbol_at(&sf->elf, target);
	ZydisDecodedInstruction in;
	uint64_t a = target;

	if (s)
		return s->name;
	/* a PLT stub: [endbr64;] [bnd] jmp [rip+slot] */
	for (int k = 0; k < 2; k++) {
		if (scan_decode_one(sf, a, &in, NULL) < 0)
			return NULL;
		if (in.mnemonic == ZYDIS_MNEMONIC_JMP && (in.attributes & ZYDIS_ATTRIB_HAS_MODRM) &&
		    in.raw.modrm.mod == 0 && in.raw.modrm.rm == 5)
			return scan_elf_gotsym(&sf->elf,
			                       a + in.length + (uint64_t)in.raw.disp.value);
		if (in.mnemonic != ZYDIS_MNEMONIC_ENDBR64)
			return NULL;
		a += in.length;
	}
	return NULL;
}

static uint8_t func_cap_return(struct scan_file *sf, size_t fi);

static int slot_find(const struct tstate *s, uint8_t base, int32_t disp)
{
	for (int i = 0; i < NSLOT; i++)
		if (s->slot[i].base == base && s->slot[i].disp == disp)
			return i;
	return -1;
}

static void slot_set(struct tstate *s, uint8_t base, int32_t disp, uint8_t t, uint16_t org,
                     uint8_t k)
{
	int i = slot_find(s, base, disp);

	if (i < 0 && !t && !k)
		return;
	if (i < 0)
		for (i = 0; i < NSLOT && s->slot[i].base; i++)
			;
	if (i >= NSLOT) { /* full: a constant gives way to a capability */
		if (!t)
			return;
		for (i = 0; i < NSLOT && s->slot[i].t; i++)
			;
		if (i >= NSLOT)
			i = NSLOT - 1;
	}
	s->slot[i].base = t || k ? base : 0;
	s->slot[i].disp = disp;
	s->slot[i].t = t;
	s->slot[i].k = k;
	s->slot[i].org = org;
}

/* The key of a stack slot addressed as [@base + @disp] in state @s. */
static int32_t slot_key(const struct tstate *s, int base, int64_t disp)
{
	return (int32_t)(base == 4 ? disp + s->sp : disp);
}

/* Capability kind read through memory operand @op at instruction @k. */
static int org_kind(const struct ana *a, uint16_t org)
{
	return org >= 1 && org <= a->norgs ? a->orgs[org - 1].kind : -1;
}

/* Is @addr, not a capability itself, the base of a structure whose
 * capability words start at most CAP_BASE_REACH bytes above it? */
static bool cap_base_near(const struct scan_file *sf, uint64_t addr, size_t *ret_idx)
{
	const struct scan_sec *sec = scan_elf_section_at(&sf->elf, addr);

	if (!sec || !(sec->flags & SHF_WRITE))
		return false;
	for (size_t i = 0; i < sf->ncaps; i++)
		if (sf->caps[i].start > addr && sf->caps[i].start - addr <= CAP_BASE_REACH) {
			*ret_idx = i;
			return true;
		}
	return false;
}

static uint8_t mem_taint(struct ana *a, const struct tstate *s, size_t k, const struct ana_op *op,
                         uint16_t *org, uint32_t *fm)
{
	const struct scan_insn *si = &a->sf->g.insns[k];
	const struct ana_insn *in = &a->ins[k];
	size_t ci;

	/* glibc keeps the CET state ld.so derived from CPUID in the thread
	 * control block (tcbhead_t.feature_1 at %fs:0x48); setjmp/longjmp test
	 * it before shadow-stack instructions. */
	if (op->mem.segment == ZYDIS_REGISTER_FS && op->mem.base == ZYDIS_REGISTER_NONE &&
	    op->mem.disp.value == 0x48) {
		*org = new_origin(a, 6, si->addr, -1, NULL);
		return T_VAL;
	}
	if (op->mem.base == ZYDIS_REGISTER_RIP) {
		uint64_t addr = si->addr + in->length + (uint64_t)op->mem.disp.value;
		const char *gs;

		gs = scan_elf_gotsym(&a->sf->elf, addr);
		if (gs && name_in(gs, cap_var_names, ARRAY_SIZE(cap_var_names))) {
			*org = new_origin(a, 2, addr, -1, gs);
			return T_PTR;
		}
		if (scan_is_cap_addr(a->sf, addr, &ci)) {
			*org = new_origin(a, 2, addr, (int)ci, NULL);
			return T_VAL;
		}
		return T_NONE;
	}
	{
		int b = reg_index(op->mem.base);

		if (b < 0)
			return T_NONE;
		if (s->ptr & (1u << b)) {
			int kind = org_kind(a, s->org[b]);

			if (kind == ORG_CAP_BASE) {
				uint64_t x =
				    a->orgs[s->org[b] - 1].addr + (uint64_t)op->mem.disp.value;

				if (op->mem.index != ZYDIS_REGISTER_NONE ||
				    !scan_is_cap_addr(a->sf, x, &ci))
					return T_NONE;
				*org = new_origin(a, 2, x, (int)ci, NULL);
				*fm = ~0u;
				return T_VAL;
			}
			if (kind == ORG_CAP_BASE_MIX)
				return T_NONE;
			*org = s->org[b];
			*fm = ~0u;
			return (s->bigptr & (1u << b)) ? T_WEAK : T_VAL;
		}
		if (b != 4 && b != 5 && op->mem.index == ZYDIS_REGISTER_NONE)
			for (size_t f = 0; f < a->sf->ncapbits; f++)
				if (a->sf->capbits[f].disp == op->mem.disp.value) {
					*org = new_origin(a, 8, (uint64_t)op->mem.disp.value, -1,
					                  NULL);
					*fm = a->sf->capbits[f].mask;
					return T_WEAK;
				}
		if (b != 4 && b != 5 && op->mem.index == ZYDIS_REGISTER_NONE)
			for (size_t f = 0; f < a->sf->ncapfields; f++)
				if (a->sf->capfields[f] == op->mem.disp.value) {
					*org = new_origin(a, 4, (uint64_t)op->mem.disp.value, -1,
					                  NULL);
					return T_VAL;
				}
		if (b != 4 && (b != 5 || !ana_rbp_frame(a)) && op->mem.index == ZYDIS_REGISTER_NONE)
			for (size_t f = 0; f < a->sf->ncapshapes; f++)
				if (a->sf->capshapes[f].disp == op->mem.disp.value &&
				    shape_match(a, b, f)) {
					*org = new_origin(a, 9, a->sf->capshapes[f].store, (int)f,
					                  NULL);
					return T_VAL;
				}
		if ((b == 4 || b == 5) && op->mem.index == ZYDIS_REGISTER_NONE) {
			int i = slot_find(s, (uint8_t)b, slot_key(s, b, op->mem.disp.value));

			if (i >= 0 && s->slot[i].t) {
				*org = s->slot[i].org;
				return s->slot[i].t == (T_PTR | T_WEAK) ? T_PTR : s->slot[i].t;
			}
		}
	}
	return T_NONE;
}

/* The capability kind and constant-ness of register @r in @s. */
static uint8_t reg_kind(const struct tstate *s, int r, uint8_t *k)
{
	uint32_t b = 1u << r;

	*k = (s->zero & b) ? SLOT_ZERO : (s->konst & b) ? SLOT_KONST : 0;
	if (s->val & b)
		return T_VAL;
	if (s->ptr & b)
		return (s->bigptr & b) ? T_PTR | T_WEAK : T_PTR;
	if (s->weak & b)
		return T_WEAK;
	return T_NONE;
}

/*
 * Stack-pointer bookkeeping: push, pop and rsp arithmetic move sp; push
 * stores its operand's kind in the slot it writes, pop loads it. Returns true
 * when instruction @k was handled here.
 */
static bool stack_op(struct ana *a, struct tstate *s, size_t k)
{
	const struct ana_insn *in = &a->ins[k];
	const struct ana_op *ops = a->ops[k];

	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_PUSH: {
		uint8_t t = T_NONE, kk = 0;
		uint16_t org = 0;
		int32_t w = in->operand_width == 16 ? 2 : 8;

		if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    reg_index(ops[0].reg.value) >= 0) {
			int r = reg_index(ops[0].reg.value);

			t = reg_kind(s, r, &kk);
			org = s->org[r];
		} else if (ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			kk = ops[0].imm.value.u ? SLOT_KONST : SLOT_ZERO;
		} else if (ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
			uint32_t fm = 0;

			t = mem_taint(a, s, k, &ops[0], &org, &fm);
			if (t == T_PTR)
				t = T_PTR | T_WEAK;
		}
		s->sp -= w;
		slot_set(s, 4, s->sp, t, org, kk);
		return true;
	}
	case ZYDIS_MNEMONIC_POP:
		if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    reg_index(ops[0].reg.value) >= 0) {
			int r = reg_index(ops[0].reg.value), i = slot_find(s, 4, s->sp);
			uint32_t b = 1u << r;
			uint8_t t = i >= 0 ? s->slot[i].t : 0, kk = i >= 0 ? s->slot[i].k : 0;

			s->val = t == T_VAL ? s->val | b : s->val & ~b;
			s->ptr = t & T_PTR ? s->ptr | b : s->ptr & ~b;
			s->bigptr = t == (T_PTR | T_WEAK) ? s->bigptr | b : s->bigptr & ~b;
			s->weak = t == T_WEAK ? s->weak | b : s->weak & ~b;
			s->fmask[r] = ~0u;
			s->bitv &= ~b;
			s->zero = kk == SLOT_ZERO ? s->zero | b : s->zero & ~b;
			s->konst = kk == SLOT_KONST ? s->konst | b : s->konst & ~b;
			if (t)
				s->org[r] = s->slot[i].org;
		}
		s->sp += in->operand_width == 16 ? 2 : 8;
		return true;
	case ZYDIS_MNEMONIC_ADD:
	case ZYDIS_MNEMONIC_SUB:
		if (in->operand_count_visible >= 2 && ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ops[0].reg.value == ZYDIS_REGISTER_RSP &&
		    ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			int64_t v = (int64_t)ops[1].imm.value.s;

			s->sp += (int32_t)(in->mnemonic == ZYDIS_MNEMONIC_ADD ? v : -v);
			s->val &= ~(1u << FLAGS_BIT);
			return true;
		}
		return false;
	case ZYDIS_MNEMONIC_XCHG: /* clang keeps rbx around cpuid with xchg rbx, rdi */
		if (in->operand_count_visible == 2 && ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER && ops[0].size >= 32 &&
		    reg_index(ops[0].reg.value) >= 0 && reg_index(ops[1].reg.value) >= 0) {
			int x = reg_index(ops[0].reg.value), y = reg_index(ops[1].reg.value);
			uint32_t *sets[] = {&s->val,  &s->ptr,  &s->weak,  &s->bigptr,
			                    &s->bitv, &s->zero, &s->konst, &s->fp};
			uint32_t fm = s->fmask[x];
			uint16_t o = s->org[x];

			for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
				uint32_t bx = (*sets[i] >> x) & 1, by = (*sets[i] >> y) & 1;

				*sets[i] =
				    (*sets[i] & ~((1u << x) | (1u << y))) | (by << x) | (bx << y);
			}
			s->fmask[x] = s->fmask[y];
			s->fmask[y] = fm;
			s->org[x] = s->org[y];
			s->org[y] = o;
			return true;
		}
		return false;
	case ZYDIS_MNEMONIC_LEA:
		if (ops[0].reg.value == ZYDIS_REGISTER_RSP &&
		    ops[1].mem.base == ZYDIS_REGISTER_RSP &&
		    ops[1].mem.index == ZYDIS_REGISTER_NONE) {
			s->sp += (int32_t)ops[1].mem.disp.value;
			return true;
		}
		return false;
	default:
		return false;
	}
}

/* Follow code addresses taken with lea through register moves (see fp_call). */
static void fp_update(struct ana *a, struct tstate *s, size_t k)
{
	const struct scan_insn *si = &a->sf->g.insns[k];
	const struct ana_insn *in = &a->ins[k];
	const struct ana_op *ops = a->ops[k];
	int d;

	if (!a->ok[k]) {
		s->fp = 0;
		return;
	}
	if (si->kind == SCAN_I_CALL || si->kind == SCAN_I_CALL_IND) {
		s->fp &= ~0x0fc7u;
		return;
	}
	if (!in->operand_count_visible || ops[0].type != ZYDIS_OPERAND_TYPE_REGISTER ||
	    !(ops[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) ||
	    (d = reg_index(ops[0].reg.value)) < 0)
		return;
	if (in->code_lea) {
		s->fp |= 1u << d;
		return;
	}
	if ((in->mnemonic == ZYDIS_MNEMONIC_MOV || in->meta.category == ZYDIS_CATEGORY_CMOV) &&
	    in->operand_count_visible >= 2 && ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
	    reg_index(ops[1].reg.value) >= 0 && (s->fp & (1u << reg_index(ops[1].reg.value)))) {
		s->fp |= 1u << d;
		return;
	}
	if (in->meta.category == ZYDIS_CATEGORY_CMOV)
		return; /* may keep what it held */
	s->fp &= ~(1u << d);
}

/* Apply instruction @k to @s. Returns true when it is a conditional branch on a capability. */
static bool transfer(struct ana *a, struct tstate *s, size_t k, uint16_t *check_org)
{
	const struct scan_insn *si = &a->sf->g.insns[k];
	const struct ana_insn *in = &a->ins[k];
	const struct ana_op *ops = a->ops[k];
	uint32_t sval = 0, sptr = 0, swk = 0, sbig = 0, sbit = 0, swkmask = 0;
	uint64_t imm = 0;
	uint16_t sorg = 0;
	bool flags_read, flags_written, bitsel = false;
	int dst = -1;
	bool dst_rw = false, dst_partial = false;

	fp_update(a, s, k);
	if (!a->ok[k]) { /* undecodable: forget everything but the stack pointer */
		int32_t sp = s->sp;
		uint8_t sp_set = s->sp_set;

		memset(s, 0, sizeof(*s));
		s->sp = sp;
		s->sp_set = sp_set;
		return false;
	}
	/* a jcc on flags from testing a known 0 goes one way only */
	if (si->kind == SCAN_I_JCC && s->zflags &&
	    (in->mnemonic == ZYDIS_MNEMONIC_JNZ || in->mnemonic == ZYDIS_MNEMONIC_JZ))
		a->sf->g.blocks[si->block].never = in->mnemonic == ZYDIS_MNEMONIC_JNZ ? 1 : 2;
	if (si->kind == SCAN_I_CALL || si->kind == SCAN_I_CALL_IND) {
		s->zflags = 0;
	} else if (in->cpu_flags && in->cpu_flags->modified) {
		int r0 =
		    in->operand_count_visible >= 2 && ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER
		        ? reg_index(ops[0].reg.value)
		        : -1;

		/* "test r, r", "and r, r", "or r, r", "cmp r, 0" of a 0 */
		s->zflags =
		    r0 >= 0 && (s->zero & (1u << r0)) &&
		    (((in->mnemonic == ZYDIS_MNEMONIC_TEST || in->mnemonic == ZYDIS_MNEMONIC_AND ||
		       in->mnemonic == ZYDIS_MNEMONIC_OR) &&
		      ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		      ops[1].reg.value == ops[0].reg.value) ||
		     (in->mnemonic == ZYDIS_MNEMONIC_CMP &&
		      ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && ops[1].imm.value.u == 0));
	}
	if (si->cpuid) {
		uint16_t o =
		    new_origin(a, in->mnemonic == ZYDIS_MNEMONIC_CPUID ? 0 : 1, si->addr, -1, NULL);
		uint32_t regs =
		    in->mnemonic == ZYDIS_MNEMONIC_CPUID ? 0xf : 0x5; /* rax rcx rdx rbx */

		for (int r = 0; r < 4; r++)
			if (regs & (1u << r)) {
				s->val |= 1u << r;
				s->ptr &= ~(1u << r);
				s->weak &= ~(1u << r);
				s->org[r] = o;
			}
		return false;
	}
	/* rdssp leaves its register unchanged (0) unless shadow stacks are on:
	 * libgcc's unwinder and glibc test its result before incssp */
	if ((in->mnemonic == ZYDIS_MNEMONIC_RDSSPQ || in->mnemonic == ZYDIS_MNEMONIC_RDSSPD) &&
	    ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER && reg_index(ops[0].reg.value) >= 0) {
		int r = reg_index(ops[0].reg.value);

		s->val |= 1u << r;
		s->ptr &= ~(1u << r);
		s->weak &= ~(1u << r);
		s->org[r] = new_origin(a, 7, si->addr, -1, NULL);
		return false;
	}
	if (stack_op(a, s, k))
		return false;
	if (si->kind == SCAN_I_CALL || si->kind == SCAN_I_CALL_IND) {
		uint8_t cr = 0;
		const char *n = NULL;

		if (si->kind == SCAN_I_CALL) {
			int fi = in->callee;

			n = in->cname;
			if (name_in(n, cap_ptr_funcs, ARRAY_SIZE(cap_ptr_funcs)))
				cr = T_PTR;
			else if (name_in(n, cap_val_funcs, ARRAY_SIZE(cap_val_funcs)))
				cr = T_VAL;
			else if (fi >= 0 && (size_t)fi != a->fi)
				cr = func_cap_return(a->sf, (size_t)fi);
		} else if (si->ripmem) {
			n = in->cname;
			if (name_in(n, cap_ptr_funcs, ARRAY_SIZE(cap_ptr_funcs)))
				cr = T_PTR;
			else if (name_in(n, cap_val_funcs, ARRAY_SIZE(cap_val_funcs)))
				cr = T_VAL;
		}
		/* caller-saved registers: rax rcx rdx rsi rdi r8-r11, fewer when the
		 * callee is known to leave some alone */
		uint32_t cl = CALLER_SAVED;

		if (si->kind == SCAN_I_CALL && in->callee >= 0 && (size_t)in->callee != a->fi)
			cl = func_clobbers(a->sf, (size_t)in->callee, 0) | 1u;
		s->val &= ~cl & ~(1u << FLAGS_BIT);
		s->ptr &= ~cl;
		s->weak &= ~cl;
		s->bigptr &= ~cl;
		s->zero &= ~cl;
		s->konst &= ~cl;
		if (cr) {
			uint16_t o = new_origin(a, 3, si->addr, -1, n);

			if (cr == T_VAL) {
				s->val |= 1;
			} else {
				s->ptr |= 1;
				s->bigptr |= 1; /* the getters return all of cpu_features */
			}
			s->org[0] = o;
		}
		return false;
	}
	flags_read = in->cpu_flags && in->cpu_flags->tested;
	flags_written = in->cpu_flags && in->cpu_flags->modified;
	if ((in->mnemonic == ZYDIS_MNEMONIC_AND || in->mnemonic == ZYDIS_MNEMONIC_TEST ||
	     in->mnemonic == ZYDIS_MNEMONIC_BT || in->mnemonic == ZYDIS_MNEMONIC_CMP) &&
	    in->operand_count_visible >= 2 && ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
		uint64_t v = ops[1].imm.value.u;

		imm = in->mnemonic == ZYDIS_MNEMONIC_BT ? 1ULL << (v & 63) : v;
		bitsel = imm && !(imm & (imm - 1));
	}
	/* sources */
	for (int i = 0; i < in->operand_count_visible; i++) {
		const struct ana_op *op = &ops[i];

		if (op->type == ZYDIS_OPERAND_TYPE_REGISTER) {
			int r = reg_index(op->reg.value);

			if (r < 0)
				continue;
			if (op->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) {
				if (dst < 0) {
					dst = r;
					dst_rw =
					    (op->actions & ZYDIS_OPERAND_ACTION_MASK_READ) != 0;
					dst_partial = op->size < 32;
				}
			}
			if (op->actions & ZYDIS_OPERAND_ACTION_MASK_READ) {
				if (s->val & (1u << r)) {
					sval |= T_VAL;
					sorg = s->org[r];
					sbit |= (s->bitv >> r) & 1;
				}
				if (s->ptr & (1u << r)) {
					sptr |= 1;
					sbig |= (s->bigptr >> r) & 1;
					if (!sorg)
						sorg = s->org[r];
				}
				if (s->weak & (1u << r)) {
					swk |= 1;
					swkmask |= s->fmask[r];
					if (!sorg)
						sorg = s->org[r];
				}
			}
		} else if (op->type == ZYDIS_OPERAND_TYPE_MEMORY) {
			if (in->mnemonic == ZYDIS_MNEMONIC_LEA) {
				int b = reg_index(op->mem.base);

				if (op->mem.base == ZYDIS_REGISTER_RIP) {
					uint64_t addr =
					    si->addr + in->length + (uint64_t)op->mem.disp.value;
					size_t ci;

					if (scan_is_cap_addr(a->sf, addr, &ci)) {
						sptr = 1;
						sorg = new_origin(a, 2, addr, (int)ci, NULL);
					} else if (cap_base_near(a->sf, addr, &ci)) {
						sptr = 1;
						sorg = new_origin(a, ORG_CAP_BASE, addr, (int)ci,
						                  NULL);
					}
				} else if (b >= 0 && (s->ptr & (1u << b))) {
					int kind = org_kind(a, s->org[b]);

					if (kind == ORG_CAP_BASE &&
					    op->mem.index == ZYDIS_REGISTER_NONE) {
						sptr = 1;
						sorg = new_origin(a, ORG_CAP_BASE,
						                  a->orgs[s->org[b] - 1].addr +
						                      (uint64_t)op->mem.disp.value,
						                  a->orgs[s->org[b] - 1].cap, NULL);
					} else if (kind != ORG_CAP_BASE) {
						sptr = 1;
						sbig |= (s->bigptr >> b) & 1;
						sorg = s->org[b];
					}
				} else {
					/* "lea r14d, [rcx+rdx*2]": flag words built
					 * from a capability bit */
					int x = reg_index(op->mem.index);

					if (b >= 0 && (s->val & (1u << b)))
						sval |= T_VAL, sorg = s->org[b];
					else if (x >= 0 && (s->val & (1u << x)))
						sval |= T_VAL, sorg = s->org[x];
				}
				continue;
			}
			if (op->actions & ZYDIS_OPERAND_ACTION_MASK_READ) {
				uint16_t o = 0;
				uint32_t fm = 0;
				uint8_t t = mem_taint(a, s, k, op, &o, &fm);

				if (t == T_WEAK)
					swkmask |= fm;

				if (t == T_VAL)
					sval |= T_VAL;
				if (t == T_WEAK)
					swk |= 1;
				if (t == T_PTR) {
					sptr |= 1;
					sbig |= 1;
				}
				if (t && !sorg)
					sorg = o;
			}
			if (op->actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) {
				int b = reg_index(op->mem.base);
				int sr = -1;

				for (int j = 0; j < in->operand_count_visible; j++)
					if (j != i && ops[j].type == ZYDIS_OPERAND_TYPE_REGISTER &&
					    (ops[j].actions & ZYDIS_OPERAND_ACTION_MASK_READ))
						sr = reg_index(ops[j].reg.value);
				if ((b == 4 || b == 5) && op->mem.index == ZYDIS_REGISTER_NONE) {
					uint8_t t = T_NONE;

					if (sr >= 0 && (s->val & (1u << sr)))
						t = T_VAL;
					else if (sr >= 0 && (s->ptr & (1u << sr)))
						t = (s->bigptr & (1u << sr)) ? T_PTR | T_WEAK
						                             : T_PTR;
					else if (sr >= 0 && (s->weak & (1u << sr)))
						t = T_WEAK;
					uint8_t kk = 0;

					if (sr >= 0 && (s->zero & (1u << sr)))
						kk = SLOT_ZERO;
					else if (sr >= 0 && (s->konst & (1u << sr)))
						kk = SLOT_KONST;
					else if (sr < 0 && i == 0 &&
					         in->mnemonic == ZYDIS_MNEMONIC_MOV &&
					         in->operand_count_visible >= 2 &&
					         ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
						kk = ops[1].imm.value.u ? SLOT_KONST : SLOT_ZERO;
					slot_set(s, (uint8_t)b, slot_key(s, b, op->mem.disp.value),
					         t, sr >= 0 ? s->org[sr] : 0, kk);
				}
			}
		}
	}
	if (flags_read && (s->val & (1u << FLAGS_BIT))) {
		if (si->kind == SCAN_I_JCC) {
			*check_org = s->org[NREG];
			return true;
		}
		a->sf->g.blocks[si->block].select = true;
		sval |= T_VAL;
		if (!sorg)
			sorg = s->org[NREG];
	}
	/* selecting one bit of a weak value makes it a capability (for a flag
	 * word, one of the bits set under the check) */
	if (swk && bitsel && (imm & swkmask))
		sval |= T_VAL;
	if (dst >= 0) {
		bool zero =
		    (in->mnemonic == ZYDIS_MNEMONIC_XOR || in->mnemonic == ZYDIS_MNEMONIC_SUB) &&
		    in->operand_count_visible >= 2 && ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ops[0].reg.value == ops[1].reg.value;
		bool keep_ptr =
		    in->mnemonic == ZYDIS_MNEMONIC_MOV || in->mnemonic == ZYDIS_MNEMONIC_LEA ||
		    ((in->mnemonic == ZYDIS_MNEMONIC_ADD || in->mnemonic == ZYDIS_MNEMONIC_SUB) &&
		     in->operand_count_visible >= 2 && ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE);
		uint32_t bit = 1u << dst;
		bool v = sval != 0, p = sptr != 0 && keep_ptr, w = swk != 0 && !v;
		bool big = p && sbig;

		if (zero) {
			v = p = w = false;
		} else if (dst_rw || dst_partial) {
			bool own_w = (s->weak & bit) != 0;

			v = v || (s->val & bit) || (own_w && bitsel && (imm & s->fmask[dst]));
			w = !v && (w || own_w);
			if (keep_ptr && (s->ptr & bit)) {
				p = true;
				big = big || (s->bigptr & bit);
			}
		}
		if (flags_written && !zero) {
			bool fv = v;

			s->val = fv ? s->val | (1u << FLAGS_BIT) : s->val & ~(1u << FLAGS_BIT);
			if (fv)
				s->org[NREG] = sorg ? sorg : s->org[dst];
		} else if (flags_written) {
			s->val &= ~(1u << FLAGS_BIT);
		}
		if ((v || w) && !sorg)
			sorg = s->org[dst];
		if (p && !v && org_kind(a, sorg) == ORG_CAP_BASE &&
		    (in->mnemonic == ZYDIS_MNEMONIC_ADD || in->mnemonic == ZYDIS_MNEMONIC_SUB) &&
		    in->operand_count_visible >= 2 && ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			const struct origin *o = &a->orgs[sorg - 1];
			uint64_t n = (uint64_t)ops[1].imm.value.s;
			uint64_t x = in->mnemonic == ZYDIS_MNEMONIC_ADD ? o->addr + n : o->addr - n;

			sorg = new_origin(a, ORG_CAP_BASE, x, o->cap, NULL);
		}
		s->val = v ? s->val | bit : s->val & ~bit;
		s->ptr = p ? s->ptr | bit : s->ptr & ~bit;
		s->bigptr = big ? s->bigptr | bit : s->bigptr & ~bit;
		s->weak = w ? s->weak | bit : s->weak & ~bit;
		if (w)
			s->fmask[dst] =
			    (swkmask ? swkmask : ~0u) &
			    (in->mnemonic == ZYDIS_MNEMONIC_AND && imm ? (uint32_t)imm : ~0u);
		s->zero &= ~bit;
		s->konst &= ~bit;
		if (zero) {
			s->zero |= bit;
		} else if (in->mnemonic == ZYDIS_MNEMONIC_MOV && in->operand_count_visible >= 2 &&
		           ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
			if (ops[1].imm.value.u)
				s->konst |= bit;
			else if (!dst_partial) /* "mov dl, 0" leaves the rest of rdx */
				s->zero |= bit;
		} else if (!v && !p && !w &&
		           (in->mnemonic == ZYDIS_MNEMONIC_MOV ||
		            in->mnemonic == ZYDIS_MNEMONIC_MOVZX) &&
		           in->operand_count_visible >= 2 &&
		           ops[1].type == ZYDIS_OPERAND_TYPE_MEMORY &&
		           ops[1].mem.index == ZYDIS_REGISTER_NONE &&
		           ops[1].mem.segment != ZYDIS_REGISTER_FS &&
		           ops[1].mem.segment != ZYDIS_REGISTER_GS &&
		           (ops[1].mem.base == ZYDIS_REGISTER_RSP ||
		            ops[1].mem.base == ZYDIS_REGISTER_RBP)) {
			/* a stack word known to be 0 (an argument every caller zeroes) */
			int b = reg_index(ops[1].mem.base);
			int q = slot_find(s, (uint8_t)b, slot_key(s, b, ops[1].mem.disp.value));

			if (q >= 0 && s->slot[q].k == SLOT_ZARG && !s->slot[q].t)
				s->zero |= bit;
		}
		{
			bool b1 = v && ((in->mnemonic == ZYDIS_MNEMONIC_AND && bitsel) ||
			                (in->meta.category == ZYDIS_CATEGORY_SETCC) ||
			                ((in->mnemonic == ZYDIS_MNEMONIC_MOV ||
			                  in->mnemonic == ZYDIS_MNEMONIC_MOVZX) &&
			                 sbit));

			s->bitv = b1 ? s->bitv | bit : s->bitv & ~bit;
		}
		if (v || p || w)
			s->org[dst] = sorg;
	} else if (flags_written) {
		bool fv = sval != 0;

		s->val = fv ? s->val | (1u << FLAGS_BIT) : s->val & ~(1u << FLAGS_BIT);
		if (fv)
			s->org[NREG] = sorg;
	}
	return false;
}

/* Two ways into a block give a register or slot different structure bases:
 * which displacement is a capability is no longer known. */
static uint16_t merge_base(struct ana *a, uint16_t dorg, uint16_t sorg)
{
	if (dorg == sorg)
		return dorg;
	if (org_kind(a, dorg) == ORG_CAP_BASE || org_kind(a, sorg) == ORG_CAP_BASE ||
	    org_kind(a, sorg) == ORG_CAP_BASE_MIX)
		return new_origin(a, ORG_CAP_BASE_MIX, 0, -1, NULL);
	return dorg;
}

static void merge(struct ana *a, struct tstate *d, const struct tstate *s)
{
	for (int r = 0; r < NREG; r++)
		if ((d->ptr & s->ptr) & (1u << r))
			d->org[r] = merge_base(a, d->org[r], s->org[r]);
	for (int i = 0; i < NSLOT; i++) {
		int j;

		if (s->slot[i].base && (s->slot[i].t & T_PTR) &&
		    (j = slot_find(d, s->slot[i].base, s->slot[i].disp)) >= 0 &&
		    (d->slot[j].t & T_PTR))
			d->slot[j].org = merge_base(a, d->slot[j].org, s->slot[i].org);
	}
	for (int r = 0; r <= NREG; r++)
		if (((s->val | s->ptr) & (1u << r)) && !((d->val | d->ptr) & (1u << r)))
			d->org[r] = s->org[r];
	d->val |= s->val;
	d->ptr |= s->ptr;
	d->weak |= s->weak;
	d->bigptr |= s->bigptr;
	d->bitv |= s->bitv;
	d->fp |= s->fp;
	for (int r = 0; r < NREG; r++)
		d->fmask[r] |= s->fmask[r];
	/* constants are tracked inside a block only */
	for (int i = 0; i < NSLOT; i++)
		if (s->slot[i].base && s->slot[i].t &&
		    slot_find(d, s->slot[i].base, s->slot[i].disp) < 0)
			slot_set(d, s->slot[i].base, s->slot[i].disp, s->slot[i].t, s->slot[i].org,
			         0);
	/* the first way in that knows the stack pointer names it */
	if (!d->sp_set && s->sp_set) {
		d->sp = s->sp;
		d->sp_set = 1;
	}
}

static void ana_release(struct ana *a)
{
	free(a->in);
	free(a->out);
	free(a->orgs);
	free(a->ins);
	free(a->ops);
	free(a->opv);
	free(a->ok);
}

#define ONE_SIDED_CHECKS 128 /* checks of one function told apart */

/* Block @b ends in a branch that decides: on a capability (either edge may be
 * what guards), or on a 0 (only the edge never taken, never_edge, does). */
#define IS_CHECK(g, b)  ((g)->blocks[b].check || (g)->blocks[b].never_edge)
#define CUT_OK(g, b, k) ((g)->blocks[b].check || (g)->blocks[b].never_edge == (k) + 1)
#define ONE_SIDED_SIGS  1024 /* distinct sets of cut edges tried */
/* Blocks visited refining them, per function, before settling for less. */
#define ONE_SIDED_WORK (4u << 20)

/* A set of check edges: bit 2c+k is edge k of check c. */
#define ESIG_WORDS (2 * ONE_SIDED_CHECKS / 64)
struct esig {
	uint64_t w[ESIG_WORDS];
};

static bool esig_has(const struct esig *e, size_t bit)
{
	return (e->w[bit / 64] >> (bit % 64)) & 1;
}

static int esig_find(const struct esig *sigs, size_t nsig, const struct esig *e)
{
	for (size_t i = 0; i < nsig; i++)
		if (!memcmp(&sigs[i], e, sizeof(*e)))
			return (int)i;
	return -1;
}

/* The number of set @e in @sigs, added when new (*@added); -1 when full. */
static int esig_intern(struct esig *sigs, size_t *nsig, const struct esig *e, bool *added)
{
	int i = esig_find(sigs, *nsig, e);

	*added = i < 0;
	if (i >= 0)
		return i;
	if (*nsig == ONE_SIDED_SIGS)
		return -1;
	sigs[*nsig] = *e;
	return (int)(*nsig)++;
}

/*
 * Blocks reachable from @from without passing block @skip, as a bitset; the
 * check edges in @cut (@cidx maps a block to its check number or -1) are not
 * followed.
 */
static size_t reach_from(const struct scan_graph *g, uint32_t from, uint32_t skip,
                         const struct esig *cut, const int16_t *cidx, uint64_t *set,
                         uint32_t *queue)
{
	size_t nb = g->nblocks, qh = 0, qt = 0;

	if (from == UINT32_MAX || from == skip || (set[from / 64] & (1ull << (from % 64))))
		return 0;
	set[from / 64] |= 1ull << (from % 64);
	queue[qt++] = from;
	while (qh < qt) {
		uint32_t b = queue[qh++];

		for (int k = 0; k < 2; k++) {
			uint32_t t = g->blocks[b].succ[k];

			if (cut && cidx[b] >= 0 && esig_has(cut, 2 * (size_t)cidx[b] + (size_t)k))
				continue;
			if (t != UINT32_MAX && t != skip && !(set[t / 64] & (1ull << (t % 64)))) {
				set[t / 64] |= 1ull << (t % 64);
				queue[qt++] = t;
			}
		}
		if (g->blocks[b].ind_succ)
			for (uint32_t t = 0; t < nb; t++)
				if (t != g->entry && g->blocks[t].npred == 0 && t != skip &&
				    !(set[t / 64] & (1ull << (t % 64)))) {
					set[t / 64] |= 1ull << (t % 64);
					queue[qt++] = t;
				}
	}
	return qt;
}

#define BIT_IN(set, b) (((set)[(b) / 64] >> ((b) % 64)) & 1)

/*
 * Refine "behind a check": block b (not in @open, so every way to it passes
 * a check) stays guarded only if it is unreachable from the entry once the
 * check edges that lead to b on one side only are cut. Code that both sides
 * of a check reach (the join after an if, the loop around it) is set open.
 *
 * "One side only" is decided for all of b's edges together: an edge c->k
 * stays cut when c's other side cannot reach b without itself taking an edge
 * that stays cut. So the fast path of an unrolled loop that tests the same
 * flag before each element (Mesa's half-float packers: test, convert, test,
 * convert, each slow path rejoining at the next test) is behind its checks,
 * while the join after an if, which the other side reaches directly, is not.
 * Starting from every edge that leads to b, edges are dropped until none
 * changes (a greatest fixpoint). Blocks with the same set of edges share
 * each step's searches. Past ONE_SIDED_WORK blocks visited, the blocks not
 * settled yet keep only the edges whose other side cannot reach them with
 * nothing cut (a single step from no cut edges: fewer guards, never a wrong
 * one).
 */
static int one_sided(const struct scan_graph *g, uint8_t *open)
{
	size_t nb = g->nblocks, words = (nb + 63) / 64, nc = 0, nsig = 0;
	uint32_t checks[ONE_SIDED_CHECKS];
	struct esig *sigs = NULL;
	uint64_t *reach = NULL, *reach0 = NULL, *seen = NULL;
	size_t work = 0;
	uint8_t done[ONE_SIDED_SIGS] = {0};
	uint32_t *queue = NULL;
	int16_t *cidx = NULL, *bsig = NULL;
	int r = -ENOMEM;

	for (uint32_t b = 0; b < nb && nc < ONE_SIDED_CHECKS; b++)
		if (IS_CHECK(g, b))
			checks[nc++] = b;
	sigs = calloc(ONE_SIDED_SIGS, sizeof(*sigs));
	reach = calloc(2 * nc * words + 1, sizeof(*reach));
	reach0 = calloc(2 * nc * words + 1, sizeof(*reach0));
	seen = calloc(words + 1, sizeof(*seen));
	queue = malloc((nb ? nb : 1) * sizeof(*queue));
	bsig = malloc((nb ? nb : 1) * sizeof(*bsig));
	cidx = malloc((nb ? nb : 1) * sizeof(*cidx));
	if (!sigs || !reach || !reach0 || !seen || !queue || !bsig || !cidx)
		goto out;
	for (size_t b = 0; b < nb; b++)
		cidx[b] = -1;
	for (size_t c = 0; c < nc; c++)
		cidx[checks[c]] = (int16_t)c;
	/* what each edge leads to, nothing cut */
	for (size_t c = 0; c < nc; c++)
		for (int k = 0; k < 2; k++)
			reach_from(g, g->blocks[checks[c]].succ[k], checks[c], NULL, cidx,
			           reach0 + (2 * c + (size_t)k) * words, queue);
	for (uint32_t b = 0; b < nb; b++) {
		struct esig e = {{0}};
		bool added;
		int si;

		bsig[b] = -1;
		if (open[b])
			continue;
		for (size_t c = 0; c < nc; c++)
			for (int k = 0; k < 2; k++)
				if (CUT_OK(g, checks[c], k) &&
				    BIT_IN(reach0 + (2 * c + (size_t)k) * words, b))
					e.w[(2 * c + (size_t)k) / 64] |=
					    1ull << ((2 * c + (size_t)k) % 64);
		if ((si = esig_intern(sigs, &nsig, &e, &added)) < 0) {
			open[b] = 1; /* too many sets: keep it required */
			continue;
		}
		bsig[b] = (int16_t)si;
	}
	/* drop the edges whose other side reaches b with the rest cut */
	for (bool again = true; again && work < ONE_SIDED_WORK;) {
		again = false;
		for (size_t si = 0; si < nsig && work < ONE_SIDED_WORK; si++) {
			const struct esig sig = sigs[si];

			if (done[si])
				continue;
			done[si] = 1;
			again = true;
			memset(reach, 0, 2 * nc * words * sizeof(*reach));
			for (size_t c = 0; c < nc; c++)
				for (int k = 0; k < 2; k++)
					if (esig_has(&sig, 2 * c + (size_t)k))
						work += reach_from(
						    g, g->blocks[checks[c]].succ[1 - k], checks[c],
						    &sig, cidx, reach + (2 * c + (size_t)k) * words,
						    queue);
			for (uint32_t b = 0; b < nb; b++) {
				struct esig ns = sig;
				bool changed = false, added;
				int sj;

				if (open[b] || bsig[b] != (int16_t)si)
					continue;
				for (size_t c = 0; c < nc; c++)
					for (int k = 0; k < 2; k++) {
						size_t e = 2 * c + (size_t)k;

						if (esig_has(&sig, e) &&
						    BIT_IN(reach + e * words, b)) {
							ns.w[e / 64] &= ~(1ull << (e % 64));
							changed = true;
						}
					}
				if (!changed)
					continue;
				if ((sj = esig_intern(sigs, &nsig, &ns, &added)) < 0) {
					open[b] = 1; /* too many sets: keep it required */
					continue;
				}
				if (!added)
					done[sj] = 0; /* weigh b under its new set */
				bsig[b] = (int16_t)sj;
			}
		}
	}
	/* out of work: the unsettled keep what the other side cannot reach uncut */
	for (uint32_t b = 0; b < nb && work >= ONE_SIDED_WORK; b++) {
		struct esig e;
		bool added;
		int si;

		if (open[b] || bsig[b] < 0 || done[bsig[b]])
			continue;
		e = sigs[bsig[b]];
		for (size_t c = 0; c < nc; c++)
			for (int k = 0; k < 2; k++)
				if (BIT_IN(reach0 + (2 * c + (size_t)(1 - k)) * words, b))
					e.w[(2 * c + (size_t)k) / 64] &=
					    ~(1ull << ((2 * c + (size_t)k) % 64));
		if ((si = esig_intern(sigs, &nsig, &e, &added)) < 0) {
			open[b] = 1;
			continue;
		}
		if (added)
			done[si] = 2; /* settled as it is */
		bsig[b] = (int16_t)si;
	}
	/* one search per set: from the entry, cutting its edges (every edge of
	 * checks beyond ONE_SIDED_CHECKS is kept, which only opens more) */
	for (size_t si = 0; si < nsig; si++) {
		memset(seen, 0, words * sizeof(*seen));
		for (uint32_t b = 0; b < nb; b++)
			if (b == g->entry || (open[b] && g->blocks[b].npred == 0))
				reach_from(g, b, UINT32_MAX, &sigs[si], cidx, seen, queue);
		for (uint32_t b = 0; b < nb; b++)
			if (!open[b] && BIT_IN(seen, b) && bsig[b] == (int16_t)si)
				open[b] = 1;
	}
	r = 0;
out:
	free(sigs);
	free(reach);
	free(reach0);
	free(seen);
	free(queue);
	free(bsig);
	free(cidx);
	return r;
}

/*
 * A block is guarded when every path into it from the function's entry goes
 * through a check block (a branch on a capability): it is not reachable once
 * the checks' outgoing edges are cut. A single dominating check is the common
 * case; glibc's pthread_mutex_trylock reaches its elision call from two
 * different checks. The guard named is the nearest dominating check, else the
 * check whose successors reach the block first.
 */
static int mark_guarded(struct scan_graph *g)
{
	size_t nb = g->nblocks, nind = 0, qh = 0, qt = 0;
	uint32_t *queue = malloc((nb ? nb : 1) * sizeof(*queue));
	int32_t *from = malloc((nb ? nb : 1) * sizeof(*from));
	uint8_t *open = calloc(nb ? nb : 1, 1);

	if (!queue || !from || !open) {
		free(queue);
		free(from);
		free(open);
		return -ENOMEM;
	}
	for (size_t b = 0; b < nb; b++)
		nind += g->blocks[b].ind_succ;
#define ORPHAN(b) ((b) != g->entry && g->blocks[b].npred == 0)
#define VISIT(t, src)                                                                              \
	do {                                                                                       \
		if (!open[t]) {                                                                    \
			open[t] = 1;                                                               \
			from[t] = (src);                                                           \
			queue[qt++] = (t);                                                         \
		}                                                                                  \
	} while (0)
	/* 1: what is reachable without passing a check */
	for (uint32_t b = 0; b < nb; b++)
		if (b == g->entry || (ORPHAN(b) && !nind))
			VISIT(b, -1);
	while (qh < qt) {
		uint32_t b = queue[qh++];

		if (g->blocks[b].check)
			continue;
		for (int k = 0; k < 2; k++)
			if (g->blocks[b].succ[k] != UINT32_MAX && g->blocks[b].never_edge != k + 1)
				VISIT(g->blocks[b].succ[k], -1);
		if (g->blocks[b].ind_succ)
			for (uint32_t t = 0; t < nb; t++)
				if (ORPHAN(t))
					VISIT(t, -1);
	}
	/* 1b: a join after "if (cap) {...}" is reached from both sides of the
	 * check and runs on every CPU: only what one side alone reaches is
	 * guarded */
	if (qt < nb && one_sided(g, open) < 0) {
		free(queue);
		free(from);
		free(open);
		return -ENOMEM;
	}
	/* 2: the rest is guarded; name the check */
	for (size_t b = 0; b < nb && qt < nb; b++)
		if (!open[b]) {
			if (scan_cfg_dominators(g) < 0) {
				free(queue);
				free(from);
				free(open);
				return -ENOMEM;
			}
			break;
		}
	for (size_t b = 0; b < nb; b++) {
		uint32_t d = g->blocks[b].idom;
		size_t steps = 0;

		if (open[b])
			continue;
		g->blocks[b].guarded = true;
		while (d != UINT32_MAX && steps++ < nb) {
			if (IS_CHECK(g, d)) {
				g->blocks[b].guard_block = (int32_t)d;
				break;
			}
			d = g->blocks[d].idom;
		}
	}
	memset(open, 0, nb);
	qh = qt = 0;
	for (uint32_t b = 0; b < nb; b++)
		if (IS_CHECK(g, b))
			for (int k = 0; k < 2; k++)
				if (g->blocks[b].succ[k] != UINT32_MAX && CUT_OK(g, b, k) &&
				    g->blocks[g->blocks[b].succ[k]].guarded)
					VISIT(g->blocks[b].succ[k], (int32_t)b);
	while (qh < qt) {
		uint32_t b = queue[qh++];

		if (g->blocks[b].guard_block < 0)
			g->blocks[b].guard_block = from[b];
		for (int k = 0; k < 2; k++)
			if (g->blocks[b].succ[k] != UINT32_MAX &&
			    g->blocks[g->blocks[b].succ[k]].guarded)
				VISIT(g->blocks[b].succ[k], from[b]);
	}
	for (size_t b = 0; b < nb; b++) /* unreachable from any check: dead, still guarded */
		if (g->blocks[b].guarded && g->blocks[b].guard_block < 0)
			g->blocks[b].guarded = false;
#undef VISIT
#undef ORPHAN
	free(queue);
	free(from);
	free(open);
	return 0;
}

static void ana_op_copy(struct ana_op *d, const ZydisDecodedOperand *o)
{
	d->type = (uint8_t)o->type;
	d->actions = o->actions;
	d->size = o->size;
	d->reg.value = o->reg.value;
	d->mem.segment = o->mem.segment;
	d->mem.base = o->mem.base;
	d->mem.index = o->mem.index;
	d->mem.disp.value = o->mem.disp.value;
	d->imm.value.u = o->imm.value.u;
}

/* Decode sf->g's instructions once into the compact records of @a (ins,
 * ops, opv, ok). -ENOMEM. */
static int ana_decode(struct ana *a)
{
	const struct scan_graph *g = &a->sf->g;
	size_t ni = g->ninsns, nop = 0, cap = ni * 3 + ANA_OPS_MIN;
	size_t *first = malloc((ni ? ni : 1) * sizeof(*first));

	a->opv = calloc(cap, sizeof(*a->opv));
	if (!first || !a->opv) {
		free(first);
		return -ENOMEM;
	}
	for (size_t k = 0; k < ni; k++) {
		ZydisDecodedInstruction in;
		ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT_VISIBLE];
		size_t n = ANA_OPS_MIN;

		const struct scan_insn *si = &g->insns[k];
		size_t avail;

		a->ok[k] = scan_decode_one(a->sf, si->addr, &in, ops) == 0;
		if (a->ok[k]) {
			struct ana_insn *d = &a->ins[k];

			d->mnemonic = in.mnemonic;
			d->length = in.length;
			d->operand_count_visible = in.operand_count_visible;
			d->operand_width = in.operand_width;
			d->meta.category = in.meta.category;
			d->cpu_flags = in.cpu_flags;
			d->code_lea = si->is_lea && si->ripmem &&
			              scan_elf_code(&a->sf->elf, si->target, &avail);
			d->callee = -1;
			if (si->kind == SCAN_I_CALL) {
				d->callee = scan_func_at(a->sf, si->target);
				d->cname = call_target_name(a->sf, si->target);
			} else if (si->kind == SCAN_I_CALL_IND && si->ripmem) {
				d->cname = scan_elf_gotsym(&a->sf->elf, si->target);
			}
			n = TGVM_MAX((size_t)in.operand_count_visible, (size_t)ANA_OPS_MIN);
		}
		if (nop + n > cap) {
			size_t nc = TGVM_MAX(cap * 2, nop + n);
			struct ana_op *nv = realloc(a->opv, nc * sizeof(*nv));

			if (!nv) {
				free(first);
				return -ENOMEM;
			}
			memset(nv + cap, 0, (nc - cap) * sizeof(*nv));
			a->opv = nv;
			cap = nc;
		}
		first[k] = nop;
		for (size_t i = 0; a->ok[k] && i < in.operand_count_visible; i++)
			ana_op_copy(&a->opv[nop + i], &ops[i]);
		nop += n;
	}
	for (size_t k = 0; k < ni; k++)
		a->ops[k] = a->opv + first[k];
	free(first);
	return 0;
}

/* Run the data-flow over sf->g (already built for function @fi). */
static int ana_run(struct ana *a)
{
	struct scan_graph *g = &a->sf->g;
	size_t nb = g->nblocks, ni = g->ninsns;

	a->in = calloc(nb ? nb : 1, sizeof(*a->in));
	a->out = calloc(nb ? nb : 1, sizeof(*a->out));
	a->ins = calloc(ni ? ni : 1, sizeof(*a->ins));
	a->ops = malloc((ni ? ni : 1) * sizeof(*a->ops));
	a->ok = calloc(ni ? ni : 1, 1);
	if (!a->in || !a->out || !a->ins || !a->ops || !a->ok)
		return -ENOMEM;
	if (ana_decode(a) < 0)
		return -ENOMEM;
	{
		uint64_t start = a->sf->funcs[a->fi].start;
		long k;

		for (k = 0; k < (long)ni && g->insns[k].addr != start; k++)
			;
		if (k < (long)ni) {
			a->in[g->insns[k].block].sp_set = 1;
			a->in[g->insns[k].block].sp = 0;
		}
		if (a->no_entry) {
			/* asked for the state without what callers hand over */
		} else if ((!a->nested || a->depth) && k < (long)ni &&
		           (a->depth >= ENTRY_DEPTH_MAX || a->sf->entry_work > ENTRY_WORK_MAX))
			a->sf->entry_cut++;
		else if ((!a->nested || a->depth) && k < (long)ni) {
			struct scan_graph saved = a->sf->g;
			uint32_t ev, es = 0, ez = 0;

			/* registers and stack arguments every caller hands over
			 * holding a capability */
			memset(&a->sf->g, 0, sizeof(a->sf->g));
			ev = entry_taint(a->sf, a->fi, a->depth, &es, &ez);
			free(a->sf->g.insns);
			free(a->sf->g.blocks);
			a->sf->g = saved;
			g = &a->sf->g;
			if (ev || es) {
				struct tstate *in = &a->in[g->insns[k].block];
				uint16_t o = new_origin(a, 5, start, -1, NULL);

				in->val |= ev;
				for (int r = 0; r < NREG; r++)
					if (ev & (1u << r))
						in->org[r] = o;
				for (int i = 0; i < NSTKARG; i++)
					if (es & (1u << i))
						slot_set(in, 4, 8 * (i + 1), T_VAL, o, 0);
			}
			/* zeros are block-local: only for an entry block nothing
			 * jumps back to */
			if (ez && g->blocks[g->insns[k].block].npred == 0) {
				struct tstate *in = &a->in[g->insns[k].block];

				in->zero |= ez & 0xffffu & ~in->val;
				for (int i = 0; i < NSTKARG; i++)
					if ((ez >> 16) & (1u << i) &&
					    slot_find(in, 4, 8 * (i + 1)) < 0)
						slot_set(in, 4, 8 * (i + 1), T_NONE, 0, SLOT_ZARG);
			}
		}
	}
	for (size_t b = 0; b < nb; b++) {
		g->blocks[b].check = false;
		g->blocks[b].never = 0;
		g->blocks[b].select = false;
		g->blocks[b].guarded = false;
		g->blocks[b].guard_block = -1;
	}
	/* forward may-analysis to a fixpoint over a worklist (blocks whose way
	 * in changed, in address order first); bounded by 64 visits a block on
	 * average, which only loses capabilities when hit */
	{
		uint32_t *wl = malloc((nb ? nb : 1) * sizeof(*wl));
		uint8_t *inq = malloc(nb ? nb : 1);
		size_t head = 0, cnt = nb, budget = 64 * nb;

		if (!wl || !inq) {
			free(wl);
			free(inq);
			return -ENOMEM;
		}
		for (size_t b = 0; b < nb; b++) {
			wl[b] = (uint32_t)b;
			inq[b] = 1;
		}
		while (cnt && budget--) {
			uint32_t b = wl[head];
			struct scan_block *bl = &g->blocks[b];
			struct tstate st = a->in[b];
			uint16_t co = 0;

			head = head + 1 == nb ? 0 : head + 1;
			cnt--;
			inq[b] = 0;
			for (uint32_t k = bl->first; k < bl->first + bl->n; k++)
				if (transfer(a, &st, k, &co)) {
					bl->check = true;
					bl->check_origin = co;
				}
			a->out[b] = st;
			for (int s = 0; s < 2; s++) {
				uint32_t t = bl->succ[s];
				struct tstate old;

				if (t == UINT32_MAX)
					continue;
				old = a->in[t];
				merge(a, &a->in[t], &st);
				if (!inq[t] && memcmp(&old, &a->in[t], sizeof(old))) {
					wl[(head + cnt) % nb] = t;
					cnt++;
					inq[t] = 1;
				}
			}
		}
		free(wl);
		free(inq);
	}
	for (size_t b = 0; b < nb; b++) {
		struct scan_block *bl = &g->blocks[b];
		const struct scan_insn *l = &g->insns[bl->first + bl->n - 1];
		bool tin;

		bl->never_edge = 0;
		if (!bl->never || bl->check || bl->succ[0] == bl->succ[1])
			continue;
		tin = scan_cfg_insn_find(g, l->target) >= 0;
		if (bl->never == 1 && tin)
			bl->never_edge = 1;
		else if (bl->never == 2)
			bl->never_edge = tin ? 2 : 1;
		if (bl->never_edge && bl->succ[bl->never_edge - 1] == UINT32_MAX)
			bl->never_edge = 0;
		if (bl->never_edge)
			bl->check_origin = new_origin(a, 10, l->addr, -1, NULL);
	}
	return mark_guarded(g);
}

static void origin_text(const struct ana *a, int org, char *buf, size_t size,
                        enum scan_guard_kind *gk)
{
	const struct origin *o;

	*gk = SCAN_G_CPUID_VAR;
	if (org <= 0 || (size_t)org > a->norgs) {
		snprintf(buf, size, "a value derived from cpuid");
		return;
	}
	o = &a->orgs[org - 1];
	switch (o->kind) {
	case 0:
		snprintf(buf, size, "cpuid at 0x%llx", (unsigned long long)o->addr);
		break;
	case 1:
		snprintf(buf, size, "xgetbv at 0x%llx", (unsigned long long)o->addr);
		break;
	case 4:
		snprintf(buf, size, "a structure field at offset 0x%llx set from cpuid",
		         (unsigned long long)o->addr);
		break;
	case 5:
		snprintf(buf, size, "a register every caller sets from a capability");
		break;
	case 8:
		snprintf(buf, size, "flag bits set under a CPU check in a field at offset 0x%llx",
		         (unsigned long long)o->addr);
		break;
	case 10:
		snprintf(buf, size,
		         "a value every caller passes as 0 (the branch never goes the "
		         "other way)");
		break;
	case 9: {
		const struct scan_capshape *cs = &a->sf->capshapes[o->cap];

		snprintf(buf, size,
		         "a structure field at offset 0x%llx set from cpuid at 0x%llx (the "
		         "structure told by %d shared field offsets)",
		         (unsigned long long)cs->disp, (unsigned long long)o->addr, SHAPE_MATCH);
		break;
	}
	case 6:
		snprintf(buf, size, "glibc's CET state (%%fs:0x48) at 0x%llx",
		         (unsigned long long)o->addr);
		break;
	case 7:
		snprintf(buf, size, "rdssp at 0x%llx (0 unless shadow stacks are on)",
		         (unsigned long long)o->addr);
		break;
	case 2: {
		const char *n = o->cap >= 0 && (size_t)o->cap < a->sf->cap_names.n
		                    ? a->sf->cap_names.v[o->cap]
		                    : o->name;

		if (n && (!strncmp(n, "__cpu_model", 11) || !strncmp(n, "__cpu_features", 14)))
			*gk = SCAN_G_CPU_MODEL;
		snprintf(buf, size, "variable %s", n ? n : "?");
		break;
	}
	default:
		snprintf(buf, size, "result of %s()", o->name ? o->name : "a capability function");
		break;
	}
}

#define ARG_REGS 0x3c6u /* rcx rdx rsi rdi r8 r9 */

/* Is function @fi unreachable (see mark_live)? */
static bool func_dead(const struct scan_file *sf, size_t fi)
{
	return !(sf->funcs[fi].flags & SCAN_FN_LIVE);
}

static int cmp_ref_from(const void *x, const void *y)
{
	const struct scan_ref *a = *(const struct scan_ref *const *)x;
	const struct scan_ref *b = *(const struct scan_ref *const *)y;

	return a->from < b->from ? -1 : a->from > b->from;
}

/*
 * Mark the functions that can run: those entered from outside (exported,
 * entry point, constructors, resolvers), those whose address sits in data,
 * and everything they reach by a call, jump or address taken. The rest is
 * dead (gcc keeps unused static functions; zstd's 1.5 decoder has several),
 * and a dead caller says nothing about what its callee receives. References
 * come from every decoded instruction and every code address in data.
 */
static int mark_live(struct scan_file *sf)
{
	const struct scan_ref **byfrom = malloc((sf->nrefs ? sf->nrefs : 1) * sizeof(*byfrom));
	uint32_t *queue = malloc((sf->nfuncs ? sf->nfuncs : 1) * sizeof(*queue));
	size_t qh = 0, qt = 0;

	free(sf->refs_byfrom);
	free(sf->sinfo);
	free(sf->sinfo_have);
	free(sf->leainfo);
	sf->leainfo = calloc(sf->nfuncs ? sf->nfuncs : 1, sizeof(*sf->leainfo));
	sf->refs_byfrom = malloc((sf->nrefs ? sf->nrefs : 1) * sizeof(*sf->refs_byfrom));
	sf->sinfo = malloc((sf->nrefs ? sf->nrefs : 1) * sizeof(*sf->sinfo));
	sf->sinfo_have = calloc(sf->nrefs ? sf->nrefs : 1, 1);
	if (!byfrom || !queue || !sf->refs_byfrom || !sf->sinfo || !sf->sinfo_have ||
	    !sf->leainfo) {
		free(byfrom);
		free(queue);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sf->nrefs; i++)
		byfrom[i] = &sf->refs[i];
	scan_sort(byfrom, sf->nrefs, sizeof(*byfrom), cmp_ref_from);
	for (size_t fi = 0; fi < sf->nfuncs; fi++) {
		struct scan_func *fn = &sf->funcs[fi];

		fn->flags &= ~SCAN_FN_LIVE;
		if ((fn->flags & (SCAN_FN_ENTRY | SCAN_FN_DATAREF | SCAN_FN_RESOLVER)) ||
		    scan_u64_sorted_has(sf->elf.entries, sf->elf.nentries, fn->start)) {
			fn->flags |= SCAN_FN_LIVE;
			queue[qt++] = (uint32_t)fi;
		}
	}
	/* references from code outside any known function */
	for (size_t i = 0; i < sf->nrefs; i++) {
		int ti = scan_func_at(sf, sf->refs[i].to);

		if (ti >= 0 && !(sf->funcs[ti].flags & SCAN_FN_LIVE) &&
		    scan_func_index(sf, sf->refs[i].from) < 0) {
			sf->funcs[ti].flags |= SCAN_FN_LIVE;
			queue[qt++] = (uint32_t)ti;
		}
	}
	while (qh < qt) {
		uint64_t from = sf->funcs[queue[qh++]].start;
		size_t lo = 0, hi = sf->nrefs;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (byfrom[mid]->from < from)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t i = lo; i < sf->nrefs && byfrom[i]->from == from; i++) {
			int ti = scan_func_at(sf, byfrom[i]->to);

			if (ti >= 0 && !(sf->funcs[ti].flags & SCAN_FN_LIVE)) {
				sf->funcs[ti].flags |= SCAN_FN_LIVE;
				queue[qt++] = (uint32_t)ti;
			}
		}
	}
	for (size_t i = 0; i < sf->nrefs; i++)
		sf->refs_byfrom[i] = (uint32_t)(byfrom[i] - sf->refs);
	free(byfrom);
	free(queue);
	return 0;
}

/*
 * What instruction @k (state @st before it) of caller @ci hands its callee:
 * registers and stack arguments holding a capability or 0 (@ret_got), those
 * holding a capability (@ret_nz); a nonzero constant counts as a capability
 * only when @ci is itself guarded.
 */
static void site_taint(struct ana *a, const struct tstate *st, size_t k, size_t ci, uint32_t want,
                       uint32_t swant, uint32_t *ret_got, uint32_t *ret_nz, uint32_t *ret_sgot,
                       uint32_t *ret_snz)
{
	struct scan_file *sf = a->sf;
	const struct scan_insn *si = &sf->g.insns[k];
	bool call = si->kind == SCAN_I_CALL || si->kind == SCAN_I_CALL_IND;
	uint32_t got = st->val | st->zero, nz = st->val, sgot = 0, snz = 0;
	uint32_t kon = st->konst & ~st->val & ~st->zero & 0xffffu;
	/* the callee's [rsp+8] is the caller's [rsp] at a call, its [rsp+8] at a jump */
	int32_t base = st->sp + (call ? -8 : 0);

	for (int s = 0; s < NSTKARG; s++) {
		int q = slot_find(st, 4, base + 8 * (s + 1));

		if (q < 0)
			continue;
		if (st->slot[q].t == T_VAL)
			sgot |= 1u << s, snz |= 1u << s;
		else if (st->slot[q].k == SLOT_ZERO)
			sgot |= 1u << s;
		else if (st->slot[q].k == SLOT_KONST)
			kon |= 1u << (16 + s);
	}
	/* only constants still wanted are worth asking whether the caller is guarded */
	kon &= (want & (call ? ARG_REGS : 0xffffu)) | (swant << 16);
	if (kon) {
		struct scan_graph saved = sf->g;

		memset(&sf->g, 0, sizeof(sf->g));
		if (func_guarded(sf, ci, 1)) {
			got |= kon & 0xffffu;
			nz |= kon & 0xffffu;
			sgot |= kon >> 16;
			snz |= kon >> 16;
		}
		free(sf->g.insns);
		free(sf->g.blocks);
		sf->g = saved;
	}
	got &= 0xffffu;
	if (call)
		got &= ARG_REGS;
	*ret_got = got;
	*ret_nz = nz & got;
	*ret_sgot = sgot;
	*ret_snz = snz & sgot;
}

/*
 * Code pointers taken in a function with lea ("huf = single ? HUF_compress1X
 * : HUF_compress4X; huf(..., flags)"): is instruction @k a call or jump
 * through one? Sets *@escaped when one leaves the function's registers
 * (stored, pushed, passed, returned, or used any other way), so that calls
 * elsewhere could receive other arguments.
 */
static bool fp_call(struct ana *a, const struct tstate *st, size_t k, bool *escaped)
{
	const struct scan_insn *si = &a->sf->g.insns[k];
	const struct ana_insn *in = &a->ins[k];
	const struct ana_op *ops = a->ops[k];
	int target = -1;

	if (!st->fp)
		return false;
	if (!a->ok[k]) {
		*escaped = true;
		return false;
	}
	if (si->kind == SCAN_I_JMP && scan_func_index(a->sf, si->target) == (int)a->fi)
		return false; /* a jump inside the function */
	if ((si->kind == SCAN_I_CALL_IND || si->kind == SCAN_I_JMP_IND) &&
	    ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER)
		target = reg_index(ops[0].reg.value);
	if (si->kind == SCAN_I_JMP_IND && a->sf->g.blocks[si->block].ind_succ &&
	    (target < 0 || !(st->fp & (1u << target))))
		return false; /* a jump table */
	if (si->kind == SCAN_I_CALL || si->kind == SCAN_I_CALL_IND || si->kind == SCAN_I_JMP ||
	    si->kind == SCAN_I_JMP_IND) {
		uint32_t args = ARG_REGS | (si->kind == SCAN_I_JMP || si->kind == SCAN_I_JMP_IND
		                                ? 1u /* rax too, in a tail call */
		                                : 0);

		if (target >= 0)
			args &= ~(1u << target);
		if (st->fp & args)
			*escaped = true;
		return target >= 0 && (st->fp & (1u << target)) && !*escaped;
	}
	if (si->kind == SCAN_I_RET) {
		if (st->fp & 1u)
			*escaped = true;
		return false;
	}
	for (int i = 0; i < in->operand_count_visible; i++) {
		const struct ana_op *op = &ops[i];
		int r;

		if (op->type == ZYDIS_OPERAND_TYPE_MEMORY) {
			if (((r = reg_index(op->mem.base)) >= 0 && (st->fp & (1u << r))) ||
			    ((r = reg_index(op->mem.index)) >= 0 && (st->fp & (1u << r))))
				*escaped = true;
			continue;
		}
		if (op->type != ZYDIS_OPERAND_TYPE_REGISTER ||
		    !(op->actions & ZYDIS_OPERAND_ACTION_MASK_READ) ||
		    (r = reg_index(op->reg.value)) < 0 || !(st->fp & (1u << r)))
			continue;
		if (in->mnemonic == ZYDIS_MNEMONIC_TEST || in->mnemonic == ZYDIS_MNEMONIC_CMP)
			continue;
		if ((in->mnemonic == ZYDIS_MNEMONIC_MOV ||
		     in->meta.category == ZYDIS_CATEGORY_CMOV) &&
		    ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER && op->size == 64)
			continue;
		*escaped = true;
	}
	return false;
}

/* What instruction @k (state @st before it) hands its callee, before any
 * question about constants (see site_taint). */
static void site_raw(const struct ana *a, const struct tstate *st, size_t k,
                     struct scan_siteinfo *ret)
{
	const struct scan_insn *si = &a->sf->g.insns[k];
	bool call = si->kind == SCAN_I_CALL || si->kind == SCAN_I_CALL_IND;
	int32_t base = st->sp + (call ? -8 : 0);

	ret->got = (st->val | st->zero) & 0xffffu & (call ? ARG_REGS : 0xffffu);
	ret->nz = st->val & ret->got;
	ret->sgot = ret->snz = 0;
	ret->kon = st->konst & ~st->val & ~st->zero & 0xffffu;
	for (int s = 0; s < NSTKARG; s++) {
		int q = slot_find(st, 4, base + 8 * (s + 1));

		if (q < 0)
			continue;
		if (st->slot[q].t == T_VAL)
			ret->sgot |= 1u << s, ret->snz |= 1u << s;
		else if (st->slot[q].k == SLOT_ZERO)
			ret->sgot |= 1u << s;
		else if (st->slot[q].k == SLOT_KONST)
			ret->kon |= 1u << (16 + s);
	}
}

/* Record, for every direct call or jump out of caller @a (analysed in
 * sf->g, @pass 0 without its entry state, 1 with), what it hands over. */
static void fill_sites(struct ana *a, int pass)
{
	struct scan_file *sf = a->sf;
	uint64_t from = sf->funcs[a->fi].start;
	size_t lo = 0, hi = sf->nrefs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sf->refs[sf->refs_byfrom[mid]].from < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t j = lo; j < sf->nrefs && sf->refs[sf->refs_byfrom[j]].from == from; j++) {
		size_t ri = sf->refs_byfrom[j];
		long k = sf->refs[ri].lea ? -1 : scan_cfg_insn_find(&sf->g, sf->refs[ri].site);
		const struct scan_block *bl;
		struct tstate st;
		uint16_t co;

		if (k < 0)
			continue;
		bl = &sf->g.blocks[sf->g.insns[k].block];
		st = a->in[sf->g.insns[k].block];
		for (uint32_t i = bl->first; i < (uint32_t)k; i++)
			transfer(a, &st, i, &co);
		site_raw(a, &st, (size_t)k, &sf->sinfo[ri][pass]);
		sf->sinfo_have[ri] |= (uint8_t)(1u << pass);
	}
}

/*
 * Walk caller @a (analysed in sf->g) for the ways it enters the callee of
 * reference @rf: the call site itself, or for an address taken with lea every
 * call through it (*@escaped when it may go elsewhere). Folds what each site
 * hands over into the masks, counts the sites in *@nsites.
 */
static void entry_sites(struct ana *a, const struct scan_ref *rf, uint32_t *mask, uint32_t *nonzero,
                        uint32_t *smask, uint32_t *snonzero, size_t *nsites, bool *escaped)
{
	struct scan_file *sf = a->sf;
	size_t b0 = 0, b1 = sf->g.nblocks;

	if (!rf->lea) /* only the block holding the call */
		for (size_t k = 0; k < sf->g.ninsns; k++)
			if (sf->g.insns[k].addr == rf->site) {
				b0 = sf->g.insns[k].block;
				b1 = b0 + 1;
				break;
			}
	for (size_t b = b0; b < b1 && !*escaped; b++) {
		const struct scan_block *bl = &sf->g.blocks[b];
		struct tstate st = a->in[b];
		uint16_t co;

		for (uint32_t k = bl->first; k < bl->first + bl->n && !*escaped; k++) {
			const struct scan_insn *si = &sf->g.insns[k];
			bool site;

			if (rf->lea) /* called through a pointer taken here */
				site = fp_call(a, &st, k, escaped);
			else
				site = si->addr == rf->site;
			if (site && !*escaped) {
				uint32_t g1, gnz1, sg1, sgnz1;

				site_taint(a, &st, k, a->fi, *mask, *smask, &g1, &gnz1, &sg1,
				           &sgnz1);
				*mask &= g1;
				*nonzero |= gnz1;
				*smask &= sg1;
				*snonzero |= sgnz1;
				(*nsites)++;
			}
			transfer(a, &st, k, &co);
		}
	}
}

/* Fold what a caller's pointer hand-over told (cached per caller) into the state. */
static void lea_take(const struct scan_leainfo *li, uint32_t *m, uint32_t *nz, uint32_t *sm,
                     uint32_t *snz, size_t *nsites, bool *escaped)
{
	*m &= li->got;
	*nz |= li->nz;
	*sm &= li->sgot;
	*snz |= li->snz;
	*nsites = li->nsites;
	*escaped = li->escaped;
}

/* The first index in [@lo, @hi) of @v (sorted by .to) whose .to is at least @to. */
static size_t ref_lower_bound(const struct scan_ref *v, size_t lo, size_t hi, uint64_t to)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].to < to)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Registers (returned) and stack arguments (*@ret_stk, bit i: the word at
 * entry rsp + 8 * (i + 1)) that hold a capability value whenever function
 * @fi is entered: every direct call passes it in an argument register or on
 * the stack (zstd's "int bmi2" and "int flags", handed down several calls
 * and pushed as the seventh or eighth argument), or every jump into it
 * carries it in any register (OpenSSL's asm keeps OPENSSL_ia32cap_P words in
 * r10 across "jnz .Lchacha20_4xop"). A caller's own entry state counts, up
 * to ENTRY_DEPTH_MAX callers up; a caller that passes a nonzero constant
 * ("FSE_decompress_wksp_body(..., 1)" in the BMI2 twin) counts only when it
 * is itself guarded, and one that passes 0 never takes the capability's
 * side. Memoised; a cycle or the depth bound gives no capability (sound: it
 * only loses guards). Clobbers sf->g.
 */
static uint32_t entry_taint(struct scan_file *sf, size_t fi, int depth, uint32_t *ret_stk,
                            uint32_t *ret_zero)
{
	struct scan_func *fn = &sf->funcs[fi];
	uint64_t start = fn->start;
	uint32_t mask = 0xffffu, smask = (1u << NSTKARG) - 1;
	size_t lo = 0, hi = sf->nrefs, n = 0;
	uint32_t nonzero = 0, snonzero = 0;

	uint64_t cut0 = sf->entry_cut;

	*ret_stk = 0;
	*ret_zero = 0;
	if ((fn->flags & SCAN_FN_ENTRYSET) || ((fn->flags & SCAN_FN_ENTRYPROV) && depth > 0)) {
		*ret_stk = fn->entry_stk;
		*ret_zero = fn->entry_zero;
		return fn->entry_val;
	}
	if (fn->flags & SCAN_FN_ENTRYBUSY) { /* a cycle: nothing on this way */
		sf->entry_cut++;
		return 0;
	}
	if (fn->flags & (SCAN_FN_ENTRY | SCAN_FN_DATAREF)) {
		fn->flags |= SCAN_FN_ENTRYSET;
		fn->entry_val = 0;
		fn->entry_stk = 0;
		fn->entry_zero = 0;
		return 0;
	}
	fn->flags |= SCAN_FN_ENTRYBUSY;
	lo = hi = ref_lower_bound(sf->refs, lo, hi, start);
	for (size_t i = lo; i < sf->nrefs && sf->refs[i].to == start && (mask || smask); i++) {
		const struct scan_ref *rf = &sf->refs[i];
		int ci = scan_func_index(sf, rf->from);
		struct ana a = {.sf = sf, .nested = true, .depth = depth + 1};
		size_t nsites = 0;
		bool escaped = false;

		if (ci >= 0 && (size_t)ci != fi && func_dead(sf, (size_t)ci))
			continue; /* nothing reaches that caller */
		if (ci < 0 || (size_t)ci == fi || ++n > 64) {
			mask = smask = 0;
			break;
		}
		/* the caller's own entry state only when it could matter: a first
		 * pass without it is kept when the call site already hands over
		 * all that is still wanted */
		for (int pass = rf->lea ? 1 : 0; pass < 2; pass++) {
			uint32_t m2 = mask, nz2 = nonzero, sm2 = smask, snz2 = snonzero;

			if (!rf->lea && !(sf->sinfo_have[i] & (1u << pass))) {
				/* analyse the caller once for all its call sites */
				ana_release(&a);
				a = (struct ana){.sf = sf,
				                 .fi = (size_t)ci,
				                 .nested = true,
				                 .depth = depth + 1,
				                 .no_entry = pass == 0};
				sf->entry_work++;
				if (scan_cfg_build(sf, (size_t)ci) < 0 || ana_run(&a) < 0)
					break;
				fill_sites(&a, pass);
			}
			if (!rf->lea) {
				struct scan_siteinfo in = sf->sinfo[i][pass];
				uint32_t kon;

				if (!(sf->sinfo_have[i] & (1u << pass)))
					break; /* the site was not found in the caller */
				nsites = 1;
				escaped = false;
				/* only constants still wanted are worth asking whether
				 * the caller is guarded */
				kon = in.kon & ((mask & 0xffffu) | (smask << 16));
				if (kon) {
					struct scan_graph saved = sf->g;

					memset(&sf->g, 0, sizeof(sf->g));
					if (func_guarded(sf, (size_t)ci, 1)) {
						in.got |= kon & 0xffffu;
						in.nz |= kon & 0xffffu;
						in.sgot |= kon >> 16;
						in.snz |= kon >> 16;
					}
					free(sf->g.insns);
					free(sf->g.blocks);
					sf->g = saved;
				}
				m2 &= in.got;
				nz2 |= in.nz;
				sm2 &= in.sgot;
				snz2 |= in.snz;
				if (pass == 1 || (m2 == mask && sm2 == smask)) {
					mask = m2, nonzero = nz2, smask = sm2, snonzero = snz2;
					break;
				}
				continue;
			}
			/* what calls through pointers taken in the caller hand over
			 * does not depend on which pointer: once per caller (a
			 * dispatch-table setup takes hundreds of addresses) */
			if (sf->leainfo[ci].have) {
				lea_take(&sf->leainfo[ci], &m2, &nz2, &sm2, &snz2, &nsites,
				         &escaped);
				mask = m2, nonzero = nz2, smask = sm2, snonzero = snz2;
				break;
			}
			ana_release(&a);
			a = (struct ana){.sf = sf,
			                 .fi = (size_t)ci,
			                 .nested = true,
			                 .depth = depth + 1,
			                 .no_entry = pass == 0};
			nsites = 0;
			escaped = false;
			sf->entry_work++;
			if (scan_cfg_build(sf, (size_t)ci) < 0 || ana_run(&a) < 0)
				break;
			{
				struct scan_leainfo *li = &sf->leainfo[ci];

				li->got = 0xffffu;
				li->sgot = (1u << NSTKARG) - 1;
				li->nz = li->snz = 0;
				li->nsites = 0;
				li->escaped = false;
				entry_sites(&a, rf, &li->got, &li->nz, &li->sgot, &li->snz,
				            &li->nsites, &li->escaped);
				li->have = true;
				lea_take(li, &m2, &nz2, &sm2, &snz2, &nsites, &escaped);
			}
			if (pass == 1 || (m2 == mask && sm2 == smask)) {
				mask = m2, nonzero = nz2, smask = sm2, snonzero = snz2;
				break;
			}
		}
		ana_release(&a);
		if (trace_on())
			fprintf(stderr,
			        "TRACE entry %llx from %llx site %llx%s: %zu sites%s mask %x/%x\n",
			        (unsigned long long)start, (unsigned long long)sf->funcs[ci].start,
			        (unsigned long long)rf->site, rf->lea ? " lea" : "", nsites,
			        escaped ? " escaped" : "", mask, smask);
		if (escaped || !nsites) /* the pointer goes elsewhere, or no call seen */
			mask = smask = 0;
	}
	fn = &sf->funcs[fi];
	fn->flags &= ~SCAN_FN_ENTRYBUSY;
	/* an answer cut short by a cycle or the depth bound is not kept: asked
	 * from nearer the cycle's entry it may come out whole */
	if (sf->entry_cut == cut0 || depth == 0)
		fn->flags |= SCAN_FN_ENTRYSET;
	else
		fn->flags |= SCAN_FN_ENTRYPROV;
	/* not a register or slot that every caller merely zeroes */
	fn->entry_val = n ? mask & nonzero : 0;
	fn->entry_stk = n ? smask & snonzero : 0;
	/* and those that every caller zeroes: a branch on one never goes the
	 * nonzero way ("FSE_buildDTable_wksp(..., bmi2 = 0)") */
	fn->entry_zero = n ? (mask & ~nonzero & 0xffffu) | (smask & ~snonzero) << 16 : 0;
	*ret_zero = fn->entry_zero;
	if (trace_on())
		fprintf(stderr,
		        "TRACE entry %llx depth %d n=%zu val=%x stk=%x (mask %x/%x stk %x/%x)\n",
		        (unsigned long long)fn->start, depth, n, fn->entry_val, fn->entry_stk, mask,
		        nonzero, smask, snonzero);
	*ret_stk = fn->entry_stk;
	return fn->entry_val;
}

/* Does function @fi return a capability (value or pointer) in rax? Memoised. */
static uint8_t func_cap_return(struct scan_file *sf, size_t fi)
{
	struct scan_graph saved = sf->g;
	struct ana a = {.sf = sf, .fi = fi, .nested = true};
	uint8_t res = 0;

	if (sf->funcs[fi].flags & (SCAN_FN_SUMMARY | SCAN_FN_VISITING))
		return sf->funcs[fi].cap_return;
	if (sf->maycap_ready && !(sf->funcs[fi].flags & SCAN_FN_MAYCAP)) {
		sf->funcs[fi].flags |= SCAN_FN_SUMMARY;
		sf->funcs[fi].cap_return = 0;
		return 0;
	}
	sf->funcs[fi].flags |= SCAN_FN_VISITING;
	/* only small functions: capability getters are short */
	if (sf->funcs[fi].end && sf->funcs[fi].end - sf->funcs[fi].start > 4096)
		goto done;
	memset(&sf->g, 0, sizeof(sf->g));
	if (scan_cfg_build(sf, fi) == 0 && ana_run(&a) == 0) {
		/* "return AESNI_CAPABLE && probe()": no capability flows into
		 * rax, but every return of something other than 0 sits behind
		 * a check, so a nonzero result says the check passed */
		bool behind = true, some = false;

		for (size_t b = 0; b < sf->g.nblocks; b++) {
			const struct scan_block *bl = &sf->g.blocks[b];
			const struct scan_insn *last = &sf->g.insns[bl->first + bl->n - 1];

			if (last->kind != SCAN_I_RET)
				continue;
			if (a.out[b].val & 1)
				res = T_VAL;
			else if (a.out[b].ptr & 1)
				res = T_PTR;
			else if (bl->guarded)
				some = true;
			else if (!(a.out[b].zero & 1))
				behind = false;
		}
		if (!res && behind && some)
			res = T_VAL;
	}
	ana_release(&a);
	free(sf->g.insns);
	free(sf->g.blocks);
	sf->g = saved;
done:
	if (trace_on())
		fprintf(stderr, "TRACE cap_return %llx = %d\n",
		        (unsigned long long)sf->funcs[fi].start, res);
	sf->funcs[fi].flags = (sf->funcs[fi].flags & ~SCAN_FN_VISITING) | SCAN_FN_SUMMARY;
	sf->funcs[fi].cap_return = res;
	return res;
}

/* ---- capability variables ---- */

/* Largest block copy into a capability variable that is followed (bytes). */
#define CAP_COPY_MAX (1u << 20)
/* Instructions after the lea in which the copy must start. */
#define CAP_COPY_WINDOW 8

/*
 * A detector that fills a private copy and then assigns the whole structure
 * to the public one (Mesa: "util_cpu_caps = caps", 2 KiB) writes it with a
 * block copy: lea R, [rip+X]; ... mov rdi, R; mov ecx, N; rep movsq, or the
 * same into memcpy with the length in edx. Instruction @k of the graph built
 * for the detector is the lea; returns the bytes copied to X, or 0.
 */
static uint64_t cap_copy_len(struct scan_file *sf, size_t k)
{
	const struct scan_graph *g = &sf->g;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT_VISIBLE];
	uint32_t dst = 0;           /* registers holding X */
	int64_t rcx = -1, rdx = -1; /* known constants */
	int r;

	if (scan_decode_one(sf, g->insns[k].addr, &in, ops) < 0 ||
	    ops[0].type != ZYDIS_OPERAND_TYPE_REGISTER || (r = reg_index(ops[0].reg.value)) < 0)
		return 0;
	dst = 1u << r;
	for (size_t j = k + 1; j < g->ninsns && j <= k + CAP_COPY_WINDOW; j++) {
		const struct scan_insn *si = &g->insns[j];
		int d = -1;

		if (g->insns[j].block != g->insns[k].block &&
		    g->blocks[si->block].npred != 1) /* straight-line code only */
			return 0;
		if (scan_decode_one(sf, si->addr, &in, ops) < 0)
			return 0;
		if (si->kind == SCAN_I_CALL) {
			const char *n = call_target_name(sf, si->target);

			if (n &&
			    (!strcmp(n, "memcpy") || !strcmp(n, "memmove") ||
			     !strcmp(n, "__memcpy_chk")) &&
			    (dst & (1u << 7)) && rdx > 0 && (uint64_t)rdx <= CAP_COPY_MAX)
				return (uint64_t)rdx;
			return 0;
		}
		if (si->kind != SCAN_I_PLAIN)
			return 0;
		if ((in.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE)) &&
		    (in.mnemonic == ZYDIS_MNEMONIC_MOVSB || in.mnemonic == ZYDIS_MNEMONIC_MOVSW ||
		     in.mnemonic == ZYDIS_MNEMONIC_MOVSD || in.mnemonic == ZYDIS_MNEMONIC_MOVSQ)) {
			uint64_t w = in.mnemonic == ZYDIS_MNEMONIC_MOVSB   ? 1
			             : in.mnemonic == ZYDIS_MNEMONIC_MOVSW ? 2
			             : in.mnemonic == ZYDIS_MNEMONIC_MOVSD ? 4
			                                                   : 8;

			if ((dst & (1u << 7)) && rcx > 0 && (uint64_t)rcx <= CAP_COPY_MAX / w)
				return (uint64_t)rcx * w;
			return 0;
		}
		if (!in.operand_count_visible || ops[0].type != ZYDIS_OPERAND_TYPE_REGISTER ||
		    !(ops[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
			continue; /* stores and compares leave the registers */
		if ((d = reg_index(ops[0].reg.value)) < 0)
			continue;
		if (in.mnemonic == ZYDIS_MNEMONIC_MOV && in.operand_count_visible >= 2 &&
		    ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && ops[0].size >= 32) {
			dst &= ~(1u << d);
			if (d == 1)
				rcx = (int64_t)ops[1].imm.value.u;
			if (d == 2)
				rdx = (int64_t)ops[1].imm.value.u;
			continue;
		}
		if (d == 1)
			rcx = -1;
		if (d == 2)
			rdx = -1;
		if (in.mnemonic == ZYDIS_MNEMONIC_MOV && in.operand_count_visible >= 2 &&
		    ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER && ops[0].size == 64 &&
		    reg_index(ops[1].reg.value) >= 0 && (dst & (1u << reg_index(ops[1].reg.value))))
			dst |= 1u << d;
		else
			dst &= ~(1u << d);
	}
	return 0;
}

static int find_cap_vars(struct scan_file *sf)
{
	const struct scan_elf *e = &sf->elf;
	int r;

	for (size_t i = 0; i < e->nsyms; i++)
		if (e->syms[i].type == STT_OBJECT &&
		    name_in(e->syms[i].name, cap_var_names, ARRAY_SIZE(cap_var_names)) &&
		    (r = add_cap(sf, e->syms[i].addr,
		                 e->syms[i].addr + TGVM_MAX(e->syms[i].size, 8), e->syms[i].name)) <
		        0)
			return r;
	/* GOT slots of capability variables (their loads give pointers) */
	for (size_t i = 0; i < e->ngotsyms; i++)
		if (name_in(e->gotsyms[i].name, cap_var_names, ARRAY_SIZE(cap_var_names)) &&
		    (r = add_cap(sf, e->gotsyms[i].slot, e->gotsyms[i].slot + 8,
		                 e->gotsyms[i].name)) < 0)
			return r;
	/* globals written by code that runs cpuid, and data handed to it */
	for (size_t fi = 0; fi < sf->nfuncs; fi++) {
		if (!(sf->funcs[fi].flags & SCAN_FN_CPUID))
			continue;
		if ((r = scan_cfg_build(sf, fi)) < 0)
			return r;
		for (size_t k = 0; k < sf->g.ninsns; k++) {
			const struct scan_insn *si = &sf->g.insns[k];
			ZydisDecodedInstruction in;
			ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT_VISIBLE];
			const struct scan_sec *sec;

			if (!si->ripmem || si->kind != SCAN_I_PLAIN)
				continue;
			sec = scan_elf_section_at(e, si->target);
			if (!sec || !(sec->flags & SHF_WRITE))
				continue;
			if (scan_decode_one(sf, si->addr, &in, ops) < 0)
				continue;
			if (si->is_lea ||
			    (in.operand_count_visible && ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY &&
			     (ops[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))) {
				uint64_t len = si->is_lea ? cap_copy_len(sf, k) : 0;

				if (!len)
					len = TGVM_MAX(ops[0].size / 8, 1);
				if ((r = add_cap(sf, si->target, si->target + len,
				                 "capability variable")) < 0)
					return r;
			}
		}
	}
	/* data whose address is passed to a cpuid function: lea reg,[rip+X]; call F */
	for (size_t i = 0; i < sf->nrefs; i++) {
		int fi = scan_func_at(sf, sf->refs[i].to);
		uint64_t extent = 8;
		int ci;

		if (fi < 0 || !(sf->funcs[fi].flags & SCAN_FN_CPUID) || sf->refs[i].lea)
			continue;
		ci = scan_func_index(sf, sf->refs[i].from);
		if (ci < 0 || (sf->funcs[ci].flags & SCAN_FN_CPUID))
			continue;
		/* how far the callee writes through its first argument */
		if (scan_cfg_build(sf, (size_t)fi) < 0)
			continue;
		for (size_t k = 0; k < sf->g.ninsns; k++) {
			ZydisDecodedInstruction in;
			ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT_VISIBLE];

			if (scan_decode_one(sf, sf->g.insns[k].addr, &in, ops) < 0 ||
			    !in.operand_count_visible || ops[0].type != ZYDIS_OPERAND_TYPE_MEMORY ||
			    !(ops[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) ||
			    ops[0].mem.base != ZYDIS_REGISTER_RDI || ops[0].mem.disp.value < 0 ||
			    ops[0].mem.disp.value > 248)
				continue;
			extent =
			    TGVM_MAX(extent, (uint64_t)ops[0].mem.disp.value + ops[0].size / 8);
		}
		/* the lea a few instructions before the call site, in the caller */
		if (scan_cfg_build(sf, (size_t)ci) < 0)
			continue;
		for (size_t k = 0; k < sf->g.ninsns; k++) {
			if (sf->g.insns[k].addr != sf->refs[i].site)
				continue;
			for (size_t j = k >= 4 ? k - 4 : 0; j < k; j++) {
				const struct scan_insn *si = &sf->g.insns[j];
				const struct scan_sec *sec = scan_elf_section_at(e, si->target);

				if (si->is_lea && si->ripmem && sec && (sec->flags & SHF_WRITE) &&
				    (r = add_cap(sf, si->target, si->target + extent,
				                 "capability variable")) < 0)
					return r;
			}
			break;
		}
	}
	return 0;
}

/*
 * Second-order capabilities: a global written only under a CPU check (glibc's
 * __pthread_force_elision, set when RTM is usable) is a capability too, and
 * so is one written under a test of that (the xbegin retry count). A few
 * rounds over the functions that read the newest capability variables.
 */
#define CAP_ROUNDS 3
/* Structure fields below this offset are too common (every small struct has
 * a field at 0x10) to treat a one-bit cpuid flag stored there as identifying
 * the field everywhere; zstd's dctx->bmi2 lives far above it. */
#define CAPFIELD_MIN_DISP 0x100

/*
 * "cctx->bmi2 = ZSTD_cpuid_bmi2(ZSTD_cpuid())" at a small offset: instruction
 * @k (state @st before it) storing a one-bit cpuid value to [reg+OFF],
 * 0 <= OFF <= CAPFIELD_MIN_DISP, records (OFF, the function's large
 * displacements through reg) as a capability shape. Needs at least
 * SHAPE_MATCH such displacements, else nothing.
 */
static void note_capshape(struct ana *a, const struct tstate *st, size_t k)
{
	struct scan_file *sf = a->sf;
	const struct ana_op *op = a->ops[k];
	struct scan_capshape *cs = NULL;
	int64_t d[32];
	uint32_t n;
	int b, sr, org;

	if (a->ins[k].operand_count_visible < 2 || op[0].type != ZYDIS_OPERAND_TYPE_MEMORY ||
	    !(op[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) ||
	    op[0].mem.index != ZYDIS_REGISTER_NONE || op[1].type != ZYDIS_OPERAND_TYPE_REGISTER ||
	    (sr = reg_index(op[1].reg.value)) < 0 || !(st->val & st->bitv & (1u << sr)) ||
	    op[0].mem.disp.value < 0 || op[0].mem.disp.value > CAPFIELD_MIN_DISP ||
	    (b = reg_index(op[0].mem.base)) < 0 || b == 4 || (b == 5 && ana_rbp_frame(a)))
		return;
	/* straight from cpuid/xgetbv or a detector's result, not a copy of some
	 * other capability (glibc's ifunc tables store cpu_features bits in
	 * arrays of small records) */
	org = st->org[sr];
	if (org <= 0 || (size_t)org > a->norgs ||
	    (a->orgs[org - 1].kind != 0 && a->orgs[org - 1].kind != 1 &&
	     a->orgs[org - 1].kind != 3))
		return;
	n = base_disps(a, b, op[0].mem.disp.value, d, ARRAY_SIZE(d));
	if (n < SHAPE_MATCH)
		return;
	for (size_t f = 0; f < sf->ncapshapes; f++)
		if (sf->capshapes[f].disp == op[0].mem.disp.value)
			cs = &sf->capshapes[f];
	if (!cs) {
		if (sf->ncapshapes == ARRAY_SIZE(sf->capshapes))
			return;
		cs = &sf->capshapes[sf->ncapshapes++];
		cs->disp = op[0].mem.disp.value;
		cs->store = sf->g.insns[k].addr;
		cs->n = 0;
	}
	for (uint32_t i = 0; i < n && cs->n < ARRAY_SIZE(cs->other); i++) {
		uint32_t j;

		for (j = 0; j < cs->n && cs->other[j] != d[i]; j++)
			;
		if (j == cs->n)
			cs->other[cs->n++] = d[i];
	}
}

static int propagate_caps(struct scan_file *sf)
{
	uint8_t *done = calloc(sf->nfuncs ? sf->nfuncs : 1, 1);
	uint32_t *cand = malloc((sf->nfuncs ? sf->nfuncs : 1) * sizeof(*cand));
	size_t upto = 0;
	int r = 0;

	if (!done || !cand) {
		r = -ENOMEM;
		goto out;
	}
	for (int round = 0; round < CAP_ROUNDS && (round == 0 || upto < sf->ncaps); round++) {
		size_t before = sf->ncaps, nc = 0;

		if (round == 0)
			for (size_t fi = 0; fi < sf->nfuncs; fi++)
				if (sf->funcs[fi].flags & SCAN_FN_CPUID) {
					done[fi] = 1;
					cand[nc++] = (uint32_t)fi;
				}
		/* and their direct callers: "used_accel = best(cpuinfo_init())"
		 * keeps what a cpuid function returned in a variable the caller
		 * writes (a dispatch table's index, a flag) */
		for (size_t k = 0, n0 = nc; round == 0 && k < n0; k++) {
			size_t lo = 0, hi = sf->nrefs;
			uint64_t start = sf->funcs[cand[k]].start;

			lo = hi = ref_lower_bound(sf->refs, lo, hi, start);
			for (size_t i = lo; i < sf->nrefs && sf->refs[i].to == start; i++) {
				int fi =
				    sf->refs[i].lea ? -1 : scan_func_index(sf, sf->refs[i].from);

				if (fi >= 0 && !done[fi]) {
					done[fi] = 1;
					cand[nc++] = (uint32_t)fi;
				}
			}
		}

		for (size_t c = upto; c < before; c++) {
			size_t lo = 0, hi = sf->ndrefs;

			lo = hi = ref_lower_bound(sf->drefs, lo, hi, sf->caps[c].start);
			for (size_t i = lo; i < sf->ndrefs && sf->drefs[i].to < sf->caps[c].end;
			     i++) {
				int fi = scan_func_index(sf, sf->drefs[i].from);

				if (fi >= 0 && !done[fi]) {
					done[fi] = 1;
					cand[nc++] = (uint32_t)fi;
				}
			}
		}
		upto = before;
		/* capabilities found in the last round widen the filter */
		for (size_t f = 0; round && f < sf->nfuncs; f++)
			sf->funcs[f].flags &= ~(SCAN_FN_SUMMARY | SCAN_FN_MAYCAP);
		if (round && (r = may_cap(sf)) < 0)
			goto out;
		if (trace_on())
			for (size_t k = 0; k < nc; k++)
				fprintf(stderr, "TRACE round %d cand %llx\n", round,
				        (unsigned long long)sf->funcs[cand[k]].start);
		for (size_t k = 0; k < nc; k++) {
			struct ana a = {.sf = sf, .fi = cand[k], .nested = true};
			/* a piece of a function reached only by a check ("jne 8c400"
			 * into a separately described part) counts as guarded */
			bool whole = func_guarded(sf, cand[k], 1);

			if ((r = scan_cfg_build(sf, cand[k])) < 0 || (r = ana_run(&a)) < 0) {
				ana_release(&a);
				goto out;
			}
			if (trace_on() && sf->funcs[cand[k]].start == 0x8c370)
				for (size_t b = 0; b < sf->g.nblocks; b++)
					fprintf(
					    stderr,
					    "TRACE blk %zu %llx check=%d guarded=%d idom=%d "
					    "succ=%d,%d npred=%u ind=%d\n",
					    b,
					    (unsigned long long)sf->g.insns[sf->g.blocks[b].first]
					        .addr,
					    sf->g.blocks[b].check, sf->g.blocks[b].guarded,
					    (int)sf->g.blocks[b].idom, (int)sf->g.blocks[b].succ[0],
					    (int)sf->g.blocks[b].succ[1], sf->g.blocks[b].npred,
					    sf->g.blocks[b].ind_succ);
			for (size_t b = 0; b < sf->g.nblocks && r == 0; b++) {
				const struct scan_block *bl = &sf->g.blocks[b];
				struct tstate st = a.in[b];
				uint32_t last_or[NREG] = {0};
				bool guarded = bl->guarded || whole;

				for (uint32_t i = bl->first; i < bl->first + bl->n && r == 0; i++) {
					const struct scan_insn *si = &sf->g.insns[i];
					const struct ana_op *op = a.ops[i];
					const struct scan_sec *sec;
					uint16_t co;
					bool tainted = false;

					if (si->ripmem && !si->is_lea && a.ok[i] &&
					    a.ins[i].operand_count_visible >= 2 &&
					    op[0].type == ZYDIS_OPERAND_TYPE_MEMORY &&
					    (op[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) &&
					    (sec = scan_elf_section_at(&sf->elf, si->target)) &&
					    (sec->flags & SHF_WRITE)) {
						int sr = op[1].type == ZYDIS_OPERAND_TYPE_REGISTER
						             ? reg_index(op[1].reg.value)
						             : -1;

						tainted = sr >= 0 && (st.val & (1u << sr));
						if (guarded || tainted)
							r = add_cap(
							    sf, si->target,
							    si->target +
							        TGVM_MAX(op[0].size / 8, 1),
							    "variable set from a CPU check");
					}
					/* "if (force_elision) m->kind |= ELISION": "or ah, 1;
					 * mov [rdi+0x10], eax" under a check marks those bits
					 * of that field as a capability */
					if (a.ok[i] && a.ins[i].operand_count_visible >= 2 &&
					    op[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
					    reg_index(op[0].reg.value) >= 0) {
						int d = reg_index(op[0].reg.value);

						if (a.ins[i].mnemonic == ZYDIS_MNEMONIC_OR &&
						    op[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
							last_or[d] = (uint32_t)op[1].imm.value.u
							             << ((op[0].reg.value >=
							                      ZYDIS_REGISTER_AH &&
							                  op[0].reg.value <=
							                      ZYDIS_REGISTER_BH)
							                     ? 8
							                     : 0);
						else if (op[0].actions &
						         ZYDIS_OPERAND_ACTION_MASK_WRITE)
							last_or[d] = 0;
					}
					if (guarded && !si->ripmem && a.ok[i] &&
					    a.ins[i].operand_count_visible >= 2 &&
					    op[0].type == ZYDIS_OPERAND_TYPE_MEMORY &&
					    (op[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) &&
					    op[0].mem.index == ZYDIS_REGISTER_NONE &&
					    reg_index(op[0].mem.base) >= 0 &&
					    reg_index(op[0].mem.base) != 4 &&
					    reg_index(op[0].mem.base) != 5 &&
					    op[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
					    reg_index(op[1].reg.value) >= 0 &&
					    last_or[reg_index(op[1].reg.value)] &&
					    sf->ncapbits < ARRAY_SIZE(sf->capbits)) {
						sf->capbits[sf->ncapbits].disp =
						    op[0].mem.disp.value;
						sf->capbits[sf->ncapbits++].mask =
						    last_or[reg_index(op[1].reg.value)];
					}
					/* "dctx->bmi2 = ZSTD_cpuid_bmi2(ZSTD_cpuid())": a field */
					if (!si->ripmem && a.ok[i] &&
					    a.ins[i].operand_count_visible >= 2 &&
					    op[0].type == ZYDIS_OPERAND_TYPE_MEMORY &&
					    (op[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE) &&
					    op[0].mem.index == ZYDIS_REGISTER_NONE &&
					    reg_index(op[0].mem.base) >= 0 &&
					    reg_index(op[0].mem.base) != 4 &&
					    reg_index(op[0].mem.base) != 5 &&
					    op[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
					    reg_index(op[1].reg.value) >= 0 &&
					    (st.val & st.bitv &
					     (1u << reg_index(op[1].reg.value))) &&
					    op[0].mem.disp.value > CAPFIELD_MIN_DISP &&
					    sf->ncapfields < ARRAY_SIZE(sf->capfields)) {
						bool have = false;

						for (size_t f = 0; f < sf->ncapfields; f++)
							have |= sf->capfields[f] ==
							        op[0].mem.disp.value;
						if (!have)
							sf->capfields[sf->ncapfields++] =
							    op[0].mem.disp.value;
					} else if (!si->ripmem && a.ok[i]) {
						note_capshape(&a, &st, i);
					}
					transfer(&a, &st, i, &co);
				}
			}
			ana_release(&a);
			if (r < 0)
				goto out;
		}
	}
out:
	free(done);
	free(cand);
	return r;
}

/* ---- function-level guards ---- */

static void mark_func(struct scan_file *sf, uint64_t addr, enum scan_guard_kind k, uint64_t by)
{
	int fi = scan_func_at(sf, addr);

	if (fi < 0 || (sf->funcs[fi].flags & SCAN_FN_GUARDED))
		return;
	sf->funcs[fi].flags |= SCAN_FN_GUARDED | SCAN_FN_RESOLVED;
	sf->funcs[fi].guard_kind = k;
	sf->funcs[fi].guard_addr = by;
}

/* The implementations an ifunc resolver can return: code addresses it loads. */
static int mark_ifunc_targets(struct scan_file *sf)
{
	for (size_t fi = 0; fi < sf->nfuncs; fi++) {
		const struct scan_sym *rs;
		int r;

		if (!(sf->funcs[fi].flags & SCAN_FN_RESOLVER))
			continue;
		rs = scan_elf_symbol_at(&sf->elf, sf->funcs[fi].start);
		if ((r = scan_cfg_build(sf, fi)) < 0)
			return r;
		for (size_t k = 0; k < sf->g.ninsns; k++) {
			const struct scan_insn *si = &sf->g.insns[k];
			const struct scan_sym *ts;
			enum scan_guard_kind kind = SCAN_G_IFUNC;
			size_t avail;

			if (!si->is_lea || !scan_elf_code(&sf->elf, si->target, &avail))
				continue;
			ts = scan_elf_symbol_at(&sf->elf, si->target);
			if ((rs && strstr(rs->name, ".resolver")) ||
			    (rs && ts && !strncmp(ts->name, rs->name, strlen(rs->name)) &&
			     ts->name[strlen(rs->name)] == '.'))
				kind = SCAN_G_CLONE;
			mark_func(sf, si->target, kind, sf->funcs[fi].start);
		}
	}
	return 0;
}

/*
 * "mov eax, 0; lzcnt eax, eax; setne al": probing for LZCNT/TZCNT by their
 * flags on a zero source. Without the feature they run as bsr/bsf, so the
 * probe is safe everywhere and is not a use.
 */
static bool probe_insn(struct scan_file *sf, size_t k)
{
	const struct scan_insn *si = &sf->g.insns[k];
	ZydisDecodedInstruction in, prev;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT_VISIBLE],
	    pops[ZYDIS_MAX_OPERAND_COUNT_VISIBLE];

	if (k == 0 || scan_decode_one(sf, si->addr, &in, ops) < 0 ||
	    (in.mnemonic != ZYDIS_MNEMONIC_LZCNT && in.mnemonic != ZYDIS_MNEMONIC_TZCNT) ||
	    ops[1].type != ZYDIS_OPERAND_TYPE_REGISTER ||
	    scan_decode_one(sf, sf->g.insns[k - 1].addr, &prev, pops) < 0 ||
	    pops[0].type != ZYDIS_OPERAND_TYPE_REGISTER ||
	    reg_index(pops[0].reg.value) != reg_index(ops[1].reg.value))
		return false;
	if (prev.mnemonic == ZYDIS_MNEMONIC_MOV && pops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
	    pops[1].imm.value.u == 0)
		return true;
	return prev.mnemonic == ZYDIS_MNEMONIC_XOR && pops[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
	       pops[1].reg.value == pops[0].reg.value;
}

/*
 * Compute which address ranges of function @fi are guarded inside it; first
 * (@full false) without what callers hand over, which is cheap and often
 * enough, then on demand with it. Memoised per pass.
 */
static int func_guard_ranges(struct scan_file *sf, size_t fi, bool full)
{
	struct scan_func *fn = &sf->funcs[fi];
	struct ana a = {.sf = sf, .fi = fi, .no_entry = !full};
	size_t n = 0;
	int r;

	if (fn->gblocks && (!full || !(fn->flags & SCAN_FN_GPARTIAL)))
		return 0;
	fn->flags = full ? fn->flags & ~SCAN_FN_GPARTIAL : fn->flags | SCAN_FN_GPARTIAL;
	if ((r = scan_cfg_build(sf, fi)) < 0)
		return r;
	if ((r = ana_run(&a)) < 0)
		goto out;
	if (getenv("TGVM_TRACE_FN") &&
	    strtoull(getenv("TGVM_TRACE_FN"), NULL, 16) == sf->funcs[fi].start)
		for (size_t b = 0; b < sf->g.nblocks; b++)
			fprintf(stderr,
			        "TRACE gblk %zu %llx check=%d sel=%d guarded=%d idom=%d succ=%d,%d "
			        "npred=%u val=%x weak=%x\n",
			        b, (unsigned long long)sf->g.insns[sf->g.blocks[b].first].addr,
			        sf->g.blocks[b].check, sf->g.blocks[b].select,
			        sf->g.blocks[b].guarded, (int)sf->g.blocks[b].idom,
			        (int)sf->g.blocks[b].succ[0], (int)sf->g.blocks[b].succ[1],
			        sf->g.blocks[b].npred, a.in[b].val, a.in[b].weak);
	for (size_t b = 0; b < sf->g.nblocks; b++)
		n += (sf->g.blocks[b].guarded || sf->g.blocks[b].check || sf->g.blocks[b].select) +
		     sf->g.blocks[b].check;
	fn = &sf->funcs[fi];
	free(fn->gblocks);
	free(fn->gchecks);
	fn->gblocks = malloc((n ? n : 1) * sizeof(*fn->gblocks));
	fn->gchecks = malloc((n ? n : 1) * sizeof(*fn->gchecks));
	if (!fn->gblocks || !fn->gchecks) {
		r = -ENOMEM;
		goto out;
	}
	fn->ngblocks = 0;
	for (size_t b = 0; b < sf->g.nblocks; b++) {
		const struct scan_block *bl = &sf->g.blocks[b];
		const struct scan_insn *f = &sf->g.insns[bl->first];
		const struct scan_insn *l = &sf->g.insns[bl->first + bl->n - 1];
		const struct scan_block *cb;

		if (bl->guarded) {
			cb = &sf->g.blocks[bl->guard_block];
			fn->gblocks[fn->ngblocks] = (struct scan_range){f->addr, l->addr + l->len};
			fn->gchecks[fn->ngblocks++] = sf->g.insns[cb->first + cb->n - 1].addr << 1;
		} else if (bl->check || bl->select) {
			if (bl->check) { /* "jb other_function": the branch is the check */
				fn->gblocks[fn->ngblocks] =
				    (struct scan_range){l->addr, l->addr + l->len};
				fn->gchecks[fn->ngblocks++] = l->addr << 1;
			}
			/* "lea rdx,[impl]; test cap; jne use" and "cmovne rdx,rcx":
			 * an address picked by the check, not code run before it */
			fn->gblocks[fn->ngblocks] = (struct scan_range){f->addr, l->addr + l->len};
			fn->gchecks[fn->ngblocks++] = l->addr << 1 | 1;
		}
	}
out:
	ana_release(&a);
	return r;
}

/* Is the reference at @site (a call or jump; @lea: an address taken) guarded? */
static bool site_guarded(struct scan_file *sf, size_t fi, uint64_t site, bool lea,
                         uint64_t *ret_check)
{
	const struct scan_func *fn = &sf->funcs[fi];

	for (int pass = 0; pass < 2; pass++) {
		if (func_guard_ranges(sf, fi, pass == 1) < 0)
			return false;
		fn = &sf->funcs[fi];
		for (uint32_t i = 0; i < fn->ngblocks; i++)
			if (site >= fn->gblocks[i].start && site < fn->gblocks[i].end &&
			    (lea || !(fn->gchecks[i] & 1))) {
				*ret_check = fn->gchecks[i] >> 1;
				return true;
			}
	}
	return false;
}

static bool func_guarded(struct scan_file *sf, size_t fi, int depth);

static int cmp_ref_site(const void *x, const void *y)
{
	const struct scan_ref *a = x, *b = y;

	return a->site < b->site ? -1 : a->site > b->site;
}

/* The code address stored at data slot @slot, or 0. */
static uint64_t code_ptr_at(struct scan_file *sf, uint64_t slot)
{
	size_t lo = 0, hi;

	if (!sf->dslot_by_site && sf->elf.ndslots) {
		sf->dslot_by_site = malloc(sf->elf.ndslots * sizeof(*sf->dslot_by_site));
		if (!sf->dslot_by_site)
			return 0;
		memcpy(sf->dslot_by_site, sf->elf.dslots,
		       sf->elf.ndslots * sizeof(*sf->dslot_by_site));
		scan_sort(sf->dslot_by_site, sf->elf.ndslots, sizeof(*sf->dslot_by_site),
		          cmp_ref_site);
	}
	hi = sf->dslot_by_site ? sf->elf.ndslots : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sf->dslot_by_site[mid].site < slot)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sf->elf.ndslots && sf->dslot_by_site && sf->dslot_by_site[lo].site == slot
	           ? sf->dslot_by_site[lo].to
	           : 0;
}

#define CAPABLE_REACH 32 /* bytes either side of a record's table pointer */

/*
 * OpenSSL's providers list each algorithm as a record { names, properties,
 * dispatch table, description, capable() } and offer it only when capable()
 * is true (ALGORITHM_CAPABLE in defltprov.c: AES-NI ciphers exist only when
 * OPENSSL_ia32cap_P says so). A function pointer at data slot @slot is
 * guarded that way when its array is used by no code directly, and every
 * record pointing at the array holds beside that pointer a function that
 * returns a capability. Returns the capable() function's address, or 0.
 */
static uint64_t capable_record(struct scan_file *sf, uint64_t slot)
{
	const struct scan_elf *e = &sf->elf;
	size_t lo = 0, hi = e->ndptrs, a = 0, b = sf->ndrefs;
	uint64_t arr, via = 0;
	bool any = false;

	/* the array: the nearest address at or below the slot that data points to */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->dptrs[mid].to <= slot)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || slot - e->dptrs[lo - 1].to >= 1024)
		return 0;
	arr = e->dptrs[lo - 1].to;
	/* code that reads the array (or the slot) directly could call anything */
	a = b = ref_lower_bound(sf->drefs, a, b, arr);
	if (a < sf->ndrefs && sf->drefs[a].to <= slot)
		return 0;
	for (lo = lo - 1; lo > 0 && e->dptrs[lo - 1].to == arr; lo--)
		;
	for (size_t i = lo; i < e->ndptrs && e->dptrs[i].to == arr; i++) {
		uint64_t rec = e->dptrs[i].site, cap = 0;

		any = true;
		for (int d = -CAPABLE_REACH; d <= CAPABLE_REACH && !cap; d += 8) {
			uint64_t c = d ? code_ptr_at(sf, rec + (uint64_t)(int64_t)d) : 0;
			int ci = c ? scan_func_at(sf, c) : -1;

			if (ci >= 0 && func_cap_return(sf, (size_t)ci) == T_VAL)
				cap = c;
		}
		if (!cap)
			return 0;
		if (!via)
			via = cap;
	}
	return any ? via : 0;
}

/* Are all loads of GOT slot @slot guarded (comparisons aside)? Returns a
 * guarded load's site, the slot itself when none loads it, or 0. */
static uint64_t got_guarded(struct scan_file *sf, uint64_t slot, int depth)
{
	size_t a = 0, b = sf->ndrefs;
	uint64_t via = 0;

	a = b = ref_lower_bound(sf->drefs, a, b, slot);
	for (size_t k = a; k < sf->ndrefs && sf->drefs[k].to == slot; k++) {
		int ci = scan_func_index(sf, sf->drefs[k].from);
		ZydisDecodedInstruction in;
		uint64_t chk;

		if (scan_decode_one(sf, sf->drefs[k].site, &in, NULL) == 0 &&
		    in.mnemonic == ZYDIS_MNEMONIC_CMP)
			continue;
		if (ci >= 0 && func_dead(sf, (size_t)ci))
			continue;
		if (ci < 0 || (!site_guarded(sf, (size_t)ci, sf->drefs[k].site, true, &chk) &&
		               !func_guarded(sf, (size_t)ci, depth + 1)))
			return 0;
		if (!via)
			via = sf->drefs[k].site;
	}
	return via ? via : slot;
}

/*
 * A function whose address sits in data (a method table such as OpenSSL's
 * EVP_CIPHER or PROV_CIPHER_HW) is guarded when every table holding it is
 * only ever picked by guarded code: "return AESNI_CAPABLE ? &aesni_cbc :
 * &aes_cbc". A table is found as the nearest address below the slot that
 * code takes with lea. Returns the site of such a lea, or 0.
 */
static uint64_t data_guarded(struct scan_file *sf, size_t fi, int depth)
{
	const struct scan_elf *e = &sf->elf;
	uint64_t start = sf->funcs[fi].start, via = 0;
	size_t lo = 0, hi = e->ndslots;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->dslots[mid].to < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= e->ndslots || e->dslots[lo].to != start)
		return 0;
	for (size_t i = lo; i < e->ndslots && e->dslots[i].to == start; i++) {
		uint64_t slot = e->dslots[i].site, table = 0;
		size_t a = 0, b = sf->ndrefs;
		bool any = false;
		const struct scan_sec *sec = scan_elf_section_at(e, slot);

		/* a GOT slot holding a local function's address: code loads it
		 * instead of taking the address with lea ("dat->stream.cbc =
		 * ossl_bsaes_cbc_encrypt" under BSAES_CAPABLE). Every load that
		 * can end in a call must be guarded; comparing with it cannot. */
		if (sec && sec->name && !strcmp(sec->name, ".got")) {
			uint64_t v = got_guarded(sf, slot, depth);

			if (!v)
				return 0;
			if (!via)
				via = v;
			continue;
		}

		/* the last lea target at or below the slot, within 1 KiB */
		while (a < b) {
			size_t mid = a + (b - a) / 2;

			if (sf->drefs[mid].to <= slot)
				a = mid + 1;
			else
				b = mid;
		}
		for (size_t k = a; k-- > 0 && slot - sf->drefs[k].to < 1024;)
			if (sf->drefs[k].lea) {
				table = sf->drefs[k].to;
				break;
			}
		if (trace_on())
			fprintf(stderr, "TRACE data %llx slot %llx table %llx%s\n",
			        (unsigned long long)start, (unsigned long long)slot,
			        (unsigned long long)table,
			        table && scan_u64_sorted_has(e->dataref, e->ndataref, table)
			            ? " (itself in data)"
			            : "");
		if (!table) {
			uint64_t v = capable_record(sf, slot);

			if (!v)
				return 0;
			if (!via)
				via = v;
			continue;
		}
		if (scan_u64_sorted_has(e->dataref, e->ndataref, table))
			return 0;
		/* every lea of the table must be guarded */
		a = 0;
		b = sf->ndrefs;
		a = b = ref_lower_bound(sf->drefs, a, b, table);
		for (size_t k = a; k < sf->ndrefs && sf->drefs[k].to == table; k++) {
			int ci = scan_func_index(sf, sf->drefs[k].from);
			uint64_t chk;

			if (!sf->drefs[k].lea)
				continue;
			any = true;
			if (ci < 0 ||
			    (!site_guarded(sf, (size_t)ci, sf->drefs[k].site, true, &chk) &&
			     !func_guarded(sf, (size_t)ci, depth + 1))) {
				if (trace_on())
					fprintf(stderr,
					        "TRACE data table %llx lea at %llx unguarded\n",
					        (unsigned long long)table,
					        (unsigned long long)sf->drefs[k].site);
				return 0;
			}
			if (!via)
				via = sf->drefs[k].site;
		}
		if (!any)
			return 0;
	}
	return via;
}

#define GUARD_SEARCH_MAX  1024 /* functions one search may visit */
#define COMPARE_INSNS_MAX 64   /* instructions lea_only_compared() follows */

/*
 * Is the address that "lea reg, [func]" at @site takes only ever compared
 * ("if (_M_func == &__x86_rdseed)"), never called, stored or handed on? A
 * small search forward over the instructions of the function (both sides of
 * each branch) until every path overwrites the register (any part of it) or
 * leaves it dead: reads other than cmp, a call that may take it as an
 * argument, a return of it, an indirect jump or too long a search say no.
 * Such a reference is no way into the function.
 */
static bool lea_only_compared(struct scan_file *sf, uint64_t site)
{
	uint64_t todo[COMPARE_INSNS_MAX], seen[COMPARE_INSNS_MAX];
	size_t ntodo = 0, nseen = 0, steps = 0;
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisDecoderContext ctx;
	const uint8_t *p;
	size_t avail;
	int reg, fi = scan_func_index(sf, site);

	if (fi < 0 || !(p = scan_elf_code(&sf->elf, site, &avail)) ||
	    !ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&sf->dec, &ctx, p, avail, &in)) ||
	    !ZYAN_SUCCESS(
	        ZydisDecoderDecodeOperands(&sf->dec, &ctx, &in, ops, in.operand_count_visible)) ||
	    in.mnemonic != ZYDIS_MNEMONIC_LEA || ops[0].type != ZYDIS_OPERAND_TYPE_REGISTER ||
	    (reg = reg_index(ops[0].reg.value)) < 0)
		return false;
	todo[ntodo++] = site + in.length;
	while (ntodo) {
		uint64_t pc = todo[--ntodo];
		bool dead = false;

		for (size_t k = 0; k < nseen; k++)
			if (seen[k] == pc)
				dead = true;
		while (!dead) {
			bool rd = false, wr = false, rel;
			uint64_t t = 0;

			if (++steps > COMPARE_INSNS_MAX || nseen == COMPARE_INSNS_MAX)
				return false;
			seen[nseen++] = pc;
			if (scan_func_index(sf, pc) != fi ||
			    !(p = scan_elf_code(&sf->elf, pc, &avail)) ||
			    !ZYAN_SUCCESS(
			        ZydisDecoderDecodeInstruction(&sf->dec, &ctx, p, avail, &in)) ||
			    !ZYAN_SUCCESS(ZydisDecoderDecodeOperands(&sf->dec, &ctx, &in, ops,
			                                             in.operand_count)))
				return false;
			for (uint8_t k = 0; k < in.operand_count; k++) {
				const ZydisDecodedOperand *o = &ops[k];

				if (o->type == ZYDIS_OPERAND_TYPE_REGISTER &&
				    reg_index(o->reg.value) == reg) {
					/* a conditional write (cmov) keeps the address on
					 * one side */
					rd |= (o->actions & (ZYDIS_OPERAND_ACTION_MASK_READ |
					                     ZYDIS_OPERAND_ACTION_CONDWRITE)) != 0;
					wr |= (o->actions & ZYDIS_OPERAND_ACTION_WRITE) != 0;
				} else if (o->type == ZYDIS_OPERAND_TYPE_MEMORY &&
				           (reg_index(o->mem.base) == reg ||
				            reg_index(o->mem.index) == reg)) {
					rd = true;
				}
			}
			if (rd && in.mnemonic != ZYDIS_MNEMONIC_CMP)
				return false;
			if (wr && !rd)
				break; /* overwritten: dead on this path */
			if (in.meta.category == ZYDIS_CATEGORY_RET)
				return reg != 0; /* rax is what it returns */
			if (in.meta.category == ZYDIS_CATEGORY_CALL) {
				/* an argument register may hand the address on */
				if (reg == 2 || reg == 1 || reg == 6 || reg == 7 || reg == 8 ||
				    reg == 9)
					return false;
				if (reg == 0 || reg == 10 || reg == 11)
					break; /* clobbered by the call */
			}
			rel = in.operand_count_visible >= 1 &&
			      ops[0].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && ops[0].imm.is_relative;
			if (rel)
				t = pc + in.length + (uint64_t)ops[0].imm.value.s;
			if (in.meta.category == ZYDIS_CATEGORY_UNCOND_BR) {
				if (!rel)
					return false;
				pc = t;
				continue;
			}
			if (in.meta.category == ZYDIS_CATEGORY_COND_BR) {
				if (!rel || ntodo == COMPARE_INSNS_MAX)
					return false;
				todo[ntodo++] = t;
			}
			if (in.mnemonic == ZYDIS_MNEMONIC_UD2 || in.mnemonic == ZYDIS_MNEMONIC_HLT)
				break;
			pc += in.length;
		}
	}
	return true;
}

/*
 * Is every way into function @fi guarded? Searches backwards from @fi over
 * callers whose call is not itself guarded. Reaching a way in from outside
 * (an exported or entry function, an address in data that no guarded code
 * picks, code outside any function) answers no. Otherwise every function the
 * search met can only be entered through guarded calls, so all of them are
 * guarded: a group of functions calling each other (OpenSSL's asm pieces that
 * jump back and forth) is guarded when its ways in are. Dead callers do not
 * count. A search nested in another treats the other's functions as ways in
 * from outside (no answer from an unfinished search is trusted).
 */
/*
 * The "entered from outside" rule: an entry point, a constructor or an ifunc
 * resolver is always a way in. A program's exported function is one only for
 * the plugins it loads; within the image it is entered from its callers, so
 * it is guarded when the image calls it and every caller is guarded. A
 * library's exported function is its API: always a way in (the programs that
 * call it are judged with the library's conditions).
 */
static bool entry_from_outside(const struct scan_file *sf, size_t fi)
{
	const struct scan_func *fn = &sf->funcs[fi];

	if (!(fn->flags & SCAN_FN_ENTRY))
		return false;
	return !sf->res->program || !(fn->flags & SCAN_FN_EXPORTED) ||
	       (fn->flags & SCAN_FN_RESOLVER) ||
	       scan_u64_sorted_has(sf->elf.entries, sf->elf.nentries, fn->start);
}

static bool func_guarded(struct scan_file *sf, size_t fi, int depth)
{
	struct scan_func *fn = &sf->funcs[fi];
	struct gnode {
		uint32_t f;
		uint32_t next; /* next reference to look at, from refs_lo */
		size_t refs_lo;
		uint64_t via;
		bool data_done;
	} *st = NULL;
	uint32_t *all = NULL; /* every function met, to mark at the end */
	size_t nst = 0, capst = 0, nall = 0, capall = 0;
	bool root = false, sure = true, any_guard = false;
	uint32_t qid;

	if (fn->flags & SCAN_FN_RESOLVED)
		return fn->flags & SCAN_FN_GUARDED;
	if ((fn->flags & SCAN_FN_VISITING) || entry_from_outside(sf, fi) || depth > 32)
		return false;
	qid = ++sf->guard_qid;
	/* depth first over callers, so that a way in from outside, when there
	 * is one, is met after few graphs rather than after all of them */
#define PUSH(fidx)                                                                                 \
	do {                                                                                       \
		size_t lo_ = 0, hi_ = sf->nrefs;                                                   \
                                                                                                   \
		if (nst == capst || nall == capall) {                                              \
			size_t nc_ = capst > capall ? capst * 2 + 16 : capall * 2 + 16;            \
			struct gnode *ns_ = realloc(st, nc_ * sizeof(*ns_));                       \
			uint32_t *na_ = ns_ ? realloc(all, nc_ * sizeof(*na_)) : NULL;             \
                                                                                                   \
			if (ns_)                                                                   \
				st = ns_;                                                          \
			if (!ns_ || !na_) {                                                        \
				root = true;                                                       \
				sure = false;                                                      \
				goto done;                                                         \
			}                                                                          \
			all = na_;                                                                 \
			capst = capall = nc_;                                                      \
		}                                                                                  \
		while (lo_ < hi_) {                                                                \
			size_t mid_ = lo_ + (hi_ - lo_) / 2;                                       \
                                                                                                   \
			if (sf->refs[mid_].to < sf->funcs[fidx].start)                             \
				lo_ = mid_ + 1;                                                    \
			else                                                                       \
				hi_ = mid_;                                                        \
		}                                                                                  \
		st[nst++] = (struct gnode){(uint32_t)(fidx), 0, lo_, 0, false};                    \
		all[nall++] = (uint32_t)(fidx);                                                    \
		sf->funcs[fidx].flags |= SCAN_FN_VISITING;                                         \
		sf->funcs[fidx].visit_q = qid;                                                     \
	} while (0)
	PUSH(fi);
	while (nst && !root) {
		struct gnode *cur = &st[nst - 1];
		size_t g = cur->f, i = cur->refs_lo + cur->next;
		uint64_t start = sf->funcs[g].start, chk;
		int ci;

		if (!cur->data_done) {
			cur->data_done = true;
			if (entry_from_outside(sf, g)) {
				root = true;
				break;
			}
			if (sf->funcs[g].flags & SCAN_FN_DATAREF) {
				uint64_t v = data_guarded(sf, g, depth);

				cur = &st[nst - 1];
				if (!v) {
					if (trace_on())
						fprintf(stderr, "TRACE root-data %llx for %llx\n",
						        (unsigned long long)start,
						        (unsigned long long)fn->start);
					root = true;
					break;
				}
				any_guard = true;
				if (!cur->via)
					cur->via = v;
			}
		}
		if (i >= sf->nrefs || sf->refs[i].to != start) {
			/* every way into it looked at: keep its via for marking */
			sf->funcs[g].guard_addr = cur->via;
			nst--;
			continue;
		}
		cur->next++;
		ci = scan_func_index(sf, sf->refs[i].from);
		if (trace_on() && depth == 0)
			fprintf(stderr, "TRACE edge %llx <- %llx site %llx%s\n",
			        (unsigned long long)start,
			        ci >= 0 ? (unsigned long long)sf->funcs[ci].start : 0ull,
			        (unsigned long long)sf->refs[i].site,
			        sf->refs[i].lea ? " lea" : "");
		if (ci < 0) {
			root = true;
		} else if ((size_t)ci == g || func_dead(sf, (size_t)ci)) {
			continue;
		} else if (sf->refs[i].lea && lea_only_compared(sf, sf->refs[i].site)) {
			continue; /* "if (fp == &impl)": no way in */
		} else if (site_guarded(sf, (size_t)ci, sf->refs[i].site, sf->refs[i].lea, &chk)) {
			any_guard = true;
			cur = &st[nst - 1];
			if (!cur->via)
				cur->via = sf->refs[i].site;
		} else if (sf->funcs[ci].flags & SCAN_FN_RESOLVED) {
			if (!(sf->funcs[ci].flags & SCAN_FN_GUARDED))
				root = true;
			any_guard = true;
			cur = &st[nst - 1];
			if (!cur->via)
				cur->via = sf->refs[i].site;
		} else if (sf->funcs[ci].flags & SCAN_FN_VISITING) {
			if (sf->funcs[ci].visit_q != qid)
				root = true, sure = false; /* an unfinished outer search */
			else if (!st[nst - 1].via)
				st[nst - 1].via = sf->refs[i].site;
		} else if (nall >= GUARD_SEARCH_MAX) {
			root = true;
			sure = false;
		} else {
			if (!st[nst - 1].via)
				st[nst - 1].via = sf->refs[i].site;
			PUSH((size_t)ci);
		}
	}
done:
	for (size_t i = 0; i < nall; i++)
		sf->funcs[all[i]].flags &= ~SCAN_FN_VISITING;
	fn = &sf->funcs[fi];
	if (trace_on())
		fprintf(stderr, "TRACE guarded? %llx root=%d sure=%d searched=%zu guard=%d\n",
		        (unsigned long long)fn->start, root, sure, nall, any_guard);
	if (!root && any_guard) {
		for (size_t i = 0; i < nall; i++) {
			struct scan_func *m = &sf->funcs[all[i]];

			m->flags |= SCAN_FN_GUARDED | SCAN_FN_RESOLVED;
			m->guard_kind = SCAN_G_CALLER;
		}
		free(st);
		free(all);
		return true;
	}
	for (size_t i = 0; i < nall; i++) /* guard_addr is only meaningful when guarded */
		sf->funcs[all[i]].guard_addr = 0;
	if (sure || depth == 0)
		fn->flags |= SCAN_FN_RESOLVED;
	free(st);
	free(all);
	return false;
#undef PUSH
}

#define ROOT_NAMES_MAX 256
#define ROOT_FUNCS_MAX 50000

/*
 * How can function @fi be reached? Walks callers backwards. *ret_always when
 * some way in is always taken or unknown (program entry, constructor, address
 * in data, a function nothing visibly calls); otherwise @names gets the
 * exported functions through which a program can get there.
 */
static int func_roots(struct scan_file *sf, size_t fi, bool *ret_always, struct tgvm_strv *names,
                      const char **ret_why)
{
	uint32_t *queue = NULL;
	uint8_t *seen = NULL;
	size_t qh = 0, qt = 0;
	bool always = false;
	int r = 0;

	/* a program's own code runs from its entry; only libraries have an API */
	*ret_why = "";
	if (sf->res->program || !sf->elf.has_dynamic) {
		*ret_always = true;
		*ret_why = "from the program";
		return 0;
	}
	queue = malloc(sf->nfuncs * sizeof(*queue));
	seen = calloc(sf->nfuncs, 1);
	if (!queue || !seen) {
		r = -ENOMEM;
		goto out;
	}
	queue[qt++] = (uint32_t)fi;
	seen[fi] = 1;
	while (qh < qt && !always) {
		const struct scan_func *fn = &sf->funcs[queue[qh++]];
		size_t lo = 0, hi = sf->nrefs;
		bool called = false;

		if (fn->flags & SCAN_FN_ENTRY) {
			bool exported = false;

			for (const struct scan_sym *s = scan_elf_symbol_at(&sf->elf, fn->start);
			     s && s < sf->elf.syms + sf->elf.nsyms && s->addr == fn->start; s++)
				if (s->dyn && (s->bind == STB_GLOBAL || s->bind == STB_WEAK) &&
				    (s->vis == STV_DEFAULT || s->vis == STV_PROTECTED)) {
					exported = true;
					if (!tgvm_strv_contains(names, s->name) &&
					    (r = tgvm_strv_push(names, s->name)) < 0)
						goto out;
				}
			if (fn->flags & SCAN_FN_RESOLVER)
				*ret_why = "from an ifunc resolver", always = true;
			else if (scan_u64_sorted_has(sf->elf.entries, sf->elf.nentries, fn->start))
				*ret_why = "from the entry point or a constructor", always = true;
			else if (!exported)
				*ret_why = "from outside", always = true;
			if (names->n > ROOT_NAMES_MAX)
				*ret_why = "from too many exported functions to list",
				always = true;
		}
		if (fn->flags & SCAN_FN_DATAREF) {
			*ret_why = "through a function pointer stored in data";
			always = true;
		}
		lo = hi = ref_lower_bound(sf->refs, lo, hi, fn->start);
		for (size_t i = lo; i < sf->nrefs && sf->refs[i].to == fn->start; i++) {
			int ci = scan_func_index(sf, sf->refs[i].from);

			if (trace_on())
				fprintf(stderr, "TRACE root %llx <- %llx (site %llx%s)\n",
				        (unsigned long long)fn->start,
				        (unsigned long long)sf->refs[i].from,
				        (unsigned long long)sf->refs[i].site,
				        sf->refs[i].lea ? " lea" : "");
			called = true;
			if (ci < 0) {
				*ret_why = "from code outside any known function";
				always = true;
				break;
			}
			if (!seen[ci]) {
				if (qt >= ROOT_FUNCS_MAX) {
					*ret_why = "from too many functions to follow";
					always = true;
					break;
				}
				seen[ci] = 1;
				queue[qt++] = (uint32_t)ci;
			}
		}
		/* A function with no way in at all (not exported, never called,
		 * its address never taken or stored) is dead code: in a shared
		 * library nothing can reach it, so no program needs what it uses.
		 * It stays in the library's own list. */
		(void)called;
	}
	*ret_always = always;
out:
	free(queue);
	free(seen);
	return r;
}

/* After ana_run on sf->g: is some feature use left outside guarded blocks? */
static bool uses_left(struct scan_file *sf)
{
	for (size_t k = 0; k < sf->g.ninsns; k++) {
		const struct scan_insn *si = &sf->g.insns[k];

		if (sf->g.blocks[si->block].guarded)
			continue;
		for (int j = 0; j < si->nfeat; j++)
			if (!scan_feature_trivial(si->feat[j]))
				return true;
	}
	return false;
}

static int classify_func(struct scan_file *sf, size_t fi)
{
	struct tgvm_featureset reqf;
	struct tgvm_strv names;
	bool roots_done = false, always = false;
	const char *root_why = "";
	struct scan_func *fn = &sf->funcs[fi];
	struct ana a = {.sf = sf, .fi = fi};
	bool whole = false;
	enum scan_guard_kind wk = SCAN_G_NONE;
	uint64_t waddr = 0;
	char wdetail[160] = "";
	int r;

	if (fn->flags & SCAN_FN_GUARDED || func_guarded(sf, fi, 0)) {
		const struct scan_sym *gs;

		fn = &sf->funcs[fi];
		whole = true;
		wk = fn->guard_kind;
		waddr = fn->guard_addr;
		gs = scan_elf_symbol_near(&sf->elf, waddr);
		if (wk == SCAN_G_CALLER && (fn->flags & SCAN_FN_EXPORTED))
			snprintf(wdetail, sizeof(wdetail),
			         "exported, but every caller in the program is guarded (rule: "
			         "entered from outside), e.g. %s at 0x%llx",
			         gs ? gs->name : "?", (unsigned long long)waddr);
		else if (wk == SCAN_G_CALLER)
			snprintf(wdetail, sizeof(wdetail),
			         "only reached from guarded code, e.g. %s at 0x%llx",
			         gs ? gs->name : "?", (unsigned long long)waddr);
		else
			snprintf(wdetail, sizeof(wdetail), "returned by the resolver %s at 0x%llx",
			         gs ? gs->name : "?", (unsigned long long)waddr);
	}
	tgvm_featureset_clear(&reqf);
	tgvm_strv_init(&names);
	sf->cur_func = sf->funcs[fi].start;
	if ((r = scan_cfg_build(sf, fi)) < 0)
		return r;
	if (!whole) {
		/* a first pass without what callers hand over settles most
		 * functions; the full one follows only when a use is left */
		a.no_entry = true;
		if ((r = ana_run(&a)) < 0)
			goto out;
		if (uses_left(sf)) {
			ana_release(&a);
			a = (struct ana){.sf = sf, .fi = fi};
			if ((r = ana_run(&a)) < 0)
				goto out;
		}
	}
	fn = &sf->funcs[fi];
	for (size_t k = 0; k < sf->g.ninsns; k++) {
		const struct scan_insn *si = &sf->g.insns[k];

		for (int j = 0; j < si->nfeat; j++) {
			enum tgvm_feature f = si->feat[j];
			char detail[200];

			if (scan_feature_trivial(f))
				continue;
			if (sf->hwcaps_level) {
				struct tgvm_featureset lv;

				tgvm_psabi_set(sf->hwcaps_level, &lv);
				if (tgvm_featureset_has(&lv, f)) {
					snprintf(detail, sizeof(detail),
					         "library in glibc-hwcaps/x86-64-v%d: loaded only "
					         "on such CPUs",
					         sf->hwcaps_level);
					r = scan_result_use(sf, f, SCAN_C_GUARDED, si->addr, detail,
					                    SCAN_G_HWCAPS, 0);
					if (r < 0)
						goto out;
					continue;
				}
			}
			if (whole) {
				r = scan_result_use(sf, f, SCAN_C_GUARDED, si->addr, wdetail, wk,
				                    waddr);
			} else if (sf->g.blocks[si->block].guarded) {
				const struct scan_block *cb =
				    &sf->g.blocks[sf->g.blocks[si->block].guard_block];
				const struct scan_insn *jcc = &sf->g.insns[cb->first + cb->n - 1];
				enum scan_guard_kind gk;
				char o[120];

				origin_text(&a, cb->check_origin, o, sizeof(o), &gk);
				snprintf(detail, sizeof(detail), "branch at 0x%llx tests %s",
				         (unsigned long long)jcc->addr, o);
				r = scan_result_use(sf, f, SCAN_C_GUARDED, si->addr, detail, gk,
				                    jcc->addr);
			} else {
				const char *why;

				if (fn->flags & SCAN_FN_ENTRY)
					why = "no CPU check before it; the function is entered "
					      "from outside "
					      "(exported or entry point)";
				else if (fn->flags & SCAN_FN_DATAREF)
					why = "no CPU check before it; its address is stored in "
					      "data that "
					      "unguarded code uses";
				else if (fn->flags & SCAN_FN_RESOLVER)
					why = "inside an ifunc resolver";
				else
					why = "no CPU check dominates it on some path";
				if (probe_insn(sf, k))
					continue;
				if (func_dead(sf, fi)) {
					/* no way in: not an entry, exported, constructor
					 * or resolver, its address nowhere in data, and no
					 * live code calls it or takes its address. Either
					 * it never runs or a way in escaped the analysis:
					 * unknown, not required. */
					r = scan_result_use(
					    sf, f, SCAN_C_UNKNOWN, si->addr,
					    "unknown: no way into its function was "
					    "found (rule: dead code; no entry, export, "
					    "data reference or live caller)",
					    SCAN_G_NONE, 0);
					if (r < 0)
						goto out;
					continue;
				}
				if (!roots_done) {
					roots_done = true;
					if ((r = func_roots(sf, fi, &always, &names, &root_why)) <
					    0)
						goto out;
				}
				tgvm_featureset_add(&reqf, f);
				if (trace_on())
					fprintf(stderr, "TRACE required %llx in func %llx %s %s\n",
					        (unsigned long long)si->addr,
					        (unsigned long long)fn->start,
					        always ? "always" : "api", root_why);
				if (always) {
					snprintf(detail, sizeof(detail), "%s; reached %s", why,
					         root_why);
				} else {
					int o = snprintf(detail, sizeof(detail),
					                 "%s; reached only through", why);

					for (size_t q = 0;
					     q < names.n && o > 0 && (size_t)o < sizeof(detail);
					     q++)
						o +=
						    snprintf(detail + o, sizeof(detail) - (size_t)o,
						             "%s %s", q ? "," : "", names.v[q]);
				}
				r = scan_result_use(sf, f, SCAN_C_REQUIRED, si->addr, detail,
				                    SCAN_G_NONE, 0);
			}
			if (r < 0)
				goto out;
		}
	}
	if (!tgvm_featureset_empty(&reqf) &&
	    (r = scan_result_cond(sf->res, &reqf, always, &names)) < 0)
		goto out;
	r = 0;
out:
	tgvm_strv_release(&names);
	ana_release(&a);
	return r;
}

/*
 * Which functions may return a capability (a filter before func_cap_return's
 * data-flow, which is then asked only of them)? Those that run cpuid, xgetbv
 * or rdssp or read %fs, read a capability variable or a GOT slot naming one,
 * touch a displacement of a capability field, or call a function from the
 * lists or one that may. A least fixpoint over the call graph. -ENOMEM.
 */
static int may_cap(struct scan_file *sf)
{
	uint64_t fieldbits = 0;
	uint32_t *queue = malloc((sf->nfuncs ? sf->nfuncs : 1) * sizeof(*queue));
	size_t qh = 0, qt = 0;

	if (!queue)
		return -ENOMEM;
	for (size_t f = 0; f < sf->ncapfields; f++)
		fieldbits |= scan_disp_bit(sf->capfields[f]);
	for (size_t f = 0; f < sf->ncapbits; f++)
		fieldbits |= scan_disp_bit(sf->capbits[f].disp);
	for (size_t f = 0; f < sf->ncapshapes; f++)
		fieldbits |= scan_disp_bit(sf->capshapes[f].disp);
#define MARK(f)                                                                                    \
	do {                                                                                       \
		if (!(sf->funcs[f].flags & SCAN_FN_MAYCAP)) {                                      \
			sf->funcs[f].flags |= SCAN_FN_MAYCAP;                                      \
			queue[qt++] = (uint32_t)(f);                                               \
		}                                                                                  \
	} while (0)
	for (size_t f = 0; f < sf->nfuncs; f++) {
		sf->funcs[f].flags &= ~SCAN_FN_MAYCAP;
		if ((sf->funcs[f].flags & SCAN_FN_CAPBASE) || (sf->funcs[f].disps & fieldbits))
			MARK(f);
	}
	/* reads of capability variables and of GOT slots naming one or a getter */
	for (size_t i = 0; i < sf->ndrefs; i++) {
		const char *gs = scan_elf_gotsym(&sf->elf, sf->drefs[i].to);
		int f;

		if (!scan_is_cap_addr(sf, sf->drefs[i].to, NULL) &&
		    !(gs && (name_in(gs, cap_var_names, ARRAY_SIZE(cap_var_names)) ||
		             name_in(gs, cap_ptr_funcs, ARRAY_SIZE(cap_ptr_funcs)) ||
		             name_in(gs, cap_val_funcs, ARRAY_SIZE(cap_val_funcs)))))
			continue;
		if ((f = scan_func_index(sf, sf->drefs[i].from)) >= 0)
			MARK(f);
	}
	/* direct calls to getters by name (PLT stubs, local symbols) */
	for (size_t i = 0; i < sf->nrefs; i++) {
		const char *n;
		int f;

		if (sf->refs[i].lea || (i && sf->refs[i - 1].to == sf->refs[i].to))
			continue;
		n = call_target_name(sf, sf->refs[i].to);
		if (!name_in(n, cap_ptr_funcs, ARRAY_SIZE(cap_ptr_funcs)) &&
		    !name_in(n, cap_val_funcs, ARRAY_SIZE(cap_val_funcs)))
			continue;
		for (size_t j = i; j < sf->nrefs && sf->refs[j].to == sf->refs[i].to; j++)
			if (!sf->refs[j].lea && (f = scan_func_index(sf, sf->refs[j].from)) >= 0)
				MARK(f);
	}
	/* and whoever calls or jumps to one that may */
	while (qh < qt) {
		uint64_t start = sf->funcs[queue[qh++]].start;
		size_t lo = 0, hi = sf->nrefs;

		lo = hi = ref_lower_bound(sf->refs, lo, hi, start);
		for (size_t j = lo; j < sf->nrefs && sf->refs[j].to == start; j++) {
			int f = scan_func_index(sf, sf->refs[j].from);

			if (f >= 0 && !sf->refs[j].lea)
				MARK(f);
		}
	}
#undef MARK
	free(queue);
	sf->maycap_ready = true;
	return 0;
}

int scan_guard_classify(struct scan_file *sf, struct tgvm_error *reterr)
{
	int r;

	sf->icache_on = true;
	if ((r = mark_live(sf)) < 0 || (r = find_cap_vars(sf)) < 0 || (r = may_cap(sf)) < 0 ||
	    (r = propagate_caps(sf)) < 0)
		goto out;
	/* answers computed while capabilities were still being found are stale */
	memset(sf->sinfo_have, 0, sf->nrefs ? sf->nrefs : 1);
	memset(sf->leainfo, 0, (sf->nfuncs ? sf->nfuncs : 1) * sizeof(*sf->leainfo));
	for (size_t fi = 0; fi < sf->nfuncs; fi++) {
		struct scan_func *fn = &sf->funcs[fi];

		fn->flags &= ~(SCAN_FN_RESOLVED | SCAN_FN_GUARDED | SCAN_FN_ENTRYSET |
		               SCAN_FN_ENTRYPROV | SCAN_FN_SUMMARY);
		fn->guard_kind = SCAN_G_NONE;
		fn->cap_return = 0;
		free(fn->gblocks);
		free(fn->gchecks);
		fn->gblocks = NULL;
		fn->gchecks = NULL;
		fn->ngblocks = 0;
	}
	if ((r = mark_ifunc_targets(sf)) < 0 || (r = may_cap(sf)) < 0)
		goto out;
	if (trace_on())
		for (size_t i = 0; i < sf->ncaps; i++)
			fprintf(stderr, "TRACE cap %llx-%llx %s\n",
			        (unsigned long long)sf->caps[i].start,
			        (unsigned long long)sf->caps[i].end, sf->cap_names.v[i]);
	if (trace_on())
		for (size_t i = 0; i < sf->ncapfields; i++)
			fprintf(stderr, "TRACE field %llx\n", (unsigned long long)sf->capfields[i]);
	if (trace_on())
		for (size_t i = 0; i < sf->ncapbits; i++)
			fprintf(stderr, "TRACE bits %llx %x\n",
			        (unsigned long long)sf->capbits[i].disp, sf->capbits[i].mask);
	if (trace_on())
		for (size_t i = 0; i < sf->ncapshapes; i++)
			fprintf(stderr, "TRACE shape %llx store %llx n=%u\n",
			        (unsigned long long)sf->capshapes[i].disp,
			        (unsigned long long)sf->capshapes[i].store, sf->capshapes[i].n);
	for (size_t fi = 0; fi < sf->nfuncs; fi++)
		if ((sf->funcs[fi].flags & SCAN_FN_USES) && (r = classify_func(sf, fi)) < 0)
			goto out;
	r = 0;
out:
	if (r == -ENOMEM)
		tgvm_error_set(reterr, ENOMEM, "out of memory");
	return r;
}
