/* SPDX-License-Identifier: MIT */
/*
 * Simulated hosts and the QEMU processes that run on them. A host is a network
 * namespace `tgvm-<host>` with a bridge, joined to a `tgvm-fabric` namespace by
 * a veth; a VM is a QEMU process inside its host's namespace, with a state
 * directory $TGVM_STATE_DIR/vms/NAME/ (config.json, pid, qmp.sock, console.sock,
 * serial.log, qemu.log). This layer knows QEMU and Linux networking, no policy.
 * Also the bundled guest (src/vm/guest.c): where it is, how to tell it what to
 * do on the kernel command line, and how to read its answer (guest/README.md).
 */
#ifndef TGVM_VM_H
#define TGVM_VM_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tgvm/error.h"

#define TGVM_NAME_MAX    32 /* host and VM names: [a-z0-9][a-z0-9-]*, at most 31 chars */
#define TGVM_ADDR_MAX    16 /* dotted IPv4 */
#define TGVM_VM_MEM_MIN  (64ull << 20)
#define TGVM_VM_MEM_MAX  (64ull << 30)
#define TGVM_VM_CPUS_MAX 64

/* ---- names and addresses ---- */

/* 0 when @name is a valid host or VM name, else -EINVAL with @what and the name in @reterr. */
int tgvm_name_check(const char *what, const char *name, struct tgvm_error *reterr);

/*
 * Address plan (all in 198.18.0.0/15, one L2 segment): the fabric bridge is
 * 198.18.0.1, the probe namespace 198.18.0.2, host i (0-based, in the order
 * given to host_up) 198.18.0.(10+i) unless its inventory names one, VMs
 * 198.19.0.2 and up. The prefix length on every interface is /15.
 */
#define TGVM_NET_PREFIX    15
#define TGVM_NET_FABRIC_IP "198.18.0.1"
#define TGVM_NET_PROBE_IP  "198.18.0.2"
#define TGVM_NET_FABRIC_BR "br0"

/*
 * Namespace names: "<prefix><host>", "<prefix>fabric", "<prefix>probe". The
 * prefix is "tgvm-" unless TGVM_NETNS_PREFIX names another (at most 12 of
 * [a-z0-9-]), so that separate test runs on one machine never meet.
 */
const char *tgvm_netns_prefix(void);
const char *tgvm_net_fabric_ns(void);
const char *tgvm_net_probe_ns(void);

/* true when @addr is dotted IPv4 inside 198.18.0.0/15. */
bool tgvm_net_addr_ok(const char *addr);

/* ---- hosts ---- */

struct vm_host {
	char name[TGVM_NAME_MAX];
	char address[TGVM_ADDR_MAX]; /* "" on input: assign from the plan */
	char inventory[256];         /* inventory file that defines the host's CPU profile, or "" */
	/* That profile as it was when the host came up (later edits to the
	 * file do not change a running host): "" when there is none. */
	char profile[64];            /* its name, e.g. "Haswell-v4" */
	char profile_vendor[16];     /* "intel", "amd", ... */
	char profile_features[2048]; /* comma-separated feature names */
	char machine[16]; /* the machine kind of its VMs ("q35", "pc", "microvm"), "" any */
};

/*
 * Create the fabric and probe namespaces (once) and one namespace per host of
 * @hosts[0..n-1]: `tgvm-<name>` with bridge br0 holding the host's address and
 * a veth to the fabric bridge. Idempotent: hosts already up are kept (their
 * address must not change). Records each host in $TGVM_STATE_DIR/hosts/.
 * On failure, hosts this call created are removed again. Needs CAP_NET_ADMIN.
 * Cost: a few `ip` runs per host.
 */
int host_up(const struct vm_host *hosts, size_t n, struct tgvm_error *reterr);

/* A migration stream's connection (vm_stream_connect). */
struct vm_stream {
	int src_fd;        /* the connecting end, in the source host's namespace */
	int dst_fd;        /* the accepted end, in the destination host's namespace */
	unsigned port;     /* the destination's port */
	unsigned src_port; /* the source's */
	int buf_bytes;     /* what the destination's end got (the kernel doubles the figure
	                      asked; this is half of what it reports), 0: autotuned */
};

/*
 * Connect host @from to @to_addr on host @to over the fabric, both ends made
 * here inside the hosts' namespaces, with socket buffers of @buf_bytes each
 * (0: the kernel's autotuning), for QEMU's "fd:" migration URIs. Fails with a
 * message naming the hosts within @timeout_ms. Release with vm_stream_close.
 */
