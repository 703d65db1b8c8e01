// SPDX-License-Identifier: MIT
/* Unit tests of model choice, inventories, placement policies and the heat map,
 * on a small synthetic model database (no QEMU needed). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "tgvm/fleet.h"
#include "util/util.h"

static struct tgvm_featureset fs(const char *list)
{
	struct tgvm_featureset s;

	assert_int_equal(tgvm_featureset_parse(list, &s, NULL), 0);
	tgvm_featureset_close(&s);
	return s;
}

static void add_model(struct tgvm_modeldb *db, const char *name, enum tgvm_vendor v,
                      const char *extra)
{
	struct tgvm_cpu_model m;

	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "%s", name);
	m.vendor = v;
	tgvm_linux_baseline(&m.features);
	struct tgvm_featureset e = fs(extra);
	tgvm_featureset_union(&m.features, &e);
	tgvm_featureset_add(&m.features, TGVM_F_X2APIC); /* hypervisor-provided */
	assert_int_equal(tgvm_modeldb_add(db, &m), 0);
}

static struct tgvm_modeldb *test_db(void)
{
	struct tgvm_modeldb *db = tgvm_modeldb_new();

	snprintf(db->qemu_version, sizeof(db->qemu_version), "7.2.0");
	add_model(db, "Old-v1", TGVM_VENDOR_INTEL, "pni,ssse3,sse4.1,sse4.2,popcnt,cx16");
	add_model(db, "Mid-v1", TGVM_VENDOR_INTEL, "pni,ssse3,sse4.2,popcnt,cx16,avx2,bmi2,aes");
	add_model(db, "New-v1", TGVM_VENDOR_INTEL,
	          "pni,ssse3,sse4.2,popcnt,cx16,avx2,bmi2,aes,avx512f,avx512bw,avx512vl");
	add_model(db, "Zen-v1", TGVM_VENDOR_AMD, "pni,ssse3,sse4.2,popcnt,cx16,avx2,bmi2,sse4a");
	for (int f = 0; f < TGVM_F__MAX; f++)
		if (!(tgvm_feature_info(f)->flags & TGVM_FF_NOQEMU))
			tgvm_featureset_add(&db->settable, f);
	db->tcg_max = fs("pni,ssse3,sse4.2,popcnt,cx16,avx2,bmi2,aes,x2apic");
	struct tgvm_featureset b;
	tgvm_linux_baseline(&b);
	tgvm_featureset_union(&db->tcg_max, &b);
	return db;
}

static void test_model_choice(void **state)
{
	struct tgvm_modeldb *db = test_db();
	struct tgvm_model_request req = {0};
	struct tgvm_model_choice c;
	struct tgvm_error err = {0};
	char *q;

	(void)state;
	req.need = fs("avx2,bmi2");
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), 0);
	/* Mid has avx2+bmi2 and only aes/popcnt/... extra; nothing is closer. */
	assert_string_equal(c.base, "Mid-v1");
	assert_true(tgvm_featureset_has(&c.presented, TGVM_F_AVX2));
	assert_true(tgvm_featureset_has(&c.presented, TGVM_F_AVX));   /* closure */
	assert_true(tgvm_featureset_has(&c.presented, TGVM_F_XSAVE)); /* closure */
	assert_false(tgvm_featureset_has(&c.presented, TGVM_F_AES));  /* nothing else */
	assert_true(tgvm_featureset_has(&c.minus, TGVM_F_AES));
	assert_false(tgvm_featureset_has(&c.minus, TGVM_F_X2APIC)); /* hv bits are free */
	q = tgvm_model_qemu_string(&c);
	assert_non_null(strstr(q, "Mid-v1,"));
	assert_non_null(strstr(q, "-aes"));
	assert_non_null(strstr(q, ",enforce"));
	free(q);
	q = tgvm_model_libvirt_xml(&c);
	assert_non_null(strstr(q, "<model fallback='forbid'>Mid-v1</model>"));
	assert_non_null(strstr(q, "<feature policy='disable' name='aes'/>"));
	assert_non_null(strstr(q, "<vendor>Intel</vendor>"));
	free(q);

	/* The vendor is part of the model. */
	req.vendor = TGVM_VENDOR_AMD;
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), 0);
	assert_string_equal(c.base, "Zen-v1");
	assert_int_equal(c.vendor, TGVM_VENDOR_AMD);

	/* What TCG cannot give is reported. */
	req.vendor = TGVM_VENDOR_INTEL;
	req.need = fs("avx512f");
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), 0);
	assert_true(tgvm_featureset_has(&c.tcg_missing, TGVM_F_AVX512F));

	/* A feature this QEMU cannot set is refused, naming it. */
	tgvm_featureset_del(&db->settable, TGVM_F_SHA_NI);
	req.need = fs("sha-ni");
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "sha-ni"));
	tgvm_modeldb_free(db);
}

