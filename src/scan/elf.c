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
#include <stdlib.h>
#include <string.h>

#include "scan/scan-int.h"

#ifndef R_X86_64_IRELATIVE
#define R_X86_64_IRELATIVE 37
#endif
#ifndef STT_GNU_IFUNC
#define STT_GNU_IFUNC 10
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

const struct scan_sec *scan_elf_section_at(const struct scan_elf *e, uint64_t addr)
{
	for (size_t i = 0; i < e->nsecs; i++)
		if (addr >= e->secs[i].addr && addr - e->secs[i].addr < e->secs[i].size)
			return &e->secs[i];
	return NULL;
}

const uint8_t *scan_elf_code(const struct scan_elf *e, uint64_t addr, size_t *ret_avail)
{
	for (size_t i = 0; i < e->ncode; i++) {
		const struct scan_sec *s = &e->code[i];

		if (addr >= s->addr && addr - s->addr < s->size) {
			uint64_t off = s->off + (addr - s->addr);

			if (off >= e->size)
				return NULL;
			*ret_avail = TGVM_MIN(s->size - (addr - s->addr), e->size - off);
			return e->data + off;
		}
	}
	return NULL;
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

int scan_elf_open(const uint8_t *data, size_t size, struct scan_elf *ret, struct tgvm_error *reterr)
{
	struct scan_elf e = {.data = data, .size = size};
	Elf *elf = NULL;
	GElf_Ehdr eh;
	size_t shnum = 0, shstrndx = 0, nsyms_cap = 0, fdes_cap = 0, gcap = 0;
	struct u64v irel = {0}, dref = {0}, ents = {0};
	struct refv slots = {0}, dptrs = {0};
	int r;

	pthread_once(&elf_once, elf_init);
	tgvm_strv_init(&e.needed);
	tgvm_strv_init(&e.imports);
	if (size < 64 || memcmp(data, ELFMAG, SELFMAG))
		return -ENOEXEC;
	elf = elf_memory((char *)data, size);
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
		r = tgvm_error_set(reterr, EINVAL, "not a valid ELF file: %s", elf_errmsg(-1));
		goto fail;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64) {
		r = -EXDEV;
		goto fail;
	}
	/* A file cut short (a copy that broke off) must not pass for one with
	 * little code: its section header table, or without one its program
	 * headers and loaded segments, must lie inside it. (Separate debug
	 * files keep program headers that point past their end, and a table
	 * of sections that does not.) */
	{
		uint64_t need = 0, tab;

		if (eh.e_shoff || eh.e_shnum) {
			tab = (uint64_t)eh.e_shnum * eh.e_shentsize;
			need = eh.e_shoff > UINT64_MAX - tab ? UINT64_MAX : eh.e_shoff + tab;
		} else {
			size_t phnum = 0;

			tab = (uint64_t)eh.e_phnum * eh.e_phentsize;
			need = eh.e_phoff > UINT64_MAX - tab ? UINT64_MAX : eh.e_phoff + tab;
			if (need <= size && !elf_getphdrnum(elf, &phnum) && phnum < 4096)
				for (size_t i = 0; i < phnum; i++) {
					GElf_Phdr ph;

					if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD)
						need = TGVM_MAX(
						    need, ph.p_offset > UINT64_MAX - ph.p_filesz
						              ? UINT64_MAX
						              : ph.p_offset + ph.p_filesz);
				}
		}
		if (need > size) {
			r = tgvm_error_set(reterr, EINVAL,
			                   "truncated ELF file: its headers describe %llu bytes, "
			                   "it has %zu",
			                   (unsigned long long)need, size);
			goto fail;
		}
	}
	e.elf = elf;
	e.type = eh.e_type;
	e.entry = eh.e_entry;
	if (elf_getshdrnum(elf, &shnum) || elf_getshdrstrndx(elf, &shstrndx)) {
		r = tgvm_error_set(reterr, EINVAL, "bad section header table");
		goto fail;
	}
	if (shnum > SCAN_ELF_SECTIONS_MAX) {
		r = tgvm_error_set(reterr, E2BIG, "%zu sections (at most %d)", shnum,
		                   SCAN_ELF_SECTIONS_MAX);
		goto fail;
	}
	{
		size_t phnum = 0;

		if (!elf_getphdrnum(elf, &phnum) && phnum < 4096)
			for (size_t i = 0; i < phnum; i++) {
				GElf_Phdr ph;

				if (!gelf_getphdr(elf, (int)i, &ph))
					continue;
				if (ph.p_type == PT_INTERP)
					e.has_interp = true;
				if (ph.p_type == PT_DYNAMIC)
					e.has_dynamic = true;
			}
	}
	e.secs = calloc(shnum ? shnum : 1, sizeof(*e.secs));
	if (!e.secs) {
		r = -ENOMEM;
		goto fail;
	}
	if (e.entry)
		u64v_push(&ents, e.entry);

	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn));) {
		GElf_Shdr sh;
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name)
			name = "";
		if ((sh.sh_flags & SHF_ALLOC) && sh.sh_size && e.nsecs < shnum &&
		    (sh.sh_type == SHT_NOBITS ||
		     (sh.sh_offset <= size && sh.sh_size <= size - sh.sh_offset)))
			e.secs[e.nsecs++] = (struct scan_sec){sh.sh_addr,  sh.sh_size, sh.sh_offset,
			                                      sh.sh_flags, sh.sh_type, name};
	}
	e.code = calloc(e.nsecs ? e.nsecs : 1, sizeof(*e.code));
	if (!e.code) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < e.nsecs; i++)
		if ((e.secs[i].flags & SHF_EXECINSTR) && e.secs[i].type == SHT_PROGBITS)
			e.code[e.ncode++] = e.secs[i];

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

			if (!(d = elf_getdata(scn, NULL)) || !sh.sh_entsize)
				continue;
			n = sh.sh_size / sh.sh_entsize;
			if (n > SCAN_ELF_SYMBOLS_MAX)
				n = SCAN_ELF_SYMBOLS_MAX;
			for (size_t i = 1; i < n; i++) {
				GElf_Sym s;
				const char *sn;
				uint8_t t;

				if (!gelf_getsym(d, (int)i, &s))
					continue;
				t = GELF_ST_TYPE(s.st_info);
				if (s.st_shndx == SHN_UNDEF && sh.sh_type == SHT_DYNSYM &&
				    s.st_name && t != STT_TLS &&
				    e.imports.n < SCAN_ELF_SYMBOLS_MAX) {
					sn = elf_strptr(elf, sh.sh_link, s.st_name);
					if (sn && *sn && (r = tgvm_strv_push(&e.imports, sn)) < 0)
						goto fail;
					continue;
				}
				if (s.st_shndx == SHN_UNDEF || !s.st_value)
					continue;
				if (t != STT_FUNC && t != STT_GNU_IFUNC && t != STT_OBJECT &&
				    t != STT_NOTYPE)
					continue;
				if (s.st_shndx == SHN_ABS)
					continue;
				sn = elf_strptr(elf, sh.sh_link, s.st_name);
				if (!sn)
					sn = "";
				if (t == STT_NOTYPE &&
				    (!*sn || sn[0] == '$' || !is_code(&e, s.st_value)))
					continue;
				if (t == STT_GNU_IFUNC && (r = u64v_push(&irel, s.st_value)) < 0)
					goto fail;
				if (e.nsyms == nsyms_cap) {
					size_t nc = nsyms_cap ? nsyms_cap * 2 : 1024;
					struct scan_sym *nv = realloc(e.syms, nc * sizeof(*nv));

					if (!nv) {
						r = -ENOMEM;
						goto fail;
					}
					e.syms = nv;
					nsyms_cap = nc;
				}
				e.syms[e.nsyms++] =
				    (struct scan_sym){s.st_value,
				                      s.st_size,
				                      sn,
				                      t,
				                      GELF_ST_BIND(s.st_info),
				                      GELF_ST_VISIBILITY(s.st_other),
				                      sh.sh_type == SHT_DYNSYM};
			}
		} else if (sh.sh_type == SHT_RELA) {
			Elf_Scn *symscn = elf_getscn(elf, sh.sh_link);
			GElf_Shdr ssh;
			Elf_Data *sd = NULL;
			size_t n, nsym = 0;

			if (!(d = elf_getdata(scn, NULL)) || !sh.sh_entsize)
				continue;
			if (symscn && gelf_getshdr(symscn, &ssh) && ssh.sh_entsize &&
			    (ssh.sh_type == SHT_DYNSYM || ssh.sh_type == SHT_SYMTAB)) {
				sd = elf_getdata(symscn, NULL);
				nsym = ssh.sh_size / ssh.sh_entsize;
			}
			n = sh.sh_size / sh.sh_entsize;
			if (n > SCAN_ELF_RELOCS_MAX)
				n = SCAN_ELF_RELOCS_MAX;
			for (size_t i = 0; i < n; i++) {
				GElf_Rela ra;
				uint32_t type, si;

				if (!gelf_getrela(d, (int)i, &ra))
					continue;
				type = GELF_R_TYPE(ra.r_info);
				si = GELF_R_SYM(ra.r_info);
				if (type == R_X86_64_IRELATIVE) {
					if ((r = u64v_push(&irel, (uint64_t)ra.r_addend)) < 0)
						goto fail;
				} else if (type == R_X86_64_RELATIVE) {
					if (is_code(&e, (uint64_t)ra.r_addend) &&
					    ((r = u64v_push(&dref, (uint64_t)ra.r_addend)) < 0 ||
					     (r = refv_push(&slots, (uint64_t)ra.r_addend,
					                    ra.r_offset)) < 0))
						goto fail;
					if (!is_code(&e, (uint64_t)ra.r_addend) &&
					    (r = refv_push(&dptrs, (uint64_t)ra.r_addend,
					                   ra.r_offset)) < 0)
						goto fail;
				} else if ((type == R_X86_64_GLOB_DAT ||
				            type == R_X86_64_JUMP_SLOT || type == R_X86_64_64) &&
				           si && sd && si < nsym) {
					GElf_Sym s;
					const char *sn;

					if (!gelf_getsym(sd, (int)si, &s))
						continue;
					sn = elf_strptr(elf, ssh.sh_link, s.st_name);
					if (s.st_shndx != SHN_UNDEF &&
					    is_code(&e, s.st_value + (uint64_t)ra.r_addend) &&
					    type != R_X86_64_JUMP_SLOT &&
					    ((r = u64v_push(
					          &dref, s.st_value + (uint64_t)ra.r_addend)) < 0 ||
					     (r = refv_push(&slots,
					                    s.st_value + (uint64_t)ra.r_addend,
					                    ra.r_offset)) < 0))
						goto fail;
					if (sn && *sn) {
						if (e.ngotsyms == gcap) {
							size_t nc = gcap ? gcap * 2 : 256;
							struct scan_gotsym *nv =
							    realloc(e.gotsyms, nc * sizeof(*nv));

							if (!nv) {
								r = -ENOMEM;
								goto fail;
							}
							e.gotsyms = nv;
							gcap = nc;
						}
						e.gotsyms[e.ngotsyms++] =
						    (struct scan_gotsym){ra.r_offset, sn};
					}
				}
			}
		} else if (sh.sh_type == SHT_DYNAMIC) {
			size_t n;

			if (!(d = elf_getdata(scn, NULL)) || !sh.sh_entsize)
				continue;
			n = TGVM_MIN(sh.sh_size / sh.sh_entsize, (size_t)65536);
			for (size_t i = 0; i < n; i++) {
				GElf_Dyn dy;

				if (!gelf_getdyn(d, (int)i, &dy) || dy.d_tag == DT_NULL)
					break;
				if (dy.d_tag == DT_NEEDED && e.needed.n < SCAN_ELF_NEEDED_MAX) {
					const char *nn = elf_strptr(elf, sh.sh_link, dy.d_un.d_val);

					if (nn && (r = tgvm_strv_push(&e.needed, nn)) < 0)
						goto fail;
				} else if (dy.d_tag == DT_SONAME) {
					e.has_soname = true;
				} else if (dy.d_tag == DT_INIT || dy.d_tag == DT_FINI) {
					u64v_push(&ents, dy.d_un.d_ptr);
				}
			}
		} else if (sh.sh_type == SHT_NOTE && !strcmp(name, ".note.gnu.property")) {
			e.isa_needed = parse_property(data + sh.sh_offset, sh.sh_size);
		} else if (!strcmp(name, ".eh_frame") && (sh.sh_flags & SHF_ALLOC)) {
			if ((r = parse_frames(data + sh.sh_offset, sh.sh_size, sh.sh_addr, true,
			                      &e.fdes, &e.nfdes, &fdes_cap)) < 0)
				goto fail;
		} else if (!strcmp(name, ".debug_frame")) {
			if ((r = parse_frames(data + sh.sh_offset, sh.sh_size, 0, false, &e.fdes,
			                      &e.nfdes, &fdes_cap)) < 0)
				goto fail;
		}
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
				    ((r = u64v_push(&dref, v)) < 0 ||
				     (r = refv_push(&slots, v, s->addr + o)) < 0))
					goto fail;
			}
		}

	scan_sort(e.syms, e.nsyms, sizeof(*e.syms), cmp_sym);
	scan_sort(e.fdes, e.nfdes, sizeof(*e.fdes), cmp_range);
	scan_sort(e.gotsyms, e.ngotsyms, sizeof(*e.gotsyms), cmp_gotsym);
	e.nirel = sort_uniq(irel.v, irel.n);
	e.irel = irel.v;
	e.ndataref = sort_uniq(dref.v, dref.n);
	e.dataref = dref.v;
	scan_sort(slots.v, slots.n, sizeof(*slots.v), cmp_ref_to);
	e.dslots = slots.v;
	e.ndslots = slots.n;
	scan_sort(dptrs.v, dptrs.n, sizeof(*dptrs.v), cmp_ref_to);
	e.dptrs = dptrs.v;
	e.ndptrs = dptrs.n;
	e.nentries = sort_uniq(ents.v, ents.n);
	e.entries = ents.v;
	*ret = e;
	return 0;
fail:
	free(slots.v);
	free(dptrs.v);
	free(irel.v);
	free(dref.v);
	free(ents.v);
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
