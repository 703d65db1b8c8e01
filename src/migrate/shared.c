// SPDX-License-Identifier: MIT
/*
 * nil-migration on top of the migration pipeline (migrate.c): decouple,
 * handoff and recouple as configurations of migrate_vm() — the destination's
 * RAM backing (prepare_dst), x-ignore-shared, same-host moves — plus the
 * checks that belong to shared memory: the destination must map the VM's
 * device and the VM's lease must name its current host. Also measures what
 * a handoff moves and, on request, where its blackout goes (QEMU trace).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tgvm/memdev.h"
#include "tgvm/nil.h"
#include "tgvm/qmp-monitor.h"
#include "tgvm/qmp.h"
#include "util/util.h"

#define QMP_MS    5000
#define TRACE_MAX (16u << 20)

static const char *const step_names[NIL_STEP__MAX] = {"decouple", "handoff", "recouple"};

const char *nil_step_to_string(enum nil_step s)
{
	return s < NIL_STEP__MAX ? step_names[s] : "?";
}

/* QEMU trace events that mark the switch (QEMU 7.2 and 10 names; enabling
 * one the QEMU does not have is an error that is ignored). */
static const char *const trace_events[] = {
    "savevm_state_complete_precopy", /* 7.2: the source starts the last save */
    "migration_completion_vm_stop",  /* 10: the same moment */
    "savevm_section_end",
    "qemu_loadvm_state_section_startfull",
    "qemu_loadvm_state_post_main",
    "vm_state_notify",
    "qemu_announce_self_iter",
    "virtio_net_announce_notify",
    "qemu_loadvm_state_section_partend",
    "vmstate_save",
    "savevm_state_cleanup",
};

struct nil_ctx {
	const struct migrate_opts *user;
	enum nil_step step;
	bool breakdown;
	const char *memdev;   /* decouple: the device's name */
	const char *mem_file; /* decouple: the VM's file on it */
	char vmdir[4096];
	struct qmp_conn *sq; /* the pipeline's, valid from before_migrate to after_start */
	char src_trace[4300], dst_trace[4300];
};

/* ---- the destination's config ---- */

static int prepare_dst(struct vm_config *dst, void *opaque, struct tgvm_error *reterr)
{
	struct nil_ctx *x = opaque;

	if (x->step == NIL_HANDOFF)
		return 0;
	/* Same host: the new QEMU needs its own tap next to the old one. */
	dst->tap[1] = dst->tap[1] == 'v' ? 'w' : 'v';
	free(dst->mem_file);
	dst->mem_file = NULL;
	dst->memdev[0] = '\0';
	if (x->step == NIL_DECOUPLE) {
		dst->mem_file = strdup(x->mem_file);
		if (!dst->mem_file)
			return tgvm_error_set(reterr, ENOMEM, "out of memory");
		snprintf(dst->memdev, sizeof(dst->memdev), "%s", x->memdev);
	}
	return 0;
}

/* ---- measurements ---- */

static void trace_on(struct qmp_conn *q, const char *file)
{
	char cmd[4400];

	snprintf(cmd, sizeof(cmd), "logfile %s", file);
	tgvm_qmp_human_monitor_command(q, cmd, QMP_MS, NULL, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(trace_events); i++)
		tgvm_qmp_trace_event_set_state(q, trace_events[i], true, QMP_MS, NULL);
}

/* Just before the source is told to migrate (precopy begins). */
static int h_before(struct migrate_run *run, void *opaque, struct tgvm_error *reterr)
{
	struct nil_ctx *x = opaque;
	struct migrate_timeline *t = run->t;

	(void)reterr;
	x->sq = run->sq;
	if (x->step == NIL_HANDOFF) /* the pipeline ran precopy's settings; users asked for this */
		json_object_set_new(t->extra, "mode", json_string("shared"));
	/* For tests (tgvm-migrate(1), FAULTS): freeze the destination QEMU just
	 * before the source starts the handoff, as a host that hangs mid-switch. */
	const char *fault = x->user->test_fault;
	if (fault && !strcmp(fault, "handoff-freeze-destination") && x->step == NIL_HANDOFF) {
		int pid = vm_dir_pid(run->indir);

		if (pid > 0 && kill(pid, SIGSTOP) == 0)
			json_object_set_new(t->extra, "test_fault", json_string(fault));
	}
	if (x->breakdown) {
		snprintf(x->src_trace, sizeof(x->src_trace), "%s/trace-handoff.log", x->vmdir);
		snprintf(x->dst_trace, sizeof(x->dst_trace), "%s/trace-handoff.log", run->indir);
		unlink(x->src_trace);
		trace_on(run->sq, x->src_trace);
		trace_on(run->dq, x->dst_trace);
	}
	return 0;
}

