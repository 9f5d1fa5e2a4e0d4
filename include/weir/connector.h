/*
 * weir/connector.h - writing connectors: sinks that take part in
 * exactly-once checkpoints (two phases: a writer and a committer, as
 * Flink's Sink V2), and sources that read splits and keep a position per
 * split in the checkpoints (as Flink's Source API). The built-in file sink
 * is written on this API (engine/connectors/file_sink.c), and reads as an
 * example.
 *
 * Included by weir/weir.h users who write connectors; a job that only uses
 * connectors needs weir/weir.h alone.
 */
#ifndef WEIR_CONNECTOR_H
#define WEIR_CONNECTOR_H

#include <weir/weir.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* ==== sinks with two phases ============================================== */

/*
 * A sink writes what it receives somewhere nobody sees yet (a temporary
 * file, an open transaction, messages the broker will drop as duplicates),
 * and makes it visible in a second step, once the checkpoint that covers it
 * completed, so that output becomes visible exactly once whatever crashes:
 *
 *   write       every record (the writer, one per subtask)
 *   prepare     checkpoint id's barrier reached the subtask: flush, and hand
 *               over what must become visible when id completes, as
 *               committables (opaque bytes: a file name, a transaction id)
 *               with weir_committable_add. They go into the checkpoint.
 *   commit      checkpoint id completed: make one committable visible. After
 *               a crash the restored job commits again what its checkpoint
 *               holds, and a committable may reach commit twice (the crash
 *               came between commit and the next checkpoint): commit must be
 *               idempotent. Any subtask may be handed any committable (after
 *               a rescale): it must carry everything commit needs.
 *   recover     at start, once per subtask index whose output this subtask
 *               answers for: remove what earlier runs left that no
 *               completed checkpoint covers (written after the checkpoint
 *               restored: the restored job writes it again). restored_id is
 *               the checkpoint restored (0: a fresh start: everything of
 *               earlier runs goes); subtask is an index of the checkpoint's
 *               run (this subtask's own, or after a rescale one whose output
 *               passed to it: old index i goes to new i mod parallelism).
 *
 * A job without checkpoints calls prepare once, when the whole job
 * succeeded (id 0), and commits its committables; when it fails, abort
 * gets them instead (also ones committed already, when another sink's
 * commit failed after this one's: undo them if you can). With checkpoints, the end of the input is
 * prepared as the checkpoint that would come next (weir_ctx_checkpointing
 * says which mode runs), and committed when the job succeeds. Either way
 * the last prepare comes after close: close must keep what it needs. Committables
 * of a failed attempt that no checkpoint holds are never seen again by the
 * engine: recover is where they go.
 *
 * open, close, recover, abort, check and release may be NULL. All run on
 * the subtask's thread; return 0, or weir_fail(ctx, ...). A close when the
 * run fails (weir_ctx_failing) may drop what it holds.
 */
typedef struct weir_sink_impl {
	int (*open)(weir_ctx *ctx);
	int (*write)(weir_ctx *ctx, const weir_rec *in);
	int (*prepare)(weir_ctx *ctx, uint64_t id);
	int (*commit)(weir_ctx *ctx, const void *committable, uint32_t len);
	int (*abort)(weir_ctx *ctx, const void *committable, uint32_t len);
	int (*recover)(weir_ctx *ctx, uint64_t restored_id, int subtask);
	int (*close)(weir_ctx *ctx);
	/* Before the job runs (in every process that runs it): may it?
	 * restoring: it starts from a checkpoint. 0, or -1 with the reason
	 * given to weir_check_fail. May be NULL. */
	int (*check)(void *arg, bool restoring);
	/* The subtask's last call, after every other: free what open made
	 * (prepare, commit and abort may come after close). May be NULL. */
	void (*release)(weir_ctx *ctx);
	/* Frees arg when the job's graph goes (NULL: nothing to free). */
	void (*free_arg)(void *arg);
} weir_sink_impl;

/* A sink of impl (copied); arg is what weir_ctx_arg returns. */
weir_stream *weir_sink_two_phase(weir_stream *in, const char *name, const weir_sink_impl *impl, void *arg);
/* In prepare: one committable of the checkpoint being prepared (copied;
 * at most WEIR_COMMITTABLE_MAX bytes). 0, or -1 (the job is failing). */
#define WEIR_COMMITTABLE_MAX 4096
int weir_committable_add(weir_ctx *ctx, const void *data, uint32_t len);
/* In check: say why the job may not run; returns -1. */
int weir_check_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ==== sources with splits ================================================ */

