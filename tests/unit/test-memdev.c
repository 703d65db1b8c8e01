// SPDX-License-Identifier: MIT
/*
 * Unit tests of memory devices: the inventory's "memdevs" (validation,
 * migration domains), capacity accounting and leases on a scratch device
 * under /dev/shm, and the QEMU command line of a VM on a device.
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
#include <sys/vfs.h>
#include <unistd.h>
#include <cmocka.h>

#include "tgvm/config.h"
#include "tgvm/memdev.h"
#include "util/util.h"

#define HOSTS                                                                                      \
	"\"hosts\": [{\"name\": \"a\"}, {\"name\": \"b\"}, {\"name\": \"c\"}, {\"name\": \"d\"}]"

static int parse(const char *text, struct tgvm_memdevs *m, struct tgvm_error *err)
{
	json_t *j = json_loads(text, 0, NULL);
	int r;

	assert_non_null(j);
	r = tgvm_memdevs_from_json(j, "inv.json", m, err);
	json_decref(j);
	return r;
}

static void test_inventory(void **state)
{
	struct tgvm_memdevs m = {0};
	struct tgvm_error err = {0};

	(void)state;
	/* Two devices sharing host b form one domain; d's device is another. */
	assert_int_equal(
	    parse("{" HOSTS ", \"memdevs\": ["
	          "{\"name\": \"x\", \"capacity\": \"1G\", \"hosts\": [\"a\", \"b\"]},"
	          "{\"name\": \"y\", \"capacity\": 268435456, \"hosts\": [\"b\", \"c\", \"b\"]},"
	          "{\"name\": \"z\", \"capacity\": \"64M\", \"hosts\": [\"d\"], \"path\": "
	          "\"/dev/shm/z\"}]}",
	          &m, &err),
	    0);
	assert_int_equal(m.n, 3);
	assert_int_equal(m.n_domains, 2);
	assert_int_equal(m.v[0].domain, m.v[1].domain);
	assert_int_not_equal(m.v[0].domain, m.v[2].domain);
	assert_int_equal(m.v[0].capacity, 1ull << 30);
	assert_int_equal(m.v[1].n_hosts, 2); /* the repeated host counts once */
	assert_string_equal(m.v[2].path, "/dev/shm/z");
	assert_true(tgvm_memdev_has_host(tgvm_memdevs_find(&m, "y"), "c"));
	assert_false(tgvm_memdev_has_host(tgvm_memdevs_find(&m, "x"), "c"));
	assert_null(tgvm_memdevs_find(&m, "w"));
	tgvm_memdevs_release(&m);

	/* No "memdevs": an empty list. */
	assert_int_equal(parse("{" HOSTS "}", &m, &err), 0);
	assert_int_equal(m.n, 0);
	tgvm_memdevs_release(&m);

	assert_int_equal(parse("{" HOSTS ", \"memdevs\": [{\"name\": \"x\", \"capacity\": \"1G\", "
	                       "\"hosts\": [\"q\"]}]}",
	                       &m, &err),
	                 -ENOENT);
	assert_non_null(strstr(err.msg, "host 'q' is not in the inventory"));
	assert_int_equal(parse("{" HOSTS
	                       ", \"memdevs\": [{\"name\": \"x\", \"capacity\": \"lots\", "
	                       "\"hosts\": [\"a\"]}]}",
	                       &m, &err),
	                 -EINVAL);
	assert_non_null(strstr(err.msg, "\"capacity\""));
	assert_int_equal(parse("{" HOSTS ", \"memdevs\": [{\"name\": \"x\", \"capacity\": \"1G\", "
	                       "\"hosts\": [\"a\"]}, {\"name\": \"x\", \"capacity\": \"1G\", "
	                       "\"hosts\": [\"b\"]}]}",
	                       &m, &err),
	                 -EEXIST);
	assert_int_equal(parse("{" HOSTS ", \"memdevs\": [{\"name\": \"x\", \"capacity\": \"1G\", "
	                       "\"hosts\": [\"a\"], \"path\": \"/dev/shm/a,b\"}]}",
	                       &m, &err),
	                 -EINVAL);
	assert_int_equal(parse("{" HOSTS ", \"memdevs\": [{\"name\": \"x\", \"capacity\": \"1G\", "
	                       "\"hosts\": []}]}",
	                       &m, &err),
	                 -EINVAL);
}

