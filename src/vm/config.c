// SPDX-License-Identifier: MIT
/*
 * A VM's configuration: validation, derived fields (MAC, tap name), its
 * config.json form, and the QEMU command line built from it. Pure functions:
 * nothing here starts a process or touches the network.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tgvm/vm.h"
#include "vm/vm-int.h"

#define VM_STR_MAX 4096 /* paths, -cpu string, kernel command line */

static const char *const machine_names[VM_MACHINE__MAX] = {
    [VM_MACHINE_Q35] = "q35",
    [VM_MACHINE_PC] = "pc",
    [VM_MACHINE_MICROVM] = "microvm",
};

static const char *const machine_qemu[VM_MACHINE__MAX] = {
    [VM_MACHINE_Q35] = "q35,sata=off,smbus=off",
    [VM_MACHINE_PC] = "pc",
    [VM_MACHINE_MICROVM] = "microvm",
};

const char *vm_machine_to_string(enum vm_machine m)
{
	return m < VM_MACHINE__MAX ? machine_names[m] : "?";
}

int vm_machine_from_string(const char *s)
{
	for (int i = 0; i < VM_MACHINE__MAX; i++)
		if (!strcmp(s, machine_names[i]))
			return i;
	return -EINVAL;
}

int vm_machine_kind(const char *machine)
{
	size_t n = strcspn(machine, ",");

	for (int i = 0; i < VM_MACHINE__MAX; i++)
		if (strlen(machine_names[i]) == n && !strncmp(machine, machine_names[i], n))
			return i;
	return -EINVAL;
}

const char *vm_machine_qemu(enum vm_machine m)
{
	return m < VM_MACHINE__MAX ? machine_qemu[m] : NULL;
}

const char *vm_machine_ram_id(const char *machine)
{
	return vm_machine_kind(machine) == VM_MACHINE_MICROVM ? "microvm.ram" : "pc.ram";
}

void vm_config_init(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->mem_bytes = 256ull << 20;
	c->cpus = 1;
}

void vm_config_release(struct vm_config *c)
{
	if (!c)
		return;
	free(c->cpu);
	free(c->kernel);
	free(c->initrd);
	free(c->append);
	free(c->disk);
	free(c->mem_file);
	c->cpu = c->kernel = c->initrd = c->append = c->disk = c->mem_file = NULL;
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int vm_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	*dst = *src;
	dst->cpu = dst->kernel = dst->initrd = dst->append = dst->disk = dst->mem_file = NULL;
	if (dup_opt(&dst->cpu, src->cpu) < 0 || dup_opt(&dst->kernel, src->kernel) < 0 ||
	    dup_opt(&dst->mem_file, src->mem_file) < 0 || dup_opt(&dst->initrd, src->initrd) < 0 ||
	    dup_opt(&dst->append, src->append) < 0 || dup_opt(&dst->disk, src->disk) < 0) {
		vm_config_release(dst);
		return -ENOMEM;
	}
	return 0;
}

