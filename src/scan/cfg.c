// SPDX-License-Identifier: MIT
/*
 * Which bytes are code, and how control flows through them. Functions come
 * from symbol sizes and .eh_frame/.debug_frame FDEs; code outside those ranges
 * is found only by following calls and jumps from entry points, so bytes a
 * linear sweep would misread (tables and padding in .text) are never decoded.
 * Each function becomes a graph of basic blocks with dominators.
 */
#include <errno.h>
#include <gelf.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan-int.h"

#ifndef STT_GNU_IFUNC
#define STT_GNU_IFUNC 10
#endif

int scan_decode_one(const struct scan_file *sf, uint64_t addr, ZydisDecodedInstruction *insn,
                    ZydisDecodedOperand *ops)
{
	ZydisDecoderContext ctx;
	const uint8_t *p;
	size_t avail;

	p = scan_elf_code(&sf->elf, addr, &avail);
	if (!p)
		return -EFAULT;
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&sf->dec, &ctx, p, avail, insn)))
		return -EILSEQ;
	if (ops && !ZYAN_SUCCESS(ZydisDecoderDecodeOperands(&sf->dec, &ctx, insn, ops,
	                                                    insn->operand_count_visible)))
		return -EILSEQ;
	return 0;
}

/* ---- function table ---- */

int scan_func_index(const struct scan_file *sf, uint64_t addr)
{
	size_t lo = 0, hi = sf->nfuncs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sf->funcs[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -1;
	lo--;
	if (sf->funcs[lo].start == addr || (sf->funcs[lo].end && addr < sf->funcs[lo].end))
		return (int)lo;
	return -1;
}

int scan_func_at(const struct scan_file *sf, uint64_t addr)
{
	int i = scan_func_index(sf, addr);

	return i >= 0 && sf->funcs[i].start == addr ? i : -1;
}

/* Insert a function of unknown extent at @addr; returns its index or -errno. */
static int func_insert(struct scan_file *sf, uint64_t addr, uint64_t end)
{
	size_t lo = 0, hi = sf->nfuncs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sf->funcs[mid].start < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (sf->nfuncs == sf->cap_funcs) {
		size_t nc = sf->cap_funcs ? sf->cap_funcs * 2 : 256;
		struct scan_func *nv = realloc(sf->funcs, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		sf->funcs = nv;
		sf->cap_funcs = nc;
	}
	memmove(sf->funcs + lo + 1, sf->funcs + lo, (sf->nfuncs - lo) * sizeof(*sf->funcs));
	sf->funcs[lo] = (struct scan_func){.start = addr, .end = end};
	sf->nfuncs++;
	return (int)lo;
}

/* ---- one function's instructions ---- */

static void set_kind(struct scan_insn *si, const ZydisDecodedInstruction *in)
{
	bool rel = in->raw.imm[0].is_relative;

	si->kind = SCAN_I_PLAIN;
	switch (in->meta.category) {
	case ZYDIS_CATEGORY_COND_BR:
		si->kind = rel ? SCAN_I_JCC : SCAN_I_PLAIN;
		break;
	case ZYDIS_CATEGORY_UNCOND_BR:
		si->kind = rel ? SCAN_I_JMP : SCAN_I_JMP_IND;
		break;
	case ZYDIS_CATEGORY_CALL:
		si->kind = rel ? SCAN_I_CALL : SCAN_I_CALL_IND;
		break;
	case ZYDIS_CATEGORY_RET:
		si->kind = SCAN_I_RET;
		break;
	default:
		break;
	}
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
	case ZYDIS_MNEMONIC_UD2:
	case ZYDIS_MNEMONIC_HLT:
	case ZYDIS_MNEMONIC_INT3:
		si->kind = SCAN_I_STOP;
		break;
	case ZYDIS_MNEMONIC_CPUID:
	case ZYDIS_MNEMONIC_XGETBV:
		si->cpuid = 1;
		break;
	case ZYDIS_MNEMONIC_NOP:
		si->nop = 1;
		break;
	default:
		break;
	}
	if (in->attributes & ZYDIS_ATTRIB_HAS_SEGMENT_FS)
		si->fsmem = 1;
	if ((in->attributes & ZYDIS_ATTRIB_HAS_MODRM) && in->raw.modrm.mod != 3 &&
	    !(in->raw.modrm.mod == 0 && in->raw.modrm.rm == 5))
		si->disp = (int32_t)in->raw.disp.value;
	if (rel && (si->kind == SCAN_I_JCC || si->kind == SCAN_I_JMP || si->kind == SCAN_I_CALL))
		si->target = si->addr + in->length + (uint64_t)in->raw.imm[0].value.s;
	else if ((in->attributes & ZYDIS_ATTRIB_HAS_MODRM) && in->raw.modrm.mod == 0 &&
	         in->raw.modrm.rm == 5) {
		si->target = si->addr + in->length + (uint64_t)in->raw.disp.value;
		si->ripmem = 1;
		si->is_lea = in->mnemonic == ZYDIS_MNEMONIC_LEA;
	} else if (in->raw.imm[0].size >= 32 && !rel && in->raw.imm[0].value.u) {
		/* an absolute address in a non-PIE executable: treated like lea */
		si->target = in->raw.imm[0].value.u;
		si->is_lea = 1;
	}
}

static int push_insn(struct scan_graph *g, const struct scan_insn *si)
{
	if (g->ninsns == g->cap_insns) {
		size_t nc = g->cap_insns ? g->cap_insns * 2 : 1024;
		struct scan_insn *nv;

		if (nc > SCAN_FUNC_INSNS_MAX)
			return -E2BIG;
		nv = realloc(g->insns, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		g->insns = nv;
		g->cap_insns = nc;
	}
	g->insns[g->ninsns++] = *si;
	return 0;
}

static int decode_into(struct scan_file *sf, uint64_t addr, struct scan_insn *si)
{
	ZydisDecodedInstruction in;
	enum tgvm_feature f[SCAN_INSN_FEATURES_MAX];
	const uint8_t *p;
	size_t avail;
	int n;

	p = scan_elf_code(&sf->elf, addr, &avail);
	if (!p || !ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&sf->dec, NULL, p, avail, &in)))
		return -EILSEQ;
	memset(si, 0, sizeof(*si));
	si->addr = addr;
	si->len = in.length;
	set_kind(si, &in);
	n = scan_isa_features(&in, f);
	si->nfeat = (uint8_t)n;
	for (int i = 0; i < n; i++)
		si->feat[i] = (uint16_t)f[i];
	return 0;
}

