/*
 * engine/checkpoint/writer.c - the snapshot writer (see writer.h).
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

struct ck_writer {
	struct job *job;
	ck_ack_fn ack;
	void *ack_arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	/* under lock: snapshots handed over, not yet written; steps not yet taken */
	struct ck_handover *q;
	int nq, capq;
	uint64_t cmd_trigger, cmd_abort;
	char cmd_dir[PATH_MAX];
	/* the writer's thread only */
	char dir[PATH_MAX];	/* where pending's files go */
	uint64_t last_id;	/* the last checkpoint started */
	uint64_t pending;	/* the one in flight (0: none) */
	bool *acked;		/* per subtask, for pending */
	struct weir_ckpt_file *files;
	struct snapvec *final;	/* per subtask: its snapshot at its end */
	bool *finished;
	uint64_t bytes, sync_max_ns;	/* of pending: written, longest synchronous part */
	uint64_t inflight;		/* of pending: bytes of in-flight data */
};

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

/* Decline the pending checkpoint: the coordinator aborts it everywhere. */
static void decline(struct ck_writer *c, const char *why)
{
	uint64_t id = c->pending;
	c->pending = 0;
	c->ack(c->ack_arg, id, NULL, 0, 0, 0, 0, why);
}

static void write_one(struct ck_writer *c, int s, const struct snapvec *sv)
{
	struct subtask *st = &c->job->subtasks[s];
	char name[48];
	snprintf(name, sizeof(name), "v%d-s%d.snap", st->v->id, st->index);
	if (weir_ckpt_write(c->dir, c->pending, name, sv, &c->files[s]) < 0) {
		decline(c, weir_err_msg());
		return;
	}
	c->bytes += c->files[s].size;
	c->files[s].vertex = (uint32_t)st->v->id;
	c->files[s].index = (uint32_t)st->index;
	c->files[s].parallelism = (uint32_t)st->v->parallelism;
	c->acked[s] = true;
}

/* Every subtask here written: acknowledge. */
static void try_ack(struct ck_writer *c)
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
	struct weir_ckpt_file *mine = c->files;
	int n = 0;
	for (int s = 0; s < job->nsub; s++)
		if (here(&job->subtasks[s]))
			mine[n++] = c->files[s]; /* n <= s: compacts in place */
	uint64_t id = c->pending;
	c->pending = 0;
	c->ack(c->ack_arg, id, mine, n, c->bytes, c->sync_max_ns, c->inflight, NULL);
}

static void trigger(struct ck_writer *c, uint64_t id)
{
	struct job *job = c->job;
	c->pending = c->last_id = id;
	c->bytes = c->sync_max_ns = c->inflight = 0;
	memset(c->acked, 0, sizeof(bool) * (size_t)job->nsub);
	__atomic_store_n(&job->ck_trigger, c->pending, __ATOMIC_RELEASE);
	for (int s = 0; s < job->nsub; s++)
		if (job->subtasks[s].is_source && here(&job->subtasks[s]))
			weir_doorbell_ring(weir_sched_doorbell(&job->sched, job->subtasks[s].task.worker));
}

/* Take the coordinator's steps (under c->lock). An abort drops the
 * pending checkpoint it names (the coordinator removes its files); a
 * trigger starts one, writing under the folder it names. */
static void take_steps(struct ck_writer *c)
{
	if (c->cmd_abort && c->pending && c->pending <= c->cmd_abort)
		c->pending = 0;
	if (c->cmd_trigger > c->last_id && c->cmd_trigger > c->cmd_abort) {
		snprintf(c->dir, sizeof(c->dir), "%s", c->cmd_dir);
		trigger(c, c->cmd_trigger);
	} else if (c->cmd_trigger > c->last_id) {
		c->last_id = c->cmd_trigger; /* aborted before it began here: never starts */
	}
	c->cmd_abort = c->cmd_trigger = 0;
}