struct scratch {
	char state[256];
	char dev[256];
};

static int setup(void **state)
{
	struct scratch *s = calloc(1, sizeof(*s));
	struct statfs sf;

	if (!s)
		return -1;
	snprintf(s->state, sizeof(s->state), "/tmp/tgvm-test-memdev-XXXXXX");
	if (!mkdtemp(s->state))
		return -1;
	snprintf(s->dev, sizeof(s->dev), "/dev/shm/tgvm-test-memdev-%d", (int)getpid());
	tgvm_config_set(&(struct tgvm_config){.state_dir = s->state});
	*state = s;
	if (statfs("/dev/shm", &sf) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	struct scratch *s = *state;

	vm_rm_rf(s->dev);
	vm_rm_rf(s->state);
	free(s);
	return 0;
}

/* A VM "exists" for the device's bookkeeping when its state directory does. */
static void make_vm_dir(const struct scratch *s, const char *vm)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/vms/%s", s->state, vm);
	assert_int_equal(tgvm_mkdir_p(p, NULL), 0);
}

static void test_capacity_and_leases(void **state)
{
	struct scratch *s = *state;
	struct vm_memdev d;
	struct vm_memdev_lease l, l2;
	struct tgvm_error err = {0};
	char f1[512], f2[512], f3[512];
	uint64_t used = 0;
	size_t vms = 0;
	struct stat st;

	assert_int_equal(vm_memdev_open("cxl", "/tmp/not-shm", 256ull << 20, &d, &err), -EINVAL);
	assert_int_equal(vm_memdev_open("cxl", s->dev, 256ull << 20, &d, &err), 0);
	make_vm_dir(s, "v1");
	make_vm_dir(s, "v2");
	make_vm_dir(s, "v3");
	assert_int_equal(vm_memdev_alloc(&d, "v1", "a", 128ull << 20, f1, sizeof(f1), &err), 0);
	assert_int_equal(stat(f1, &st), 0);
	assert_int_equal(st.st_size, 128ll << 20);
	assert_true(st.st_blocks == 0); /* sparse until the guest touches it */
	assert_int_equal(vm_memdev_alloc(&d, "v1", "a", 64ull << 20, f3, sizeof(f3), &err),
	                 -EEXIST);
	assert_int_equal(vm_memdev_alloc(&d, "v2", "a", 128ull << 20, f2, sizeof(f2), &err), 0);
	assert_int_equal(vm_memdev_alloc(&d, "v3", "b", 64ull << 20, f3, sizeof(f3), &err),
	                 -ENOSPC);
	assert_non_null(strstr(err.msg, "memory device 'cxl' is full: 256 MiB of 256 MiB used, "
	                                "VM 'v3' needs 64 MiB"));
	assert_int_equal(vm_memdev_usage(&d, &used, &vms, &err), 0);
	assert_int_equal(used, 256ull << 20);
	assert_int_equal(vms, 2);

	/* A VM whose state directory is gone no longer holds space. */
	snprintf(f3, sizeof(f3), "%s/vms/v2", s->state);
	assert_int_equal(vm_rm_rf(f3), 0);
	assert_int_equal(vm_memdev_usage(&d, &used, &vms, &err), 0);
	assert_int_equal(used, 128ull << 20);
	assert_int_equal(access(f2, F_OK), -1);

	/* The lease: one holder at a time, the host moves with the generation. */
	assert_int_equal(vm_memdev_lease_lock(f1, &l, &err), 0);
	assert_string_equal(l.host, "a");
	assert_int_equal(l.generation, 1);
	assert_int_equal(vm_memdev_lease_lock(f1, &l2, &err), -EBUSY);
	assert_int_equal(vm_memdev_lease_move(&l, "b", &err), 0);
	vm_memdev_lease_unlock(&l);
	assert_int_equal(vm_memdev_lease_lock(f1, &l2, &err), 0);
	assert_string_equal(l2.host, "b");
	assert_int_equal(l2.generation, 2);
	vm_memdev_lease_unlock(&l2);

	assert_int_equal(vm_memdev_free(f1), 0);
	assert_int_equal(vm_memdev_usage(&d, &used, &vms, &err), 0);
	assert_int_equal(used, 0);
	assert_int_equal(vms, 0);
}