/*
 * A source reads splits: parts of its input that one subtask reads at a
 * time, in order (a partition, a file, a subject, a shard), each named by
 * a unique id. weir decides which subtask reads which split, keeps each
 * split's position in the checkpoints, and gives it back after a restore,
 * also at another parallelism:
 *
 *   discover    every split there is now: weir_split_found for each, with
 *               its id, an index (>= 0: the split goes to subtask index
 *               modulo the parallelism, as a partition number; < 0: by a
 *               hash of its id) and what the reader needs to read it.
 *               Called in every subtask, first after the restore, then
 *               every discover_ms (0: once); a split found again is not
 *               given again. It must find the same splits everywhere.
 *   add_split   a split this subtask reads from now on. pos NULL: a new
 *               split, from its beginning; else (after a restore) where it
 *               resumes, the bytes position gave (len may be 0).
 *   poll        emit up to weir_ctx_batch records of the splits it holds,
 *               with weir_emit_split, and return a weir_source_status. A
 *               split with no more records: weir_split_finished. Without
 *               discovery the source ends once every split it holds
 *               finished (also when it holds none); with it, only when poll
 *               returns WEIR_SOURCE_END.
 *   position    at a checkpoint's barrier (between polls, so after the
 *               records emitted so far), and at the end: where split s
 *               resumes; at most WEIR_SPLIT_POS_MAX bytes into pos, returns
 *               how many. Asked once more after the split finished, then
 *               never again (a reader may free its state of a finished
 *               split after that; a split restored finished never comes to
 *               the reader at all).
 *
 * The reader keeps its per-split state with weir_split_set_data. A source
 * of splits takes part in exactly-once checkpoints and may be restored at
 * another parallelism (each new subtask takes the splits it owns now, with
 * their positions). open, close and release may be NULL; close comes at
 * the end of the input or when the run fails, release after everything.
 */
#define WEIR_SPLIT_ID_MAX 255
#define WEIR_SPLIT_DESC_MAX 4096
#define WEIR_SPLIT_POS_MAX 256

typedef struct weir_split weir_split;	/* the engine's; valid while the subtask runs */

typedef struct weir_source_impl {
	int (*open)(weir_ctx *ctx);
	int (*discover)(weir_ctx *ctx);
	int (*add_split)(weir_ctx *ctx, weir_split *s, const void *pos, uint32_t len);
	int (*poll)(weir_ctx *ctx);
	int (*position)(weir_ctx *ctx, weir_split *s, void *pos, uint32_t cap);
	int (*close)(weir_ctx *ctx);
	void (*release)(weir_ctx *ctx);
	void (*free_arg)(void *arg);
	uint32_t discover_ms;
} weir_source_impl;

/* A source of impl (copied); arg is what weir_ctx_arg returns. */
weir_stream *weir_source_splits(weir_env *env, const char *name, const weir_source_impl *impl, void *arg);
/* In discover: a split (id 1..WEIR_SPLIT_ID_MAX bytes, NUL-terminated;
 * desc at most WEIR_SPLIT_DESC_MAX bytes, copied). 0, or -1 (failing). */
int weir_split_found(weir_ctx *ctx, const char *id, int64_t index, const void *desc, uint32_t len);
const char *weir_split_id(const weir_split *s);
const void *weir_split_desc(const weir_split *s, uint32_t *len);
void *weir_split_data(const weir_split *s);
void weir_split_set_data(weir_split *s, void *data);
/* The splits this subtask holds (*out: an array the engine owns, valid
 * until the next discover); returns how many. */
int weir_splits_held(const weir_ctx *ctx, weir_split ***out);
/* In poll: a record of split s, with its event time (WEIR_TS_NONE: none). */
int weir_emit_split(weir_ctx *ctx, weir_split *s, const void *data, uint32_t len, int64_t ts);
/* Split s has no more records (it stops holding back the watermark). */
void weir_split_finished(weir_ctx *ctx, weir_split *s);
/* Split s has nothing now: it stops holding back the watermark until its
 * next record. */
void weir_split_idle(weir_ctx *ctx, weir_split *s);
/* Watermarks per split for a stream of weir_source_splits: each split's
 * trails its largest event time by max_out_of_orderness_ms (W = max -
 * bound - 1), the source's is the smallest over splits neither finished
 * nor idle; idle_timeout_ms > 0: a split without records that long is
 * idle until its next one. All idle: the stream is. Returns s. */
weir_stream *weir_source_watermarks(weir_stream *s, int64_t max_out_of_orderness_ms, int64_t idle_timeout_ms);

/* Does this run take checkpoints (or start from one)? */
bool weir_ctx_checkpointing(const weir_ctx *ctx);
/* The run's checkpoint folder (NULL without checkpoints): on the cluster a
 * folder every TaskManager shares, where a sink may stage what its
 * committables name. */
const char *weir_ctx_checkpoint_dir(const weir_ctx *ctx);
/* In close: is the run failing or cancelled? (Nothing that was not
 * committed will be: a writer may drop what it holds.) */
bool weir_ctx_failing(const weir_ctx *ctx);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
