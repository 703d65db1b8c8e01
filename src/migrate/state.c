// SPDX-License-Identifier: MIT
/*
 * The state of moves on disk, and settling a move that cannot go on: the
 * claim (one move of a VM at a time), the journal of a move in flight
 * (migration-active.json: enough for another process to finish its work),
 * the last timeline, the VM's decision log, cancel requests, and the rule
 * that decides from the QEMUs themselves whether an interrupted or orphaned
 * move is completed or rolled back.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "migrate/migrate-int.h"
#include "tgvm/memdev.h"

int mig_write_json(const char *dir, const char *name, json_t *j, struct tgvm_error *reterr)
{
	char path[4400], *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	int r;

	if (!s)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	r = tgvm_file_write(path, s, strlen(s), reterr);
	free(s);
	return r;
}

json_t *mig_read_json(const char *dir, const char *name)
{
	char path[4400], *data = NULL;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (tgvm_file_read(path, 8u << 20, &data, NULL, NULL) < 0)
		return NULL;
	j = json_loads(data, 0, NULL);
	free(data);
	return j;
}

void mig_log(const char *vmdir, const char *fmt, ...)
{
	char path[4400], line[2 * TGVM_ERROR_MSG_MAX], stamp[40];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;
	int fd, n;

	snprintf(path, sizeof(path), "%s/" MIG_LOG_FILE, vmdir);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line), "%s tgvm[%ld]: ", stamp, (long)getpid());
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	dprintf(fd, "%s\n", line);
	close(fd);
}

/* The pid in @vmdir's claim, 0 when there is none or it cannot be read. */
static long claim_pid(const char *vmdir)
{
	char path[4400], *text = NULL;
	int pid = 0;

	snprintf(path, sizeof(path), "%s/" MIG_CLAIM_FILE, vmdir);
	if (tgvm_file_read(path, 64, &text, NULL, NULL) == 0) {
		text[strcspn(text, "\r\n ")] = '\0';
		if (tgvm_parse_int(text, 1, INT32_MAX, &pid) < 0)
			pid = 0;
	}
	free(text);
	return pid;
}

static bool pid_alive(long pid)
{
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

int mig_claim(const char *vmdir, const char *name, struct tgvm_error *reterr)
{
	char path[4400];

	snprintf(path, sizeof(path), "%s/" MIG_CLAIM_FILE, vmdir);
	for (int tries = 0; tries < 3; tries++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		long pid;

		if (fd >= 0) {
			dprintf(fd, "%ld\n", (long)getpid());
			close(fd);
			return 0;
		}
		if (errno != EEXIST)
			return tgvm_error_set(reterr, errno, "cannot create '%s': %s", path,
			                      strerror(errno));
		pid = claim_pid(vmdir);
		if (pid > 0 && pid != (long)getpid() && pid_alive(pid))
			return tgvm_error_set(reterr, EBUSY,
			                      "VM '%s' is already migrating (tgvm process %ld; "
			                      "'tgvm migrate cancel %s' stops it)",
			                      name, pid, name);
		unlink(path); /* stale: its process is gone */
	}
	return tgvm_error_set(reterr, EBUSY, "VM '%s': cannot claim '%s'", name, path);
}

void mig_unclaim(const char *vmdir)
{
	char path[4400];

	if (claim_pid(vmdir) != (long)getpid())
		return;
	snprintf(path, sizeof(path), "%s/" MIG_CLAIM_FILE, vmdir);
	unlink(path);
}

static json_t *actions_to_json(const struct migrate_actions *a)
{
	return json_pack("{s:s, s:s, s:s}", "lease_file", a->lease_file, "free_on_complete",
	                 a->free_on_complete, "free_on_rollback", a->free_on_rollback);
}

static void actions_from_json(json_t *j, struct migrate_actions *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->lease_file, sizeof(a->lease_file), "%s",
	         json_string_value(json_object_get(j, "lease_file")) ?: "");
	snprintf(a->free_on_complete, sizeof(a->free_on_complete), "%s",
	         json_string_value(json_object_get(j, "free_on_complete")) ?: "");
	snprintf(a->free_on_rollback, sizeof(a->free_on_rollback), "%s",
	         json_string_value(json_object_get(j, "free_on_rollback")) ?: "");
}

