// SPDX-License-Identifier: MIT
/*
 * Unit tests of the scan analysis: every Zydis ISA set is mapped, single
 * instructions map to the right features, the labelled corpus comes out as
 * tests/data/scan/expect.txt says (a false negative fails), hostile ELF
 * images get errors and no crash, and a JSON report reads back.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <elf.h>

#include "scan/scan-int.h"
#include "tgvm/scan.h"

static void test_isa_sets_all_mapped(void **state)
{
	int missing = 0;

	(void)state;
	for (int s = 1; s <= ZYDIS_ISA_SET_MAX_VALUE; s++)
		if (!scan_isa_set_mapped(s)) {
			fprintf(stderr, "unmapped Zydis ISA set %s\n", ZydisISASetGetString(s));
			missing++;
		}
	assert_int_equal(missing, 0);
}

static bool insn_has(const uint8_t *bytes, size_t len, enum tgvm_feature f)
{
	ZydisDecoder dec;
	ZydisDecodedInstruction in;
	enum tgvm_feature fs[SCAN_INSN_FEATURES_MAX];
	int n;

	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	assert_true(ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, NULL, bytes, len, &in)));
	n = scan_isa_features(&in, fs);
	for (int i = 0; i < n; i++)
		if (fs[i] == f)
			return true;
	return false;
}

static void test_insn_rules(void **state)
{
	static const uint8_t evex128[] = {0x62, 0xf1, 0x75, 0x08, 0xfe, 0xc2}; /* vpaddd xmm */
	static const uint8_t evex512[] = {0x62, 0xf1, 0x75, 0x48, 0xfe, 0xc2}; /* vpaddd zmm */
	static const uint8_t vex256[] = {0xc5, 0xfd, 0xfe, 0xc1};              /* vpaddd ymm */
	static const uint8_t popcnt[] = {0xf3, 0x48, 0x0f, 0xb8, 0xc0};
	static const uint8_t lzcnt[] = {0xf3, 0x0f, 0xbd, 0xc0};
	static const uint8_t tzcnt[] = {0xf3, 0x0f, 0xbc, 0xc0};
	static const uint8_t endbr[] = {0xf3, 0x0f, 0x1e, 0xfa};
	static const uint8_t movdir64b[] = {0x66, 0x0f, 0x38, 0xf8, 0x07};
	static const uint8_t cmpxchg16b[] = {0x48, 0x0f, 0xc7, 0x0f};

	(void)state;
	assert_true(insn_has(evex128, sizeof(evex128), TGVM_F_AVX512VL));
	assert_true(insn_has(evex128, sizeof(evex128), TGVM_F_AVX512F));
	assert_true(insn_has(evex512, sizeof(evex512), TGVM_F_AVX512F));
	assert_false(insn_has(evex512, sizeof(evex512), TGVM_F_AVX512VL));
	assert_true(insn_has(vex256, sizeof(vex256), TGVM_F_AVX2));
	assert_true(insn_has(popcnt, sizeof(popcnt), TGVM_F_POPCNT));
	assert_true(insn_has(lzcnt, sizeof(lzcnt), TGVM_F_ABM));
	assert_false(insn_has(tzcnt, sizeof(tzcnt), TGVM_F_BMI1)); /* runs as bsf */
	assert_false(insn_has(endbr, sizeof(endbr), TGVM_F_CET_IBT));
	assert_true(insn_has(movdir64b, sizeof(movdir64b), TGVM_F_MOVDIR64B));
	assert_false(insn_has(movdir64b, sizeof(movdir64b), TGVM_F_MOVDIRI));
	assert_true(insn_has(cmpxchg16b, sizeof(cmpxchg16b), TGVM_F_CX16));
}

/* ---- the labelled corpus ---- */

static const char *corpus_dir(void)
{
	const char *d = getenv("TGVM_SCAN_CORPUS");

	if (!d || access(d, R_OK)) {
		fprintf(stderr, "TGVM_SCAN_CORPUS not set or not built\n");
		fail();
	}
	return d;
}

