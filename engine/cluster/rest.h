/*
 * engine/cluster/rest.h - the JobManager's REST API: JSON over HTTP
 * (net/http.h), in the shapes of Flink's where they fit, so that its tools
 * and habits carry over.
 *
 *   GET /overview            the cluster: TaskManagers, slots, jobs by state
 *   GET /config              the API's own settings (version, refresh interval)
 *   GET /jobs                every job: id and status
 *   GET /jobs/overview       every job: name, state, times, its vertices' count
 *   GET /jobs/:id            one job, with its vertices and their figures
 *   GET /jobs/:id/vertices/:vid[/backpressure|/watermarks|/subtasks/metrics]
 *   GET /jobs/:id/checkpoints[/details/:cid]   counts, summary, history
 *   GET /jobs/:id/exceptions the failures of its attempts
 *   PATCH /jobs/:id          cancel it (token)
 *   POST /jobs/:id/savepoints {"target-directory", "cancel-job"} (token)
 *   POST /jobs/:id/stop      {"targetDirectory"}: a savepoint, then a stop (token)
 *   GET /jobs/:id/savepoints/:request-id      IN_PROGRESS, or COMPLETED
 *                            with a location or a failure-cause
 *   GET /taskmanagers[/:id[/logs]]   TaskManagers: slots, pool, CPU; a log's end
 *   GET /jobmanager/logs     the end of the JobManager's log
 *   GET /metrics             everything, in Prometheus's text format
 *
 * Errors are JSON too ({"errors": ["..."]}): an unknown path or id 404, a
 * method a path does not take 405 (with Allow), a body too large 413, an
 * action without the token 401, an action on a job that ended 409.
 * Actions are left for the loop thread (jm.actions), which carries them
 * out within a tick (10 ms): the answer is 202, the outcome is polled.
 * Listens on rest.bind (127.0.0.1) and rest.port (--rest-port; 0 picks a
 * free port, -1 turns it off); the address goes into the run folder as
 * jobmanager.rest. Reading needs no token on loopback; acting always
 * does, as does everything when bound beyond loopback: other users of the
 * machine reach loopback too (docs/operations.md).
 * Handlers read the JobManager's state holding jm.lock (jm.h), which its
 * loop thread lets go of only while it waits: a request never sees a
 * state half-changed, and never holds the loop for longer than it takes
 * to write its answer. weir local has its own, for its one job
 * (engine/runtime/localrest.h).
 */
#ifndef WEIR_ENGINE_CLUSTER_REST_H
#define WEIR_ENGINE_CLUSTER_REST_H

#include "ctl/auth.h"

#include <stdint.h>

struct rest;
/* Start the API on addr:port (addr an IPv4 address; beyond loopback every
 * request must carry the token made from secret); NULL with the trail set. */
struct rest *weir_rest_start(const char *addr, uint16_t port, const struct weir_auth_secret *secret);
uint16_t weir_rest_port(const struct rest *r);
/* Stop it: no handler runs after this. NULL is fine. Not holding jm.lock. */
void weir_rest_stop(struct rest *r);

/* A request that came over the control protocol (RestRequest: its client
 * authenticated with the secret, so it may act), on the loop thread,
 * holding jm.lock; also when the HTTP server is off (rest.port -1). */
struct weir_http_req;
struct weir_http_resp;
void weir_rest_call(const struct weir_http_req *q, struct weir_http_resp *r);

#endif
