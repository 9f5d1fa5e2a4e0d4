/*
 * engine/runtime/ckjson.h - a job's checkpoint history in the REST API's
 * shapes (Flink's /jobs/:id/checkpoints and /checkpoints/details/:cid),
 * from its coordinator (checkpoint/coordinator.h: the last CK_HISTORY that
 * ended, and the one in flight). The caller holds what guards c.
 */
#ifndef WEIR_ENGINE_RUNTIME_CKJSON_H
#define WEIR_ENGINE_RUNTIME_CKJSON_H

#include "checkpoint/coordinator.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct weir_series;

/* counts, summary, latest (completed, savepoint, failed, restored) and the
 * history, newest first. restored_id: the checkpoint the running attempt
 * started from (0: none); restarts: the job's restarts so far. */
json_t *weir_ck_history_json(const struct ck_coordinator *c, bool ck_on, uint64_t restored_id, uint32_t restarts);
/* Checkpoint cid of the history (or the one in flight), with each
 * subtask's snapshot size named by s's vertices (s may be NULL); NULL
 * when there is no such one. */
json_t *weir_ck_detail_json(const struct ck_coordinator *c, bool ck_on, const char *cid, const struct weir_series *s);

#endif