static int cmp_insn(const void *a, const void *b)
{
	const struct scan_insn *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

long scan_cfg_insn_find(const struct scan_graph *g, uint64_t addr)
{
	size_t lo = 0, hi = g->ninsns;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->insns[mid].addr < addr)
			lo = mid + 1;
		else if (g->insns[mid].addr > addr)
			hi = mid;
		else
			return (long)mid;
	}
	return -1;
}

/* A small open-addressing set of addresses for the traversal of unknown extents. */
struct aset {
	uint64_t *v;
	size_t cap, n;
};

static bool aset_add(struct aset *s, uint64_t a)
{
	size_t h;

	if (!a)
		return false;
	if (2 * (s->n + 1) > s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 1024;
		uint64_t *nv = calloc(nc, sizeof(*nv));

		if (!nv)
			return false;
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i]) {
				size_t j = (s->v[i] * 0x9e3779b97f4a7c15ULL) >> 20 & (nc - 1);

				while (nv[j])
					j = (j + 1) & (nc - 1);
				nv[j] = s->v[i];
			}
		free(s->v);
		s->v = nv;
		s->cap = nc;
	}
	h = (a * 0x9e3779b97f4a7c15ULL) >> 20 & (s->cap - 1);
	while (s->v[h]) {
		if (s->v[h] == a)
			return false;
		h = (h + 1) & (s->cap - 1);
	}
	s->v[h] = a;
	s->n++;
	return true;
}

