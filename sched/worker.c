/* sched/worker.c - see worker.h. */
#include "sched/worker.h"
#include "sched/cpu.h"
#include "base/clock.h"
#include "base/err.h"

#include <ck_pr.h>
#include <errno.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_YIELD_NS 1000000ull /* BACKOFF: yielding this long before sleeping */

static const char *const idle_names[] = { "sleep", "busy", "yield", "backoff" };

int weir_idle_parse(const char *name, enum weir_idle *out)
{
	for (size_t i = 0; i < sizeof(idle_names) / sizeof(idle_names[0]); i++)
		if (!strcmp(name, idle_names[i])) {
			*out = (enum weir_idle)i;
			return 0;
		}
	return -1;
}

const char *weir_idle_name(enum weir_idle idle)
{
	return (unsigned)idle < sizeof(idle_names) / sizeof(idle_names[0]) ? idle_names[idle] : "?";
}

int weir_sched_init(struct weir_sched *s, int nworkers, bool pin, int first_cpu, uint64_t spin_ns)
{
	memset(s, 0, sizeof(*s));
	if (nworkers < 1 || nworkers > 1024)
		return weir_err_set("workers: %d is out of range (1..1024)", nworkers);
	s->workers = aligned_alloc(64, sizeof(struct weir_worker) * (size_t)nworkers);
	if (!s->workers)
		return weir_err_set("workers: out of memory");
	memset(s->workers, 0, sizeof(struct weir_worker) * (size_t)nworkers);
	int cpus[1024];
	int ncpu = weir_cpu_allowed(cpus, 1024);
	if (first_cpu < 0)
		first_cpu = 0;
	for (int i = 0; i < nworkers; i++) {
		struct weir_worker *w = &s->workers[i];
		weir_doorbell_init(&w->own);
		w->db = &w->own;
		w->sched = s;
		w->index = i;
		w->cpu = pin ? cpus[(first_cpu + i) % ncpu] : -1;
	}
	s->nworkers = nworkers;
	s->spin_ns = spin_ns;
	return 0;
}

void weir_sched_release(struct weir_sched *s)
{
	for (int i = 0; i < s->nworkers; i++)
		free(s->workers[i].tasks);
	free(s->workers);
	memset(s, 0, sizeof(*s));
}

int weir_sched_add(struct weir_sched *s, int wi, struct weir_task *t)
{
	struct weir_worker *w = &s->workers[wi];
	if (w->ntasks == w->cap) {
		int cap = w->cap ? w->cap * 2 : 8;
		struct weir_task **n = realloc(w->tasks, sizeof(*n) * (size_t)cap);
		if (!n)
			return weir_err_set("workers: out of memory");
		w->tasks = n;
		w->cap = cap;
	}
	t->worker = wi;
	t->done = false;
	t->running = false;
	w->tasks[w->ntasks++] = t;
	return 0;
}

void weir_sched_share(struct weir_sched *s, struct weir_doorbell *dbs)
{
	for (int i = 0; i < s->nworkers; i++) {
		weir_doorbell_init(&dbs[i]);
		s->workers[i].db = &dbs[i];
	}
}

struct weir_doorbell *weir_sched_doorbell(struct weir_sched *s, int w)
{
	return s->workers[w].db;
}

/* After t's step, which began at *t0: its own time (less the steps nested
 * in it, which counted theirs) goes to busy if it made progress; a blocked
 * step opens a span of backpressure, an unblocked one closes it. Relaxed
 * stores: weir_task_times reads them from other threads. Two clock reads
 * a step at most (*t0 becomes the next step's start). */
static void account(struct weir_worker *w, struct weir_task *t, enum weir_step r, uint64_t *t0, uint64_t inner0)
{
	uint64_t t1 = weir_real_now_ns();
	uint64_t own = t1 - *t0 - (w->own_ns - inner0);
	w->own_ns += own;
	*t0 = t1;
	if (r != WEIR_STEP_IDLE)
		__atomic_store_n(&t->busy_ns, t->busy_ns + own, __ATOMIC_RELAXED);
	if (t->blocked) {
		if (!t->blocked_since)
			__atomic_store_n(&t->blocked_since, t1, __ATOMIC_RELAXED);
	} else if (t->blocked_since) {
		__atomic_store_n(&t->blocked_ns, t->blocked_ns + (t1 - t->blocked_since), __ATOMIC_RELAXED);
		__atomic_store_n(&t->blocked_since, 0, __ATOMIC_RELEASE); /* after the sum: see weir_task_times */
	}
}

void weir_task_block_open(struct weir_task *t)
{
	if (!t->blocked_since)
		__atomic_store_n(&t->blocked_since, weir_real_now_ns(), __ATOMIC_RELAXED);
}

void weir_task_block_close(struct weir_task *t)
{
	if (!t->blocked_since)
		return;
	uint64_t now = weir_real_now_ns();
	__atomic_store_n(&t->blocked_ns, t->blocked_ns + (now - t->blocked_since), __ATOMIC_RELAXED);
	__atomic_store_n(&t->blocked_since, 0, __ATOMIC_RELEASE); /* after the sum: see weir_task_times */
}

