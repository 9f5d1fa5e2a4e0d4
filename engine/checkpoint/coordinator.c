/*
 * engine/checkpoint/coordinator.c - the checkpoint coordinator of one job
 * (see coordinator.h).
 */
#include "checkpoint/coordinator.h"
#include "base/err.h"
#include "base/failpoint.h"
#include "base/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS(x) ((uint64_t)(x) * 1000000u)

static void say_repeats(struct ck_coordinator *c);

int ck_coordinator_init(struct ck_coordinator *c, uint64_t job, uint32_t interval_ms, uint32_t timeout_ms,
			uint32_t min_pause_ms, uint32_t retain, const char *base, uint64_t last_id,
			const struct ck_coordinator_ops *ops, uint64_t now_ns)
{
	memset(c, 0, sizeof(*c));
	if (job)
		snprintf(c->label, sizeof(c->label), "job %llu: ", (unsigned long long)job);
	c->ops = *ops;
	c->interval_ms = interval_ms;
	c->timeout_ms = timeout_ms ? timeout_ms : 60000;
	c->min_pause_ms = min_pause_ms;
	c->retain = retain ? retain : 1;
	c->last_id = last_id;
	if (snprintf(c->base, sizeof(c->base), "%s", base) >= (int)sizeof(c->base))
		return weir_err_set("the checkpoint folder's path is too long");
	c->next_ns = now_ns + MS(interval_ms);
	return 0;
}

void ck_coordinator_release(struct ck_coordinator *c, uint64_t now_ns)
{
	ck_coordinator_reset(c, now_ns);
	say_repeats(c);
	free(c->acked);
	free(c->files);
	c->acked = NULL;
	c->files = NULL;
	for (int i = 0; i < CK_HISTORY; i++) {
		free(c->history[i].sizes);
		c->history[i].sizes = NULL;
	}
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The pending one ended (why: NULL, complete): into the history. */
static void record(struct ck_coordinator *c, const char *why, uint64_t now_ns)
{
	struct ck_record *r = &c->history[c->nhistory++ % CK_HISTORY];
	free(r->sizes);
	*r = (struct ck_record){ .id = c->pending, .savepoint = c->savepoint, .ok = !why, .trigger_ms = c->pending_ms,
				 .end_ms = wall_ms(), .duration_ns = now_ns - c->pending_ns, .bytes = c->bytes,
				 .inflight = c->inflight, .sync_max_ns = c->sync_max_ns };
	snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
	if (!why && c->nfiles && (r->sizes = malloc(sizeof(*r->sizes) * c->nfiles))) {
		for (uint32_t i = 0; i < c->nfiles; i++)
			r->sizes[i] = (struct ck_size){ c->files[i].vertex, c->files[i].index, c->files[i].size };
		r->nsizes = c->nfiles;
	}
}

static const char *what(const struct ck_coordinator *c)
{
	return c->savepoint ? "savepoint" : "checkpoint";
}

static uint64_t begin(struct ck_coordinator *c, int nparts, uint32_t nsub, const char *savepoint_dir,
		      uint64_t now_ns)
{
	bool *acked = calloc((size_t)nparts + 1, sizeof(bool));
	if (!acked) {
		weir_log(WEIR_LOG_WARN, "%scheckpoint not started: out of memory", c->label);
		return 0;
	}
	free(c->acked);
	c->acked = acked;
	c->nparts = nparts;
	c->nsub = nsub;
	c->nfiles = 0;
	c->bytes = c->sync_max_ns = c->inflight = 0;
	c->savepoint = savepoint_dir != NULL;
	snprintf(c->dir, sizeof(c->dir), "%s", savepoint_dir ? savepoint_dir : c->base);
	c->pending = ++c->last_id;
	c->pending_ns = now_ns;
	c->pending_ms = wall_ms();
	return c->pending;
}

uint64_t ck_coordinator_tick(struct ck_coordinator *c, int nparts, uint32_t nsub, const char *savepoint_dir,
			     uint64_t now_ns)
{
	/* now_ns may be a clock read before the trigger (a caller's tick): no timeout */
	if (c->pending && now_ns > c->pending_ns && now_ns - c->pending_ns > MS(c->timeout_ms))
		ck_coordinator_abort(c, "timed out", now_ns);
	bool due = c->interval_ms && now_ns >= c->next_ns;
	if (c->pending || !(savepoint_dir || due))
		return 0;
	uint64_t id = begin(c, nparts, nsub, savepoint_dir, now_ns);
	if (id)
		c->ops.send(c->ops.arg, CK_STEP_TRIGGER, id, c->dir);
	return id;
}

uint64_t ck_coordinator_wake(const struct ck_coordinator *c)
{
	if (c->pending)
		return c->pending_ns + MS(c->timeout_ms) + 1;
	return c->interval_ms ? c->next_ns : UINT64_MAX;
}

/* The aborts in a row for the same reason after the first, which was
 * logged, are said once, in one line, when the run of them ends. */
static void say_repeats(struct ck_coordinator *c)
{
	if (c->repeats)
		weir_log(WEIR_LOG_WARN, "%s%llu more checkpoints aborted (%llu to %llu): %s", c->label,
			 (unsigned long long)c->repeats, (unsigned long long)c->repeat_first,
			 (unsigned long long)c->repeat_last, c->last_why);
	c->repeats = 0;
}

/* Are two reasons the same but for their numbers (a checkpoint's id or
 * a subtask's in a file name)? */
static bool same_reason(const char *a, const char *b)
{
	while (*a && *b) {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			while (isdigit((unsigned char)*a))
				a++;
			while (isdigit((unsigned char)*b))
				b++;
		} else if (*a++ != *b++) {
			return false;
		}
	}
	return *a == *b;
}

