/*
 * engine/runtime/localrest.c - weir local's REST API (localrest.h).
 */
#include "runtime/localrest.h"
#include "runtime/internal.h"
#include "runtime/local.h"
#include "metrics/web.h"
#include "metrics/metrics.h"
#include "net/http.h"
#include "base/clock.h"
#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct local_rest {
	struct job *job;
	struct weir_http *http;
	uint64_t start_ms;		/* wall clock, for start-time */
	struct weir_series series;	/* the HTTP thread's only (one request at a time) */
	struct weir_task_sample *buf;
	uint64_t *lat;			/* latency histograms, with latency tracking on */
};

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The edges between vertices (into each chain's head), as the
 * JobManager's API shows the graph weir run sends. */
static json_t *edges(const struct job *job)
{
	static const char *const ship[] = { [PART_DEFAULT] = "FORWARD", [PART_FORWARD] = "FORWARD",
					    [PART_HASH] = "HASH", [PART_REBALANCE] = "REBALANCE",
					    [PART_BROADCAST] = "BROADCAST" };
	const struct plan *p = &job->plan;
	json_t *a = json_array();
	for (int v = 0; a && v < p->nv; v++) {
		const struct node *head = job->env->nodes[p->v[v].nodes[0]];
		for (int k = 0; k < head->nin; k++) {
			enum part_kind pk = p->edge_part[p->edge_base[head->id] + k];
			char src[16], dst[16];
			snprintf(src, sizeof(src), "%d", p->node_vertex[head->in[k].src]);
			snprintf(dst, sizeof(dst), "%d", v);
			json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:i}", "source", src, "target", dst, "ship_strategy",
							   ship[pk], "side_output", head->in[k].tag));
		}
	}
	return a;
}

static json_t *job_json(const struct local_rest *r, bool details)
{
	const struct job *job = r->job;
	uint64_t now = weir_real_now_ns();
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:i,s:{s:i}}", "jid", "local", "name", "local", "state",
			      "RUNNING", "start-time", (json_int_t)r->start_ms, "end-time", (json_int_t)-1, "duration",
			      (json_int_t)((now - job->start_real_ns) / 1000000u), "restarts", 0, "tasks", "vertices",
			      job->plan.nv);
	if (o && details) {
		json_t *a = json_array();
		for (uint32_t v = 0; a && v < r->series.nv; v++) {
			char id[16];
			snprintf(id, sizeof(id), "%u", v);
			json_array_append_new(a, json_pack("{s:s,s:o,s:i,s:o}", "id", id, "name",
							   weir_json_str(r->series.names[v]), "parallelism",
							   (int)r->series.par[v], "metrics",
							   weir_metrics_vertex_json(&r->series, v)));
		}
		json_object_set_new(o, "vertices", a);
		json_object_set_new(o, "plan", json_pack("{s:o}", "edges", edges(job)));
	}
	return o;
}

/* The Prometheus text of the job's tasks. */
static void prom_write(FILE *f, void *arg)
{
	struct local_rest *lr = arg;
	struct weir_prom_job pj = { .id = "local", .name = "local", .s = &lr->series };
	weir_prom_tasks(f, &pj, 1);
}

