/*
 * engine/coordinator.c - the JobManager's checkpoint coordinator for one
 * job (see coordinator.h).
 */
#include "checkpoint/coordinator.h"
#include "base/err.h"
#include "base/failpoint.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int ckc_init(struct ck_coordinator *c, uint64_t job, uint32_t interval_ms, uint32_t timeout_ms, uint32_t min_pause_ms,
	     uint32_t retain, const char *base, uint64_t now_ns)
{
	memset(c, 0, sizeof(*c));
	c->job = job;
	c->interval_ms = interval_ms;
	c->timeout_ms = timeout_ms ? timeout_ms : 60000;
	c->min_pause_ms = min_pause_ms;
	c->retain = retain ? retain : 1;
	if (snprintf(c->base, sizeof(c->base), "%s", base) >= (int)sizeof(c->base))
		return weir_err_set("the checkpoint folder's path is too long");
	c->next_ns = now_ns + (uint64_t)interval_ms * 1000000u;
	return 0;
}

void ckc_free(struct ck_coordinator *c)
{
	free(c->acked);
	free(c->files);
	c->acked = NULL;
	c->files = NULL;
}

bool ckc_due(const struct ck_coordinator *c, uint64_t now_ns)
{
	return c->interval_ms && !c->pending && now_ns >= c->next_ns;
}

bool ckc_timed_out(const struct ck_coordinator *c, uint64_t now_ns)
{
	return c->pending && now_ns - c->pending_ns > (uint64_t)c->timeout_ms * 1000000u;
}

uint64_t ckc_begin(struct ck_coordinator *c, int nparts, const char *savepoint_dir, uint64_t now_ns)
{
	bool *acked = calloc((size_t)nparts + 1, sizeof(bool));
	if (!acked)
		return weir_err_set("out of memory"), 0;
	free(c->acked);
	c->acked = acked;
	c->nparts = nparts;
	c->nfiles = 0;
	c->bytes = c->sync_max_ns = 0;
	c->savepoint = savepoint_dir != NULL;
	snprintf(c->dir, sizeof(c->dir), "%s", savepoint_dir ? savepoint_dir : c->base);
	c->pending = ++c->last_id;
	c->pending_ns = now_ns;
	return c->pending;
}

int ckc_ack(struct ck_coordinator *c, int k, uint64_t id, const struct weir_ckpt_file *files, uint32_t nfiles,
	    uint64_t bytes, uint64_t sync_ns)
{
	if (!c->pending || id != c->pending || k < 0 || k >= c->nparts || c->acked[k])
		return -1;
	if (c->nfiles + nfiles > c->capfiles) {
		uint32_t cap = (c->nfiles + nfiles) * 2 + 8;
		struct weir_ckpt_file *f = realloc(c->files, sizeof(*f) * cap);
		if (!f)
			return -1; /* never complete: the timeout aborts it */
		c->files = f;
		c->capfiles = cap;
	}
	memcpy(c->files + c->nfiles, files, sizeof(*files) * nfiles);
	c->nfiles += nfiles;
	c->bytes += bytes;
	if (sync_ns > c->sync_max_ns)
		c->sync_max_ns = sync_ns;
	c->acked[k] = true;
	for (int i = 0; i < c->nparts; i++)
		if (!c->acked[i])
			return 0;
	return 1;
}

int ckc_complete(struct ck_coordinator *c, uint64_t now_ns)
{
	struct weir_ckpt_meta m = { c->pending, (uint64_t)time(NULL) * 1000u, c->nfiles, c->files };
	if (weir_ckpt_commit(c->dir, &m) < 0)
		return -1;
	c->completed++;
	c->latest = c->pending;
	snprintf(c->latest_path, sizeof(c->latest_path), "%s/chk-%llu", c->dir, (unsigned long long)c->pending);
	weir_log(WEIR_LOG_INFO, "job %llu: %s %llu complete (%.1f ms, %llu bytes, %u files, longest synchronous pause %.3f ms)%s%s",
		 (unsigned long long)c->job, c->savepoint ? "savepoint" : "checkpoint", (unsigned long long)c->pending,
		 (double)(now_ns - c->pending_ns) / 1e6, (unsigned long long)c->bytes, c->nfiles,
		 (double)c->sync_max_ns / 1e6, c->savepoint ? " in " : "", c->savepoint ? c->latest_path : "");
	c->pending = 0;
	uint32_t wait = c->min_pause_ms > c->interval_ms ? c->min_pause_ms : c->interval_ms;
	c->next_ns = now_ns + (uint64_t)wait * 1000000u;
	return 0;
}

void ckc_retain(struct ck_coordinator *c)
{
	if (c->latest && !strncmp(c->latest_path, c->base, strlen(c->base)))
		weir_ckpt_retain(c->base, c->latest, (int)c->retain);
}

void ckc_abort(struct ck_coordinator *c, const char *why, uint64_t now_ns)
{
	if (!c->pending)
		return;
	weir_log(WEIR_LOG_WARN, "job %llu: %s %llu aborted: %s", (unsigned long long)c->job,
		 c->savepoint ? "savepoint" : "checkpoint", (unsigned long long)c->pending, why);
	weir_ckpt_discard(c->dir, c->pending);
	c->aborted++;
	c->pending = 0;
	c->next_ns = now_ns + (uint64_t)c->min_pause_ms * 1000000u;
}

void ckc_reset(struct ck_coordinator *c, uint64_t now_ns)
{
	if (c->pending) {
		weir_ckpt_discard(c->dir, c->pending);
		c->pending = 0;
	}
	c->next_ns = now_ns + (uint64_t)c->interval_ms * 1000000u;
}
