// SPDX-License-Identifier: MIT
/*
 * The migration timeline as a picture: the whole pipeline (phases and the
 * bytes left in each precopy pass) on top, and the switchover zoomed below,
 * where the vCPU and network blackouts are milliseconds inside seconds.
 * Drawn from the stored JSON form, so a past migration can be drawn too.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tgvm/migrate.h"
#include "util/util.h"

#define W      960
#define LEFT   120
#define RIGHT  40
#define ROW    22
#define PLOT_W (W - LEFT - RIGHT)

static const char *phase_colour(const char *p)
{
	static const struct {
		const char *name, *colour;
	} c[] = {{"check", "#8c959f"},  {"prepare", "#bf8700"},   {"precopy", "#2f81f7"},
	         {"pause", "#cf222e"},  {"last-copy", "#fa4549"}, {"postcopy", "#8250df"},
	         {"switch", "#e16f24"}, {"start", "#1a7f37"},     {"cleanup", "#8c959f"}};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (!strcmp(p, c[i].name))
			return c[i].colour;
	return "#57606a";
}

static double num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* A horizontal axis from @t0 to @t1 ms at height @y, with about eight ticks. */
static void axis(struct tgvm_buf *b, double t0, double t1, int y)
{
	double span = t1 - t0, step = pow(10, floor(log10(span / 8)));

	if (span / step > 20)
		step *= 5;
	else if (span / step > 10)
		step *= 2;
	tgvm_buf_printf(b, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#57606a'/>\n", LEFT, y,
	                LEFT + PLOT_W, y);
	for (double t = ceil(t0 / step) * step; t <= t1 + 1e-9; t += step) {
		double x = LEFT + (t - t0) / span * PLOT_W;

		tgvm_buf_printf(b,
		                "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#57606a'/>"
		                "<text x='%.1f' y='%d' text-anchor='middle'>%g</text>\n",
		                x, y, x, y + 4, x, y + 16, t);
	}
	tgvm_buf_printf(b, "<text x='%d' y='%d' text-anchor='end'>ms</text>\n", LEFT + PLOT_W,
	                y + 30);
}

static void bar(struct tgvm_buf *b, double t0, double t1, double s, double e, int y,
                const char *label, const char *colour, const char *note)
{
	double span = t1 - t0, x0 = LEFT + (s - t0) / span * PLOT_W,
	       x1 = LEFT + (e - t0) / span * PLOT_W;

	if (x0 < LEFT)
		x0 = LEFT;
	if (x1 > LEFT + PLOT_W)
		x1 = LEFT + PLOT_W;
	if (x1 - x0 < 1.5)
		x1 = x0 + 1.5;
	tgvm_buf_printf(b, "<text x='%d' y='%d' text-anchor='end'>", LEFT - 8, y + 15);
	tgvm_buf_xml(b, label);
	tgvm_buf_printf(b,
	                "</text><rect x='%.1f' y='%d' width='%.1f' height='%d' fill='%s'/>"
	                "<text x='%.1f' y='%d' font-size='11'>",
	                x0, y + 3, x1 - x0, ROW - 6, colour,
	                x1 + 4 > LEFT + PLOT_W - 60 ? x0 - 4 : x1 + 4, y + 15);
	tgvm_buf_xml(b, note);
	tgvm_buf_printf(b, "</text>\n");
}

