// SPDX-License-Identifier: MIT
/*
 * The fleet heat map: rows are VMs grouped by what they require, columns
 * inventory entries grouped by CPU profile, each cell coloured by which
 * policies let the VM run there or why none does; laid out to fit, as SVG.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tgvm/fleet.h"
#include "util/util.h"

#define CELL    22
#define MARGIN  10
#define CHAR_W  7 /* estimated width of a character at 12 px (DejaVu Sans) */
#define LINE_H  18
#define SHARE_W 80 /* one share column ("baseline", "minimal") */

static const struct {
	const char *colour;
	const char *label;
} kinds[TGVM_HEAT__MAX] = {
    [TGVM_HEAT_LACKS] = {"#d0d0d0", "cannot run: the host lacks a required feature"},
    [1] = {"#8250df", "only passthrough"},
    [2] = {"#d4a72c", "only baseline (masked to the fleet's common CPU)"},
    [3] = {"#bf8700", "passthrough and baseline, not minimal"},
    [4] = {"#2f81f7", "only minimal (tgvm)"},
    [5] = {"#0a3069", "passthrough and minimal (baseline masks a requirement)"},
    [6] = {"#4ac26b", "baseline and minimal"},
    [7] = {"#1a7f37", "all three: passthrough, baseline and minimal"},
    [TGVM_HEAT_OTHER_VENDOR] = {"#f6f8fa",
                                "other vendor: not a target under any policy (no --cross-vendor)"},
};

const char *tgvm_heat_kind_label(unsigned kind)
{
	return kind < TGVM_HEAT__MAX ? kinds[kind].label : "?";
}

const char *tgvm_heat_kind_colour(unsigned kind)
{
	return kind < TGVM_HEAT__MAX ? kinds[kind].colour : "#000000";
}

void tgvm_heatmap_free(struct tgvm_heatmap *h)
{
	if (!h)
		return;
	free(h->rows);
	free(h->cols);
	free(h->cells);
	free(h->boxes);
	free(h);
}

static uint64_t set_hash(const struct tgvm_featureset *s, int vendor)
{
	uint64_t x = 1469598103934665603ULL ^ (uint64_t)vendor;

	for (size_t i = 0; i < TGVM_FEATURESET_WORDS; i++) {
		x = (x ^ s->w[i]) * 1099511628211ULL;
		x ^= x >> 29;
	}
	return x;
}

/* A group of equal items (VMs by requirement, hosts by profile). */
struct group {
	size_t first;   /* index of its first item */
	size_t items;   /* VMs or entries */
	uint64_t count; /* machines (columns) */
	size_t named;   /* the item to name it by */
};

/*
 * Group @n items by (feature set, vendor) read through @key; O(n) with an
 * open-addressing table. *ret gets the groups in order of first appearance.
 * With @one_each every item is its own group (few enough to draw each).
 */
static int group_items(size_t n, bool one_each, const void *base, size_t stride,
                       const struct tgvm_featureset *(*key)(const void *, int *),
                       uint64_t (*count)(const void *), struct group **ret, size_t *ret_n)
{
	size_t cap = 16, ng = 0;
	int64_t *slot;
	struct group *g;

	while (cap < n * 2)
		cap *= 2;
	slot = malloc(cap * sizeof(*slot));
	g = calloc(n ? n : 1, sizeof(*g));
	if (!slot || !g) {
		free(slot);
		free(g);
		return -ENOMEM;
	}
	memset(slot, 0xff, cap * sizeof(*slot));
	for (size_t i = 0; i < n; i++) {
		const void *it = (const char *)base + i * stride;
		int v;
		const struct tgvm_featureset *s = key(it, &v);
		size_t h = set_hash(s, v) & (cap - 1);

		while (slot[h] >= 0) {
			int w;
			const void *o = (const char *)base + g[slot[h]].first * stride;
			const struct tgvm_featureset *t = key(o, &w);

			if (!one_each && v == w && tgvm_featureset_equal(s, t))
				break;
			h = (h + 1) & (cap - 1);
		}
		if (slot[h] < 0) {
			slot[h] = (int64_t)ng;
			g[ng].first = g[ng].named = i;
			ng++;
		}
		g[slot[h]].items++;
		g[slot[h]].count += count ? count(it) : 1;
	}
	free(slot);
	*ret = g;
	*ret_n = ng;
	return 0;
}

