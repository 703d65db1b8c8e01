// SPDX-License-Identifier: MIT
/*
 * The ELF facts the analysis needs, read with libelf from a mapped image:
 * executable sections, symbols (static and dynamic, IFUNC), relocations
 * (IRELATIVE resolvers, GOT slots, code addresses stored in data), function
 * ranges from .eh_frame/.debug_frame FDEs, DT_NEEDED and the x86 ISA-level
 * property note. Every count read from the file is bounded.
 */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan-int.h"

#ifndef R_X86_64_IRELATIVE
#define R_X86_64_IRELATIVE 37
#endif
#ifndef STT_GNU_IFUNC
#define STT_GNU_IFUNC 10
#endif
#ifndef PT_GNU_PROPERTY
#define PT_GNU_PROPERTY 0x6474e553
#endif
#ifndef GNU_PROPERTY_X86_ISA_1_NEEDED
#define GNU_PROPERTY_X86_ISA_1_NEEDED 0xc0008002u
#endif

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;

static void elf_init(void)
{
	elf_version(EV_CURRENT);
}

struct u64v {
	uint64_t *v;
	size_t n, cap;
};

static int u64v_push(struct u64v *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		uint64_t *nv = realloc(a->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n++] = x;
	return 0;
}

struct refv {
	struct scan_ref *v;
	size_t n, cap;
};

static int refv_push(struct refv *a, uint64_t to, uint64_t slot)
{
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 64;
		struct scan_ref *nv = realloc(a->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = nc;
	}
	a->v[a->n++] = (struct scan_ref){to, slot, 0, false};
	return 0;
}

static int cmp_ref_to(const void *a, const void *b)
{
	const struct scan_ref *x = a, *y = b;

	if (x->to != y->to)
		return x->to < y->to ? -1 : 1;
	return x->site < y->site ? -1 : x->site > y->site;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static size_t sort_uniq(uint64_t *v, size_t n)
{
	size_t k = 0;

	if (!n)
		return 0;
	scan_sort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 1; i < n; i++)
		if (v[i] != v[k])
			v[++k] = v[i];
	return k + 1;
}

bool scan_u64_sorted_has(const uint64_t *v, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < x)
			lo = mid + 1;
		else if (v[mid] > x)
			hi = mid;
		else
			return true;
	}
	return false;
}

/* The range of sorted, disjoint @v (@n of them) holding @addr, or NULL. O(log n). */
static const struct scan_sec *sec_find(const struct scan_sec *v, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) { /* count of ranges starting at or below @addr */
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr - v[lo - 1].addr >= v[lo - 1].size)
		return NULL;
	return &v[lo - 1];
}

const struct scan_sec *scan_elf_section_at(const struct scan_elf *e, uint64_t addr)
{
	return sec_find(e->secs, e->nsecs, addr);
}

const uint8_t *scan_elf_code(const struct scan_elf *e, uint64_t addr, size_t *ret_avail)
{
	const struct scan_sec *s = sec_find(e->code, e->ncode, addr);
	uint64_t off;

	if (!s)
		return NULL;
	off = s->off + (addr - s->addr);
	if (off >= e->size)
		return NULL;
	*ret_avail = TGVM_MIN(s->size - (addr - s->addr), e->size - off);
	return e->data + off;
}

static bool is_code(const struct scan_elf *e, uint64_t addr)
{
	size_t avail;

	return scan_elf_code(e, addr, &avail) != NULL;
}

static int cmp_sym(const void *a, const void *b)
{
	const struct scan_sym *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* functions first, then larger, then static before dynamic */
	if ((x->type == STT_FUNC) != (y->type == STT_FUNC))
		return x->type == STT_FUNC ? -1 : 1;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return (int)x->dyn - (int)y->dyn;
}