static void test_host_accepts(void **state)
{
	struct tgvm_modeldb *db = test_db();
	const struct tgvm_cpu_model *old = tgvm_modeldb_find(db, "Old-v1", false);
	const struct tgvm_cpu_model *zen = tgvm_modeldb_find(db, "Zen-v1", false);
	struct tgvm_featureset need = fs("avx2"), missing;

	(void)state;
	assert_false(tgvm_host_accepts(old, &need, TGVM_VENDOR_INTEL, false, &missing));
	assert_true(tgvm_featureset_has(&missing, TGVM_F_AVX2));
	assert_true(tgvm_featureset_has(&missing, TGVM_F_AVX));
	assert_false(tgvm_host_accepts(zen, &need, TGVM_VENDOR_INTEL, false, NULL));
	assert_true(tgvm_host_accepts(zen, &need, TGVM_VENDOR_INTEL, true, NULL));
	need = fs("popcnt,tsc-deadline"); /* the hypervisor gives tsc-deadline anywhere */
	assert_true(tgvm_host_accepts(old, &need, TGVM_VENDOR_INTEL, false, NULL));
	tgvm_modeldb_free(db);
}

static const char *inv_json =
    "{\"hosts\": [{\"name\": \"old\", \"profile\": \"Old-v1\", \"count\": 10},"
    "{\"name\": \"new\", \"profile\": \"New-v1\", \"count\": 5},"
    "{\"name\": \"mid-plus\", \"profile\": {\"base\": \"Mid-v1\", \"add\": [\"sha-ni\"], "
    "\"remove\": [\"avx\"]}},"
    "{\"name\": \"zen\", \"profile\": \"Zen-v1\", \"count\": 4}]}";

static struct tgvm_inventory *load_inv(struct tgvm_modeldb *db, const char *text,
                                       struct tgvm_error *err, int *r)
{
	struct tgvm_inventory *inv = NULL;
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	assert_non_null(j);
	*r = tgvm_inventory_from_json(j, "test.json", db, &inv, err);
	json_decref(j);
	return inv;
}

static void test_inventory(void **state)
{
	struct tgvm_modeldb *db = test_db();
	struct tgvm_error err = {0};
	struct tgvm_inventory *inv;
	const struct tgvm_host *h;
	int r;

	(void)state;
	inv = load_inv(db, inv_json, &err, &r);
	assert_int_equal(r, 0);
	assert_int_equal(inv->n, 4);
	assert_int_equal(tgvm_inventory_total(inv), 20);
	assert_int_equal(tgvm_inventory_find(inv, "mid-plus", &h, &err), 0);
	assert_true(tgvm_featureset_has(&h->profile.features, TGVM_F_SHA_NI));
	/* Removing avx removes what needs it. */
	assert_false(tgvm_featureset_has(&h->profile.features, TGVM_F_AVX2));
	assert_int_equal(tgvm_inventory_find(inv, "nwe", &h, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "did you mean 'new'"));
	tgvm_inventory_free(inv);

	inv = load_inv(db, "{\"hosts\": [{\"name\": \"a\", \"profile\": \"Skylake\"}]}", &err, &r);
	assert_int_equal(r, -ENOENT);
	assert_null(inv);
	assert_non_null(strstr(err.msg, "'Skylake'"));
	assert_non_null(strstr(err.msg, "host 'a'"));

	inv = load_inv(db,
	               "{\"hosts\": [{\"name\": \"a\", \"profile\": \"Old-v1\"},"
	               "{\"name\": \"a\", \"profile\": \"Old-v1\"}]}",
	               &err, &r);
	assert_int_equal(r, -EEXIST);
	assert_non_null(strstr(err.msg, "listed twice"));

	inv = load_inv(db,
	               "{\"hosts\": [{\"name\": \"a\", \"profile\": {\"base\": \"Old-v1\", "
	               "\"add\": [\"avx9\"]}}]}",
	               &err, &r);
	assert_int_equal(r, -ENOENT);
	assert_non_null(strstr(err.msg, "'avx9'"));

	inv =
	    load_inv(db, "{\"hosts\": [{\"name\": \"a\", \"profile\": \"Old-v1\", \"count\": -3}]}",
	             &err, &r);
	assert_int_equal(r, -EINVAL);
	/* "machine": the kind of the host's VMs; only q35, pc, microvm */
	inv = load_inv(db,
	               "{\"hosts\": [{\"name\": \"a\", \"profile\": \"Old-v1\", \"machine\": "
	               "\"microvm\"}, {\"name\": \"b\", \"profile\": \"Old-v1\"}]}",
	               &err, &r);
	assert_int_equal(r, 0);
	assert_string_equal(inv->hosts[0].machine, "microvm");
	assert_string_equal(inv->hosts[1].machine, "");
	tgvm_inventory_free(inv);
	inv = load_inv(
	    db, "{\"hosts\": [{\"name\": \"a\", \"profile\": \"Old-v1\", \"machine\": \"isapc\"}]}",
	    &err, &r);
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err.msg, "\"machine\" must be"));
	inv = load_inv(db, "{\"hosts\": []}", &err, &r);
	assert_int_equal(r, -EINVAL);
	inv = load_inv(db, "[1,2]", &err, &r);
	assert_int_equal(r, -EINVAL);
	tgvm_modeldb_free(db);
}