int vm_stream_connect(const char *from, const char *to, const char *to_addr, int buf_bytes,
                      int timeout_ms, struct vm_stream *ret, struct tgvm_error *reterr);
void vm_stream_close(struct vm_stream *s);

/*
 * Watch a stream's connection from outside: how many of its bytes are on
 * their way (the source's unacknowledged and unsent bytes plus the
 * destination's unread ones), asked from netlink sockets opened here in both
 * hosts' namespaces, by the connection's 4-tuple (microseconds). @from_port
 * 0: a connection QEMU made itself, found later with vm_stream_watch_find
 * (a dump: milliseconds, call it while nothing waits on it).
 */
struct vm_stream_watch;
int vm_stream_watch_open(const char *from, const char *to, const char *from_addr,
                         unsigned from_port, const char *to_addr, unsigned to_port,
                         struct vm_stream_watch **ret, struct tgvm_error *reterr);
int vm_stream_watch_find(struct vm_stream_watch *w);  /* 0, -ENOENT (not yet), -errno */
int64_t vm_stream_queued(struct vm_stream_watch *w);  /* bytes, or -1 when unknown */
void vm_stream_watch_free(struct vm_stream_watch *w); /* accepts NULL */

/*
 * Remove the hosts named in @names[0..n-1] (n == 0: every host, then the
 * fabric and probe namespaces): stop their VMs (QEMU killed), delete their
 * namespaces and state. Hosts that are not up are skipped. Returns the first
 * error but tries every host.
 */
int host_down(const char *const *names, size_t n, struct tgvm_error *reterr);

/*
 * The hosts that are up, from the state directory, sorted by name.
 * *ret is a malloc'd array the caller frees; *ret_n its length.
 */
int host_list(struct vm_host **ret, size_t *ret_n, struct tgvm_error *reterr);

/* Look up one host that is up. -ENOENT with "host 'x' is not up" (and a suggestion). */
int host_get(const char *name, struct vm_host *ret, struct tgvm_error *reterr);

/* ---- accelerator ---- */

enum vm_accel { VM_ACCEL_TCG, VM_ACCEL_KVM, VM_ACCEL__MAX };
const char *vm_accel_to_string(enum vm_accel a);
int vm_accel_from_string(const char *s);

/*
 * The accelerator to use: $TGVM_ACCEL when set ("tcg"/"kvm"), else the cached
 * verdict, else a probe: TCG when /dev/kvm cannot be opened; otherwise boot
 * @kernel (may be NULL: TCG) with KVM and no root disk and wait at most
 * @timeout_ms for it to reach the kernel's panic and exit; a guest that does not
 * get there (PVM-backed /dev/kvm hangs stock Linux) is killed and TCG chosen.
 * The verdict and its reason are cached in $TGVM_CACHE_DIR/accel.json, keyed
 * by the host kernel release and QEMU binary. @ret_reason (may be NULL, size
 * @reason_size) gets the words. Never fails: errors choose TCG.
 */
enum vm_accel vm_accel_choose(const char *kernel, int timeout_ms, char *ret_reason,
                              size_t reason_size);

/* ---- Machine kinds ---- */

/*
 * The machine a VM runs on: QEMU's q35 (PCIe, the default) or pc (i440FX),
 * or microvm (no PCI: virtio-mmio devices described by ACPI, a kernel booted
 * directly, no firmware that reads disks, no hotplug). Both sides of a move
 * are the same kind. microvm carries the least device state at a handoff.
 */
enum vm_machine { VM_MACHINE_Q35, VM_MACHINE_PC, VM_MACHINE_MICROVM, VM_MACHINE__MAX };
#define VM_MACHINE_DEFAULT_KIND VM_MACHINE_Q35

const char *vm_machine_to_string(enum vm_machine m); /* "q35", "pc", "microvm"; "?" */
/* "q35", "pc", "microvm" to the kind; -EINVAL for anything else. */
int vm_machine_from_string(const char *s);
/* The kind of a -machine value: its first word ("q35,sata=off" is q35); -EINVAL. */
int vm_machine_kind(const char *machine);
/*
 * The kernel argument a microvm guest needs under TCG: microvm has no HPET
 * and no ACPI PM timer, so the kernel cannot calibrate its TSC against one
 * and, on a busy host, not against the PIT either (it then stalls in early
 * boot). "tsc_early_khz=N" with this host's TSC rate (TCG's guest TSC runs
 * at the host's), measured over 20 ms, into @buf. 0 or -errno.
 */
