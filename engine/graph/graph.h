/*
 * engine/graph/graph.h - the logical dataflow a job builds (the JobGraph's
 * input), and the knobs of a run.
 *
 * weir_job() calls the builder functions of include/weir/weir.h, which
 * append nodes to a weir_env. A node is one operator; its input edges say
 * which nodes feed it and how records are partitioned on the way. A
 * weir_stream is only a handle: (node, partitioning) pairs, several after
 * a union. The plan (plan.c) turns nodes into chained vertices.
 */
#ifndef WEIR_ENGINE_GRAPH_H
#define WEIR_ENGINE_GRAPH_H

#include <weir/weir.h>

#include <stdbool.h>
#include <stdint.h>

#define WEIR_NAME_MAX 64

enum op_kind {
	OP_SOURCE,
	OP_MAP,
	OP_FILTER,
	OP_FLAT_MAP,
	OP_REDUCE,	/* rolling reduce */
	OP_SINK,
	OP_ASSIGN,	/* timestamps and watermarks */
	OP_KEYED,	/* process functions, windows, joins: keyed state and timers */
};

enum part_kind {
	PART_DEFAULT,	/* forward if parallelism is equal, else rebalance */
	PART_FORWARD,
	PART_HASH,
	PART_REBALANCE,
	PART_BROADCAST,
};

struct edge {
	int src;		/* node id */
	int tag;		/* which output of src: 0 main, >= 1 a side output */
	int side;		/* which input of this node: 0, or 1 for the second of two */
	enum part_kind part;
	weir_key_fn key_fn;	/* PART_HASH */
	void *key_arg;
};

struct snapbuf;
struct node;

/* Engine-internal hooks of built-in operators (connectors). */
struct op_hooks {
	/* checkpoint id's barrier passes: append what the operator keeps for
	 * itself (a source's position; a sink pre-commits its output and
	 * lists it) to b. 0 or -1 (weir_fail'ed). */
	int (*snapshot)(weir_ctx *ctx, struct snapbuf *b, uint64_t id);
	/* After open, with checkpointing on: the bytes snapshot wrote, in
	 * ctx's subtask or (after a rescale) in old subtask
	 * st->restore_index; called once per old subtask whose private state
	 * is ours. p NULL: no private state of ours; id 0, a fresh start
	 * (clean up after an earlier attempt), else a restore of checkpoint id
	 * (take back only what came after it). */
	int (*restore)(weir_ctx *ctx, const void *p, size_t n, uint64_t id);
	/* checkpoint id completed: publish what it covers. 0 or -1. */
	int (*notify)(weir_ctx *ctx, uint64_t id);
	/* Once per run, before anything starts: may the job run? restoring:
	 * it starts from a checkpoint. 0, or -1 with the trail set. */
	int (*check)(const struct node *nd, bool restoring);
	int (*idle)(weir_ctx *ctx);		/* the subtask ran out of input */
	int (*commit)(weir_ctx *ctx);		/* job succeeded: publish output */
	void (*abort)(weir_ctx *ctx);		/* job failed: discard output, even if committed */
	void (*release)(weir_ctx *ctx);		/* last call: free per-instance state */
	void (*free_arg)(void *arg);		/* env teardown */
};

struct keyed_impl;	/* engine/operators/keyed.h */
struct weir_sink_impl;	/* weir/connector.h */
struct weir_source_impl;

struct node {
	int id;
	char name[WEIR_NAME_MAX];
	enum op_kind kind;
	int parallelism;	/* 0: the env's default */
	union {
		weir_source_fn source;
		weir_map_fn map;
		weir_filter_fn filter;
		weir_flat_map_fn flat_map;
		weir_reduce_fn reduce;
		weir_sink_fn sink;
	} fn;
	void *arg;
	weir_open_fn open;
	weir_close_fn close;
	struct op_hooks hooks;
	struct edge *in;
	int nin;
	int nconsumers;		/* edges leaving this node */
	bool builtin;		/* a connector: its open/close hooks are its own */
	bool to_stdout;		/* weir_sink_stdout: no progress line over its output */
	bool inherit_parallelism;	/* unset parallelism: its input's (assigners) */
	/* OP_ASSIGN */
	weir_timestamp_fn ts_fn;
	int64_t out_of_order_ms;
	int64_t idle_ms;
	/* OP_KEYED */
	const struct keyed_impl *impl;	/* element and timer behaviour */
	void *impl_arg;			/* the impl's configuration (windows, joins) */
	/* the version of the impl's state layout when not its first: part of
	 * the chain's fingerprint, so that a checkpoint of another layout is
	 * refused at restore rather than misread (windows.c) */
	const char *state_layout;
	weir_process_fn process[2];	/* user process functions, per input side */
	weir_timer_fn on_timer;
	weir_state_desc *states;	/* declared states; ids are indices */
	int nstates;
	int nuser_states;		/* the first states are the engine's own (windows) */
	char (*tags)[WEIR_NAME_MAX];	/* side output tags; id = index + 1 */
	int ntags;
	int late_tag;			/* windows, joins: the late-records output */
	/* OP_SINK of weir_sink_two_phase (connectors/two_phase.c): its impl
	 * (owned), the user's arg, and, for the built-in file sink, a reader
	 * of its snapshots from before that API, which commits what they list */
	struct weir_sink_impl *sink2;
	void *sink2_arg;
	int (*sink2_legacy)(weir_ctx *ctx, const void *p, size_t n);
	/* OP_SOURCE of weir_source_splits (connectors/split_source.c): its impl
	 * (owned) and watermarks per split (weir_source_watermarks) */
	struct weir_source_impl *src2;
	bool src2_wm;
	int64_t src2_ooo_ms, src2_idle_ms;
	/* restore: every old subtask's private bytes go to every new subtask
	 * (its hook keeps what is its own), and a rescale is allowed for a
	 * source (its positions are per split, not per subtask) */
	bool restore_all;
	/* OP_SOURCE: why it cannot be checkpointed (NULL: it keeps its
	 * position itself, when it has no snapshot hook) */
	const char *no_ck_why;
};