static void tgvm_file_copy_best_effort(const char *from, const char *to)
{
	char *data = NULL;
	size_t len = 0;

	if (tgvm_file_read(from, TRACE_MAX, &data, &len, NULL) == 0)
		tgvm_file_write(to, data, len, NULL);
	free(data);
}

/* One trace line: "PID@SEC.USEC:name args". */
struct mark {
	uint64_t first_us, last_us;
	unsigned count;
};

static void scan_trace(const char *file, uint64_t from_us, const char *const *names, size_t n,
                       struct mark *ret)
{
	char *data = NULL, *line, *next;

	memset(ret, 0, n * sizeof(*ret));
	if (tgvm_file_read(file, TRACE_MAX, &data, NULL, NULL) < 0)
		return;
	for (line = data; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *at = strchr(line, '@'), *colon, *end;
		unsigned long long sec, usec;
		uint64_t us;

		if (!at)
			continue;
		sec = strtoull(at + 1, &end, 10);
		if (*end != '.')
			continue;
		usec = strtoull(end + 1, &colon, 10);
		if (*colon != ':')
			continue;
		us = (uint64_t)sec * 1000000ull + usec;
		if (us < from_us)
			continue;
		for (size_t i = 0; i < n; i++) {
			size_t len = strlen(names[i]);

			if (strncmp(colon + 1, names[i], len) ||
			    (colon[1 + len] != ' ' && colon[1 + len]))
				continue;
			/* vm_state_notify: only the destination's start ("running 1"). */
			if (!strcmp(names[i], "vm_state_notify") && !strstr(colon, "running 1"))
				continue;
			if (!ret[i].count++)
				ret[i].first_us = us;
			ret[i].last_us = us;
		}
	}
	free(data);
}

static double seg_ms(uint64_t a, uint64_t b)
{
	return a && b && b >= a ? (double)(b - a) / 1000.0 : -1;
}

static void put_ms(json_t *o, const char *key, double v)
{
	json_object_set_new(o, key, v >= 0 ? json_real(v) : json_null());
}

/* One section's time in a QEMU trace: from its event line to the next. */
struct sec_time {
	char name[64];
	uint64_t us;
	bool used; /* matched with a load (sections()) */
};

#define SECTIONS_MAX 256 /* a tgvm VM has about 30-60 */

/*
 * Each device section in a QEMU trace, in stream order, timed from its
 * @event line to the next @event line (or @last), named by the event's first
 * argument, into @ret (at most @max). Returns how many. O(trace length).
 */
static size_t section_times(const char *file, uint64_t from_us, const char *event, const char *last,
                            struct sec_time *ret, size_t max)
{
	char *data = NULL, *line, *next, prev[64] = "";
	uint64_t prev_us = 0;
	size_t n = 0;

	if (tgvm_file_read(file, TRACE_MAX, &data, NULL, NULL) < 0)
		return 0;
	for (line = data; line && *line; line = next) {
		char *at = strchr(line, '@'), *end, *colon, *name;
		unsigned long long sec, usec;
		uint64_t us;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!at)
			continue;
		sec = strtoull(at + 1, &end, 10);
		if (*end != '.')
			continue;
		usec = strtoull(end + 1, &colon, 10);
		us = (uint64_t)sec * 1000000ull + usec;
		if (*colon != ':' || us < from_us)
			continue;
		name = colon + 1;
		bool is_ev = !strncmp(name, event, strlen(event)) && name[strlen(event)] == ' ';
		bool is_last = !strncmp(name, last, strlen(last));

