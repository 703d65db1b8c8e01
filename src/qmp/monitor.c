// SPDX-License-Identifier: MIT
/*
 * The typed monitor: each QMP command tgvm sends, its arguments built from C
 * values and its reply checked and read into C structs. Every command name
 * in tgvm is written here (and in commands.list, which the layering check reads).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tgvm/qmp-monitor.h"
#include "util/util.h"

static const char *const run_state_names[TGVM_QMP_RUN_STATE__MAX] = {
    [TGVM_QMP_RUN_STATE_OTHER] = NULL,
    [TGVM_QMP_RUN_STATE_DEBUG] = "debug",
    [TGVM_QMP_RUN_STATE_INMIGRATE] = "inmigrate",
    [TGVM_QMP_RUN_STATE_INTERNAL_ERROR] = "internal-error",
    [TGVM_QMP_RUN_STATE_IO_ERROR] = "io-error",
    [TGVM_QMP_RUN_STATE_PAUSED] = "paused",
    [TGVM_QMP_RUN_STATE_POSTMIGRATE] = "postmigrate",
    [TGVM_QMP_RUN_STATE_PRELAUNCH] = "prelaunch",
    [TGVM_QMP_RUN_STATE_FINISH_MIGRATE] = "finish-migrate",
    [TGVM_QMP_RUN_STATE_RESTORE_VM] = "restore-vm",
    [TGVM_QMP_RUN_STATE_RUNNING] = "running",
    [TGVM_QMP_RUN_STATE_SAVE_VM] = "save-vm",
    [TGVM_QMP_RUN_STATE_SHUTDOWN] = "shutdown",
    [TGVM_QMP_RUN_STATE_SUSPENDED] = "suspended",
    [TGVM_QMP_RUN_STATE_WATCHDOG] = "watchdog",
    [TGVM_QMP_RUN_STATE_GUEST_PANICKED] = "guest-panicked",
    [TGVM_QMP_RUN_STATE_COLO] = "colo",
};

static const char *const migration_status_names[TGVM_QMP_MIGRATION_STATUS__MAX] = {
    [TGVM_QMP_MIGRATION_STATUS_OTHER] = NULL,
    [TGVM_QMP_MIGRATION_STATUS_NONE] = "none",
    [TGVM_QMP_MIGRATION_STATUS_SETUP] = "setup",
    [TGVM_QMP_MIGRATION_STATUS_CANCELLING] = "cancelling",
    [TGVM_QMP_MIGRATION_STATUS_CANCELLED] = "cancelled",
    [TGVM_QMP_MIGRATION_STATUS_ACTIVE] = "active",
    [TGVM_QMP_MIGRATION_STATUS_POSTCOPY_ACTIVE] = "postcopy-active",
    [TGVM_QMP_MIGRATION_STATUS_POSTCOPY_PAUSED] = "postcopy-paused",
    [TGVM_QMP_MIGRATION_STATUS_POSTCOPY_RECOVER_SETUP] = "postcopy-recover-setup",
    [TGVM_QMP_MIGRATION_STATUS_POSTCOPY_RECOVER] = "postcopy-recover",
    [TGVM_QMP_MIGRATION_STATUS_COMPLETED] = "completed",
    [TGVM_QMP_MIGRATION_STATUS_FAILED] = "failed",
    [TGVM_QMP_MIGRATION_STATUS_COLO] = "colo",
    [TGVM_QMP_MIGRATION_STATUS_PRE_SWITCHOVER] = "pre-switchover",
    [TGVM_QMP_MIGRATION_STATUS_DEVICE] = "device",
    [TGVM_QMP_MIGRATION_STATUS_WAIT_UNPLUG] = "wait-unplug",
};

static const char *const migrate_cap_names[TGVM_QMP_MIGRATE_CAP__MAX] = {
    [TGVM_QMP_MIGRATE_CAP_EVENTS] = "events",
    [TGVM_QMP_MIGRATE_CAP_MULTIFD] = "multifd",
    [TGVM_QMP_MIGRATE_CAP_AUTO_CONVERGE] = "auto-converge",
    [TGVM_QMP_MIGRATE_CAP_POSTCOPY_RAM] = "postcopy-ram",
    [TGVM_QMP_MIGRATE_CAP_X_IGNORE_SHARED] = "x-ignore-shared",
    [TGVM_QMP_MIGRATE_CAP_PAUSE_BEFORE_SWITCHOVER] = "pause-before-switchover",
    [TGVM_QMP_MIGRATE_CAP_RETURN_PATH] = "return-path",
    [TGVM_QMP_MIGRATE_CAP_XBZRLE] = "xbzrle",
    [TGVM_QMP_MIGRATE_CAP_ZERO_COPY_SEND] = "zero-copy-send",
};

static const char *const cpu_expansion_names[TGVM_QMP_CPU_EXPANSION__MAX] = {
    [TGVM_QMP_CPU_EXPANSION_STATIC] = "static",
    [TGVM_QMP_CPU_EXPANSION_FULL] = "full",
};

static const char *table_to_string(const char *const *names, int n, int v)
{
	return v >= 0 && v < n ? names[v] : NULL;
}

static int table_from_string(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (names[i] && !strcmp(names[i], s))
			return i;
	return -EINVAL;
}

const char *tgvm_qmp_run_state_to_string(enum tgvm_qmp_run_state s)
{
	return table_to_string(run_state_names, TGVM_QMP_RUN_STATE__MAX, (int)s);
}

int tgvm_qmp_run_state_from_string(const char *s)
{
	return table_from_string(run_state_names, TGVM_QMP_RUN_STATE__MAX, s);
}

const char *tgvm_qmp_migration_status_to_string(enum tgvm_qmp_migration_status s)
{
	return table_to_string(migration_status_names, TGVM_QMP_MIGRATION_STATUS__MAX, (int)s);
}

int tgvm_qmp_migration_status_from_string(const char *s)
{
	return table_from_string(migration_status_names, TGVM_QMP_MIGRATION_STATUS__MAX, s);
}

const char *tgvm_qmp_migrate_cap_to_string(enum tgvm_qmp_migrate_cap cap)
{
	return table_to_string(migrate_cap_names, TGVM_QMP_MIGRATE_CAP__MAX, (int)cap);
}

int tgvm_qmp_migrate_cap_from_string(const char *s)
{
	return table_from_string(migrate_cap_names, TGVM_QMP_MIGRATE_CAP__MAX, s);
}

const char *tgvm_qmp_cpu_expansion_to_string(enum tgvm_qmp_cpu_expansion t)
{
	return table_to_string(cpu_expansion_names, TGVM_QMP_CPU_EXPANSION__MAX, (int)t);
}

int tgvm_qmp_cpu_expansion_from_string(const char *s)
{
	return table_from_string(cpu_expansion_names, TGVM_QMP_CPU_EXPANSION__MAX, s);
}

/* ---- helpers ---- */