static void check_list(const char *entry, const char *what, const char *list,
                       const struct tgvm_featureset *set, bool want, int *failures)
{
	struct tgvm_featureset want_set;
	struct tgvm_error err = {0};

	if (!*list)
		return;
	assert_int_equal(tgvm_featureset_parse(list, &want_set, &err), 0);
	TGVM_FEATURESET_FOREACH(f, &want_set)
	{
		if (tgvm_featureset_has(set, f) != want) {
			fprintf(stderr, "%s: %s %s %s\n", entry, tgvm_feature_name(f),
			        want ? "missing from" : "wrongly in", what);
			(*failures)++;
		}
	}
}

static void test_corpus(void **state)
{
	const char *dir = corpus_dir(), *expect = getenv("TGVM_SCAN_EXPECT");
	struct tgvm_strv lines;
	char *text = NULL;
	int failures = 0, entries = 0;

	(void)state;
	assert_non_null(expect);
	assert_int_equal(tgvm_file_read(expect, 1 << 20, &text, NULL, NULL), 0);
	tgvm_strv_init(&lines);
	assert_int_equal(tgvm_strv_split(&lines, text, "\n"), 0);
	for (size_t l = 0; l < lines.n; l++) {
		struct tgvm_strv tok;
		char path[4096];
		const char *rel, *scope;
		struct tgvm_scan_report *rep = NULL;
		struct tgvm_error err = {0};
		struct tgvm_featureset req, grd, unk;
		const char *paths[1];

		if (lines.v[l][0] == '#')
			continue;
		tgvm_strv_init(&tok);
		assert_int_equal(tgvm_strv_split(&tok, lines.v[l], " \t"), 0);
		assert_true(tok.n >= 2);
		rel = tok.v[0];
		scope = tok.v[1];
		snprintf(path, sizeof(path), "%s/%s", dir, rel);
		paths[0] = path;
		if (tgvm_scan_run(paths, 1, NULL, &rep, &err) < 0) {
			fprintf(stderr, "%s: %s\n", rel, err.msg);
			fail();
		}
		if (!strcmp(scope, "file")) {
			const struct tgvm_scan_file *f = NULL;

			for (size_t i = 0; i < tgvm_scan_report_n_files(rep); i++)
				if (strstr(tgvm_scan_report_file(rep, i)->path, rel))
					f = tgvm_scan_report_file(rep, i);
			assert_non_null(f);
			req = f->required;
			grd = f->guarded;
			unk = f->unknown;
		} else {
			tgvm_featureset_clear(&unk);
			req = tgvm_scan_report_totals(rep)->required;
			grd = tgvm_scan_report_totals(rep)->guarded;
		}
		for (size_t k = 2; k < tok.n; k++) {
			char *eq = strchr(tok.v[k], '=');

			assert_non_null(eq);
			*eq = 0;
			if (!strcmp(tok.v[k], "required"))
				check_list(rel, "required", eq + 1, &req, true, &failures);
			else if (!strcmp(tok.v[k], "not-required"))
				check_list(rel, "required", eq + 1, &req, false, &failures);
			else if (!strcmp(tok.v[k], "guarded"))
				check_list(rel, "guarded", eq + 1, &grd, true, &failures);
			else if (!strcmp(tok.v[k], "unknown"))
				check_list(rel, "unknown", eq + 1, &unk, true, &failures);
			else if (!strcmp(tok.v[k], "psabi") &&
			         strcmp(eq + 1, tgvm_psabi_to_string(tgvm_psabi_required(&req)))) {
				fprintf(stderr, "%s: psABI %s, expected %s\n", rel,
				        tgvm_psabi_to_string(tgvm_psabi_required(&req)), eq + 1);
				failures++;
			}
		}
		entries++;
		tgvm_strv_release(&tok);
		tgvm_scan_report_free(rep);
	}
	tgvm_strv_release(&lines);
	free(text);
	assert_true(entries >= 15);
	assert_int_equal(failures, 0);
}

