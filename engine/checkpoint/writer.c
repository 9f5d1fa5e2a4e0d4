/*
 * engine/checkpoint/writer.c - the snapshot writer: subtasks hand it their
 * sealed snapshots, it writes them durably (store.h) and acknowledges.
 */
#include "checkpoint/writer.h"
#include "checkpoint/format.h"
#include "checkpoint/store.h"
#include "task/task.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/failpoint.h"
#include "base/log.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ckcoord {
	struct job *job;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct ck_ack *q;	/* snapshots handed over, not yet written */
	int nq, capq;
	/* a cluster's TaskManager (job->dist): the JobManager decides; these
	 * are its steps not yet taken by the thread (under lock) */
	bool dist;
	uint64_t cmd_trigger, cmd_abort;
	char cmd_dir[PATH_MAX];
	char base[PATH_MAX];	/* where pending's files go */
	uint64_t last_id;	/* the last checkpoint started */
	uint64_t pending;	/* the one in flight (0: none) */
	uint64_t pending_ns;
	uint64_t next_ns;	/* when the next may start */
	bool *acked;		/* per subtask, for pending */
	struct weir_ckpt_file *files;
	struct snapvec *final;	/* per subtask: its snapshot at its end */
	bool *finished;
	uint64_t completed, aborted;
	uint64_t bytes, sync_max_ns;	/* of pending: written, longest synchronous part */
	uint64_t inflight;		/* of pending: bytes of in-flight data */
};

/* ---- the coordinator ------------------------------------------------------
 *
 * Local mode: it decides when a checkpoint starts, writes every
 * subtask's snapshot, completes it and announces it. In a cluster's
 * TaskManager (dist) it writes the snapshots of the subtasks that run
 * here when the JobManager triggers one, and reports them (d->ck_acked);
 * the JobManager completes the checkpoint and announces it back
 * (weir_run_dist_checkpoint).
 */

/* A subtask that runs in this process (in a cluster, the others are
 * placeholders without operators). */
static bool here(const struct subtask *st)
{
	return st->ops != NULL;
}

static void ring_all(struct job *job)
{
	for (int w = 0; w < job->sched.nworkers; w++)
		weir_doorbell_ring(weir_sched_doorbell(&job->sched, w));
}

static void abort_pending(struct ckcoord *c, const char *why)
{
	if (c->dist) { /* the JobManager aborts it everywhere */
		const struct weir_dist *d = c->job->dist;
		d->ck_acked(d->arg, c->pending, NULL, 0, 0, 0, why);
		c->pending = 0;
		return;
	}
	weir_log(WEIR_LOG_WARN, "checkpoint %llu aborted: %s", (unsigned long long)c->pending, why);
	fprintf(stderr, "weir: checkpoint %llu aborted: %s\n", (unsigned long long)c->pending, why);
	weir_ckpt_discard(c->base, c->pending);
	/* subtasks still aligning it release their inputs (ids only grow) */
	__atomic_store_n(&c->job->ck_aborted, c->pending, __ATOMIC_RELEASE);
	ring_all(c->job);
	c->pending = 0;
	c->aborted++;
	c->next_ns = weir_now_ns() + (uint64_t)c->job->cfg.checkpoint_min_pause_ms * 1000000u;
}

static void write_one(struct ckcoord *c, int s, const struct snapvec *sv)
{
	struct subtask *st = &c->job->subtasks[s];
	char name[48];
	snprintf(name, sizeof(name), "v%d-s%d.snap", st->v->id, st->index);
	if (weir_ckpt_write(c->base, c->pending, name, sv, &c->files[s]) < 0) {
		abort_pending(c, weir_err_msg());
		return;
	}
	c->bytes += c->files[s].size;
	c->files[s].vertex = (uint32_t)st->v->id;
	c->files[s].index = (uint32_t)st->index;
	c->files[s].parallelism = (uint32_t)st->v->parallelism;
	c->acked[s] = true;
}

