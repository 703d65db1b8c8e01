// SPDX-License-Identifier: MIT
/*
 * A migration's timeline: its mode and phase names, and the stable JSON form
 * that `tgvm migrate --json`, `migrate status` and the SVG read (fields in
 * tgvm-migrate(1)). Filled by the pipeline (migrate.c), stored by state.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migrate/migrate-int.h"

static const char *const mode_names[MIGRATE_MODE__MAX] = {"precopy", "postcopy", "auto"};
static const char *const phase_names[MIGRATE_PHASE__MAX] = {
    "check", "prepare", "precopy", "pause", "last-copy", "postcopy", "switch", "start", "cleanup",
};

const char *migrate_mode_to_string(enum migrate_mode m)
{
	return m < MIGRATE_MODE__MAX ? mode_names[m] : "?";
}

int migrate_mode_from_string(const char *s)
{
	for (int i = 0; i < MIGRATE_MODE__MAX; i++)
		if (!strcmp(s, mode_names[i]))
			return i;
	return -EINVAL;
}

const char *migrate_phase_to_string(enum migrate_phase p)
{
	return p < MIGRATE_PHASE__MAX ? phase_names[p] : "?";
}

void migrate_timeline_init(struct migrate_timeline *t)
{
	memset(t, 0, sizeof(*t));
	t->qemu_downtime_ms = -1;
	t->vcpu_blackout_us = -1;
	t->total_ms = -1;
	t->net_blackout_us = -1;
	t->net_floor_us = -1;
	t->net_precopy_silence_us = -1;
	t->first_answer_us = -1;
	t->answers_again_us = INT64_MIN;
	t->net_switch_after_stop_us = -1;
	t->paused_sent = -1;
	t->paused_answered = -1;
	t->dest_translated_blocks = -1;
	t->extra = json_object();
}

void migrate_timeline_release(struct migrate_timeline *t)
{
	if (!t)
		return;
	json_decref(t->extra);
	t->extra = NULL;
}

static double ms_since(uint64_t base, uint64_t t)
{
	return t >= base ? (double)(t - base) / 1e6 : -(double)(base - t) / 1e6;
}

static json_t *counter(int64_t v)
{
	return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

json_t *migrate_timeline_to_json(const struct migrate_timeline *t)
{
	json_t *j = json_object(), *phases = json_array(), *iters = json_array(), *dt;

	json_object_set_new(j, "vm", json_string(t->vm));
	json_object_set_new(j, "from", json_string(t->from));
	json_object_set_new(j, "to", json_string(t->to));
	json_object_set_new(j, "mode", json_string(migrate_mode_to_string(t->mode)));
	json_object_set_new(j, "status", json_string(t->status));
	json_object_set_new(j, "error", json_string(t->error));
	json_object_set_new(j, "postcopy_used", json_boolean(t->postcopy_used));
	json_object_set_new(j, "postcopy_reason", json_string(t->postcopy_reason));
	json_object_set_new(j, "postcopy_recovery_attempts",
	                    json_integer(t->postcopy_recovery_attempts));
	json_object_set_new(j, "downtime_limit_raised_ms",
	                    t->downtime_limit_raised_ms ? json_integer(t->downtime_limit_raised_ms)
	                                                : json_null());
	json_object_set_new(j, "started_unix_ns", json_integer((json_int_t)t->started_ns));
	json_object_set_new(j, "ended_unix_ns", json_integer((json_int_t)t->ended_ns));
	/* a migration still running: its phases and pipeline so far */
	uint64_t until = t->ended_ns ? t->ended_ns : tgvm_wall_ns();

	json_object_set_new(j, "pipeline_ms", json_real(ms_since(t->started_ns, until)));
	for (int p = 0; p < MIGRATE_PHASE__MAX; p++) {
		if (!t->phase_start_ns[p])
			continue;
		/* a phase left open (running, or cut short by a cancel) lasted until then */
		uint64_t end = t->phase_end_ns[p] ? t->phase_end_ns[p] : until;

		json_array_append_new(
		    phases, json_pack("{s:s, s:f, s:f}", "phase", phase_names[p], "start_ms",
		                      ms_since(t->started_ns, t->phase_start_ns[p]), "duration_ms",
		                      ms_since(t->phase_start_ns[p], end)));
	}
	json_object_set_new(j, "phases", phases);
	for (size_t i = 0; i < t->n_iter; i++) {
		const struct migrate_iteration *it = &t->iter[i];
		json_t *row = json_pack("{s:f}", "at_ms", ms_since(t->started_ns, it->t_ns));

		/* QEMU's counters as it gave them; null where it did not */
		json_object_set_new(row, "pass", counter(it->dirty_sync_count));
		json_object_set_new(row, "remaining_bytes", counter(it->remaining_bytes));
		json_object_set_new(row, "transferred_bytes", counter(it->transferred_bytes));
		json_object_set_new(row, "dirty_rate_bytes_per_s", counter(it->dirty_rate_bps));
		json_object_set_new(row, "throughput_bytes_per_s", counter(it->throughput_bps));
		json_array_append_new(iters, row);
	}
	json_object_set_new(j, "precopy_iterations", iters);
	dt = json_object();
	json_object_set_new(dt, "qemu_ms",
	                    t->qemu_downtime_ms >= 0 ? json_integer(t->qemu_downtime_ms)
	                                             : json_null());
	json_object_set_new(dt, "vcpu_blackout_ms",
	                    t->vcpu_blackout_us >= 0 ? json_real((double)t->vcpu_blackout_us / 1e3)
	                                             : json_null());
	json_object_set_new(dt, "network_blackout_ms",
	                    t->net_blackout_us >= 0 ? json_real((double)t->net_blackout_us / 1e3)
	                                            : json_null());
	json_object_set_new(dt, "probe_floor_ms",
	                    t->net_floor_us >= 0 ? json_real((double)t->net_floor_us / 1e3)
	                                         : json_null());
	json_object_set_new(j, "downtime", dt);
	json_t *np = json_object();
	json_object_set_new(np, "interval_us",
	                    t->probe_interval_us ? json_integer(t->probe_interval_us)
	                                         : json_null());
	json_object_set_new(np, "floor_answered", json_real(t->probe_floor_answered));
	json_object_set_new(np, "floor_rtt_median_us", json_real(t->probe_rtt_median_us));
	json_object_set_new(np, "precopy_longest_silence_ms",
	                    t->net_precopy_silence_us >= 0
	                        ? json_real((double)t->net_precopy_silence_us / 1e3)
	                        : json_null());
	if (t->net_gap_start_ns) {
		json_object_set_new(np, "blackout_start_ms",
		                    json_real(ms_since(t->started_ns, t->net_gap_start_ns)));
		json_object_set_new(np, "blackout_end_ms",
		                    json_real(ms_since(t->started_ns, t->net_gap_end_ns)));
	}
	json_object_set_new(np, "first_answer_after_resume_ms",
	                    t->first_answer_us >= 0 ? json_real((double)t->first_answer_us / 1e3)
	                                            : json_null());
	json_object_set_new(np, "blackout_end_after_resume_ms",
	                    t->answers_again_us != INT64_MIN
	                        ? json_real((double)t->answers_again_us / 1e3)
	                        : json_null());
	json_object_set_new(np, "sent_while_paused",
	                    t->paused_sent >= 0 ? json_integer(t->paused_sent) : json_null());
	json_object_set_new(np, "answered_of_paused",
	                    t->paused_answered >= 0 ? json_integer(t->paused_answered)
	                                            : json_null());
	json_object_set_new(np, "dest_translated_blocks",
	                    t->dest_translated_blocks >= 0 ? json_integer(t->dest_translated_blocks)
	                                                   : json_null());
	json_object_set_new(np, "fabric_switched_at_stop", json_boolean(t->net_switched));
	json_object_set_new(np, "switched_after_stop_ms",
	                    t->net_switch_after_stop_us >= 0
	                        ? json_real((double)t->net_switch_after_stop_us / 1e3)
	                        : json_null());
	json_object_set_new(np, "note", json_string(t->probe_note));
	json_object_set_new(j, "network_probe", np);
	json_object_set_new(j, "qemu_total_ms",
	                    t->total_ms >= 0 ? json_integer(t->total_ms) : json_null());
	json_object_set_new(j, "transferred_bytes", json_integer((json_int_t)t->transferred_bytes));
	if (t->extra)
		json_object_update(j, t->extra); /* hooks' fields (may fill network_blackout_ms) */
	return j;
}