static void test_inventory_file_errors(void **state)
{
	struct tgvm_modeldb *db = test_db();
	struct tgvm_inventory *inv = NULL;
	struct tgvm_error err = {0};
	char path[] = "/tmp/tgvm-test-inv-XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\n  \"hosts\": [\n    {\"name\": \"a\",, }\n", 37), 37);
	close(fd);
	assert_int_equal(tgvm_inventory_load(path, db, &inv, &err), -EINVAL);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "line 3"));
	assert_non_null(strstr(err.msg, "column"));
	unlink(path);
	assert_int_equal(tgvm_inventory_load("/nonexistent/inv.json", db, &inv, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/inv.json"));
	tgvm_modeldb_free(db);
}

static void test_placement(void **state)
{
	struct tgvm_modeldb *db = test_db();
	struct tgvm_error err = {0};
	struct tgvm_inventory *inv;
	struct tgvm_vm_needs vms[3];
	struct tgvm_placement pl[3 * TGVM_POLICY__MAX];
	uint8_t matrix[3 * 4];
	struct tgvm_fleet_opts fo = {.matrix = matrix};
	int r;

	(void)state;
	inv = load_inv(db, inv_json, &err, &r);
	assert_int_equal(r, 0);
	memset(vms, 0, sizeof(vms));
	snprintf(vms[0].name, sizeof(vms[0].name), "plain");
	vms[0].guarded = fs("avx2");
	snprintf(vms[1].name, sizeof(vms[1].name), "avx2");
	vms[1].required = fs("avx2");
	snprintf(vms[2].name, sizeof(vms[2].name), "avx512");
	vms[2].required = fs("avx512f");
	assert_int_equal(tgvm_fleet_evaluate(inv, vms, 3, &fo, pl, &err), 0);

	const struct tgvm_placement *p = &pl[0];
	/* plain has no vendor: placed per vendor, intel (primary, most machines)
	 * and amd. Passthrough from each vendor's newest host: new (5) + zen (4). */
	assert_true(p[TGVM_POLICY_PASSTHROUGH].runs);
	assert_string_equal(p[TGVM_POLICY_PASSTHROUGH].first_host, "new");
	assert_int_equal(p[TGVM_POLICY_PASSTHROUGH].vendor, TGVM_VENDOR_INTEL);
	assert_int_equal(p[TGVM_POLICY_PASSTHROUGH].hosts, 9);
	/* baseline per vendor: intel old + new + mid-plus = 16, amd zen 4; loses avx2. */
	assert_int_equal(p[TGVM_POLICY_BASELINE].hosts, 20);
	assert_int_equal(p[TGVM_POLICY_BASELINE].hosts_by_vendor[TGVM_VENDOR_INTEL], 16);
	assert_int_equal(p[TGVM_POLICY_BASELINE].hosts_by_vendor[TGVM_VENDOR_AMD], 4);
	assert_true(tgvm_featureset_has(&p[TGVM_POLICY_BASELINE].lost, TGVM_F_AVX2));
	/* minimal: every host; on intel avx2 is not free (old lacks it). */
	assert_int_equal(p[TGVM_POLICY_MINIMAL].hosts, 20);
	assert_true(tgvm_featureset_has(&p[TGVM_POLICY_MINIMAL].lost, TGVM_F_AVX2));

	p = &pl[TGVM_POLICY__MAX];
	/* avx2 required: the intel baseline (old lacks avx2) cannot run it, amd's can;
	 * minimal runs on new (mid-plus lost avx) and zen. */
	assert_true(p[TGVM_POLICY_BASELINE].runs);
	assert_int_equal(p[TGVM_POLICY_BASELINE].hosts, 4);
	assert_int_equal(p[TGVM_POLICY_BASELINE].hosts_by_vendor[TGVM_VENDOR_INTEL], 0);
	assert_true(p[TGVM_POLICY_MINIMAL].runs);
	assert_int_equal(p[TGVM_POLICY_MINIMAL].hosts, 9);

	p = &pl[2 * TGVM_POLICY__MAX];
	assert_int_equal(p[TGVM_POLICY_MINIMAL].hosts, 5);
	assert_false(p[TGVM_POLICY_BASELINE].runs);
	assert_true(tgvm_featureset_has(&p[TGVM_POLICY_BASELINE].blocking, TGVM_F_AVX512F));

	/* Heat map bits: 'plain' may use 'old' under baseline and minimal, not passthrough;
	 * 'zen' under all three (the amd placement starts there). */
	assert_int_equal(matrix[0 * 4 + 0],
	                 (1u << TGVM_POLICY_BASELINE) | (1u << TGVM_POLICY_MINIMAL));
	assert_int_equal(matrix[0 * 4 + 3], 7);
	assert_int_equal(matrix[2 * 4 + 3], 0); /* avx512: not on zen */

	/* A VM of one vendor stays on it. */
	vms[0].vendor = TGVM_VENDOR_INTEL;
	fo.matrix = NULL;
	assert_int_equal(tgvm_fleet_evaluate(inv, vms, 3, &fo, pl, &err), 0);
	assert_int_equal(pl[TGVM_POLICY_MINIMAL].hosts, 16);
	assert_int_equal(pl[TGVM_POLICY_PASSTHROUGH].hosts, 5);
	vms[0].vendor = TGVM_VENDOR_UNKNOWN;

	/* Cross-vendor: the AMD host joins plain's minimal set. */
	fo.cross_vendor = true;
	fo.matrix = NULL;
	assert_int_equal(tgvm_fleet_evaluate(inv, vms, 3, &fo, pl, &err), 0);
	assert_int_equal(pl[TGVM_POLICY_MINIMAL].hosts, 20);
	tgvm_inventory_free(inv);
	tgvm_modeldb_free(db);
}

/* Every cell's kind has a legend entry, the legend lists only drawn kinds, and
 * every box lies inside a canvas the content reaches on the right and below. */
static void check_heatmap_layout(struct tgvm_heatmap *hm)
{
	char *svg = tgvm_heatmap_svg(hm);
	unsigned used = 0;
	int max_x = 0, max_y = 0;

	assert_non_null(svg);
	for (size_t k = 0; k < hm->nrows * hm->ncols; k++) {
		assert_true(hm->cells[k] < TGVM_HEAT__MAX);
		used |= 1u << hm->cells[k];
	}
	assert_int_equal(hm->kinds, used);
	for (unsigned k = 0; k < TGVM_HEAT__MAX; k++) {
		const char *label = tgvm_heat_kind_label(k);
		bool in_svg = strstr(svg, label) != NULL;

		assert_true(label[0] != '?');
		/* the legend line (and the cells' titles) name exactly the kinds drawn */
		assert_int_equal(in_svg, !!(used & (1u << k)));
	}
	assert_true(hm->nboxes > hm->nrows * hm->ncols);
	for (size_t i = 0; i < hm->nboxes; i++) {
		const struct tgvm_heat_box *b = &hm->boxes[i];

		assert_true(b->x >= 0 && b->y >= 0);
		assert_true(b->x + b->w <= hm->width);
		assert_true(b->y + b->h <= hm->height);
		if (b->x + b->w > max_x)
			max_x = b->x + b->w;
		if (b->y + b->h > max_y)
			max_y = b->y + b->h;
	}
	/* fits: no more than a margin and a share column's slack left empty */
	assert_true(hm->width - max_x <= 80);
	assert_true(hm->height - max_y <= 30);
	free(svg);
}

static void test_heatmap(void **state)
{
	struct tgvm_modeldb *db = test_db();
	struct tgvm_error err = {0};
	struct tgvm_inventory *inv;
	struct tgvm_heatmap *hm = NULL;
	struct tgvm_fleet_opts fo = {0};
	struct tgvm_vm_needs vms[3], *many;
	int r;

	(void)state;
	inv = load_inv(db, inv_json, &err, &r);
	assert_int_equal(r, 0);
	memset(vms, 0, sizeof(vms));
	snprintf(vms[0].name, sizeof(vms[0].name), "plain");
	snprintf(vms[1].name, sizeof(vms[1].name), "intel-avx2");
	vms[1].required = fs("avx2");
	vms[1].vendor = TGVM_VENDOR_INTEL;
	snprintf(vms[2].name, sizeof(vms[2].name), "avx512");
	vms[2].required = fs("avx512f");

	assert_int_equal(tgvm_heatmap_build(inv, vms, 3, &fo, &hm, &err), 0);
	assert_int_equal(hm->nrows, 3);
	assert_int_equal(hm->ncols, 4);
	/* columns by vendor, then fewest features first: old, mid-plus, new, zen */
	assert_non_null(strstr(hm->cols[0].label, "old (10)"));
	assert_non_null(strstr(hm->cols[3].label, "zen (4)"));
	/* plain runs on old under baseline and minimal (passthrough starts on new) */
	assert_int_equal(hm->cells[0 * 4 + 0], 6);
	assert_int_equal(hm->cells[0 * 4 + 2], 7);
	/* an Intel VM on the AMD host: another vendor, said so, not "cannot run" */
	assert_int_equal(hm->cells[1 * 4 + 3], TGVM_HEAT_OTHER_VENDOR);
	assert_int_equal(hm->cells[1 * 4 + 0], TGVM_HEAT_LACKS); /* old lacks avx2 */
	/* avx512 on zen: the AMD host lacks it (the VM has no vendor: zen is a target) */
	assert_int_equal(hm->cells[2 * 4 + 3], TGVM_HEAT_LACKS);
	check_heatmap_layout(hm);
	tgvm_heatmap_free(hm);
	hm = NULL;

	/* With --cross-vendor nothing is "other vendor". */
	fo.cross_vendor = true;
	assert_int_equal(tgvm_heatmap_build(inv, vms, 3, &fo, &hm, &err), 0);
	assert_false(hm->kinds & (1u << TGVM_HEAT_OTHER_VENDOR));
	check_heatmap_layout(hm);
	tgvm_heatmap_free(hm);
	hm = NULL;
	fo.cross_vendor = false;

	/* Many VMs: grouped by requirement, capped, the picture says so. */
	size_t n = 20000;
	static const char *const reqs[] = {"popcnt", "avx2", "bmi2", "aes", "sse4.2", "avx512f"};
	many = calloc(n, sizeof(*many));
	assert_non_null(many);
	for (size_t i = 0; i < n; i++) {
		snprintf(many[i].name, sizeof(many[i].name), "vm%zu", i);
		many[i].required = fs(reqs[i % 6]);
		if (i >= 100 && i < 100 + 2 * TGVM_HEATMAP_ROWS_MAX)
			/* one-VM groups: distinct requirements by their guarded-free sets */
			tgvm_featureset_add(&many[i].required,
			                    (enum tgvm_feature)(i % TGVM_F__MAX));
	}
	assert_int_equal(tgvm_heatmap_build(inv, many, n, &fo, &hm, &err), 0);
	assert_true(hm->row_groups > TGVM_HEATMAP_ROWS_MAX);
	assert_int_equal(hm->nrows, TGVM_HEATMAP_ROWS_MAX);
	assert_int_equal(hm->vms, n);
	assert_true(hm->vms_drawn < n);
	assert_non_null(strstr(hm->rows[0].label, "vm0 and "));
	{
		char *svg = tgvm_heatmap_svg(hm);

		assert_non_null(strstr(svg, "share a row"));
		assert_non_null(strstr(svg, "are not drawn"));
		free(svg);
	}
	check_heatmap_layout(hm);
	tgvm_heatmap_free(hm);
	free(many);

	/* Many entries of few profiles: one column per profile. */
	{
		struct tgvm_inventory big = {0};

		big.n = 500;
		big.hosts = calloc(big.n, sizeof(*big.hosts));
		for (size_t i = 0; i < big.n; i++) {
			big.hosts[i] = inv->hosts[i % inv->n];
			snprintf(big.hosts[i].name, sizeof(big.hosts[i].name), "h%zu", i);
		}
		hm = NULL;
		assert_int_equal(tgvm_heatmap_build(&big, vms, 3, &fo, &hm, &err), 0);
		assert_int_equal(hm->ncols, 4);
		assert_int_equal(hm->col_groups, 4);
		assert_non_null(strstr(hm->cols[0].label, "and 124 like it"));
		check_heatmap_layout(hm);
		tgvm_heatmap_free(hm);
		free(big.hosts);
	}
	tgvm_inventory_free(inv);
	tgvm_modeldb_free(db);
}

static void test_modeldb_json(void **state)
{
	struct tgvm_modeldb *db = test_db(), *back = NULL;
	struct tgvm_error err = {0};
	json_t *j = tgvm_modeldb_to_json(db);

	(void)state;
	assert_int_equal(tgvm_modeldb_from_json(j, &back, &err), 0);
	assert_int_equal(back->n, db->n);
	for (size_t i = 0; i < db->n; i++) {
		assert_string_equal(back->models[i].name, db->models[i].name);
		assert_true(
		    tgvm_featureset_equal(&back->models[i].features, &db->models[i].features));
	}
	assert_non_null(tgvm_modeldb_find(back, "old-v1", false)); /* case-insensitive */
	assert_string_equal(tgvm_modeldb_suggest(back, "Mid-v2"), "Mid-v1");
	json_decref(j);
	tgvm_modeldb_free(back);

	j = json_loads("{\"format\":\"tgvm-cpu-models\",\"version\":2,\"qemu_version\":\"1\","
	               "\"settable\":[],"
	               "\"tcg_max\":[],\"models\":[{\"name\":\"x\",\"features\":[\"nope\"]}]}",
	               0, NULL);
	assert_int_equal(tgvm_modeldb_from_json(j, &back, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "'nope'"));
	json_decref(j);
	j = json_loads("{\"format\":\"other\"}", 0, NULL);
	assert_int_equal(tgvm_modeldb_from_json(j, &back, &err), -EINVAL);
	json_decref(j);
	tgvm_modeldb_free(db);
}

static void test_needs_report(void **state)
{
	struct tgvm_vm_needs n;
	struct tgvm_error err = {0};
	char path[] = "/tmp/tgvm-test-report-XXXXXX";
	int fd = mkstemp(path);
	const char *ok =
	    "{\"tool\":\"tgvm-scan\",\"required\":[\"popcnt\"],\"guarded\":[\"avx2\"]}";
	const char *bad = "{\"required\":[\"popcnt\", \"avx7\"]}";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, ok, strlen(ok)), (ssize_t)strlen(ok));
	close(fd);
	assert_int_equal(tgvm_needs_from_report(path, false, &n, NULL, &err), 0);
	assert_true(tgvm_featureset_has(&n.required, TGVM_F_POPCNT));
	assert_true(tgvm_featureset_has(&n.guarded, TGVM_F_AVX2));
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
	close(fd);
	assert_int_equal(tgvm_needs_from_report(path, false, &n, NULL, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "'avx7'"));
	assert_non_null(strstr(err.msg, path));
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "{\"x\":1}", 7), 7);
	close(fd);
	assert_int_equal(tgvm_needs_from_report(path, false, &n, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not a tgvm report"));
	unlink(path);
}

/* A feature QEMU shows on one vendor's models only picks that vendor or refuses. */
static void test_model_vendor_features(void **state)
{
	struct tgvm_modeldb *db = test_db();
	struct tgvm_model_request req = {0};
	struct tgvm_model_choice c;
	struct tgvm_error err = {0};

	(void)state;
	req.need = fs("sse4a"); /* only Zen-v1 has it */
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), 0);
	assert_int_equal(c.vendor, TGVM_VENDOR_AMD);
	assert_string_equal(c.base, "Zen-v1");
	req.vendor = TGVM_VENDOR_INTEL;
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), -EPERM);
	assert_non_null(strstr(err.msg, "'sse4a'"));
	assert_non_null(strstr(err.msg, "amd"));
	/* avx512f is on intel models only here: both at once exist nowhere. */
	req.vendor = TGVM_VENDOR_UNKNOWN;
	req.need = fs("sse4a,avx512f");
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), -EPERM);
	assert_non_null(strstr(err.msg, "sse4a"));
	assert_non_null(strstr(err.msg, "avx512f"));
	/* A feature on every vendor's models leaves the default. */
	req.need = fs("avx2");
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), 0);
	assert_int_equal(c.vendor, TGVM_VENDOR_INTEL);
	tgvm_modeldb_free(db);
}