/* A naive linear sweep of the data-in-text library sees AVX-512; we must not. */
static void test_text_table_not_decoded(void **state)
{
	char path[4096];
	const char *paths[] = {path};
	struct tgvm_scan_report *rep = NULL;
	const struct tgvm_scan_totals *t;

	(void)state;
	snprintf(path, sizeof(path), "%s/lib/libtexttable.so", corpus_dir());
	assert_int_equal(tgvm_scan_run(paths, 1, NULL, &rep, NULL), 0);
	t = tgvm_scan_report_totals(rep);
	assert_false(tgvm_featureset_has(&t->required, TGVM_F_AVX512F));
	assert_false(tgvm_featureset_has(&t->guarded, TGVM_F_AVX512F));
	assert_int_equal(t->elf_files, 1);
	tgvm_scan_report_free(rep);
}

/* ---- hard links ---- */

static const struct tgvm_scan_file *file_named(const struct tgvm_scan_report *rep, const char *path)
{
	for (size_t i = 0; i < tgvm_scan_report_n_files(rep); i++)
		if (!strcmp(tgvm_scan_report_file(rep, i)->path, path))
			return tgvm_scan_report_file(rep, i);
	fail_msg("'%s' missing from the report", path);
	return NULL;
}

/*
 * A program with three names, a copy of it, and a fourth name inside
 * glibc-hwcaps/x86-64-v3: the three names are analysed once (code counted
 * once, every name reported with the same sets), the copy and the hwcaps
 * name on their own (the level comes from the name).
 */
static void test_hardlinks_once(void **state)
{
	char dir[] = "/tmp/tgvm-scan-links-XXXXXX", cmd[8192], one[4096];
	const char *paths[] = {dir}, *names[] = {"/a", "/b", "/sub/c"};
	const char *one_path[] = {one};
	struct tgvm_scan_report *rep = NULL, *single = NULL;
	const struct tgvm_scan_totals *t;
	const struct tgvm_scan_file *fa, *f;
	uint64_t code;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
	         "set -e; cd %s; cp %s/bin/cpu-supports a; ln a b; mkdir -p sub "
	         "glibc-hwcaps/x86-64-v3; ln a sub/c; ln a glibc-hwcaps/x86-64-v3/h; cp a copy",
	         dir, corpus_dir());
	assert_int_equal(system(cmd), 0);
	snprintf(one, sizeof(one), "%s/bin/cpu-supports", corpus_dir());
	assert_int_equal(tgvm_scan_run(one_path, 1, NULL, &single, NULL), 0);
	code = file_named(single, one)->code_bytes; /* not its libraries' */
	assert_true(code > 0);

	assert_int_equal(tgvm_scan_run(paths, 1, NULL, &rep, NULL), 0);
	t = tgvm_scan_report_totals(rep);
	assert_int_equal(t->files, 5);
	assert_int_equal(t->elf_files, 5);
	assert_int_equal(t->programs, 5);
	assert_int_equal(t->hardlinks, 2);         /* b and sub/c; h stands apart */
	assert_int_equal(t->code_bytes, 3 * code); /* a (with b, c), copy, h */
	assert_int_equal(tgvm_scan_report_n_programs(rep), 5);
	fa = file_named(rep, "/a");
	assert_true(tgvm_featureset_has(&fa->guarded, TGVM_F_AVX2));
	for (size_t i = 0; i < 3; i++) {
		f = file_named(rep, names[i]);
		assert_int_equal(f->code_bytes, code);
		assert_int_equal(f->hwcaps_level, 0);
		assert_true(tgvm_featureset_equal(&f->required, &fa->required));
		assert_true(tgvm_featureset_equal(&f->guarded, &fa->guarded));
	}
	assert_int_equal(file_named(rep, "/glibc-hwcaps/x86-64-v3/h")->hwcaps_level, 3);
	f = file_named(rep, "/copy");
	assert_true(tgvm_featureset_equal(&f->guarded, &fa->guarded));
	/* the evidence names every name of the file */
	{
		const struct tgvm_scan_evidence *ev;
		size_t n = tgvm_scan_report_evidence(rep, TGVM_F_AVX2, &ev);
		bool seen[3] = {false, false, false};

		for (size_t k = 0; k < n; k++)
			for (size_t i = 0; i < 3; i++)
				seen[i] |= !strcmp(ev[k].file, names[i]);
		for (size_t i = 0; i < 3; i++)
			assert_true(seen[i]);
	}
	tgvm_scan_report_free(rep);
	tgvm_scan_report_free(single);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- hostile input ---- */

