/*
 * engine/runtime/localrest.c - weir local's REST API (localrest.h).
 */
#include "runtime/localrest.h"
#include "runtime/internal.h"
#include "net/http.h"
#include "base/clock.h"
#include "base/err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct local_rest {
	struct job *job;
	struct weir_http *http;
	uint64_t start_ms;	/* wall clock, for start-time */
};

static uint64_t load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

static int reply(struct weir_http_resp *r, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	r->status = s ? status : 500;
	r->body = s ? s : strdup("{\"errors\":[\"out of memory\"]}");
	r->len = r->body ? strlen(r->body) : 0;
	return 0;
}

static int fail(struct weir_http_resp *r, int status, const char *msg)
{
	return reply(r, status, json_pack("{s:[s]}", "errors", msg));
}

/* Vertex v's figures: its subtasks' records and shares of the time since
 * the start. */
static json_t *vertex(const struct job *job, const struct vertex *v, uint64_t now)
{
	uint64_t in = 0, out = 0, busy = 0, blocked = 0;
	for (int i = 0; i < job->nsub; i++) {
		const struct subtask *st = &job->subtasks[i];
		if (st->v != v || !st->nops)
			continue;
		in += load(&st->ops[0].records_in);
		out += load(&st->ops[st->nops - 1].records_out);
		uint64_t b, k;
		weir_task_times(&st->task, now, &b, &k);
		busy += b;
		blocked += k;
	}
	double wall = (double)(now - job->start_real_ns) * (v->parallelism ? v->parallelism : 1);
	char id[16];
	snprintf(id, sizeof(id), "%d", v->id);
	const char *name = job->env->nodes[v->nodes[0]]->name;
	json_t *n = json_string(name);
	return json_pack("{s:s,s:o,s:i,s:{s:I,s:I,s:f,s:f}}", "id", id, "name", n ? n : json_string("?"),
			 "parallelism", v->parallelism, "metrics", "read-records", (json_int_t)in, "write-records",
			 (json_int_t)out, "busy-ratio", wall > 0 ? (double)busy / wall : 0.0, "backpressured-ratio",
			 wall > 0 ? (double)blocked / wall : 0.0);
}

static json_t *job_json(const struct local_rest *r, bool details)
{
	const struct job *job = r->job;
	uint64_t now = weir_real_now_ns();
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:{s:i}}", "jid", "local", "name", "local", "state",
			      "RUNNING", "start-time", (json_int_t)r->start_ms, "end-time", (json_int_t)-1, "duration",
			      (json_int_t)((now - job->start_real_ns) / 1000000u), "tasks", "vertices", job->plan.nv);
	if (o && details) {
		json_t *a = json_array();
		for (int v = 0; a && v < job->plan.nv; v++)
			json_array_append_new(a, vertex(job, &job->plan.v[v], now));
		json_object_set_new(o, "vertices", a);
	}
	return o;
}

static void on_request(void *arg, const struct weir_http_req *q, struct weir_http_resp *r)
{
	struct local_rest *lr = arg;
	const char *p = q->path;
	bool known = !strcmp(p, "/overview") || !strcmp(p, "/jobs") || !strcmp(p, "/jobs/overview") ||
		     !strcmp(p, "/jobs/local");
	if (!known) {
		fail(r, 404, !strncmp(p, "/jobs/", 6) ? "no such job (this one is 'local')" : "not found");
		return;
	}
	if (strcmp(q->method, "GET")) {
		r->allow = "GET";
		fail(r, 405, "GET only");
		return;
	}
	if (!strcmp(p, "/overview"))
		reply(r, 200, json_pack("{s:i,s:i,s:i,s:i,s:i,s:s}", "taskmanagers", 0, "jobs-running", 1, "jobs-finished",
					0, "jobs-cancelled", 0, "jobs-failed", 0, "weir-version", "0.1.0"));
	else if (!strcmp(p, "/jobs"))
		reply(r, 200, json_pack("{s:[{s:s,s:s}]}", "jobs", "id", "local", "status", "RUNNING"));
	else if (!strcmp(p, "/jobs/overview"))
		reply(r, 200, json_pack("{s:[o]}", "jobs", job_json(lr, false)));
	else
		reply(r, 200, job_json(lr, true));
}

struct local_rest *weir_local_rest_start(struct job *job, int port)
{
	struct local_rest *r = calloc(1, sizeof(*r));
	if (!r)
		return weir_err_set("out of memory"), NULL;
	r->job = job;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	r->start_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	struct weir_http_config c = { .port = (uint16_t)port };
	if (!(r->http = weir_http_start(&c, on_request, r))) {
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
	free(r);
}
