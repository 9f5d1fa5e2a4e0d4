/*
 * engine/task/task.h - a job in execution: the plan (chained vertices), its
 * subtasks, channels and the pool, in one process.
 *
 * plan.c turns the env's nodes into vertices: a vertex is a chain of
 * operators fused by plain function calls (one-to-one neighbours of equal
 * parallelism, forward partitioning, single consumer). runtime.c gives
 * each vertex `parallelism` subtasks, connects them with channels, places
 * them on workers and runs them until every source has ended, a subtask
 * fails, or the job is cancelled. operators.c is what a subtask does with
 * a record.
 */
#ifndef WEIR_ENGINE_TASK_TASK_H
#define WEIR_ENGINE_TASK_TASK_H

#include "graph/keygroup.h"
#include "graph/plan.h"
#include "io/record.h"
#include "state/keyed.h"
#include "state/kv.h"
#include "sched/worker.h"
#include "shm/channel.h"
#include "shm/pool.h"
#include "shm/shmfile.h"

#include <pthread.h>
#include <stdio.h>

struct weir_ckpt_file;


struct subtask;
struct opinst;

struct weir_ctx {
	struct subtask *st;
	struct opinst *op;
	void *arg;
	void *state;
	int64_t cur_ts;
	uint32_t emitted;
	uint64_t idle_until;
	/* reduce: the state slot of the key being reduced; with capture_kv
	 * set (reducing state) the emitted record is only stored */
	bool capturing;
	struct kv_slot *rslot;
	struct weir_kv *capture_kv;
	void *engine;		/* the engine's own per-instance state (two-phase sinks) */
};

struct opinst {
	struct node *node;
	struct weir_ctx ctx;
	struct opinst *next;	/* chained successor; NULL for the tail */
	int index;		/* in the chain */
	struct weir_kv kv;	/* reduce */
	struct keyed keyed;	/* OP_KEYED */
	int64_t wm;		/* the watermark this operator has seen */
	/* OP_ASSIGN */
	int64_t max_ts;
	int64_t emitted_wm;
	uint64_t last_active_ns;
	bool saw_records;
	bool idle;
	/* metrics: written by the subtask's worker only (stat_add), read by
	 * any thread with relaxed loads (progress lines, reports) */
	uint64_t records_in;
	uint64_t records_out;
	uint8_t *scratch;	/* an aligned copy of an unaligned emit (chained) */
	uint32_t scratch_cap;
	bool opened;
	bool closed;
} __attribute__((aligned(64))); /* its own cache lines (deploy.c, calloc_lines) */

/* A metric counter's writer (one thread) adds; other threads read it with
 * __atomic_load_n(..., __ATOMIC_RELAXED). A plain add and store on x86:
 * no lock, no fence. */
static inline void stat_add(uint64_t *c, uint64_t n)
{
	__atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
}

struct input {
	struct weir_chan *ch;
	struct weir_reader rd;
	weir_key_fn key_fn;	/* of the edge; for a keyed head operator */
	struct weir_ctx keyctx;
	int side;		/* which input of a two-input operator */
	int64_t wm;		/* the last watermark on this channel */
	bool idle;		/* the producer said idle, and no record since */
	bool ended;
	bool blocked;		/* aligning: its barrier came, the others' not yet */
	bool recording;		/* unaligned: records read are in-flight data of st->ck_last */
	uint64_t barrier;	/* the id of the last barrier it delivered */
	int edge;		/* which input of the head operator it carries */
	bool keyed;		/* its edge is partitioned by key */
	uint32_t khash;		/* the key hash (high half) the record being delivered carried, 0: none */
	bool broadcast;		/* its edge sends every record to every subtask */
	/* unaligned: what was pulled out of the channel ahead of processing
	 * (drain), read before the channel: entries [u32 len][u32 0, or an
	 * event code][i64 ts, or the event's value][bytes, pad 8] */
	struct snapbuf pend;
	size_t pend_off;
	uint64_t pend_barrier;	/* the newest barrier in pend (0: none) */
	bool pend_end;		/* pend ends with the channel's END */
};