/* The -cpu string is for an accelerator; what TCG lacks comes from QEMU's TCG answers. */
static void test_model_accel(void **state)
{
	struct tgvm_modeldb *db = test_db();
	struct tgvm_model_request req = {0};
	struct tgvm_model_choice c;
	struct tgvm_error err = {0};
	struct tgvm_cpu_model m;

	(void)state;
	/* A base with a hypervisor feature TCG cannot give (Haswell's tsc-deadline). */
	memset(&m, 0, sizeof(m));
	snprintf(m.name, sizeof(m.name), "Mid2-v1");
	m.vendor = TGVM_VENDOR_INTEL;
	m.features = tgvm_modeldb_find(db, "Mid-v1", false)->features;
	tgvm_featureset_del(&m.features, TGVM_F_AES);
	tgvm_featureset_add(&m.features, TGVM_F_TSC_DEADLINE);
	tgvm_featureset_add(&m.features, TGVM_F_RDRAND);
	tgvm_featureset_add(&m.tcg_unavailable, TGVM_F_TSC_DEADLINE);
	assert_int_equal(tgvm_modeldb_add(db, &m), 0);
	tgvm_featureset_add(&db->tcg_max, TGVM_F_RDRAND);

	req.need = fs("avx2,bmi2,popcnt,sse4.2,cx16,rdrand");
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), 0);
	assert_int_equal(c.accel, TGVM_MODEL_ACCEL_TCG); /* auto: TCG can give it all */
	assert_string_equal(c.base, "Mid2-v1");
	assert_true(tgvm_featureset_has(&c.minus, TGVM_F_TSC_DEADLINE));
	assert_true(tgvm_featureset_empty(&c.tcg_missing));

	req.accel = TGVM_MODEL_ACCEL_KVM; /* KVM gives tsc-deadline: it stays, but TCG lacks it */
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), 0);
	assert_false(tgvm_featureset_has(&c.minus, TGVM_F_TSC_DEADLINE));
	assert_true(tgvm_featureset_has(&c.hv_kept, TGVM_F_TSC_DEADLINE));
	assert_true(tgvm_featureset_has(&c.tcg_missing, TGVM_F_TSC_DEADLINE));

	/* A base TCG lacks unnamed parts of is never a TCG base. */
	((struct tgvm_cpu_model *)tgvm_modeldb_find(db, "Mid2-v1", false))->tcg_unnamed = true;
	req.accel = TGVM_MODEL_ACCEL_TCG;
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), 0);
	assert_string_not_equal(c.base, "Mid2-v1");

	/* A need TCG cannot give: refused for TCG, a KVM model under auto. */
	req.need = fs("avx512f");
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "avx512f"));
	req.accel = TGVM_MODEL_ACCEL_AUTO;
	assert_int_equal(tgvm_model_choose(db, &req, &c, &err), 0);
	assert_int_equal(c.accel, TGVM_MODEL_ACCEL_KVM);
	assert_true(tgvm_featureset_has(&c.tcg_missing, TGVM_F_AVX512F));
	tgvm_modeldb_free(db);
}