static bool ends_block(const struct scan_insn *si)
{
	return si->kind == SCAN_I_JCC || si->kind == SCAN_I_JMP || si->kind == SCAN_I_JMP_IND ||
	       si->kind == SCAN_I_RET || si->kind == SCAN_I_STOP;
}

static bool falls_through(const struct scan_insn *si)
{
	return si->kind != SCAN_I_JMP && si->kind != SCAN_I_JMP_IND && si->kind != SCAN_I_RET &&
	       si->kind != SCAN_I_STOP;
}

static int decode_range(struct scan_file *sf, const struct scan_func *fn)
{
	struct scan_graph *g = &sf->g;
	int r;

	for (uint64_t a = fn->start; a < fn->end;) {
		struct scan_insn si;

		if (decode_into(sf, a, &si) < 0) {
			size_t avail;

			/* a range a symbol or FDE declares past the end of the code
			 * (a hostile size, up to 4 GiB) ends with the code: work
			 * stays bounded by the file's size */
			if (!scan_elf_code(&sf->elf, a, &avail))
				break;
			a++; /* undecodable byte inside a function: resync */
			continue;
		}
		if (a + si.len > fn->end)
			break;
		if ((r = push_insn(g, &si)) < 0)
			return r;
		a += si.len;
	}
	return 0;
}

static int decode_follow(struct scan_file *sf, uint64_t start)
{
	struct scan_graph *g = &sf->g;
	struct aset seen = {0};
	uint64_t *work = NULL;
	size_t nwork = 0, capwork = 0;
	int r = 0;

	aset_add(&seen, start);
	work = malloc(64 * sizeof(*work));
	if (!work)
		return -ENOMEM;
	capwork = 64;
	work[nwork++] = start;
	while (nwork) {
		uint64_t a = work[--nwork];

		for (;;) {
			struct scan_insn si;
			int fi;

			if (decode_into(sf, a, &si) < 0)
				break;
			if ((r = push_insn(g, &si)) < 0)
				goto out;
			if ((si.kind == SCAN_I_JCC || si.kind == SCAN_I_JMP) &&
			    scan_elf_section_at(&sf->elf, si.target)) {
				fi = scan_func_index(sf, si.target);
				if ((fi < 0 || sf->funcs[fi].start == start) &&
				    aset_add(&seen, si.target)) {
					if (nwork == capwork) {
						uint64_t *nv =
						    realloc(work, 2 * capwork * sizeof(*nv));

						if (!nv) {
							r = -ENOMEM;
							goto out;
						}
						work = nv;
						capwork *= 2;
					}
					work[nwork++] = si.target;
				}
			}
			if (!falls_through(&si))
				break;
			a += si.len;
			fi = scan_func_index(sf, a);
			if ((fi >= 0 && sf->funcs[fi].start != start) || !aset_add(&seen, a))
				break; /* ran into another function or into decoded code */
		}
	}
	scan_sort(g->insns, g->ninsns, sizeof(*g->insns), cmp_insn);
out:
	free(work);
	free(seen.v);
	return r;
}