struct output {
	int tag;		/* which output of the tail: 0 main, >= 1 side */
	enum part_kind part;
	weir_key_fn key_fn;
	struct weir_ctx keyctx;
	struct weir_writer *w;
	int nw;
	uint32_t rr;
	struct weir_kg_map kgmap;
};

enum subtask_state { ST_NEW, ST_RUNNING, ST_DONE };

struct ck_cow;

struct job;

struct subtask {
	struct weir_task task;	/* first: the scheduler's handle */
	struct job *job;
	struct vertex *v;
	int index;
	enum subtask_state state;
	struct opinst *ops;
	int nops;
	struct input *in;
	int nin;
	int nin_open;
	int rr_in;
	struct output *out;
	int nout;
	bool is_source;
	bool failed;
	bool discarding;	/* tearing down: emits go nowhere */
	bool unaligned;		/* job->cfg's, and max_record: read per record, kept in this line */
	uint32_t max_record;
	bool overdraft;		/* a writer went beyond its credit */
	int64_t in_wm;		/* the watermark over the inputs, given to the chain */
	int64_t proc_ms;	/* wall-clock ms read at the step's start: the processing time
				 * windows stamp records with (one clock read a step, not a record;
				 * state TTL and weir_ctx_processing_time read the clock itself) */
	bool in_idle;		/* every live input is idle: told downstream */
	/* checkpoints (engine/checkpoint/take.c) */
	uint64_t ck_last;	/* the last checkpoint snapshotted here */
	uint64_t ck_aligning;	/* the barrier being aligned (0: none) */
	uint64_t ck_committed;	/* sinks: notified up to this checkpoint */
	struct ck_cow *cow;	/* a snapshot being serialized (copy-on-write), or NULL */
	int ck_recording;	/* unaligned: inputs still recording in-flight data */
	/* restored in-flight data, delivered before any input is read:
	 * records [u32 len][u32 input][i64 ts][bytes, pad 8] */
	struct snapbuf replay;
	size_t replay_off;
	/* what to start from: the sealed snapshots of the checkpoint's
	 * subtasks of this vertex that hold state for this one (one, at the
	 * same parallelism; after a rescale every one whose key groups meet
	 * ours). Private operator state comes from those marked own. */
	struct restore_piece *restore;
	int nrestore;
	uint32_t restore_index;	/* during a restore hook: the subtask index the state was written by */
	/* atomic (relaxed stores by its worker; relaxed loads by the watchdog
	 * and the crash handlers, runtime/crash.c): the operator its thread is
	 * in now, NULL between steps. A hint for messages, never a hand-off. */
	struct opinst *cur_op;
	/* metrics gauges: relaxed stores by its worker after each step,
	 * relaxed loads by any thread (runtime/sample.c) */
	int64_t m_wm_in, m_wm_out;	/* the chain's input watermark; its tail's */
	uint64_t m_state;		/* keyed state entries (and reduce's) */
	uint64_t m_timers;		/* timers pending */
	uint64_t m_align_ns;		/* the last checkpoint's alignment here, first barrier to last */
	uint32_t m_steps;		/* steps since the gauges were last stored */
	uint64_t align_start_ns;	/* when the alignment under way began */
	/* latency tracking (cfg.latency_interval_ms): a source's next marker
	 * (monotonic ns), which output channel the next marker takes, and a
	 * sink's histogram of how long markers took to reach it (base/histo.h;
	 * relaxed stores by its worker, read by runtime/sample.c; NULL: off) */
	uint64_t lat_next_ns;
	uint32_t lat_rr;
	uint64_t *lat_hist;
} __attribute__((aligned(64))); /* its own cache lines (deploy.c, calloc_lines) */