void vm_mac_from_name(const char *name, char ret[18])
{
	uint32_t h = vm_fnv1a(name);

	snprintf(ret, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

static int check_file(const char *what, const char *path, struct tgvm_error *reterr)
{
	if (strlen(path) >= VM_STR_MAX)
		return tgvm_error_set(reterr, ENAMETOOLONG, "%s path is too long", what);
	if (access(path, R_OK) < 0)
		return tgvm_error_set(reterr, errno, "cannot read %s '%s': %s", what, path,
		                      strerror(errno));
	return 0;
}

/* The machine: a known kind, one QEMU option value, and what the kind can do. */
static int check_machine(const struct vm_config *c, struct tgvm_error *reterr)
{
	int kind = vm_machine_kind(c->machine);

	if (kind < 0)
		return tgvm_error_set(reterr, EINVAL,
		                      "VM '%s': unknown machine '%s' (q35, pc or microvm)", c->name,
		                      c->machine);
	for (const char *p = c->machine; *p; p++)
		if ((unsigned char)*p <= ' ')
			return tgvm_error_set(reterr, EINVAL, "VM '%s': machine '%s' has a blank",
			                      c->name, c->machine);
	if (kind == VM_MACHINE_MICROVM && c->disk)
		return tgvm_error_set(reterr, EINVAL,
		                      "VM '%s': the microvm machine boots a kernel (--kernel), not "
		                      "a disk image: it has no firmware that reads disks",
		                      c->name);
	return 0;
}

int vm_config_finish(struct vm_config *c, struct tgvm_error *reterr)
{
	int r;

	if ((r = tgvm_name_check("VM", c->name, reterr)) < 0)
		return r;
	if ((r = tgvm_name_check("host", c->host, reterr)) < 0)
		return r;
	if (c->mem_bytes < TGVM_VM_MEM_MIN || c->mem_bytes > TGVM_VM_MEM_MAX ||
	    c->mem_bytes % (1u << 20))
		return tgvm_error_set(reterr, EINVAL,
		                      "VM '%s': memory must be whole MiB between 64 MiB and 64 GiB",
		                      c->name);
	if (c->cpus < 1 || c->cpus > TGVM_VM_CPUS_MAX)
		return tgvm_error_set(reterr, EINVAL, "VM '%s': cpus must be 1 to %d", c->name,
		                      TGVM_VM_CPUS_MAX);
	if (!c->kernel && !c->disk)
		return tgvm_error_set(reterr, EINVAL, "VM '%s': needs a kernel or a disk image",
		                      c->name);
	if (c->kernel && c->disk)
		return tgvm_error_set(reterr, EINVAL,
		                      "VM '%s': give a kernel or a disk image, not both", c->name);
	if ((c->initrd || c->append) && !c->kernel)
		return tgvm_error_set(reterr, EINVAL,
		                      "VM '%s': --initrd and --append need --kernel", c->name);
	if (c->kernel && (r = check_file("kernel", c->kernel, reterr)) < 0)
		return r;
	if (c->initrd && (r = check_file("initrd", c->initrd, reterr)) < 0)
		return r;
	if (c->disk && (r = check_file("disk image", c->disk, reterr)) < 0)
		return r;
	if ((c->append && strlen(c->append) >= VM_STR_MAX) || (c->cpu && strlen(c->cpu) >= 1024))
		return tgvm_error_set(reterr, E2BIG, "VM '%s': command line or -cpu too long",
		                      c->name);
	if (c->cpu) /* a -cpu string is one QEMU option value: no spaces or control bytes */
		for (const char *p = c->cpu; *p; p++)
			if ((unsigned char)*p <= ' ')
				return tgvm_error_set(reterr, EINVAL,
				                      "VM '%s': CPU model '%s' has a blank",
				                      c->name, c->cpu);
	if ((r = vm_config_check_memdev(c, reterr)) < 0)
		return r;
	if (c->ip[0] && !tgvm_net_addr_ok(c->ip))
		return tgvm_error_set(reterr, EINVAL,
		                      "VM '%s': address '%s' is not in 198.18.0.0/15", c->name,
		                      c->ip);
	if (!c->mac[0])
		vm_mac_from_name(c->name, c->mac);
	if (!c->tap[0])
		snprintf(c->tap, sizeof(c->tap), "tv%08x", vm_fnv1a(c->name));
	if (!c->machine[0])
		snprintf(c->machine, sizeof(c->machine), "%s",
		         vm_machine_qemu(VM_MACHINE_DEFAULT_KIND));
	if ((r = check_machine(c, reterr)) < 0)
		return r;
	if (c->accel[0] && vm_accel_from_string(c->accel) < 0)
		return tgvm_error_set(reterr, EINVAL, "VM '%s': unknown accelerator '%s'", c->name,
		                      c->accel);
	return 0;
}

json_t *vm_config_to_json(const struct vm_config *c)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:i, s:s, s:s, s:s, s:s, s:s, s:s}", "name", c->name,
	                      "host", c->host, "mem_bytes", (json_int_t)c->mem_bytes, "cpus",
	                      c->cpus, "cpu", c->cpu ? c->cpu : "qemu64", "mac", c->mac, "ip",
	                      c->ip, "tap", c->tap, "accel", c->accel, "machine", c->machine);
	int kind = vm_machine_kind(c->machine);

	if (!j)
		return NULL;
	/* The kind alone, for readers; "machine" is what QEMU is given. */
	json_object_set_new(j, "machine_kind",
	                    kind >= 0 ? json_string(vm_machine_to_string(kind)) : json_null());
	json_object_set_new(j, "guest_announce", json_boolean(c->guest_announce));
	if (c->kernel)
		json_object_set_new(j, "kernel", json_string(c->kernel));
	if (c->initrd)
		json_object_set_new(j, "initrd", json_string(c->initrd));
	if (c->append)
		json_object_set_new(j, "append", json_string(c->append));
	if (c->disk)
		json_object_set_new(j, "disk", json_string(c->disk));
	if (c->memdev[0] && c->mem_file) {
		json_object_set_new(j, "memdev", json_string(c->memdev));
		json_object_set_new(j, "mem_file", json_string(c->mem_file));
	}
	return j;
}

static int get_str(json_t *j, const char *key, char *buf, size_t size, bool required,
                   struct tgvm_error *reterr)
{
	json_t *v = json_object_get(j, key);
	const char *s = json_string_value(v);