/* Title and the three figures. */
static void svg_header(struct tgvm_buf *b, json_t *j, int h)
{
	json_t *dt = json_object_get(j, "downtime");
	double vcpu = num(dt, "vcpu_blackout_ms"), net = num(dt, "network_blackout_ms");

	tgvm_buf_printf(b,
	                "<?xml version='1.0' encoding='UTF-8'?>\n"
	                "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
	                "font-family='sans-serif' font-size='12'>\n"
	                "<rect width='100%%' height='100%%' fill='white'/>\n"
	                "<text x='%d' y='24' font-size='16' font-weight='bold'>",
	                W, h, LEFT);
	tgvm_buf_printf(b, "tgvm migrate ");
	tgvm_buf_xml(b, json_string_value(json_object_get(j, "vm")) ?: "?");
	tgvm_buf_printf(b, ": ");
	tgvm_buf_xml(b, json_string_value(json_object_get(j, "from")) ?: "?");
	tgvm_buf_printf(b, " \xe2\x86\x92 ");
	tgvm_buf_xml(b, json_string_value(json_object_get(j, "to")) ?: "?");
	tgvm_buf_printf(b, " (");
	tgvm_buf_xml(b, json_string_value(json_object_get(j, "mode")) ?: "?");
	tgvm_buf_printf(b, ", ");
	tgvm_buf_xml(b, json_string_value(json_object_get(j, "status")) ?: "?");
	tgvm_buf_printf(b, ")</text>\n<text x='%d' y='44'>", LEFT);
	tgvm_buf_printf(b, "network blackout ");
	isnan(net) ? tgvm_buf_printf(b, "-") : tgvm_buf_printf(b, "%.1f", net);
	tgvm_buf_printf(b, " ms \xc2\xb7 vCPU blackout ");
	isnan(vcpu) ? tgvm_buf_printf(b, "-") : tgvm_buf_printf(b, "%.1f", vcpu);
	tgvm_buf_printf(b, " ms \xc2\xb7 QEMU downtime ");
	isnan(num(dt, "qemu_ms")) ? tgvm_buf_printf(b, "-")
	                          : tgvm_buf_printf(b, "%.0f", num(dt, "qemu_ms"));
	tgvm_buf_printf(b, " ms \xc2\xb7 pipeline %.0f ms</text>\n", num(j, "pipeline_ms"));
}

/* The whole pipeline: a bar per phase, then the bytes left per pass. Returns the next y;
 * *ret_pause and *ret_start_end get where the switchover is (NAN when it is not). */
static int svg_pipeline(struct tgvm_buf *b, json_t *j, double *ret_pause, double *ret_start_end)
{
	json_t *phases = json_object_get(j, "phases"),
	       *iters = json_object_get(j, "precopy_iterations"), *p;
	double total = num(j, "pipeline_ms"), maxleft = 0;
	char note[96];
	size_t i;
	int y = 60;

	*ret_pause = *ret_start_end = NAN;
	json_array_foreach(phases, i, p)
	{
		const char *name = json_string_value(json_object_get(p, "phase")) ?: "?";
		double s = num(p, "start_ms"), d = num(p, "duration_ms");

		if (isnan(s) || isnan(d))
			continue;
		if (!strcmp(name, "pause"))
			*ret_pause = s;
		if (!strcmp(name, "start") || !strcmp(name, "switch"))
			*ret_start_end = s + d;
		snprintf(note, sizeof(note), "%.1f ms", d);
		bar(b, 0, total, s, s + d, y, name, phase_colour(name), note);
		y += ROW;
	}
	json_array_foreach(iters, i, p)
	{
		double left = num(p, "remaining_bytes");

		if (left > maxleft)
			maxleft = left;
	}
	if (maxleft > 0) {
		int top = y + 6, hh = 50;

		tgvm_buf_printf(b, "<text x='%d' y='%d' text-anchor='end'>MiB left</text>\n",
		                LEFT - 8, top + hh / 2);
		tgvm_buf_printf(
		    b, "<text x='%d' y='%d' text-anchor='end' font-size='10'>%.0f</text>\n",
		    LEFT - 8, top + 10, maxleft / 1048576.0);
		tgvm_buf_printf(
		    b, "<polyline fill='none' stroke='#2f81f7' stroke-width='1.5' points='");
		json_array_foreach(iters, i, p)
		{
			double x = LEFT + num(p, "at_ms") / total * PLOT_W,
			       yy = top + hh - num(p, "remaining_bytes") / maxleft * hh;

			if (!isnan(x) && !isnan(yy))
				tgvm_buf_printf(b, "%.1f,%.1f ", x, yy);
		}
		tgvm_buf_printf(b, "'/>\n");
		y = top + hh + 4;
	}
	axis(b, 0, total, y + 4);
	return y;
}