static void on_request(void *arg, const struct weir_http_req *q, struct weir_http_resp *r)
{
	struct local_rest *lr = arg;
	const char *p = q->path;
	if (weir_web_serve(q, r)) /* the dashboard */
		return;
	bool vx = !strncmp(p, "/jobs/local/vertices/", 21), ckd = !strncmp(p, "/jobs/local/checkpoints/details/", 32);
	bool known = vx || ckd || !strcmp(p, "/overview") || !strcmp(p, "/jobs") || !strcmp(p, "/jobs/overview") ||
		     !strcmp(p, "/jobs/local") || !strcmp(p, "/metrics") || !strcmp(p, "/jobs/local/checkpoints") ||
		     !strcmp(p, "/jobs/local/exceptions") || !strcmp(p, "/taskmanagers") || !strcmp(p, "/config");
	if (!known) {
		weir_json_error(r, 404, "%s", !strncmp(p, "/jobs/", 6) ? "no such job or path (this job is 'local')" : "not found");
		return;
	}
	if (strcmp(q->method, "GET")) {
		r->allow = "GET";
		weir_json_error(r, 405, "%s takes GET only (weir local's API reads; it does not act)", p);
		return;
	}
	/* a fresh sample of every subtask (the workers do nothing for it) */
	int n = weir_job_sample(lr->job, 0, lr->buf, (int)lr->series.n, lr->lat);
	for (int i = 0; i < n; i++)
		weir_series_add(&lr->series, &lr->buf[i]);
	if (!strcmp(p, "/overview"))
		weir_json_reply(r, 200,
				json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:s}", "taskmanagers", 0, "slots-total", 0,
					  "slots-available", 0, "jobs-running", 1, "jobs-finished", 0, "jobs-cancelled", 0,
					  "jobs-failed", 0, "weir-version", "0.1.0", "cluster-id", "weir local"));
	else if (!strcmp(p, "/config"))
		weir_json_reply(r, 200, json_pack("{s:i,s:s,s:s}", "refresh-interval", 1000, "timezone-name", "UTC",
						  "weir-version", "0.1.0"));
	else if (!strcmp(p, "/jobs"))
		weir_json_reply(r, 200, json_pack("{s:[{s:s,s:s}]}", "jobs", "id", "local", "status", "RUNNING"));
	else if (!strcmp(p, "/jobs/overview"))
		weir_json_reply(r, 200, json_pack("{s:[o]}", "jobs", job_json(lr, false)));
	else if (!strcmp(p, "/jobs/local"))
		weir_json_reply(r, 200, job_json(lr, true));
	else if (!strcmp(p, "/metrics"))
		weir_prom_reply(r, prom_write, lr);
	else if (!strcmp(p, "/taskmanagers"))
		weir_json_reply(r, 200, json_pack("{s:[]}", "taskmanagers"));
	else if (!strcmp(p, "/jobs/local/exceptions")) /* a failure ends this run's API: none to show */
		weir_json_reply(r, 200, json_pack("{s:{s:[],s:b}}", "exceptionHistory", "entries", "truncated", 0));
	else if (!strcmp(p, "/jobs/local/checkpoints"))
		weir_json_reply(r, 200, weir_local_ck_json(lr->job, NULL, &lr->series));
	else if (ckd) {
		json_t *j = weir_local_ck_json(lr->job, p + 32, &lr->series);
		if (j)
			weir_json_reply(r, 200, j);
		else
			weir_json_error(r, 404, "no checkpoint %s in the history", p + 32);
	} else {
		weir_metrics_vertex_reply(r, p, &lr->series, p + 21, wall_ms(), NULL, NULL);
	}
}

struct local_rest *weir_local_rest_start(struct job *job, int port)
{
	struct local_rest *r = calloc(1, sizeof(*r));
	if (!r)
		return weir_err_set("out of memory"), NULL;
	r->job = job;
	r->start_ms = wall_ms();
	const char *names[job->plan.nv ? job->plan.nv : 1];
	uint32_t par[job->plan.nv ? job->plan.nv : 1];
	for (int v = 0; v < job->plan.nv; v++) {
		names[v] = job->env->nodes[job->plan.v[v].nodes[0]]->name;
		par[v] = (uint32_t)job->plan.v[v].parallelism;
	}
	if (weir_series_init(&r->series, (uint32_t)job->plan.nv, names, par) < 0 ||
	    !(r->buf = calloc(r->series.n ? r->series.n : 1, sizeof(*r->buf))) ||
	    (job->cfg.latency_interval_ms &&
	     !(r->lat = calloc((size_t)r->series.n * WEIR_HISTO_BUCKETS + 1, sizeof(uint64_t))))) {
		weir_series_free(&r->series);
		free(r->buf);
		free(r);
		return weir_err_set("out of memory"), NULL;
	}
	weir_series_start(&r->series, job->start_real_ns); /* every counter was 0 then */
	struct weir_http_config c = { .port = (uint16_t)port };
	if (!(r->http = weir_http_start(&c, on_request, r))) {
		weir_series_free(&r->series);
		free(r->buf);
		free(r->lat);
		free(r);
		return NULL;
	}
	fprintf(stderr, "weir: REST API on http://127.0.0.1:%u/\n", weir_http_port(r->http));
	return r;
}

void weir_local_rest_stop(struct local_rest *r)
{
	if (!r)
		return;
	weir_http_stop(r->http);
	weir_series_free(&r->series);
	free(r->buf);
	free(r->lat);
	free(r);
}
