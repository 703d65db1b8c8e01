/* SPDX-License-Identifier: MIT */
/*
 * The library's configuration from outside: which QEMU, where state and
 * caches live, the namespace prefix, debugging switches. The program reads
 * its environment once (tgvm: src/cli/main.c) and gives the library this
 * struct; the library itself never reads the environment.
 */
#ifndef TGVM_CONFIG_H
#define TGVM_CONFIG_H

#include <stdbool.h>

struct tgvm_config {
	const char *qemu;         /* qemu-system-x86_64 to run; NULL: from PATH */
	const char *accel;        /* "tcg" or "kvm" forces the accelerator; NULL: probe */
	const char *netns_prefix; /* simulated hosts' namespace prefix; NULL: "tgvm-" */
	const char *state_dir;    /* VMs, hosts, devices; NULL: /run/tgvm (root) or /tmp */
	const char *cache_dir;    /* CPU models, the bundled guest; NULL: /tmp/tgvm-cache-UID */
	const char *data_dir;     /* examples, man pages; NULL: the source tree built from */
	bool keep_trace;          /* nil-migration --breakdown keeps the QEMU trace files */
};

/*
 * Set the configuration; the strings are copied. Call before anything else
 * of the library, from one thread. NULL restores the defaults.
 */
void tgvm_config_set(const struct tgvm_config *c);
/* The configuration in force (never NULL; valid until the next set). */
const struct tgvm_config *tgvm_config_get(void);

#endif