		if (!is_ev && !is_last)
			continue;
		if (prev[0] && us >= prev_us && n < max) {
			snprintf(ret[n].name, sizeof(ret[n].name), "%s", prev);
			ret[n].us = us - prev_us;
			ret[n].used = false;
			n++;
		}
		prev[0] = '\0';
		if (is_ev) {
			/* "N(idstr) ..." (loads) or "idstr, vmsd" (saves) */
			char *arg = name + strlen(event) + 1, *o = strchr(arg, '(');
			size_t len = strcspn(arg, ", ");

			if (o && o < arg + len) {
				arg = o + 1;
				len = strcspn(arg, ")");
			}
			snprintf(prev, sizeof(prev), "%.*s", (int)TGVM_MIN(len, sizeof(prev) - 1),
			         arg);
		}
		if (is_last && !is_ev)
			break; /* the end of this save or load */
		prev_us = us;
	}
	free(data);
	return n;
}

/* The three slowest of @t[0..n-1] as [{"section", "ms"}]. */
static json_t *slowest(const struct sec_time *t, size_t n)
{
	size_t top[3];
	size_t k = 0;
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		size_t j = k < 3 ? k++ : 3;

		while (j > 0 && t[top[j - 1]].us < t[i].us) {
			if (j < 3)
				top[j] = top[j - 1];
			j--;
		}
		if (j < 3)
			top[j] = i;
	}
	for (size_t i = 0; i < k; i++)
		json_array_append_new(a, json_pack("{s:s, s:f}", "section", t[top[i]].name, "ms",
		                                   (double)t[top[i]].us / 1000.0));
	return a;
}

static json_t *ms_or_null(const struct sec_time *t)
{
	return t ? json_real((double)t->us / 1000.0) : json_null();
}

/*
 * Every section the handoff carried, in the order the destination loaded
 * them: [{"section", "save_ms", "load_ms"}] (null where the trace has no
 * line: a section saved but not loaded, or the reverse).
 */
static json_t *sections(struct sec_time *saves, size_t ns, const struct sec_time *loads, size_t nl)
{
	json_t *a = json_array();

	for (size_t i = 0; i < nl; i++) {
		struct sec_time *sv = NULL;

		for (size_t k = 0; k < ns && !sv; k++)
			if (!saves[k].used && !strcmp(saves[k].name, loads[i].name))
				sv = &saves[k];
		if (sv)
			sv->used = true;
		json_array_append_new(a, json_pack("{s:s, s:o, s:o}", "section", loads[i].name,
		                                   "save_ms", ms_or_null(sv), "load_ms",
		                                   ms_or_null(&loads[i])));
	}
	for (size_t k = 0; k < ns; k++)
		if (!saves[k].used)
			json_array_append_new(a, json_pack("{s:s, s:o, s:n}", "section",
			                                   saves[k].name, "save_ms",
			                                   ms_or_null(&saves[k]), "load_ms"));
	return a;
}

/*
 * "breakdown": segments that add up to the source's STOP -> the destination's
 * RESUME (the vCPU blackout), then what follows RESUME. The destination loads
 * while the source still sends, so transfer and load are one segment.
 */