void mig_journal_write(struct mig *m)
{
	json_t *j = migrate_timeline_to_json(m->t), *rec;

	json_object_set_new(j, "migrator_pid", json_integer(getpid()));
	json_object_set_new(j, "incoming_dir", json_string(m->indir));
	json_object_set_new(j, "qemu_status", json_string(m->qemu_status));
	json_object_set_new(j, "phase", json_string(migrate_phase_to_string(m->phase)));
	json_object_set_new(j, "status", json_string("active"));
	rec =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:o}", "src_host", m->src.host,
	              "src_tap", m->src.tap, "src_mac", m->src.mac, "dst_host", m->dst_host.name,
	              "dst_tap", m->dst.tap, "src_was_running", m->src_was_running, "stop_seen",
	              m->stop_seen, "resume_seen", m->resume_seen, "net_switched",
	              m->t->net_switched, "actions", actions_to_json(&m->o->actions));
	json_object_set_new(j, "recovery", rec);
	mig_write_json(m->vmdir, MIG_ACTIVE_FILE, j, NULL);
	json_decref(j);
}

void mig_wait_source_idle(struct qmp_conn *q, int timeout_ms)
{
	uint64_t until = tgvm_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (tgvm_now_ns() < until) {
		struct tgvm_qmp_migrate_info mi;

		if (tgvm_qmp_query_migrate(q, MIG_QMP_MS, &mi, NULL) < 0)
			return;
		if (!mig_in_flight(mi.status))
			return;
		tgvm_sleep_ms(20);
	}
}

/* The destination's files that become the VM's; its pid last, so that a
 * crash halfway leaves the source's pid file (dead) or the destination's. */
static const char *const moved_files[] = {"config.json", "qemu.log", "console.sock", "qmp.sock",
                                          "pid"};

int mig_finish(const char *vmdir, const char *indir, const char *src_host, const char *src_tap,
               struct tgvm_error *reterr)
{
	char from[4400], to[4400];
	int r;

	if (!indir[0])
		return 0; /* done before */
	snprintf(from, sizeof(from), "%s/pid", indir);
	/* Until the destination's pid file has moved, the VM directory's is the
	 * source's: stop it (again, after a crash halfway: a no-op). */
	if (access(from, F_OK) == 0 && (r = vm_kill_dir(vmdir, src_host, src_tap, reterr)) < 0)
		return tgvm_error_prefix(reterr, "cannot stop the source QEMU");
	for (size_t i = 0; i < ARRAY_SIZE(moved_files); i++) {
		snprintf(from, sizeof(from), "%s/%s", indir, moved_files[i]);
		snprintf(to, sizeof(to), "%s/%s", vmdir, moved_files[i]);
		if (rename(from, to) < 0 && errno != ENOENT)
			return tgvm_error_set(reterr, errno, "cannot move '%s': %s", from,
			                      strerror(errno));
	}
	vm_rm_rf(indir);
	return 0;
}

/* One line in the VM's console log where it changed hosts (the log is kept whole). */
void mig_serial_mark(const char *vmdir, const char *what)
{
	char path[4400], stamp[40];
	time_t now = time(NULL);
	struct tm tm;
	int fd;

	snprintf(path, sizeof(path), "%s/serial.log", vmdir);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	dprintf(fd, "\r\n[tgvm %s] %s\r\n", stamp, what);
	close(fd);
}

/* Hand a lease over to @host (a later process: take the lock first). */
static int lease_move(const char *file, const char *host, struct tgvm_error *reterr)
{
	struct vm_memdev_lease l = {.fd = -1};
	int r;

	if ((r = vm_memdev_lease_lock(file, &l, reterr)) < 0)
		return r;
	r = strcmp(l.host, host) ? vm_memdev_lease_move(&l, host, reterr) : 0;
	vm_memdev_lease_unlock(&l);
	return r;
}