/* End of the last PT_LOAD's bytes in the file of ELF image @img. */
static uint64_t loads_end(const uint8_t *img)
{
	Elf64_Ehdr eh;
	uint64_t end = 0;

	memcpy(&eh, img, sizeof(eh));
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD)
			end = TGVM_MAX(end, ph.p_offset + ph.p_filesz);
	}
	return end;
}

enum damage { D_SHNUM0, D_GARBAGE, D_SSTRIP, D_CUTOFF, D__MAX };
static const char *const damage_names[D__MAX] = {"e_shnum = 0", "garbage section table", "sstrip",
                                                 "section table cut off"};

/* Write @img (@len bytes) damaged as @d to @path. */
static void write_damaged(const uint8_t *img, size_t len, enum damage d, const char *path)
{
	uint8_t *m = malloc(len);
	Elf64_Ehdr eh;
	size_t n = len;
	uint64_t seed = 0x2545F4914F6CDD1DULL;
	FILE *f;

	assert_non_null(m);
	memcpy(m, img, len);
	memcpy(&eh, m, sizeof(eh));
	switch (d) {
	case D_SHNUM0:
		eh.e_shnum = 0;
		break;
	case D_GARBAGE:
		for (uint64_t i = eh.e_shoff; i < eh.e_shoff + (uint64_t)eh.e_shnum * 64 && i < len;
		     i++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			m[i] = (uint8_t)(seed >> 24);
		}
		break;
	case D_SSTRIP:
		eh.e_shoff = 0;
		eh.e_shnum = 0;
		eh.e_shstrndx = 0;
		n = loads_end(img);
		break;
	case D_CUTOFF:
		n = loads_end(img);
		break;
	default:
		break;
	}
	memcpy(m, &eh, sizeof(eh));
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(m, 1, n, f), n);
	fclose(f);
	free(m);
}

/*
 * A file whose section headers are missing, garbage, stripped by sstrip or
 * cut off runs as well as the untouched one: its scan, read from the
 * program headers, says so and loses no feature (required stays required,
 * nothing found before is missing), libraries included. Every program and
 * library of the corpus, and a real program of this machine.
 */
