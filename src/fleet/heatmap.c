// SPDX-License-Identifier: MIT
/*
 * The fleet heat map: one row per VM, one column per inventory entry, each
 * cell coloured by which policies let the VM run there, written as SVG.
 */
#include <stdlib.h>
#include <string.h>

#include "tgvm/fleet.h"
#include "util/util.h"

#define CELL  22
#define LEFT  170
#define TOP   150
#define RIGHT 230

/* The colour of a cell: the richest policy that still allows the VM there. */
static const char *cell_colour(uint8_t bits)
{
	if (bits & (1u << TGVM_POLICY_PASSTHROUGH))
		return "#1a7f37"; /* even passthrough: same CPU as its first host */
	if (bits & (1u << TGVM_POLICY_MINIMAL) && bits & (1u << TGVM_POLICY_BASELINE))
		return "#4ac26b"; /* minimal and baseline */
	if (bits & (1u << TGVM_POLICY_MINIMAL))
		return "#2f81f7"; /* only tgvm's minimal model */
	if (bits & (1u << TGVM_POLICY_BASELINE))
		return "#d4a72c"; /* only by masking to the fleet baseline */
	return "#e6e6e6";
}

char *tgvm_fleet_heatmap_svg(const struct tgvm_inventory *inv, const struct tgvm_vm_needs *vms,
                             size_t nvms, const uint8_t *matrix)
{
	struct tgvm_buf b;
	uint64_t total = tgvm_inventory_total(inv);
	int width = LEFT + (int)inv->n * CELL + RIGHT, height = TOP + (int)nvms * CELL + 90;
	static const struct {
		uint8_t bits;
		const char *label;
	} legend[] = {
	    {1u << TGVM_POLICY_PASSTHROUGH, "passthrough too"},
	    {(1u << TGVM_POLICY_MINIMAL) | (1u << TGVM_POLICY_BASELINE), "minimal and baseline"},
	    {1u << TGVM_POLICY_MINIMAL, "only minimal (tgvm)"},
	    {1u << TGVM_POLICY_BASELINE, "only baseline (masked)"},
	    {0, "cannot run"},
	};

	if (width < 20 + (int)ARRAY_SIZE(legend) * 175)
		width = 20 + (int)ARRAY_SIZE(legend) * 175;
	tgvm_buf_init(&b);
	tgvm_buf_printf(
	    &b,
	    "<?xml version='1.0' encoding='UTF-8'?>\n"
	    "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
	    "font-family='DejaVu Sans, Helvetica, Arial, sans-serif' font-size='12'>\n"
	    "<rect width='100%%' height='100%%' fill='white'/>\n"
	    "<text x='10' y='22' font-size='16' font-weight='bold'>Where each VM may run "
	    "and move</text>\n"
	    "<text x='10' y='40' fill='#555'>rows: VMs; columns: hosts (count); right: share "
	    "of the %llu machines under baseline / minimal</text>\n",
	    width, height, (unsigned long long)total);
	for (size_t j = 0; j < inv->n; j++) {
		int x = LEFT + (int)j * CELL + CELL / 2 + 4, y = TOP - 8;

		tgvm_buf_printf(&b, "<text transform='translate(%d,%d) rotate(-60)'>", x, y);
		tgvm_buf_xml(&b, inv->hosts[j].name);
		tgvm_buf_printf(&b, " (%llu)</text>\n", (unsigned long long)inv->hosts[j].count);
	}
	tgvm_buf_printf(&b, "<text x='%d' y='%d' font-weight='bold'>baseline</text>\n",
	                LEFT + (int)inv->n * CELL + 12, TOP - 8);
	tgvm_buf_printf(&b, "<text x='%d' y='%d' font-weight='bold'>minimal</text>\n",
	                LEFT + (int)inv->n * CELL + 100, TOP - 8);
	for (size_t i = 0; i < nvms; i++) {
		int y = TOP + (int)i * CELL;
		uint64_t hb = 0, hm = 0;

		tgvm_buf_printf(&b, "<text x='%d' y='%d' text-anchor='end'>", LEFT - 8, y + 15);
		tgvm_buf_xml(&b, vms[i].name);
		tgvm_buf_printf(&b, "</text>\n");
		for (size_t j = 0; j < inv->n; j++) {
			uint8_t bits = matrix[i * inv->n + j];

			if (bits & (1u << TGVM_POLICY_BASELINE))
				hb += inv->hosts[j].count;
			if (bits & (1u << TGVM_POLICY_MINIMAL))
				hm += inv->hosts[j].count;
			tgvm_buf_printf(&b,
			                "<rect x='%d' y='%d' width='%d' height='%d' fill='%s' "
			                "stroke='white'><title>",
			                LEFT + (int)j * CELL, y, CELL, CELL, cell_colour(bits));
			tgvm_buf_xml(&b, vms[i].name);
			tgvm_buf_printf(&b, " on ");
			tgvm_buf_xml(&b, inv->hosts[j].name);
			tgvm_buf_printf(&b, ": %s%s%s%s</title></rect>\n",
			                bits & 1u << TGVM_POLICY_PASSTHROUGH ? "passthrough " : "",
			                bits & 1u << TGVM_POLICY_BASELINE ? "baseline " : "",
			                bits & 1u << TGVM_POLICY_MINIMAL ? "minimal" : "",
			                bits ? "" : "no policy");
		}
		tgvm_buf_printf(&b, "<text x='%d' y='%d'>%.0f%%</text>\n",
		                LEFT + (int)inv->n * CELL + 12, y + 15,
		                total ? 100.0 * (double)hb / (double)total : 0.0);
		tgvm_buf_printf(&b, "<text x='%d' y='%d'>%.0f%%</text>\n",
		                LEFT + (int)inv->n * CELL + 100, y + 15,
		                total ? 100.0 * (double)hm / (double)total : 0.0);
	}
	for (size_t k = 0; k < ARRAY_SIZE(legend); k++) {
		int x = 10 + (int)k * 175, y = TOP + (int)nvms * CELL + 30;

		tgvm_buf_printf(&b,
		                "<rect x='%d' y='%d' width='14' height='14' fill='%s'/>"
		                "<text x='%d' y='%d'>%s</text>\n",
		                x, y, cell_colour(legend[k].bits), x + 20, y + 12, legend[k].label);
	}
	if (tgvm_buf_printf(&b, "</svg>\n") < 0) {
		tgvm_buf_release(&b);
		return NULL;
	}
	return b.data;
}