int mig_actions_run(const struct migrate_actions *a, bool completed, const char *dst_host,
                    struct vm_memdev_lease *held, struct tgvm_error *reterr)
{
	int r = 0;

	if (completed && a->lease_file[0] && dst_host) {
		if (held && held->fd >= 0)
			r = strcmp(held->host, dst_host)
			        ? vm_memdev_lease_move(held, dst_host, reterr)
			        : 0;
		else
			r = lease_move(a->lease_file, dst_host, reterr);
	}
	if (completed && a->free_on_complete[0])
		vm_memdev_free(a->free_on_complete);
	if (!completed && a->free_on_rollback[0])
		vm_memdev_free(a->free_on_rollback);
	return r;
}

void mig_roll_back(struct mig *m)
{
	/* A STOP read while cancelling (a last copy that was under way) must
	 * not point the network at a destination that is about to go. */
	if (m->sq)
		qmp_conn_set_event_hook(m->sq, NULL, NULL);
	mig_net_switch_back(m);
	if (m->sq)
		tgvm_qmp_migrate_cancel(m->sq, MIG_QMP_MS, NULL);
	/* Gone, the destination cannot hold the source's stream open. */
	qmp_conn_free(m->dq);
	m->dq = NULL;
	m->run.dq = NULL;
	if (m->indir[0]) {
		vm_kill_dir(m->indir, m->dst_host.name, m->dst.tap, NULL);
		vm_rm_rf(m->indir);
	}
	if (m->sq) {
		struct tgvm_qmp_status st;

		/* The source may hold our connection's end (getfd) without having
		 * used it: let it go (an error just means it had none). */
		if (m->stream_fd)
			tgvm_qmp_closefd(m->sq, MIG_STREAM_FD_NAME, MIG_QMP_MS, NULL);
		mig_wait_source_idle(m->sq, 30000);
		if (m->src_was_running &&
		    tgvm_qmp_query_status(m->sq, MIG_QMP_MS, &st, NULL) == 0 && !st.running)
			tgvm_qmp_cont(m->sq, MIG_QMP_MS, NULL);
	}
}

enum mig_verdict mig_settle(struct qmp_conn *sq, struct qmp_conn *dq, bool resume_seen, char *why,
                            size_t why_size)
{
	struct tgvm_qmp_status ds = {0}, ss = {0};
	struct tgvm_qmp_migrate_info dm = {0}, sm = {0};
	bool d_ok = dq && tgvm_qmp_query_status(dq, MIG_QMP_MS, &ds, NULL) == 0;
	bool d_mig = dq && tgvm_qmp_query_migrate(dq, MIG_QMP_MS, &dm, NULL) == 0;
	size_t n = strlen(why);

#define WHY(...)                                                                                   \
	do {                                                                                       \
		if (n < why_size)                                                                  \
			n += (size_t)snprintf(why + n, why_size - n, __VA_ARGS__);                 \
	} while (0)
	WHY("%sdestination: %s", n ? "; " : "", d_ok ? ds.status : (dq ? "not answering" : "gone"));
	if (d_mig)
		WHY(" (incoming migration %s)", mig_status_word(&dm));
	if (resume_seen)
		WHY(", RESUME seen");
	if (!dq && resume_seen) {
		/* It ran there and is gone: nothing to complete, nothing to resume. */
		WHY("; the destination ran the VM and is gone");
		return MIG_VERDICT_LOST;
	}
	if ((d_ok && ds.running) || resume_seen ||
	    (d_mig && dm.status == TGVM_QMP_MIGRATION_STATUS_COMPLETED)) {
		/* It ran, or has everything and runs by itself: it keeps the VM. */
		if (sq && tgvm_qmp_query_migrate(sq, MIG_QMP_MS, &sm, NULL) == 0 &&
		    mig_is_postcopy(sm.status)) {
			WHY("; source: %s, still sending pages", mig_status_word(&sm));
			return MIG_VERDICT_WAIT;
		}
		return MIG_VERDICT_COMPLETE;
	}
	if (!sq || tgvm_qmp_query_status(sq, MIG_QMP_MS, &ss, NULL) < 0) {
		WHY("; source: %s", sq ? "not answering" : "gone");
		return MIG_VERDICT_LOST;
	}
	/* The destination never ran: stop the source sending; if it had sent
	 * everything already, the destination is about to run and keeps it. */
	tgvm_qmp_migrate_cancel(sq, MIG_QMP_MS, NULL);
	mig_wait_source_idle(sq, 30000);
	if (tgvm_qmp_query_migrate(sq, MIG_QMP_MS, &sm, NULL) == 0)
		WHY("; source: %s, migration %s", ss.status, mig_status_word(&sm));
	if (sm.status == TGVM_QMP_MIGRATION_STATUS_COMPLETED && dq) {
		uint64_t until = tgvm_now_ns() + (uint64_t)MIG_RESUME_WAIT_MS * 1000000ull;

		while (tgvm_now_ns() < until) {
			if (tgvm_qmp_query_status(dq, MIG_QMP_MS, &ds, NULL) < 0)
				break;
			if (ds.running) {
				WHY("; destination then ran");
				return MIG_VERDICT_COMPLETE;
			}
			tgvm_sleep_ms(50);
		}
		WHY("; destination did not start after the source completed");
	}
	return MIG_VERDICT_ROLLBACK;
#undef WHY
}

