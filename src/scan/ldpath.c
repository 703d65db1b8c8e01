// SPDX-License-Identifier: MIT
/*
 * Which libraries a program loads, found inside its source the way glibc's
 * ld.so finds them on x86-64: DT_NEEDED breadth first, DT_RPATH of the loader
 * chain, DT_RUNPATH, ld.so.conf (with includes), the default directories and
 * glibc-hwcaps subdirectories. Lookups are cached per source.
 */
#include <errno.h>
#include <fnmatch.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/source-int.h"

#define LD_OBJS_MAX   4096  /* objects in one program's closure */
#define LD_NEEDED_MAX 1024  /* DT_NEEDED entries of one object */
#define LD_DYN_MAX    65536 /* entries of one dynamic section */
#define LD_PHDR_MAX   4096
#define LD_CONF_MAX   (1 << 20) /* bytes of one ld.so.conf file */
#define LD_CONF_DEPTH 8
#define LD_CONF_DIRS  1024
#define LD_GLOB_MAX   4096

static const char *const default_dirs[] = {
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
};

/* ---- the dynamic section ---- */

static pthread_once_t elf_once = PTHREAD_ONCE_INIT;

static void elf_init(void)
{
	elf_version(EV_CURRENT);
}

void scan_elf_dynamic_release(struct scan_elf_dynamic *d)
{
	if (!d)
		return;
	free(d->interp);
	free(d->soname);
	free(d->rpath);
	free(d->runpath);
	tgvm_strv_release(&d->needed);
	memset(d, 0, sizeof(*d));
}

struct load {
	uint64_t vaddr, off, filesz;
};

/* File offset of virtual address @v, and how many bytes follow it in its segment. */
static bool vaddr_to_off(const struct load *l, size_t n, uint64_t v, uint64_t *ret_off,
                         uint64_t *ret_avail)
{
	for (size_t i = 0; i < n; i++)
		if (v >= l[i].vaddr && v - l[i].vaddr < l[i].filesz) {
			*ret_off = l[i].off + (v - l[i].vaddr);
			*ret_avail = l[i].filesz - (v - l[i].vaddr);
			return true;
		}
	return false;
}

int scan_elf_dynamic_parse(const uint8_t *data, size_t size, struct scan_elf_dynamic *ret,
                           struct tgvm_error *reterr)
{
	struct load loads[64];
	size_t n_loads = 0, phnum = 0;
	uint64_t dyn_off = 0, dyn_size = 0, strtab = 0, strsz = 0;
	uint64_t needed[LD_NEEDED_MAX], soname = UINT64_MAX, rpath = UINT64_MAX,
	                                runpath = UINT64_MAX;
	size_t n_needed = 0;
	bool have_dyn = false, have_strtab = false;
	const char *str = NULL;
	uint64_t str_len = 0;
	Elf *elf = NULL;
	GElf_Ehdr eh;
	uint16_t machine;
	int r = 0;