int vm_tsc_early_arg(char *buf, size_t size);
/*
 * The -machine value tgvm gives a new VM of kind @m: only the devices a tgvm
 * VM uses, since every device is state to save and load while the VM is
 * stopped. q35 without SATA and SMBus (ich9_ahci took 0.5 ms to save and
 * 0.8-1.4 ms to load at a handoff); microvm as it comes: without its PIT,
 * PIC and RTC, or without the option ROM that loads the kernel
 * (x-option-roms=off, then qboot loads it), the bundled guest did not boot
 * under TCG here in 90 s, 1 boot of 3 did. Static string.
 */
const char *vm_machine_qemu(enum vm_machine m);
/*
 * The id of the file-backed RAM object of a VM on a memory device (nil-
 * migration), named as QEMU names the machine's own RAM block so that
 * private and shared QEMUs migrate to each other: "pc.ram" on q35 and pc,
 * "microvm.ram" on microvm. Static string.
 */
const char *vm_machine_ram_id(const char *machine);

/* ---- VM configuration ---- */

struct vm_config {
	char name[TGVM_NAME_MAX];
	char host[TGVM_NAME_MAX];
	uint64_t mem_bytes;
	int cpus;
	char *cpu;    /* the -cpu string, e.g. "Haswell-noTSX,-hle" (owned); NULL: "qemu64" */
	char *kernel; /* owned paths, NULL when unused; kernel or disk is required */
	char *initrd;
	char *append;
	char *disk;
	char mac[18];           /* "52:54:00:xx:xx:xx", derived from the name when "" */
	char ip[TGVM_ADDR_MAX]; /* the guest's address, passed as tgvm.ip= */
	char tap[16];           /* tap device in the host namespace, derived from the name */
	char accel[8];          /* "tcg" or "kvm"; "" picks with vm_accel_choose() */
	/* QEMU's -machine value, as the VM was started (a move keeps it: the
	 * destination must have the same devices); its first word is the kind
	 * (enum vm_machine). "" before vm_config_finish(): the default kind's. */
	char machine[64];
	/* virtio-net's GUEST_ANNOUNCE: after a migration the guest announces itself
	 * (gratuitous ARP and more, five times). Off for new VMs: tgvm switches the
	 * fabric itself and QEMU then announces with RARP from the host side, while
	 * the guest's announcement was ~1,800 more code blocks for a new TCG
	 * process to translate before the guest answers. Kept as stored. */
	bool guest_announce;
	/* nil-migration (tgvm/memdev.h): guest RAM in a file on a shared memory device */
	char memdev[TGVM_NAME_MAX]; /* the device's name; "" : host-private RAM */
	char *mem_file;             /* owned; the RAM file on it, NULL when private */
};

void vm_config_init(struct vm_config *c);
void vm_config_release(struct vm_config *c);
/* Deep copy of @src into @dst (initialised by this call). 0 or -ENOMEM. */
int vm_config_copy(struct vm_config *dst, const struct vm_config *src);

/* The MAC derived from @name: 52:54:00 plus 24 bits of FNV-1a of the name. */
void vm_mac_from_name(const char *name, char ret[18]);

/* config.json <-> struct. from_json validates every field (names, sizes, paths). */
json_t *vm_config_to_json(const struct vm_config *c);
int vm_config_from_json(json_t *j, struct vm_config *ret, struct tgvm_error *reterr);

/*
 * Fill the derived fields of @c (MAC, tap, machine, accel) and check the rest:
 * memory in [64 MiB, 64 GiB], 1..64 CPUs, a kernel or a disk, files readable.
 */
int vm_config_finish(struct vm_config *c, struct tgvm_error *reterr);

struct tgvm_strv; /* src/util/util.h */

/* What QEMU needs to run a VM described by a config from one state directory. */
struct vm_launch {
	const char *dir;        /* state directory holding the sockets, logs and pid */
	bool incoming;          /* start paused with -incoming defer (migration destination) */
	const char *serial_log; /* the console log, appended to; NULL: @dir/serial.log */
};

/*
 * The QEMU argument vector for @c, appended to @ret (argv[0] is the binary).
 * Pure: touches no file. For tests and for `tgvm vm start --dry-run`.
 */
int vm_qemu_argv(const struct vm_config *c, const struct vm_launch *l, struct tgvm_strv *ret,
                 struct tgvm_error *reterr);

