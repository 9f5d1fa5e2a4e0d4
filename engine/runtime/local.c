/*
 * engine/runtime/local.c - local mode as a mini-cluster: the checkpoint
 * coordinator of a job run in this process, driven by a thread, with the
 * job's snapshot writer as its one part (see local.h).
 *
 * Locking: the coordinator is used under d->lock only, by the driver's
 * thread (ticks) and by the writer's (acknowledgements). A step it sends
 * takes the writer's lock inside d->lock; the writer never holds its lock
 * while it acknowledges, so the order is always d->lock, then the
 * writer's.
 */
#include "runtime/local.h"
#include "checkpoint/coordinator.h"
#include "checkpoint/store.h"
#include "checkpoint/writer.h"
#include "runtime/ckjson.h"
#include "base/clock.h"
#include "base/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct ck_driver {
	struct job *job;
	struct ck_coordinator ck;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
};

static void send_step(void *arg, enum ck_step step, uint64_t id, const char *dir)
{
	struct ck_driver *d = arg;
	ck_writer_step(d->job, step, id, dir);
}

static void acked(void *arg, uint64_t id, const struct weir_ckpt_file *files, int nfiles, uint64_t bytes,
		  uint64_t sync_max_ns, uint64_t inflight, const char *err)
{
	struct ck_driver *d = arg;
	pthread_mutex_lock(&d->lock);
	ck_coordinator_acked(&d->ck, 0, id, files, (uint32_t)nfiles, bytes, sync_max_ns, inflight, err, weir_now_ns());
	pthread_cond_signal(&d->cond); /* the next one's time may have moved */
	pthread_mutex_unlock(&d->lock);
}

static void *driver_main(void *arg)
{
	struct ck_driver *d = arg;
	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		uint64_t now = weir_now_ns();
		ck_coordinator_tick(&d->ck, 1, (uint32_t)d->job->nsub, NULL, now);
		uint64_t wake = ck_coordinator_wake(&d->ck);
		if (wake <= now)
			continue;
		/* at most 100 ms, measured on the real clock: weir_now_ns may be a
		 * test's manual clock, which moves without signalling us */
		uint64_t wait = wake - now < 100000000u ? wake - now : 100000000u;
		weir_cond_wait_ns(&d->cond, &d->lock, wait);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int weir_local_ck_start(struct job *job, const char *base, uint64_t restored)
{
	struct ck_driver *d = calloc(1, sizeof(*d));
	if (!d)
		return weir_err_set("out of memory");
	d->job = job;
	const struct weir_config *cfg = &job->cfg;
	struct ck_coordinator_ops ops = { send_step, NULL, d };
	if (ck_coordinator_init(&d->ck, 0, cfg->checkpoint_interval_ms, cfg->checkpoint_timeout_ms,
				cfg->checkpoint_min_pause_ms, cfg->checkpoint_retain, base, restored, &ops,
				weir_now_ns()) < 0) {
		free(d);
		return -1;
	}
	weir_cond_init_monotonic(&d->cond);
	pthread_mutex_init(&d->lock, NULL);
	job->ck_driver = d;
	if (ck_writer_start(job, restored, acked, d) < 0) {
		d->stop = true; /* no thread yet: nothing to join */
		weir_local_ck_stop(job);
		return -1;
	}
	if (pthread_create(&d->thread, NULL, driver_main, d) != 0) {
		d->stop = true; /* never started: nothing to join */
		weir_local_ck_stop(job);
		return weir_err_set("cannot start the checkpoint coordinator");
	}
	return 0;
}

uint64_t weir_local_ck_latest(struct job *job, uint64_t *when_ns, uint64_t *bytes)
{
	struct ck_driver *d = job->ck_driver;
	*when_ns = *bytes = 0;
	if (!d)
		return 0;
	pthread_mutex_lock(&d->lock);
	uint64_t id = d->ck.latest;
	*when_ns = d->ck.latest_ns;
	*bytes = d->ck.latest_bytes;
	pthread_mutex_unlock(&d->lock);
	return id;
}

json_t *weir_local_ck_json(struct job *job, const char *cid, const struct weir_series *s)
{
	struct ck_driver *d = job->ck_driver;
	static struct ck_coordinator none; /* no checkpoints: nothing in it */
	const struct ck_coordinator *c = d ? &d->ck : &none;
	if (d)
		pthread_mutex_lock(&d->lock);
	json_t *j = cid ? weir_ck_detail_json(c, d != NULL, cid, s)
			: weir_ck_history_json(c, d != NULL, job->ck_restored, 0);
	if (d)
		pthread_mutex_unlock(&d->lock);
	return j;
}

void weir_local_ck_stop(struct job *job)
{
	struct ck_driver *d = job->ck_driver;
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	bool running = !d->stop;
	d->stop = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (running)
		pthread_join(d->thread, NULL);
	ck_writer_stop(job); /* no acknowledgement, and no snapshot file written, after this */
	ck_coordinator_release(&d->ck, weir_now_ns()); /* never completed: not a checkpoint */
	/* the writer may have written into an aborted checkpoint's folder after
	 * the coordinator removed it: leftovers without metadata go now */
	if (d->ck.base[0])
		weir_ckpt_retain(d->ck.base, UINT64_MAX, (int)d->ck.retain);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
	job->ck_driver = NULL;
}