static void add_breakdown(struct nil_ctx *x, struct migrate_timeline *t)
{
	static const char *const src_names[] = {"savevm_state_complete_precopy",
	                                        "savevm_section_end"};
	static const char *const dst_names[] = {"qemu_loadvm_state_section_startfull",
	                                        "qemu_loadvm_state_post_main", "vm_state_notify",
	                                        "qemu_announce_self_iter"};
	struct mark s[2], d[4];
	uint64_t stop = t->stop_event_us, resume = t->resume_event_us;
	json_t *b = json_object();

	/* The source saves right after STOP; its events come from a little before. */
	scan_trace(x->src_trace, stop ? stop - 1000 : 0, src_names, 2, s);
	if (!s[0].count) { /* QEMU 10 has no savevm_state_complete_precopy */
		static const char *const alt[] = {"migration_completion_vm_stop"};

		scan_trace(x->src_trace, stop ? stop - 1000 : 0, alt, 1, &s[0]);
	}
	scan_trace(x->dst_trace, stop ? stop : 0, dst_names, 4, d);
	put_ms(b, "stop_to_save_ms", seg_ms(stop, s[0].first_us));
	put_ms(b, "device_save_ms", seg_ms(s[0].first_us, s[1].last_us));
	put_ms(b, "transfer_and_load_ms", seg_ms(s[1].last_us, d[1].first_us));
	put_ms(b, "post_load_to_resume_ms", seg_ms(d[1].first_us, resume));
	/* After the RESUME event QEMU runs its state notifiers, then the vCPUs. */
	put_ms(b, "resume_to_vcpu_start_ms", seg_ms(resume, d[2].first_us));
	if (d[3].count && resume)
		json_object_set_new(b, "announce_after_resume_ms",
		                    json_real(((double)d[3].first_us - (double)resume) / 1000.0));
	put_ms(b, "load_ms", seg_ms(d[0].first_us, d[1].first_us));
	json_object_set_new(b, "devices_saved", json_integer(s[1].count));
	json_object_set_new(b, "sections_loaded", json_integer(d[0].count));
	struct sec_time *sv = calloc(2 * SECTIONS_MAX, sizeof(*sv)), *ld = sv + SECTIONS_MAX;
	size_t ns = 0, nl = 0;

	if (sv) {
		ns = section_times(x->src_trace, stop ? stop - 1000 : 0, "vmstate_save",
		                   "savevm_state_cleanup", sv, SECTIONS_MAX);
		nl = section_times(x->dst_trace, stop, "qemu_loadvm_state_section_startfull",
		                   "qemu_loadvm_state_post_main", ld, SECTIONS_MAX);
	}
	json_object_set_new(b, "slowest_saves", slowest(sv, ns));
	json_object_set_new(b, "slowest_loads", slowest(ld, nl));
	json_object_set_new(b, "sections", sections(sv, ns, ld, nl));
	free(sv);
	json_object_set_new(t->extra, "breakdown", b);
	if (tgvm_config_get()->keep_trace) { /* debugging: keep both QEMUs' trace lines */
		char keep[4400];

		snprintf(keep, sizeof(keep), "%s.dst", x->src_trace);
		tgvm_file_copy_best_effort(x->dst_trace, keep);
		return;
	}
	unlink(x->src_trace);
}

/* The guest answers on the destination: what the handoff moved. */
static int h_after(struct migrate_run *run, void *opaque, struct tgvm_error *reterr)
{
	struct nil_ctx *x = opaque;
	struct migrate_timeline *t = run->t;
	struct tgvm_qmp_migrate_info q;

	(void)reterr;
	/* The stream's bytes (RAM, device state, headers): QEMU's own counts of
	 * what it sent before and during the downtime; else its mbps at
	 * completion over total-time minus setup-time, undone (0 ms for a fast
	 * handoff: then unknown, null). */
	if (x->sq && tgvm_qmp_query_migrate(x->sq, QMP_MS, &q, NULL) == 0) {
		json_t *bytes = json_null();

		if (q.ram.has_precopy_bytes && q.ram.has_downtime_bytes)
			bytes =
			    json_integer((json_int_t)(q.ram.precopy_bytes + q.ram.downtime_bytes));
		else if (q.has_total_time && q.has_setup_time && q.total_time > q.setup_time &&
		         q.ram.has_mbps && q.ram.mbps > 0)
			bytes = json_integer((
			    json_int_t)(q.ram.mbps * (double)(q.total_time - q.setup_time) * 125.0 +
			                0.5));
		json_object_set_new(t->extra, "stream_bytes", bytes);
		json_object_set_new(t->extra, "ram_bytes",
		                    q.ram.has_transferred
		                        ? json_integer((json_int_t)q.ram.transferred)
		                        : json_null());
	}
	json_object_set_new(t->extra, "stop_event_us", json_integer((json_int_t)t->stop_event_us));
	json_object_set_new(t->extra, "resume_event_us",
	                    json_integer((json_int_t)t->resume_event_us));
	if (x->breakdown)
		add_breakdown(x, t);
	x->sq = NULL; /* the pipeline's connection: not ours past this hook */
	return 0;
}