static int push_block(struct scan_graph *g, uint32_t first)
{
	if (g->nblocks == g->cap_blocks) {
		size_t nc = g->cap_blocks ? g->cap_blocks * 2 : 256;
		struct scan_block *nv = realloc(g->blocks, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		g->blocks = nv;
		g->cap_blocks = nc;
	}
	g->blocks[g->nblocks++] = (struct scan_block){.first = first,
	                                              .succ = {UINT32_MAX, UINT32_MAX},
	                                              .idom = UINT32_MAX,
	                                              .check_origin = -1,
	                                              .guard_block = -1};
	return 0;
}

/*
 * Dominators (Cooper, Harvey, Kennedy) over the blocks, with a virtual root
 * joining the function entry, the blocks nothing reaches and, when the
 * function jumps indirectly, the orphan blocks as successors of that jump.
 */
static int dominators(struct scan_graph *g)
{
	size_t nb = g->nblocks, V = nb;
	uint32_t *predoff = NULL, *preds = NULL, *rpo = NULL, *order = NULL, *stack = NULL;
	uint32_t *idom = NULL, *fill = NULL;
	uint8_t *state = NULL;
	size_t npreds = 0, nrpo = 0, nind = 0;
	int r = -ENOMEM;

	for (size_t b = 0; b < nb; b++)
		g->blocks[b].npred = 0;
	for (size_t b = 0; b < nb; b++) {
		for (int k = 0; k < 2; k++)
			if (g->blocks[b].succ[k] != UINT32_MAX)
				g->blocks[g->blocks[b].succ[k]].npred++;
		nind += g->blocks[b].ind_succ;
	}
	/* edges: real ones, indirect-jump -> orphan, V -> roots */
	{
		size_t norph = 0;

		for (size_t b = 0; b < nb; b++)
			norph += b != g->entry && g->blocks[b].npred == 0;
		npreds = 2 * nb + (nind ? nind * norph : 0) + nb + 1;
		if (nind && norph && nind * norph > 4u * 1024 * 1024)
			nind = 0; /* absurd: treat orphans as roots */
	}
	predoff = calloc(nb + 2, sizeof(*predoff));
	preds = malloc((npreds + 1) * sizeof(*preds));
	fill = calloc(nb + 1, sizeof(*fill));
	idom = malloc((nb + 1) * sizeof(*idom));
	order = malloc((nb + 1) * sizeof(*order));
	rpo = malloc((nb + 1) * sizeof(*rpo));
	stack = malloc(2 * (nb + 1) * sizeof(*stack));
	state = calloc(nb + 1, 1);
	if (!predoff || !preds || !fill || !idom || !order || !rpo || !stack || !state)
		goto out;

		/* successor lists are implicit; build predecessor lists (CSR) */
#define FOR_SUCC(b, body)                                                                          \
	do {                                                                                       \
		if ((b) == V) {                                                                    \
			for (uint32_t s_ = 0; s_ < nb; s_++)                                       \
				if (s_ == g->entry || (g->blocks[s_].npred == 0 && !nind)) {       \
					uint32_t s = s_;                                           \
					body;                                                      \
				}                                                                  \
		} else {                                                                           \
			for (int k_ = 0; k_ < 2; k_++)                                             \
				if (g->blocks[b].succ[k_] != UINT32_MAX) {                         \
					uint32_t s = g->blocks[b].succ[k_];                        \
					body;                                                      \
				}                                                                  \
			if (g->blocks[b].ind_succ && nind)                                         \
				for (uint32_t s_ = 0; s_ < nb; s_++)                               \
					if (s_ != g->entry && g->blocks[s_].npred == 0) {          \
						uint32_t s = s_;                                   \
						body;                                              \
					}                                                          \
		}                                                                                  \
	} while (0)

	for (uint32_t b = 0; b <= V; b++)
		FOR_SUCC(b, predoff[s + 1]++);
	for (size_t b = 0; b <= nb; b++)
		predoff[b + 1] += predoff[b];
	if (predoff[nb + 1] > npreds)
		goto out;
	for (uint32_t b = 0; b <= V; b++)
		FOR_SUCC(b, preds[predoff[s] + fill[s]++] = b);

	/* iterative DFS from V for reverse post-order */
	{
		size_t sp = 0;

		stack[sp++] = (uint32_t)V;
		state[V] = 1;
		while (sp) {
			uint32_t b = stack[sp - 1];
			bool pushed = false;

			FOR_SUCC(b, {
				if (!pushed && !state[s]) {
					state[s] = 1;
					stack[sp++] = s;
					pushed = true;
				}
			});
			if (!pushed) {
				order[nrpo++] = b;
				sp--;
			}
		}
	}
#undef FOR_SUCC
	/* order[] is post-order; rpo index of each block */
	for (size_t i = 0; i <= nb; i++)
		rpo[i] = UINT32_MAX;
	for (size_t i = 0; i < nrpo; i++)
		rpo[order[i]] = (uint32_t)(nrpo - 1 - i);
	for (size_t i = 0; i <= nb; i++)
		idom[i] = UINT32_MAX;
	idom[V] = (uint32_t)V;
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = nrpo; i-- > 0;) {
			uint32_t b = order[i], nd = UINT32_MAX;

			if (b == V)
				continue;
			for (uint32_t k = predoff[b]; k < predoff[b + 1]; k++) {
				uint32_t p = preds[k];

				if (idom[p] == UINT32_MAX)
					continue;
				if (nd == UINT32_MAX) {
					nd = p;
					continue;
				}
				{
					uint32_t x = p, y = nd;

					while (x != y) {
						while (rpo[x] > rpo[y])
							x = idom[x];
						while (rpo[y] > rpo[x])
							y = idom[y];
					}
					nd = x;
				}
			}
			if (nd != UINT32_MAX && idom[b] != nd) {
				idom[b] = nd;
				changed = true;
			}
		}
	}
	for (size_t b = 0; b < nb; b++)
		g->blocks[b].idom = idom[b] == V ? UINT32_MAX : idom[b];
	r = 0;