/* ---- reading the state back: status, cancel, reconcile ---- */

static int vm_dir_checked(const char *name, char *dir, size_t size, struct tgvm_error *reterr)
{
	int r;

	if ((r = tgvm_name_check("VM", name, reterr)) < 0)
		return r;
	vm_dir(name, dir, size);
	if (access(dir, F_OK) < 0)
		return tgvm_error_set(reterr, ENOENT, "no VM named '%s'", name);
	return 0;
}

/* The in-* directory of @vmdir into @ret ("" none). */
static void find_incoming(const char *vmdir, char *ret, size_t size)
{
	DIR *d = opendir(vmdir);
	struct dirent *de;

	ret[0] = '\0';
	if (!d)
		return;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "in-", 3)) {
			snprintf(ret, size, "%s/%s", vmdir, de->d_name);
			break;
		}
	closedir(d);
}

static const char *const recovery_names[MIGRATE_RECOVERY__MAX] = {
    "none", "busy", "completed", "rolled-back", "waiting", "lost"};

const char *migrate_recovery_action_to_string(enum migrate_recovery_action a)
{
	return a < MIGRATE_RECOVERY__MAX ? recovery_names[a] : "?";
}

/* Store the settled move's timeline (from its journal) with the decision. */
static void store_outcome(const char *vmdir, json_t *journal, const char *status,
                          const struct migrate_recovery *rec)
{
	json_t *j = journal ? json_deep_copy(journal) : json_object();
	uint64_t now = tgvm_wall_ns();

	json_object_del(j, "migrator_pid");
	json_object_del(j, "incoming_dir");
	json_object_del(j, "qemu_status");
	json_object_del(j, "recovery");
	json_object_set_new(j, "status", json_string(status));
	json_object_set_new(j, "ended_unix_ns", json_integer((json_int_t)now));
	json_object_set_new(j, "recovered",
	                    json_pack("{s:s, s:s, s:I}", "action",
	                              migrate_recovery_action_to_string(rec->action), "evidence",
	                              rec->evidence, "by_pid", (json_int_t)getpid()));
	mig_write_json(vmdir, MIG_TIMELINE_FILE, j, NULL);
	json_decref(j);
}