	if (!v && !required) {
		buf[0] = '\0';
		return 0;
	}
	if (!s || strlen(s) >= size)
		return tgvm_error_set(reterr, EINVAL, "config: '%s' is missing or too long", key);
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

static int get_dup(json_t *j, const char *key, char **ret, struct tgvm_error *reterr)
{
	json_t *v = json_object_get(j, key);

	*ret = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= VM_STR_MAX)
		return tgvm_error_set(reterr, EINVAL, "config: '%s' is not a string", key);
	*ret = strdup(json_string_value(v));
	return *ret ? 0 : tgvm_error_set(reterr, ENOMEM, "out of memory");
}

int vm_config_from_json(json_t *j, struct vm_config *ret, struct tgvm_error *reterr)
{
	struct vm_config c;
	json_t *mem = json_object_get(j, "mem_bytes"), *cpus = json_object_get(j, "cpus");
	int r;

	vm_config_init(&c);
	if (!json_is_object(j)) {
		r = tgvm_error_set(reterr, EINVAL, "config: not a JSON object");
		goto fail;
	}
	if ((r = get_str(j, "name", c.name, sizeof(c.name), true, reterr)) < 0 ||
	    (r = get_str(j, "host", c.host, sizeof(c.host), true, reterr)) < 0 ||
	    (r = get_str(j, "mac", c.mac, sizeof(c.mac), false, reterr)) < 0 ||
	    (r = get_str(j, "ip", c.ip, sizeof(c.ip), false, reterr)) < 0 ||
	    (r = get_str(j, "tap", c.tap, sizeof(c.tap), false, reterr)) < 0 ||
	    (r = get_str(j, "accel", c.accel, sizeof(c.accel), false, reterr)) < 0 ||
	    (r = get_str(j, "machine", c.machine, sizeof(c.machine), false, reterr)) < 0 ||
	    (r = get_dup(j, "cpu", &c.cpu, reterr)) < 0 ||
	    (r = get_dup(j, "kernel", &c.kernel, reterr)) < 0 ||
	    (r = get_dup(j, "initrd", &c.initrd, reterr)) < 0 ||
	    (r = get_dup(j, "append", &c.append, reterr)) < 0 ||
	    (r = get_dup(j, "disk", &c.disk, reterr)) < 0 ||
	    (r = get_str(j, "memdev", c.memdev, sizeof(c.memdev), false, reterr)) < 0 ||
	    (r = get_dup(j, "mem_file", &c.mem_file, reterr)) < 0)
		goto fail;
	/* A VM stored before the field existed runs with QEMU's default (on): its
	 * destination must offer the same virtio-net features. */
	json_t *ga = json_object_get(j, "guest_announce");
	if (ga && !json_is_boolean(ga)) {
		r = tgvm_error_set(reterr, EINVAL,
		                   "config: 'guest_announce' must be true or false");
		goto fail;
	}
	c.guest_announce = !ga || json_is_true(ga);
	/* "machine_kind" came later than "machine" and is derived from it: an
	 * older config without it is read from "machine" alone. */
	json_t *kind = json_object_get(j, "machine_kind");
	if (!c.machine[0])
		snprintf(c.machine, sizeof(c.machine), "%s",
		         vm_machine_qemu(VM_MACHINE_DEFAULT_KIND));
	if ((r = check_machine(&c, reterr)) < 0 ||
	    (kind && !json_is_null(kind) &&
	     (!json_is_string(kind) ||
	      vm_machine_from_string(json_string_value(kind)) != vm_machine_kind(c.machine)))) {
		if (r >= 0)
			r = tgvm_error_set(reterr, EINVAL,
			                   "config: 'machine_kind' does not match 'machine' '%s'",
			                   c.machine);
		goto fail;
	}
	if ((r = vm_config_check_memdev(&c, reterr)) < 0)
		goto fail;
	if (!json_is_integer(mem) || json_integer_value(mem) <= 0 || !json_is_integer(cpus) ||
	    json_integer_value(cpus) <= 0 || json_integer_value(cpus) > TGVM_VM_CPUS_MAX) {
		r = tgvm_error_set(reterr, EINVAL, "config: bad 'mem_bytes' or 'cpus'");
		goto fail;
	}
	c.mem_bytes = (uint64_t)json_integer_value(mem);
	c.cpus = (int)json_integer_value(cpus);
	if ((r = tgvm_name_check("VM", c.name, reterr)) < 0 ||
	    (r = tgvm_name_check("host", c.host, reterr)) < 0)
		goto fail;
	if (c.mem_bytes < TGVM_VM_MEM_MIN || c.mem_bytes > TGVM_VM_MEM_MAX) {
		r = tgvm_error_set(reterr, EINVAL, "config: memory out of range");
		goto fail;
	}
	*ret = c;
	return 0;
fail:
	vm_config_release(&c);
	return r;
}

