/*
 * engine/checkpoint/coordinator.h - the checkpoint coordinator of one job:
 * every decision about checkpoints, in local mode and on a cluster alike.
 *
 * It decides when checkpoint n starts (interval, minimum pause, one at a
 * time, or a savepoint asked for), collects one acknowledgement per part
 * of the job (a part is a TaskManager of the job's current attempt; local
 * mode is one part), each listing the snapshot files its subtasks wrote,
 * durably, into <dir>/chk-<n>/, and when all are in writes the metadata
 * (store.h: temp, fsync, rename), which makes n complete; then it
 * announces n, and retention runs. A declined or timed-out checkpoint is
 * aborted, its folder removed, and the next one starts after the interval
 * (at least the minimum pause), backing off while aborts follow each other
 * (CK_BACKOFF_MAX_MS); an abort is logged once per run of the same reason. A savepoint is a checkpoint of the same sequence written into a
 * folder the user names, never removed by retention.
 *
 * It reaches the parts only through its ops: the JobManager sends control
 * messages to its TaskManagers (cluster/jobmanager.c), local mode calls
 * its snapshot writer (runtime/local.c). On the parts' side nothing is
 * decided (writer.h).
 *
 * Failpoint: checkpoint.complete (the metadata is durable, the
 * announcement is not sent: a restore may use it, sinks publish what it
 * covers with the next one).
 *
 * Threads: one at a time (the JobManager's loop; local mode's driver,
 * under its lock).
 */
#ifndef WEIR_ENGINE_CHECKPOINT_COORDINATOR_H
#define WEIR_ENGINE_CHECKPOINT_COORDINATOR_H

#include "checkpoint/store.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

/* After an abort the next checkpoint waits the interval (at least the
 * minimum pause), doubled for each further abort in a row, up to this. */
#define CK_BACKOFF_MAX_MS 60000u

/* The coordinator's steps, sent to every part of the job. */
enum ck_step {
	CK_STEP_TRIGGER = 1,	/* snapshot into <dir>/chk-<id>/ and acknowledge */
	CK_STEP_COMPLETE = 2,	/* id is complete: sinks publish what it covers */
	CK_STEP_ABORT = 3,	/* id is aborted: alignments for it end, its snapshots are dropped */
};

struct ck_coordinator_ops {
	/* a step to every part (dir: a trigger's folder, else NULL) */
	void (*send)(void *arg, enum ck_step step, uint64_t id, const char *dir);
	/* optional: the checkpoint in flight ended, complete (ok; text: its
	 * chk-<id> folder) or aborted (text: why) */
	void (*ended)(void *arg, uint64_t id, bool savepoint, bool ok, const char *text);
	void *arg;
};

/* A checkpoint or savepoint that ended, kept for the REST API's history. */
#define CK_HISTORY 10
struct ck_size {
	uint32_t vertex, index;
	uint64_t size;
};
struct ck_record {
	uint64_t id;
	bool savepoint, ok;
	uint64_t trigger_ms, end_ms;	/* wall clock (Unix ms) */
	uint64_t duration_ns;
	uint64_t bytes, inflight, sync_max_ns;
	uint32_t nsizes;
	struct ck_size *sizes;	/* complete: each subtask's snapshot (malloc'd, or NULL) */
	char why[160];		/* failed: why */
};

struct ck_coordinator {
	char label[32];		/* "job <id>: " for log lines ("" in local mode) */
	struct ck_coordinator_ops ops;
	/* configuration */
	uint32_t interval_ms;	/* 0: savepoints only */
	uint32_t timeout_ms, min_pause_ms, retain;
	char base[PATH_MAX];	/* the job's checkpoint folder */
	/* the checkpoint in flight (pending 0: none) */
	uint64_t last_id, pending;
	uint64_t pending_ns, next_ns;
	char dir[PATH_MAX];	/* where pending goes: base, or a savepoint's folder */
	bool savepoint;
	int nparts;
	uint32_t nsub;		/* snapshot files a complete one has: one per subtask */
	bool *acked;
	struct weir_ckpt_file *files;
	uint32_t nfiles, capfiles;
	uint64_t bytes, sync_max_ns, inflight;
	/* what happened so far */
	uint64_t completed, aborted;
	uint32_t fails;		/* aborts in a row (0 after a completion): the backoff */
	char last_why[256];	/* the last abort's reason, logged */
	uint64_t repeats, repeat_first, repeat_last;	/* aborts since for the same reason, not logged yet */
	uint64_t latest;	/* the newest complete checkpoint or savepoint (0: none) */
	uint64_t latest_ns;	/* when it completed (the coordinator's clock) */
	uint64_t latest_bytes;	/* its size */
	char latest_path[PATH_MAX + 32];	/* its chk-<id> folder */
	uint64_t pending_ms;	/* wall clock when pending was triggered */
	/* the last CK_HISTORY that ended: history[(nhistory - 1) % CK_HISTORY]
	 * is the newest (nhistory: how many ended so far) */
	struct ck_record history[CK_HISTORY];
	uint64_t nhistory;
};

/* job: for log lines (0: local mode, no label). base: absolute. Ids go on
 * after last_id (the checkpoint restored, so a sink's parts never
 * collide). 0, or -1 with the trail set. */
int ck_coordinator_init(struct ck_coordinator *c, uint64_t job, uint32_t interval_ms, uint32_t timeout_ms,
			uint32_t min_pause_ms, uint32_t retain, const char *base, uint64_t last_id,
			const struct ck_coordinator_ops *ops, uint64_t now_ns);
/* Drop what it holds; a checkpoint in flight is discarded with its folder. */
void ck_coordinator_release(struct ck_coordinator *c, uint64_t now_ns);

/* Time passes (call it at least at ck_coordinator_wake): abort the
 * checkpoint in flight when it timed out; then start the next one when it
 * is due, or a savepoint into savepoint_dir (absolute) when asked, to be
 * acknowledged by nparts parts with nsub files in all. The id started, or 0. */
uint64_t ck_coordinator_tick(struct ck_coordinator *c, int nparts, uint32_t nsub, const char *savepoint_dir,
			     uint64_t now_ns);
/* When the next tick has something to do (a deadline or a due time). */
uint64_t ck_coordinator_wake(const struct ck_coordinator *c);
/* Part k acknowledged checkpoint id with its files (or declined it: err).
 * Late or repeated acknowledgements are ignored. Completes the checkpoint
 * when every part is in. */
void ck_coordinator_acked(struct ck_coordinator *c, int k, uint64_t id, const struct weir_ckpt_file *files,
			  uint32_t nfiles, uint64_t bytes, uint64_t sync_ns, uint64_t inflight, const char *err,
			  uint64_t now_ns);
/* Abort the checkpoint in flight (if any) with why. */
void ck_coordinator_abort(struct ck_coordinator *c, const char *why, uint64_t now_ns);
/* An attempt of the job ended: the checkpoint in flight (if any) is
 * dropped with its folder, without a step sent (its parts are gone); ids
 * go on after the last one used. */
void ck_coordinator_reset(struct ck_coordinator *c, uint64_t now_ns);

#endif