static void test_qemu_argv(void **state)
{
	struct vm_config c;
	struct vm_launch l = {.dir = "/run/x"};
	struct tgvm_strv v;
	struct tgvm_error err = {0};
	bool machine = false, object = false;

	(void)state;
	vm_config_init(&c);
	snprintf(c.name, sizeof(c.name), "v");
	snprintf(c.host, sizeof(c.host), "a");
	c.kernel = strdup("/proc/self/exe");
	c.mem_bytes = 128ull << 20;
	snprintf(c.memdev, sizeof(c.memdev), "cxl");
	assert_int_equal(vm_config_finish(&c, &err), -EINVAL); /* a name without a file */
	c.mem_file = strdup("/dev/shm/d/v.ram");
	assert_int_equal(vm_config_finish(&c, &err), 0);
	tgvm_strv_init(&v);
	assert_int_equal(vm_qemu_argv(&c, &l, &v, &err), 0);
	for (size_t i = 0; i < v.n; i++) {
		if (!strcmp(v.v[i], "q35,sata=off,smbus=off,memory-backend=pc.ram"))
			machine = true;
		if (!strcmp(v.v[i], "memory-backend-file,id=pc.ram,mem-path=/dev/shm/d/v.ram,"
		                    "size=128M,share=on"))
			object = true;
	}
	assert_true(machine);
	assert_true(object);
	tgvm_strv_release(&v);
	/* config.json keeps both, and a file path with a comma is refused. */
	json_t *j = vm_config_to_json(&c);
	struct vm_config back;

	assert_int_equal(vm_config_from_json(j, &back, &err), 0);
	assert_string_equal(back.memdev, "cxl");
	assert_string_equal(back.mem_file, "/dev/shm/d/v.ram");
	assert_false(back.guest_announce);
	vm_config_release(&back);
	json_object_set_new(j, "mem_file", json_string("/dev/shm/a,b"));
	assert_int_equal(vm_config_from_json(j, &back, &err), -EINVAL);
	json_decref(j);
	vm_config_release(&c);
}

static bool strv_has(const struct tgvm_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i], s))
			return true;
	return false;
}

static bool strv_has_prefix(const struct tgvm_strv *v, const char *s)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strncmp(v->v[i], s, strlen(s)))
			return true;
	return false;
}

/* Machine kinds: each kind's -machine and NIC; microvm has no PCI (its NIC is
 * virtio-mmio) and boots no disk image; config.json records the kind, and a
 * config from before "machine_kind" existed still loads. */