static const struct tgvm_featureset *vm_key(const void *p, int *vendor)
{
	const struct tgvm_vm_needs *n = p;

	*vendor = n->vendor;
	return &n->required;
}

static const struct tgvm_featureset *host_key(const void *p, int *vendor)
{
	const struct tgvm_host *h = p;

	*vendor = h->profile.vendor;
	return &h->profile.features;
}

static uint64_t host_count(const void *p)
{
	return ((const struct tgvm_host *)p)->count;
}

/* Keep the @max largest groups (by count, then items), in order of first appearance. */
static size_t keep_largest(struct group *g, size_t n, size_t max)
{
	size_t kept = 0;

	if (n <= max)
		return n;
	/* Selection by threshold: mark the max largest, O(n * max) worst, max small. */
	bool *take = calloc(n, sizeof(*take));

	if (!take)
		return max; /* out of memory: the first ones */
	for (size_t k = 0; k < max; k++) {
		size_t best = SIZE_MAX;

		for (size_t i = 0; i < n; i++) {
			if (take[i])
				continue;
			if (best == SIZE_MAX || g[i].count > g[best].count ||
			    (g[i].count == g[best].count && g[i].items > g[best].items))
				best = i;
		}
		take[best] = true;
	}
	for (size_t i = 0; i < n; i++)
		if (take[i])
			g[kept++] = g[i];
	free(take);
	return kept;
}

