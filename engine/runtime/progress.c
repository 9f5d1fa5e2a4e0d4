/*
 * engine/runtime/progress.c - the progress line (progress.h).
 */
#include "runtime/progress.h"
#include "runtime/internal.h"
#include "runtime/local.h"
#include "base/clock.h"
#include "base/num.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PERIOD_NS 1000000000ull

struct progress {
	struct job *job;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	bool drawn;
	/* the last sample */
	uint64_t at, in, out, busy, blocked;
};

struct sample {
	uint64_t in, out, busy, blocked;
};

static uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

static void take(struct job *job, uint64_t now, struct sample *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < job->nsub; i++) {
		struct subtask *st = &job->subtasks[i];
		for (int k = 0; k < st->nops; k++) {
			const struct opinst *op = &st->ops[k];
			if (op->node->kind == OP_SOURCE)
				s->in += load(&op->records_out);
			else if (op->node->kind == OP_SINK)
				s->out += load(&op->records_in);
		}
		uint64_t busy, blocked;
		weir_task_times(&st->task, now, &busy, &blocked);
		s->busy += busy;
		s->blocked += blocked;
	}
}

static void draw(struct progress *p, uint64_t now)
{
	struct job *job = p->job;
	struct sample s;
	take(job, weir_real_now_ns(), &s);
	double dt = (double)(now - p->at) / 1e9, wall = dt * (job->nsub ? job->nsub : 1);
	char in[32], out[32], inr[32], outr[32], ck[96] = "";
	uint64_t when, bytes, id = weir_local_ck_latest(job, &when, &bytes);
	if (id)
		snprintf(ck, sizeof(ck), " | checkpoint %llu, %.1f s ago", (unsigned long long)id,
			 (double)(weir_now_ns() - when) / 1e9);
	char line[512];
	int n = snprintf(line, sizeof(line),
			 "\r\033[Kweir: %.0f s | in %s (%s/s) | out %s (%s/s) | busy %.0f%%, backpressured %.0f%%%s",
			 (double)(now - job->start_real_ns) / 1e9, weir_grouped(in, sizeof(in), s.in),
			 weir_grouped(inr, sizeof(inr), (uint64_t)((double)(s.in - p->in) / dt)), weir_grouped(out, sizeof(out), s.out),
			 weir_grouped(outr, sizeof(outr), (uint64_t)((double)(s.out - p->out) / dt)),
			 100.0 * (double)(s.busy - p->busy) / 1e9 / wall, 100.0 * (double)(s.blocked - p->blocked) / 1e9 / wall,
			 ck);
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) > 0)
		p->drawn = true;
	p->at = now;
	p->in = s.in;
	p->out = s.out;
	p->busy = s.busy;
	p->blocked = s.blocked;
}

static void *progress_main(void *arg)
{
	struct progress *p = arg;
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		uint64_t now = weir_real_now_ns();
		if (now - p->at >= PERIOD_NS)
			draw(p, now);
		else
			weir_cond_wait_ns(&p->cond, &p->lock, p->at + PERIOD_NS - now);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct progress *weir_progress_start(struct job *job, bool quiet)
{
	if (quiet || !isatty(STDOUT_FILENO) || !isatty(STDERR_FILENO))
		return NULL;
	for (int i = 0; i < job->env->nnodes; i++)
		if (job->env->nodes[i]->to_stdout)
			return NULL; /* its lines would run into ours */
	struct progress *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->job = job;
	p->at = job->start_real_ns;
	pthread_mutex_init(&p->lock, NULL);
	weir_cond_init_monotonic(&p->cond);
	if (pthread_create(&p->thread, NULL, progress_main, p) != 0) {
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->cond);
		free(p);
		return NULL;
	}
	return p;
}

void weir_progress_stop(struct progress *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	if (p->drawn && write(STDERR_FILENO, "\r\033[K", 4) < 0) {
		/* the terminal went away: nothing to erase */
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
