/* SPDX-License-Identifier: MIT */
/*
 * Fleets of hosts and the placement of VMs on them: the inventory (hosts with
 * CPU profiles and counts), the minimal CPU model for a VM's needs, and which
 * hosts each VM may run on and move among under each policy.
 */
#ifndef TGVM_FLEET_H
#define TGVM_FLEET_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "tgvm/cpu.h"
#include "tgvm/model.h"

#define TGVM_INVENTORY_HOSTS_MAX 100000
#define TGVM_INVENTORY_FILE_MAX  (64u << 20)
#define TGVM_HOST_NAME_MAX       64
#define TGVM_VM_NAME_LEN         63   /* characters of a VM name in fleet input */
#define TGVM_FEATURE_LIST_MAX    4096 /* entries of a feature list in JSON input */

struct tgvm_host {
	char name[TGVM_HOST_NAME_MAX];
	char address[64];                       /* "198.18.0.11" or "" (simulated hosts get one) */
	char profile_name[TGVM_MODEL_NAME_MAX]; /* "EPYC-Milan", "EPYC-Genoa", "detected" */
	uint64_t count; /* identical machines this entry stands for (>= 1) */
	struct tgvm_cpu_model profile;
	/* "machine": the machine kind (q35, pc, microvm) of the VMs it runs:
	 * `vm start`'s default there, and a move there must be of that kind; "" any */
	char machine[16];
};

struct tgvm_inventory {
	char path[256];
	size_t n;
	struct tgvm_host *hosts;
};

/*
 * Check that every key of the JSON object @obj is in @known (NULL-ended),
 * "comment", or starts with "x-" (a user's own annotation). Else -EINVAL:
 * "'FILE', line N: unknown key "cuont" in host 'a' (did you mean "count"?)",
 * the line found in @text (the file's text; may be NULL: no line) and @where
 * naming the object ("host 'a'"). O(keys * known + text length on error).
 */
int tgvm_json_check_keys(json_t *obj, const char *const *known, const char *text,
                         const char *origin, const char *where, struct tgvm_error *reterr);

/*
 * Load an inventory:
 *   {"hosts": [{"name": "rome-1", "profile": "EPYC-Rome", "count": 40,
 *               "address": "198.18.0.11"},
 *              {"name": "genoa", "profile": {"base": "EPYC-Milan",
 *                        "add": ["avx512f", ...], "remove": [...]}},
 *              {"name": "lab", "profile": {<output of tgvm host detect --json>}}]}
 * Profiles name QEMU models of @db. Malformed JSON fails with the file, line
 * and column; unknown models or features with the name and the closest one;
 * an unknown key (tgvm_json_check_keys()) with its line and the closest key;
 * duplicate host names are refused. Memory devices ("memdevs") are checked by
 * tgvm_memdevs_from_json(). Caller frees with tgvm_inventory_free().
 */
int tgvm_inventory_load(const char *path, const struct tgvm_modeldb *db,
                        struct tgvm_inventory **ret, struct tgvm_error *reterr);
int tgvm_inventory_from_json(json_t *j, const char *origin, const struct tgvm_modeldb *db,
                             struct tgvm_inventory **ret, struct tgvm_error *reterr);
void tgvm_inventory_free(struct tgvm_inventory *inv);
/* The host named @name, or -ENOENT with a suggestion in @reterr. */
int tgvm_inventory_find(const struct tgvm_inventory *inv, const char *name,
                        const struct tgvm_host **ret, struct tgvm_error *reterr);
uint64_t tgvm_inventory_total(const struct tgvm_inventory *inv); /* sum of counts */

/* Can a host of @host_features / @host_vendor present @model? Features the
 * hypervisor provides on any host (TGVM_FF_HV) do not count. On false,
 * @ret_missing (may be NULL) gets what the host lacks. */
bool tgvm_host_accepts(const struct tgvm_cpu_model *host, const struct tgvm_featureset *model,
                       enum tgvm_vendor model_vendor, bool cross_vendor,
                       struct tgvm_featureset *ret_missing);

/* ---- the minimal model ---- */