	memset(ret, 0, sizeof(*ret));
	tgvm_strv_init(&ret->needed);
	if (size < EI_NIDENT + 4 || memcmp(data, ELFMAG, SELFMAG))
		return tgvm_error_set(reterr, ENOEXEC, "not an ELF file");
	machine = data[EI_DATA] == ELFDATA2MSB ? (uint16_t)(data[18] << 8 | data[19])
	                                       : (uint16_t)(data[18] | data[19] << 8);
	ret->matches =
	    data[EI_CLASS] == ELFCLASS64 && data[EI_DATA] == ELFDATA2LSB && machine == EM_X86_64;
	if (!ret->matches)
		return 0; /* ld.so looks no further: the copy is skipped */
	pthread_once(&elf_once, elf_init);
	elf = elf_memory((char *)data, size);
	if (!elf || !gelf_getehdr(elf, &eh) || elf_getphdrnum(elf, &phnum) != 0) {
		r = tgvm_error_set(reterr, ENOEXEC, "corrupt ELF header: %s", elf_errmsg(-1));
		goto out;
	}
	if (phnum > LD_PHDR_MAX) {
		r = tgvm_error_set(reterr, ENOEXEC, "%zu program headers (limit %d)", phnum,
		                   LD_PHDR_MAX);
		goto out;
	}
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph)) {
			r = tgvm_error_set(reterr, ENOEXEC, "corrupt program header %zu: %s", i,
			                   elf_errmsg(-1));
			goto out;
		}
		if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset)
			continue; /* points past the file: ld.so would refuse it */
		if (ph.p_type == PT_LOAD && n_loads < ARRAY_SIZE(loads)) {
			loads[n_loads].vaddr = ph.p_vaddr;
			loads[n_loads].off = ph.p_offset;
			loads[n_loads].filesz = ph.p_filesz;
			n_loads++;
		} else if (ph.p_type == PT_DYNAMIC && !have_dyn) {
			dyn_off = ph.p_offset;
			dyn_size = ph.p_filesz;
			have_dyn = true;
		} else if (ph.p_type == PT_INTERP && !ret->interp && ph.p_filesz > 0) {
			size_t len = strnlen((const char *)data + ph.p_offset,
			                     TGVM_MIN(ph.p_filesz, (uint64_t)SCAN_PATH_MAX - 1));

			ret->interp = strndup((const char *)data + ph.p_offset, len);
			if (!ret->interp) {
				r = -ENOMEM;
				goto out;
			}
		}
	}
	if (!have_dyn)
		goto out; /* static */
	{
		Elf_Data *d = elf_getdata_rawchunk(elf, (int64_t)dyn_off, dyn_size, ELF_T_DYN);
		size_t count;

		if (!d) {
			r = tgvm_error_set(reterr, ENOEXEC,
			                   "unreadable dynamic section at %llu: %s",
			                   (unsigned long long)dyn_off, elf_errmsg(-1));
			goto out;
		}
		count = TGVM_MIN(d->d_size / sizeof(Elf64_Dyn), (size_t)LD_DYN_MAX);
		for (size_t i = 0; i < count; i++) {
			GElf_Dyn dy;

			if (!gelf_getdyn(d, (int)i, &dy) || dy.d_tag == DT_NULL)
				break;
			switch (dy.d_tag) {
			case DT_NEEDED:
				if (n_needed < LD_NEEDED_MAX)
					needed[n_needed++] = dy.d_un.d_val;
				break;
			case DT_STRTAB:
				strtab = dy.d_un.d_ptr;
				have_strtab = true;
				break;
			case DT_STRSZ:
				strsz = dy.d_un.d_val;
				break;
			case DT_SONAME:
				soname = dy.d_un.d_val;
				break;
			case DT_RPATH:
				rpath = dy.d_un.d_val;
				break;
			case DT_RUNPATH:
				runpath = dy.d_un.d_val;
				break;
			case DT_FLAGS_1:
				ret->nodeflib = (dy.d_un.d_val & DF_1_NODEFLIB) != 0;
				break;
			default:
				break;
			}
		}
	}
	if (!have_strtab) {
		if (n_needed || soname != UINT64_MAX || rpath != UINT64_MAX ||
		    runpath != UINT64_MAX)
			r = tgvm_error_set(reterr, ENOEXEC, "dynamic section has no DT_STRTAB");
		goto out;
	}
	{
		uint64_t off, avail;

		if (!vaddr_to_off(loads, n_loads, strtab, &off, &avail)) {
			r = tgvm_error_set(reterr, ENOEXEC,
			                   "DT_STRTAB 0x%llx is outside every loaded segment",
			                   (unsigned long long)strtab);
			goto out;
		}
		str_len = TGVM_MIN(strsz ? strsz : avail, avail);
		str = (const char *)data + off;
	}
