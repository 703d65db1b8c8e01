// SPDX-License-Identifier: MIT
/*
 * Profiles the CPU tgvm runs on: every vocabulary feature the CPUID
 * instruction reports, less what the running kernel keeps disabled, as told by
 * the flags line of /proc/cpuinfo.
 */
#include <cpuid.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tgvm/model.h"
#include "util/util.h"

#define CPUINFO_MAX (16u << 20)

struct cpuid_regs {
	uint32_t r[4]; /* eax ebx ecx edx */
};

static void cpuid(uint32_t leaf, uint32_t sub, struct cpuid_regs *out)
{
	__cpuid_count(leaf, sub, out->r[0], out->r[1], out->r[2], out->r[3]);
}

/* Is @leaf within the range its block (basic, hypervisor, extended, Centaur) reports? */
static bool leaf_valid(uint32_t leaf, const uint32_t max[4])
{
	switch (leaf >> 28) {
	case 0x0:
		return leaf <= max[0];
	case 0x4:
		return max[1] && leaf <= max[1];
	case 0x8:
		return leaf <= max[2];
	case 0xc:
		return max[3] && leaf <= max[3];
	default:
		return false;
	}
}

int tgvm_cpuinfo_parse_flags(const char *cpuinfo, struct tgvm_featureset *ret,
                             struct tgvm_error *reterr)
{
	struct tgvm_featureset s = {{0}};
	struct tgvm_strv words;
	const char *line = cpuinfo;

	while (line && *line) {
		if (!strncmp(line, "flags", 5) && strchr(line, ':')) {
			const char *colon = strchr(line, ':');
			const char *eol = strchr(colon, '\n');
			char *copy =
			    strndup(colon + 1, eol ? (size_t)(eol - colon - 1) : strlen(colon + 1));

			if (!copy)
				return tgvm_error_set(reterr, ENOMEM, "out of memory");
			tgvm_strv_init(&words);
			if (tgvm_strv_split(&words, copy, " \t") < 0) {
				free(copy);
				tgvm_strv_release(&words);
				return tgvm_error_set(reterr, ENOMEM, "out of memory");
			}
			for (size_t i = 0; i < words.n; i++) {
				int f = tgvm_feature_from_name(words.v[i]);

				if (f >= 0)
					tgvm_featureset_add(&s, f);
			}
			free(copy);
			tgvm_strv_release(&words);
			*ret = s;
			return 0;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return tgvm_error_set(reterr, ENOENT, "no 'flags' line in /proc/cpuinfo");
}

int tgvm_cpu_detect(struct tgvm_cpu_model *ret, struct tgvm_featureset *ret_hidden,
                    struct tgvm_error *reterr)
{
	struct tgvm_cpu_model m;
	struct tgvm_featureset from_os, hidden = {{0}};
	struct cpuid_regs r;
	uint32_t max[4] = {0};
	char vendor[13], *text = NULL;
	int v, ri;

	(void)reterr; /* CPUID cannot fail on x86-64; kept for the API's shape */
	memset(&m, 0, sizeof(m));
	cpuid(0, 0, &r);
	max[0] = r.r[0];
	memcpy(vendor, &r.r[1], 4);
	memcpy(vendor + 4, &r.r[3], 4);
	memcpy(vendor + 8, &r.r[2], 4);
	vendor[12] = '\0';
	v = tgvm_vendor_from_string(vendor);
	m.vendor = v < 0 ? TGVM_VENDOR_OTHER : v;

	cpuid(0x80000000, 0, &r);
	max[2] = r.r[0] >= 0x80000000 && r.r[0] < 0x80001000 ? r.r[0] : 0;
	cpuid(1, 0, &r);
	if (r.r[2] & (1u << 31)) { /* hypervisor present: KVM's leaves only with its signature */
		struct cpuid_regs h;

		cpuid(0x40000000, 0, &h);
		if (!memcmp(&h.r[1], "KVMK", 4) && !memcmp(&h.r[2], "VMKV", 4))
			max[1] = h.r[0] < 0x40000001 ? 0x40000001 : h.r[0];
	}
	if (m.vendor != TGVM_VENDOR_INTEL && m.vendor != TGVM_VENDOR_AMD) {
		struct cpuid_regs c;

		cpuid(0xc0000000, 0, &c);
		max[3] = c.r[0] >= 0xc0000001 && c.r[0] < 0xc0001000 ? c.r[0] : 0;
	}

	/* Family/model/stepping as the SDM composes them. */
	{
		uint32_t eax = r.r[0];
		int fam = (eax >> 8) & 0xf, mod = (eax >> 4) & 0xf;

		if (fam == 0xf)
			fam += (eax >> 20) & 0xff;
		if (fam == 0x6 || fam >= 0xf)
			mod += ((eax >> 16) & 0xf) << 4;
		m.family = fam;
		m.model = mod;
		m.stepping = eax & 0xf;
	}
	if (max[2] >= 0x80000004) {
		char brand[49];

		for (uint32_t i = 0; i < 3; i++) {
			cpuid(0x80000002 + i, 0, &r);
			memcpy(brand + 16 * i, r.r, 16);
		}
		brand[48] = '\0';
		const char *b = brand;
		while (*b == ' ')
			b++;
		snprintf(m.model_id, sizeof(m.model_id), "%s", b);
	}

	for (int f = 0; f < TGVM_F__MAX; f++) {
		const struct tgvm_feature_info *fi = tgvm_feature_info(f);

		if (fi->reg == TGVM_REG_MSR || !leaf_valid(fi->leaf, max))
			continue;
		cpuid(fi->leaf, fi->subleaf, &r);
		if ((r.r[fi->reg] >> fi->bit) & 1)
			tgvm_featureset_add(&m.features, f);
	}

	/* What the kernel keeps off: a user feature CPUID has and cpuinfo lacks. */
	ri = tgvm_file_read("/proc/cpuinfo", CPUINFO_MAX, &text, NULL, NULL);
	if (ri == 0 && tgvm_cpuinfo_parse_flags(text, &from_os, NULL) == 0) {
		TGVM_FEATURESET_FOREACH(f, &m.features)
		{
			const struct tgvm_feature_info *fi = tgvm_feature_info(f);
			const char *ln = fi->linux_name ? fi->linux_name : fi->qemu_name;

			if ((fi->flags & (TGVM_FF_SYS | TGVM_FF_NOQEMU)) || !*ln)
				continue;
			if (!tgvm_featureset_has(&from_os, f))
				tgvm_featureset_add(&hidden, f);
		}
		tgvm_featureset_minus(&m.features, &hidden);
		tgvm_featureset_close_down(&m.features);
	}
	free(text);
	/* OS-state bits are not CPU capabilities. */
	tgvm_featureset_del(&m.features, TGVM_F_OSXSAVE);
	tgvm_featureset_del(&m.features, TGVM_F_OSPKE);

	if (gethostname(m.name, sizeof(m.name) - 1) < 0)
		snprintf(m.name, sizeof(m.name), "localhost");
	*ret = m;
	if (ret_hidden)
		*ret_hidden = hidden;
	return 0;
}