static void test_damaged_sections(void **state)
{
	char dir[] = "/tmp/tgvm-scan-dmg-XXXXXX", list[8192], cmd[8192 + 64];
	struct tgvm_strv files;
	char *text = NULL;
	size_t tested = 0;
	bool rel;
	FILE *p;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "ls -d %s/bin/* %s/lib/*.so /usr/bin/pzstd 2>/dev/null",
	         corpus_dir(), corpus_dir());
	p = popen(cmd, "r");
	assert_non_null(p);
	list[fread(list, 1, sizeof(list) - 1, p)] = 0;
	pclose(p);
	tgvm_strv_init(&files);
	assert_int_equal(tgvm_strv_split(&files, list, "\n"), 0);

	for (size_t i = 0; i < files.n; i++) {
		char orig[4200];
		const char *op[] = {orig};
		struct tgvm_scan_report *base = NULL;
		const struct tgvm_scan_totals *bt;
		uint8_t *img = NULL;
		size_t len = 0;

		if (!*files.v[i] ||
		    tgvm_file_read(files.v[i], 64 << 20, (char **)&img, &len, NULL) < 0)
			continue;
		if (len < 64 || memcmp(img, "\177ELF", 4) || !loads_end(img)) {
			free(img);
			continue;
		}
		/* Corpus files alone, by a relative name; a program of this
		 * machine under an absolute path with e_shnum = 0 as well: its
		 * libraries come from the machine's root and are scanned with it
		 * (none may be dropped). Under ASan each such scan takes long. */
		rel = true;
	again:
		/* alone: a tree of one file, whose libraries are not in it */
		snprintf(orig, sizeof(orig), "%s/%sorig", dir, rel ? "" : "abs-");
		if (rel) {
			assert_int_equal(mkdir(orig, 0755) == 0 || errno == EEXIST, 1);
			snprintf(orig, sizeof(orig), "%s/orig/f", dir);
		}
		write_damaged(img, len, D__MAX, orig);
		if (rel)
			snprintf(orig, sizeof(orig), "%s/orig", dir);
		assert_int_equal(tgvm_scan_run(op, 1, NULL, &base, NULL), 0);
		bt = tgvm_scan_report_totals(base);
		assert_int_equal(bt->segments, 0);
		for (int d = 0; d < (rel ? D__MAX : 1); d++) {
			char path[4200];
			const char *dp[] = {path};
			struct tgvm_scan_report *rep = NULL;
			const struct tgvm_scan_totals *t;
			struct tgvm_featureset lost_req = bt->required, lost_any = bt->required,
			                       have = {0};

			snprintf(path, sizeof(path), "%s/%sd%d", dir, rel ? "" : "abs-", d);
			if (rel) {
				assert_int_equal(mkdir(path, 0755) == 0 || errno == EEXIST, 1);
				snprintf(path, sizeof(path), "%s/d%d/f", dir, d);
			}
			write_damaged(img, len, (enum damage)d, path);
			if (rel)
				snprintf(path, sizeof(path), "%s/d%d", dir, d);
			assert_int_equal(tgvm_scan_run(dp, 1, NULL, &rep, NULL), 0);
			t = tgvm_scan_report_totals(rep);
			tgvm_featureset_minus(&lost_req, &t->required);
			tgvm_featureset_union(&lost_any, &bt->guarded);
			have = t->required;
			tgvm_featureset_union(&have, &t->guarded);
			tgvm_featureset_minus(&lost_any, &have);
			if (!tgvm_featureset_empty(&lost_req) ||
			    !tgvm_featureset_empty(&lost_any) || t->errors || t->segments != 1 ||
			    t->elf_files != bt->elf_files) {
				char *a = tgvm_featureset_to_string(&lost_req, ","),
				     *b = tgvm_featureset_to_string(&lost_any, ",");

				fail_msg(
				    "%s, %s: lost required {%s}, lost {%s}; %llu errors, %llu read "
				    "from segments, %llu of %llu ELF files",
				    files.v[i], damage_names[d], a, b,
				    (unsigned long long)t->errors, (unsigned long long)t->segments,
				    (unsigned long long)t->elf_files,
				    (unsigned long long)bt->elf_files);
			}
			tgvm_scan_report_free(rep);
		}
		tgvm_scan_report_free(base);
		base = NULL;
		if (rel && !strncmp(files.v[i], "/usr/bin/", 9)) {
			rel = false;
			goto again;
		}
		free(img);
		tested++;
	}
	assert_true(tested >= 10);
	tgvm_strv_release(&files);
	free(text);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A program header table the loader cannot read is an error, not "not a program". */
static void test_bad_phoff(void **state)
{
	char path[4096];
	uint8_t *img = NULL;
	size_t len = 0;
	struct scan_result res = {0};
	uint64_t bad = 0xffffffff00ULL;

	(void)state;
	snprintf(path, sizeof(path), "%s/bin/avx2-plain", corpus_dir());
	assert_int_equal(tgvm_file_read(path, 64 << 20, (char **)&img, &len, NULL), 0);
	memcpy(img + 0x20, &bad, 8);
	res.path = strdup("phoff");
	assert_int_equal(scan_analyse("phoff", img, len, &res), -EINVAL);
	assert_non_null(res.error);
	assert_non_null(strstr(res.error, "program header table"));
	scan_result_free(&res);
	free(img);
}