/* The switchover zoomed: its phases, both blackouts, the switch, the cold start. */
static void svg_zoom(struct tgvm_buf *b, json_t *j, double pause_s, double start_e, int zoom_y)
{
	json_t *phases = json_object_get(j, "phases"), *p;
	json_t *dt = json_object_get(j, "downtime"), *np = json_object_get(j, "network_probe");
	double vcpu = num(dt, "vcpu_blackout_ms");
	double gs = num(np, "blackout_start_ms"), ge = num(np, "blackout_end_ms");
	double sw = num(np, "switched_after_stop_ms"), fa = num(np, "blackout_end_after_resume_ms");
	double tb = num(np, "dest_translated_blocks");
	double z0 = pause_s, z1 = isnan(start_e) ? pause_s + 1 : start_e, pad;
	char note[96];
	size_t i;
	int y;

	if (!isnan(gs) && gs < z0)
		z0 = gs;
	if (!isnan(ge) && ge > z1)
		z1 = ge;
	if (!isnan(vcpu) && !isnan(fa) && pause_s + vcpu + fa > z1)
		z1 = pause_s + vcpu + fa;
	pad = (z1 - z0) * 0.15 + 1;
	z0 -= pad;
	z1 += pad;
	tgvm_buf_printf(b, "<text x='%d' y='%d' font-weight='bold'>switchover, zoomed</text>\n",
	                LEFT, zoom_y - 8);
	y = zoom_y;
	json_array_foreach(phases, i, p)
	{
		const char *name = json_string_value(json_object_get(p, "phase")) ?: "?";
		double s = num(p, "start_ms"), d = num(p, "duration_ms");

		if (strcmp(name, "pause") && strcmp(name, "last-copy") && strcmp(name, "switch") &&
		    strcmp(name, "start") && strcmp(name, "postcopy"))
			continue;
		snprintf(note, sizeof(note), "%.1f ms", d);
		bar(b, z0, z1, s, s + d, y, name, phase_colour(name), note);
		y += ROW;
	}
	if (!isnan(vcpu)) {
		snprintf(note, sizeof(note), "%.1f ms (STOP \xe2\x86\x92 RESUME)", vcpu);
		bar(b, z0, z1, pause_s, pause_s + vcpu, y, "vCPU blackout", "#cf222e", note);
		y += ROW;
	}
	if (!isnan(sw)) {
		snprintf(note, sizeof(note), "forwarding replaced %.2f ms after STOP", sw);
		bar(b, z0, z1, pause_s, pause_s + sw, y, "network switch", "#8250df", note);
		y += ROW;
	}
	if (!isnan(gs) && !isnan(ge)) {
		snprintf(note, sizeof(note), "%.1f ms (no UDP reply)", ge - gs);
		bar(b, z0, z1, gs, ge, y, "network blackout", "#6e7781", note);
		y += ROW;
	}
	if (!isnan(vcpu) && !isnan(fa) && fa > 0) {
		if (isnan(tb))
			snprintf(note, sizeof(note), "%.1f ms after RESUME", fa);
		else
			snprintf(note, sizeof(note),
			         "%.1f ms after RESUME (TCG: %.0f code blocks translated)", fa, tb);
		bar(b, z0, z1, pause_s + vcpu, pause_s + vcpu + fa, y, "answers again", "#bf8700",
		    note);
		y += ROW;
	}
	axis(b, z0, z1, y + 4);
}

char *migrate_timeline_svg(json_t *j)
{
	struct tgvm_buf b;
	double pause_s, start_e;
	int y;

	if (!json_is_object(j) || !(num(j, "pipeline_ms") > 0))
		return NULL;
	tgvm_buf_init(&b);
	/* phases, curve, zoom rows */
	svg_header(&b, j,
	           110 + (int)json_array_size(json_object_get(j, "phases")) * ROW + 60 + 60 +
	               9 * ROW + 80);
	y = svg_pipeline(&b, j, &pause_s, &start_e);
	if (!isnan(pause_s))
		svg_zoom(&b, j, pause_s, start_e, y + 50);
	tgvm_buf_printf(&b, "</svg>\n");
	return b.data; /* NULL when memory ran out */
}