struct restore_piece {
	const uint8_t *p;
	size_t len;
	uint32_t index;		/* the subtask that wrote it, at its parallelism */
	bool own;		/* its private (non-keyed) state is ours */
};

/*
 * A part of a job, in a cluster: the subtasks one TaskManager runs. The
 * plan is the same in every TaskManager (each builds it from the same
 * object and arguments); placement says where each subtask runs.
 * The job's segments are a share of the TaskManager's own pool (pool:
 * "weir-<cluster>/tm<k>-pool", shm/pool.h weir_pool_share), taken at
 * deploy for the channels this TaskManager produces into and given back at
 * teardown. Channels between two TaskManagers live in /dev/shm: the
 * producer's side creates them from its share ("<prefix>-ch<c>"), the
 * consumer's attaches them after `prepared` (every TaskManager has created
 * its side by then) and maps the producer's TaskManager pool by its name
 * (weir_dist_pool_name); each side rings the other's workers through a
 * region of doorbells ("<prefix>-tm<k>-db").
 */
struct weir_xchg;

struct weir_dist {
	uint32_t tm;			/* this TaskManager */
	const uint32_t *sub_tm;		/* per subtask (vertex-major): its TaskManager */
	const uint32_t *sub_slot;	/* per subtask: its worker on that TaskManager */
	uint32_t nsubtasks;
	uint32_t nslots;		/* workers here */
	uint32_t first_cpu;		/* where slot 0 is pinned (id x slots: TaskManagers spread) */
	char prefix[96];		/* "weir-<cluster>/j<job>a<attempt>" (weir_dist_job_prefix) */
	uint64_t job_id;
	uint32_t attempt;
	/* channels to TaskManager k go over TCP when tcp[k] (it is on another
	 * host, or the cluster forces TCP): each is cut in two halves, one in
	 * each process, joined by the TaskManagers' exchanges (net/exchange.h) */
	struct weir_xchg *xchg;
	const uint8_t *tcp;		/* per TaskManager id (256), or NULL: none */
	char cluster[64];		/* the cluster id: names every TaskManager's pool */
	struct weir_pool *pool;		/* this TaskManager's pool: the job takes its share of it */
	/* on the job's thread: outgoing channels exist; block until every
	 * TaskManager is there (0) or the job is off (-1) */
	int (*prepared)(void *arg);
	/* local subtasks over (ok: all finished); block for the decision:
	 * 1 commit the sinks, 0 abort */
	int (*done)(void *arg, bool ok, const char *msg);
	/* checkpoints (ck_on): the JobManager's coordinator sends its steps
	 * (weir_run_dist_checkpoint); ck_acked is the snapshot writer's
	 * acknowledgement (checkpoint/writer.h: ck_ack_fn), on its thread */
	bool ck_on;
	const char *ck_restore;		/* a complete checkpoint's folder to start from, or NULL */
	const char *ck_dir;		/* the job's checkpoint folder (NULL: not said): checked writable here */
	const char *ck_storage_id;	/* what ck_dir/.storage-id holds at the JobManager (NULL: not said) */
	bool restarted;			/* an earlier attempt ran: sinks may find its output */
	bool refused;			/* set by the job's thread before done(): it failed before it ran,
					 * for a reason a restart would meet again */
	void (*ck_acked)(void *arg, uint64_t id, const struct weir_ckpt_file *files, int nfiles, uint64_t bytes,
			 uint64_t sync_max_ns, uint64_t inflight, const char *err);
	void *arg;
};

struct ck_writer;
struct ck_driver;