void ck_coordinator_abort(struct ck_coordinator *c, const char *why, uint64_t now_ns)
{
	uint64_t id = c->pending;
	if (!id)
		return;
	bool sp = c->savepoint;
	char cut[sizeof(c->last_why)];
	snprintf(cut, sizeof(cut), "%s", why); /* as last_why keeps it */
	if (c->fails && same_reason(cut, c->last_why)) {
		if (!c->repeats++)
			c->repeat_first = id;
		c->repeat_last = id;
	} else {
		say_repeats(c);
		weir_log(WEIR_LOG_WARN, "%s%s %llu aborted: %s", c->label, what(c), (unsigned long long)id, why);
		snprintf(c->last_why, sizeof(c->last_why), "%s", why);
	}
	weir_ckpt_discard(c->dir, id);
	record(c, why, now_ns);
	c->aborted++;
	c->pending = 0;
	/* the next one after the interval (at least the minimum pause), twice
	 * as long for each abort in a row, up to CK_BACKOFF_MAX_MS: storage
	 * that keeps failing is not hammered */
	uint64_t base = MS(c->min_pause_ms > c->interval_ms ? c->min_pause_ms : c->interval_ms);
	uint64_t cap = base > MS(CK_BACKOFF_MAX_MS) ? base : MS(CK_BACKOFF_MAX_MS), wait = base;
	for (uint32_t i = 0; i < c->fails && wait < cap; i++)
		wait *= 2;
	if (wait > cap)
		wait = cap;
	c->fails++;
	c->next_ns = now_ns + wait;
	c->ops.send(c->ops.arg, CK_STEP_ABORT, id, NULL);
	if (c->ops.ended)
		c->ops.ended(c->ops.arg, id, sp, false, why);
}

/* Every part is in: write the metadata, which makes it complete, then
 * announce it and let retention run. */