static int oom(struct tgvm_error *reterr)
{
	return tgvm_error_set(reterr, ENOMEM, "qmp: out of memory");
}

static int malformed(struct tgvm_error *reterr, const char *command, const char *what)
{
	return tgvm_error_set(reterr, EPROTO, "qmp: reply to '%s' is malformed: %s", command, what);
}

/* A command without arguments whose reply does not matter. */
static int run_plain(struct qmp_conn *c, const char *command, int timeout_ms,
                     struct tgvm_error *reterr)
{
	return qmp_conn_command(c, command, NULL, timeout_ms, NULL, reterr);
}

/* A command with @args (consumed, NULL meaning out of memory) and no reply. */
static int run_args(struct qmp_conn *c, const char *command, json_t *args, int timeout_ms,
                    struct tgvm_error *reterr)
{
	int r;

	if (!args)
		return oom(reterr);
	r = qmp_conn_command(c, command, args, timeout_ms, NULL, reterr);
	json_decref(args);
	return r;
}

/* A command with @args (consumed; NULL: none) whose "return" must be an object. */
static int run_object(struct qmp_conn *c, const char *command, json_t *args, int timeout_ms,
                      json_t **ret, struct tgvm_error *reterr)
{
	json_t *reply = NULL;
	int r = qmp_conn_command(c, command, args, timeout_ms, &reply, reterr);

	json_decref(args);
	if (r < 0)
		return r;
	if (!json_is_object(reply)) {
		json_decref(reply);
		return malformed(reterr, command, "not an object");
	}
	*ret = reply;
	return 0;
}