/* model (tgvm_model_choose_fleet) and fleet (the minimal policy) count the same machines. */
static void test_model_fleet_agree(void **state)
{
	const char *const invs[] = {
	    inv_json,
	    "{\"hosts\": [{\"name\": \"h\", \"profile\": \"Mid-v1\", \"count\": 1000},"
	    "{\"name\": \"g\", \"profile\": \"Zen-v1\", \"count\": 10}]}",
	    "{\"hosts\": [{\"name\": \"h\", \"profile\": \"Old-v1\", \"count\": 7},"
	    "{\"name\": \"g\", \"profile\": \"Zen-v1\", \"count\": 30}]}",
	};
	static const char *const needs[] = {"",        "avx2", "sse4a", "popcnt,sse4.2",
	                                    "avx512f", "aes",  "bmi2"};
	struct tgvm_modeldb *db = test_db();
	struct tgvm_error err = {0};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(invs); i++) {
		struct tgvm_inventory *inv;
		int r;

		inv = load_inv(db, invs[i], &err, &r);
		assert_int_equal(r, 0);
		for (size_t k = 0; k < ARRAY_SIZE(needs); k++) {
			struct tgvm_model_request req = {0};
			struct tgvm_model_choice c;
			struct tgvm_model_fit fit;
			struct tgvm_vm_needs vm = {0};
			struct tgvm_placement pl[TGVM_POLICY__MAX];
			uint64_t listed = 0;

			assert_int_equal(tgvm_featureset_parse(needs[k], &req.need, NULL), 0);
			vm.required = req.need;
			assert_int_equal(tgvm_fleet_evaluate(inv, &vm, 1, NULL, pl, &err), 0);
			r = tgvm_model_choose_fleet(db, &req, inv, &c, &fit, &err);
			if (r == -EPERM) {
				/* refused: no machine, and fleet says the same */
				assert_int_equal(pl[TGVM_POLICY_MINIMAL].hosts, 0);
				continue;
			}
			assert_int_equal(r, 0);
			assert_int_equal(fit.machines, pl[TGVM_POLICY_MINIMAL].hosts);
			for (int v = 0; v < TGVM_VENDOR__MAX; v++)
				assert_int_equal(fit.by_vendor[v],
				                 pl[TGVM_POLICY_MINIMAL].hosts_by_vendor[v]);
			for (size_t h = 0; h < inv->n; h++)
				if (tgvm_model_fit_host(&fit, &c, &inv->hosts[h]))
					listed += inv->hosts[h].count;
			assert_int_equal(listed, fit.machines);
		}
		tgvm_inventory_free(inv);
	}
	tgvm_modeldb_free(db);
}

