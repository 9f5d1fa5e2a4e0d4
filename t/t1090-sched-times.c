/* t1090-sched-times: where a task's time goes (sched/worker.h), for the
 * metrics: busy is the own time of steps that made progress, blocked the
 * time from a step that said it was blocked to the next that was not.
 * Steps spin on the real clock for fixed times, so the lower bounds hold
 * however the machine schedules; a nested step's time is its own, not
 * also its helper's (the own times add up to no more than the wall clock). */
#include "tap.h"
#include "sched/worker.h"
#include "base/clock.h"

static struct weir_sched s;

struct t {
	struct weir_task task; /* first */
	int steps;
};

static void spin_ns(uint64_t ns)
{
	uint64_t t0 = weir_real_now_ns();
	while (weir_real_now_ns() - t0 < ns)
		;
}

/* b: once a is blocked, 50 busy steps of 100 us, then done */
static struct t a, b, c, d;
static bool a_blocked;

static enum weir_step step_b(struct weir_task *t)
{
	struct t *x = (struct t *)t;
	if (!a_blocked)
		return WEIR_STEP_IDLE;
	spin_ns(100000);
	return ++x->steps >= 50 ? WEIR_STEP_DONE : WEIR_STEP_BUSY;
}

/* a: 3 busy steps of 2 ms, then blocked while b runs, then done */
static enum weir_step step_a(struct weir_task *t)
{
	struct t *x = (struct t *)t;
	if (x->steps < 3) {
		x->steps++;
		spin_ns(2000000);
		return WEIR_STEP_BUSY;
	}
	if (b.steps < 50) {
		a_blocked = t->blocked = true;
		return WEIR_STEP_IDLE;
	}
	return WEIR_STEP_DONE;
}

/* c (rank 0) spins 1 ms and helps d (rank 1), which spins 3 ms: 4 times */
static enum weir_step step_d(struct weir_task *t)
{
	struct t *x = (struct t *)t;
	spin_ns(3000000);
	return ++x->steps >= 4 ? WEIR_STEP_DONE : WEIR_STEP_BUSY;
}

static enum weir_step step_c(struct weir_task *t)
{
	struct t *x = (struct t *)t;
	if (x->steps >= 4)
		return WEIR_STEP_DONE;
	x->steps++;
	spin_ns(1000000);
	weir_worker_help(&s, 0, 1);
	return WEIR_STEP_BUSY;
}

static void run(struct t **ts, int n)
{
	if (weir_sched_init(&s, 1, false, 0, 0) < 0)
		bail("sched init: %s", "failed");
	s.idle = WEIR_IDLE_BUSY;
	for (int i = 0; i < n; i++)
		weir_sched_add(&s, 0, &ts[i]->task);
	weir_sched_start(&s);
	weir_sched_join(&s);
}

int main(void)
{
	a = (struct t){ .task = { .step = step_a, .rank = 0 } };
	b = (struct t){ .task = { .step = step_b, .rank = 1 } };
	struct t *ab[] = { &a, &b };
	run(ab, 2);
	uint64_t now = weir_real_now_ns(), busy, blocked;
	weir_task_times(&a.task, now, &busy, &blocked);
	ok(busy >= 6000000, "three busy steps of 2 ms: busy %.2f ms >= 6", busy / 1e6);
	ok(blocked >= 5000000, "blocked while another ran 50 steps of 100 us: %.2f ms >= 5", blocked / 1e6);
	is_int(a.task.blocked_since, 0, "the span closed when the task went on");
	weir_task_times(&b.task, now, &busy, &blocked);
	ok(busy >= 5000000, "the other: busy %.2f ms >= 5", busy / 1e6);
	is_int(blocked, 0, "never blocked: no backpressure");
	weir_sched_release(&s);

	c = (struct t){ .task = { .step = step_c, .rank = 0 } };
	d = (struct t){ .task = { .step = step_d, .rank = 1 } };
	struct t *cd[] = { &c, &d };
	uint64_t t0 = weir_real_now_ns();
	run(cd, 2);
	uint64_t wall = weir_real_now_ns() - t0, cb, db, x;
	weir_task_times(&c.task, now, &cb, &x);
	weir_task_times(&d.task, now, &db, &x);
	ok(cb >= 4000000 && db >= 12000000, "helper %.2f ms >= 4, helped %.2f ms >= 12", cb / 1e6, db / 1e6);
	ok(cb + db <= wall, "nested steps counted once: %.2f + %.2f ms <= the %.2f ms the run took", cb / 1e6,
	   db / 1e6, wall / 1e6);
	weir_sched_release(&s);
	done_testing();
}
