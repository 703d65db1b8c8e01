// SPDX-License-Identifier: MIT
/*
 * The procedure behind `tgvm vm start`: guest, CPU model, host check, memory
 * placement, QEMU; cheap checks first, the scan of model auto after them,
 * and the memory device's space given back when QEMU does not start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tgvm/cpu.h"
#include "tgvm/fleet.h"
#include "tgvm/hostcheck.h"
#include "tgvm/memdev.h"
#include "tgvm/model.h"
#include "tgvm/vmstart.h"
#include "util/util.h"

void tgvm_vm_start_info_init(struct tgvm_vm_start_info *i)
{
	memset(i, 0, sizeof(*i));
}

void tgvm_vm_start_info_release(struct tgvm_vm_start_info *i)
{
	if (!i)
		return;
	free(i->needs);
	if (i->argv)
		tgvm_strv_release(i->argv);
	free(i->argv);
	memset(i, 0, sizeof(*i));
}

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* No kernel and no disk: the bundled guest, running @workload. */
static int use_bundled_guest(struct vm_config *c, const char *workload, struct tgvm_error *reterr)
{
	struct tgvm_guest g;
	char append[768];
	int r;

	if (c->kernel || c->disk)
		return 0;
	snprintf(append, sizeof(append), "%s tgvm.workload=%s", TGVM_GUEST_BASE_APPEND,
	         workload ? workload : "udp-responder");
	if ((r = tgvm_guest_locate(&g, reterr)) < 0)
		return tgvm_error_prefix(reterr,
		                         "no --kernel or --disk given and the bundled guest is not "
		                         "usable");
	if (set_str(&c->kernel, g.kernel) < 0 || set_str(&c->initrd, g.initrd) < 0 ||
	    (!c->append && set_str(&c->append, append) < 0))
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	return 0;
}

/*
 * The CPU model: the user's; else the minimal model from a scan of the
 * initramfs (the bundled guest's included); else the generic 64-bit model
 * of the host's vendor (scanning a whole disk image can take minutes).
 */
static int choose_model(const struct tgvm_vm_start_req *req, const struct tgvm_cpu_model *profile,
                        struct tgvm_vm_start_info *info, struct tgvm_error *reterr)
{
	struct vm_config *c = req->cfg;
	bool model_auto = req->model_auto || (!req->model_given && c->initrd);
	const char *in = c->initrd ? c->initrd : c->disk;
	struct tgvm_featureset need, bl;
	char *cpu = NULL;
	int r;

	if (!model_auto) {
		if (!req->model_given &&
		    set_str(&c->cpu, profile->vendor == TGVM_VENDOR_INTEL ? "kvm64" : "qemu64") < 0)
			return tgvm_error_set(reterr, ENOMEM, "out of memory");
		return 0;
	}
	if ((r = tgvm_model_auto(&in, in ? 1 : 0, profile->vendor, &cpu, &need, reterr)) < 0)
		return r;
	free(c->cpu);
	c->cpu = cpu;
	tgvm_linux_baseline(&bl);
	tgvm_featureset_minus(&need, &bl);
	snprintf(info->scanned, sizeof(info->scanned), "%s", in ? in : "");
	info->needs = tgvm_featureset_to_string(&need, ",");
	return 0;
}

static int dry_run(struct vm_config *c, struct tgvm_vm_start_info *info, struct tgvm_error *reterr)
{
	char dir[4096];
	struct vm_launch l = {.dir = dir};

	info->argv = calloc(1, sizeof(*info->argv));
	if (!info->argv)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	tgvm_strv_init(info->argv);
	vm_dir(c->name, dir, sizeof(dir));
	return vm_qemu_argv(c, &l, info->argv, reterr);
}

int tgvm_vm_start(const struct tgvm_vm_start_req *req, struct tgvm_vm_start_info *ret,
                  struct tgvm_error *reterr)
{
	struct vm_config *c = req->cfg;
	struct tgvm_vm_start_info info;
	struct tgvm_modeldb *db = NULL;
	struct tgvm_cpu_model profile;
	struct vm_host host;
	char dir[4096];
	int r;

	tgvm_vm_start_info_init(&info);
	/* No --machine: the kind the host's inventory names, else the default. */
	if (!c->machine[0] && host_get(c->host, &host, NULL) == 0 &&
	    vm_machine_from_string(host.machine) >= 0)
		snprintf(c->machine, sizeof(c->machine), "%s",
		         vm_machine_qemu(vm_machine_from_string(host.machine)));
	/* Cheap checks first: the name, the sizes, the files, the host. */
	if ((r = use_bundled_guest(c, req->workload, reterr)) < 0 ||
	    (r = vm_config_finish(c, reterr)) < 0)
		goto out;
	if (vm_dir(c->name, dir, sizeof(dir)) == 0 && access(dir, F_OK) == 0 && !req->dry_run) {
		r = tgvm_error_set(reterr, EEXIST, "VM '%s' already exists", c->name);
		goto out;
	}
	if ((r = host_get(c->host, &host, reterr)) < 0 ||
	    (r = tgvm_modeldb_load_default(&db, reterr)) < 0 ||
	    (r = tgvm_host_profile(&host, c->accel, db, TGVM_VENDOR_UNKNOWN, &profile, reterr)) < 0)
		goto out;
	/* Then the model (a scan), and whether the host can present it. */
	if ((r = choose_model(req, &profile, &info, reterr)) < 0 ||
	    (r = tgvm_host_check_cpu(c, &host, NULL, reterr)) < 0)
		goto out;
	if (req->dry_run) {
		r = dry_run(c, &info, reterr);
		goto out;
	}
	/* Guest RAM on a shared memory device (nil-migration): place it first. */
	if (req->memdev && (r = tgvm_memdev_place(c, req->memdev, reterr)) < 0)
		goto out;
	if ((r = vm_start(c, reterr)) < 0 && c->mem_file)
		vm_memdev_free(c->mem_file);
out:
	tgvm_modeldb_free(db);
	if (r < 0)
		tgvm_vm_start_info_release(&info);
	else
		*ret = info;
	return r;
}
