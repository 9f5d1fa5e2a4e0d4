/*
 * engine/cluster/rest.h - the JobManager's REST API: JSON over HTTP
 * (net/http.h), in the shapes of Flink's where they fit, so that its tools
 * and habits carry over.
 *
 *   GET /overview            the cluster: TaskManagers, slots, jobs by state
 *   GET /config              the API's own settings (version, refresh interval)
 *   GET /jobs                every job: id and status
 *   GET /jobs/overview       every job: name, state, times, its vertices' count
 *   GET /jobs/:id            one job, with its vertices (the job graph)
 *   GET /taskmanagers        every TaskManager: id, host, slots, pool
 *
 * Errors are JSON too ({"errors": ["..."]}): an unknown path or id 404, a
 * method a path does not take 405 (with Allow), a body too large 413.
 * Listens on 127.0.0.1 (rest.port, --rest-port; 0 picks a free port, -1
 * turns it off); the address goes into the run folder as jobmanager.rest.
 * Handlers read the JobManager's state holding jm.lock (jm.h), which its
 * loop thread lets go of only while it waits: a request never sees a
 * state half-changed, and never holds the loop for longer than it takes
 * to write its answer. weir local has its own, for its one job
 * (engine/runtime/localrest.h).
 */
#ifndef WEIR_ENGINE_CLUSTER_REST_H
#define WEIR_ENGINE_CLUSTER_REST_H

#include <stdint.h>

struct rest;
/* Start the API on 127.0.0.1:port; NULL with the trail set. */
struct rest *weir_rest_start(uint16_t port);
uint16_t weir_rest_port(const struct rest *r);
/* Stop it: no handler runs after this. NULL is fine. Not holding jm.lock. */
void weir_rest_stop(struct rest *r);

#endif
