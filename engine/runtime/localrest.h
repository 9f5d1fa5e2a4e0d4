/*
 * engine/runtime/localrest.h - the REST API of a job run by weir local
 * (--rest-port), in the shapes of the JobManager's (engine/cluster/rest.h)
 * for the one job, whose id is "local":
 *
 *   GET /overview, /jobs, /jobs/overview, /jobs/local
 *
 * /jobs/local lists the vertices with their metrics: records read and
 * written (the chain's head in, its tail out, summed over the subtasks),
 * and the share of the job's time so far its subtasks spent busy and
 * backpressured (sched/worker.h). Served from its own thread (net/http.h),
 * which reads the workers' counters with relaxed loads: it costs them
 * nothing. Up from deploy to the end of the run.
 */
#ifndef WEIR_ENGINE_RUNTIME_LOCALREST_H
#define WEIR_ENGINE_RUNTIME_LOCALREST_H

struct job;
struct local_rest;

/* Serve job on 127.0.0.1:port (0: a free one), saying where on stderr;
 * NULL with the trail set. */
struct local_rest *weir_local_rest_start(struct job *job, int port);
/* Stop: no request reads job after this. NULL is fine. */
void weir_local_rest_stop(struct local_rest *r);

#endif
