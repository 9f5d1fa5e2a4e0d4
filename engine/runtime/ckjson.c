/*
 * engine/runtime/ckjson.c - a job's checkpoint history as the REST API
 * shows it (ckjson.h), for the JobManager's API and weir local's.
 */
#include "runtime/ckjson.h"
#include "metrics/metrics.h"

#include <stdlib.h>

static json_t *ck_record(const struct ck_record *r)
{
	json_t *o = json_pack("{s:I,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "id", (json_int_t)r->id, "status",
			      r->ok ? "COMPLETED" : "FAILED", "is_savepoint", r->savepoint, "trigger_timestamp",
			      (json_int_t)r->trigger_ms, "latest_ack_timestamp", (json_int_t)r->end_ms,
			      "end_to_end_duration", (json_int_t)(r->duration_ns / 1000000u), "state_size",
			      (json_int_t)r->bytes, "checkpointed_size", (json_int_t)r->bytes, "persisted_data",
			      (json_int_t)r->inflight, "sync_duration_max_ms", (double)r->sync_max_ns / 1e6);
	if (o && !r->ok)
		json_object_set_new(o, "failure_message", weir_json_str(r->why));
	return o;
}

static json_t *ck_in_progress(const struct ck_coordinator *c)
{
	return json_pack("{s:I,s:s,s:b,s:I}", "id", (json_int_t)c->pending, "status", "IN_PROGRESS", "is_savepoint",
			 c->savepoint, "trigger_timestamp", (json_int_t)c->pending_ms);
}

json_t *weir_ck_history_json(const struct ck_coordinator *c, bool ck_on, uint64_t restored_id, uint32_t restarts)
{
	json_t *hist = json_array();
	json_t *latest_ok = json_null(), *latest_sp = json_null(), *latest_fail = json_null();
	uint64_t n = c->nhistory < CK_HISTORY ? c->nhistory : CK_HISTORY;
	double dmin = 0, dmax = 0, dsum = 0, smin = 0, smax = 0, ssum = 0;
	int ok = 0;
	if (ck_on && c->pending)
		json_array_append_new(hist, ck_in_progress(c));
	for (uint64_t k = 0; hist && k < n; k++) { /* newest first */
		const struct ck_record *r = &c->history[(c->nhistory - 1 - k) % CK_HISTORY];
		json_array_append_new(hist, ck_record(r));
		if (r->ok && r->savepoint && json_is_null(latest_sp))
			latest_sp = ck_record(r);
		if (r->ok && !r->savepoint && json_is_null(latest_ok))
			latest_ok = ck_record(r);
		if (!r->ok && json_is_null(latest_fail))
			latest_fail = ck_record(r);
		if (r->ok) {
			double d = (double)r->duration_ns / 1e6, s = (double)r->bytes;
			dmin = ok ? (d < dmin ? d : dmin) : d;
			dmax = ok ? (d > dmax ? d : dmax) : d;
			smin = ok ? (s < smin ? s : smin) : s;
			smax = ok ? (s > smax ? s : smax) : s;
			dsum += d;
			ssum += s;
			ok++;
		}
	}
	json_t *restored = restored_id ? json_pack("{s:I}", "id", (json_int_t)restored_id) : json_null();
	return json_pack("{s:{s:I,s:I,s:i,s:I,s:I},s:{s:{s:f,s:f,s:f},s:{s:f,s:f,s:f}},s:{s:o,s:o,s:o,s:o},s:o}",
			 "counts", "restored", (json_int_t)restarts, "total",
			 (json_int_t)(c->completed + c->aborted + (c->pending ? 1 : 0)), "in_progress",
			 c->pending ? 1 : 0, "completed", (json_int_t)c->completed, "failed", (json_int_t)c->aborted,
			 "summary", "end_to_end_duration", "min", dmin, "max", dmax, "avg", ok ? dsum / ok : 0.0,
			 "state_size", "min", smin, "max", smax, "avg", ok ? ssum / ok : 0.0, "latest", "completed",
			 latest_ok, "savepoint", latest_sp, "failed", latest_fail, "restored", restored, "history", hist);
}

json_t *weir_ck_detail_json(const struct ck_coordinator *c, bool ck_on, const char *cid, const struct weir_series *s)
{
	char *end;
	if (cid[0] < '0' || cid[0] > '9')
		return NULL;
	unsigned long long id = strtoull(cid, &end, 10);
	if (*end)
		return NULL;
	uint64_t n = c->nhistory < CK_HISTORY ? c->nhistory : CK_HISTORY;
	for (uint64_t k = 0; k < n; k++) {
		const struct ck_record *r = &c->history[(c->nhistory - 1 - k) % CK_HISTORY];
		if (r->id != id)
			continue;
		json_t *o = ck_record(r), *subs = json_array();
		for (uint32_t i = 0; subs && i < r->nsizes; i++) {
			const struct ck_size *z = &r->sizes[i];
			const char *name = s && z->vertex < s->nv ? s->names[z->vertex] : "?";
			json_array_append_new(subs, json_pack("{s:i,s:o,s:i,s:I}", "vertex", (int)z->vertex, "name",
							      weir_json_str(name), "subtask", (int)z->index,
							      "state_size", (json_int_t)z->size));
		}
		json_object_set_new(o, "subtasks", subs);
		return o;
	}
	if (ck_on && c->pending == id)
		return ck_in_progress(c);
	return NULL;
}

