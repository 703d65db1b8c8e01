// SPDX-License-Identifier: MIT
/*
 * Findings and reports: the result of one file (counts per feature and
 * class, a bounded number of findings with evidence), the analysis of one
 * ELF image from bytes to result, and the JSON form of a whole report and
 * its reader.
 */
#include <errno.h>
#include <gelf.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan/scan-int.h"

void scan_result_free(struct scan_result *r)
{
	if (!r)
		return;
	free(r->path);
	free(r->error);
	tgvm_strv_release(&r->needed);
	tgvm_strv_release(&r->imports);
	tgvm_strv_release(&r->cond_names);
	free(r->conds);
	for (size_t i = 0; i < r->nfindings; i++) {
		free(r->findings[i].symbol);
		free(r->findings[i].near);
		free(r->findings[i].insn);
		free(r->findings[i].detail);
	}
	free(r->findings);
	memset(r, 0, sizeof(*r));
}

static int strv_copy(struct tgvm_strv *dst, const struct tgvm_strv *src)
{
	int r;

	tgvm_strv_init(dst);
	for (size_t i = 0; i < src->n; i++)
		if ((r = tgvm_strv_push(dst, src->v[i])) < 0)
			return r;
	return 0;
}

static char *strdup_or_null(const char *s, bool *failed)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*failed = true;
	return d;
}

int scan_result_copy(struct scan_result *dst, const struct scan_result *src, const char *path)
{
	bool failed = false;

	*dst = *src;
	dst->path = NULL;
	dst->error = NULL;
	tgvm_strv_init(&dst->needed);
	tgvm_strv_init(&dst->imports);
	tgvm_strv_init(&dst->cond_names);
	dst->conds = NULL;
	dst->findings = NULL;
	dst->nconds = dst->nfindings = dst->cap_findings = 0;
	dst->path = strdup_or_null(path, &failed);
	dst->error = strdup_or_null(src->error, &failed);
	if (failed || strv_copy(&dst->needed, &src->needed) < 0 ||
	    strv_copy(&dst->imports, &src->imports) < 0 ||
	    strv_copy(&dst->cond_names, &src->cond_names) < 0)
		goto fail;
	if (src->nconds) {
		dst->conds = malloc(src->nconds * sizeof(*dst->conds));
		if (!dst->conds)
			goto fail;
		memcpy(dst->conds, src->conds, src->nconds * sizeof(*dst->conds));
		dst->nconds = src->nconds;
	}
	if (src->nfindings) {
		dst->findings = calloc(src->nfindings, sizeof(*dst->findings));
		if (!dst->findings)
			goto fail;
		dst->cap_findings = src->nfindings;
		for (size_t i = 0; i < src->nfindings; i++) {
			struct scan_finding *d = &dst->findings[i];

			*d = src->findings[i];
			d->symbol = strdup_or_null(src->findings[i].symbol, &failed);
			d->near = strdup_or_null(src->findings[i].near, &failed);
			d->insn = strdup_or_null(src->findings[i].insn, &failed);
			d->detail = strdup_or_null(src->findings[i].detail, &failed);
			dst->nfindings++;
			if (failed)
				goto fail;
		}
	}
	return 0;
fail:
	scan_result_free(dst);
	return -ENOMEM;
}

int scan_result_cond(struct scan_result *r, const struct tgvm_featureset *fs, bool always,
                     const struct tgvm_strv *names)
{
	struct scan_cond *nv = realloc(r->conds, (r->nconds + 1) * sizeof(*nv));
	struct scan_cond *c;
	int ret;

	if (!nv)
		return -ENOMEM;
	r->conds = nv;
	c = &r->conds[r->nconds++];
	c->features = *fs;
	c->always = always;
	c->first_name = (uint32_t)r->cond_names.n;
	c->n_names = 0;
	for (size_t i = 0; !always && names && i < names->n; i++) {
		if ((ret = tgvm_strv_push(&r->cond_names, names->v[i])) < 0)
			return ret;
		c->n_names++;
	}
	return 0;
}

static char *format_insn(const struct scan_file *sf, uint64_t addr)
{
	ZydisDecodedInstruction in;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT_VISIBLE];
	ZydisFormatter fmt;
	char buf[160];

	if (scan_decode_one(sf, addr, &in, ops) < 0)
		return strdup("(undecodable)");
	ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL);
	if (!ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&fmt, &in, ops, in.operand_count_visible,
	                                                  buf, sizeof(buf), addr, NULL)))
		return strdup("(unformattable)");
	return strdup(buf);
}

