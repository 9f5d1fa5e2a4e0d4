/*
 * engine/metrics/metrics.h - what weir shows of a running job's subtasks,
 * and how: the figures (a sample of each subtask's counters and gauges),
 * the rates between two samples, and their renderings as the REST API's
 * JSON (Flink's shapes) and as Prometheus's text format (Flink's metric
 * names under weir_).
 *
 * Samples are taken where the subtasks run (runtime/sample.c reads the
 * workers' counters with relaxed loads; a TaskManager sends its samples
 * to the JobManager once a second). Nothing here reads a worker's memory
 * or takes a lock: a series belongs to its caller, who serializes.
 */
#ifndef WEIR_ENGINE_METRICS_METRICS_H
#define WEIR_ENGINE_METRICS_METRICS_H

#include "base/histo.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* No watermark yet (WEIR_WATERMARK_MIN). */
#define WEIR_METRICS_NO_WM INT64_MIN

/* One subtask's figures at one moment: counters since its attempt began
 * (they start again from 0 after a restart), gauges as they were. */
struct weir_task_sample {
	uint32_t vertex, index;
	uint32_t tm;		/* the TaskManager it runs on (0 in weir local) */
	uint64_t at_ns;		/* the real clock (CLOCK_MONOTONIC) of the sampler, 0: no sample */
	uint64_t records_in, records_out;	/* of the chain's head and tail */
	uint64_t bytes_in, bytes_out;		/* of the segments read and sent */
	uint64_t busy_ns, backpressured_ns;	/* sched/worker.h, weir_task_times */
	int64_t wm_in, wm_out;	/* the chain's input watermark and its tail's */
	uint64_t state_entries, timers;
	/* how full its channels are, 0 to 1 (Flink's inPoolUsage and
	 * outPoolUsage): segments queued in its input channels over their
	 * credits (the mean over them), segments it sent that wait in an
	 * output channel over its credits (the fullest one) */
	double in_pool, out_pool;
	uint64_t align_ns;	/* the last checkpoint barrier's alignment here (Flink's checkpointAlignmentTime) */
	/* latency tracking: a sink subtask's histogram of marker latencies
	 * since its attempt began (base/histo.h buckets), or NULL. Only for
	 * weir_series_add, which copies it. */
	const uint64_t *lat;
};

/* What a subtask did per second between its two samples. */
struct weir_task_rates {
	bool valid;		/* false: not two samples of one attempt yet */
	double records_in, records_out, bytes_in, bytes_out;
	double busy_ms, backpressured_ms, idle_ms;	/* per second: they add up to 1000 */
};

/* A job's subtasks (vertex-major, as the plan numbers them), each with its
 * newest sample and one a second or more older: rates are over their gap. */
struct weir_series {
	uint32_t nv;		/* vertices */
	char **names;		/* each vertex's name */
	uint32_t *par;		/* each vertex's parallelism */
	uint32_t n;		/* subtasks */
	struct weir_task_sample *cur, *prev;
	/* latency histograms, n x WEIR_HISTO_BUCKETS each, made at the first
	 * sample that has one (NULL: none yet) */
	uint64_t *lat_cur, *lat_prev;
};

/* A series of nv vertices with these names and parallelisms, no samples;
 * 0, or -1 with the trail set. weir_series_free frees it (also a zeroed
 * one). */
int weir_series_init(struct weir_series *s, uint32_t nv, const char *const *names, const uint32_t *par);
void weir_series_free(struct weir_series *s);
/* Add a sample of its subtask (vertex, index): ignored when they are not
 * the series'. The one before becomes the base of the rates once it is a
 * second older than the base; counters that went back (a restart) leave
 * no base until the next sample. */
void weir_series_add(struct weir_series *s, const struct weir_task_sample *t);
/* Forget every sample (a new attempt of the job). */
void weir_series_reset(struct weir_series *s);
/* Every subtask's counters were 0 at at_ns (the job started then, on this
 * host's clock): the base of the first rates. */
void weir_series_start(struct weir_series *s, uint64_t at_ns);
/* Subtask i's rates. */
struct weir_task_rates weir_series_rates(const struct weir_series *s, uint32_t i);
/* The first subtask of vertex v, or s->n. */
uint32_t weir_series_first(const struct weir_series *s, uint32_t v);

/* --- the REST API's JSON (new references; NULL when out of memory) --- */

/* Vertex v's "metrics" object: records and bytes summed over its
 * subtasks, their rates, busy and backpressured shares (the mean over
 * its subtasks), its lowest input watermark. */
json_t *weir_metrics_vertex_json(const struct weir_series *s, uint32_t v);
/* /jobs/:id/vertices/:vid: the vertex and each subtask's metrics; host
 * names a TaskManager (NULL: weir local). */
json_t *weir_metrics_vertex_detail(const struct weir_series *s, uint32_t v, uint64_t now_ms,
				   const char *(*host)(uint32_t tm, void *arg), void *arg);
/* /jobs/:id/vertices/:vid/backpressure: each subtask's share of time
 * backpressured, idle and busy over the last second and its level (ok up
 * to 10 %, low up to 50 %, high beyond: Flink's). */
json_t *weir_metrics_backpressure(const struct weir_series *s, uint32_t v, uint64_t now_ms);
/* /jobs/:id/vertices/:vid/watermarks: [{"id": "<i>.currentInputWatermark", "value": "<ms>"}, ...] */
json_t *weir_metrics_watermarks(const struct weir_series *s, uint32_t v);
/* /jobs/:id/vertices/:vid/subtasks/metrics: every metric's min, max,
 * avg and sum over the subtasks. */
json_t *weir_metrics_aggregated(const struct weir_series *s, uint32_t v);

/* Answer GET <path>, which ends in /vertices/<sub>: sub is "<vid>", or
 * "<vid>/backpressure", "<vid>/watermarks", "<vid>/subtasks/metrics"; 404
 * naming an unknown vertex or path. */
struct weir_http_resp;
void weir_metrics_vertex_reply(struct weir_http_resp *r, const char *path, const struct weir_series *s,
			       const char *sub, uint64_t now_ms, const char *(*host)(uint32_t tm, void *arg),
			       void *arg);

/* A response of j's text (j is released; 500 when it cannot be made). */
struct weir_http_resp;
void weir_json_reply(struct weir_http_resp *r, int status, json_t *j);
/* An error response: {"errors": [message]}. */
void weir_json_error(struct weir_http_resp *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A JSON string of s, which may come from users and not be UTF-8: such
 * bytes (and control characters) become '?'. */
json_t *weir_json_str(const char *s);

/* --- Prometheus's text format --- */

/* A job as Prometheus sees it. */
struct weir_prom_job {
	const char *id, *name;
	const struct weir_series *s;
	const char *(*host)(uint32_t tm, void *arg);	/* NULL: every subtask is on this host */
	void *arg;
};
/* Every task metric of these jobs, family by family (each with its HELP
 * and TYPE lines), labelled job_id, job_name, task_name, subtask_index,
 * tm_id, host. */
void weir_prom_tasks(FILE *f, const struct weir_prom_job *jobs, int njobs);
/* A family's HELP and TYPE lines (type: "gauge" or "counter"). */
void weir_prom_family(FILE *f, const char *name, const char *type, const char *help);
/* A label value, escaped as the format says (backslash, quote, newline). */
void weir_prom_label(FILE *f, const char *value);
/* A response of what write puts into f, in the text format's content type
 * (500 when out of memory). */
void weir_prom_reply(struct weir_http_resp *r, void (*write)(FILE *f, void *arg), void *arg);

#endif
