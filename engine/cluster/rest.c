/*
 * engine/cluster/rest.c - the JobManager's REST API (rest.h).
 */
#include "cluster/rest.h"
#include "cluster/jm.h"
#include "net/http.h"
#include "base/err.h"

#include <weir/weir.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rest {
	struct weir_http *http;
};

static const char *state_name(Weir__Ctl__JobState s)
{
	switch (s) {
	case WEIR__CTL__JOB_STATE__JOB_CREATED: return "CREATED";
	case WEIR__CTL__JOB_STATE__JOB_RUNNING: return "RUNNING";
	case WEIR__CTL__JOB_STATE__JOB_FINISHED: return "FINISHED";
	case WEIR__CTL__JOB_STATE__JOB_FAILED: return "FAILED";
	case WEIR__CTL__JOB_STATE__JOB_CANCELING: return "CANCELLING";
	case WEIR__CTL__JOB_STATE__JOB_CANCELED: return "CANCELED";
	case WEIR__CTL__JOB_STATE__JOB_RESTARTING: return "RESTARTING";
	default: return "UNKNOWN";
	}
}

/* A JSON string of s, which comes from users (job names, paths, error
 * messages) and may not be UTF-8: such bytes become '?', never a failed
 * answer. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	char *c = strdup(s);
	if (!c)
		return NULL;
	for (char *p = c; *p; p++)
		if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
			*p = '?';
	j = json_string(c);
	free(c);
	return j;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The answer: j's text (j is released), or 500 when it cannot be made.
 * 0, so that a route can return it. */
static int reply(struct weir_http_resp *r, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!s) {
		r->status = 500;
		r->body = strdup("{\"errors\":[\"out of memory\"]}");
		r->len = r->body ? strlen(r->body) : 0;
		return 0;
	}
	r->status = status;
	r->body = s;
	r->len = strlen(s);
	return 0;
}

/* An error: {"errors": [message]}, the message fmt with one string */
static int fail(struct weir_http_resp *r, int status, const char *fmt, const char *arg)
{
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, arg);
	return reply(r, status, json_pack("{s:[s]}", "errors", msg));
}

static json_t *overview(void)
{
	int tms = 0, slots = 0, busy = 0, by[8] = { 0 };
	for (int i = 0; i < MAX_TMS; i++) {
		const struct tmrec *t = &jm.tms[i];
		if (!t->live)
			continue;
		tms++;
		slots += (int)t->slots;
		for (uint32_t s = 0; s < t->slots && s < 1024; s++)
			busy += t->busy[s];
	}
	for (int i = 0; i < MAX_JOBS; i++)
		if (jm.jobs[i].used && jm.jobs[i].state < 8)
			by[jm.jobs[i].state]++;
	return json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:o}", "taskmanagers", tms, "slots-total", slots,
			 "slots-available", slots - busy, "jobs-running",
			 by[WEIR__CTL__JOB_STATE__JOB_RUNNING] + by[WEIR__CTL__JOB_STATE__JOB_CREATED] +
				 by[WEIR__CTL__JOB_STATE__JOB_RESTARTING] + by[WEIR__CTL__JOB_STATE__JOB_CANCELING],
			 "jobs-finished", by[WEIR__CTL__JOB_STATE__JOB_FINISHED], "jobs-cancelled",
			 by[WEIR__CTL__JOB_STATE__JOB_CANCELED], "jobs-failed", by[WEIR__CTL__JOB_STATE__JOB_FAILED],
			 "weir-version", "0.1.0", "cluster-id", jstr(jm.cluster_id));
}

/* A job's vertices, from the graph its client sent (the packed SubmitJob
 * every attempt deploys); an empty array when it has none. */
static json_t *vertices(const struct jobrec *j)
{
	json_t *a = json_array();
	Weir__Ctl__SubmitJob *sj = j->sub ? weir__ctl__submit_job__unpack(NULL, j->sublen, j->sub) : NULL;
	for (size_t i = 0; a && sj && sj->graph && i < sj->graph->n_vertices; i++) {
		const Weir__Ctl__Vertex *v = sj->graph->vertices[i];
		char id[24];
		snprintf(id, sizeof(id), "%u", v->id);
		json_array_append_new(a, json_pack("{s:s,s:o,s:i}", "id", id, "name", jstr(v->name), "parallelism",
						   (int)v->parallelism));
	}
	if (sj)
		weir__ctl__submit_job__free_unpacked(sj, NULL);
	return a;
}