/* A model no machine can run is refused, naming what rules them out. */
static void test_model_rules_out(void **state)
{
	struct tgvm_modeldb *db = test_db();
	struct tgvm_model_request req = {0};
	struct tgvm_model_choice c;
	struct tgvm_model_fit fit;
	struct tgvm_error err = {0};
	struct tgvm_inventory *inv;
	int r;

	(void)state;
	inv = load_inv(db, inv_json, &err, &r);
	assert_int_equal(r, 0);
	req.need = fs("xstore,avx2");
	assert_int_equal(tgvm_model_choose_fleet(db, &req, inv, &c, &fit, &err), -EPERM);
	assert_non_null(strstr(err.msg, "none has xstore"));
	assert_null(strstr(err.msg, "avx2"));
	/* each lacks something else: say what each lacks */
	req.need = fs("avx512f,sha-ni");
	assert_int_equal(tgvm_model_choose_fleet(db, &req, inv, &c, &fit, &err), -EPERM);
	assert_non_null(strstr(err.msg, "'new' lacks sha-ni"));
	/* a vendor the inventory does not have */
	req.need = fs("avx2");
	req.vendor = TGVM_VENDOR_AMD;
	assert_int_equal(tgvm_model_choose_fleet(db, &req, inv, &c, &fit, &err), 0);
	assert_int_equal(fit.machines, 4);
	req.need = fs("sse4a");
	req.vendor = TGVM_VENDOR_UNKNOWN;
	assert_int_equal(tgvm_model_choose_fleet(db, &req, inv, &c, &fit, &err), 0);
	assert_int_equal(c.vendor, TGVM_VENDOR_AMD);
	assert_int_equal(fit.machines, 4);
	tgvm_inventory_free(inv);
	tgvm_modeldb_free(db);
}