static int col_cmp(const void *a, const void *b, void *ctx)
{
	const struct group *x = a, *y = b;
	const struct tgvm_inventory *inv = ctx;
	const struct tgvm_cpu_model *p = &inv->hosts[x->first].profile,
	                            *q = &inv->hosts[y->first].profile;
	int nx, ny;

	if (p->vendor != q->vendor)
		return p->vendor < q->vendor ? -1 : 1;
	nx = tgvm_featureset_count(&p->features);
	ny = tgvm_featureset_count(&q->features);
	if (nx != ny)
		return nx < ny ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

int tgvm_heatmap_build(const struct tgvm_inventory *inv, const struct tgvm_vm_needs *vms,
                       size_t nvms, const struct tgvm_fleet_opts *opts, struct tgvm_heatmap **ret,
                       struct tgvm_error *reterr)
{
	struct tgvm_heatmap *h = NULL;
	struct group *rg = NULL, *cg = NULL;
	size_t nrg = 0, ncg = 0;
	struct tgvm_inventory ginv = {0};
	struct tgvm_vm_needs *gvms = NULL;
	struct tgvm_placement *pl = NULL;
	struct tgvm_fleet_opts fo = {0};
	uint8_t *matrix = NULL;
	bool cross = opts && opts->cross_vendor;
	bool named = opts && opts->first_host && *opts->first_host;
	int r = -ENOMEM;

	if (!inv->n)
		return tgvm_error_set(reterr, EINVAL, "the inventory has no hosts");
	h = calloc(1, sizeof(*h));
	if (!h)
		goto nomem;
	h->cross_vendor = cross;
	h->vms = nvms;
	h->entries = inv->n;
	h->machines = tgvm_inventory_total(inv);
	/* Group only what does not fit: a VM or an entry each where they do. */
	if (group_items(nvms, nvms <= TGVM_HEATMAP_ROWS_MAX, vms, sizeof(*vms), vm_key, NULL, &rg,
	                &nrg) < 0 ||
	    group_items(inv->n, inv->n <= TGVM_HEATMAP_COLS_MAX, inv->hosts, sizeof(*inv->hosts),
	                host_key, host_count, &cg, &ncg) < 0)
		goto nomem;
	h->row_groups = nrg;
	h->col_groups = ncg;

	/* Name a profile's column after the named first host when it holds it. */
	if (named && ncg < inv->n)
		for (size_t i = 0; i < inv->n; i++)
			if (!strcmp(inv->hosts[i].name, opts->first_host))
				for (size_t k = 0; k < ncg; k++) {
					const struct tgvm_cpu_model *p =
					    &inv->hosts[cg[k].first].profile;

					if (p->vendor == inv->hosts[i].profile.vendor &&
					    tgvm_featureset_equal(&p->features,
					                          &inv->hosts[i].profile.features))
						cg[k].named = i;
				}

	/* Evaluate the drawn rows on every profile (one entry per profile). */
	nrg = keep_largest(rg, nrg, TGVM_HEATMAP_ROWS_MAX);
	ginv.n = ncg;
	ginv.hosts = calloc(ncg, sizeof(*ginv.hosts));
	gvms = calloc(nrg ? nrg : 1, sizeof(*gvms));
	pl = calloc((nrg ? nrg : 1) * TGVM_POLICY__MAX, sizeof(*pl));
	matrix = calloc((nrg ? nrg : 1) * ncg, 1);
	if (!ginv.hosts || !gvms || !pl || !matrix)
		goto nomem;
	snprintf(ginv.path, sizeof(ginv.path), "%s", inv->path);
	for (size_t k = 0; k < ncg; k++) {
		ginv.hosts[k] = inv->hosts[cg[k].named];
		ginv.hosts[k].count = cg[k].count;
	}
	for (size_t i = 0; i < nrg; i++) {
		gvms[i] = vms[rg[i].first];
		tgvm_featureset_clear(&gvms[i].guarded);
	}
	fo.cross_vendor = cross;
	fo.first_host = named ? opts->first_host : NULL;
	fo.matrix = matrix;
	if (nrg && (r = tgvm_fleet_evaluate(&ginv, gvms, nrg, &fo, pl, reterr)) < 0)
		goto out;

	/* The drawn columns: the largest profiles, by vendor and generation. */
	struct group *drawn = malloc((ncg ? ncg : 1) * sizeof(*drawn));

	if (!drawn)
		goto nomem;
	for (size_t k = 0; k < ncg; k++) {
		drawn[k] = cg[k];
		drawn[k].first = k; /* index into ginv from here on */
	}
	ncg = keep_largest(drawn, ncg, TGVM_HEATMAP_COLS_MAX);
	qsort_r(drawn, ncg, sizeof(*drawn), col_cmp, &ginv);

	h->nrows = nrg;
	h->ncols = ncg;
	h->rows = calloc(nrg ? nrg : 1, sizeof(*h->rows));
	h->cols = calloc(ncg ? ncg : 1, sizeof(*h->cols));
	h->cells = calloc((nrg ? nrg : 1) * (ncg ? ncg : 1), 1);
	if (!h->rows || !h->cols || !h->cells) {
		free(drawn);
		goto nomem;
	}
	for (size_t j = 0; j < ncg; j++) {
		struct tgvm_heat_col *c = &h->cols[j];
		const struct tgvm_host *gh = &ginv.hosts[drawn[j].first];

		c->entries = drawn[j].items;
		c->machines = drawn[j].count;
		c->vendor = gh->profile.vendor;
		h->machines_drawn += c->machines;
		if (c->entries == 1)
			snprintf(c->label, sizeof(c->label), "%s (%llu)", gh->name,
			         (unsigned long long)c->machines);
		else
			snprintf(c->label, sizeof(c->label), "%s and %zu like it (%llu)", gh->name,
			         c->entries - 1, (unsigned long long)c->machines);
	}
	for (size_t i = 0; i < nrg; i++) {
		struct tgvm_heat_row *w = &h->rows[i];
		const struct tgvm_placement *p = &pl[i * TGVM_POLICY__MAX];
		bool one_vendor = !cross && (gvms[i].vendor != TGVM_VENDOR_UNKNOWN || named);

		w->vms = rg[i].items;
		w->required = gvms[i].required;
		w->vendor = gvms[i].vendor;
		h->vms_drawn += w->vms;
		if (w->vms == 1)
			snprintf(w->label, sizeof(w->label), "%s", gvms[i].name);
		else
			snprintf(w->label, sizeof(w->label), "%s and %zu more", gvms[i].name,
			         w->vms - 1);
		for (int q = 0; q < TGVM_POLICY__MAX; q++) {
			w->runs |= p[q].runs;
			w->machines[q] = p[q].runs ? p[q].hosts : 0;
		}
		for (size_t j = 0; j < ncg; j++) {
			const struct tgvm_host *gh = &ginv.hosts[drawn[j].first];
			unsigned kind = matrix[i * ginv.n + drawn[j].first] & 7u;

			if (!kind && one_vendor &&
			    p[TGVM_POLICY_MINIMAL].vendor != gh->profile.vendor)
				kind = TGVM_HEAT_OTHER_VENDOR;
			h->cells[i * ncg + j] = (uint8_t)kind;
			h->kinds |= 1u << kind;
		}
	}
	free(drawn);
	*ret = h;
	h = NULL;
	r = 0;
	goto out;
nomem:
	r = tgvm_error_set(reterr, ENOMEM, "out of memory drawing the heat map");
out:
	tgvm_heatmap_free(h);
	free(rg);
	free(cg);
	free(ginv.hosts);
	free(gvms);
	free(pl);
	free(matrix);
	return r;
}

/* ---- layout and SVG ---- */

static int text_w(const char *s)
{
	return (int)strlen(s) * CHAR_W;
}

static void box_add(struct tgvm_heatmap *h, size_t *cap, int x, int y, int w, int hh, bool text)
{
	if (h->nboxes == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct tgvm_heat_box *b = realloc(h->boxes, nc * sizeof(*b));

		if (!b)
			return; /* the layout record is best effort; the picture is not */
		h->boxes = b;
		*cap = nc;
	}
	h->boxes[h->nboxes++] = (struct tgvm_heat_box){x, y, w, hh, text};
}

/* A line of text at (x, baseline y), recorded as a box. */
static void text_line(struct tgvm_buf *b, struct tgvm_heatmap *h, size_t *cap, int x, int y,
                      const char *attrs, const char *s)
{
	tgvm_buf_printf(b, "<text x='%d' y='%d'%s>", x, y, attrs);
	tgvm_buf_xml(b, s);
	tgvm_buf_printf(b, "</text>\n");
	box_add(h, cap, x, y - 12, text_w(s), 16, true);
}

static const char *thousands(char *buf, size_t size, uint64_t v)
{
	char t[32];
	size_t n, o = 0;

	snprintf(t, sizeof(t), "%llu", (unsigned long long)v);
	n = strlen(t);
	for (size_t i = 0; i < n && o + 2 < size; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = t[i];
	}
	buf[o] = '\0';
	return buf;
}

char *tgvm_heatmap_svg(struct tgvm_heatmap *h)
{
	struct tgvm_buf b;
	size_t cap = 0;
	char notes[4][256], a[32], c[32], d[32];
	int nnotes = 0, left = 0, top, label_h = 0, width, height, y, x0;
	int grid_w = (int)h->ncols * CELL, right_end;

	free(h->boxes);
	h->boxes = NULL;
	h->nboxes = 0;

	/* What the picture shows, and what it grouped or left out. */
	snprintf(notes[nnotes++], sizeof(notes[0]),
	         "rows: %s VMs; columns: %s machines in %zu inventory entries; right: share of the "
	         "machines under baseline / minimal",
	         thousands(a, sizeof(a), h->vms), thousands(c, sizeof(c), h->machines), h->entries);
	if (h->row_groups < h->vms || h->col_groups < h->entries)
		snprintf(notes[nnotes++], sizeof(notes[0]),
		         "grouped: VMs that require the same features share a row (%zu rows), "
		         "entries with the same CPU profile a column (%zu columns)",
		         h->row_groups, h->col_groups);
	if (h->nrows < h->row_groups)
		snprintf(notes[nnotes++], sizeof(notes[0]),
		         "drawn: the %zu largest rows of %zu; %zu rows (%s VMs) are not drawn "
		         "(tgvm fleet --json has every VM)",
		         h->nrows, h->row_groups, h->row_groups - h->nrows,
		         thousands(d, sizeof(d), h->vms - h->vms_drawn));
	if (h->ncols < h->col_groups)
		snprintf(notes[nnotes++], sizeof(notes[0]),
		         "drawn: the %zu largest columns of %zu; %zu columns (%s machines) are not "
		         "drawn; shares count every machine",
		         h->ncols, h->col_groups, h->col_groups - h->ncols,
		         thousands(d, sizeof(d), h->machines - h->machines_drawn));

	/* Extents: row labels on the left, column labels rotated -60 degrees above. */
	for (size_t i = 0; i < h->nrows; i++)
		if (text_w(h->rows[i].label) > left)
			left = text_w(h->rows[i].label);
	left += MARGIN + 8;
	for (size_t j = 0; j < h->ncols; j++) {
		int l = text_w(h->cols[j].label) * 87 / 100 + 4;

		if (l > label_h)
			label_h = l;
	}
	top = 30 + nnotes * LINE_H + 8 + label_h + 8;
	right_end = left + grid_w + 2 * SHARE_W;
	for (size_t j = 0; j < h->ncols; j++) {
		int x = left + (int)j * CELL + CELL / 2 + text_w(h->cols[j].label) / 2 + 8;

		if (x > right_end)
			right_end = x;
	}
	width = right_end;
	for (int k = 0; k < nnotes; k++)
		if (MARGIN + text_w(notes[k]) > width)
			width = MARGIN + text_w(notes[k]);
	for (unsigned k = 0; k < TGVM_HEAT__MAX; k++)
		if (h->kinds & (1u << k) && MARGIN + 20 + text_w(kinds[k].label) > width)
			width = MARGIN + 20 + text_w(kinds[k].label);
	width += MARGIN;
	height = top + (int)h->nrows * CELL + 16;
	for (unsigned k = 0; k < TGVM_HEAT__MAX; k++)
		if (h->kinds & (1u << k))
			height += 20;
	height += MARGIN;
	h->width = width;
	h->height = height;

	tgvm_buf_init(&b);
	tgvm_buf_printf(&b,
	                "<?xml version='1.0' encoding='UTF-8'?>\n"
	                "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
	                "font-family='DejaVu Sans, Helvetica, Arial, sans-serif' "
	                "font-size='12'>\n"
	                "<rect width='100%%' height='100%%' fill='white'/>\n",
	                width, height);
	tgvm_buf_printf(&b, "<text x='%d' y='22' font-size='16' font-weight='bold'>", MARGIN);
	tgvm_buf_printf(&b, "Where each VM may run and move</text>\n");
	box_add(h, &cap, MARGIN, 6, 30 * 9, 20, true);
	for (int k = 0; k < nnotes; k++)
		text_line(&b, h, &cap, MARGIN, 30 + (k + 1) * LINE_H - 4, " fill='#555'", notes[k]);

	/* Column labels, rotated about their anchor just above the grid. */
	for (size_t j = 0; j < h->ncols; j++) {
		int x = left + (int)j * CELL + CELL / 2 + 4, y = top - 8;
		int l = text_w(h->cols[j].label);

		tgvm_buf_printf(&b, "<text transform='translate(%d,%d) rotate(-60)'>", x, y);
		tgvm_buf_xml(&b, h->cols[j].label);
		tgvm_buf_printf(&b, "<title>%s, %zu entr%s</title></text>\n",
		                tgvm_vendor_to_string(h->cols[j].vendor), h->cols[j].entries,
		                h->cols[j].entries == 1 ? "y" : "ies");
		box_add(h, &cap, x - 6, y - l * 87 / 100 - 4, l / 2 + 12, l * 87 / 100 + 4, true);
	}
	x0 = left + grid_w;
	text_line(&b, h, &cap, x0 + 12, top - 8, " font-weight='bold'", "baseline");
	text_line(&b, h, &cap, x0 + 12 + SHARE_W, top - 8, " font-weight='bold'", "minimal");

	for (size_t i = 0; i < h->nrows; i++) {
		const struct tgvm_heat_row *w = &h->rows[i];
		char *req = tgvm_featureset_to_string(&w->required, " ");

		y = top + (int)i * CELL;
		tgvm_buf_printf(&b, "<text x='%d' y='%d' text-anchor='end'>", left - 8, y + 15);
		tgvm_buf_xml(&b, w->label);
		tgvm_buf_printf(&b, "<title>%zu VM%s requiring ", w->vms, w->vms == 1 ? "" : "s");
		tgvm_buf_xml(&b, req && *req ? req : "the x86-64 baseline");
		tgvm_buf_printf(&b, "</title></text>\n");
		box_add(h, &cap, left - 8 - text_w(w->label), y + 3, text_w(w->label), 16, true);
		for (size_t j = 0; j < h->ncols; j++) {
			unsigned kind = h->cells[i * h->ncols + j];

			tgvm_buf_printf(&b,
			                "<rect x='%d' y='%d' width='%d' height='%d' fill='%s' "
			                "stroke='#ffffff'><title>",
			                left + (int)j * CELL, y, CELL, CELL, kinds[kind].colour);
			tgvm_buf_xml(&b, w->label);
			tgvm_buf_printf(&b, " on ");
			tgvm_buf_xml(&b, h->cols[j].label);
			tgvm_buf_printf(&b, ": %s</title></rect>\n", kinds[kind].label);
			box_add(h, &cap, left + (int)j * CELL, y, CELL, CELL, false);
		}
		free(req);
		for (int q = TGVM_POLICY_BASELINE; q <= TGVM_POLICY_MINIMAL; q++) {
			char s[32];

			if (!w->runs)
				snprintf(s, sizeof(s), "-");
			else
				snprintf(s, sizeof(s), "%.1f%%",
				         h->machines
				             ? 100.0 * (double)w->machines[q] / (double)h->machines
				             : 0.0);
			text_line(&b, h, &cap, x0 + 12 + (q - TGVM_POLICY_BASELINE) * SHARE_W,
			          y + 15, "", s);
		}
	}

	/* The legend: only what a cell shows, one line each. */
	y = top + (int)h->nrows * CELL + 16;
	for (unsigned k = 0; k < TGVM_HEAT__MAX; k++) {
		if (!(h->kinds & (1u << k)))
			continue;
		tgvm_buf_printf(&b,
		                "<rect x='%d' y='%d' width='14' height='14' fill='%s' "
		                "stroke='#999999'/>\n",
		                MARGIN, y, kinds[k].colour);
		box_add(h, &cap, MARGIN, y, 14, 14, false);
		text_line(&b, h, &cap, MARGIN + 20, y + 12, "", kinds[k].label);
		y += 20;
	}
	if (tgvm_buf_printf(&b, "</svg>\n") < 0) {
		tgvm_buf_release(&b);
		return NULL;
	}
	return b.data;
}