/* A non-negative integer in @o at @key (a real too: QEMU's uint64 past INT64_MAX). */
static bool get_u64(json_t *o, const char *key, uint64_t *ret)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*ret = (uint64_t)json_integer_value(v);
		return true;
	}
	if (json_is_real(v) && json_real_value(v) >= 0 &&
	    json_real_value(v) < 18446744073709551616.0) {
		*ret = (uint64_t)json_real_value(v);
		return true;
	}
	*ret = 0;
	return false;
}

static bool get_i64(json_t *o, const char *key, int64_t *ret)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v)) {
		*ret = (int64_t)json_integer_value(v);
		return true;
	}
	*ret = 0;
	return false;
}

/* ---- run state ---- */

int tgvm_qmp_query_status(struct qmp_conn *c, int timeout_ms, struct tgvm_qmp_status *ret,
                          struct tgvm_error *reterr)
{
	struct tgvm_qmp_status s = {0};
	json_t *reply = NULL, *running;
	const char *word;
	int r;

	r = run_object(c, "query-status", NULL, timeout_ms, &reply, reterr);
	if (r < 0)
		return r;
	running = json_object_get(reply, "running");
	if (!json_is_boolean(running)) {
		json_decref(reply);
		return malformed(reterr, "query-status", "no 'running'");
	}
	s.running = json_is_true(running);
	word = json_string_value(json_object_get(reply, "status"));
	if (word) {
		int st = tgvm_qmp_run_state_from_string(word);

		snprintf(s.status, sizeof(s.status), "%s", word);
		s.state = st < 0 ? TGVM_QMP_RUN_STATE_OTHER : (enum tgvm_qmp_run_state)st;
	}
	json_decref(reply);
	*ret = s;
	return 0;
}

int tgvm_qmp_stop(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr)
{
	return run_plain(c, "stop", timeout_ms, reterr);
}

int tgvm_qmp_cont(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr)
{
	return run_plain(c, "cont", timeout_ms, reterr);
}

int tgvm_qmp_quit(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr)
{
	return run_plain(c, "quit", timeout_ms, reterr);
}

/* ---- migration ---- */

static void read_ram(json_t *ram, struct tgvm_qmp_migrate_ram *r)
{
	json_t *mbps = json_object_get(ram, "mbps");

	r->has_transferred = get_u64(ram, "transferred", &r->transferred);
	r->has_remaining = get_u64(ram, "remaining", &r->remaining);
	r->has_total = get_u64(ram, "total", &r->total);
	r->has_duplicate = get_u64(ram, "duplicate", &r->duplicate);
	r->has_normal = get_u64(ram, "normal", &r->normal);
	r->has_dirty_pages_rate = get_u64(ram, "dirty-pages-rate", &r->dirty_pages_rate);
	r->has_page_size = get_u64(ram, "page-size", &r->page_size);
	r->has_dirty_sync_count = get_u64(ram, "dirty-sync-count", &r->dirty_sync_count);
	r->has_postcopy_requests = get_u64(ram, "postcopy-requests", &r->postcopy_requests);
	r->has_precopy_bytes = get_u64(ram, "precopy-bytes", &r->precopy_bytes);
	r->has_downtime_bytes = get_u64(ram, "downtime-bytes", &r->downtime_bytes);
	if (json_is_number(mbps) && json_number_value(mbps) >= 0) {
		r->has_mbps = true;
		r->mbps = json_number_value(mbps);
	}
}

int tgvm_qmp_query_migrate(struct qmp_conn *c, int timeout_ms, struct tgvm_qmp_migrate_info *ret,
                           struct tgvm_error *reterr)
{
	struct tgvm_qmp_migrate_info m = {0};
	json_t *reply = NULL, *ram;
	const char *word, *desc;
	int r;

	r = run_object(c, "query-migrate", NULL, timeout_ms, &reply, reterr);
	if (r < 0)
		return r;
	m.status = TGVM_QMP_MIGRATION_STATUS_NONE;
	word = json_string_value(json_object_get(reply, "status"));
	if (word) {
		int st = tgvm_qmp_migration_status_from_string(word);

		m.has_status = true;
		snprintf(m.status_word, sizeof(m.status_word), "%s", word);
		m.status =
		    st < 0 ? TGVM_QMP_MIGRATION_STATUS_OTHER : (enum tgvm_qmp_migration_status)st;
	}
	desc = json_string_value(json_object_get(reply, "error-desc"));
	if (desc) {
		m.has_error_desc = true;
		snprintf(m.error_desc, sizeof(m.error_desc), "%s", desc);
	}
	m.has_total_time = get_i64(reply, "total-time", &m.total_time);
	m.has_downtime = get_i64(reply, "downtime", &m.downtime);
	m.has_setup_time = get_i64(reply, "setup-time", &m.setup_time);
	m.has_expected_downtime = get_i64(reply, "expected-downtime", &m.expected_downtime);
	ram = json_object_get(reply, "ram");
	if (json_is_object(ram)) {
		m.has_ram = true;
		read_ram(ram, &m.ram);
	}
	json_decref(reply);
	*ret = m;
	return 0;
}