out:
	free(predoff);
	free(preds);
	free(fill);
	free(idom);
	free(order);
	free(rpo);
	free(stack);
	free(state);
	return r;
}

int scan_cfg_build(struct scan_file *sf, size_t fi)
{
	struct scan_graph *g = &sf->g;
	const struct scan_func *fn = &sf->funcs[fi];
	uint8_t *leader = NULL;
	int r;

	g->ninsns = 0;
	g->nblocks = 0;
	if (fn->icache) { /* decoded before, in this (guard) phase */
		if (g->cap_insns < fn->nicache) {
			struct scan_insn *nv = realloc(g->insns, fn->nicache * sizeof(*nv));

			if (!nv)
				return -ENOMEM;
			g->insns = nv;
			g->cap_insns = fn->nicache;
		}
		memcpy(g->insns, fn->icache, fn->nicache * sizeof(*g->insns));
		g->ninsns = fn->nicache;
		r = 0;
	} else {
		r = fn->end ? decode_range(sf, fn) : decode_follow(sf, fn->start);
		if (r < 0 && r != -E2BIG)
			return r;
		/* once functions are all known, keep what was decoded: the guard
		 * analysis builds most graphs several times */
		if (sf->icache_on && g->ninsns &&
		    sf->icache_bytes + g->ninsns * sizeof(*g->insns) <= SCAN_ICACHE_MAX) {
			struct scan_func *w = &sf->funcs[fi];

			w->icache = malloc(g->ninsns * sizeof(*g->insns));
			if (w->icache) {
				memcpy(w->icache, g->insns, g->ninsns * sizeof(*g->insns));
				w->nicache = (uint32_t)g->ninsns;
				sf->icache_bytes += g->ninsns * sizeof(*g->insns);
			}
		}
	}
	if (!g->ninsns)
		return 0;
	leader = calloc(g->ninsns, 1);
	if (!leader)
		return -ENOMEM;
	leader[0] = 1;
	for (size_t i = 0; i < g->ninsns; i++) {
		const struct scan_insn *si = &g->insns[i];

		if ((si->kind == SCAN_I_JCC || si->kind == SCAN_I_JMP)) {
			long t = scan_cfg_insn_find(g, si->target);

			if (t >= 0)
				leader[t] = 1;
		}
		if (i + 1 < g->ninsns &&
		    (ends_block(si) || g->insns[i + 1].addr != si->addr + si->len))
			leader[i + 1] = 1;
	}
	for (size_t i = 0; i < g->ninsns; i++) {
		if (leader[i] && (r = push_block(g, (uint32_t)i)) < 0)
			goto out;
		g->insns[i].block = (uint32_t)(g->nblocks - 1);
		g->blocks[g->nblocks - 1].n++;
	}
	for (size_t b = 0; b < g->nblocks; b++) {
		struct scan_block *bl = &g->blocks[b];
		const struct scan_insn *last = &g->insns[bl->first + bl->n - 1];
		int k = 0;

		if ((last->kind == SCAN_I_JCC || last->kind == SCAN_I_JMP)) {
			long t = scan_cfg_insn_find(g, last->target);

			if (t >= 0)
				bl->succ[k++] = g->insns[t].block;
		}
		if (falls_through(last) && b + 1 < g->nblocks &&
		    g->insns[g->blocks[b + 1].first].addr == last->addr + last->len)
			bl->succ[k++] = (uint32_t)b + 1;
		bl->ind_succ = last->kind == SCAN_I_JMP_IND;
	}
	/* Alignment padding between the parts of a function decodes as nops that
	 * nothing jumps to and that fall into the next part; as roots they would
	 * hide every dominator. Cut them off. */
	for (size_t b = 0; b < g->nblocks; b++)
		g->blocks[b].npred = 0;
	for (size_t b = 0; b < g->nblocks; b++)
		for (int k = 0; k < 2; k++)
			if (g->blocks[b].succ[k] != UINT32_MAX)
				g->blocks[g->blocks[b].succ[k]].npred++;
	g->entry = 0;
	for (size_t b = 0; b < g->nblocks; b++) {
		struct scan_block *bl = &g->blocks[b];
		bool pad = true;

		if (g->insns[bl->first].addr == fn->start)
			g->entry = (uint32_t)b;
		for (uint32_t k = bl->first; k < bl->first + bl->n && pad; k++)
			pad = g->insns[k].nop;
		if (pad && bl->npred == 0 && g->insns[bl->first].addr != fn->start) {
			bl->succ[0] = bl->succ[1] = UINT32_MAX;
			bl->ind_succ = false;
		}
	}
	/* blocks own no dominators yet: scan_cfg_dominators() on demand */
	for (size_t b = 0; b < g->nblocks; b++)
		g->blocks[b].idom = UINT32_MAX;
	g->doms = false;
	r = 0;
out:
	free(leader);
	return r;
}