static void test_hostile_elf(void **state)
{
	char path[4096];
	uint8_t *img = NULL, *mut;
	size_t len = 0;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	(void)state;
	snprintf(path, sizeof(path), "%s/bin/cpuid-var-stripped", corpus_dir());
	assert_int_equal(tgvm_file_read(path, 64 << 20, (char **)&img, &len, NULL), 0);
	mut = malloc(len);
	assert_non_null(mut);
	/* truncations at every interesting length: each one is an error, never
	 * a file with less code (cut after the last loaded byte, only the
	 * section headers are gone: read from the segments); then random
	 * corruption */
	for (size_t cut = 0; cut < len; cut += cut < 4096 ? 61 : 4093) {
		struct scan_result res = {0};
		int r;

		res.path = strdup("cut");
		r = scan_analyse("cut", img, cut, &res);
		if (cut < 64) {
			assert_int_equal(r, -ENOEXEC);
		} else if (cut >= loads_end(img)) {
			assert_int_equal(r, 0);
			assert_non_null(strstr(res.segments, "past the end"));
		} else {
			assert_int_equal(r, -EINVAL);
			assert_non_null(res.error);
			assert_true(strstr(res.error, "truncated ELF file") ||
			            strstr(res.error, "program header table"));
		}
		scan_result_free(&res);
	}
	for (int round = 0; round < 200; round++) {
		struct scan_result res = {0};

		memcpy(mut, img, len);
		for (int k = 0; k < 16; k++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			/* aim at the headers most of the time */
			mut[(seed >> 8) % (round % 2 ? len : TGVM_MIN(len, (size_t)4096))] =
			    (uint8_t)seed;
		}
		res.path = strdup("mut");
		scan_analyse("mut", mut, len, &res);
		scan_result_free(&res);
	}
	/* not ELF, other machine */
	{
		struct scan_result res = {0};
		static const uint8_t junk[128] = "not an elf file at all";

		assert_int_equal(scan_analyse("junk", junk, sizeof(junk), &res), -ENOEXEC);
		scan_result_free(&res);
		memcpy(mut, img, len);
		mut[18] = 0x28; /* e_machine = EM_ARM */
		mut[19] = 0;
		assert_int_equal(scan_analyse("arm", mut, len, &res), -EXDEV);
		scan_result_free(&res);
	}
	free(mut);
	free(img);
}

/* ---- JSON ---- */

static void test_json_roundtrip(void **state)
{
	char path[4096], tmp[] = "/tmp/tgvm-scan-XXXXXX";
	const char *paths[] = {path};
	struct tgvm_scan_report *rep = NULL;
	struct tgvm_featureset req, grd;
	enum tgvm_psabi_level lv;
	struct tgvm_error err = {0};
	char *json = NULL;
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/bin/cpu-supports", corpus_dir());
	assert_int_equal(tgvm_scan_run(paths, 1, NULL, &rep, NULL), 0);
	assert_int_equal(tgvm_scan_report_json(rep, &json, NULL), 0);
	assert_non_null(strstr(json, "\"tool\": \"tgvm-scan\""));
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	assert_int_equal(tgvm_scan_report_load(tmp, &req, &grd, &lv, &err), 0);
	assert_true(tgvm_featureset_equal(&req, &tgvm_scan_report_totals(rep)->required));
	assert_true(tgvm_featureset_has(&req, TGVM_F_POPCNT));
	assert_true(tgvm_featureset_has(&grd, TGVM_F_AVX2));
	assert_int_equal(lv, tgvm_scan_report_totals(rep)->psabi);
	/* a report from another tool is refused with a reason */
	{
		static const char other[] = "{\"tool\":\"other\",\"version\":1}";

		assert_int_equal(tgvm_file_write(tmp, other, strlen(other), NULL), 0);
	}
	assert_int_equal(tgvm_scan_report_load(tmp, &req, &grd, &lv, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a tgvm scan report"));
	unlink(tmp);
	free(json);
	tgvm_scan_report_free(rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_isa_sets_all_mapped),
	    cmocka_unit_test(test_insn_rules),
	    cmocka_unit_test(test_corpus),
	    cmocka_unit_test(test_text_table_not_decoded),
	    cmocka_unit_test(test_hardlinks_once),
	    cmocka_unit_test(test_hostile_elf),
	    cmocka_unit_test(test_damaged_sections),
	    cmocka_unit_test(test_bad_phoff),
	    cmocka_unit_test(test_json_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