#define DYNSTR(idx, dst)                                                                           \
	do {                                                                                       \
		uint64_t o_ = (idx);                                                               \
		size_t l_;                                                                         \
		if (o_ >= str_len) {                                                               \
			r = tgvm_error_set(reterr, ENOEXEC,                                        \
			                   "dynamic string offset %llu past the table of %llu",    \
			                   (unsigned long long)o_, (unsigned long long)str_len);   \
			goto out;                                                                  \
		}                                                                                  \
		l_ = strnlen(str + o_, TGVM_MIN(str_len - o_, (uint64_t)SCAN_PATH_MAX));           \
		if (l_ >= str_len - o_ || l_ >= SCAN_PATH_MAX) {                                   \
			r = tgvm_error_set(reterr, ENOEXEC, "unterminated dynamic string at %llu", \
			                   (unsigned long long)o_);                                \
			goto out;                                                                  \
		}                                                                                  \
		(dst) = strndup(str + o_, l_);                                                     \
		if (!(dst)) {                                                                      \
			r = -ENOMEM;                                                               \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)
	if (soname != UINT64_MAX)
		DYNSTR(soname, ret->soname);
	if (runpath != UINT64_MAX)
		DYNSTR(runpath, ret->runpath);
	else if (rpath != UINT64_MAX)
		DYNSTR(rpath, ret->rpath); /* DT_RUNPATH hides DT_RPATH */
	for (size_t i = 0; i < n_needed; i++) {
		char *name = NULL;

		DYNSTR(needed[i], name);
		if (*name && !tgvm_strv_contains(&ret->needed, name))
			r = tgvm_strv_push(&ret->needed, name);
		free(name);
		if (r < 0)
			goto out;
	}
#undef DYNSTR
out:
	if (elf)
		elf_end(elf);
	if (r < 0)
		scan_elf_dynamic_release(ret);
	return r;
}

/* ---- caches ---- */

struct hentry {
	struct hentry *next;
	char *key;
	int status;                  /* candidates: 0 usable, -ENOENT, -ENOEXEC */
	char *canon;                 /* candidates: the canonical path */
	struct scan_elf_dynamic dyn; /* objects: their dynamic section */
	char *why;                   /* objects: why the dynamic section is unusable */
};

struct hmap {
	struct hentry **b;
	size_t n, cap;
};