int scan_cfg_dominators(struct scan_graph *g)
{
	int r;

	if (g->doms)
		return 0;
	if ((r = dominators(g)) == 0)
		g->doms = true;
	return r;
}

/* ---- discovery ---- */

static pthread_once_t trivial_once = PTHREAD_ONCE_INIT;
static struct tgvm_featureset trivial;

static void trivial_init(void)
{
	tgvm_linux_baseline(&trivial);
}

bool scan_feature_trivial(enum tgvm_feature f)
{
	pthread_once(&trivial_once, trivial_init);
	return tgvm_featureset_has(&trivial, f);
}

static int push_ref(struct scan_file *sf, uint64_t to, uint64_t site, uint64_t from, bool lea)
{
	if (sf->nrefs == sf->cap_refs) {
		size_t nc = sf->cap_refs ? sf->cap_refs * 2 : 1024;
		struct scan_ref *nv = realloc(sf->refs, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		sf->refs = nv;
		sf->cap_refs = nc;
	}
	sf->refs[sf->nrefs++] = (struct scan_ref){to, site, from, lea};
	return 0;
}

static int push_dref(struct scan_file *sf, uint64_t to, uint64_t site, uint64_t from, bool lea)
{
	if (sf->ndrefs == sf->cap_drefs) {
		size_t nc = sf->cap_drefs ? sf->cap_drefs * 2 : 1024;
		struct scan_ref *nv = realloc(sf->drefs, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		sf->drefs = nv;
		sf->cap_drefs = nc;
	}
	sf->drefs[sf->ndrefs++] = (struct scan_ref){to, site, from, lea};
	return 0;
}

static int cmp_ref(const void *a, const void *b)
{
	const struct scan_ref *x = a, *y = b;

	return x->to < y->to ? -1 : x->to > y->to;
}

static bool in_code(const struct scan_file *sf, uint64_t addr)
{
	size_t avail;

	return scan_elf_code(&sf->elf, addr, &avail) != NULL;
}

/* Decode function @i, record trivial uses, references and new functions. */
static int discover_one(struct scan_file *sf, size_t *pi)
{
	size_t i = *pi;
	uint64_t start = sf->funcs[i].start;
	int r;

	if ((r = scan_cfg_build(sf, i)) < 0)
		return r;
	sf->funcs[i].flags |= SCAN_FN_DECODED;
	sf->cur_func = start;
	for (size_t k = 0; k < sf->g.ninsns; k++) {
		const struct scan_insn *si = &sf->g.insns[k];

		sf->insns++;
		sf->code_bytes += si->len;
		if (si->cpuid)
			sf->funcs[*pi].flags |= SCAN_FN_CPUID;
		if (si->cpuid || si->fsmem)
			sf->funcs[*pi].flags |= SCAN_FN_CAPBASE;
		if (si->disp)
			sf->funcs[*pi].disps |= scan_disp_bit(si->disp);
		for (int j = 0; j < si->nfeat; j++)
			if (si->feat[j] == TGVM_F_CET_SS)
				sf->funcs[*pi].flags |= SCAN_FN_CAPBASE;
		for (int j = 0; j < si->nfeat; j++) {
			if (scan_feature_trivial(si->feat[j])) {
				if ((r = scan_result_use(sf, si->feat[j], SCAN_C_REQUIRED, si->addr,
				                         "baseline x86-64 feature", SCAN_G_NONE,
				                         0)) < 0)
					return r;
			} else {
				sf->funcs[*pi].nuses++;
				sf->funcs[*pi].flags |= SCAN_FN_USES;
			}
		}
		if (si->ripmem && si->target && !in_code(sf, si->target)) {
			const struct scan_sec *sec = scan_elf_section_at(&sf->elf, si->target);

			if (sec && (sec->flags & SHF_WRITE) &&
			    (r = push_dref(sf, si->target, si->addr, start, si->is_lea)) < 0)
				return r;
			continue;
		}
		if (!si->target || !in_code(sf, si->target))
			continue;
		if (si->kind == SCAN_I_CALL || si->kind == SCAN_I_JMP || si->kind == SCAN_I_JCC ||
		    si->is_lea) {
			int fi = scan_func_index(sf, si->target);

			if (fi >= 0 && sf->funcs[fi].start == start && !si->is_lea)
				continue; /* inside this function */
			if (fi < 0 && !sf->funcs[*pi].end && si->kind != SCAN_I_CALL && !si->is_lea)
				continue; /* part of this traversal */
			/* a jump into the middle of another function (OpenSSL's
			 * "jnz .Lshaext_shortcut") enters that function */
			if ((r = push_ref(sf,
			                  fi >= 0 && !si->is_lea && sf->funcs[fi].end
			                      ? sf->funcs[fi].start
			                      : si->target,
			                  si->addr, start, si->is_lea)) < 0)
				return r;
			/* without symbols and frame ranges (a file read from its
			 * segments alone), an address taken is a function too */
			if (fi < 0 && (si->kind == SCAN_I_CALL || si->kind == SCAN_I_JMP ||
			               (si->is_lea && sf->elf.from_segments && !sf->elf.nfdes))) {
				int ni = func_insert(sf, si->target, 0);

				if (ni < 0)
					return ni;
				if ((size_t)ni <= *pi)
					(*pi)++;
			}
		}
	}
	return 0;
}

static int cmp_range_start(const void *a, const void *b)
{
	const struct scan_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? 1 : x->end > y->end ? -1 : 0;
}

int scan_cfg_discover(struct scan_file *sf, struct tgvm_error *reterr)
{
	const struct scan_elf *e = &sf->elf;
	struct scan_range *rs = NULL;
	size_t nr = 0;
	int r = 0;

	rs = malloc((e->nfdes + e->nsyms + 1) * sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	for (size_t i = 0; i < e->nfdes; i++)
		if (in_code(sf, e->fdes[i].start))
			rs[nr++] = e->fdes[i];
	for (size_t i = 0; i < e->nsyms; i++) {
		const struct scan_sym *s = &e->syms[i];

		if ((s->type == STT_FUNC || s->type == STT_GNU_IFUNC) && s->size &&
		    s->size < (1ULL << 32) && in_code(sf, s->addr))
			rs[nr++] = (struct scan_range){s->addr, s->addr + s->size};
	}
	scan_sort(rs, nr, sizeof(*rs), cmp_range_start);
	/* partition: one function per distinct start, clipped at the next start */
	for (size_t i = 0; i < nr; i++) {
		uint64_t end = rs[i].end;
		size_t j = i + 1;
		int fi;

		while (j < nr && rs[j].start == rs[i].start)
			j++;
		if (j < nr && rs[j].start < end)
			end = rs[j].start;
		if (sf->nfuncs && sf->funcs[sf->nfuncs - 1].start == rs[i].start)
			continue;
		fi = func_insert(sf, rs[i].start, end);
		if (fi < 0) {
			r = fi;
			goto out;
		}
		i = j - 1;
	}
	/* entry points whose extent no symbol or FDE gives */
	{
		/* read from segments with no frame ranges: code addresses
		 * stored in data are functions too */
		bool data = e->from_segments && !e->nfdes;
		const uint64_t *lists[] = {e->entries, e->irel, e->dataref};
		size_t ns[] = {e->nentries, e->nirel, data ? e->ndataref : 0};

		for (size_t l = 0; l < 3; l++)
			for (size_t i = 0; i < ns[l]; i++)
				if (in_code(sf, lists[l][i]) &&
				    scan_func_index(sf, lists[l][i]) < 0 &&
				    (r = func_insert(sf, lists[l][i], 0)) < 0)
					goto out;
		for (size_t i = 0; i < e->nsyms; i++)
			if ((e->syms[i].type == STT_FUNC || e->syms[i].type == STT_GNU_IFUNC) &&
			    in_code(sf, e->syms[i].addr) &&
			    scan_func_index(sf, e->syms[i].addr) < 0 &&
			    (r = func_insert(sf, e->syms[i].addr, 0)) < 0)
				goto out;
		r = 0;
	}
	for (size_t i = 0; i < sf->nfuncs; i++) {
		if (sf->funcs[i].flags & SCAN_FN_DECODED)
			continue;
		if ((r = discover_one(sf, &i)) < 0)
			goto out;
	}
	scan_sort(sf->refs, sf->nrefs, sizeof(*sf->refs), cmp_ref);
	scan_sort(sf->drefs, sf->ndrefs, sizeof(*sf->drefs), cmp_ref);

	/* who can be entered from outside */
	for (size_t i = 0; i < sf->nfuncs; i++) {
		struct scan_func *fn = &sf->funcs[i];
		const struct scan_sym *s = scan_elf_symbol_at(e, fn->start);

		if (scan_u64_sorted_has(e->entries, e->nentries, fn->start))
			fn->flags |= SCAN_FN_ENTRY;
		if (scan_u64_sorted_has(e->dataref, e->ndataref, fn->start))
			fn->flags |= SCAN_FN_DATAREF;
		if (scan_u64_sorted_has(e->irel, e->nirel, fn->start))
			fn->flags |= SCAN_FN_ENTRY | SCAN_FN_RESOLVER;
		for (; s && s->addr == fn->start; s++) {
			if (s->dyn && (s->bind == STB_GLOBAL || s->bind == STB_WEAK) &&
			    (s->vis == STV_DEFAULT || s->vis == STV_PROTECTED) &&
			    (s->type == STT_FUNC || s->type == STT_NOTYPE))
				fn->flags |= SCAN_FN_ENTRY | SCAN_FN_EXPORTED;
			if (s + 1 >= e->syms + e->nsyms)
				break;
		}
	}
out:
	free(rs);
	if (r == -ENOMEM)
		tgvm_error_set(reterr, ENOMEM, "out of memory");
	return r;
}
