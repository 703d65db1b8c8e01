// SPDX-License-Identifier: MIT
/*
 * `--model auto`: scan what a VM will run (its initramfs, its disk image) and
 * turn the required features into the minimal CPU model, in one call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tgvm/fleet.h"
#include "tgvm/scan.h"

int tgvm_model_auto(const char *const *paths, size_t n_paths, enum tgvm_vendor vendor,
                    char **ret_cpu, struct tgvm_featureset *ret_need, struct tgvm_error *reterr)
{
	struct tgvm_scan_options so = {0};
	struct tgvm_scan_report *rep = NULL;
	struct tgvm_modeldb *db = NULL;
	struct tgvm_model_request req = {.vendor = vendor};
	struct tgvm_model_choice choice;
	const struct tgvm_scan_totals *tot;
	char *cpu = NULL;
	int r;

	if (!n_paths)
		return tgvm_error_set(
		    reterr, EINVAL,
		    "--model auto needs something to scan (an initramfs or a disk)");
	if ((r = tgvm_scan_run(paths, n_paths, &so, &rep, reterr)) < 0)
		goto out;
	tot = tgvm_scan_report_totals(rep);
	if (tot->errors) {
		/* code that could not be read may need more than what was */
		const char *p = "", *m = "";

		tgvm_scan_report_error(rep, 0, &p, &m);
		r = tgvm_error_set(reterr, EINVAL,
		                   "--model auto: the scan of '%s' is incomplete (%s); a model "
		                   "from it could lack what the unread code needs: repair the "
		                   "input or give --model",
		                   paths[0], m);
		goto out;
	}
	if (!tot->elf_files) {
		r = tgvm_error_set(reterr, ENOENT,
		                   "--model auto: no x86-64 program found in '%s' to learn from",
		                   paths[0]);
		goto out;
	}
	req.need = tot->required;
	req.uses = tot->guarded;
	if ((r = tgvm_modeldb_load_default(&db, reterr)) < 0 ||
	    (r = tgvm_model_choose(db, &req, &choice, reterr)) < 0)
		goto out;
	cpu = tgvm_model_qemu_string(&choice);
	if (!cpu) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory");
		goto out;
	}
	if (ret_need)
		*ret_need = tot->required;
	*ret_cpu = cpu;
	r = 0;
out:
	tgvm_modeldb_free(db);
	tgvm_scan_report_free(rep);
	return r;
}