struct ldcache {
	bool conf_loaded;
	struct tgvm_strv conf_dirs;
	char lib[32]; /* what $LIB expands to */
	struct hmap cand, objs;
};

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct hentry *hmap_get(struct hmap *m, const char *key)
{
	if (!m->cap)
		return NULL;
	for (struct hentry *e = m->b[hash(key) & (m->cap - 1)]; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

static struct hentry *hmap_add(struct hmap *m, const char *key)
{
	struct hentry *e;

	if (m->n + 1 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct hentry **b = calloc(cap, sizeof(*b));

		if (!b)
			return NULL;
		for (size_t i = 0; i < m->cap; i++)
			while (m->b[i]) {
				struct hentry *x = m->b[i];

				m->b[i] = x->next;
				x->next = b[hash(x->key) & (cap - 1)];
				b[hash(x->key) & (cap - 1)] = x;
			}
		free(m->b);
		m->b = b;
		m->cap = cap;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return NULL;
	}
	e->next = m->b[hash(key) & (m->cap - 1)];
	m->b[hash(key) & (m->cap - 1)] = e;
	m->n++;
	return e;
}

static void hmap_release(struct hmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		while (m->b[i]) {
			struct hentry *e = m->b[i];

			m->b[i] = e->next;
			free(e->key);
			free(e->canon);
			free(e->why);
			scan_elf_dynamic_release(&e->dyn);
			free(e);
		}
	free(m->b);
	memset(m, 0, sizeof(*m));
}

void scan_ldcache_free(struct ldcache *c)
{
	if (!c)
		return;
	tgvm_strv_release(&c->conf_dirs);
	hmap_release(&c->cand);
	hmap_release(&c->objs);
	free(c);
}

/* The parsed dynamic section of the object at canonical @path (cached). */
static struct hentry *get_object(struct scan_fs *fs, struct ldcache *c, const char *path)
{
	struct hentry *e = hmap_get(&c->objs, path);
	struct scan_blob b = {0};
	struct tgvm_error err = {0};
	int r;

	if (e)
		return e;
	e = hmap_add(&c->objs, path);
	if (!e)
		return NULL;
	r = scan_fs_read(fs, path, &b, &err);
	if (r == 0) {
		r = scan_elf_dynamic_parse(b.data, b.size, &e->dyn, &err);
		scan_blob_release(&b);
	}
	e->status = r;
	if (r < 0)
		e->why = strdup(err.msg);
	return e;
}

/* Is @cand a library ld.so would take? Writes its canonical path. */
static int try_candidate(struct scan_fs *fs, struct ldcache *c, const char *cand,
                         const char **ret_canon, const char **ret_as_found)
{
	struct hentry *e = hmap_get(&c->cand, cand);

	if (!e) {
		char canon[SCAN_PATH_MAX];
		struct hentry *o;

		e = hmap_add(&c->cand, cand);
		if (!e)
			return -ENOMEM;
		if (!scan_fs_exists(fs, cand, canon, sizeof(canon))) {
			e->status = -ENOENT;
		} else {
			e->canon = strdup(canon);
			o = get_object(fs, c, canon);
			if (!e->canon || !o)
				return -ENOMEM;
			e->status = o->status < 0 || !o->dyn.matches ? -ENOEXEC : 0;
		}
	}
	if (e->status == 0) {
		*ret_canon = e->canon;
		*ret_as_found = e->key;
	}
	return e->status;
}

/* ---- ld.so.conf ---- */

static bool has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* Expand the glob @pat (absolute) inside the source; matches are pushed sorted. */
static int glob_expand(struct scan_fs *fs, const char *dir, const char *pat, struct tgvm_strv *ret)
{
	char comp[SCAN_PATH_MAX], next[SCAN_PATH_MAX], real[SCAN_PATH_MAX];
	const char *slash;
	size_t n;
	struct tgvm_strv names;
	struct scan_stat st;
	int r = 0;

	while (*pat == '/')
		pat++;
	if (!*pat) {
		if (ret->n >= LD_GLOB_MAX)
			return 0;
		return tgvm_strv_push(ret, dir);
	}
	slash = strchr(pat, '/');
	n = slash ? (size_t)(slash - pat) : strlen(pat);
	if (n >= sizeof(comp))
		return 0;
	memcpy(comp, pat, n);
	comp[n] = '\0';
	if (!has_glob(comp)) {
		if (snprintf(next, sizeof(next), "%s/%s", strcmp(dir, "/") ? dir : "", comp) >=
		    (int)sizeof(next))
			return 0;
		return glob_expand(fs, next, pat + n, ret);
	}
	if (scan_fs_resolve(fs, dir, true, real, sizeof(real), &st) < 0 || st.type != SCAN_NODE_DIR)
		return 0;
	tgvm_strv_init(&names);
	if (fs->ops->list(fs, real, &names) < 0)
		goto out;
	for (size_t i = 0; i < names.n && r == 0; i++) {
		if (names.v[i][0] == '.' && comp[0] != '.')
			continue;
		if (fnmatch(comp, names.v[i], FNM_PERIOD) != 0)
			continue;
		if (snprintf(next, sizeof(next), "%s/%s", strcmp(dir, "/") ? dir : "",
		             names.v[i]) >= (int)sizeof(next))
			continue;
		r = glob_expand(fs, next, pat + n, ret);
	}
out:
	tgvm_strv_release(&names);
	return r;
}

static int conf_add_dir(struct ldcache *c, const char *d)
{
	char norm[SCAN_PATH_MAX];

	if (c->conf_dirs.n >= LD_CONF_DIRS || scan_path_normalize(d, norm, sizeof(norm)) < 0)
		return 0;
	if (tgvm_strv_contains(&c->conf_dirs, norm))
		return 0;
	return tgvm_strv_push(&c->conf_dirs, norm);
}

static int conf_parse(struct scan_fs *fs, struct ldcache *c, const char *file, int depth)
{
	struct scan_blob b = {0};
	char line[SCAN_PATH_MAX];
	size_t i = 0;
	int r = 0;

	if (depth > LD_CONF_DEPTH || scan_fs_read(fs, file, &b, NULL) < 0)
		return 0;
	while (i < b.size && i < LD_CONF_MAX && r == 0) {
		size_t n = 0;
		char *s, *hash_sign;

		while (i < b.size && b.data[i] != '\n') {
			if (n < sizeof(line) - 1)
				line[n++] = (char)b.data[i];
			i++;
		}
		i++;
		line[n] = '\0';
		hash_sign = strchr(line, '#');
		if (hash_sign)
			*hash_sign = '\0';
		s = line;
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (!strncmp(s, "include", 7) && (s[7] == ' ' || s[7] == '\t')) {
			struct tgvm_strv pats, files;
			char pat[SCAN_PATH_MAX];

			tgvm_strv_init(&pats);
			tgvm_strv_init(&files);
			r = tgvm_strv_split(&pats, s + 8, " \t\r");
			for (size_t k = 0; k < pats.n && r == 0; k++) {
				const char *slash = strrchr(file, '/');
				size_t dl = slash ? (size_t)(slash - file) : 0;

				int len;

				/* Relative patterns are relative to the including file. */
				if (pats.v[k][0] == '/')
					len = snprintf(pat, sizeof(pat), "%s", pats.v[k]);
				else
					len = snprintf(pat, sizeof(pat), "%.*s/%s", (int)dl, file,
					               pats.v[k]);
				if (len < 0 || (size_t)len >= sizeof(pat))
					continue;
				r = glob_expand(fs, "/", pat, &files);
			}
			for (size_t k = 0; k < files.n && r == 0; k++)
				r = conf_parse(fs, c, files.v[k], depth + 1);
			tgvm_strv_release(&pats);
			tgvm_strv_release(&files);
			continue;
		}
		if (!strncmp(s, "hwcap", 5) && (s[5] == ' ' || s[5] == '\t'))
			continue;
		{
			struct tgvm_strv dirs;

			tgvm_strv_init(&dirs);
			r = tgvm_strv_split(&dirs, s, " \t\r:,=");
			for (size_t k = 0; k < dirs.n && r == 0; k++)
				if (dirs.v[k][0] == '/')
					r = conf_add_dir(c, dirs.v[k]);
			tgvm_strv_release(&dirs);
		}
	}
	scan_blob_release(&b);
	return r;
}

static int ldcache_get(struct scan_fs *fs, struct ldcache **ret)
{
	struct ldcache *c = fs->ld;
	struct scan_stat st;
	char real[SCAN_PATH_MAX];
	int r;

	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		tgvm_strv_init(&c->conf_dirs);
		fs->ld = c;
	}
	if (!c->conf_loaded) {
		c->conf_loaded = true;
		r = conf_parse(fs, c, "/etc/ld.so.conf", 0);
		if (r < 0)
			return r;
		/* Debian's multiarch layout sets $LIB to lib/x86_64-linux-gnu. */
		if ((scan_fs_resolve(fs, "/lib/x86_64-linux-gnu", true, real, sizeof(real), &st) ==
		         0 &&
		     st.type == SCAN_NODE_DIR) ||
		    (scan_fs_resolve(fs, "/usr/lib/x86_64-linux-gnu", true, real, sizeof(real),
		                     &st) == 0 &&
		     st.type == SCAN_NODE_DIR))
			snprintf(c->lib, sizeof(c->lib), "lib/x86_64-linux-gnu");
		else
			snprintf(c->lib, sizeof(c->lib), "lib64");
	}
	*ret = c;
	return 0;
}

/* ---- search ---- */

/* Expand $ORIGIN, $LIB and $PLATFORM (and their ${...} forms) in @s. */
static int expand_dst(const char *s, const char *origin, const char *lib, char *out, size_t size)
{
	static const char *const names[] = {"ORIGIN", "LIB", "PLATFORM"};
	size_t o = 0;

	while (*s) {
		const char *val = NULL;
		size_t skip = 0;

		if (*s == '$') {
			for (size_t k = 0; k < ARRAY_SIZE(names) && !val; k++) {
				size_t l = strlen(names[k]);
				const char *v = k == 0 ? origin : k == 1 ? lib : "x86_64";
				char c;

				if (!strncmp(s + 1, names[k], l)) {
					c = s[1 + l];
					/* $ORIGINX is not $ORIGIN followed by X. */
					if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
					    (c >= '0' && c <= '9') || c == '_')
						continue;
					val = v;
					skip = 1 + l;
				} else if (s[1] == '{' && !strncmp(s + 2, names[k], l) &&
				           s[2 + l] == '}') {
					val = v;
					skip = 3 + l;
				}
			}
		}
		if (val) {
			size_t l = strlen(val);

			if (o + l >= size)
				return -ENAMETOOLONG;
			memcpy(out + o, val, l);
			o += l;
			s += skip;
		} else {
			if (o + 1 >= size)
				return -ENAMETOOLONG;
			out[o++] = *s++;
		}
	}
	out[o] = '\0';
	return 0;
}