struct stream_part {
	int node;
	int tag;
	enum part_kind part;
	weir_key_fn key_fn;
	void *key_arg;
};

struct weir_stream {
	weir_env *env;
	struct weir_stream *next_alloc;	/* env's list, for teardown */
	int nparts;
	struct stream_part parts[];
};

struct weir_env {
	struct node **nodes;
	int nnodes;
	int cap;
	struct weir_stream *streams;
	int parallelism;	/* default */
	char error[1024];	/* first builder error; "" when fine */
};

weir_env *weir_env_create(int parallelism);
void weir_env_destroy(weir_env *env);
/* Record a builder error (the first one wins); returns -1. */
int weir_env_error(weir_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a node fed by stream `in` (NULL for sources). NULL on error. */
struct node *weir_env_add(weir_env *env, enum op_kind kind, const char *name, weir_stream *in);
/* Append a node with two inputs: a's records arrive on side 0, b's on 1. */
struct node *weir_env_add2(weir_env *env, enum op_kind kind, const char *name, weir_stream *a, weir_stream *b);
/* Engine-internal state and side outputs of a node (ids as for users). */
int weir_node_state(weir_env *env, struct node *n, const char *name, enum weir_state_kind kind);
int weir_node_tag(weir_env *env, struct node *n, const char *tag);
weir_stream *weir_env_stream(weir_env *env, struct node *n);
/* Build a keyed operator node on one or two keyed streams (env.c). */
struct node *weir_keyed_node(weir_stream *a, weir_stream *b, const char *name, const struct keyed_impl *impl);


/* Knobs of a run (configuration keys and flags; docs/configuration.md). */
struct weir_config {
	int parallelism;		/* default operator parallelism */
	int workers;			/* worker threads (slots); 0: one per allowed CPU */
	bool pin;			/* pin workers to cores */
	uint32_t segment_size;		/* bytes, power of two */
	uint32_t credits;		/* exclusive segments per channel */
	uint32_t net_credits;		/* a channel between hosts: its receiving half's segments (exchange.credits) */
	uint32_t floating;		/* extra pool segments shared by all channels */
	uint64_t buffer_timeout_ns;	/* longest a partly filled segment waits */
	uint64_t debloat_ns;		/* buffer debloating: in-flight data per channel aimed at this
					 * much of its consumer's time (0: off; io/record.h) */
	uint64_t spin_ns;		/* busy-poll before sleeping */
	int idle;			/* how idle workers wait: enum weir_idle (sched/worker.h) */
	bool idle_set;			/* idle or spin_ns given (weir run: else the cluster's) */
	uint32_t batch;			/* records per step and per source poll */
	uint32_t max_parallelism;	/* key groups */
	uint32_t max_record;		/* largest record, bytes */
	bool quiet;			/* no summary on stderr */
	uint32_t latency_interval_ms;	/* latency tracking: each source subtask sends a latency marker this
					 * often (0: off, the default; engine/runtime/step.c) */
	bool no_metrics;		/* --metrics off: no time accounting, no gauges (their cost, measured
					 * by bench/run's metrics section); record counters stay */
	int rest_port;			/* weir local --rest-port: -1 none (default), 0 any free port */
	bool shm;			/* pool and channels in /dev/shm files, as between processes */
	bool huge_pages;		/* shm: ask for transparent huge pages (falls back, with a warning) */
	/* checkpoints (engine/checkpoint/store.h); interval 0: none */
	uint32_t checkpoint_interval_ms;
	uint32_t checkpoint_timeout_ms;	/* a checkpoint not complete by then is aborted */
	uint32_t checkpoint_min_pause_ms;	/* from one's end to the next one's start */
	uint32_t checkpoint_retain;	/* complete checkpoints kept */
	bool at_least_once;		/* barriers do not block inputs (no alignment) */
	bool unaligned;			/* barriers overtake in-flight data, which goes into snapshots */
	const char *checkpoint_dir;	/* where each job's checkpoint folder goes */
	const char *restore_from;	/* a job's checkpoint folder or one chk-<id> folder */
	uint32_t restart_attempts;	/* restarts from the latest checkpoint after a failure */
	uint32_t restart_delay_ms;	/* before the first restart */
	uint32_t restart_max_delay_ms;	/* exponential backoff: the delay doubles up to this (0: fixed) */
	uint32_t cancel_timeout_ms;	/* a subtask not stopped this long after the job's stop ends the
					 * process (runtime/run.h, weir_guard_start); 0: never */
};

void weir_config_defaults(struct weir_config *c);


#endif