static void remove_journal(const char *vmdir)
{
	char path[4400];

	snprintf(path, sizeof(path), "%s/" MIG_ACTIVE_FILE, vmdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" MIG_CANCEL_FILE, vmdir);
	unlink(path);
}

/* Both sides of a move as a later process sees them: the journal first
 * (the VM's config may already be the destination's), else the configs. */
struct sides {
	char src_host[TGVM_NAME_MAX], src_tap[32], src_mac[24];
	char dst_host[TGVM_NAME_MAX], dst_tap[32];
};

static void copy_field(char *dst, size_t size, json_t *rv, const char *key, const char *fallback)
{
	const char *v = json_string_value(json_object_get(rv, key));

	snprintf(dst, size, "%s", v && *v ? v : fallback ? fallback : "");
}

static void sides_read(const char *name, const char *indir, json_t *rv, struct sides *ret)
{
	struct vm_config sc, dc;
	bool have_sc, have_dc = false;

	vm_config_init(&sc);
	vm_config_init(&dc);
	have_sc = vm_load(name, &sc, NULL) == 0;
	if (indir[0]) {
		char *data = NULL, path[4500];
		json_t *j = NULL;

		snprintf(path, sizeof(path), "%s/config.json", indir);
		if (tgvm_file_read(path, 1 << 20, &data, NULL, NULL) == 0)
			j = json_loads(data, 0, NULL);
		free(data);
		have_dc = j && vm_config_from_json(j, &dc, NULL) == 0;
		json_decref(j);
	}
	copy_field(ret->src_host, sizeof(ret->src_host), rv, "src_host", have_sc ? sc.host : NULL);
	copy_field(ret->src_tap, sizeof(ret->src_tap), rv, "src_tap", have_sc ? sc.tap : NULL);
	copy_field(ret->src_mac, sizeof(ret->src_mac), rv, "src_mac", have_sc ? sc.mac : NULL);
	copy_field(ret->dst_host, sizeof(ret->dst_host), rv, "dst_host", have_dc ? dc.host : NULL);
	copy_field(ret->dst_tap, sizeof(ret->dst_tap), rv, "dst_tap", have_dc ? dc.tap : NULL);
	vm_config_release(&sc);
	vm_config_release(&dc);
}

/* The verdict on a move left by a dead process: a move in its cleanup had
 * decided already; otherwise the QEMUs say (postcopy: wait up to @wait_ms). */
static enum mig_verdict judge(const char *vmdir, const char *indir, json_t *jr, int wait_ms,
                              char *why, size_t size)
{
	const char *phase = json_string_value(json_object_get(jr, "phase"));
	bool resumed =
	    json_is_true(json_object_get(json_object_get(jr, "recovery"), "resume_seen"));
	uint64_t until = tgvm_now_ns() + (uint64_t)(wait_ms > 0 ? wait_ms : 0) * 1000000ull;
	struct qmp_conn *sq = NULL, *dq = NULL;
	enum mig_verdict v;

	if (phase && !strcmp(phase, "cleanup")) {
		snprintf(why, size, "the move was in its cleanup phase");
		return MIG_VERDICT_COMPLETE;
	}
	if (vm_dir_pid(vmdir))
		vm_qmp_open(vmdir, 2000, &sq, NULL);
	if (indir[0] && vm_dir_pid(indir))
		vm_qmp_open(indir, 2000, &dq, NULL);
	for (;;) {
		why[0] = '\0';
		v = mig_settle(sq, dq, resumed, why, size);
		if (v != MIG_VERDICT_WAIT || tgvm_now_ns() >= until)
			break;
		tgvm_sleep_ms(500);
	}
	qmp_conn_free(sq);
	qmp_conn_free(dq);
	return v;
}

/* Roll back what a dead process left: the destination goes, the source resumes. */
static void undo(const char *vmdir, const char *indir, json_t *rv, const struct sides *sd,
                 bool resume)
{
	struct qmp_conn *q = NULL;
	struct tgvm_qmp_status st;

	if (indir[0]) {
		vm_kill_dir(indir, sd->dst_host, sd->dst_tap, NULL);
		vm_rm_rf(indir);
	}
	if (sd->src_mac[0] && json_is_true(json_object_get(rv, "net_switched")))
		vm_net_switch(sd->src_mac, sd->src_host, sd->src_tap, NULL);
	if (!resume || vm_qmp_open(vmdir, 2000, &q, NULL) < 0)
		return;
	if (tgvm_qmp_query_status(q, MIG_QMP_MS, &st, NULL) == 0 && !st.running &&
	    (!rv || json_is_true(json_object_get(rv, "src_was_running"))))
		tgvm_qmp_cont(q, MIG_QMP_MS, NULL);
	qmp_conn_free(q);
}

static const char *outcome_status(enum migrate_recovery_action a)
{
	return a == MIGRATE_RECOVERY_COMPLETED ? "completed"
	       : a == MIGRATE_RECOVERY_LOST    ? "failed"
	                                       : "cancelled";
}

static int reconcile_locked(const char *name, const char *vmdir, int wait_ms,
                            struct migrate_recovery *rec, struct tgvm_error *reterr)
{
	json_t *jr = mig_read_json(vmdir, MIG_ACTIVE_FILE), *rv = json_object_get(jr, "recovery");
	struct migrate_actions act;
	struct sides sd;
	char indir[4400], what[256];
	enum mig_verdict v;
	int r = 0;

	find_incoming(vmdir, indir, sizeof(indir));
	if (!jr && !indir[0]) {
		rec->action = MIGRATE_RECOVERY_NONE;
		goto out;
	}
	actions_from_json(json_object_get(rv, "actions"), &act);
	sides_read(name, indir, rv, &sd);
	v = judge(vmdir, indir, jr, wait_ms, rec->evidence, sizeof(rec->evidence));
	switch (v) {
	case MIG_VERDICT_WAIT:
		rec->action = MIGRATE_RECOVERY_WAITING;
		snprintf(rec->host, sizeof(rec->host), "%s", sd.dst_host);
		mig_log(vmdir, "orphaned move: postcopy still running, VM runs on '%s' (%s)",
		        rec->host, rec->evidence);
		goto out; /* the journal stays: settled by a later call */
	case MIG_VERDICT_COMPLETE:
		rec->action = MIGRATE_RECOVERY_COMPLETED;
		snprintf(rec->host, sizeof(rec->host), "%s", sd.dst_host);
		r = mig_finish(vmdir, indir, sd.src_host, sd.src_tap, reterr);
		if (r == 0)
			r = mig_actions_run(&act, true, sd.dst_host, NULL, reterr);
		snprintf(what, sizeof(what), "VM moved from host '%s' to host '%s'", sd.src_host,
		         sd.dst_host);
		if (r == 0)
			mig_serial_mark(vmdir, what);
		break;
	case MIG_VERDICT_ROLLBACK:
	case MIG_VERDICT_LOST:
		rec->action =
		    v == MIG_VERDICT_LOST ? MIGRATE_RECOVERY_LOST : MIGRATE_RECOVERY_ROLLED_BACK;
		snprintf(rec->host, sizeof(rec->host), "%s",
		         v == MIG_VERDICT_LOST ? "" : sd.src_host);
		undo(vmdir, indir, rv, &sd, v == MIG_VERDICT_ROLLBACK);
		mig_actions_run(&act, false, NULL, NULL, NULL);
		break;
	}
	mig_log(vmdir, "orphaned move settled: %s, VM on host '%s' (%s)",
	        migrate_recovery_action_to_string(rec->action), rec->host, rec->evidence);
	if (r == 0) {
		store_outcome(vmdir, jr, outcome_status(rec->action), rec);
		remove_journal(vmdir);
	}
out:
	json_decref(jr);
	return r;
}

int migrate_reconcile(const char *name, int wait_ms, struct migrate_recovery *ret,
                      struct tgvm_error *reterr)
{
	struct migrate_recovery rec = {0};
	char vmdir[4096], path[4400], indir[4400];
	long pid;
	int r;

	if ((r = vm_dir_checked(name, vmdir, sizeof(vmdir), reterr)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/" MIG_ACTIVE_FILE, vmdir);
	find_incoming(vmdir, indir, sizeof(indir));
	pid = claim_pid(vmdir);
	if (access(path, F_OK) < 0 && !indir[0]) {
		/* Nothing half done; a claim whose process died early goes. */
		if (pid > 0 && !pid_alive(pid)) {
			snprintf(path, sizeof(path), "%s/" MIG_CLAIM_FILE, vmdir);
			unlink(path);
		}
		*ret = rec;
		return 0;
	}
	if (pid > 0 && pid != (long)getpid() && pid_alive(pid)) {
		rec.action = MIGRATE_RECOVERY_BUSY;
		snprintf(rec.evidence, sizeof(rec.evidence), "tgvm process %ld drives the move",
		         pid);
		*ret = rec;
		return 0;
	}
	if ((r = mig_claim(vmdir, name, reterr)) < 0)
		return r;
	r = reconcile_locked(name, vmdir, wait_ms, &rec, reterr);
	mig_unclaim(vmdir);
	if (r == 0)
		*ret = rec;
	return r;
}

/* The directory that holds every VM's state directory. */
static int vms_root(char *buf, size_t size, struct tgvm_error *reterr)
{
	size_t n;

	if (vm_dir("x", buf, size) < 0)
		return tgvm_error_set(reterr, ENAMETOOLONG, "state directory path too long");
	n = strlen(buf);
	buf[n - 2] = '\0'; /* vm_dir() is <root>/<name> */
	return 0;
}

int migrate_reconcile_all(int wait_ms, struct tgvm_error *reterr)
{
	char dir[4096];
	struct dirent *de;
	int r, settled = 0;
	DIR *d;

	if ((r = vms_root(dir, sizeof(dir), reterr)) < 0)
		return r;
	if (!(d = opendir(dir)))
		return 0;
	while ((de = readdir(d))) {
		struct migrate_recovery rec;

		if (de->d_name[0] == '.' || tgvm_name_check("VM", de->d_name, NULL) < 0)
			continue;
		if (migrate_reconcile(de->d_name, wait_ms, &rec, NULL) == 0 &&
		    rec.action != MIGRATE_RECOVERY_NONE && rec.action != MIGRATE_RECOVERY_BUSY)
			settled++;
	}
	closedir(d);
	return settled;
}

int migrate_status(const char *name, json_t **ret, bool *ret_active, struct tgvm_error *reterr)
{
	struct migrate_recovery rec;
	char dir[4096];
	json_t *j;
	int r;

	if ((r = vm_dir_checked(name, dir, sizeof(dir), reterr)) < 0)
		return r;
	if ((r = migrate_reconcile(name, 0, &rec, reterr)) < 0)
		return r;
	j = mig_read_json(dir, MIG_ACTIVE_FILE);
	if (j && (rec.action == MIGRATE_RECOVERY_BUSY || rec.action == MIGRATE_RECOVERY_WAITING)) {
		json_int_t st = json_integer_value(json_object_get(j, "started_unix_ns"));
		uint64_t now = tgvm_wall_ns();

		if (st > 0 && (uint64_t)st <= now) /* still running: so far */
			json_object_set_new(j, "pipeline_ms",
			                    json_real((double)(now - (uint64_t)st) / 1e6));
		json_object_del(j, "recovery");
		if (rec.action == MIGRATE_RECOVERY_WAITING)
			json_object_set_new(
			    j, "qemu_status",
			    json_sprintf("orphaned postcopy, settled once the source "
			                 "has sent every page (%s)",
			                 rec.evidence));
		*ret = j;
		*ret_active = true;
		return 0;
	}
	json_decref(j);
	j = mig_read_json(dir, MIG_TIMELINE_FILE);
	if (!j)
		return tgvm_error_set(reterr, ENOENT, "VM '%s' has not been migrated", name);
	*ret = j;
	*ret_active = false;
	return 0;
}

static int status_cmp(const void *a, const void *b)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "ended_unix_ns"));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "ended_unix_ns"));

	return x < y ? 1 : x > y ? -1 : 0;
}

