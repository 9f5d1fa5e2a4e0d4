/*
 * engine/coordinator.h - the JobManager's checkpoint coordinator for one
 * job on a cluster.
 *
 * It decides when checkpoint n starts (interval, minimum pause, one at a
 * time), collects one acknowledgement per TaskManager of the job's
 * current attempt (each lists the snapshot files its subtasks wrote,
 * durably, into <dir>/chk-<n>/), and when all are in writes the metadata
 * (engine/checkpoint.h: temp, fsync, rename), which makes n complete. A
 * declined or timed-out checkpoint is aborted and its folder removed; the
 * next one starts after the minimum pause. A savepoint is a checkpoint of
 * the same sequence written into a folder the user names, never removed
 * by retention.
 *
 * It only keeps the books: the JobManager (engine/jobmanager.c) sends the
 * triggers, completions and aborts it decides on to the TaskManagers.
 * Threads: the JobManager's loop only.
 */
#ifndef WEIR_ENGINE_COORDINATOR_H
#define WEIR_ENGINE_COORDINATOR_H

#include "checkpoint/store.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

struct ck_coordinator {
	uint64_t job;		/* for log lines */
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
	bool *acked;
	struct weir_ckpt_file *files;
	uint32_t nfiles, capfiles;
	uint64_t bytes, sync_max_ns;
	/* what happened so far */
	uint64_t completed, aborted;
	uint64_t latest;	/* the newest complete checkpoint or savepoint (0: none) */
	char latest_path[PATH_MAX + 32];	/* its chk-<id> folder */
};

/* base: absolute. 0, or -1 with the trail set (out of memory). */
int ckc_init(struct ck_coordinator *c, uint64_t job, uint32_t interval_ms, uint32_t timeout_ms, uint32_t min_pause_ms,
	     uint32_t retain, const char *base, uint64_t now_ns);
void ckc_free(struct ck_coordinator *c);

/* A periodic checkpoint is due now (none in flight, interval and pause over). */
bool ckc_due(const struct ck_coordinator *c, uint64_t now_ns);
/* The pending one is past its timeout. */
bool ckc_timed_out(const struct ck_coordinator *c, uint64_t now_ns);
/* Start the next checkpoint, acknowledged by nparts TaskManagers; with
 * savepoint_dir (absolute) a savepoint into it. Its id, or 0 with the
 * trail set. */
uint64_t ckc_begin(struct ck_coordinator *c, int nparts, const char *savepoint_dir, uint64_t now_ns);
/* Part k's files for the pending checkpoint id. 1: every part is in
 * (complete it), 0: waiting, -1: not the pending one or not a new part
 * (ignored). */
int ckc_ack(struct ck_coordinator *c, int k, uint64_t id, const struct weir_ckpt_file *files, uint32_t nfiles,
	    uint64_t bytes, uint64_t sync_ns);
/* Write the pending checkpoint's metadata: 0 complete (latest is it), or
 * -1 with the trail set (then abort it). Retention runs after it is
 * announced: ckc_retain. */
int ckc_complete(struct ck_coordinator *c, uint64_t now_ns);
void ckc_retain(struct ck_coordinator *c);
/* Abort the pending checkpoint (its folder goes); logged with why. */
void ckc_abort(struct ck_coordinator *c, const char *why, uint64_t now_ns);
/* An attempt of the job ended: the checkpoint in flight (if any) is
 * dropped with its folder; ids go on after the last one used. */
void ckc_reset(struct ck_coordinator *c, uint64_t now_ns);

#endif