/*
 * Every model tgvm prints, for any one needed feature of either vendor, holds
 * what its features imply (the dependency table: avx2 => avx => xsave,
 * sse4.2 => sse4.1 => ssse3 => pni, the psABI levels nested), on the real
 * QEMU's database; skipped without QEMU.
 */
static void test_models_imply(void **state)
{
	struct tgvm_modeldb *db = NULL;
	struct tgvm_featureset v2, v3;
	int checked = 0;

	(void)state;
	if (tgvm_modeldb_load_default(&db, NULL) < 0)
		skip();
	tgvm_psabi_set(TGVM_PSABI_V2, &v2);
	tgvm_psabi_set(TGVM_PSABI_V3, &v3);
	for (int f = 0; f < TGVM_F__MAX; f++) {
		for (int v = TGVM_VENDOR_UNKNOWN; v <= TGVM_VENDOR_AMD; v++) {
			struct tgvm_model_request req = {0};
			struct tgvm_model_choice c;
			struct tgvm_featureset full, closed;

			tgvm_featureset_add(&req.need, f);
			req.vendor = v;
			if (tgvm_model_choose(db, &req, &c, NULL) < 0)
				continue; /* refused: nothing printed */
			full = c.presented;
			tgvm_featureset_union(&full, &c.hv_kept);
			closed = full;
			tgvm_featureset_close(&closed);
			if (!tgvm_featureset_equal(&closed, &full))
				fail_msg("need %s (%s): base %s lacks what its features imply",
				         tgvm_feature_name(f), tgvm_vendor_to_string(v), c.base);
			if (tgvm_featureset_has(&full, TGVM_F_AVX) &&
			    !tgvm_featureset_subset(&v2, &full))
				fail_msg("need %s: AVX without all of x86-64-v2",
				         tgvm_feature_name(f));
			if (tgvm_featureset_has(&full, TGVM_F_AVX512F) &&
			    !tgvm_featureset_subset(&v3, &full))
				fail_msg("need %s: AVX-512 without all of x86-64-v3",
				         tgvm_feature_name(f));
			checked++;
		}
	}
	assert_true(checked > 100);
	tgvm_modeldb_free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_model_choice),
	    cmocka_unit_test(test_host_accepts),
	    cmocka_unit_test(test_inventory),
	    cmocka_unit_test(test_inventory_file_errors),
	    cmocka_unit_test(test_placement),
	    cmocka_unit_test(test_heatmap),
	    cmocka_unit_test(test_modeldb_json),
	    cmocka_unit_test(test_needs_report),
	    cmocka_unit_test(test_model_vendor_features),
	    cmocka_unit_test(test_model_accel),
	    cmocka_unit_test(test_model_fleet_agree),
	    cmocka_unit_test(test_model_rules_out),
	    cmocka_unit_test(test_models_imply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