static void try_complete(struct ckcoord *c)
{
	struct job *job = c->job;
	for (int s = 0; c->pending && s < job->nsub; s++)
		if (!c->acked[s] && c->finished[s])
			write_one(c, s, &c->final[s]);
	if (!c->pending)
		return;
	for (int s = 0; s < job->nsub; s++)
		if (!c->acked[s] && here(&job->subtasks[s]))
			return;
	if (c->dist) { /* every subtask here is durable: tell the JobManager */
		struct weir_ckpt_file *mine = c->files;
		int n = 0;
		for (int s = 0; s < job->nsub; s++)
			if (here(&job->subtasks[s]))
				mine[n++] = c->files[s]; /* n <= s: compacts in place */
		job->dist->ck_acked(job->dist->arg, c->pending, mine, n, c->bytes, c->sync_max_ns, NULL);
		c->pending = 0;
		return;
	}
	struct weir_ckpt_meta m = { c->pending, (uint64_t)time(NULL) * 1000u, (uint32_t)job->nsub, c->files };
	if (weir_ckpt_commit(c->base, &m) < 0) {
		abort_pending(c, weir_err_msg());
		return;
	}
	if (weir_failpoint("checkpoint.complete") < 0) {
		/* complete on disk, never announced: it stays (a restore may use
		 * it, and then commits what it covers); sinks commit its files
		 * with the next one's */
		weir_log(WEIR_LOG_WARN, "checkpoint %llu complete but not announced: failpoint checkpoint.complete",
			 (unsigned long long)c->pending);
		c->pending = 0;
		c->aborted++;
		c->next_ns = weir_now_ns() + (uint64_t)job->cfg.checkpoint_min_pause_ms * 1000000u;
		return;
	}
	c->completed++;
	weir_log(WEIR_LOG_INFO, "checkpoint %llu complete (%.1f ms, %llu bytes, longest synchronous pause %.3f ms, "
		 "%llu bytes in flight)", (unsigned long long)c->pending, (double)(weir_now_ns() - c->pending_ns) / 1e6,
		 (unsigned long long)c->bytes, (double)c->sync_max_ns / 1e6, (unsigned long long)c->inflight);
	__atomic_store_n(&job->ck_complete, c->pending, __ATOMIC_RELEASE);
	ring_all(job); /* sinks commit on their next step */
	weir_ckpt_retain(c->base, c->pending, (int)job->cfg.checkpoint_retain);
	c->pending = 0;
	c->next_ns = weir_now_ns() + (uint64_t)(job->cfg.checkpoint_min_pause_ms > job->cfg.checkpoint_interval_ms
						       ? job->cfg.checkpoint_min_pause_ms
						       : job->cfg.checkpoint_interval_ms) * 1000000u;
}

static void trigger(struct ckcoord *c, uint64_t id)
{
	struct job *job = c->job;
	c->pending = c->last_id = id;
	c->pending_ns = weir_now_ns();
	c->bytes = c->sync_max_ns = c->inflight = 0;
	memset(c->acked, 0, sizeof(bool) * (size_t)job->nsub);
	__atomic_store_n(&job->ck_trigger, c->pending, __ATOMIC_RELEASE);
	for (int s = 0; s < job->nsub; s++)
		if (job->subtasks[s].is_source && here(&job->subtasks[s]))
			weir_doorbell_ring(weir_sched_doorbell(&job->sched, job->subtasks[s].task.worker));
}

/* dist: take the JobManager's steps (under c->lock). An abort drops the
 * pending checkpoint it names (the JobManager removes its files); a
 * trigger starts one, writing under the folder it names. */
static void take_commands(struct ckcoord *c)
{
	if (c->cmd_abort && c->pending && c->pending <= c->cmd_abort)
		c->pending = 0;
	if (c->cmd_trigger > c->last_id && c->cmd_trigger > c->cmd_abort) {
		snprintf(c->base, sizeof(c->base), "%s", c->cmd_dir);
		trigger(c, c->cmd_trigger);
	} else if (c->cmd_trigger > c->last_id) {
		c->last_id = c->cmd_trigger; /* aborted before it began here: never starts */
	}
	c->cmd_abort = c->cmd_trigger = 0;
}

int ck_coord_command(struct job *job, int action, uint64_t id, const char *dir)
{
	struct ckcoord *c = job->ck;
	if (!c)
		return weir_err_set("the job runs without checkpoints");
	switch (action) {
	case CK_CMD_TRIGGER:
		pthread_mutex_lock(&c->lock);
		if (id > c->cmd_trigger) {
			c->cmd_trigger = id;
			snprintf(c->cmd_dir, sizeof(c->cmd_dir), "%s", dir);
		}
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		return 0;
	case CK_CMD_ABORT:
		pthread_mutex_lock(&c->lock);
		if (id > c->cmd_abort)
			c->cmd_abort = id;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		/* alignments waiting for it end (ids only grow) */
		if (id > __atomic_load_n(&job->ck_aborted, __ATOMIC_ACQUIRE))
			__atomic_store_n(&job->ck_aborted, id, __ATOMIC_RELEASE);
		ring_all(job);
		return 0;
	case CK_CMD_COMPLETE:
		/* sinks publish on their next step; only this thread stores it */
		if (id > __atomic_load_n(&job->ck_complete, __ATOMIC_ACQUIRE))
			__atomic_store_n(&job->ck_complete, id, __ATOMIC_RELEASE);
		ring_all(job);
		return 0;
	}
	return weir_err_set("unknown checkpoint step %d", action);
}

