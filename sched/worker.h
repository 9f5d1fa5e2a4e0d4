/*
 * sched/worker.h - worker threads that run tasks cooperatively.
 *
 * A worker is one thread, pinned to one core: the execution side of a
 * slot. It owns a list of tasks and steps them round-robin; a step does a
 * bounded batch of work and returns. No thread per task, no locks between
 * tasks: a task is only ever stepped by its own worker.
 *
 * When no task made progress the worker waits as its idle strategy says
 * (as Aeron's idle strategies; docs/configuration.md weir.idle):
 *   SLEEP    spin for `spin_ns`, then sleep on its doorbell (shm/doorbell.h)
 *            until someone publishes work for it, or until the earliest
 *            wake_at a task asked for (the default: kind to shared machines;
 *            a wake-up from sleep costs a futex wake, tens of microseconds)
 *   BUSY     never sleep: poll again at once (a core per worker, always)
 *   YIELD    spin for `spin_ns`, then give the CPU away with sched_yield
 *            between polls, never sleeping (a runnable thread per worker)
 *   BACKOFF  spin for `spin_ns`, yield for up to 1 ms more, then sleep
 * A worker that never sleeps is never woken either: producers ring only
 * announced sleepers. The scheduler knows nothing of operators or records;
 * the engine's subtasks are tasks.
 */
#ifndef WEIR_SCHED_WORKER_H
#define WEIR_SCHED_WORKER_H

#include "shm/doorbell.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum weir_step {
	WEIR_STEP_IDLE = 0,	/* nothing to do now */
	WEIR_STEP_BUSY = 1,	/* made progress; step again soon */
	WEIR_STEP_DONE = 2,	/* finished for good; never stepped again */
};

struct weir_task {
	enum weir_step (*step)(struct weir_task *t);
	/* Set by step when it returns IDLE: the monotonic time (ns) at which
	 * to be stepped again even if no doorbell rings; 0 for none. */
	uint64_t wake_at;
	bool done;
	bool running;		/* on the worker's stack right now */
	int worker;		/* index of the owning worker */
	/* Position in the dataflow's topological order: data only flows from
	 * lower ranks to higher ones (see weir_worker_help). */
	int rank;
	/* Set by step when it returns IDLE for want of room downstream (no
	 * credit): the time until a step that is not blocked counts as
	 * backpressured. */
	bool blocked;
	/* Where its time went (ns of the real clock), for metrics: written by
	 * its worker with relaxed stores, read by anyone with relaxed loads
	 * (weir_task_times). Busy: steps that made progress, their own time
	 * (not that of tasks they helped, weir_worker_help). Blocked: closed
	 * spans of backpressure, and the start of the open one (0: none). The
	 * rest of the wall clock was idle. */
	uint64_t busy_ns;
	uint64_t blocked_ns;
	uint64_t blocked_since;
};

/* On the task's worker, inside its step: a span of backpressure begins (a
 * writer waits for a segment; the tasks the worker helps meanwhile count
 * their own time) or ends (it got one). The step's end closes an open span
 * too, unless the step returns blocked. */
void weir_task_block_open(struct weir_task *t);
void weir_task_block_close(struct weir_task *t);

/* A task's busy and backpressured time up to now (the open span of
 * backpressure included): any thread. */
void weir_task_times(const struct weir_task *t, uint64_t now, uint64_t *busy_ns, uint64_t *blocked_ns);

struct weir_worker_stats {
	uint64_t rounds;
	uint64_t sleeps;
};

struct weir_worker {
	struct weir_doorbell own;	/* first: its own cache line */
	struct weir_doorbell *db;	/* &own, or one in shared memory (weir_sched_share) */
	struct weir_sched *sched;
	pthread_t thread;
	int index;
	int cpu;			/* -1: not pinned */
	struct weir_task **tasks;
	int ntasks;
	int cap;
	int ndone;
	uint64_t own_ns;	/* own time of every step so far (nested steps counted once) */
	struct weir_worker_stats stats;
};

enum weir_idle {
	WEIR_IDLE_SLEEP = 0,
	WEIR_IDLE_BUSY,
	WEIR_IDLE_YIELD,
	WEIR_IDLE_BACKOFF,
};

/* "sleep", "busy", "yield", "backoff" to a strategy: 0, or -1 */
int weir_idle_parse(const char *name, enum weir_idle *out);
const char *weir_idle_name(enum weir_idle idle);

struct weir_sched {
	struct weir_worker *workers;
	int nworkers;
	uint64_t spin_ns;
	enum weir_idle idle;	/* set before start (default SLEEP) */
	uint32_t stop;		/* set by weir_sched_stop; read by workers */
	bool no_times;		/* set before start: no busy/backpressured accounting (weir_task_times reads 0) */
	bool started;
};

/* Fill *s with nworkers workers. pin: pin worker i to allowed CPU number
 * first_cpu + i (modulo their count); TaskManagers on one host pass
 * different first_cpu so their slots spread over the cores instead of all
 * landing on the first ones. Returns 0 or -1 with the trail set. */
int weir_sched_init(struct weir_sched *s, int nworkers, bool pin, int first_cpu, uint64_t spin_ns);
void weir_sched_release(struct weir_sched *s);
/* Before start: ring and sleep on doorbells in dbs[0 .. nworkers-1]
 * instead of the workers' own, so that other processes (producers and
 * consumers of cross-process channels) can wake them. */
void weir_sched_share(struct weir_sched *s, struct weir_doorbell *dbs);
/* Before start: give a task to worker w. 0 or -1. */
int weir_sched_add(struct weir_sched *s, int w, struct weir_task *t);
struct weir_doorbell *weir_sched_doorbell(struct weir_sched *s, int w);
/* Start the threads. 0 or -1 with the trail set. */
int weir_sched_start(struct weir_sched *s);
/* Any thread: ask every worker to return as soon as its step returns. */
void weir_sched_stop(struct weir_sched *s);
/* Wait until every worker returned: all its tasks DONE, or stop. */
void weir_sched_join(struct weir_sched *s);

/*
 * From inside a step, while waiting for something a task downstream must
 * hand back (credit from a consumer on this worker): step once the
 * worker's tasks of rank >= min_rank, the caller passing its own rank + 1.
 * Helping only downstream keeps the stack of nested steps strictly rising
 * in rank, so no task waits under one that waits for it (a deadlock), and
 * the nesting is at most as deep as the dataflow is long. Returns true
 * when any made progress.
 */
bool weir_worker_help(struct weir_sched *s, int w, int min_rank);
/* Sleep on worker w's doorbell for at most timeout_ns unless ready(arg)
 * turns true after the sleep is announced (the re-check of the protocol
 * in shm/doorbell.h). For a step that must wait inside a task. */
void weir_worker_wait(struct weir_sched *s, int w, bool (*ready)(void *), void *arg, uint64_t timeout_ns);

#endif
