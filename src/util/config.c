// SPDX-License-Identifier: MIT
/*
 * The one copy of the library's configuration (include/tgvm/config.h).
 */
#include <stdlib.h>
#include <string.h>

#include "tgvm/config.h"

static struct tgvm_config cfg;
static char *owned[6];

static const char *keep(int i, const char *s)
{
	free(owned[i]);
	owned[i] = s && *s ? strdup(s) : NULL;
	return owned[i];
}

void tgvm_config_set(const struct tgvm_config *c)
{
	struct tgvm_config z = {0};

	if (!c)
		c = &z;
	cfg.qemu = keep(0, c->qemu);
	cfg.accel = keep(1, c->accel);
	cfg.netns_prefix = keep(2, c->netns_prefix);
	cfg.state_dir = keep(3, c->state_dir);
	cfg.cache_dir = keep(4, c->cache_dir);
	cfg.data_dir = keep(5, c->data_dir);
	cfg.keep_trace = c->keep_trace;
}

const struct tgvm_config *tgvm_config_get(void)
{
	return &cfg;
}