void weir_task_times(const struct weir_task *t, uint64_t now, uint64_t *busy_ns, uint64_t *blocked_ns)
{
	*busy_ns = __atomic_load_n(&t->busy_ns, __ATOMIC_RELAXED);
	/* The writer closes a span by adding it to blocked_ns and then
	 * clearing its start (release); reading the start first (acquire), a
	 * cleared start comes with the sum that holds the span: a span is
	 * counted twice for a moment at worst, never lost. */
	uint64_t since = __atomic_load_n(&t->blocked_since, __ATOMIC_ACQUIRE);
	uint64_t closed = __atomic_load_n(&t->blocked_ns, __ATOMIC_RELAXED);
	*blocked_ns = closed + (since && now > since ? now - since : 0);
}

/* Step every live task of rank >= min_rank once; returns whether any made
 * progress and lowers *next_wake to the earliest wake_at asked for. */
static bool round_once(struct weir_worker *w, uint64_t *next_wake, int min_rank)
{
	bool progress = false;
	uint64_t t0 = weir_real_now_ns();
	for (int i = 0; i < w->ntasks; i++) {
		struct weir_task *t = w->tasks[i];
		if (t->done || t->running || t->rank < min_rank)
			continue;
		t->running = true;
		t->wake_at = 0;
		t->blocked = false;
		uint64_t inner0 = w->own_ns;
		enum weir_step r = t->step(t);
		t->running = false;
		if (!w->sched->no_times)
			account(w, t, r, &t0, inner0);
		if (r == WEIR_STEP_BUSY) {
			progress = true;
		} else if (r == WEIR_STEP_DONE) {
			t->done = true;
			w->ndone++;
			progress = true;
		} else if (t->wake_at && t->wake_at < *next_wake) {
			*next_wake = t->wake_at;
		}
	}
	w->stats.rounds++;
	return progress;
}

static void *worker_main(void *arg)
{
	struct weir_worker *w = arg;
	struct weir_sched *s = w->sched;
	if (w->cpu >= 0)
		weir_cpu_pin_self(w->cpu); /* best effort: a refused pin only costs locality */
	/* a timed sleep (a source's next record, a timer) ends within 1 us of
	 * its time, not the default 50 us of timer slack later */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	uint64_t idle_since = 0;
	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) && w->ndone < w->ntasks) {
		uint64_t next_wake = UINT64_MAX;
		if (round_once(w, &next_wake, INT32_MIN)) {
			idle_since = 0;
			continue;
		}
		uint64_t now = weir_now_ns();
		if (next_wake <= now)
			continue;
		if (idle_since == 0)
			idle_since = now;
		if (s->idle == WEIR_IDLE_BUSY || now - idle_since < s->spin_ns) {
			ck_pr_stall();
			continue;
		}
		if (s->idle == WEIR_IDLE_YIELD ||
		    (s->idle == WEIR_IDLE_BACKOFF && now - idle_since < s->spin_ns + BACKOFF_YIELD_NS)) {
			sched_yield();
			continue;
		}
		/* Announce sleep, then look once more: work published before
		 * the announcement is found here, work published after it
		 * rings the doorbell (see doorbell.h). */
		uint32_t seq = weir_doorbell_prepare(w->db);
		if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE) || round_once(w, &next_wake, INT32_MIN)) {
			weir_doorbell_cancel(w->db);
			idle_since = 0;
			continue;
		}
		now = weir_now_ns();
		if (next_wake <= now) {
			weir_doorbell_cancel(w->db);
			continue;
		}
		w->stats.sleeps++;
		weir_doorbell_wait(w->db, seq, next_wake == UINT64_MAX ? 0 : next_wake - now);
	}
	return NULL;
}

int weir_sched_start(struct weir_sched *s)
{
	for (int i = 0; i < s->nworkers; i++) {
		int e = pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
		if (e) {
			weir_sched_stop(s);
			for (int j = 0; j < i; j++)
				pthread_join(s->workers[j].thread, NULL);
			return weir_err_errno(e, "workers: start thread %d", i);
		}
	}
	s->started = true;
	return 0;
}

void weir_sched_stop(struct weir_sched *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < s->nworkers; i++) {
		/* A worker that is not asleep re-reads `stop` after its prepare
		 * fence, so ringing only the sleepers loses no one. */
		weir_doorbell_ring(s->workers[i].db);
	}
}

void weir_sched_join(struct weir_sched *s)
{
	if (!s->started)
		return;
	for (int i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i].thread, NULL);
	s->started = false;
}

bool weir_worker_help(struct weir_sched *s, int wi, int min_rank)
{
	uint64_t next_wake = UINT64_MAX;
	return round_once(&s->workers[wi], &next_wake, min_rank);
}

void weir_worker_wait(struct weir_sched *s, int wi, bool (*ready)(void *), void *arg, uint64_t timeout_ns)
{
	struct weir_doorbell *db = s->workers[wi].db;
	uint32_t seq = weir_doorbell_prepare(db);
	if (ready(arg) || __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		weir_doorbell_cancel(db);
		return;
	}
	s->workers[wi].stats.sleeps++;
	weir_doorbell_wait(db, seq, timeout_ns);
}