int tgvm_qmp_migrate_set_capabilities(struct qmp_conn *c,
                                      const struct tgvm_qmp_migrate_cap_state *caps, size_t n,
                                      int timeout_ms, struct tgvm_error *reterr)
{
	json_t *list = json_array();

	if (!list)
		return oom(reterr);
	for (size_t i = 0; i < n; i++) {
		const char *name = tgvm_qmp_migrate_cap_to_string(caps[i].cap);

		if (!name) {
			json_decref(list);
			return tgvm_error_set(reterr, EINVAL,
			                      "qmp: unknown migration capability %d",
			                      (int)caps[i].cap);
		}
		if (json_array_append_new(list, json_pack("{s:s, s:b}", "capability", name, "state",
		                                          caps[i].state)) < 0) {
			json_decref(list);
			return oom(reterr);
		}
	}
	return run_args(c, "migrate-set-capabilities", json_pack("{s:o}", "capabilities", list),
	                timeout_ms, reterr);
}

static int set_u64(json_t *o, const char *key, uint64_t v, struct tgvm_error *reterr)
{
	if (v > INT64_MAX)
		return tgvm_error_set(reterr, EINVAL, "qmp: migration parameter '%s' is too large",
		                      key);
	if (json_object_set_new(o, key, json_integer((json_int_t)v)) < 0)
		return oom(reterr);
	return 0;
}

int tgvm_qmp_migrate_set_parameters(struct qmp_conn *c, const struct tgvm_qmp_migrate_params *p,
                                    int timeout_ms, struct tgvm_error *reterr)
{
	json_t *args = json_object();
	int r = 0;

	if (!args)
		return oom(reterr);
	if (p->has_max_bandwidth)
		r = set_u64(args, "max-bandwidth", p->max_bandwidth, reterr);
	if (r == 0 && p->has_downtime_limit)
		r = set_u64(args, "downtime-limit", p->downtime_limit, reterr);
	if (r == 0 && p->has_max_postcopy_bandwidth)
		r = set_u64(args, "max-postcopy-bandwidth", p->max_postcopy_bandwidth, reterr);
	if (r == 0 && p->has_multifd_channels) {
		if (p->multifd_channels < 1 || p->multifd_channels > 255)
			r = tgvm_error_set(reterr, EINVAL,
			                   "qmp: multifd-channels %d is outside 1..255",
			                   p->multifd_channels);
		else
			r = set_u64(args, "multifd-channels", (uint64_t)p->multifd_channels,
			            reterr);
	}
	if (r < 0) {
		json_decref(args);
		return r;
	}
	return run_args(c, "migrate-set-parameters", args, timeout_ms, reterr);
}

int tgvm_qmp_migrate(struct qmp_conn *c, const char *uri, bool resume, int timeout_ms,
                     struct tgvm_error *reterr)
{
	json_t *args = json_pack("{s:s}", "uri", uri);

	if (args && resume && json_object_set_new(args, "resume", json_true()) < 0) {
		json_decref(args);
		args = NULL;
	}
	return run_args(c, "migrate", args, timeout_ms, reterr);
}

int tgvm_qmp_migrate_incoming(struct qmp_conn *c, const char *uri, int timeout_ms,
                              struct tgvm_error *reterr)
{
	return run_args(c, "migrate-incoming", json_pack("{s:s}", "uri", uri), timeout_ms, reterr);
}

int tgvm_qmp_migrate_cancel(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr)
{
	return run_plain(c, "migrate_cancel", timeout_ms, reterr);
}

int tgvm_qmp_migrate_pause(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr)
{
	return run_plain(c, "migrate-pause", timeout_ms, reterr);
}