struct obj {
	const char *canon; /* in the cache */
	char *origin;
	struct hentry *e;
	int loader; /* index of the object that needed it, -1 for the program */
};

struct search {
	struct scan_fs *fs;
	struct ldcache *c;
	int hwcaps_level;
	struct tgvm_strv dirs;
};

/* Push the directories of a DT_RPATH/DT_RUNPATH string. */
static int push_path_list(struct search *s, const char *list, const char *origin)
{
	struct tgvm_strv parts;
	char buf[SCAN_PATH_MAX];
	int r;

	tgvm_strv_init(&parts);
	r = tgvm_strv_split(&parts, list, ":");
	for (size_t i = 0; i < parts.n && r == 0; i++) {
		if (expand_dst(parts.v[i], origin, s->c->lib, buf, sizeof(buf)) < 0)
			continue;
		/* Relative entries are relative to the working directory: the root here. */
		r = tgvm_strv_push(&s->dirs, buf);
	}
	tgvm_strv_release(&parts);
	return r;
}

/* Look for @name in dir @d (and its glibc-hwcaps subdirectories). */
static int search_dir(struct search *s, const char *d, const char *name, const char **ret,
                      const char **ret_as_found)
{
	char cand[SCAN_PATH_MAX];
	int r;

	for (int lvl = s->hwcaps_level; lvl >= 2; lvl--) {
		if (snprintf(cand, sizeof(cand), "%s/glibc-hwcaps/x86-64-v%d/%s", d, lvl, name) >=
		    (int)sizeof(cand))
			continue;
		r = try_candidate(s->fs, s->c, cand, ret, ret_as_found);
		if (r == 0 || r == -ENOMEM)
			return r;
	}
	if (snprintf(cand, sizeof(cand), "%s/%s", d, name) >= (int)sizeof(cand))
		return -ENOENT;
	return try_candidate(s->fs, s->c, cand, ret, ret_as_found);
}