struct job {
	const struct weir_dist *dist;	/* NULL in local mode */
	/* checkpoints: ck is the snapshot writer of the subtasks here (NULL when off) */
	struct ck_writer *ck;
	struct ck_driver *ck_driver;	/* local mode: the coordinator's thread (runtime/local.c) */
	bool ck_on;
	const char *ck_folder;		/* the run's checkpoint folder (weir_ctx_checkpoint_dir), or NULL */
	uint64_t ck_trigger;		/* atomic: sources snapshot when it passes their ck_last */
	uint64_t ck_complete;		/* atomic: the newest complete checkpoint */
	uint64_t ck_aborted;		/* atomic: the newest aborted one: its alignments end */
	uint64_t ck_restored;		/* the checkpoint this run started from (0: none) */
	bool first_logged;		/* atomic: its first record since the restore was logged */
	struct weir_shm dbs;		/* dist: our workers' doorbells */
	struct weir_pool *rpools;	/* dist: other TaskManagers' pools, by id */
	struct weir_shm *rdbs;		/* dist: their doorbells, by id */
	uint8_t *chan_side;		/* dist: per channel, enum chan_side */
	bool net_added;			/* dist: channels registered with the exchange */
	bool keep_share;		/* dist: a consumer elsewhere may still read our segments:
					 * the share never goes back to the TaskManager's pool */
	weir_env *env;
	struct weir_config cfg;
	struct plan plan;
	struct weir_pool pool;		/* dist: a share of the TaskManager's pool */
	bool deploy_refused;		/* deploy failed for a reason a restart would meet again */
	struct weir_sched sched;
	struct weir_chan *chans;
	int nchans;
	struct subtask *subtasks;
	int nsub;
	pthread_mutex_t lock;	/* error and state transitions only, never per record */
	bool failed;
	char error[1024];
	uint32_t cancelled;
	uint64_t start_ns, end_ns;
	uint64_t start_real_ns;		/* weir_real_now_ns at the start (metrics: a test's manual clock aside) */
	bool sampling;			/* atomic: every channel end is in place; samplers may read them
					 * (runtime/sample.c: in a cluster, a TaskManager's loop samples
					 * while its job thread attaches the channels of other ones) */
};





/* A cluster's shared memory is in its private folder, /dev/shm/weir-<cluster>
 * (shm/shmfile.h: made 0700 by the first TaskManager, checked at every
 * create and open; the cluster id is random per start). TaskManager tm's
 * pool is "weir-<cluster>/tm<tm>-pool": the TaskManager creates it, the
 * other TaskManagers' jobs attach it. */
static inline void weir_dist_pool_name(char *buf, size_t n, const char *cluster, uint32_t tm)
{
	snprintf(buf, n, "weir-%s/tm%u-pool", cluster, tm);
}
/* The prefix of an attempt's files in the cluster's folder,
 * "weir-<cluster>/j<job>a<attempt>" (struct weir_dist's prefix). */
static inline void weir_dist_job_prefix(char *buf, size_t n, const char *cluster, unsigned long long job,
					unsigned attempt)
{
	snprintf(buf, n, "weir-%s/j%llua%u", cluster, job, attempt);
}

/* The subtask this thread is stepping (or opening, closing) now, or NULL:
 * set by weir_subtask_step and weir_op_open/close, read by the crash and
 * exit handlers on the same thread (runtime/crash.c) to name the operator
 * (its cur_op). Initial-exec: a plain %fs-relative store. */
extern __thread struct subtask *weir_cur_st __attribute__((tls_model("initial-exec")));

/* Mark op (NULL: none) as what st's thread runs now; the previous mark. */
static inline struct opinst *weir_mark_op(struct subtask *st, struct opinst *op)
{
	struct opinst *was = __atomic_load_n(&st->cur_op, __ATOMIC_RELAXED);
	__atomic_store_n(&st->cur_op, op, __ATOMIC_RELAXED);
	return was;
}

/* context.c: fail the subtask with a message about op (NULL: its chain's
 * head), which fails the job; returns -1. */
int weir_op_fail(struct subtask *st, struct opinst *op, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Fail the job with msg (the first failure wins; a cancelled job reports
 * nothing) and stop its workers. Any thread. */
void weir_job_fail(struct job *job, const char *msg);

#endif