static json_t *job_summary(const struct jobrec *j, bool details)
{
	char id[24];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)j->id);
	uint64_t end = j->end_ms ? j->end_ms : 0, now = now_ms();
	int64_t dur = (int64_t)((end ? end : now) - j->start_ms);
	json_t *o = json_pack("{s:s,s:o,s:s,s:I,s:I,s:I}", "jid", id, "name", jstr(j->name), "state", state_name(j->state),
			      "start-time", (json_int_t)j->start_ms, "end-time", end ? (json_int_t)end : (json_int_t)-1,
			      "duration", (json_int_t)dur);
	if (!o)
		return NULL;
	if (j->message[0])
		json_object_set_new(o, "failure-cause", jstr(j->message));
	json_t *v = vertices(j);
	if (details)
		json_object_set(o, "vertices", v);
	json_object_set_new(o, "tasks", json_pack("{s:i}", "vertices", (int)json_array_size(v)));
	json_decref(v);
	return o;
}

static const struct jobrec *find_job(const char *id)
{
	char *end;
	if (id[0] < '0' || id[0] > '9') /* strtoull would take blanks and signs */
		return NULL;
	unsigned long long n = strtoull(id, &end, 10);
	if (*end)
		return NULL;
	for (int i = 0; i < MAX_JOBS; i++)
		if (jm.jobs[i].used && jm.jobs[i].id == n)
			return &jm.jobs[i];
	return NULL;
}

static json_t *taskmanagers(void)
{
	json_t *a = json_array();
	for (int i = 0; a && i < MAX_TMS; i++) {
		const struct tmrec *t = &jm.tms[i];
		if (!t->live)
			continue;
		int busy = 0;
		for (uint32_t s = 0; s < t->slots && s < 1024; s++)
			busy += t->busy[s];
		char id[16];
		snprintf(id, sizeof(id), "%u", t->id);
		json_array_append_new(a, json_pack("{s:s,s:o,s:i,s:i,s:i,s:i,s:{s:o,s:i,s:i}}", "id", id, "host", jstr(t->host),
						   "pid", (int)t->pid, "slotsNumber", (int)t->slots, "freeSlots",
						   (int)t->slots - busy, "numaNode", (int)t->numa_node, "pool", "name",
						   jstr(t->pool), "segments", (int)t->segments, "segmentSize",
						   (int)t->segment_size));
	}
	return json_pack("{s:o}", "taskmanagers", a);
}

/* Route a request. Holding jm.lock: the state is at rest. */
static int route(const struct weir_http_req *q, struct weir_http_resp *r)
{
	const char *p = q->path;
	bool get = !strcmp(q->method, "GET");
	char rest[256];
	if (!strcmp(p, "/overview") || !strcmp(p, "/config") || !strcmp(p, "/jobs") || !strcmp(p, "/jobs/overview") ||
	    !strcmp(p, "/taskmanagers")) {
		if (!get) {
			r->allow = "GET";
			return fail(r, 405, "%s takes GET only", p);
		}
		if (!strcmp(p, "/overview"))
			return reply(r, 200, overview());
		if (!strcmp(p, "/config"))
			return reply(r, 200, json_pack("{s:i,s:s,s:s}", "refresh-interval", 1000, "timezone-name", "UTC",
						       "weir-version", "0.1.0"));
		if (!strcmp(p, "/taskmanagers"))
			return reply(r, 200, taskmanagers());
		bool ov = !strcmp(p, "/jobs/overview");
		json_t *a = json_array();
		for (int i = 0; a && i < MAX_JOBS; i++) {
			const struct jobrec *j = &jm.jobs[i];
			if (!j->used)
				continue;
			char id[24];
			snprintf(id, sizeof(id), "%llu", (unsigned long long)j->id);
			json_array_append_new(a, ov ? job_summary(j, false)
						    : json_pack("{s:s,s:s}", "id", id, "status", state_name(j->state)));
		}
		return reply(r, 200, json_pack("{s:o}", "jobs", a));
	}
	if (sscanf(p, "/jobs/%255[^/]", rest) == 1 && strlen(p) == 6 + strlen(rest)) {
		const struct jobrec *j = find_job(rest);
		if (!j)
			return fail(r, 404, "no job %s", rest);
		if (!get) {
			r->allow = "GET";
			return fail(r, 405, "/jobs/%s takes GET only", rest);
		}
		return reply(r, 200, job_summary(j, true));
	}
	return fail(r, 404, "not found: %s", p);
}

static void on_request(void *arg, const struct weir_http_req *q, struct weir_http_resp *r)
{
	(void)arg;
	pthread_mutex_lock(&jm.lock);
	route(q, r);
	pthread_mutex_unlock(&jm.lock);
}

struct rest *weir_rest_start(uint16_t port)
{
	struct rest *r = calloc(1, sizeof(*r));
	if (!r)
		return weir_err_set("out of memory"), NULL;
	struct weir_http_config c = { .port = port };
	if (!(r->http = weir_http_start(&c, on_request, r))) {
		free(r);
		return NULL;
	}
	return r;
}

uint16_t weir_rest_port(const struct rest *r) { return weir_http_port(r->http); }

void weir_rest_stop(struct rest *r)
{
	if (!r)
		return;
	weir_http_stop(r->http);
	free(r);
}
