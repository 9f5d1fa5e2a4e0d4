/*
 * weir/weir.h - the public API: how a job describes its dataflow.
 *
 * A job is a shared object that exports
 *
 *     int weir_job(weir_env *env, int argc, char **argv);
 *
 * weir_job builds a graph of operators on `env` and returns 0, or calls
 * weir_env_fail() and returns its -1. The engine then runs the graph, in
 * parallel, until every source is exhausted (or for ever, for unbounded
 * sources). weir_job may be called more than once, in several processes,
 * and must build the same graph each time for the same arguments.
 *
 * Records are bytes plus an event timestamp. The layout of the bytes is the
 * job's business: the engine copies them, hashes the key a key function
 * points at, and hands them back. Timestamps are milliseconds; a record
 * without one carries WEIR_TS_NONE.
 *
 * User functions receive a context (weir_ctx) through which they emit
 * records and learn where they run. They return 0 on success; on failure
 * they return weir_fail(ctx, "what went wrong"), and the job fails with
 * the operator's name, the subtask and that message.
 *
 * Every function here that takes a name copies it. Streams and environments
 * belong to the engine; a job never frees them.
 */
#ifndef WEIR_WEIR_H
#define WEIR_WEIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared here is libweir.so's interface: the rest of the
 * library is hidden (built with -fvisibility=hidden). */
#pragma GCC visibility push(default)

#define WEIR_API_VERSION 0
#define WEIR_TS_NONE INT64_MIN

typedef struct weir_env weir_env;	/* the job being described */

/* The job's entry point, which the job defines (see the top of this file). */
int weir_job(weir_env *env, int argc, char **argv);

typedef struct weir_stream weir_stream;	/* a stream, possibly partitioned */
typedef struct weir_ctx weir_ctx;	/* one running operator instance */

typedef struct weir_rec {
	const void *data;
	uint32_t len;
	int64_t ts;
} weir_rec;

typedef struct weir_key {
	const void *data;
	uint32_t len;
} weir_key;

/* What a source's poll function returns (or a negative error). */
enum weir_source_status {
	WEIR_SOURCE_END = 0,	/* exhausted: never called again */
	WEIR_SOURCE_MORE = 1,	/* may have more now: call again soon */
	WEIR_SOURCE_IDLE = 2,	/* nothing now: call again after weir_ctx_idle_until's time */
};

/* ---- user function types --------------------------------------------- */

/* Emit up to weir_ctx_batch(ctx) records, then return a weir_source_status. */
typedef int (*weir_source_fn)(weir_ctx *ctx);
/* Emit exactly one record for `in`. */
typedef int (*weir_map_fn)(weir_ctx *ctx, const weir_rec *in);
/* Return 1 to keep `in`, 0 to drop it. */
typedef int (*weir_filter_fn)(weir_ctx *ctx, const weir_rec *in);
/* Emit any number of records for `in`. */
typedef int (*weir_flat_map_fn)(weir_ctx *ctx, const weir_rec *in);
/* Point *key at the key bytes of `in` (inside `in` or in the function's
 * own storage, valid until the next call). Must be deterministic. */
typedef int (*weir_key_fn)(weir_ctx *ctx, const weir_rec *in, weir_key *key);
/* Emit exactly one record: the new accumulated value of acc and in. */
typedef int (*weir_reduce_fn)(weir_ctx *ctx, const weir_rec *acc, const weir_rec *in);
/* Consume `in`. */
typedef int (*weir_sink_fn)(weir_ctx *ctx, const weir_rec *in);
/* Per-instance set-up and tear-down (see weir_on_open / weir_on_close). */
typedef int (*weir_open_fn)(weir_ctx *ctx);
typedef int (*weir_close_fn)(weir_ctx *ctx);

/* ---- describing a job -------------------------------------------------- */