/* The accelerator a model is for: its -cpu string starts under it. */
enum tgvm_model_accel {
	TGVM_MODEL_ACCEL_AUTO, /* TCG when TCG can present the needs, else KVM */
	TGVM_MODEL_ACCEL_TCG,
	TGVM_MODEL_ACCEL_KVM,
	TGVM_MODEL_ACCEL__MAX
};
const char *tgvm_model_accel_to_string(enum tgvm_model_accel a); /* "auto", "tcg", "kvm" */
int tgvm_model_accel_from_string(const char *s);                 /* or -EINVAL */

struct tgvm_model_request {
	struct tgvm_featureset need; /* what the software requires */
	struct tgvm_featureset uses; /* what it uses after a CPU check (reported) */
	enum tgvm_vendor vendor;     /* UNKNOWN: the vendor the needs allow, intel first */
	bool cross_vendor;           /* the VM may move between vendors */
	bool libvirt_names;          /* base only on unversioned names libvirt knows */
	enum tgvm_model_accel accel;
	/* The target hosts: a base they can all present as it is (its features a
	 * subset of hosts_common) is preferred. hosts_known false: any host. */
	bool hosts_known;
	struct tgvm_featureset hosts_common;
};

struct tgvm_model_choice {
	enum tgvm_vendor vendor;
	bool cross_vendor;
	enum tgvm_model_accel accel;      /* TCG or KVM: what the -cpu string starts under */
	struct tgvm_featureset presented; /* the exact set the guest sees (HV features aside) */
	char base[TGVM_MODEL_NAME_MAX];   /* nearest named QEMU model */
	char base_why[256];               /* why this base, in a sentence */
	bool hosts_known;                 /* the request's target hosts, for a rerun */
	struct tgvm_featureset hosts_common;
	struct tgvm_featureset plus;        /* features added to the base */
	struct tgvm_featureset minus;       /* features removed from the base */
	struct tgvm_featureset hv_kept;     /* hypervisor-provided features the base keeps */
	struct tgvm_featureset tcg_missing; /* features of the -cpu string TCG cannot give */
	struct tgvm_featureset lost;        /* 'uses' the model does not present */
};

/*
 * The minimal model: the Linux boot baseline plus every needed feature, closed
 * under dependencies, nothing else (bar hypervisor-provided bits), written as
 * a named QEMU model of the vendor: the closest real CPU that has every needed
 * feature (none added, the fewest removed), of those the target hosts
 * (@req->hosts_common) can present as they are; only when no model has them
 * all, the one that lacks the fewest. c->base_why says which case it was.
 * A feature that QEMU's models show on one vendor's CPUs only (sse4a, clzero:
 * AMD) picks that vendor; asked for another vendor, or for features of two
 * vendors, it fails with -EPERM naming them. A feature this QEMU cannot set
 * fails with -ENOTSUP; so does a need TCG cannot give when @req->accel is TCG.
 * Under TCG the base's hypervisor features TCG lacks (tsc-deadline) are
 * removed, so the string starts there. O(models * words).
 */
int tgvm_model_choose(const struct tgvm_modeldb *db, const struct tgvm_model_request *req,
                      struct tgvm_model_choice *ret, struct tgvm_error *reterr);

/* How a model fits an inventory (tgvm_model_choose_fleet()). */
struct tgvm_model_fit {
	uint64_t machines;                    /* machines that can run the VM */
	uint64_t total;                       /* machines in the inventory */
	uint64_t by_vendor[TGVM_VENDOR__MAX]; /* of them, per vendor (with that vendor's model) */
	size_t entries;                       /* inventory entries that can run it */
	unsigned vendors;                     /* 1 << vendor for each vendor counted */
};

/*
 * The minimal model for @req on the machines of @inv, counted the way
 * tgvm_fleet_evaluate() counts the minimal policy: a request without a vendor
 * (and without cross_vendor) is placed per vendor: each vendor's model is
 * counted on that vendor's machines, and the vendor whose model runs on the
 * most machines is chosen. No machine able to run it: -EPERM, and @reterr
 * names the features that rule the machines out. O(vendors * (models + hosts)).
 */