/* ---- VM processes ---- */

/* The qemu-system-x86_64 to run (tgvm_config_get()->qemu, else from PATH). */
const char *vm_qemu_binary(void);

/* The state directory of VM @name into @buf. 0 or -ENAMETOOLONG. */
int vm_dir(const char *name, char *buf, size_t size);

/*
 * Start QEMU for @c inside its host's namespace with state in @l->dir
 * (created, 0700): tap created on the host bridge, QEMU daemonized with its
 * pid in @l->dir/pid, QMP socket chmod 0600, config.json written. Returns once
 * QEMU answers on QMP (bounded by @timeout_ms); *ret_pid (may be NULL) gets
 * its pid. On failure nothing is left running and QEMU's own words (from
 * qemu.log) are in @reterr.
 */
int vm_spawn(const struct vm_config *c, const struct vm_launch *l, int timeout_ms, int *ret_pid,
             struct tgvm_error *reterr);

/* vm_spawn() into vm_dir(c->name); -EEXIST when a VM of that name exists. */
int vm_start(const struct vm_config *c, struct tgvm_error *reterr);

/*
 * Stop the QEMU whose state is in @dir (QMP quit, then SIGTERM, then SIGKILL,
 * all bounded), remove its tap from @host's namespace. Leaves the files.
 */
int vm_kill_dir(const char *dir, const char *host, const char *tap, struct tgvm_error *reterr);

/*
 * A migration's destination QEMU keeps its state in @dir/in-<id>/ until the
 * switch. vm_has_incoming(): is there one; vm_kill_incoming(): kill each such
 * QEMU (removing its tap) and remove its directory.
 */
bool vm_has_incoming(const char *dir);
void vm_kill_incoming(const char *dir);
/* rm -r @dir (no symlinks followed). 0 or -errno. */
int vm_rm_rf(const char *dir);

/* Stop VM @name and remove its state directory. -ENOENT when there is none. */
int vm_stop(const char *name, struct tgvm_error *reterr);

/* Load config.json of VM @name into @ret (initialised by this call). */
int vm_load(const char *name, struct vm_config *ret, struct tgvm_error *reterr);

/* Pid of the QEMU whose state is in @dir if it is alive, else 0. */
int vm_dir_pid(const char *dir);

struct vm_info {
	struct vm_config config;
	int pid;        /* 0 when QEMU is not running */
	char state[24]; /* "running", "paused", "inmigrate", "stopped"... from QMP, or "dead" */
	bool migrating; /* a migration of this VM is in progress */
};

/*
 * Every VM in the state directory, sorted by name, with its QMP status (one
 * short query each; O(VMs)). Free with vm_info_free(*ret, *ret_n).
 */
int vm_list(struct vm_info **ret, size_t *ret_n, struct tgvm_error *reterr);
void vm_info_free(struct vm_info *v, size_t n);

/*
 * Connect to a VM's QMP socket in @dir; see qmp_conn_open(). *ret is freed
 * with qmp_conn_free().
 */
struct qmp_conn;
int vm_qmp_open(const char *dir, int timeout_ms, struct qmp_conn **ret, struct tgvm_error *reterr);

/*
 * Point the fabric bridge's forwarding entry for @mac at host @host's uplink,
 * and @host's bridge entry at the VM's @tap (NULL: leave it; best effort), so
 * frames for the VM go there at once instead of after the VM announces
 * itself; frames that come before the VM runs wait in its tap's queue. Over
 * rtnetlink (src/vm/netswitch.c). vm_net_switch() does it in one go;
 * vm_net_switch_prepare() opens everything beforehand so that
 * vm_net_switch_fire() at the switch is two netlink messages.
 */
struct vm_netswitch;
int vm_net_switch(const char *mac, const char *host, const char *tap, struct tgvm_error *reterr);
int vm_net_switch_prepare(const char *mac, const char *host, const char *tap,
                          struct vm_netswitch **ret, struct tgvm_error *reterr);
int vm_net_switch_fire(struct vm_netswitch *sw, struct tgvm_error *reterr);
void vm_net_switch_free(struct vm_netswitch *sw); /* accepts NULL */

/* Run `ip @args...` (NULL-terminated) in namespace @ns (NULL: here); stderr in @reterr. */
int vm_net_ip(const char *ns, struct tgvm_error *reterr, ...) __attribute__((sentinel));