int vm_qemu_argv(const struct vm_config *c, const struct vm_launch *l, struct tgvm_strv *ret,
                 struct tgvm_error *reterr)
{
	struct tgvm_strv *v = ret;
	int r = 0;

	if (!c->tap[0] || !c->mac[0] || !c->machine[0])
		return tgvm_error_set(reterr, EINVAL, "VM '%s': configuration not finished",
		                      c->name);
#define PUSH(s)                                                                                    \
	do {                                                                                       \
		if ((r = tgvm_strv_push(v, (s))) < 0)                                              \
			goto oom;                                                                  \
	} while (0)
#define PUSHF(...)                                                                                 \
	do {                                                                                       \
		if ((r = tgvm_strv_pushf(v, __VA_ARGS__)) < 0)                                     \
			goto oom;                                                                  \
	} while (0)
	PUSH(vm_qemu_binary());
	PUSH("-name");
	PUSHF("%s,debug-threads=on", c->name);
	PUSH("-machine");
	if (c->mem_file) {
		/* Guest RAM on the memory device (vm/memdev.c); the id keeps the RAM
		 * block's name ("pc.ram"), so private and shared QEMUs migrate to each other. */
		const char *ram_id = vm_machine_ram_id(c->machine);

		PUSHF("%s,memory-backend=%s", c->machine, ram_id);
		PUSH("-object");
		PUSHF("memory-backend-file,id=%s,mem-path=%s,size=%" PRIu64 "M,share=on", ram_id,
		      c->mem_file, c->mem_bytes >> 20);
		/* Timestamps on QEMU's trace lines: where a handoff's blackout goes. */
		PUSH("-msg");
		PUSH("timestamp=on");
	} else {
		PUSH(c->machine);
	}
	PUSH("-accel");
	PUSH(c->accel[0] ? c->accel : "tcg");
	PUSH("-cpu");
	PUSH(c->cpu ? c->cpu : "qemu64");
	PUSH("-m");
	PUSHF("%" PRIu64 "M", c->mem_bytes >> 20);
	PUSH("-smp");
	PUSHF("%d", c->cpus);
	PUSH("-nodefaults");
	/* No TPR patching option ROM (it helps old Windows under KVM only); its
	 * state was one of the slowest sections to load at a handoff. */
	PUSH("-global");
	PUSH("apic-common.vapic=off");
	PUSH("-no-user-config");
	PUSH("-display");
	PUSH("none");
	PUSH("-chardev");
	PUSHF("socket,id=qmp,path=%s/qmp.sock,server=on,wait=off", l->dir);
	PUSH("-mon");
	PUSH("chardev=qmp,mode=control");
	PUSH("-chardev");
	if (l->serial_log)
		PUSHF("socket,id=ser0,path=%s/console.sock,server=on,wait=off,logfile=%s,"
		      "logappend=on",
		      l->dir, l->serial_log);
	else
		PUSHF("socket,id=ser0,path=%s/console.sock,server=on,wait=off,"
		      "logfile=%s/serial.log,logappend=on",
		      l->dir, l->dir);
	PUSH("-serial");
	PUSH("chardev:ser0");
	PUSH("-netdev");
	PUSHF("tap,id=net0,ifname=%s,script=no,downscript=no", c->tap);
	PUSH("-device");
	if (vm_machine_kind(c->machine) == VM_MACHINE_MICROVM) /* no PCI, no option ROM */
		PUSHF("virtio-net-device,netdev=net0,mac=%s%s", c->mac,
		      c->guest_announce ? "" : ",guest_announce=off");
	else
		PUSHF("virtio-net-pci,netdev=net0,mac=%s,romfile=%s", c->mac,
		      c->guest_announce ? "" : ",guest_announce=off");
	if (c->kernel) {
		PUSH("-kernel");
		PUSH(c->kernel);
		if (c->initrd) {
			PUSH("-initrd");
			PUSH(c->initrd);
		}
		PUSH("-append");
		{
			const char *a = c->append ? c->append : VM_APPEND_DEFAULT;

			if (c->ip[0] && !strstr(a, "tgvm.ip="))
				PUSHF("%s tgvm.ip=%s/%d", a, c->ip, TGVM_NET_PREFIX);
			else
				PUSH(a);
		}
	} else {
		PUSH("-drive");
		PUSHF("file=%s,if=virtio,cache=none,format=%s", c->disk,
		      strstr(c->disk, ".qcow2") ? "qcow2" : "raw");
	}
	PUSH("-pidfile");
	PUSHF("%s/pid", l->dir);
	PUSH("-daemonize");
	if (l->incoming) {
		PUSH("-incoming");
		PUSH("defer");
	}
	return 0;
oom:
	return tgvm_error_set(reterr, -r, "out of memory");
#undef PUSH
#undef PUSHF
}