const struct scan_sym *scan_elf_symbol_near(const struct scan_elf *e, uint64_t addr)
{
	size_t lo = 0, hi = e->nsyms, i;

	while (lo < hi) { /* count of symbols with addr <= @addr */
		size_t mid = lo + (hi - lo) / 2;

		if (e->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	/* the preferred name among those at the same address sorts first */
	for (i = lo - 1; i > 0 && e->syms[i - 1].addr == e->syms[i].addr; i--)
		;
	return &e->syms[i];
}

const struct scan_sym *scan_elf_symbol_containing(const struct scan_elf *e, uint64_t addr)
{
	size_t lo = 0, hi = e->nsyms;
	const struct scan_sym *best = NULL;

	while (lo < hi) { /* count of symbols with addr <= @addr */
		size_t mid = lo + (hi - lo) / 2;

		if (e->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* nested symbols (a local label inside a function) sit close below */
	for (size_t i = lo, k = 0; i > 0 && k < 64; i--, k++) {
		const struct scan_sym *s = &e->syms[i - 1];

		if (addr - s->addr < s->size || (!s->size && s->addr == addr)) {
			if (!best || s->addr != best->addr)
				best = s; /* the first of equal starts is the preferred name */
			if (i < 2 || e->syms[i - 2].addr != s->addr)
				break;
		} else if (best) {
			break;
		}
	}
	return best;
}

const struct scan_sym *scan_elf_symbol_at(const struct scan_elf *e, uint64_t addr)
{
	const struct scan_sym *s = scan_elf_symbol_near(e, addr);

	return s && s->addr == addr ? s : NULL;
}

const struct scan_sym *scan_elf_symbol_named(const struct scan_elf *e, const char *name)
{
	for (size_t i = 0; i < e->nsyms; i++)
		if (!strcmp(e->syms[i].name, name))
			return &e->syms[i];
	return NULL;
}

const char *scan_elf_gotsym(const struct scan_elf *e, uint64_t slot)
{
	size_t lo = 0, hi = e->ngotsyms;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->gotsyms[mid].slot < slot)
			lo = mid + 1;
		else if (e->gotsyms[mid].slot > slot)
			hi = mid;
		else
			return e->gotsyms[mid].name;
	}
	return NULL;
}

/* ---- DWARF call frame information: only the FDE address ranges ---- */

struct cur {
	const uint8_t *p, *end;
	uint64_t base; /* address of the section's first byte */
	const uint8_t *start;
	bool bad;
};

static uint64_t rd(struct cur *c, size_t n)
{
	uint64_t v = 0;

	if ((size_t)(c->end - c->p) < n) {
		c->bad = true;
		c->p = c->end;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += n;
	return v;
}

static uint64_t uleb(struct cur *c)
{
	uint64_t v = 0;

	for (int sh = 0; c->p < c->end; sh += 7) {
		uint8_t b = *c->p++;

		if (sh < 64)
			v |= (uint64_t)(b & 0x7f) << sh;
		if (!(b & 0x80))
			return v;
	}
	c->bad = true;
	return v;
}

static int64_t sleb(struct cur *c)
{
	uint64_t v = 0;
	int sh = 0;
	uint8_t b = 0x80;

	while (c->p < c->end && (b & 0x80)) {
		b = *c->p++;
		if (sh < 64)
			v |= (uint64_t)(b & 0x7f) << sh;
		sh += 7;
	}
	if (b & 0x80)
		c->bad = true;
	else if (sh < 64 && (b & 0x40))
		v |= ~0ULL << sh;
	return (int64_t)v;
}

/* Read a pointer in DW_EH_PE encoding @enc; @apply adds the pc-relative base. */
static uint64_t rd_enc(struct cur *c, uint8_t enc, bool apply)
{
	uint64_t here = c->base + (uint64_t)(c->p - c->start);
	uint64_t v;

	if (enc == 0xff)
		return 0;
	switch (enc & 0x0f) {
	case 0x00:
		v = rd(c, 8);
		break;
	case 0x01:
		v = uleb(c);
		break;
	case 0x02:
		v = rd(c, 2);
		break;
	case 0x03:
		v = rd(c, 4);
		break;
	case 0x04:
		v = rd(c, 8);
		break;
	case 0x09:
		v = (uint64_t)sleb(c);
		break;
	case 0x0a:
		v = (uint64_t)(int64_t)(int16_t)rd(c, 2);
		break;
	case 0x0b:
		v = (uint64_t)(int64_t)(int32_t)rd(c, 4);
		break;
	case 0x0c:
		v = rd(c, 8);
		break;
	default:
		c->bad = true;
		return 0;
	}
	if (apply && (enc & 0x70) == 0x10)
		v += here;
	return v;
}

struct cie_info {
	uint8_t fde_enc;
	bool aug_z;
};

static bool parse_cie(const uint8_t *sec, size_t size, uint64_t base, size_t off, bool eh,
                      struct cie_info *ret)
{
	struct cur c = {sec + off, sec + size, base, sec, false};
	uint64_t len = rd(&c, 4);
	bool is64 = len == 0xffffffff;
	const char *aug;
	uint8_t version;

	if (is64)
		len = rd(&c, 8);
	if (c.bad || len > (uint64_t)(c.end - c.p))
		return false;
	c.end = c.p + len;
	rd(&c, is64 && !eh ? 8 : 4); /* CIE id */
	version = (uint8_t)rd(&c, 1);
	aug = (const char *)c.p;
	while (c.p < c.end && *c.p)
		c.p++;
	if (c.p >= c.end)
		return false;
	c.p++;
	ret->fde_enc = 0x00; /* absolute 8-byte pointers unless 'R' says otherwise */
	ret->aug_z = aug[0] == 'z';
	if (!eh && version >= 4)
		rd(&c, 2); /* address_size, segment_size */
	if (aug[0] == 'e' && aug[1] == 'h')
		rd(&c, 8);
	uleb(&c);
	sleb(&c);
	if (version == 1)
		rd(&c, 1);
	else
		uleb(&c);
	if (ret->aug_z) {
		uleb(&c);
		for (const char *a = aug + 1; *a && !c.bad; a++) {
			if (*a == 'R') {
				ret->fde_enc = (uint8_t)rd(&c, 1);
			} else if (*a == 'P') {
				uint8_t penc = (uint8_t)rd(&c, 1);

				rd_enc(&c, penc & 0x7f, false);
			} else if (*a == 'L') {
				rd(&c, 1);
			} else if (*a != 'S' && *a != 'B' && *a != 'G') {
				break;
			}
		}
	}
	return !c.bad;
}

static int parse_frames(const uint8_t *sec, size_t size, uint64_t base, bool eh,
                        struct scan_range **fdes, size_t *nfdes, size_t *cap)
{
	size_t off = 0;

	while (off + 4 <= size && *nfdes < SCAN_ELF_FDES_MAX) {
		struct cur c = {sec + off, sec + size, base, sec, false};
		uint64_t len = rd(&c, 4), id, start, range;
		size_t hdr = 4, next;
		struct cie_info ci;
		size_t cie_off;

		if (len == 0) {
			if (eh)
				break; /* terminator */
			off += 4;
			continue;
		}
		if (len == 0xffffffff) {
			len = rd(&c, 8);
			hdr = 12;
		}
		if (c.bad || len > size - off - hdr)
			break;
		next = off + hdr + len;
		c.end = sec + next;
		{
			const uint8_t *idpos = c.p;

			id = rd(&c, hdr == 12 ? 8 : 4);
			if (eh) {
				if (id == 0) { /* CIE */
					off = next;
					continue;
				}
				if (id > (uint64_t)(idpos - sec))
					goto skip;
				cie_off = (size_t)(idpos - sec - id);
			} else {
				if (id == (hdr == 12 ? ~0ULL : 0xffffffffULL)) {
					off = next;
					continue;
				}
				if (id >= size)
					goto skip;
				cie_off = (size_t)id;
			}
		}
		if (!parse_cie(sec, size, base, cie_off, eh, &ci))
			goto skip;
		if (!eh)
			ci.fde_enc = 0x00;
		start = rd_enc(&c, ci.fde_enc, true);
		range = rd_enc(&c, ci.fde_enc & 0x0f, false);
		if (!c.bad && range && range < (1ULL << 32) && start + range > start) {
			if (*nfdes == *cap) {
				size_t nc = *cap ? *cap * 2 : 256;
				struct scan_range *nv = realloc(*fdes, nc * sizeof(**fdes));

				if (!nv)
					return -ENOMEM;
				*fdes = nv;
				*cap = nc;
			}
			(*fdes)[(*nfdes)++] = (struct scan_range){start, start + range};
		}
	skip:
		off = next;
	}
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct scan_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->end < y->end ? 1 : x->end > y->end ? -1 : 0;
}

static int cmp_gotsym(const void *a, const void *b)
{
	const struct scan_gotsym *x = a, *y = b;

	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* GNU property note: the x86 ISA level the object says it needs. */
static int parse_property(const uint8_t *p, size_t size)
{
	size_t off = 0;
	int level = 0;

	while (off + 12 <= size) {
		uint32_t namesz, descsz, type;
		size_t desc;

		memcpy(&namesz, p + off, 4);
		memcpy(&descsz, p + off + 4, 4);
		memcpy(&type, p + off + 8, 4);
		desc = off + 12 + ((namesz + 3) & ~3u);
		if (namesz > size || descsz > size || desc > size || descsz > size - desc)
			break;
		if (type == 5 && namesz == 4 && !memcmp(p + off + 12, "GNU", 4)) {
			for (size_t q = desc; q + 8 <= desc + descsz;) {
				uint32_t pt, psz;

				memcpy(&pt, p + q, 4);
				memcpy(&psz, p + q + 4, 4);
				if (psz > descsz)
					break;
				if (pt == GNU_PROPERTY_X86_ISA_1_NEEDED && psz >= 4 &&
				    q + 12 <= desc + descsz) {
					uint32_t bits;

					memcpy(&bits, p + q + 8, 4);
					for (int l = 4; l >= 1; l--)
						if (bits & (1u << (l - 1))) {
							level = TGVM_MAX(level, l);
							break;
						}
				}
				q += 8 + ((psz + 7) & ~7u);
			}
		}
		off = desc + ((descsz + 7) & ~7u);
	}
	return level;
}

/* ---- what both views (sections, segments) add to the result ---- */

struct build {
	struct scan_elf *e;
	struct u64v irel, dref, ents;
	struct refv slots, dptrs;
	size_t nsyms_cap, gcap, fdes_cap;
};

static void build_release(struct build *b)
{
	free(b->slots.v);
	free(b->dptrs.v);
	free(b->irel.v);
	free(b->dref.v);
	free(b->ents.v);
	memset(b, 0, sizeof(*b));
}

/* One symbol-table entry: an import (undefined, dynamic) or a symbol worth keeping. */
static int build_symbol(struct build *b, const GElf_Sym *s, const char *name, bool dyn)
{
	struct scan_elf *e = b->e;
	uint8_t t = GELF_ST_TYPE(s->st_info);
	int r;

	if (!name)
		name = "";
	if (s->st_shndx == SHN_UNDEF && dyn && s->st_name && t != STT_TLS &&
	    e->imports.n < SCAN_ELF_SYMBOLS_MAX)
		return *name ? tgvm_strv_push(&e->imports, name) : 0;
	if (s->st_shndx == SHN_UNDEF || !s->st_value || s->st_shndx == SHN_ABS)
		return 0;
	if (t != STT_FUNC && t != STT_GNU_IFUNC && t != STT_OBJECT && t != STT_NOTYPE)
		return 0;
	if (t == STT_NOTYPE && (!*name || name[0] == '$' || !is_code(e, s->st_value)))
		return 0;
	if (t == STT_GNU_IFUNC && (r = u64v_push(&b->irel, s->st_value)) < 0)
		return r;
	if (e->nsyms == b->nsyms_cap) {
		size_t nc = b->nsyms_cap ? b->nsyms_cap * 2 : 1024;
		struct scan_sym *nv;

		if (nc > SCAN_ELF_SYMBOLS_MAX)
			return 0; /* the tables' sizes bound this already */
		nv = realloc(e->syms, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		e->syms = nv;
		b->nsyms_cap = nc;
	}
	e->syms[e->nsyms++] = (struct scan_sym){s->st_value,
	                                        s->st_size,
	                                        name,
	                                        t,
	                                        GELF_ST_BIND(s->st_info),
	                                        GELF_ST_VISIBILITY(s->st_other),
	                                        dyn};
	return 0;
}

/* One relocation. @s is its symbol (NULL: none or unreadable), named @sname. */
static int build_rela(struct build *b, const GElf_Rela *ra, const GElf_Sym *s, const char *sname)
{
	struct scan_elf *e = b->e;
	uint32_t type = GELF_R_TYPE(ra->r_info);
	uint64_t to;
	int r;

	if (type == R_X86_64_IRELATIVE)
		return u64v_push(&b->irel, (uint64_t)ra->r_addend);
	if (type == R_X86_64_RELATIVE) {
		to = (uint64_t)ra->r_addend;
		if (is_code(e, to))
			return (r = u64v_push(&b->dref, to)) < 0
			           ? r
			           : refv_push(&b->slots, to, ra->r_offset);
		return refv_push(&b->dptrs, to, ra->r_offset);
	}
	if ((type != R_X86_64_GLOB_DAT && type != R_X86_64_JUMP_SLOT && type != R_X86_64_64) ||
	    !GELF_R_SYM(ra->r_info) || !s)
		return 0;
	to = s->st_value + (uint64_t)ra->r_addend;
	if (s->st_shndx != SHN_UNDEF && is_code(e, to) && type != R_X86_64_JUMP_SLOT &&
	    ((r = u64v_push(&b->dref, to)) < 0 || (r = refv_push(&b->slots, to, ra->r_offset)) < 0))
		return r;
	if (sname && *sname) {
		if (e->ngotsyms == b->gcap) {
			size_t nc = b->gcap ? b->gcap * 2 : 256;
			struct scan_gotsym *nv = realloc(e->gotsyms, nc * sizeof(*nv));

			if (!nv)
				return -ENOMEM;
			e->gotsyms = nv;
			b->gcap = nc;
		}
		e->gotsyms[e->ngotsyms++] = (struct scan_gotsym){ra->r_offset, sname};
	}
	return 0;
}

static int cmp_sec_addr(const void *a, const void *b)
{
	const struct scan_sec *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->size > y->size ? -1 : x->size < y->size;
}

static int cmp_sec_off(const void *a, const void *b)
{
	const struct scan_sec *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->size < y->size ? -1 : x->size > y->size;
}

/* Sort @v by address; false when two of them overlap. */
static bool secs_sort_disjoint(struct scan_sec *v, size_t n)
{
	scan_sort(v, n, sizeof(*v), cmp_sec_addr);
	for (size_t i = 1; i < n; i++)
		if (v[i].addr - v[i - 1].addr < v[i - 1].size)
			return false;
	return true;
}

/*
 * Sort @v by address and drop every range that overlaps one kept before it
 * (the larger of two at one address is kept): lookups then take O(log n).
 * Only relocatable objects, whose sections all start at 0, lose any.
 */
static size_t secs_sort_dedupe(struct scan_sec *v, size_t n)
{
	size_t k = 0;

	scan_sort(v, n, sizeof(*v), cmp_sec_addr);
	for (size_t i = 0; i < n; i++)
		if (!k || v[i].addr - v[k - 1].addr >= v[k - 1].size)
			v[k++] = v[i];
	return k;
}

/* The executable ones among e->secs, in address order. -ENOMEM. */
static int build_code_table(struct scan_elf *e)
{
	e->code = calloc(e->nsecs ? e->nsecs : 1, sizeof(*e->code));
	if (!e->code)
		return -ENOMEM;
	for (size_t i = 0; i < e->nsecs; i++)
		if ((e->secs[i].flags & SHF_EXECINSTR) && e->secs[i].type == SHT_PROGBITS)
			e->code[e->ncode++] = e->secs[i];
	return 0;
}

/* ---- program headers ---- */

struct seg {
	uint32_t type, flags;
	uint64_t off, vaddr, filesz, memsz;
};

/* File offset of virtual address @v inside a loaded segment, and the bytes
 * that follow it there (@loads sorted by address, disjoint). O(log n). */
static bool seg_off(const struct seg *loads, size_t n, uint64_t v, uint64_t *ret_off,
                    uint64_t *ret_avail)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (loads[mid].vaddr <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || v - loads[lo - 1].vaddr >= loads[lo - 1].filesz)
		return false;
	*ret_off = loads[lo - 1].off + (v - loads[lo - 1].vaddr);
	*ret_avail = loads[lo - 1].filesz - (v - loads[lo - 1].vaddr);
	return true;
}

/*
 * Do the section headers describe what the loader maps? Every allocated
 * section with contents lies inside one PT_LOAD at the matching address, code
 * only in executable segments, allocated sections do not overlap (in memory,
 * nor in the file), and inside each executable segment nothing but the file's
 * headers and alignment padding lies outside the sections. NULL when they
 * do, else the reason (static).
 */
static const char *sections_disagree(const struct scan_sec *all, size_t n, const struct seg *loads,
                                     size_t nloads, size_t size, uint64_t hdr_end,
                                     const uint64_t *align)
{
	struct scan_sec *v = NULL;
	size_t nv = 0;
	const char *why = NULL;

	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return "out of memory";
	for (size_t i = 0; i < n; i++) {
		const struct scan_sec *s = &all[i];
		bool in = false;

		if (s->type == SHT_NOBITS)
			continue;
		for (size_t k = 0; k < nloads && !in; k++) {
			const struct seg *l = &loads[k];

			in = s->addr >= l->vaddr && s->addr - l->vaddr <= l->filesz &&
			     s->size <= l->filesz - (s->addr - l->vaddr) &&
			     s->off == l->off + (s->addr - l->vaddr) &&
			     (!(s->flags & SHF_EXECINSTR) || (l->flags & PF_X));
		}
		if (!in && nloads) {
			why = (s->flags & SHF_EXECINSTR)
			          ? "an executable section lies outside "
			            "the executable segments"
			          : "a section lies outside the loaded segments";
			goto out;
		}
		v[nv] = *s;
		v[nv].align = align[i];
		nv++;
	}
	if (!secs_sort_disjoint(v, nv)) {
		why = "sections overlap";
		goto out;
	}
	scan_sort(v, nv, sizeof(*v), cmp_sec_off);
	for (size_t i = 1; i < nv; i++)
		if (v[i].off - v[i - 1].off < v[i - 1].size) {
			why = "sections overlap in the file";
			goto out;
		}
	/* inside each executable segment: headers, sections, padding */
	for (size_t k = 0; k < nloads; k++) {
		const struct seg *l = &loads[k];
		uint64_t at = l->off, end = l->off + l->filesz;

		if (!(l->flags & PF_X) || end > size)
			continue; /* beyond the file: a separate debug file's */
		if (at < hdr_end)
			at = TGVM_MIN(hdr_end, end);
		for (size_t i = 0; i < nv && at < end; i++) {
			uint64_t a = v[i].align > 1 ? v[i].align : 1, pad;

			if (v[i].off + v[i].size <= at || v[i].off >= end)
				continue;
			if (v[i].off > at) {
				/* only the padding that aligns this section */
				pad = (a - (at % a)) % a;
				if (v[i].off - at > pad && v[i].off - at >= 16) {
					why = "an executable segment holds bytes no section "
					      "describes";
					goto out;
				}
			}
			at = TGVM_MAX(at, v[i].off + v[i].size);
		}
		if (at < end && end - at >= 16) {
			why = "an executable segment holds bytes no section describes";
			goto out;
		}
	}
out:
	free(v);
	return why;
}

/* ---- the segment view: what a loader reads ---- */

static int dyn_read_syms(struct build *b, const struct seg *loads, size_t nloads, uint64_t symtab,
                         uint64_t nsym, const char *str, uint64_t strsz)
{
	struct scan_elf *e = b->e;
	uint64_t off, avail;
	int r;

	if (!seg_off(loads, nloads, symtab, &off, &avail))
		return -EINVAL;
	nsym = TGVM_MIN(nsym, avail / sizeof(Elf64_Sym));
	for (uint64_t i = 1; i < nsym; i++) {
		Elf64_Sym raw;
		GElf_Sym s;
		const char *name = NULL;

		memcpy(&raw, e->data + off + i * sizeof(raw), sizeof(raw));
		s = (GElf_Sym){raw.st_name,  raw.st_info,  raw.st_other,
		               raw.st_shndx, raw.st_value, raw.st_size};
		if (str && raw.st_name < strsz && memchr(str + raw.st_name, 0, strsz - raw.st_name))
			name = str + raw.st_name;
		if ((r = build_symbol(b, &s, name, true)) < 0)
			return r;
	}
	return 0;
}

/* Symbols in DT_GNU_HASH: one past the highest index its chains reach. */
static bool gnu_hash_count(const uint8_t *p, uint64_t avail, uint64_t *ret)
{
	uint32_t nbuckets, symoffset, bloom_size, max = 0;
	uint64_t buckets, chains;

	if (avail < 16)
		return false;
	memcpy(&nbuckets, p, 4);
	memcpy(&symoffset, p + 4, 4);
	memcpy(&bloom_size, p + 8, 4);
	buckets = 16 + (uint64_t)bloom_size * 8;
	chains = buckets + (uint64_t)nbuckets * 4;
	if (chains > avail)
		return false;
	for (uint32_t i = 0; i < nbuckets; i++) {
		uint32_t bk;

		memcpy(&bk, p + buckets + 4ull * i, 4);
		max = TGVM_MAX(max, bk);
	}
	if (max < symoffset) {
		*ret = symoffset;
		return true;
	}
	for (uint64_t i = max;; i++) { /* walk the last chain to its end bit */
		uint64_t at = chains + (i - symoffset) * 4;
		uint32_t h;

		if (at + 4 > avail)
			return false;
		memcpy(&h, p + at, 4);
		if (h & 1) {
			*ret = i + 1;
			return true;
		}
	}
}

/*
 * Read what the loader reads: PT_LOAD segments (code: the executable ones),
 * PT_DYNAMIC (symbols from DT_SYMTAB counted by DT_GNU_HASH or DT_HASH,
 * relocations, DT_NEEDED, DT_INIT/FINI), PT_GNU_EH_FRAME (function ranges)
 * and the GNU property note. Fills e->secs, e->code. Errors name what could
 * not be read.
 */
static int read_segments(struct build *b, const struct seg *ph, size_t nph, const struct seg *loads,
                         size_t nloads, struct tgvm_error *reterr)
{
	struct scan_elf *e = b->e;
	const uint8_t *data = e->data;
	uint64_t code_total = 0;
	int r;

	for (size_t i = 0; i < nloads; i++)
		if (loads[i].off > e->size || loads[i].filesz > e->size - loads[i].off)
			return tgvm_error_set(
			    reterr, EINVAL,
			    "truncated ELF file: the segment at 0x%llx ends at byte "
			    "%llu, the file has %zu",
			    (unsigned long long)loads[i].vaddr,
			    (unsigned long long)(loads[i].off + loads[i].filesz), e->size);
	e->secs = calloc(2 * nloads + 1, sizeof(*e->secs));
	if (!e->secs)
		return -ENOMEM;
	for (size_t i = 0; i < nloads; i++) {
		const struct seg *l = &loads[i];
		uint64_t flags = SHF_ALLOC | (l->flags & PF_X ? SHF_EXECINSTR : 0) |
		                 (l->flags & PF_W ? SHF_WRITE : 0);

		if (l->filesz)
			e->secs[e->nsecs++] = (struct scan_sec){
			    l->vaddr, l->filesz, l->off, flags, SHT_PROGBITS, "", 0};
		if (l->memsz > l->filesz)
			e->secs[e->nsecs++] = (struct scan_sec){l->vaddr + l->filesz,
			                                        l->memsz - l->filesz,
			                                        0,
			                                        flags,
			                                        SHT_NOBITS,
			                                        "",
			                                        0};
		if (l->flags & PF_X)
			code_total += l->filesz;
	}
	if (code_total > e->size)
		return tgvm_error_set(
		    reterr, E2BIG,
		    "executable segments declare %llu bytes, more than the file's "
		    "%zu (bound: each byte of the file is code once)",
		    (unsigned long long)code_total, e->size);
	if ((r = build_code_table(e)) < 0)
		return r;
	for (size_t i = 0; i < nph; i++) {
		const struct seg *p = &ph[i];

		if (p->type == PT_GNU_PROPERTY || (p->type == PT_NOTE && !e->isa_needed)) {
			if (p->off <= e->size && p->filesz <= e->size - p->off)
				e->isa_needed = TGVM_MAX(e->isa_needed,
				                         parse_property(data + p->off, p->filesz));
		} else if (p->type == PT_GNU_EH_FRAME) {
			uint64_t off, avail, ehf;
			struct cur c;

			if (!seg_off(loads, nloads, p->vaddr, &off, &avail) || avail < 4 ||
			    data[off] != 1)
				continue; /* no usable header: ranges come from symbols and flow */
			c = (struct cur){data + off + 4, data + off + avail, p->vaddr, data + off,
			                 false};
			ehf = rd_enc(&c, data[off + 1], true);
			if (c.bad || !seg_off(loads, nloads, ehf, &off, &avail))
				continue;
			if ((r = parse_frames(data + off, avail, ehf, true, &e->fdes, &e->nfdes,
			                      &b->fdes_cap)) < 0)
				return r;
		}
	}
	for (size_t i = 0; i < nph; i++) {
		const struct seg *p = &ph[i];
		uint64_t symtab = 0, strtab = 0, strsz = 0, hash = 0, gnuhash = 0, nsym = 0;
		uint64_t rel[2] = {0, 0}, relsz[2] = {0, 0}, relent = sizeof(Elf64_Rela);
		uint64_t needed[SCAN_ELF_NEEDED_MAX];
		size_t nneeded = 0;
		const char *str = NULL;
		uint64_t off, avail;

		if (p->type != PT_DYNAMIC)
			continue;
		e->has_dynamic = true;
		if (p->off > e->size || p->filesz > e->size - p->off)
			return tgvm_error_set(
			    reterr, EINVAL,
			    "PT_DYNAMIC (offset %llu, %llu bytes) lies outside the "
			    "file",
			    (unsigned long long)p->off, (unsigned long long)p->filesz);
		for (uint64_t k = 0; k + sizeof(Elf64_Dyn) <= p->filesz; k += sizeof(Elf64_Dyn)) {
			Elf64_Dyn dy;

			memcpy(&dy, data + p->off + k, sizeof(dy));
			if (dy.d_tag == DT_NULL)
				break;
			switch (dy.d_tag) {
			case DT_NEEDED:
				if (nneeded < SCAN_ELF_NEEDED_MAX)
					needed[nneeded++] = dy.d_un.d_val;
				break;
			case DT_SONAME:
				e->has_soname = true;
				break;
			case DT_INIT:
			case DT_FINI:
				if ((r = u64v_push(&b->ents, dy.d_un.d_ptr)) < 0)
					return r;
				break;
			case DT_SYMTAB:
				symtab = dy.d_un.d_ptr;
				break;
			case DT_STRTAB:
				strtab = dy.d_un.d_ptr;
				break;
			case DT_STRSZ:
				strsz = dy.d_un.d_val;
				break;
			case DT_HASH:
				hash = dy.d_un.d_ptr;
				break;
			case DT_GNU_HASH:
				gnuhash = dy.d_un.d_ptr;
				break;
			case DT_RELA:
				rel[0] = dy.d_un.d_ptr;
				break;
			case DT_RELASZ:
				relsz[0] = dy.d_un.d_val;
				break;
			case DT_RELAENT:
				relent = dy.d_un.d_val;
				break;
			case DT_JMPREL:
				rel[1] = dy.d_un.d_ptr;
				break;
			case DT_PLTRELSZ:
				relsz[1] = dy.d_un.d_val;
				break;
			default:
				break;
			}
		}
		if (strtab) {
			if (!seg_off(loads, nloads, strtab, &off, &avail))
				return tgvm_error_set(reterr, EINVAL,
				                      "DT_STRTAB 0x%llx is outside every loaded "
				                      "segment",
				                      (unsigned long long)strtab);
			str = (const char *)data + off;
			strsz = strsz ? TGVM_MIN(strsz, avail) : avail;
		}
		for (size_t k = 0; k < nneeded; k++) {
			if (!str || needed[k] >= strsz ||
			    !memchr(str + needed[k], 0, strsz - needed[k]))
				return tgvm_error_set(reterr, EINVAL,
				                      "DT_NEEDED string %llu is outside DT_STRTAB",
				                      (unsigned long long)needed[k]);
			if ((r = tgvm_strv_push(&e->needed, str + needed[k])) < 0)
				return r;
		}
		if (!symtab)
			continue;
		/* how many symbols: the hash tables say; without one, up to the strings */
		if (gnuhash && seg_off(loads, nloads, gnuhash, &off, &avail)) {
			if (!gnu_hash_count(data + off, avail, &nsym))
				return tgvm_error_set(reterr, EINVAL,
				                      "unreadable DT_GNU_HASH at 0x%llx",
				                      (unsigned long long)gnuhash);
		} else if (hash && seg_off(loads, nloads, hash, &off, &avail) && avail >= 8) {
			uint32_t nchain;

			memcpy(&nchain, data + off + 4, 4);
			nsym = nchain;
		} else if (strtab > symtab) {
			nsym = (strtab - symtab) / sizeof(Elf64_Sym);
		} else {
			return tgvm_error_set(reterr, EINVAL,
			                      "DT_SYMTAB without DT_GNU_HASH or DT_HASH: cannot "
			                      "tell how many dynamic symbols there are");
		}
		if (nsym > SCAN_ELF_SYMBOLS_MAX)
			return tgvm_error_set(reterr, E2BIG, "%llu dynamic symbols (at most %u)",
			                      (unsigned long long)nsym, SCAN_ELF_SYMBOLS_MAX);
		if ((r = dyn_read_syms(b, loads, nloads, symtab, nsym, str, strsz)) == -EINVAL)
			return tgvm_error_set(reterr, EINVAL,
			                      "DT_SYMTAB 0x%llx is outside every loaded segment",
			                      (unsigned long long)symtab);
		if (r < 0)
			return r;
		if (relent != sizeof(Elf64_Rela))
			return tgvm_error_set(reterr, EINVAL, "DT_RELAENT %llu (expected %zu)",
			                      (unsigned long long)relent, sizeof(Elf64_Rela));
		for (int t = 0; t < 2; t++) {
			uint64_t n;

			if (!rel[t] || !relsz[t])
				continue;
			if (!seg_off(loads, nloads, rel[t], &off, &avail) || relsz[t] > avail)
				return tgvm_error_set(
				    reterr, EINVAL,
				    "%s 0x%llx (%llu bytes) is outside the loaded "
				    "segments",
				    t ? "DT_JMPREL" : "DT_RELA", (unsigned long long)rel[t],
				    (unsigned long long)relsz[t]);
			n = relsz[t] / sizeof(Elf64_Rela);
			for (uint64_t k = 0; k < n; k++) {
				Elf64_Rela raw;
				GElf_Rela ra;
				uint64_t si, soff, savail;
				Elf64_Sym rs;
				GElf_Sym s;
				const char *sn = NULL;
				bool have = false;

				memcpy(&raw, data + off + k * sizeof(raw), sizeof(raw));
				ra = (GElf_Rela){raw.r_offset, raw.r_info, raw.r_addend};
				si = GELF_R_SYM(raw.r_info);
				if (si && si < nsym &&
				    seg_off(loads, nloads, symtab + si * sizeof(rs), &soff,
				            &savail) &&
				    savail >= sizeof(rs)) {
					memcpy(&rs, data + soff, sizeof(rs));
					s = (GElf_Sym){rs.st_name,  rs.st_info,  rs.st_other,
					               rs.st_shndx, rs.st_value, rs.st_size};
					have = true;
					if (str && rs.st_name < strsz &&
					    memchr(str + rs.st_name, 0, strsz - rs.st_name))
						sn = str + rs.st_name;
				}
				if ((r = build_rela(b, &ra, have ? &s : NULL, sn)) < 0)
					return r;
			}
		}
		break; /* the loader reads the first PT_DYNAMIC */
	}
	/* No PT_GNU_EH_FRAME (static programs): the first CIE of .eh_frame in
	 * a read-only segment starts the table its unwinder registers. */
	if (!e->nfdes)
		for (size_t i = 0; i < e->nsecs && !e->nfdes; i++) {
			const struct scan_sec *s = &e->secs[i];

			if (s->type == SHT_NOBITS || (s->flags & (SHF_EXECINSTR | SHF_WRITE)))
				continue;
			for (uint64_t o = 0; o + 16 <= s->size && !e->nfdes; o += 4) {
				const uint8_t *p = data + s->off + o;
				uint32_t len, id;

				memcpy(&len, p, 4);
				memcpy(&id, p + 4, 4);
				if (id || len < 8 || len > s->size - o - 4 || p[8] != 1 ||
				    (memcmp(p + 9, "zR", 3) && memcmp(p + 9, "zPLR", 5)))
					continue;
				if ((r = parse_frames(p, s->size - o, s->addr + o, true, &e->fdes,
				                      &e->nfdes, &b->fdes_cap)) < 0)
					return r;
			}
		}
	/* A static program applies its IRELATIVE relocations itself, from a
	 * table its startup code finds by symbols that are gone: records of
	 * that type whose slot is writable and whose resolver is code. */
	if (!e->has_dynamic)
		for (size_t i = 0; i < e->nsecs; i++) {
			const struct scan_sec *s = &e->secs[i];

			if (s->type == SHT_NOBITS || (s->flags & SHF_EXECINSTR))
				continue;
			for (uint64_t o = (8 - (s->addr & 7)) & 7;
			     o + sizeof(Elf64_Rela) <= s->size; o += 8) {
				Elf64_Rela ra;
				const struct scan_sec *slot;

				memcpy(&ra, data + s->off + o, sizeof(ra));
				if (ra.r_info != R_X86_64_IRELATIVE ||
				    !is_code(e, (uint64_t)ra.r_addend))
					continue;
				slot = scan_elf_section_at(e, ra.r_offset);
				if (slot && (slot->flags & SHF_WRITE) &&
				    (r = u64v_push(&b->irel, (uint64_t)ra.r_addend)) < 0)
					return r;
			}
		}
	return 0;
}

/* ---- the section view ---- */

static int read_sections(struct build *b, Elf *elf, size_t shnum, size_t shstrndx,
                         struct tgvm_error *reterr)
{
	struct scan_elf *e = b->e;
	const uint8_t *data = e->data;
	size_t size = e->size;
	uint64_t dyn_n = 0;
	int r;

	(void)shnum;
	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn));) {
		GElf_Shdr sh;
		Elf_Data *d;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name)
			name = "";
		if (sh.sh_type == SHT_NOBITS || sh.sh_offset > size ||
		    sh.sh_size > size - sh.sh_offset)
			continue;
		if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM) {
			size_t n;

			if (!(d = elf_getdata(scn, NULL)) || sh.sh_entsize != sizeof(Elf64_Sym))
				continue;
			n = TGVM_MIN(d->d_size / sizeof(Elf64_Sym), (size_t)SCAN_ELF_SYMBOLS_MAX);
			for (size_t i = 1; i < n; i++) {
				GElf_Sym s;

				if (!gelf_getsym(d, (int)i, &s))
					continue;
				if ((r = build_symbol(b, &s, elf_strptr(elf, sh.sh_link, s.st_name),
				                      sh.sh_type == SHT_DYNSYM)) < 0)
					return r;
			}
		} else if (sh.sh_type == SHT_RELA) {
			Elf_Scn *symscn = elf_getscn(elf, sh.sh_link);
			GElf_Shdr ssh;
			Elf_Data *sd = NULL;
			size_t n, nsym = 0;

			if (!(d = elf_getdata(scn, NULL)) || sh.sh_entsize != sizeof(Elf64_Rela))
				continue;
			if (symscn && gelf_getshdr(symscn, &ssh) &&
			    ssh.sh_entsize == sizeof(Elf64_Sym) &&
			    (ssh.sh_type == SHT_DYNSYM || ssh.sh_type == SHT_SYMTAB)) {
				sd = elf_getdata(symscn, NULL);
				nsym = sd ? sd->d_size / sizeof(Elf64_Sym) : 0;
			}
			n = TGVM_MIN(d->d_size / sizeof(Elf64_Rela), (size_t)SCAN_ELF_RELOCS_MAX);
			for (size_t i = 0; i < n; i++) {
				GElf_Rela ra;
				GElf_Sym s;
				size_t si;
				bool have;

				if (!gelf_getrela(d, (int)i, &ra))
					continue;
				si = GELF_R_SYM(ra.r_info);
				have = si && sd && si < nsym && gelf_getsym(sd, (int)si, &s);
				if ((r = build_rela(b, &ra, have ? &s : NULL,
				                    have ? elf_strptr(elf, ssh.sh_link, s.st_name)
				                         : NULL)) < 0)
					return r;
			}
		} else if (sh.sh_type == SHT_DYNAMIC) {
			size_t n;

			if (!(d = elf_getdata(scn, NULL)) || sh.sh_entsize != sizeof(Elf64_Dyn))
				continue;
			n = TGVM_MIN(d->d_size / sizeof(Elf64_Dyn), (size_t)65536);
			if (dyn_n + n > 65536)
				return tgvm_error_set(reterr, E2BIG,
				                      "more than 65536 dynamic entries in all");
			dyn_n += n;
			for (size_t i = 0; i < n; i++) {
				GElf_Dyn dy;

				if (!gelf_getdyn(d, (int)i, &dy) || dy.d_tag == DT_NULL)
					break;
				if (dy.d_tag == DT_NEEDED && e->needed.n < SCAN_ELF_NEEDED_MAX) {
					const char *nn = elf_strptr(elf, sh.sh_link, dy.d_un.d_val);

					if (nn && (r = tgvm_strv_push(&e->needed, nn)) < 0)
						return r;
				} else if (dy.d_tag == DT_SONAME) {
					e->has_soname = true;
				} else if (dy.d_tag == DT_INIT || dy.d_tag == DT_FINI) {
					if ((r = u64v_push(&b->ents, dy.d_un.d_ptr)) < 0)
						return r;
				}
			}
		} else if (sh.sh_type == SHT_NOTE && !strcmp(name, ".note.gnu.property")) {
			e->isa_needed = parse_property(data + sh.sh_offset, sh.sh_size);
		} else if (!strcmp(name, ".eh_frame") && (sh.sh_flags & SHF_ALLOC)) {
			if ((r = parse_frames(data + sh.sh_offset, sh.sh_size, sh.sh_addr, true,
			                      &e->fdes, &e->nfdes, &b->fdes_cap)) < 0)
				return r;
		} else if (!strcmp(name, ".debug_frame")) {
			if ((r = parse_frames(data + sh.sh_offset, sh.sh_size, 0, false, &e->fdes,
			                      &e->nfdes, &b->fdes_cap)) < 0)
				return r;
		}
	}
	return 0;
}