int tgvm_qmp_migrate_start_postcopy(struct qmp_conn *c, int timeout_ms, struct tgvm_error *reterr)
{
	return run_plain(c, "migrate-start-postcopy", timeout_ms, reterr);
}

int tgvm_qmp_migrate_recover(struct qmp_conn *c, const char *uri, int timeout_ms,
                             struct tgvm_error *reterr)
{
	return run_args(c, "migrate-recover", json_pack("{s:s}", "uri", uri), timeout_ms, reterr);
}

/* ---- descriptors ---- */

int tgvm_qmp_getfd(struct qmp_conn *c, const char *fdname, int fd, int timeout_ms,
                   struct tgvm_error *reterr)
{
	return qmp_conn_getfd(c, fdname, fd, timeout_ms, reterr);
}

int tgvm_qmp_closefd(struct qmp_conn *c, const char *fdname, int timeout_ms,
                     struct tgvm_error *reterr)
{
	return run_args(c, "closefd", json_pack("{s:s}", "fdname", fdname), timeout_ms, reterr);
}

/* ---- diagnostics ---- */

int tgvm_qmp_x_query_jit(struct qmp_conn *c, int timeout_ms, int64_t *ret_tb_count,
                         struct tgvm_error *reterr)
{
	json_t *reply = NULL;
	const char *text, *at;
	int64_t n = -1;
	int r;

	r = run_object(c, "x-query-jit", NULL, timeout_ms, &reply, reterr);
	if (r < 0)
		return r;
	text = json_string_value(json_object_get(reply, "human-readable-text"));
	if (!text) {
		json_decref(reply);
		return malformed(reterr, "x-query-jit", "no 'human-readable-text'");
	}
	/* "TB count            6712" */
	at = strstr(text, "TB count");
	if (at) {
		char *end;
		long long v;

		at += strlen("TB count");
		at += strspn(at, " \t");
		errno = 0;
		v = strtoll(at, &end, 10);
		if (end != at && errno == 0 && v >= 0)
			n = v;
	}
	json_decref(reply);
	*ret_tb_count = n;
	return 0;
}

int tgvm_qmp_human_monitor_command(struct qmp_conn *c, const char *command_line, int timeout_ms,
                                   char **ret_output, struct tgvm_error *reterr)
{
	json_t *args = json_pack("{s:s}", "command-line", command_line), *reply = NULL;
	char *out;
	int r;

	if (!args)
		return oom(reterr);
	r = qmp_conn_command(c, "human-monitor-command", args, timeout_ms, &reply, reterr);
	json_decref(args);
	if (r < 0)
		return r;
	if (!json_is_string(reply)) {
		json_decref(reply);
		return malformed(reterr, "human-monitor-command", "not a string");
	}
	if (ret_output) {
		out = strdup(json_string_value(reply));
		if (!out) {
			json_decref(reply);
			return oom(reterr);
		}
		*ret_output = out;
	}
	json_decref(reply);
	return 0;
}

int tgvm_qmp_trace_event_set_state(struct qmp_conn *c, const char *name, bool enable,
                                   int timeout_ms, struct tgvm_error *reterr)
{
	return run_args(c, "trace-event-set-state",
	                json_pack("{s:s, s:b}", "name", name, "enable", enable), timeout_ms,
	                reterr);
}

/* ---- CPU models ---- */

void tgvm_qmp_cpu_defs_free(struct tgvm_qmp_cpu_def *defs, size_t n)
{
	if (!defs)
		return;
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < defs[i].n_unavailable; k++)
			free(defs[i].unavailable_features[k]);
		free(defs[i].unavailable_features);
	}
	free(defs);
}