/* The pipeline's options for one step: the user's, with our hooks added. */
static void step_opts(struct nil_ctx *x, struct migrate_opts *oo)
{
	*oo = *x->user;
	oo->step = step_names[x->step];
	if (oo->n_hooks + 2 <= MIGRATE_HOOKS_MAX) {
		oo->hooks[oo->n_hooks++] =
		    (struct migrate_hook){MIGRATE_PHASE_PRECOPY, MIGRATE_HOOK_BEFORE, h_before, x};
		oo->hooks[oo->n_hooks++] =
		    (struct migrate_hook){MIGRATE_PHASE_START, MIGRATE_HOOK_AFTER, h_after, x};
	}
	oo->prepare_dst = prepare_dst;
	oo->prepare_opaque = x;
	oo->ignore_shared = x->step == NIL_HANDOFF;
	oo->same_host = x->step != NIL_HANDOFF;
	if (x->step != NIL_HANDOFF && oo->mode == MIGRATE_POSTCOPY)
		oo->mode = MIGRATE_PRECOPY; /* a broken postcopy would strand the VM half-moved */
}

/* A refusal before the pipeline ran: a timeline that says so. */
static int refuse(struct migrate_timeline *t, enum nil_step step, const char *vm, const char *from,
                  const char *to, int r, struct tgvm_error *reterr)
{
	migrate_timeline_init(t);
	t->started_ns = t->ended_ns = tgvm_wall_ns();
	snprintf(t->vm, sizeof(t->vm), "%s", vm);
	snprintf(t->from, sizeof(t->from), "%s", from ? from : "");
	snprintf(t->to, sizeof(t->to), "%s", to ? to : "");
	snprintf(t->status, sizeof(t->status), "refused");
	if (reterr)
		snprintf(t->error, sizeof(t->error), "%s", reterr->msg);
	json_object_set_new(t->extra, "step", json_string(step_names[step]));
	return r;
}

static void ctx_init(struct nil_ctx *x, const struct migrate_opts *o, enum nil_step step,
                     const char *name)
{
	memset(x, 0, sizeof(*x));
	x->user = o;
	x->step = step;
	vm_dir(name, x->vmdir, sizeof(x->vmdir));
}

int migrate_handoff(const char *name, const char *to, const struct migrate_opts *o,
                    const struct nil_opts *n, struct migrate_timeline *ret,
                    struct tgvm_error *reterr)
{
	struct vm_config c;
	struct vm_memdev d;
	struct vm_memdev_lease l = {.fd = -1};
	struct migrate_opts oo;
	struct nil_ctx x;
	int r;

	vm_config_init(&c);
	if ((r = vm_load(name, &c, reterr)) < 0)
		return refuse(ret, NIL_HANDOFF, name, NULL, to, r, reterr);
	if (!c.memdev[0]) {
		r = tgvm_error_set(reterr, EPERM,
		                   "VM '%s' has its memory in host-private RAM on host '%s': "
		                   "decouple it first (tgvm migrate %s --decouple DEVICE) or use "
		                   "--mode nil",
		                   name, c.host, name);
		goto refused;
	}
	if (!strcmp(c.host, to)) {
		r = tgvm_error_set(reterr, EINVAL,
		                   "VM '%s' already runs on host '%s': a second handoff is refused",
		                   name, to);
		goto refused;
	}
	if ((r = tgvm_memdev_for_host(to, c.memdev, &d, reterr)) < 0) {
		tgvm_error_prefix(reterr, "cannot hand VM '%s' over to host '%s'", name, to);
		if (r == -ENOENT)
			r = -EPERM;
		goto refused;
	}
	if ((r = vm_memdev_lease_lock(c.mem_file, &l, reterr)) < 0) {
		if (r == -EBUSY)
			r = tgvm_error_set(reterr, EBUSY,
			                   "a handoff of VM '%s' is already in progress", name);
		goto refused;
	}
	if (strcmp(l.host, c.host)) {
		r = tgvm_error_set(reterr, EPERM,
		                   "VM '%s' was handed off to host '%s' (generation %" PRIu64
		                   "); its copy on host '%s' may not run or move",
		                   name, l.host, l.generation, c.host);
		goto refused;
	}
	ctx_init(&x, o, NIL_HANDOFF, name);
	x.breakdown = n && n->breakdown;
	step_opts(&x, &oo);
	/* The lease goes to the destination as part of the move (also when a
	 * later process settles a move this one left). */
	snprintf(oo.actions.lease_file, sizeof(oo.actions.lease_file), "%s", c.mem_file);
	oo.lease_held = &l;
	r = migrate_vm(name, to, &oo, ret, reterr);
	if (r < 0 && strcmp(ret->status, "completed")) {
		struct vm_config now;
		char vmdir[4096];

		vm_dir(name, vmdir, sizeof(vmdir));
		if (vm_load(name, &now, NULL) == 0) {
			if (!strcmp(now.host, c.host) && vm_dir_pid(vmdir) > 0) {
				tgvm_error_prefix(
				    reterr,
				    "handoff failed; VM '%s' runs on host '%s' from the "
				    "same memory",
				    name, c.host);
				snprintf(ret->error, sizeof(ret->error), "%s",
				         reterr ? reterr->msg : "");
			}
			vm_config_release(&now);
		}
	}
	if (!strcmp(ret->status, "completed"))
		json_object_set_new(ret->extra, "lease_generation",
		                    json_integer((json_int_t)l.generation));
	vm_memdev_lease_unlock(&l);
	vm_config_release(&c);
	return r;
refused:
	vm_memdev_lease_unlock(&l);
	refuse(ret, NIL_HANDOFF, name, c.host, to, r, reterr);
	vm_config_release(&c);
	return r;
}