/* The default parallelism (weir local --parallelism N). */
int weir_env_parallelism(const weir_env *env);
/* Record why weir_job cannot build its graph; returns -1. */
int weir_env_fail(weir_env *env, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A source calling poll(ctx) until it returns WEIR_SOURCE_END. */
weir_stream *weir_source(weir_env *env, const char *name, weir_source_fn poll, void *arg);
/* Lines (without the newline) of a file, or of every regular file in a
 * folder (sorted by name). Each subtask reads its own byte range of each
 * file, split at line boundaries. Records have no timestamp. */
weir_stream *weir_source_file(weir_env *env, const char *path);
/* Lines of text (without the newline, and a "\r" before it) read from a
 * TCP server at host:port, as Flink's socketTextStream: one subtask, not
 * checkpointable. The connection is made again after it fails or ends,
 * waiting from 100 ms doubling to 5 s, until max_retry_s seconds passed
 * without one (< 0: for ever); then the source ends, or fails naming the
 * address when it never connected. For demos: `nc -lk 9999`. */
weir_stream *weir_source_socket(weir_env *env, const char *host, uint16_t port, int64_t max_retry_s);
/* The numbers 0 .. count-1 as 8-byte little-endian integers, subtask i
 * emitting i, i+P, i+2P, ...; the timestamp of n is n. count < 0: never
 * ends. rate > 0: at most `rate` records per second in all. */
weir_stream *weir_source_sequence(weir_env *env, int64_t count, double rate);

weir_stream *weir_map(weir_stream *in, const char *name, weir_map_fn fn, void *arg);
weir_stream *weir_filter(weir_stream *in, const char *name, weir_filter_fn fn, void *arg);
weir_stream *weir_flat_map(weir_stream *in, const char *name, weir_flat_map_fn fn, void *arg);

/* Partitioning: which downstream subtask gets a record. The default is
 * forward (subtask i to subtask i) when parallelism is equal, else
 * rebalance. */
weir_stream *weir_key_by(weir_stream *in, weir_key_fn fn, void *arg);	/* by key hash */
weir_stream *weir_rebalance(weir_stream *in);	/* round robin */
weir_stream *weir_broadcast(weir_stream *in);	/* to every subtask */
weir_stream *weir_forward(weir_stream *in);	/* subtask i to subtask i */
/* The records of both streams, in no particular order between them. */
weir_stream *weir_union(weir_stream *a, weir_stream *b);

/* Rolling reduce on a keyed stream: per key, the first record is emitted
 * as is; each further one emits and stores reduce(acc, record). */
weir_stream *weir_reduce(weir_stream *keyed, const char *name, weir_reduce_fn fn, void *arg);

/* Sinks. They return the sink's stream only so that its parallelism can
 * be set; nothing may consume it. */
weir_stream *weir_sink(weir_stream *in, const char *name, weir_sink_fn fn, void *arg);
/* One file `part-<subtask>` per subtask in folder dir (created if
 * missing), one record per line. Files appear under their final names
 * only when the job finishes successfully. */
weir_stream *weir_sink_file(weir_stream *in, const char *dir);
/* One line per record on standard output. */
weir_stream *weir_sink_stdout(weir_stream *in);
/* Drops every record (benchmarks). */
weir_stream *weir_sink_discard(weir_stream *in);

/* Properties of the operator that produced s. Each returns s. */
weir_stream *weir_set_parallelism(weir_stream *s, int parallelism);
weir_stream *weir_on_open(weir_stream *s, weir_open_fn fn);
weir_stream *weir_on_close(weir_stream *s, weir_close_fn fn);

/* ---- at run time ------------------------------------------------------- */

/* Emit a record downstream. The timestamp is that of the record being
 * processed (WEIR_TS_NONE in a source). The bytes are copied before the
 * call returns. Returns 0, or -1 when the job is failing: return it. */
int weir_emit(weir_ctx *ctx, const void *data, uint32_t len);
int weir_emit_ts(weir_ctx *ctx, const void *data, uint32_t len, int64_t ts);

/* Fail this operator: records the message and returns -1. */
int weir_fail(weir_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Quote the first bytes of data (at most 60) for a message, e.g.
 * weir_fail(ctx, "bad line \"%s\"", weir_quote(q, sizeof(q), r->data, r->len)):
 * printable ASCII as is, '"' and '\\' escaped, other bytes as \xNN, "..."
 * when cut. Always NUL-terminates buf (size >= 1); returns buf. */
const char *weir_quote(char *buf, size_t size, const void *data, uint32_t len);

int weir_ctx_subtask(const weir_ctx *ctx);	/* 0 .. parallelism-1 */
int weir_ctx_parallelism(const weir_ctx *ctx);
const char *weir_ctx_name(const weir_ctx *ctx);
void *weir_ctx_arg(const weir_ctx *ctx);	/* the arg given when building */
void *weir_ctx_state(const weir_ctx *ctx);	/* per-instance pointer of the job's */
void weir_ctx_set_state(weir_ctx *ctx, void *state);
/* Sources: how many records a poll should emit at most. */
uint32_t weir_ctx_batch(const weir_ctx *ctx);
/* Sources: with WEIR_SOURCE_IDLE, when to be polled again (monotonic ns,
 * see weir_ctx_now_ns). */
void weir_ctx_idle_until(weir_ctx *ctx, uint64_t mono_ns);
uint64_t weir_ctx_now_ns(const weir_ctx *ctx);

int64_t weir_ctx_timestamp(const weir_ctx *ctx);	/* of the record (or timer) being processed */

/* ==== time =============================================================== */

/*
 * Event time. A record's timestamp is its event time in milliseconds.
 * Watermarks travel in-band with the records: a watermark W promises that
 * no record with timestamp <= W follows (records that break the promise
 * are late). An operator's watermark is the minimum over its inputs; an
 * input that ended counts as +infinity, an idle one is left out. At the end
 * of a bounded input the watermark becomes WEIR_WATERMARK_MAX, so every
 * event-time timer and window fires once and a bounded job gives the same
 * result as a batch computation.
 */
#define WEIR_WATERMARK_MIN INT64_MIN
#define WEIR_WATERMARK_MAX INT64_MAX

enum weir_time_domain {
	WEIR_EVENT_TIME = 0,
	WEIR_PROCESSING_TIME = 1,	/* wall-clock milliseconds since the epoch */
};

/* The event time of a record. */
typedef int64_t (*weir_timestamp_fn)(weir_ctx *ctx, const weir_rec *in);

/*
 * Assign timestamps and generate watermarks (Flink's watermark strategy):
 * each record's timestamp becomes fn(record) (fn NULL: keep it); the
 * watermark trails the largest timestamp seen by max_out_of_orderness_ms
 * (W = max - bound - 1; 0 for monotonous timestamps). idle_timeout_ms > 0:
 * after that long without records the stream is marked idle and stops
 * holding back the watermark downstream, until its next record. Chained to
 * its input, usually right after a source.
 */
weir_stream *weir_assign_timestamps(weir_stream *in, weir_timestamp_fn fn, int64_t max_out_of_orderness_ms,
				    int64_t idle_timeout_ms);

int64_t weir_ctx_watermark(const weir_ctx *ctx);	/* the operator's current watermark */
int64_t weir_ctx_processing_time(const weir_ctx *ctx);	/* wall clock, ms */

/* ==== keyed state ========================================================= */

/*
 * Operators on a keyed stream (process functions, windows, joins) keep
 * state per key: while a callback runs, every state call reads and writes
 * the entry of the current key only. State lives in the subtask that owns
 * the key's key group, in memory (engine/state.h).
 *
 * Declare each state on its operator while building the job; the returned
 * id (>= 0) names it in the callbacks. Records returned by state reads stay
 * valid until the next state or timer call of that operator (timers live in
 * the same table: registering one may move the entries).
 */
enum weir_state_kind {
	WEIR_VALUE_STATE,	/* one value */
	WEIR_LIST_STATE,	/* a list of values, in insertion order */
	WEIR_MAP_STATE,		/* user key -> value (linear in its size: keep maps small) */
	WEIR_REDUCING_STATE,	/* one value, folded with `reduce` on every add */
};

typedef struct weir_state_desc {
	const char *name;
	enum weir_state_kind kind;
	weir_reduce_fn reduce;	/* WEIR_REDUCING_STATE */
	int64_t ttl_ms;		/* > 0: an entry not written for this long reads as absent */
} weir_state_desc;

/* -1 (and a job error) when s is not a keyed operator or desc is bad. */
int weir_declare_state(weir_stream *s, const weir_state_desc *desc);

/* Iteration over list and map state; invalidated by any write to it. */
typedef struct weir_iter {
	const uint8_t *p;
	const uint8_t *end;
	int64_t ts;
} weir_iter;

/* 1 and *out set when present, 0 when absent, -1 on error (value and reducing state). */
int weir_value_get(weir_ctx *ctx, int state, weir_rec *out);
int weir_value_set(weir_ctx *ctx, int state, const void *data, uint32_t len);
/* Reducing state: fold data into the value with the declared reduce. */
int weir_reducing_add(weir_ctx *ctx, int state, const void *data, uint32_t len);
int weir_list_add(weir_ctx *ctx, int state, const void *data, uint32_t len);
/* 0 and *it ready (empty when the list is absent), -1 on error. */
int weir_list_iter(weir_ctx *ctx, int state, weir_iter *it);
int weir_map_get(weir_ctx *ctx, int state, const void *key, uint32_t klen, weir_rec *out);
int weir_map_put(weir_ctx *ctx, int state, const void *key, uint32_t klen, const void *data, uint32_t len);
int weir_map_remove(weir_ctx *ctx, int state, const void *key, uint32_t klen);
int weir_map_iter(weir_ctx *ctx, int state, weir_iter *it);
/* 1 and the next item, 0 at the end. For maps, *key is the user key. */
int weir_iter_next(weir_iter *it, weir_rec *out);
int weir_map_iter_next(weir_iter *it, weir_rec *key, weir_rec *value);
/* Remove the current key's entry of any kind. */
int weir_state_clear(weir_ctx *ctx, int state);
/* The current key (in keyed operators). */
int weir_ctx_key(const weir_ctx *ctx, weir_key *key);

/* ==== process functions and timers ======================================= */

/* Called for a timer of the current key; weir_ctx_timestamp is its time. */
typedef int (*weir_timer_fn)(weir_ctx *ctx, int64_t time, enum weir_time_domain domain);
typedef int (*weir_process_fn)(weir_ctx *ctx, const weir_rec *in);

/* A keyed process function: fn for every record (with keyed state and
 * timers), on_timer for every timer that fires (may be NULL). */
weir_stream *weir_process(weir_stream *keyed, const char *name, weir_process_fn fn, weir_timer_fn on_timer,
			  void *arg);
/* Timers of the current key. Event-time timers fire when the watermark
 * reaches their time, processing-time timers when the wall clock does; in
 * time order, each (key, domain, time) at most once however often it was
 * registered. */
int weir_timer_register(weir_ctx *ctx, enum weir_time_domain domain, int64_t time);
int weir_timer_delete(weir_ctx *ctx, enum weir_time_domain domain, int64_t time);

/* Side outputs: declare a tag on an operator (ids >= 1), emit to it from
 * that operator's callbacks, and consume it like any stream. */
int weir_declare_side_output(weir_stream *s, const char *tag);
weir_stream *weir_side_output(weir_stream *s, int tag);
int weir_emit_side(weir_ctx *ctx, int tag, const void *data, uint32_t len);
int weir_emit_side_ts(weir_ctx *ctx, int tag, const void *data, uint32_t len, int64_t ts);

/* ==== windows ============================================================= */

enum weir_window_kind { WEIR_TUMBLING, WEIR_SLIDING, WEIR_SESSION };

typedef struct weir_window_spec {
	enum weir_window_kind kind;
	enum weir_time_domain domain;
	int64_t size_ms;		/* tumbling, sliding */
	int64_t slide_ms;		/* sliding */
	int64_t gap_ms;			/* session */
	int64_t offset_ms;		/* tumbling, sliding: windows start at offset + k*slide */
	int64_t allowed_lateness_ms;	/* event time: late records within it fire an update */
} weir_window_spec;

/* Windows are [start, end); a window fires when the watermark (or clock)
 * reaches end - 1, and its results carry timestamp end - 1. Records later
 * than end - 1 + allowed lateness go to the late side output. */
weir_window_spec weir_tumbling(enum weir_time_domain domain, int64_t size_ms);
weir_window_spec weir_sliding(enum weir_time_domain domain, int64_t size_ms, int64_t slide_ms);
weir_window_spec weir_session(enum weir_time_domain domain, int64_t gap_ms);

/* In window callbacks: the window being fired. */
int weir_ctx_window(const weir_ctx *ctx, int64_t *start, int64_t *end);

/* Called when a window fires, with its accumulated record (reduce). NULL:
 * emit the accumulated record itself. */
typedef int (*weir_window_result_fn)(weir_ctx *ctx, const weir_rec *acc);
/* Incremental aggregation with a fixed-size accumulator. */
typedef struct weir_aggregate {
	uint32_t acc_size;
	int (*create)(weir_ctx *ctx, void *acc);
	int (*add)(weir_ctx *ctx, void *acc, const weir_rec *in);
	int (*merge)(weir_ctx *ctx, void *acc, const void *other);	/* session windows */
	int (*result)(weir_ctx *ctx, const void *acc);			/* emits the output */
} weir_aggregate;
/* Full-window function: all of the window's records, in arrival order. */
typedef int (*weir_window_process_fn)(weir_ctx *ctx, weir_iter *records);

weir_stream *weir_window_reduce(weir_stream *keyed, const char *name, const weir_window_spec *w,
				weir_reduce_fn reduce, weir_window_result_fn result, void *arg);
weir_stream *weir_window_aggregate(weir_stream *keyed, const char *name, const weir_window_spec *w,
				   const weir_aggregate *agg, void *arg);
weir_stream *weir_window_process(weir_stream *keyed, const char *name, const weir_window_spec *w,
				 weir_window_process_fn fn, void *arg);
/* The records a window operator found too late (never silently dropped). */
weir_stream *weir_late_records(weir_stream *window_op);

/* ==== two inputs ========================================================== */

/* Connect two keyed streams into one operator with shared keyed state and
 * timers: fn1 for records of `a`, fn2 for records of `b`. The key
 * functions of both sides must produce the same bytes for the same key. */
weir_stream *weir_co_process(weir_stream *a, weir_stream *b, const char *name, weir_process_fn fn1,
			     weir_process_fn fn2, weir_timer_fn on_timer, void *arg);

/* Called once per joined pair. */
typedef int (*weir_join_fn)(weir_ctx *ctx, const weir_rec *left, const weir_rec *right);
/* Every pair (l from a, r from b) with the same key in the same window,
 * when the window fires; results carry timestamp end - 1. */
weir_stream *weir_window_join(weir_stream *a, weir_stream *b, const char *name, const weir_window_spec *w,
			      weir_join_fn fn, void *arg);
/* Every pair with the same key and l.ts + lower <= r.ts <= l.ts + upper;
 * results carry max(l.ts, r.ts). */
weir_stream *weir_interval_join(weir_stream *a, weir_stream *b, const char *name, int64_t lower_ms,
				int64_t upper_ms, weir_join_fn fn, void *arg);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