int tgvm_model_choose_fleet(const struct tgvm_modeldb *db, const struct tgvm_model_request *req,
                            const struct tgvm_inventory *inv, struct tgvm_model_choice *ret,
                            struct tgvm_model_fit *ret_fit, struct tgvm_error *reterr);
/* Is @h one of the machines tgvm_model_choose_fleet() counted for @c? */
bool tgvm_model_fit_host(const struct tgvm_model_fit *fit, const struct tgvm_model_choice *c,
                         const struct tgvm_host *h);

/* "Haswell-v4,-hle,-rtm,...,enforce" (QEMU -cpu). Caller frees. */
char *tgvm_model_qemu_string(const struct tgvm_model_choice *c);
/* libvirt <cpu mode='custom' match='exact'> XML. Caller frees. */
char *tgvm_model_libvirt_xml(const struct tgvm_model_choice *c);
json_t *tgvm_model_choice_to_json(const struct tgvm_model_choice *c);

/*
 * `--model auto`: scan @paths (an initramfs, a disk image, a root tree) with
 * tgvm scan and choose the minimal model for the required features, for
 * @vendor (UNKNOWN: intel). *ret_cpu is the QEMU -cpu string (caller frees);
 * *ret_need (may be NULL) the required set. Cost: one scan of the inputs.
 */
int tgvm_model_auto(const char *const *paths, size_t n_paths, enum tgvm_vendor vendor,
                    char **ret_cpu, struct tgvm_featureset *ret_need, struct tgvm_error *reterr);

/* ---- placement under policies ---- */

enum tgvm_policy {
	TGVM_POLICY_PASSTHROUGH, /* the VM sees its first host's whole CPU */
	TGVM_POLICY_BASELINE,    /* the fleet's common subset (FlexMigration, EVC) */
	TGVM_POLICY_MINIMAL,     /* tgvm: what the software requires, plus the guarded
				  * features every host able to run it has anyway */
	TGVM_POLICY__MAX
};
const char *tgvm_policy_to_string(enum tgvm_policy p);
int tgvm_policy_from_string(const char *s);

struct tgvm_vm_needs {
	char name[TGVM_VM_NAME_LEN + 1];
	struct tgvm_featureset required;
	struct tgvm_featureset guarded;
	enum tgvm_vendor vendor; /* UNKNOWN: any */
};

/*
 * Where one VM may run under one policy. A VM without a vendor that may not
 * cross vendors is placed per vendor (with each vendor's model on that
 * vendor's hosts): hosts is the sum, hosts_by_vendor the parts; the other
 * fields describe its primary placement (the vendor with the most machines).
 */
struct tgvm_placement {
	bool runs;                                  /* some host can start it at all */
	uint64_t hosts;                             /* machines (counts summed) it may run on */
	uint64_t hosts_by_vendor[TGVM_VENDOR__MAX]; /* zero with cross_vendor */
	size_t entries;                             /* inventory entries it may run on */
	enum tgvm_vendor vendor;                    /* of the primary placement */
	char first_host[TGVM_HOST_NAME_MAX];        /* where it starts (passthrough's CPU) */
	struct tgvm_featureset presented;           /* what the guest sees */
	struct tgvm_featureset lost;                /* required or guarded features not presented */
	struct tgvm_featureset blocking; /* required features not presented: cannot run */
};

struct tgvm_fleet_opts {
	bool cross_vendor;
	/* Passthrough's first host; NULL: the newest machine (most features) that can run the VM. */
	const char *first_host;
	/* When set, filled with nvms * inv->n bytes: bit p set when policy p allows VM i on host j. */
	uint8_t *matrix;
};

/*
 * Evaluate every VM under every policy. @ret must hold nvms * TGVM_POLICY__MAX
 * placements (VM-major). Deduplicates identical VMs and host profiles, so the
 * cost is O(distinct VMs * distinct profiles * words), not O(VMs * hosts).
 */
int tgvm_fleet_evaluate(const struct tgvm_inventory *inv, const struct tgvm_vm_needs *vms,
                        size_t nvms, const struct tgvm_fleet_opts *opts, struct tgvm_placement *ret,
                        struct tgvm_error *reterr);

/* ---- the heat map ---- */

