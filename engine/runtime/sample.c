/*
 * engine/runtime/sample.c - a sample of a job's subtasks' metrics
 * (metrics/metrics.h), read from any thread: the counters and gauges the
 * workers store with relaxed stores (task.h, io/record.h, sched/worker.h)
 * are read with relaxed loads. The workers do nothing for it.
 */
#include "runtime/internal.h"
#include "base/clock.h"

static uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/* How full channel c's ring is: segments waiting to be read over its
 * credits (the ring's indices are atomics; credits never change). */
static double usage(const struct weir_chan *c)
{
	if (!c || !c->r || !c->credits)
		return 0;
	double u = (double)weir_chan_pending(c) / c->credits;
	return u > 1 ? 1 : u;
}

int weir_job_sample(const struct job *job, uint32_t tm, struct weir_task_sample *out, int max, uint64_t *lat)
{
	if (!__atomic_load_n(&job->sampling, __ATOMIC_ACQUIRE))
		return 0; /* channels still being attached */
	uint64_t now = weir_real_now_ns();
	int n = 0;
	for (int s = 0; s < job->nsub && n < max; s++) {
		const struct subtask *st = &job->subtasks[s];
		if (!st->nops)
			continue; /* runs on another TaskManager */
		struct weir_task_sample *t = &out[n++];
		*t = (struct weir_task_sample){ .vertex = (uint32_t)st->v->id, .index = (uint32_t)st->index, .tm = tm,
						.at_ns = now };
		t->records_in = load(&st->ops[0].records_in);
		t->records_out = load(&st->ops[st->nops - 1].records_out);
		for (int i = 0; i < st->nin; i++) {
			t->bytes_in += load(&st->in[i].rd.bytes);
			t->in_pool += usage(st->in[i].ch) / st->nin;
		}
		for (int o = 0; o < st->nout; o++)
			for (int k = 0; k < st->out[o].nw; k++) {
				t->bytes_out += load(&st->out[o].w[k].bytes);
				double u = usage(st->out[o].w[k].ch);
				t->out_pool = u > t->out_pool ? u : t->out_pool;
			}
		weir_task_times(&st->task, now, &t->busy_ns, &t->backpressured_ns);
		t->wm_in = __atomic_load_n(&st->m_wm_in, __ATOMIC_RELAXED);
		t->wm_out = __atomic_load_n(&st->m_wm_out, __ATOMIC_RELAXED);
		t->state_entries = load(&st->m_state);
		t->timers = load(&st->m_timers);
		t->align_ns = load(&st->m_align_ns);
		if (lat && st->lat_hist && !st->nout) { /* a sink: its latency histogram */
			uint64_t *h = lat + (size_t)(n - 1) * WEIR_HISTO_BUCKETS;
			for (unsigned b = 0; b < WEIR_HISTO_BUCKETS; b++)
				h[b] = load(&st->lat_hist[b]);
			t->lat = h;
		}
	}
	return n;
}
