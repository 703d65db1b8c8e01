/* SPDX-License-Identifier: MIT */
/* Shared inside src/fleet/: reading the parts of an inventory with its text at hand. */
#ifndef TGVM_FLEET_INT_H
#define TGVM_FLEET_INT_H

#include <jansson.h>

#include "tgvm/memdev.h"

/* tgvm_memdevs_from_json() with the file's @text (may be NULL), for key errors' lines. */
int fleet_memdevs_from_json(json_t *inv, const char *text, const char *origin,
                            struct tgvm_memdevs *ret, struct tgvm_error *reterr);

#endif