/* Cells drawn at most: the largest groups are drawn, the rest counted in the picture. */
#define TGVM_HEATMAP_ROWS_MAX 60
#define TGVM_HEATMAP_COLS_MAX 48

/*
 * Why a cell has its colour. 1..7 are the policies that let the VM run there
 * (bit p for policy p); the other two are the reasons none does.
 */
enum tgvm_heat_kind {
	TGVM_HEAT_LACKS = 0,        /* the host lacks a required feature under every policy */
	TGVM_HEAT_OTHER_VENDOR = 8, /* another vendor's host: not a target (no --cross-vendor) */
	TGVM_HEAT__MAX
};
/* "only minimal (tgvm)", "other vendor: not a target under any policy", ... */
const char *tgvm_heat_kind_label(unsigned kind);
const char *tgvm_heat_kind_colour(unsigned kind); /* "#1a7f37" */

/* One row: VMs that require the same features (of one vendor). */
struct tgvm_heat_row {
	char label[TGVM_VM_NAME_LEN + 40]; /* "web" or "web and 41 more" */
	size_t vms;                        /* VMs in the group */
	struct tgvm_featureset required;
	enum tgvm_vendor vendor;
	bool runs; /* under some policy */
	uint64_t machines[TGVM_POLICY__MAX];
};

/* One column: inventory entries with the same CPU profile. */
struct tgvm_heat_col {
	char label[TGVM_HOST_NAME_MAX + 48]; /* "rome (40)" or "h12 and 11 like it (340)" */
	size_t entries;
	uint64_t machines;
	enum tgvm_vendor vendor;
};

/* A drawn box (cell, swatch or text, its estimated extent), for layout checks. */
struct tgvm_heat_box {
	int x, y, w, h;
	bool text;
};

struct tgvm_heatmap {
	size_t nrows, ncols; /* drawn */
	struct tgvm_heat_row *rows;
	struct tgvm_heat_col *cols;
	uint8_t *cells;                /* nrows * ncols kinds, row-major */
	size_t row_groups, col_groups; /* groups before the cap */
	size_t vms, vms_drawn;         /* VMs, and those in drawn rows */
	size_t entries;                /* inventory entries */
	uint64_t machines, machines_drawn;
	bool cross_vendor;
	unsigned kinds;    /* 1 << kind for each kind a cell has: the legend */
	int width, height; /* the canvas */
	size_t nboxes;
	struct tgvm_heat_box *boxes; /* everything drawn, after tgvm_heatmap_svg() */
};

/*
 * The heat map of @vms on @inv under @opts (its matrix is ignored): rows are
 * VMs grouped by requirement and vendor, columns inventory entries grouped by
 * CPU profile, the TGVM_HEATMAP_ROWS_MAX / _COLS_MAX largest groups drawn.
 * Memory O(VMs + entries) for the grouping plus O(drawn rows * profiles);
 * time one tgvm_fleet_evaluate() of the drawn groups. Free with
 * tgvm_heatmap_free().
 */
int tgvm_heatmap_build(const struct tgvm_inventory *inv, const struct tgvm_vm_needs *vms,
                       size_t nvms, const struct tgvm_fleet_opts *opts, struct tgvm_heatmap **ret,
                       struct tgvm_error *reterr);
/* The picture as SVG (lays it out: sets width, height and boxes). Caller frees; NULL: ENOMEM. */
char *tgvm_heatmap_svg(struct tgvm_heatmap *h);
void tgvm_heatmap_free(struct tgvm_heatmap *h);

/*
 * Read a report of `tgvm scan`, `tgvm probe` or `tgvm model --json` (or a plain
 * {"required":[...],"guarded":[...],"vendor","name"}) into needs. Feature
 * names are checked; a plain report's unknown keys are refused
 * (tgvm_json_check_keys()), a tool's report only keys one typo away from those
 * read. A scan report listing files it could not read is incomplete: refused
 * with -EINVAL naming them, unless @allow_incomplete, when *ret_unread (may be
 * NULL) gets "PATH: ERROR" lines of those files (caller frees; NULL when
 * complete).
 */
int tgvm_needs_from_report(const char *path, bool allow_incomplete, struct tgvm_vm_needs *ret,
                           char **ret_unread, struct tgvm_error *reterr);

#endif