int migrate_status_all(json_t **ret, struct tgvm_error *reterr)
{
	json_t *all = json_array(), **rows = NULL;
	char dir[4096];
	size_t n = 0;
	DIR *d;
	struct dirent *de;

	if (vms_root(dir, sizeof(dir), reterr) < 0)
		return -ENAMETOOLONG;
	if ((d = opendir(dir))) {
		while ((de = readdir(d))) {
			json_t *j = NULL, *row, **nr;
			bool active = false;

			if (de->d_name[0] == '.' || tgvm_name_check("VM", de->d_name, NULL) < 0 ||
			    migrate_status(de->d_name, &j, &active, NULL) < 0)
				continue;
			row =
			    json_pack("{s:s, s:b, s:O?, s:O?, s:O?, s:O?, s:O?}", "vm", de->d_name,
			              "active", active, "status", json_object_get(j, "status"),
			              "from", json_object_get(j, "from"), "to",
			              json_object_get(j, "to"), "mode", json_object_get(j, "mode"),
			              "ended_unix_ns", json_object_get(j, "ended_unix_ns"));
			json_decref(j);
			nr = row ? realloc(rows, (n + 1) * sizeof(*rows)) : NULL;
			if (!nr) {
				json_decref(row);
				continue;
			}
			rows = nr;
			rows[n++] = row;
		}
		closedir(d);
	}
	if (n)
		qsort(rows, n, sizeof(*rows), status_cmp);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(all, rows[i]);
	free(rows);
	*ret = all;
	return 0;
}

