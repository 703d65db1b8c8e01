/* SPDX-License-Identifier: MIT */
/*
 * Named CPU models and host profiles, and the database of them that tgvm reads
 * from the installed QEMU (never typed in by hand): QEMU's x86 models,
 * versioned ones included (Skylake-Server-v4), each with its vendor and full
 * feature set as QEMU's TCG expands it. Profiles of real hosts (detected, or
 * a model plus/minus features) share the same structure.
 */
#ifndef TGVM_MODEL_H
#define TGVM_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "tgvm/cpu.h"
#include "tgvm/error.h"

#define TGVM_MODEL_NAME_MAX 64
#define TGVM_MODELDB_MAX    4096 /* models in one database (QEMU 7.2 has 132) */
#define TGVM_MODELDB_FORMAT 2    /* of the cache file; 2 added "tcg_unnamed" */

struct tgvm_cpu_model {
	char name[TGVM_MODEL_NAME_MAX];     /* "Skylake-Server-v4" */
	char alias_of[TGVM_MODEL_NAME_MAX]; /* "Skylake-Server" -> "Skylake-Server-v1"; "" */
	char model_id[80];                  /* "Intel Xeon Processor (Skylake, IBRS)" */
	enum tgvm_vendor vendor;
	int family, model, stepping;
	bool migration_safe;
	bool deprecated;
	struct tgvm_featureset features;        /* what the model presents */
	struct tgvm_featureset tcg_unavailable; /* what TCG on this QEMU cannot give */
	bool tcg_unnamed; /* TCG also lacks features of it that tgvm has no name for */
};

struct tgvm_modeldb {
	char qemu_version[32];           /* "7.2.22" */
	struct tgvm_featureset settable; /* features this QEMU can switch (from 'max') */
	struct tgvm_featureset tcg_max;  /* what TCG can present at most */
	size_t n;
	struct tgvm_cpu_model *models; /* sorted by name */
};

/* New empty database; free with tgvm_modeldb_free (accepts NULL). */
struct tgvm_modeldb *tgvm_modeldb_new(void);
void tgvm_modeldb_free(struct tgvm_modeldb *db);
/* Copy @m into the database (kept sorted). -EEXIST, -E2BIG past TGVM_MODELDB_MAX. */
int tgvm_modeldb_add(struct tgvm_modeldb *db, const struct tgvm_cpu_model *m);

/*
 * Find a model by name (exact, then case-insensitive); aliases resolve to
 * their target when @follow_alias. NULL when absent. O(log n).
 */
const struct tgvm_cpu_model *tgvm_modeldb_find(const struct tgvm_modeldb *db, const char *name,
                                               bool follow_alias);
/* Closest model name, for "did you mean"; NULL when nothing is close. */
const char *tgvm_modeldb_suggest(const struct tgvm_modeldb *db, const char *name);
/* Look up @name, or fail with -ENOENT and a message naming it and the closest. */
int tgvm_modeldb_lookup(const struct tgvm_modeldb *db, const char *name,
                        const struct tgvm_cpu_model **ret, struct tgvm_error *reterr);

/* True for models a guest can be given by name to run anywhere it fits:
 * not 'max', 'host' or 'base'. */
bool tgvm_cpu_model_is_named(const struct tgvm_cpu_model *m);
/* The model's version suffix: 4 for "Skylake-Server-v4", 0 when unversioned. */
int tgvm_cpu_model_version(const struct tgvm_cpu_model *m);

/*
 * JSON form of a model/profile: {"name","vendor","family","model","stepping",
 * "model_id","features":[...]} (+"alias_of","migration_safe","deprecated",
 * "tcg_unavailable", "tcg_unnamed"). tgvm_cpu_model_from_json() reads it back; feature names
 * unknown to the vocabulary fail with -ENOENT naming them.
 */
json_t *tgvm_cpu_model_to_json(const struct tgvm_cpu_model *m);
int tgvm_cpu_model_from_json(json_t *j, struct tgvm_cpu_model *ret, struct tgvm_error *reterr);

/* The whole database as JSON and back (the cache file format). */
json_t *tgvm_modeldb_to_json(const struct tgvm_modeldb *db);
int tgvm_modeldb_from_json(json_t *j, struct tgvm_modeldb **ret, struct tgvm_error *reterr);

/*
 * The database of the installed QEMU: read from the cache
 * ($TGVM_CACHE_DIR/qemu-cpu-models-VERSION-fFORMAT.json) or, when missing or stale,
 * by running `qemu-system-x86_64 -machine none -accel tcg` and asking it over
 * QMP (query-cpu-definitions, then query-cpu-model-expansion type=full for
 * each model), then caching it. $TGVM_QEMU overrides the binary. A missing or
 * too-old QEMU (< 4.0: no versioned models) fails with one clear sentence.
 * Takes about a second the first time, milliseconds after. Caller frees.
 */
int tgvm_modeldb_load_default(struct tgvm_modeldb **ret, struct tgvm_error *reterr);

/*
 * This machine's CPU: the CPUID instruction (every feature of the vocabulary
 * that CPUID can show), corrected by what the running kernel enables
 * (/proc/cpuinfo: a feature CPUID has but the kernel disabled, such as AVX
 * without OS XSAVE support, is dropped and listed in @ret_hidden if not NULL).
 * Fills name (hostname), vendor, family/model/stepping, model_id (brand).
 */
int tgvm_cpu_detect(struct tgvm_cpu_model *ret, struct tgvm_featureset *ret_hidden,
                    struct tgvm_error *reterr);
/* Parse the "flags" line of a /proc/cpuinfo text into features (unknown names ignored). */
int tgvm_cpuinfo_parse_flags(const char *cpuinfo, struct tgvm_featureset *ret,
                             struct tgvm_error *reterr);

#endif