static int find_library(struct search *s, struct obj *objs, int who, const char *name,
                        const char **ret, const char **ret_as_found)
{
	const struct scan_elf_dynamic *me = &objs[who].e->dyn;
	char buf[SCAN_PATH_MAX];
	int r;

	if (strchr(name, '/')) {
		if (expand_dst(name, objs[who].origin, s->c->lib, buf, sizeof(buf)) < 0)
			return -ENOENT;
		return try_candidate(s->fs, s->c, buf, ret, ret_as_found);
	}
	for (size_t i = 0; i < s->dirs.n; i++)
		free(s->dirs.v[i]);
	s->dirs.n = 0;
	if (!me->runpath) {
		/* DT_RPATH of the object, then of each object that loaded it. */
		for (int l = who; l >= 0; l = objs[l].loader) {
			const struct scan_elf_dynamic *d = &objs[l].e->dyn;

			if (d->rpath && !d->runpath &&
			    (r = push_path_list(s, d->rpath, objs[l].origin)) < 0)
				return r;
		}
	} else if ((r = push_path_list(s, me->runpath, objs[who].origin)) < 0) {
		return r;
	}
	if (!me->nodeflib) {
		for (size_t i = 0; i < s->c->conf_dirs.n; i++)
			if ((r = tgvm_strv_push(&s->dirs, s->c->conf_dirs.v[i])) < 0)
				return r;
		for (size_t i = 0; i < ARRAY_SIZE(default_dirs); i++)
			if ((r = tgvm_strv_push(&s->dirs, default_dirs[i])) < 0)
				return r;
	}
	for (size_t i = 0; i < s->dirs.n; i++) {
		r = search_dir(s, s->dirs.v[i], name, ret, ret_as_found);
		if (r == 0 || r == -ENOMEM)
			return r;
	}
	return -ENOENT;
}