/* ---- The bundled guest (src/vm/guest.c) ---- */

/* Console lines the guest's init prints, each at the start of a line. */
#define TGVM_GUEST_READY_MARKER  "TGVM-READY"      /* "TGVM-READY ms=N kernel=V boot_id=U" */
#define TGVM_GUEST_RESULT_MARKER "TGVM-RESULT rc=" /* "TGVM-RESULT rc=N" after tgvm.run */

/* UDP ports of the guest's workloads (their defaults). */
#define TGVM_GUEST_UDP_ECHO_PORT  7777 /* udp-responder: echoes every datagram */
#define TGVM_GUEST_MEMWRITER_PORT 7778 /* memwriter: "verify" / "status" requests */

/*
 * Kernel arguments every boot of the bundled guest starts with: serial
 * console, reboot (QEMU exits with -no-reboot) on panic, no boot chatter, and
 * no crypto self-tests (about a second of TCG time; the guest uses no crypto).
 */
/* no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check
 * can fail and panic ("IO-APIC + timer doesn't work!", seen in probe-disk). */
#define TGVM_GUEST_BASE_APPEND "console=ttyS0 panic=-1 quiet cryptomgr.notests no_timer_check"
/* The kernel's own command-line limit on x86 (COMMAND_LINE_SIZE). */
#define TGVM_GUEST_CMDLINE_MAX 2048

struct tgvm_guest {
	char dir[PATH_MAX];       /* $TGVM_CACHE_DIR/guest */
	char kernel[PATH_MAX];    /* dir/vmlinuz: pass to QEMU -kernel */
	char initrd[PATH_MAX];    /* dir/initramfs.img: pass to QEMU -initrd */
	char manifest[PATH_MAX];  /* dir/manifest.json */
	char kernel_version[128]; /* e.g. "6.1.0-56-cloud-amd64", from the manifest */
	char source_hash[72];     /* sha256 of the guest/ sources it was built from */
	uint64_t initramfs_bytes; /* size of initrd */
};

/*
 * Find the bundled guest in the cache ($TGVM_CACHE_DIR/guest, else
 * $XDG_CACHE_HOME/tgvm/guest, else ~/.cache/tgvm/guest) and read its
 * manifest. Fills *ret on success only. Errors: -ENOENT when the guest or one
 * of its files is missing (the message tells the user to run 'make setup' or
 * scripts/build-guest.sh), -EINVAL for a malformed manifest, -ENAMETOOLONG.
 * Cost: three stat() calls and one small file read; builds nothing.
 */
int tgvm_guest_locate(struct tgvm_guest *ret, struct tgvm_error *reterr);

/* What to ask of one boot; NULL/false fields are left out. */
struct tgvm_guest_args {
	const char *run;      /* shell command run once (sent base64 as tgvm.run64) */
	const char *ip;       /* "198.18.1.2/24" for eth0 (tgvm.ip) */
	const char *gateway;  /* default route (tgvm.gw) */
	const char *workload; /* "udp-responder,memwriter:--mib=64" (tgvm.workload) */
	bool poweroff;        /* power off after @run (tgvm.poweroff=1) */
	const char *extra;    /* appended verbatim, e.g. "tgvm.debug=1" */
};

/*
 * Build the kernel command line (-append) for the bundled guest:
 * TGVM_GUEST_BASE_APPEND followed by the tgvm.* keys of @args. On success
 * *ret_cmdline is a new string the caller frees. Errors: -EINVAL when a
 * value holds a space, a quote or a control character (named in @reterr),
 * -E2BIG when the line exceeds TGVM_GUEST_CMDLINE_MAX - 1, -ENOMEM.
 */
int tgvm_guest_cmdline(const struct tgvm_guest_args *args, char **ret_cmdline,
                       struct tgvm_error *reterr);

/*
 * Find the last "TGVM-RESULT rc=N" line in the serial console output @log
 * of @len bytes (need not be NUL-terminated; "\r\n" line ends are fine).
 * Returns 1 and sets *ret_rc, or 0 when the guest has not printed it (yet).
 * O(len).
 */
int tgvm_guest_parse_result(const char *log, size_t len, int *ret_rc);

/*
 * Find the "TGVM-READY ms=N ..." line in @log. Returns 1 and sets *ret_ms
 * (milliseconds from kernel start to ready, the guest's own clock), or 0.
 */
int tgvm_guest_parse_ready(const char *log, size_t len, uint64_t *ret_ms);

#endif
