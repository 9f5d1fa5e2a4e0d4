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

#define WEIR_API_VERSION 0
#define WEIR_TS_NONE INT64_MIN

typedef struct weir_env weir_env;	/* the job being described */
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

#ifdef __cplusplus
}
#endif
#endif