int scan_result_use(struct scan_file *sf, enum tgvm_feature f, enum scan_class cls, uint64_t addr,
                    const char *detail, enum scan_guard_kind gk, uint64_t guard_addr)
{
	struct scan_result *r = sf->res;
	struct scan_finding *fd;
	const struct scan_sym *s;

	if ((unsigned)f >= TGVM_F__MAX)
		return 0;
	if (cls == SCAN_C_REQUIRED)
		tgvm_featureset_add(&r->req, f);
	else if (cls == SCAN_C_UNKNOWN)
		tgvm_featureset_add(&r->unk, f);
	else
		tgvm_featureset_add(&r->grd, f);
	if (r->count[cls][f]++ >= SCAN_EVIDENCE_PER_FILE * 64)
		return 0;
	{
		size_t kept = 0;

		for (size_t i = 0; i < r->nfindings; i++)
			if (r->findings[i].feature == f && r->findings[i].cls == cls) {
				if (r->findings[i].func == sf->cur_func ||
				    ++kept >= SCAN_EVIDENCE_PER_FILE)
					return 0;
			}
	}
	if (r->nfindings == r->cap_findings) {
		size_t nc = r->cap_findings ? r->cap_findings * 2 : 16;
		struct scan_finding *nv = realloc(r->findings, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		r->findings = nv;
		r->cap_findings = nc;
	}
	fd = &r->findings[r->nfindings];
	memset(fd, 0, sizeof(*fd));
	fd->feature = (uint16_t)f;
	fd->cls = (uint8_t)cls;
	fd->guard_kind = (uint8_t)gk;
	fd->addr = addr;
	fd->guard_addr = guard_addr;
	fd->func = sf->cur_func;
	s = scan_elf_symbol_containing(&sf->elf, addr);
	if (s && *s->name) {
		fd->symbol = strdup(s->name);
	} else if ((s = scan_elf_symbol_near(&sf->elf, addr)) && *s->name) {
		char buf[64];

		snprintf(buf, sizeof(buf), "+0x%llx", (unsigned long long)(addr - s->addr));
		fd->near = malloc(strlen(s->name) + strlen(buf) + 1);
		if (fd->near) {
			memcpy(fd->near, s->name, strlen(s->name));
			memcpy(fd->near + strlen(s->name), buf, strlen(buf) + 1);
		}
	}
	fd->insn = format_insn(sf, addr);
	fd->detail = strdup(detail ? detail : "");
	if (!fd->insn || !fd->detail) {
		free(fd->near);
		free(fd->symbol);
		free(fd->insn);
		free(fd->detail);
		return -ENOMEM;
	}
	r->nfindings++;
	return 0;
}

int scan_hwcaps_level_of(const char *path)
{
	const char *p = strstr(path, "/glibc-hwcaps/x86-64-v");

	if (p && p[22] >= '2' && p[22] <= '4' && p[23] == '/')
		return p[22] - '0';
	return 0;
}

int scan_analyse(const char *path, const uint8_t *data, size_t size, struct scan_result *res)
{
	struct scan_file sf;
	struct tgvm_error err = {0};
	int r;

	memset(&sf, 0, sizeof(sf));
	sf.path = path;
	sf.res = res;
	tgvm_strv_init(&sf.cap_names);
	r = scan_elf_open(data, size, &sf.elf, &err);
	if (r < 0) {
		res->status = r;
		if (r != -ENOEXEC && r != -EXDEV)
			res->error = strdup(err.msg[0] ? err.msg : strerror(-r));
		return r;
	}
	ZydisDecoderInit(&sf.dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	sf.hwcaps_level = scan_hwcaps_level_of(path);
	res->hwcaps_level = sf.hwcaps_level;
	res->isa_needed = sf.elf.isa_needed;
	if (sf.elf.from_segments)
		snprintf(res->segments, sizeof(res->segments), "%s", sf.elf.why);
	res->is_static = !sf.elf.has_interp && !sf.elf.has_dynamic;
	/* libc.so.6 has an interpreter too; a shared object names itself */
	res->program = sf.elf.type == ET_EXEC || (sf.elf.has_interp && !sf.elf.has_soname);
	tgvm_strv_init(&res->cond_names);
	for (size_t i = 0; i < sf.elf.needed.n; i++)
		if ((r = tgvm_strv_push(&res->needed, sf.elf.needed.v[i])) < 0)
			goto out;
	for (size_t i = 0; i < sf.elf.imports.n; i++)
		if ((r = tgvm_strv_push(&res->imports, sf.elf.imports.v[i])) < 0)
			goto out;
	if ((r = scan_cfg_discover(&sf, &err)) < 0 || (r = scan_guard_classify(&sf, &err)) < 0)
		goto out;
	/* The loader refuses an object whose ISA-level note the CPU does not meet. */
	if (sf.elf.isa_needed >= 2) {
		struct tgvm_featureset lv;
		char why[160];

		tgvm_psabi_set(sf.elf.isa_needed, &lv);
		snprintf(why, sizeof(why), "GNU_PROPERTY_X86_ISA_1_NEEDED note says x86-64-v%d%s",
		         sf.elf.isa_needed,
		         sf.hwcaps_level ? " (inside glibc-hwcaps: loaded only on such CPUs)"
		                         : ": ld.so refuses it on lesser CPUs");
		if (sf.hwcaps_level < sf.elf.isa_needed &&
		    (r = scan_result_cond(res, &lv, true, NULL)) < 0)
			goto out;
		TGVM_FEATURESET_FOREACH(f, &lv)
		{
			if (scan_feature_trivial(f))
				continue;
			if (sf.hwcaps_level >= sf.elf.isa_needed)
				r = scan_result_use(&sf, f, SCAN_C_GUARDED, sf.elf.entry, why,
				                    SCAN_G_HWCAPS, 0);
			else
				r = scan_result_use(&sf, f, SCAN_C_REQUIRED, sf.elf.entry, why,
				                    SCAN_G_NONE, 0);
			if (r < 0)
				goto out;
		}
	}
	res->code_bytes = sf.code_bytes;
	res->insns = sf.insns;
	r = 0;
out:
	if (r < 0) {
		res->status = r;
		res->error = strdup(err.msg[0] ? err.msg : strerror(-r));
	}
	for (size_t i = 0; i < sf.nfuncs; i++) {
		free(sf.funcs[i].gblocks);
		free(sf.funcs[i].gchecks);
		free(sf.funcs[i].icache);
	}
	free(sf.funcs);
	free(sf.refs);
	free(sf.drefs);
	free(sf.dslot_by_site);
	free(sf.sinfo);
	free(sf.sinfo_have);
	free(sf.leainfo);
	free(sf.refs_byfrom);
	free(sf.caps);
	free(sf.g.insns);
	free(sf.g.blocks);
	tgvm_strv_release(&sf.cap_names);
	scan_elf_release(&sf.elf);
	return r;
}

/* ---- JSON ---- */

static json_t *set_json(const struct tgvm_featureset *s)
{
	json_t *a = json_array();

	TGVM_FEATURESET_FOREACH(f, s)
	json_array_append_new(a, json_string(tgvm_feature_name(f)));
	return a;
}

static json_t *hex(uint64_t v)
{
	char b[24];

	snprintf(b, sizeof(b), "0x%llx", (unsigned long long)v);
	return json_string(b);
}

static json_t *evidence_json(const struct tgvm_scan_evidence *e)
{
	json_t *o = json_object();

	json_object_set_new(o, "class", json_string(tgvm_scan_class_to_string(e->cls)));
	json_object_set_new(o, "file", json_string(e->file));
	json_object_set_new(o, "symbol", e->symbol ? json_string(e->symbol) : json_null());
	if (!e->symbol && e->near)
		json_object_set_new(o, "near", json_string(e->near));
	json_object_set_new(o, "address", hex(e->address));
	json_object_set_new(o, "insn", json_string(e->insn));
	if (e->guard) {
		json_object_set_new(o, "guard", json_string(e->guard));
		json_object_set_new(o, "guard_address",
		                    e->guard_address ? hex(e->guard_address) : json_null());
	}
	json_object_set_new(o, "detail", json_string(e->detail));
	return o;
}

int tgvm_scan_report_json(const struct tgvm_scan_report *r, char **ret_json,
                          struct tgvm_error *reterr)
{
	const struct tgvm_scan_totals *t = tgvm_scan_report_totals(r);
	json_t *root = json_object(), *inputs = json_array(), *progs = json_array();
	json_t *files = json_array(), *ev = json_object(), *sk = json_object(),
	       *errs = json_array();
	struct tgvm_featureset all = t->required, unknown;
	char *s;

	for (size_t i = 0; i < r->inputs.n; i++)
		json_array_append_new(inputs, json_string(r->inputs.v[i]));
	json_object_set_new(root, "tool", json_string("tgvm-scan"));
	json_object_set_new(root, "version", json_integer(TGVM_SCAN_JSON_VERSION));
	json_object_set_new(root, "inputs", inputs);
	json_object_set_new(root, "required", set_json(&t->required));
	json_object_set_new(root, "guarded", set_json(&t->guarded));
	json_object_set_new(root, "psabi_required", json_string(tgvm_psabi_to_string(t->psabi)));
	json_object_set_new(root, "library_only", set_json(&r->library_only));
	for (size_t i = 0; i < tgvm_scan_report_n_programs(r); i++) {
		const struct tgvm_scan_program *p = tgvm_scan_report_program(r, i);
		json_t *o = json_object(), *libs = json_array(), *miss = json_array();

		for (size_t k = 0; k < p->n_libraries; k++)
			json_array_append_new(libs, json_string(p->libraries[k]));
		for (size_t k = 0; k < p->n_missing; k++)
			json_array_append_new(miss, json_string(p->missing[k]));
		json_object_set_new(o, "path", json_string(p->path));
		json_object_set_new(o, "input", json_string(p->input));
		json_object_set_new(o, "libraries", libs);
		json_object_set_new(o, "missing", miss);
		json_object_set_new(o, "required", set_json(&p->required));
		json_object_set_new(o, "guarded", set_json(&p->guarded));
		json_object_set_new(o, "psabi_required",
		                    json_string(tgvm_psabi_to_string(p->psabi)));
		json_array_append_new(progs, o);
	}
	json_object_set_new(root, "programs", progs);
	for (size_t i = 0; i < tgvm_scan_report_n_files(r); i++) {
		const struct tgvm_scan_file *f = tgvm_scan_report_file(r, i);
		json_t *o = json_object();

		json_object_set_new(o, "path", json_string(f->path));
		json_object_set_new(o, "input", json_string(f->input));
		json_object_set_new(o, "kind",
		                    json_string(f->program
		                                    ? (f->is_static ? "static-program" : "program")
		                                    : "library"));
		json_object_set_new(o, "required", set_json(&f->required));
		json_object_set_new(o, "guarded", set_json(&f->guarded));
		json_object_set_new(o, "unknown", set_json(&f->unknown));
		json_object_set_new(o, "hwcaps_level", json_integer(f->hwcaps_level));
		json_object_set_new(o, "isa_needed", json_integer(f->isa_needed));
		json_object_set_new(o, "code_bytes", json_integer((json_int_t)f->code_bytes));
		json_object_set_new(o, "read_from",
		                    json_string(f->segments ? "segments" : "sections"));
		if (f->segments)
			json_object_set_new(o, "segments_reason", json_string(f->segments));
		json_array_append_new(files, o);
	}
	json_object_set_new(root, "files", files);
	/* features some file uses where the scan could not tell (evidence says why) */
	tgvm_featureset_clear(&unknown);
	for (size_t i = 0; i < r->nfiles; i++)
		tgvm_featureset_union(&unknown, &r->files[i].unknown);
	tgvm_featureset_minus(&unknown, &t->required);
	tgvm_featureset_minus(&unknown, &t->guarded);
	json_object_set_new(root, "unknown", set_json(&unknown));
	tgvm_featureset_union(&all, &t->guarded);
	tgvm_featureset_union(&all, &unknown);
	TGVM_FEATURESET_FOREACH(f, &all)
	{
		const struct tgvm_scan_evidence *e;
		size_t n = tgvm_scan_report_evidence(r, f, &e), kept[TGVM_SCAN_CLASS__MAX] = {0};
		json_t *a = json_array();

		for (size_t k = 0; k < n; k++)
			if (kept[e[k].cls]++ < 8)
				json_array_append_new(a, evidence_json(&e[k]));
		json_object_set_new(ev, tgvm_feature_name(f), a);
	}
	json_object_set_new(root, "evidence", ev);
	json_object_set_new(sk, "non_elf", json_integer((json_int_t)t->non_elf));
	json_object_set_new(sk, "non_x86_64", json_integer((json_int_t)t->non_x86_64));
	json_object_set_new(sk, "errors", json_integer((json_int_t)t->errors));
	json_object_set_new(root, "skipped", sk);
	for (size_t i = 0; i < tgvm_scan_report_n_errors(r); i++) {
		const char *p, *m;
		json_t *o = json_object();

		tgvm_scan_report_error(r, i, &p, &m);
		json_object_set_new(o, "path", json_string(p));
		json_object_set_new(o, "error", json_string(m));
		json_array_append_new(errs, o);
	}
	json_object_set_new(root, "errors", errs);
	{
		json_t *c = json_object();

		json_object_set_new(c, "files", json_integer((json_int_t)t->files));
		json_object_set_new(c, "elf_files", json_integer((json_int_t)t->elf_files));
		json_object_set_new(c, "hard_links", json_integer((json_int_t)t->hardlinks));
		json_object_set_new(c, "read_from_segments", json_integer((json_int_t)t->segments));
		json_object_set_new(c, "programs", json_integer((json_int_t)t->programs));
		json_object_set_new(c, "code_bytes", json_integer((json_int_t)t->code_bytes));
		json_object_set_new(c, "instructions", json_integer((json_int_t)t->insns));
		json_object_set_new(c, "bytes", json_integer((json_int_t)t->bytes));
		json_object_set_new(c, "elapsed_ms",
		                    json_integer((json_int_t)(t->elapsed_ns / 1000000)));
		json_object_set_new(root, "counts", c);
	}
	s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s)
		return tgvm_error_set(reterr, ENOMEM, "out of memory writing the report");
	*ret_json = s;
	return 0;
}

static int load_set(json_t *a, const char *what, const char *path, struct tgvm_featureset *ret,
                    struct tgvm_error *reterr)
{
	size_t i;
	json_t *v;

	tgvm_featureset_clear(ret);
	if (!json_is_array(a))
		return tgvm_error_set(reterr, EINVAL, "'%s': \"%s\" is not a list", path, what);
	json_array_foreach(a, i, v)
	{
		int f;

		if (!json_is_string(v))
			return tgvm_error_set(reterr, EINVAL, "'%s': \"%s\" holds a non-string",
			                      path, what);
		f = tgvm_feature_from_name(json_string_value(v));
		if (f < 0)
			return tgvm_error_set(reterr, EINVAL,
			                      "'%s': unknown feature '%s' in \"%s\"", path,
			                      json_string_value(v), what);
		tgvm_featureset_add(ret, f);
	}
	return 0;
}

int tgvm_scan_report_load(const char *path, struct tgvm_featureset *ret_required,
                          struct tgvm_featureset *ret_guarded, enum tgvm_psabi_level *ret_psabi,
                          struct tgvm_error *reterr)
{
	struct tgvm_featureset req, grd;
	json_error_t je;
	json_t *root;
	json_t *tool, *ver;
	int r;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return tgvm_error_set(reterr, EINVAL, "cannot read scan report '%s': %s (line %d)",
		                      path, je.text, je.line);
	tool = json_object_get(root, "tool");
	ver = json_object_get(root, "version");
	if (!json_is_string(tool) || strcmp(json_string_value(tool), "tgvm-scan")) {
		r = tgvm_error_set(reterr, EINVAL, "'%s' is not a tgvm scan report", path);
		goto out;
	}
	if (!json_is_integer(ver) || json_integer_value(ver) < 1 ||
	    json_integer_value(ver) > TGVM_SCAN_JSON_VERSION) {
		r = tgvm_error_set(reterr, EINVAL, "'%s': unsupported report version", path);
		goto out;
	}
	if ((r = load_set(json_object_get(root, "required"), "required", path, &req, reterr)) < 0 ||
	    (r = load_set(json_object_get(root, "guarded"), "guarded", path, &grd, reterr)) < 0)
		goto out;
	if (ret_required)
		*ret_required = req;
	if (ret_guarded)
		*ret_guarded = grd;
	if (ret_psabi)
		*ret_psabi = tgvm_psabi_required(&req);
	r = 0;
out:
	json_decref(root);
	return r;
}