static void test_machine_kinds(void **state)
{
	static const struct {
		const char *kind, *machine, *nic;
	} want[] = {
	    {"q35", "q35,sata=off,smbus=off", "virtio-net-pci,"},
	    {"pc", "pc", "virtio-net-pci,"},
	    {"microvm", "microvm", "virtio-net-device,"},
	};
	struct vm_launch l = {.dir = "/run/x"};
	struct tgvm_error err = {0};

	(void)state;
	/* RAM on a device keeps the machine's own RAM block name (private <-> shared) */
	assert_string_equal(vm_machine_ram_id("q35,sata=off"), "pc.ram");
	assert_string_equal(vm_machine_ram_id("microvm"), "microvm.ram");
	assert_int_equal(vm_machine_from_string("isapc"), -EINVAL);
	assert_int_equal(vm_machine_kind("q35,sata=off"), VM_MACHINE_Q35);
	assert_int_equal(vm_machine_kind("pc-i440fx-10.0"), -EINVAL);
	assert_int_equal(vm_machine_kind("microvm"), VM_MACHINE_MICROVM);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		struct vm_config c, back;
		struct tgvm_strv v;
		json_t *j;

		vm_config_init(&c);
		snprintf(c.name, sizeof(c.name), "v");
		snprintf(c.host, sizeof(c.host), "a");
		c.kernel = strdup("/proc/self/exe");
		snprintf(c.machine, sizeof(c.machine), "%s",
		         vm_machine_qemu(vm_machine_from_string(want[i].kind)));
		assert_int_equal(vm_config_finish(&c, &err), 0);
		tgvm_strv_init(&v);
		assert_int_equal(vm_qemu_argv(&c, &l, &v, &err), 0);
		assert_true(strv_has(&v, want[i].machine));
		assert_true(strv_has_prefix(&v, want[i].nic));
		assert_false(strv_has_prefix(
		    &v, !strcmp(want[i].kind, "microvm") ? "virtio-net-pci" : "virtio-net-device"));
		tgvm_strv_release(&v);
		j = vm_config_to_json(&c);
		assert_string_equal(json_string_value(json_object_get(j, "machine_kind")),
		                    want[i].kind);
		assert_int_equal(vm_config_from_json(j, &back, &err), 0);
		assert_string_equal(back.machine, want[i].machine);
		vm_config_release(&back);
		/* an older config: no "machine_kind" */
		json_object_del(j, "machine_kind");
		assert_int_equal(vm_config_from_json(j, &back, &err), 0);
		assert_string_equal(back.machine, want[i].machine);
		vm_config_release(&back);
		/* a kind that contradicts the machine is refused */
		json_object_set_new(j, "machine_kind",
		                    json_string(strcmp(want[i].kind, "pc") ? "pc" : "q35"));
		assert_int_equal(vm_config_from_json(j, &back, &err), -EINVAL);
		json_decref(j);
		/* microvm: a disk image cannot boot */
		if (!strcmp(want[i].kind, "microvm")) {
			free(c.kernel);
			c.kernel = NULL;
			c.disk = strdup("/proc/self/exe");
			assert_int_equal(vm_config_finish(&c, &err), -EINVAL);
			assert_non_null(strstr(err.msg, "no firmware that reads disks"));
		}
		vm_config_release(&c);
	}
	struct vm_config c;

	vm_config_init(&c);
	snprintf(c.name, sizeof(c.name), "v");
	snprintf(c.host, sizeof(c.host), "a");
	c.kernel = strdup("/proc/self/exe");
	snprintf(c.machine, sizeof(c.machine), "isapc");
	assert_int_equal(vm_config_finish(&c, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "unknown machine 'isapc'"));
	vm_config_release(&c);
}

/* The NIC: a new VM's guest does not announce itself after a migration (QEMU
 * does, by RARP); a VM stored before the setting existed keeps QEMU's default,
 * so that its destination offers the same virtio-net features. */
static bool argv_has(const struct vm_config *c, const char *want)
{
	struct vm_launch l = {.dir = "/tmp/x"};
	struct tgvm_error err = {0};
	struct tgvm_strv v;
	bool found = false;

	tgvm_strv_init(&v);
	assert_int_equal(vm_qemu_argv(c, &l, &v, &err), 0);
	for (size_t i = 0; i < v.n; i++)
		found = found || !strcmp(v.v[i], want);
	tgvm_strv_release(&v);
	return found;
}

static void test_guest_announce(void **state)
{
	struct tgvm_error err = {0};
	struct vm_config c, back;
	json_t *j;

	(void)state;
	vm_config_init(&c);
	snprintf(c.name, sizeof(c.name), "v");
	snprintf(c.host, sizeof(c.host), "h");
	c.kernel = strdup("/proc/self/exe");
	assert_int_equal(vm_config_finish(&c, &err), 0);
	char nic[96];

	snprintf(nic, sizeof(nic), "virtio-net-pci,netdev=net0,mac=%s,romfile=,guest_announce=off",
	         c.mac);
	assert_true(argv_has(&c, nic));
	j = vm_config_to_json(&c);
	json_object_del(j, "guest_announce"); /* as stored by an older tgvm */
	assert_int_equal(vm_config_from_json(j, &back, &err), 0);
	assert_true(back.guest_announce);
	snprintf(nic, sizeof(nic), "virtio-net-pci,netdev=net0,mac=%s,romfile=", c.mac);
	assert_true(argv_has(&back, nic));
	vm_config_release(&back);
	json_object_set_new(j, "guest_announce", json_string("no"));
	assert_int_equal(vm_config_from_json(j, &back, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "guest_announce"));
	json_decref(j);
	vm_config_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_inventory),
	    cmocka_unit_test_setup_teardown(test_capacity_and_leases, setup, teardown),
	    cmocka_unit_test(test_qemu_argv),
	    cmocka_unit_test(test_guest_announce),
	    cmocka_unit_test(test_machine_kinds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