/* The directory part of @path ("/" for "/x"), newly allocated. */
static char *dirname_dup(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	return n ? strndup(path, n) : strdup("/");
}

static int resolve_locked(struct scan_fs *fs, const char *program, int hwcaps_level,
                          struct tgvm_strv *ret_libs, struct tgvm_strv *ret_missing,
                          struct tgvm_error *reterr)
{
	struct search s = {.fs = fs, .hwcaps_level = hwcaps_level};
	struct obj *objs = NULL;
	int cap = 0;
	struct tgvm_strv seen_names, missing;
	char canon[SCAN_PATH_MAX];
	struct hentry *pe;
	int n = 0, r;

	tgvm_strv_init(&s.dirs);
	tgvm_strv_init(&seen_names);
	tgvm_strv_init(&missing);
	r = ldcache_get(fs, &s.c);
	if (r < 0)
		goto oom;
	if (fs->self && !strcmp(program, fs->self)) {
		/* A lone file on the host: its $ORIGIN is where it really lives. */
		char *real = realpath(program, NULL);

		if (!real) {
			r = tgvm_error_set(reterr, errno, "cannot open '%s': %s", program,
			                   strerror(errno));
			goto out;
		}
		snprintf(canon, sizeof(canon), "%s", real);
		free(real);
		if (!scan_fs_exists(fs, canon, canon, sizeof(canon))) {
			r = tgvm_error_set(reterr, ENOENT, "cannot open '%s'", program);
			goto out;
		}
	} else if (!scan_fs_exists(fs, program, canon, sizeof(canon))) {
		r = tgvm_error_set(reterr, ENOENT, "'%s' is not a file in '%s'", program,
		                   fs->origin);
		goto out;
	}
	pe = get_object(fs, s.c, canon);
	if (!pe)
		goto oom;
	if (pe->status < 0) {
		r = tgvm_error_set(reterr, -pe->status, "'%s' in '%s': %s", program, fs->origin,
		                   pe->why ? pe->why : strerror(-pe->status));
		goto out;
	}
	if (!pe->dyn.matches) {
		r = tgvm_error_set(reterr, ENOEXEC, "'%s' in '%s' is not an x86-64 ELF file",
		                   program, fs->origin);
		goto out;
	}
	cap = 16;
	objs = calloc(cap, sizeof(*objs));
	if (!objs)
		goto oom;
	objs[0].canon = pe->key;
	objs[0].e = pe;
	objs[0].loader = -1;
	objs[0].origin = dirname_dup(canon);
	n = 1;
	if (!objs[0].origin)
		goto oom;
	if (pe->dyn.interp) {
		const char *ic = NULL;

		if (scan_fs_exists(fs, pe->dyn.interp, canon, sizeof(canon))) {
			ic = canon;
			if (!tgvm_strv_contains(ret_libs, ic) &&
			    (r = tgvm_strv_push(ret_libs, ic)) < 0)
				goto oom;
		} else if (!tgvm_strv_contains(ret_missing, pe->dyn.interp) &&
		           (r = tgvm_strv_push(ret_missing, pe->dyn.interp)) < 0) {
			goto oom;
		}
	}
	/* Breadth first, as _dl_map_object_deps() loads them. */
	for (int i = 0; i < n; i++) {
		const struct tgvm_strv *need = &objs[i].e->dyn.needed;

		for (size_t k = 0; k < need->n; k++) {
			const char *name = need->v[k], *found = NULL, *as_found = NULL;
			struct hentry *le;
			bool dup = false;

			if (tgvm_strv_contains(&seen_names, name) ||
			    tgvm_strv_contains(&missing, name))
				continue;
			r = find_library(&s, objs, i, name, &found, &as_found);
			if (r == -ENOMEM)
				goto oom;
			if (r < 0) {
				if ((r = tgvm_strv_push(&missing, name)) < 0)
					goto oom;
				continue;
			}
			if ((r = tgvm_strv_push(&seen_names, name)) < 0)
				goto oom;
			for (int j = 0; j < n; j++)
				if (!strcmp(objs[j].canon, found))
					dup = true;
			if (dup)
				continue;
			if (n >= LD_OBJS_MAX) {
				r = tgvm_error_set(reterr, E2BIG,
				                   "'%s' in '%s' loads more than %d objects",
				                   program, fs->origin, LD_OBJS_MAX);
				goto out;
			}
			if (n == cap) {
				struct obj *grown = realloc(objs, 2 * cap * sizeof(*objs));

				if (!grown)
					goto oom;
				objs = grown;
				cap *= 2;
			}
			le = get_object(fs, s.c, found);
			if (!le)
				goto oom;
			objs[n].canon = le->key;
			objs[n].e = le;
			objs[n].loader = i;
			/* $ORIGIN of a library: the directory it was found in, as ld.so
			 * keeps it (not resolved); the program's is resolved. */
			objs[n].origin = dirname_dup(as_found);
			if (!objs[n].origin)
				goto oom;
			if (le->dyn.soname && !tgvm_strv_contains(&seen_names, le->dyn.soname) &&
			    (r = tgvm_strv_push(&seen_names, le->dyn.soname)) < 0)
				goto oom;
			n++;
		}
	}
	for (int i = 1; i < n; i++)
		if (!tgvm_strv_contains(ret_libs, objs[i].canon) &&
		    (r = tgvm_strv_push(ret_libs, objs[i].canon)) < 0)
			goto oom;
	for (size_t i = 0; i < missing.n; i++)
		if (!tgvm_strv_contains(ret_missing, missing.v[i]) &&
		    (r = tgvm_strv_push(ret_missing, missing.v[i])) < 0)
			goto oom;
	r = 0;
	goto out;
oom:
	r = tgvm_error_set(reterr, ENOMEM, "resolving the libraries of '%s': out of memory",
	                   program);
out:
	for (int i = 0; i < n; i++)
		free(objs[i].origin);
	free(objs);
	tgvm_strv_release(&s.dirs);
	tgvm_strv_release(&seen_names);
	tgvm_strv_release(&missing);
	return r;
}

int scan_fs_resolve_needed(struct scan_fs *fs, const char *program, int hwcaps_level,
                           struct tgvm_strv *ret_libs, struct tgvm_strv *ret_missing,
                           struct tgvm_error *reterr)
{
	int r;

	if (hwcaps_level != 0 && (hwcaps_level < 2 || hwcaps_level > 4))
		return tgvm_error_set(reterr, EINVAL, "hwcaps level %d is not 0, 2, 3 or 4",
		                      hwcaps_level);
	pthread_mutex_lock(&fs->ld_lock);
	r = resolve_locked(fs, program, hwcaps_level, ret_libs, ret_missing, reterr);
	pthread_mutex_unlock(&fs->ld_lock);
	return r;
}