static int cmp_seg_vaddr(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

int scan_elf_open(const uint8_t *data, size_t size, struct scan_elf *ret, struct tgvm_error *reterr)
{
	struct scan_elf e = {.data = data, .size = size};
	struct build b = {.e = &e};
	Elf *elf = NULL;
	Elf64_Ehdr eh;
	struct seg *ph = NULL, *loads = NULL;
	struct scan_sec *all = NULL;
	uint64_t *align = NULL;
	size_t nph = 0, nloads = 0, shnum = 0, shstrndx = 0, nall = 0;
	uint64_t loads_end = 0, sh_end = 0, hdr_end;
	const char *why = NULL;
	int r;

	pthread_once(&elf_once, elf_init);
	tgvm_strv_init(&e.needed);
	tgvm_strv_init(&e.imports);
	if (size < sizeof(eh) || memcmp(data, ELFMAG, SELFMAG))
		return -ENOEXEC;
	memcpy(&eh, data, sizeof(eh));
	if (data[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
		return -EXDEV;
	if (data[EI_DATA] != ELFDATA2LSB)
		return tgvm_error_set(reterr, EINVAL, "x86-64 ELF file that says it is big-endian");
	if (eh.e_type == ET_CORE)
		return -ENOEXEC; /* a memory dump: nothing here ever runs */
	/* The program headers: what the loader reads. A table it cannot read
	 * is an error, not "not a program". */
	if (eh.e_phnum) {
		uint64_t n = eh.e_phnum;

		if (eh.e_phentsize != sizeof(Elf64_Phdr))
			return tgvm_error_set(reterr, EINVAL,
			                      "program header entries of %u bytes "
			                      "(expected %zu)",
			                      eh.e_phentsize, sizeof(Elf64_Phdr));
		if (n == PN_XNUM)
			return tgvm_error_set(reterr, E2BIG,
			                      "more than %u program headers "
			                      "(bound: %u)",
			                      PN_XNUM - 1, SCAN_ELF_SEGMENTS_MAX);
		if (eh.e_phoff > size || n * sizeof(Elf64_Phdr) > size - eh.e_phoff)
			return tgvm_error_set(
			    reterr, EINVAL,
			    "program header table (offset %llu, %llu entries) lies "
			    "outside the file of %zu bytes",
			    (unsigned long long)eh.e_phoff, (unsigned long long)n, size);
		if (n > SCAN_ELF_SEGMENTS_MAX)
			return tgvm_error_set(reterr, E2BIG, "%llu program headers (bound: %u)",
			                      (unsigned long long)n, SCAN_ELF_SEGMENTS_MAX);
		ph = calloc(n, sizeof(*ph));
		loads = calloc(n, sizeof(*loads));
		if (!ph || !loads) {
			r = -ENOMEM;
			goto fail;
		}
		for (uint64_t i = 0; i < n; i++) {
			Elf64_Phdr p;

			memcpy(&p, data + eh.e_phoff + i * sizeof(p), sizeof(p));
			ph[nph++] = (struct seg){p.p_type,  p.p_flags,  p.p_offset,
			                         p.p_vaddr, p.p_filesz, p.p_memsz};
			if (p.p_type == PT_INTERP)
				e.has_interp = true;
			if (p.p_type == PT_DYNAMIC)
				e.has_dynamic = true;
			if (p.p_type != PT_LOAD)
				continue;
			if (p.p_filesz > p.p_memsz || p.p_memsz > UINT64_MAX - p.p_vaddr ||
			    p.p_filesz > UINT64_MAX - p.p_offset) {
				r = tgvm_error_set(reterr, EINVAL,
				                   "PT_LOAD at 0x%llx: sizes out of range",
				                   (unsigned long long)p.p_vaddr);
				goto fail;
			}
			loads[nloads++] = ph[nph - 1];
			loads_end = TGVM_MAX(loads_end, p.p_offset + p.p_filesz);
		}
		scan_sort(loads, nloads, sizeof(*loads), cmp_seg_vaddr);
		for (size_t i = 1; i < nloads; i++)
			if (loads[i].vaddr - loads[i - 1].vaddr < loads[i - 1].memsz) {
				r = tgvm_error_set(reterr, EINVAL,
				                   "loaded segments at 0x%llx and 0x%llx overlap",
				                   (unsigned long long)loads[i - 1].vaddr,
				                   (unsigned long long)loads[i].vaddr);
				goto fail;
			}
	}
	hdr_end = TGVM_MAX((uint64_t)sizeof(eh), nph ? eh.e_phoff + nph * sizeof(Elf64_Phdr) : 0);
	/* A file cut short (a copy that broke off) must not pass for one with
	 * little code. A section header table past the end with every loaded
	 * segment inside is what sstrip leaves: the segments are read. (Separate
	 * debug files keep program headers that point past their end, and a
	 * table of sections that does not.) */
	if (eh.e_shoff || eh.e_shnum) {
		uint64_t tab = (uint64_t)eh.e_shnum * eh.e_shentsize;

		sh_end = eh.e_shoff > UINT64_MAX - tab ? UINT64_MAX : eh.e_shoff + tab;
	}
	if (sh_end > size || (!sh_end && loads_end > size)) {
		if (loads_end > size || !nloads) {
			r = tgvm_error_set(reterr, EINVAL,
			                   "truncated ELF file: its headers describe %llu bytes, "
			                   "it has %zu",
			                   (unsigned long long)TGVM_MAX(sh_end, loads_end), size);
			goto fail;
		}
		why = "its section header table lies past the end of the file";
	}
	e.type = eh.e_type;
	e.entry = eh.e_entry;
	if (e.entry && (r = u64v_push(&b.ents, e.entry)) < 0)
		goto fail;

	/* the sections, unless already known unusable */
	if (!why && !eh.e_shnum && !eh.e_shoff)
		why = "it has no section headers";
	if (!why) {
		elf = elf_memory((char *)data, size);
		if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getshdrnum(elf, &shnum) ||
		    elf_getshdrstrndx(elf, &shstrndx))
			why = "its section header table is unreadable";
		else if (shnum > SCAN_ELF_SECTIONS_MAX) {
			r = tgvm_error_set(reterr, E2BIG, "%zu sections (bound: %d)", shnum,
			                   SCAN_ELF_SECTIONS_MAX);
			goto fail;
		} else if (shnum <= 1 && nloads)
			why = "it has no section headers";
	}
	if (!why) {
		all = calloc(shnum ? shnum : 1, sizeof(*all));
		align = calloc(shnum ? shnum : 1, sizeof(*align));
		if (!all || !align) {
			r = -ENOMEM;
			goto fail;
		}
		for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn)) && nall < shnum;) {
			GElf_Shdr sh;
			const char *name;

			if (!gelf_getshdr(scn, &sh)) {
				why = "a section header is unreadable";
				break;
			}
			if (!(sh.sh_flags & SHF_ALLOC) || !sh.sh_size)
				continue;
			if ((sh.sh_flags & SHF_TLS) && sh.sh_type == SHT_NOBITS)
				continue; /* .tbss takes no address space of its own */
			if (sh.sh_type != SHT_NOBITS &&
			    (sh.sh_offset > size || sh.sh_size > size - sh.sh_offset)) {
				why = "a section lies outside the file";
				break;
			}
			if (sh.sh_size > UINT64_MAX - sh.sh_addr) {
				why = "a section's address range wraps";
				break;
			}
			name = elf_strptr(elf, shstrndx, sh.sh_name);
			align[nall] = sh.sh_addralign;
			all[nall++] = (struct scan_sec){
			    sh.sh_addr,       sh.sh_size, sh.sh_offset, sh.sh_flags, sh.sh_type,
			    name ? name : "", 0};
		}
		if (!why && nloads && (e.type == ET_EXEC || e.type == ET_DYN))
			why = sections_disagree(all, nall, loads, nloads, size, hdr_end, align);
		if (!why) {
			e.secs = all;
			e.nsecs = nall;
			all = NULL;
			e.nsecs = secs_sort_dedupe(e.secs, e.nsecs);
			if ((r = build_code_table(&e)) < 0 ||
			    (r = read_sections(&b, elf, shnum, shstrndx, reterr)) < 0)
				goto fail;
		}
	}
	if (why) {
		if (!nloads || (e.type != ET_EXEC && e.type != ET_DYN)) {
			r = tgvm_error_set(reterr, EINVAL,
			                   "no code can be found: %s, and it has no loadable "
			                   "segments to read instead",
			                   why);
			goto fail;
		}
		/* start over from the program headers alone */
		free(e.syms);
		e.syms = NULL;
		e.nsyms = 0;
		free(e.fdes);
		e.fdes = NULL;
		e.nfdes = 0;
		free(e.secs);
		e.secs = NULL;
		e.nsecs = 0;
		free(e.code);
		e.code = NULL;
		e.ncode = 0;
		e.from_segments = true;
		snprintf(e.why, sizeof(e.why), "%s", why);
		if ((r = read_segments(&b, ph, nph, loads, nloads, reterr)) < 0)
			goto fail;
	}

	/* Non-PIE executables hold code addresses as plain words in data. */
	if (e.type == ET_EXEC)
		for (size_t i = 0; i < e.nsecs; i++) {
			const struct scan_sec *s = &e.secs[i];

			if (s->type == SHT_NOBITS || (s->flags & SHF_EXECINSTR))
				continue;
			for (uint64_t o = (8 - (s->addr & 7)) & 7; o + 8 <= s->size; o += 8) {
				uint64_t v;

				memcpy(&v, data + s->off + o, 8);
				if (v && is_code(&e, v) &&
				    ((r = u64v_push(&b.dref, v)) < 0 ||
				     (r = refv_push(&b.slots, v, s->addr + o)) < 0))
					goto fail;
			}
		}

	scan_sort(e.syms, e.nsyms, sizeof(*e.syms), cmp_sym);
	scan_sort(e.fdes, e.nfdes, sizeof(*e.fdes), cmp_range);
	scan_sort(e.gotsyms, e.ngotsyms, sizeof(*e.gotsyms), cmp_gotsym);
	e.nirel = sort_uniq(b.irel.v, b.irel.n);
	e.irel = b.irel.v;
	e.ndataref = sort_uniq(b.dref.v, b.dref.n);
	e.dataref = b.dref.v;
	scan_sort(b.slots.v, b.slots.n, sizeof(*b.slots.v), cmp_ref_to);
	e.dslots = b.slots.v;
	e.ndslots = b.slots.n;
	scan_sort(b.dptrs.v, b.dptrs.n, sizeof(*b.dptrs.v), cmp_ref_to);
	e.dptrs = b.dptrs.v;
	e.ndptrs = b.dptrs.n;
	e.nentries = sort_uniq(b.ents.v, b.ents.n);
	e.entries = b.ents.v;
	e.elf = elf;
	memset(&b, 0, sizeof(b));
	free(ph);
	free(loads);
	free(all);
	free(align);
	*ret = e;
	return 0;
fail:
	build_release(&b);
	free(ph);
	free(loads);
	free(all);
	free(align);
	e.elf = elf;
	scan_elf_release(&e);
	return r;
}

void scan_elf_release(struct scan_elf *e)
{
	if (e->elf)
		elf_end(e->elf);
	free(e->secs);
	free(e->code);
	free(e->syms);
	free(e->irel);
	free(e->fdes);
	free(e->entries);
	free(e->dataref);
	free(e->dslots);
	free(e->dptrs);
	free(e->gotsyms);
	tgvm_strv_release(&e->needed);
	tgvm_strv_release(&e->imports);
	memset(e, 0, sizeof(*e));
}