int migrate_decouple(const char *name, const char *memdev, const struct migrate_opts *o,
                     struct migrate_timeline *ret, struct tgvm_error *reterr)
{
	char file[TGVM_MEMDEV_PATH_MAX + 48];
	struct vm_config c;
	struct vm_memdev d;
	struct migrate_opts oo;
	struct nil_ctx x;
	int r;

	vm_config_init(&c);
	if ((r = vm_load(name, &c, reterr)) < 0)
		return refuse(ret, NIL_DECOUPLE, name, NULL, NULL, r, reterr);
	if (c.memdev[0]) {
		r = tgvm_error_set(reterr, EEXIST, "VM '%s' already has its memory on device '%s'",
		                   name, c.memdev);
		goto refused;
	}
	if ((r = tgvm_memdev_for_host(c.host, memdev, &d, reterr)) < 0 ||
	    (r = vm_memdev_alloc(&d, name, c.host, c.mem_bytes, file, sizeof(file), reterr)) < 0) {
		if (r == -ENOENT)
			r = -EPERM;
		goto refused;
	}
	ctx_init(&x, o, NIL_DECOUPLE, name);
	x.memdev = d.name;
	x.mem_file = file;
	step_opts(&x, &oo);
	/* Rolled back (now or by a later process): the space goes back. */
	snprintf(oo.actions.free_on_rollback, sizeof(oo.actions.free_on_rollback), "%s", file);
	r = migrate_vm(name, c.host, &oo, ret, reterr);
	if (r < 0 && !strcmp(ret->status, "refused"))
		vm_memdev_free(file);
	vm_config_release(&c);
	return r;
refused:
	refuse(ret, NIL_DECOUPLE, name, c.host, c.host, r, reterr);
	vm_config_release(&c);
	return r;
}

int migrate_recouple(const char *name, const struct migrate_opts *o, struct migrate_timeline *ret,
                     struct tgvm_error *reterr)
{
	struct vm_config c;
	struct vm_memdev_lease l = {.fd = -1};
	struct migrate_opts oo;
	struct nil_ctx x;
	int r;

	vm_config_init(&c);
	if ((r = vm_load(name, &c, reterr)) < 0)
		return refuse(ret, NIL_RECOUPLE, name, NULL, NULL, r, reterr);
	if (!c.memdev[0]) {
		r = tgvm_error_set(reterr, EINVAL, "VM '%s' already has its memory in private RAM",
		                   name);
		goto refused;
	}
	if ((r = vm_memdev_lease_lock(c.mem_file, &l, reterr)) < 0) {
		if (r == -EBUSY)
			r = tgvm_error_set(reterr, EBUSY, "a handoff of VM '%s' is in progress",
			                   name);
		goto refused;
	}
	ctx_init(&x, o, NIL_RECOUPLE, name);
	step_opts(&x, &oo);
	/* Completed (now or by a later process): the device's file goes. */
	snprintf(oo.actions.free_on_complete, sizeof(oo.actions.free_on_complete), "%s",
	         c.mem_file);
	r = migrate_vm(name, c.host, &oo, ret, reterr);
	vm_memdev_lease_unlock(&l);
	vm_config_release(&c);
	return r;
refused:
	refuse(ret, NIL_RECOUPLE, name, c.host, c.host, r, reterr);
	vm_config_release(&c);
	return r;
}