int ck_writer_step(struct job *job, enum ck_step step, uint64_t id, const char *dir)
{
	struct ck_writer *c = job->ck;
	if (!c)
		return weir_err_set("the job runs without checkpoints");
	switch (step) {
	case CK_STEP_TRIGGER:
		pthread_mutex_lock(&c->lock);
		if (id > c->cmd_trigger) {
			c->cmd_trigger = id;
			snprintf(c->cmd_dir, sizeof(c->cmd_dir), "%s", dir);
		}
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		return 0;
	case CK_STEP_ABORT:
		pthread_mutex_lock(&c->lock);
		if (id > c->cmd_abort)
			c->cmd_abort = id;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		/* alignments waiting for it end (ids only grow; one thread at a
		 * time takes steps: the coordinator's) */
		if (id > __atomic_load_n(&job->ck_aborted, __ATOMIC_ACQUIRE))
			__atomic_store_n(&job->ck_aborted, id, __ATOMIC_RELEASE);
		ring_all(job);
		return 0;
	case CK_STEP_COMPLETE:
		/* sinks publish on their next step */
		if (id > __atomic_load_n(&job->ck_complete, __ATOMIC_ACQUIRE))
			__atomic_store_n(&job->ck_complete, id, __ATOMIC_RELEASE);
		ring_all(job);
		return 0;
	}
	return weir_err_set("unknown checkpoint step %d", (int)step);
}

static void *writer_main(void *arg)
{
	struct ck_writer *c = arg;
	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		take_steps(c);
		struct ck_handover *q = c->q;
		int nq = c->nq;
		c->q = NULL;
		c->nq = c->capq = 0;
		pthread_mutex_unlock(&c->lock);
		for (int i = 0; i < nq; i++) {
			struct ck_handover *a = &q[i];
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
		if (c->pending)
			try_ack(c);
		pthread_mutex_lock(&c->lock);
		if (c->stop || c->nq || c->cmd_trigger || c->cmd_abort)
			continue;
		/* at least every 100 ms (a subtask that finished stands in for
		 * itself); steps and snapshots signal the condition */
		weir_cond_wait_ns(&c->cond, &c->lock, 100000000u);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int ck_writer_start(struct job *job, uint64_t restored, ck_ack_fn ack, void *arg)
{
	struct ck_writer *c = calloc(1, sizeof(*c));
	if (!c)
		return weir_err_set("out of memory");
	c->job = job;
	c->ack = ack;
	c->ack_arg = arg;
	c->last_id = restored;
	c->acked = calloc((size_t)job->nsub + 1, sizeof(bool));
	c->finished = calloc((size_t)job->nsub + 1, sizeof(bool));
	c->files = calloc((size_t)job->nsub + 1, sizeof(*c->files));
	c->final = calloc((size_t)job->nsub + 1, sizeof(*c->final));
	weir_cond_init_monotonic(&c->cond);
	pthread_mutex_init(&c->lock, NULL);
	job->ck = c;
	if (!c->acked || !c->finished || !c->files || !c->final) {
		c->stop = true; /* no thread: nothing to join */
		ck_writer_stop(job);
		return weir_err_set("out of memory");
	}
	if (pthread_create(&c->thread, NULL, writer_main, c) != 0) {
		c->stop = true; /* never started: nothing to join */
		ck_writer_stop(job);
		return weir_err_set("cannot start the snapshot writer");
	}
	return 0;
}

void ck_writer_stop(struct job *job)
{
	struct ck_writer *c = job->ck;
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	bool running = !c->stop;
	c->stop = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (running)
		pthread_join(c->thread, NULL);
	for (int i = 0; i < c->nq; i++)
		weir_snapvec_free(&c->q[i].sv);
	free(c->q);
	for (int s = 0; c->final && s < job->nsub; s++)
		weir_snapvec_free(&c->final[s]);
	free(c->final);
	free(c->finished);
	free(c->files);
	free(c->acked);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
	job->ck = NULL;
}

int ck_writer_take(struct job *job, const struct ck_handover *a)
{
	struct ck_writer *c = job->ck;
	if (!c)
		return -1;
	pthread_mutex_lock(&c->lock);
	if (c->nq == c->capq) {
		int cap = c->capq ? c->capq * 2 : 16;
		struct ck_handover *q = realloc(c->q, sizeof(*q) * (size_t)cap);
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
