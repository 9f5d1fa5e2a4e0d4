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

/* Does this run take checkpoints (or start from one)? */
bool weir_ctx_checkpointing(const weir_ctx *ctx);
/* In close: is the run failing or cancelled? (Nothing that was not
 * committed will be: a writer may drop what it holds.) */
bool weir_ctx_failing(const weir_ctx *ctx);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