/* The first device of @from's inventory that both @from and @to map. */
static int pick_memdev(const char *from, const char *to, char *ret, size_t size,
                       struct tgvm_error *reterr)
{
	struct tgvm_memdevs m = {0};
	struct vm_host h;
	int r;

	if ((r = host_get(from, &h, reterr)) < 0)
		return r;
	if (!h.inventory[0])
		return tgvm_error_set(reterr, EPERM,
		                      "host '%s' maps no memory device (it was not brought up from "
		                      "an inventory)",
		                      from);
	if ((r = tgvm_memdevs_load(h.inventory, &m, reterr)) < 0)
		return r;
	r = tgvm_error_set(reterr, EPERM,
	                   "hosts '%s' and '%s' share no memory device in '%s' (no migration "
	                   "domain holds both)",
	                   from, to, h.inventory);
	for (size_t i = 0; i < m.n; i++)
		if (tgvm_memdev_has_host(&m.v[i], from) && tgvm_memdev_has_host(&m.v[i], to)) {
			snprintf(ret, size, "%s", m.v[i].name);
			tgvm_error_clear(reterr);
			r = 0;
			break;
		}
	tgvm_memdevs_release(&m);
	return r;
}

int migrate_nil(const char *name, const char *to, const char *memdev, const struct migrate_opts *o,
                const struct nil_opts *n, struct migrate_timeline ret[NIL_STEP__MAX], size_t *ret_n,
                struct tgvm_error *reterr)
{
	struct vm_config c;
	char dev[TGVM_NAME_MAX];
	int r;

	*ret_n = 0;
	vm_config_init(&c);
	if ((r = vm_load(name, &c, reterr)) < 0) {
		refuse(&ret[(*ret_n)++], NIL_DECOUPLE, name, NULL, to, r, reterr);
		return r;
	}
	if (!c.memdev[0]) {
		if (memdev)
			snprintf(dev, sizeof(dev), "%s", memdev);
		else if ((r = pick_memdev(c.host, to, dev, sizeof(dev), reterr)) < 0) {
			refuse(&ret[(*ret_n)++], NIL_DECOUPLE, name, c.host, to, r, reterr);
			goto out;
		}
		/* Refuse before moving anything when the destination cannot map it. */
		struct vm_memdev d;

		if ((r = tgvm_memdev_for_host(to, dev, &d, reterr)) < 0) {
			tgvm_error_prefix(reterr, "cannot hand VM '%s' over to host '%s'", name,
			                  to);
			refuse(&ret[(*ret_n)++], NIL_HANDOFF, name, c.host, to,
			       r == -ENOENT ? -EPERM : r, reterr);
			r = r == -ENOENT ? -EPERM : r;
			goto out;
		}
		r = migrate_decouple(name, dev, o, &ret[(*ret_n)++], reterr);
		if (r < 0)
			goto out;
		if (o->interrupt && *o->interrupt) {
			r = tgvm_error_set(reterr, EINTR,
			                   "interrupted after the decouple: VM '%s' runs on host "
			                   "'%s' with its memory on device '%s'",
			                   name, c.host, dev);
			goto out;
		}
	}
	r = migrate_handoff(name, to, o, n, &ret[(*ret_n)++], reterr);
	if (r < 0)
		goto out;
	if (o->interrupt && *o->interrupt) {
		r = tgvm_error_set(reterr, EINTR,
		                   "interrupted after the handoff: VM '%s' runs on host '%s' with "
		                   "its memory on the shared device",
		                   name, to);
		goto out;
	}
	r = migrate_recouple(name, o, &ret[(*ret_n)++], reterr);
out:
	vm_config_release(&c);
	return r;
}