static void complete(struct ck_coordinator *c, uint64_t now_ns)
{
	uint64_t id = c->pending;
	bool sp = c->savepoint;
	struct weir_ckpt_meta m = { id, (uint64_t)time(NULL) * 1000u, c->nfiles, c->files };
	if (weir_ckpt_commit(c->dir, &m) < 0) {
		ck_coordinator_abort(c, weir_err_msg(), now_ns);
		return;
	}
	record(c, NULL, now_ns);
	c->completed++;
	c->latest = id;
	c->latest_ns = now_ns;
	c->latest_bytes = c->bytes;
	snprintf(c->latest_path, sizeof(c->latest_path), "%s/chk-%llu", c->dir, (unsigned long long)id);
	/* "(T ms, B bytes, longest synchronous pause P ms, ...": bench/run reads it */
	weir_log(WEIR_LOG_INFO, "%s%s %llu complete (%.1f ms, %llu bytes, longest synchronous pause %.3f ms, "
		 "%u files, %llu bytes in flight)%s%s", c->label, what(c), (unsigned long long)id,
		 (double)(now_ns - c->pending_ns) / 1e6, (unsigned long long)c->bytes, (double)c->sync_max_ns / 1e6,
		 c->nfiles, (unsigned long long)c->inflight, sp ? " in " : "", sp ? c->latest_path : "");
	c->pending = 0;
	say_repeats(c);
	c->fails = 0;
	c->next_ns = now_ns + MS(c->min_pause_ms > c->interval_ms ? c->min_pause_ms : c->interval_ms);
	if (weir_failpoint("checkpoint.complete") < 0) {
		/* complete on disk, never announced: a restore may use it (and then
		 * commits what it covers); sinks publish it with the next one. No
		 * retention: until one is announced, the ones before may be needed */
		weir_log(WEIR_LOG_WARN, "%scheckpoint %llu complete but not announced: failpoint checkpoint.complete",
			 c->label, (unsigned long long)id);
	} else {
		c->ops.send(c->ops.arg, CK_STEP_COMPLETE, id, NULL);
		if (!sp)
			weir_ckpt_retain(c->base, id, (int)c->retain);
	}
	if (c->ops.ended)
		c->ops.ended(c->ops.arg, id, sp, true, c->latest_path);
}

void ck_coordinator_acked(struct ck_coordinator *c, int k, uint64_t id, const struct weir_ckpt_file *files,
			  uint32_t nfiles, uint64_t bytes, uint64_t sync_ns, uint64_t inflight, const char *err,
			  uint64_t now_ns)
{
	if (!c->pending || id != c->pending || k < 0 || k >= c->nparts || c->acked[k])
		return; /* late, for an aborted one, or again */
	if (err) {
		ck_coordinator_abort(c, err, now_ns);
		return;
	}
	if (c->nfiles + nfiles > c->capfiles) {
		uint32_t cap = (c->nfiles + nfiles) * 2 + 8;
		struct weir_ckpt_file *f = realloc(c->files, sizeof(*f) * cap);
		if (!f) {
			ck_coordinator_abort(c, "out of memory", now_ns);
			return;
		}
		c->files = f;
		c->capfiles = cap;
	}
	memcpy(c->files + c->nfiles, files, sizeof(*files) * nfiles);
	c->nfiles += nfiles;
	c->bytes += bytes;
	c->inflight += inflight;
	if (sync_ns > c->sync_max_ns)
		c->sync_max_ns = sync_ns;
	c->acked[k] = true;
	for (int i = 0; i < c->nparts; i++)
		if (!c->acked[i])
			return;
	if (c->nfiles != c->nsub) {
		char why[96];
		snprintf(why, sizeof(why), "%u snapshot files for %u subtasks", c->nfiles, c->nsub);
		ck_coordinator_abort(c, why, now_ns);
		return;
	}
	complete(c, now_ns);
}

void ck_coordinator_reset(struct ck_coordinator *c, uint64_t now_ns)
{
	if (c->pending) {
		weir_ckpt_discard(c->dir, c->pending);
		record(c, "the attempt ended", now_ns);
		c->pending = 0;
	}
	c->next_ns = now_ns + MS(c->interval_ms);
}