static void *coord_main(void *arg)
{
	struct ckcoord *c = arg;
	struct job *job = c->job;
	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		if (c->dist)
			take_commands(c);
		struct ck_ack *q = c->q;
		int nq = c->nq;
		c->q = NULL;
		c->nq = c->capq = 0;
		pthread_mutex_unlock(&c->lock);
		for (int i = 0; i < nq; i++) {
			struct ck_ack *a = &q[i];
			if (a->final) { /* kept for every checkpoint from now on */
				weir_snapvec_free(&c->final[a->sub]);
				c->final[a->sub] = a->sv;
				c->finished[a->sub] = true;
				continue;
			}
			if (c->pending && a->id == c->pending && !c->acked[a->sub]) {
				if (a->sync_ns > c->sync_max_ns)
					c->sync_max_ns = a->sync_ns;
				c->inflight += a->inflight;
				write_one(c, a->sub, &a->sv);
			}
			weir_snapvec_free(&a->sv);
		}
		free(q);
		uint64_t now = weir_now_ns();
		if (c->pending)
			try_complete(c);
		if (!c->dist && c->pending && now - c->pending_ns > (uint64_t)job->cfg.checkpoint_timeout_ms * 1000000u)
			abort_pending(c, "timed out");
		if (!c->dist && !c->pending && now >= c->next_ns)
			trigger(c, c->last_id + 1);
		pthread_mutex_lock(&c->lock);
		if (c->stop || c->nq || c->cmd_trigger || c->cmd_abort)
			continue;
		/* at least every 100 ms (finished subtasks); local mode also at its
		 * timeout or next trigger; dist: commands signal the condition */
		uint64_t wait = 100000000u;
		if (!c->dist) {
			uint64_t wake = c->pending ? c->pending_ns + (uint64_t)job->cfg.checkpoint_timeout_ms * 1000000u
						   : c->next_ns;
			uint64_t until = wake > now ? wake - now : 0;
			wait = until < wait ? until : wait;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t abs = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + wait;
		ts.tv_sec = (time_t)(abs / 1000000000u);
		ts.tv_nsec = (long)(abs % 1000000000u);
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int ck_coord_start(struct job *job, const char *base, uint64_t restored)
{
	struct ckcoord *c = calloc(1, sizeof(*c));
	if (!c)
		return weir_err_set("out of memory");
	c->job = job;
	c->dist = job->dist != NULL;
	snprintf(c->base, sizeof(c->base), "%s", base ? base : "");
	c->last_id = restored;
	c->next_ns = weir_now_ns() + (uint64_t)job->cfg.checkpoint_interval_ms * 1000000u;
	c->acked = calloc((size_t)job->nsub + 1, sizeof(bool));
	c->finished = calloc((size_t)job->nsub + 1, sizeof(bool));
	c->files = calloc((size_t)job->nsub + 1, sizeof(*c->files));
	c->final = calloc((size_t)job->nsub + 1, sizeof(*c->final));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c->lock, NULL);
	if (!c->acked || !c->finished || !c->files || !c->final) {
		job->ck = c;
		ck_coord_stop(job);
		return weir_err_set("out of memory");
	}
	job->ck = c;
	if (pthread_create(&c->thread, NULL, coord_main, c) != 0) {
		ck_coord_stop(job);
		return weir_err_set("cannot start the checkpoint coordinator");
	}
	return 0;
}

void ck_coord_stop(struct job *job)
{
	struct ckcoord *c = job->ck;
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	bool running = !c->stop;
	c->stop = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (running && c->thread)
		pthread_join(c->thread, NULL);
	for (int i = 0; i < c->nq; i++)
		weir_snapvec_free(&c->q[i].sv);
	free(c->q);
	for (int s = 0; c->final && s < job->nsub; s++)
		weir_snapvec_free(&c->final[s]);
	if (c->pending && !c->dist) /* never completed: not a checkpoint */
		weir_ckpt_discard(c->base, c->pending);
	free(c->final);
	free(c->finished);
	free(c->files);
	free(c->acked);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
	job->ck = NULL;
}



int ck_writer_take(struct job *job, const struct ck_ack *a)
{
	struct ckcoord *c = job->ck;
	if (!c)
		return -1;
	pthread_mutex_lock(&c->lock);
	if (c->nq == c->capq) {
		int cap = c->capq ? c->capq * 2 : 16;
		struct ck_ack *q = realloc(c->q, sizeof(*q) * (size_t)cap);
		if (!q) {
			pthread_mutex_unlock(&c->lock);
			return weir_err_set("out of memory");
		}
		c->q = q;
		c->capq = cap;
	}
	c->q[c->nq++] = *a;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return 0;
}