int migrate_cancel_request(const char *name, struct tgvm_error *reterr)
{
	struct migrate_recovery rec;
	char dir[4096], path[4400], cpath[4400];
	long pid;
	int r;

	if ((r = vm_dir_checked(name, dir, sizeof(dir), reterr)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/" MIG_ACTIVE_FILE, dir);
	pid = claim_pid(dir);
	if (pid > 0 && pid_alive(pid) && access(path, F_OK) == 0) {
		snprintf(cpath, sizeof(cpath), "%s/" MIG_CANCEL_FILE, dir);
		if ((r = tgvm_file_write(cpath, "cancel\n", 7, reterr)) < 0)
			return r;
		/* The migrate process settles the move and removes its journal. */
		for (int i = 0; i < 3000 && access(path, F_OK) == 0; i++)
			tgvm_sleep_ms(10);
		if (access(path, F_OK) == 0)
			return tgvm_error_set(
			    reterr, ETIMEDOUT,
			    "the migrate process (pid %ld) did not stop within 30 s", pid);
		json_t *j = mig_read_json(dir, MIG_TIMELINE_FILE);
		const char *st = json_string_value(json_object_get(j, "status"));
		r = st && !strcmp(st, "completed")
		        ? tgvm_error_set(reterr, EALREADY,
		                         "too late to cancel: VM '%s' had already switched to "
		                         "host '%s'",
		                         name, json_string_value(json_object_get(j, "to")) ?: "?")
		        : 0;
		json_decref(j);
		return r;
	}
	/* Nobody drives it any more: settle it here, from the QEMUs. */
	if ((r = migrate_reconcile(name, 0, &rec, reterr)) < 0)
		return r;
	switch (rec.action) {
	case MIGRATE_RECOVERY_NONE:
		return tgvm_error_set(reterr, ENOENT, "VM '%s' is not migrating", name);
	case MIGRATE_RECOVERY_ROLLED_BACK:
		return 0;
	case MIGRATE_RECOVERY_COMPLETED:
		return tgvm_error_set(reterr, EALREADY,
		                      "too late to cancel: VM '%s' had already run on host '%s'; "
		                      "the move was completed (%s)",
		                      name, rec.host, rec.evidence);
	case MIGRATE_RECOVERY_WAITING:
		return tgvm_error_set(reterr, EBUSY,
		                      "cannot cancel: VM '%s' runs on host '%s' by postcopy and "
		                      "still pulls pages from its source (%s)",
		                      name, rec.host, rec.evidence);
	case MIGRATE_RECOVERY_LOST:
		return tgvm_error_set(reterr, EIO, "VM '%s' is lost: %s", name, rec.evidence);
	default:
		return tgvm_error_set(reterr, EBUSY, "VM '%s': %s", name, rec.evidence);
	}
}