/* One entry of query-cpu-definitions into @d: 1 kept, 0 skipped, -errno. */
static int read_cpu_def(json_t *j, struct tgvm_qmp_cpu_def *d, struct tgvm_error *reterr)
{
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *alias = json_string_value(json_object_get(j, "alias-of"));
	json_t *unav = json_object_get(j, "unavailable-features"), *u;
	size_t k;

	memset(d, 0, sizeof(*d));
	if (!name || strlen(name) >= sizeof(d->name) ||
	    (alias && strlen(alias) >= sizeof(d->alias_of)))
		return 0;
	snprintf(d->name, sizeof(d->name), "%s", name);
	if (alias)
		snprintf(d->alias_of, sizeof(d->alias_of), "%s", alias);
	d->migration_safe = json_is_true(json_object_get(j, "migration-safe"));
	d->is_static = json_is_true(json_object_get(j, "static"));
	d->deprecated = json_is_true(json_object_get(j, "deprecated"));
	if (!json_is_array(unav))
		return 1;
	if (json_array_size(unav) > TGVM_QMP_CPU_UNAV_MAX)
		return malformed(reterr, "query-cpu-definitions", "too many unavailable features");
	d->has_unavailable_features = true;
	d->unavailable_features = calloc(json_array_size(unav) + 1, sizeof(char *));
	if (!d->unavailable_features)
		return oom(reterr);
	json_array_foreach(unav, k, u)
	{
		const char *f = json_string_value(u);

		if (!f || strlen(f) >= TGVM_QMP_CPU_NAME_MAX)
			continue;
		d->unavailable_features[d->n_unavailable] = strdup(f);
		if (!d->unavailable_features[d->n_unavailable])
			return oom(reterr);
		d->n_unavailable++;
	}
	return 1;
}

int tgvm_qmp_query_cpu_definitions(struct qmp_conn *c, int timeout_ms,
                                   struct tgvm_qmp_cpu_def **ret, size_t *ret_n,
                                   struct tgvm_error *reterr)
{
	struct tgvm_qmp_cpu_def *defs = NULL;
	json_t *reply = NULL, *j;
	size_t n = 0, i;
	int r;

	r = qmp_conn_command(c, "query-cpu-definitions", NULL, timeout_ms, &reply, reterr);
	if (r < 0)
		return r;
	if (!json_is_array(reply)) {
		r = malformed(reterr, "query-cpu-definitions", "not an array");
		goto out;
	}
	if (json_array_size(reply) > TGVM_QMP_CPU_DEFS_MAX) {
		r = malformed(reterr, "query-cpu-definitions", "too many models");
		goto out;
	}
	defs = calloc(json_array_size(reply) + 1, sizeof(*defs));
	if (!defs) {
		r = oom(reterr);
		goto out;
	}
	json_array_foreach(reply, i, j)
	{
		r = read_cpu_def(j, &defs[n], reterr);
		if (r < 0) {
			n++; /* free what it holds */
			goto out;
		}
		n += (size_t)r;
	}
	*ret = defs;
	*ret_n = n;
	defs = NULL;
	r = 0;
out:
	tgvm_qmp_cpu_defs_free(defs, n);
	json_decref(reply);
	return r;
}

void tgvm_qmp_cpu_model_release(struct tgvm_qmp_cpu_model *m)
{
	if (!m)
		return;
	json_decref(m->props);
	m->props = NULL;
}

int tgvm_qmp_query_cpu_model_expansion(struct qmp_conn *c, enum tgvm_qmp_cpu_expansion type,
                                       const char *name, json_t *props, int timeout_ms,
                                       struct tgvm_qmp_cpu_model *ret, struct tgvm_error *reterr)
{
	const char *t = tgvm_qmp_cpu_expansion_to_string(type);
	json_t *args, *model, *reply = NULL, *p;
	const char *mname;
	int r;

	if (!t)
		return tgvm_error_set(reterr, EINVAL, "qmp: unknown CPU model expansion type %d",
		                      (int)type);
	args = json_pack("{s:s, s:{s:s}}", "type", t, "model", "name", name);
	if (!args)
		return oom(reterr);
	if (props && json_object_set(json_object_get(args, "model"), "props", props) < 0) {
		json_decref(args);
		return oom(reterr);
	}
	r = run_object(c, "query-cpu-model-expansion", args, timeout_ms, &reply, reterr);
	if (r < 0)
		return r;
	model = json_object_get(reply, "model");
	mname = json_string_value(json_object_get(model, "name"));
	p = json_object_get(model, "props");
	if (!mname || strlen(mname) >= sizeof(ret->name) || (p && !json_is_object(p))) {
		json_decref(reply);
		return tgvm_error_set(reterr, EPROTO,
		                      "qmp: QEMU's expansion of CPU model '%s' is malformed", name);
	}
	p = p ? json_incref(p) : json_object();
	if (!p) {
		json_decref(reply);
		return oom(reterr);
	}
	snprintf(ret->name, sizeof(ret->name), "%s", mname);
	ret->props = p;
	json_decref(reply);
	return 0;
}
