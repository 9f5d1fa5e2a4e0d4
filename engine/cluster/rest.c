/*
 * engine/cluster/rest.c - the JobManager's REST API (rest.h).
 */
#include "cluster/rest.h"
#include "cluster/jm.h"
#include "runtime/ckjson.h"
#include "metrics/web.h"
#include "metrics/metrics.h"
#include "net/http.h"
#include "base/err.h"

#include <weir/weir.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct rest {
	struct weir_http *http;
	bool wide;		/* bound beyond loopback: every request shows the token */
	char token[WEIR_REST_TOKEN_LEN + 1];
};

#define LOG_TAIL (64u << 10)	/* the bytes of a log a request gets: its end */

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

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const struct tmrec *tm_by_id(uint32_t id)
{
	for (int i = 0; i < MAX_TMS; i++)
		if (jm.tms[i].live && jm.tms[i].id == id)
			return &jm.tms[i];
	return NULL;
}

/* metrics.h's host callback: a TaskManager's host, "?" once it is gone */
static const char *tm_host(uint32_t tm, void *arg)
{
	(void)arg;
	const struct tmrec *t = tm_by_id(tm);
	return t ? t->host : "?";
}

static int busy_slots(const struct tmrec *t)
{
	int busy = 0;
	for (uint32_t s = 0; s < t->slots && s < 1024; s++)
		busy += t->busy[s];
	return busy;
}

static bool job_live(const struct jobrec *j) { return j->used && !j->end_ms; }

static json_t *overview(void)
{
	int tms = 0, slots = 0, busy = 0, by[8] = { 0 };
	for (int i = 0; i < MAX_TMS; i++) {
		const struct tmrec *t = &jm.tms[i];
		if (!t->live)
			continue;
		tms++;
		slots += (int)t->slots;
		busy += busy_slots(t);
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
			 "weir-version", "0.1.0", "cluster-id", weir_json_str(jm.cluster_id));
}

/* A job's vertices (the job graph its client sent), each with its figures
 * from the TaskManagers' reports. */
static json_t *vertices(const struct jobrec *j)
{
	static const char *const rates[] = { "read-records-per-second", "write-records-per-second",
					     "read-bytes-per-second", "write-bytes-per-second", "busy-ratio",
					     "backpressured-ratio", "idle-ratio" };
	json_t *a = json_array();
	for (uint32_t v = 0; a && v < j->metrics.nv; v++) {
		char id[16];
		snprintf(id, sizeof(id), "%u", v);
		json_t *m = weir_metrics_vertex_json(&j->metrics, v);
		for (size_t k = 0; m && !job_live(j) && k < sizeof(rates) / sizeof(rates[0]); k++)
			json_object_del(m, rates[k]); /* over: totals only */
		json_array_append_new(a, json_pack("{s:s,s:o,s:i,s:s,s:o}", "id", id, "name",
						   weir_json_str(j->metrics.names[v]), "parallelism",
						   (int)j->metrics.par[v], "status", state_name(j->state), "metrics", m));
	}
	return a;
}

/* The job graph's edges, from the SubmitJob every attempt deploys (Flink's
 * "plan"; its clients before edges were sent have none). */
static json_t *plan(const struct jobrec *j)
{
	json_t *a = json_array();
	Weir__Ctl__SubmitJob *sj = j->sub ? weir__ctl__submit_job__unpack(NULL, j->sublen, j->sub) : NULL;
	for (size_t i = 0; a && sj && sj->graph && i < sj->graph->n_edges; i++) {
		const Weir__Ctl__Edge *e = sj->graph->edges[i];
		const char *ship = e->partitioning == WEIR__CTL__PARTITIONING__PART_HASH ? "HASH"
				 : e->partitioning == WEIR__CTL__PARTITIONING__PART_REBALANCE ? "REBALANCE"
				 : e->partitioning == WEIR__CTL__PARTITIONING__PART_BROADCAST ? "BROADCAST" : "FORWARD";
		char src[16], dst[16];
		snprintf(src, sizeof(src), "%u", e->source);
		snprintf(dst, sizeof(dst), "%u", e->target);
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:i}", "source", src, "target", dst, "ship_strategy",
						   ship, "side_output", (int)e->source_output));
	}
	if (sj)
		weir__ctl__submit_job__free_unpacked(sj, NULL);
	return json_pack("{s:o}", "edges", a);
}

static json_t *job_summary(const struct jobrec *j, bool details)
{
	char id[24];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)j->id);
	uint64_t end = j->end_ms ? j->end_ms : 0, now = now_ms();
	int64_t dur = (int64_t)((end ? end : now) - j->start_ms);
	json_t *o = json_pack("{s:s,s:o,s:s,s:I,s:I,s:I,s:i}", "jid", id, "name", weir_json_str(j->name), "state",
			      state_name(j->state), "start-time", (json_int_t)j->start_ms, "end-time",
			      end ? (json_int_t)end : (json_int_t)-1, "duration", (json_int_t)dur, "restarts",
			      (int)j->attempt);
	if (!o)
		return NULL;
	if (j->message[0])
		json_object_set_new(o, "failure-cause", weir_json_str(j->message));
	json_object_set_new(o, "tasks", json_pack("{s:i}", "vertices", (int)j->metrics.nv));
	if (details) {
		json_object_set_new(o, "vertices", vertices(j));
		json_object_set_new(o, "plan", plan(j));
	}
	return o;
}

static struct jobrec *find_job(const char *id, size_t len)
{
	if (!len || len > 20 || id[0] < '0' || id[0] > '9') /* no blanks, signs, or more digits than a u64 */
		return NULL;
	unsigned long long n = 0;
	for (size_t i = 0; i < len; i++) {
		if (id[i] < '0' || id[i] > '9')
			return NULL;
		n = n * 10 + (unsigned)(id[i] - '0');
	}
	for (int i = 0; i < MAX_JOBS; i++)
		if (jm.jobs[i].used && jm.jobs[i].id == n)
			return &jm.jobs[i];
	return NULL;
}

static json_t *tm_json(const struct tmrec *t)
{
	char id[16];
	snprintf(id, sizeof(id), "%u", t->id);
	json_t *o = json_pack("{s:s,s:o,s:i,s:i,s:i,s:i,s:{s:o,s:i,s:i,s:i}}", "id", id, "host", weir_json_str(t->host),
			      "pid", (int)t->pid, "slotsNumber", (int)t->slots, "freeSlots", (int)t->slots - busy_slots(t),
			      "numaNode", (int)t->numa_node, "pool", "name", weir_json_str(t->pool), "segments",
			      (int)t->segments, "segmentSize", (int)t->segment_size, "freeSegments", (int)t->pool_free);
	if (o && t->cpu_prev_at_ns && t->cpu_at_ns > t->cpu_prev_at_ns && t->cpu_ns >= t->cpu_prev_ns)
		json_object_set_new(o, "cpuLoad", json_real((double)(t->cpu_ns - t->cpu_prev_ns) /
							     (double)(t->cpu_at_ns - t->cpu_prev_at_ns)));
	return o;
}

static json_t *taskmanagers(void)
{
	json_t *a = json_array();
	for (int i = 0; a && i < MAX_TMS; i++)
		if (jm.tms[i].live)
			json_array_append_new(a, tm_json(&jm.tms[i]));
	return json_pack("{s:o}", "taskmanagers", a);
}

/* --- checkpoints and exceptions --- */

static json_t *exceptions(const struct jobrec *j)
{
	json_t *entries = json_array();
	uint32_t n = j->nexc < JM_EXCEPTIONS ? j->nexc : JM_EXCEPTIONS;
	for (uint32_t k = 0; entries && k < n; k++) { /* newest first */
		const struct exc *e = &j->exc[(j->nexc - 1 - k) % JM_EXCEPTIONS];
		json_array_append_new(entries, json_pack("{s:s,s:o,s:I,s:i}", "exceptionName", "JobFailure", "stacktrace",
							 weir_json_str(e->msg), "timestamp", (json_int_t)e->ms,
							 "attempt", (int)e->attempt));
	}
	json_t *o = json_pack("{s:{s:o,s:b}}", "exceptionHistory", "entries", entries, "truncated", j->nexc > n);
	if (o && n) {
		const struct exc *e = &j->exc[(j->nexc - 1) % JM_EXCEPTIONS];
		json_object_set_new(o, "root-exception", weir_json_str(e->msg));
		json_object_set_new(o, "timestamp", json_integer((json_int_t)e->ms));
	}
	return o;
}

/* --- logs --- */

/* The last LOG_TAIL bytes of the run folder's file name, as text. */
static void log_tail(struct weir_http_resp *r, const char *name)
{
	char path[PATH_MAX];
	weir_rundir_path(&jm.rd, name, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		weir_json_error(r, 404, "no log %s here (a TaskManager on another host keeps its own)", name);
		return;
	}
	size_t want = st.st_size > (off_t)LOG_TAIL ? LOG_TAIL : (size_t)st.st_size;
	char *buf = malloc(want + 1);
	ssize_t got = buf ? pread(fd, buf, want, st.st_size - (off_t)want) : -1;
	close(fd);
	if (got < 0) {
		free(buf);
		weir_json_error(r, 500, "reading %s: %s", name, strerror(errno));
		return;
	}
	r->status = 200;
	r->body = buf;
	r->len = (size_t)got;
	r->type = "text/plain; charset=utf-8";
}

/* --- Prometheus --- */

static void prom_job_gauge(FILE *f, const char *fam, const char *help, const char *type,
			   double (*get)(const struct jobrec *j))
{
	bool said = false;
	for (int i = 0; i < MAX_JOBS; i++) {
		const struct jobrec *j = &jm.jobs[i];
		if (!j->used)
			continue;
		if (!said)
			weir_prom_family(f, fam, type, help);
		said = true;
		fprintf(f, "%s{job_id=\"%llu\",job_name=\"", fam, (unsigned long long)j->id);
		weir_prom_label(f, j->name);
		fprintf(f, "\"} %.17g\n", get(j));
	}
}

static double g_uptime(const struct jobrec *j) { return job_live(j) ? (double)(now_ms() - j->start_ms) : 0; }
/* Flink's downtime: while a job recovers (restarting, or its new attempt
 * not running yet), the time since it failed; else 0 */
static double g_downtime(const struct jobrec *j)
{
	bool down = job_live(j) && j->nexc && (j->restarting || j->state != WEIR__CTL__JOB_STATE__JOB_RUNNING);
	return down ? (double)(now_ms() - j->exc[(j->nexc - 1) % JM_EXCEPTIONS].ms) : 0;
}
static double g_running(const struct jobrec *j) { return j->state == WEIR__CTL__JOB_STATE__JOB_RUNNING; }
static double g_restarts(const struct jobrec *j) { return j->attempt; }
static double g_ck_done(const struct jobrec *j) { return (double)j->ck.completed; }
static double g_ck_failed(const struct jobrec *j) { return (double)j->ck.aborted; }
static double g_ck_pending(const struct jobrec *j) { return j->ck_on && j->ck.pending ? 1 : 0; }
static const struct ck_record *last_ok(const struct jobrec *j)
{
	uint64_t n = j->ck.nhistory < CK_HISTORY ? j->ck.nhistory : CK_HISTORY;
	for (uint64_t k = 0; k < n; k++) {
		const struct ck_record *r = &j->ck.history[(j->ck.nhistory - 1 - k) % CK_HISTORY];
		if (r->ok)
			return r;
	}
	return NULL;
}
static double g_ck_dur(const struct jobrec *j) { const struct ck_record *r = last_ok(j); return r ? (double)(r->duration_ns / 1000000u) : 0; }
static double g_ck_size(const struct jobrec *j) { const struct ck_record *r = last_ok(j); return r ? (double)r->bytes : 0; }
static double g_ck_inflight(const struct jobrec *j) { const struct ck_record *r = last_ok(j); return r ? (double)r->inflight : 0; }

static void prom_write(FILE *f, void *arg)
{
	(void)arg;
	int tms = 0, slots = 0, busy = 0, running = 0;
	for (int i = 0; i < MAX_TMS; i++)
		if (jm.tms[i].live) {
			tms++;
			slots += (int)jm.tms[i].slots;
			busy += busy_slots(&jm.tms[i]);
		}
	for (int i = 0; i < MAX_JOBS; i++)
		running += job_live(&jm.jobs[i]);
	weir_prom_family(f, "weir_jobmanager_numRegisteredTaskManagers", "gauge", "TaskManagers registered.");
	fprintf(f, "weir_jobmanager_numRegisteredTaskManagers %d\n", tms);
	weir_prom_family(f, "weir_jobmanager_taskSlotsTotal", "gauge", "Task slots of all TaskManagers.");
	fprintf(f, "weir_jobmanager_taskSlotsTotal %d\n", slots);
	weir_prom_family(f, "weir_jobmanager_taskSlotsAvailable", "gauge", "Task slots free.");
	fprintf(f, "weir_jobmanager_taskSlotsAvailable %d\n", slots - busy);
	weir_prom_family(f, "weir_jobmanager_numRunningJobs", "gauge", "Jobs not ended.");
	fprintf(f, "weir_jobmanager_numRunningJobs %d\n", running);
	prom_job_gauge(f, "weir_job_uptime", "Milliseconds since the job was submitted (0 once it ended).", "gauge", g_uptime);
	prom_job_gauge(f, "weir_job_downtime", "Milliseconds since the job failed, while it recovers (0 otherwise).", "gauge", g_downtime);
	prom_job_gauge(f, "weir_job_running", "1 while the job's state is RUNNING.", "gauge", g_running);
	prom_job_gauge(f, "weir_job_numRestarts", "Restarts of the job so far.", "counter", g_restarts);
	prom_job_gauge(f, "weir_job_numberOfCompletedCheckpoints", "Checkpoints and savepoints completed.", "counter", g_ck_done);
	prom_job_gauge(f, "weir_job_numberOfFailedCheckpoints", "Checkpoints and savepoints aborted.", "counter", g_ck_failed);
	prom_job_gauge(f, "weir_job_numberOfInProgressCheckpoints", "Checkpoints in flight (0 or 1).", "gauge", g_ck_pending);
	prom_job_gauge(f, "weir_job_lastCheckpointDuration", "Milliseconds the last complete checkpoint took.", "gauge", g_ck_dur);
	prom_job_gauge(f, "weir_job_lastCheckpointSize", "Bytes of the last complete checkpoint.", "gauge", g_ck_size);
	prom_job_gauge(f, "weir_job_lastCheckpointPersistedData", "Bytes of in-flight data in the last complete checkpoint.", "gauge", g_ck_inflight);
	struct weir_prom_job pj[MAX_JOBS];
	char ids[MAX_JOBS][24];
	int n = 0;
	for (int i = 0; i < MAX_JOBS; i++)
		if (job_live(&jm.jobs[i]) || jm.jobs[i].used) {
			snprintf(ids[n], sizeof(ids[n]), "%llu", (unsigned long long)jm.jobs[i].id);
			pj[n] = (struct weir_prom_job){ .id = ids[n], .name = jm.jobs[i].name, .s = &jm.jobs[i].metrics,
							.host = tm_host };
			n++;
		}
	weir_prom_tasks(f, pj, n);
	const char *fams[] = { "weir_taskmanager_slots", "weir_taskmanager_slotsFree", "weir_taskmanager_poolSegments",
			       "weir_taskmanager_poolSegmentsFree", "weir_taskmanager_cpuLoad" };
	const char *helps[] = { "Task slots.", "Task slots free.", "Segments of its memory pool.",
				"Free segments of its memory pool.", "CPU seconds a second its process used." };
	for (int k = 0; k < 5; k++) {
		weir_prom_family(f, fams[k], "gauge", helps[k]);
		for (int i = 0; i < MAX_TMS; i++) {
			const struct tmrec *t = &jm.tms[i];
			if (!t->live)
				continue;
			double x = k == 0 ? t->slots : k == 1 ? (double)t->slots - busy_slots(t)
				 : k == 2 ? (double)t->segments : k == 3 ? (double)t->pool_free : -1.0;
			if (k == 4) {
				if (!t->cpu_prev_at_ns || t->cpu_at_ns <= t->cpu_prev_at_ns || t->cpu_ns < t->cpu_prev_ns)
					continue;
				x = (double)(t->cpu_ns - t->cpu_prev_ns) / (double)(t->cpu_at_ns - t->cpu_prev_at_ns);
			}
			fprintf(f, "%s{tm_id=\"%u\",host=\"", fams[k], t->id);
			weir_prom_label(f, t->host);
			fprintf(f, "\"} %.17g\n", x);
		}
	}
}

/* --- actions --- */

static bool queue(const struct rest_action *a)
{
	if (jm.nactions >= MAX_REST_ACTIONS)
		return false;
	jm.actions[jm.nactions++] = *a;
	return true;
}

/* POST /jobs/:id/savepoints or /stop, body {"target-directory": DIR,
 * "cancel-job": bool} (or stop's {"targetDirectory": DIR}): a request id
 * to poll at /jobs/:id/savepoints/:rid. */
static void savepoint_post(struct jobrec *j, const struct weir_http_req *q, bool stop, struct weir_http_resp *r)
{
	json_error_t e;
	json_t *b = json_loadb((const char *)q->body, q->body_len, 0, &e);
	const char *dir = NULL;
	int cancel = 0;
	if (!b || json_unpack(b, "{s?s,s?s,s?b}", "target-directory", &dir, "targetDirectory", &dir, "cancel-job",
			      &cancel) < 0 || !dir) {
		json_decref(b);
		weir_json_error(r, 400, "the body must be JSON with \"%s\": an absolute folder",
				stop ? "targetDirectory" : "target-directory");
		return;
	}
	if (dir[0] != '/' || strlen(dir) >= PATH_MAX - 160) {
		json_decref(b);
		weir_json_error(r, 400, "the savepoint folder must be an absolute path, shorter than %d bytes", PATH_MAX - 160);
		return;
	}
	if (!job_live(j) || !j->ck_on) {
		json_decref(b);
		weir_json_error(r, 409, "job %llu %s", (unsigned long long)j->id,
				!job_live(j) ? "is not running" : "runs without checkpoints (submit it with --checkpoint-interval)");
		return;
	}
	struct rest_action a = { .kind = RA_SAVEPOINT, .job = j->id, .trigger = ++jm.next_trigger, .stop = stop || cancel };
	snprintf(a.dir, sizeof(a.dir), "%s", dir);
	json_decref(b);
	if (!queue(&a)) {
		weir_json_error(r, 503, "too many requests waiting; try again");
		return;
	}
	j->sp_op.trigger = a.trigger;
	j->sp_op.status = SP_OP_IN_PROGRESS;
	j->sp_op.result[0] = '\0';
	char rid[24];
	snprintf(rid, sizeof(rid), "%llu", (unsigned long long)a.trigger);
	weir_json_reply(r, 202, json_pack("{s:s}", "request-id", rid));
}

static void savepoint_status(const struct jobrec *j, const char *rid, struct weir_http_resp *r)
{
	char want[24];
	snprintf(want, sizeof(want), "%llu", (unsigned long long)j->sp_op.trigger);
	if (!j->sp_op.trigger || strcmp(rid, want)) {
		weir_json_error(r, 404, "no savepoint request %s of job %llu", rid, (unsigned long long)j->id);
		return;
	}
	const char *st = j->sp_op.status == SP_OP_IN_PROGRESS ? "IN_PROGRESS" : "COMPLETED";
	json_t *op = j->sp_op.status == SP_OP_COMPLETED ? json_pack("{s:o}", "location", weir_json_str(j->sp_op.result))
		   : j->sp_op.status == SP_OP_FAILED ? json_pack("{s:o}", "failure-cause", weir_json_str(j->sp_op.result))
						     : json_null();
	weir_json_reply(r, 200, json_pack("{s:{s:s},s:o}", "status", "id", st, "operation", op));
}

/* --- routing --- */

static bool method(const struct weir_http_req *q, struct weir_http_resp *r, const char *allow)
{
	/* allow: "GET", "PATCH", "POST" or "GET, PATCH" */
	const char *m = q->method;
	size_t n = strlen(m);
	for (const char *p = allow; (p = strstr(p, m)); p += n)
		if ((p == allow || p[-2] == ',') && (p[n] == '\0' || p[n] == ','))
			return true;
	r->allow = allow;
	weir_json_error(r, 405, "%s takes %s", q->path, allow);
	return false;
}

/* /jobs/:id[/...]: rest is what follows the id ("" or "/..."). */
/* Who asks: through HTTP (wide: bound beyond loopback; token: what an
 * action must show), or trusted (over the control protocol: authenticated
 * with the secret itself). */
struct asker {
	bool wide, trusted;
	const char *token;
};

static bool may_act(const struct asker *a, const struct weir_http_req *q)
{
	return a->trusted || (a->token && weir_auth_rest_ok(a->token, q->auth));
}

static void job_route(const struct asker *api, struct jobrec *j, const char *rest, const struct weir_http_req *q,
		      struct weir_http_resp *r)
{
	char sub[64];
	if (!*rest) {
		if (!method(q, r, "GET, PATCH"))
			return;
		if (!strcmp(q->method, "GET")) {
			weir_json_reply(r, 200, job_summary(j, true));
			return;
		}
		/* PATCH: cancel (Flink's; ?mode=cancel is all there is) */
		if (!may_act(api, q)) {
			weir_json_error(r, 401, "cancelling a job needs the cluster's token (Authorization: Bearer ..., "
						"`weir cluster dashboard` prints it)");
			return;
		}
		if (!job_live(j)) {
			weir_json_error(r, 409, "job %llu is not running", (unsigned long long)j->id);
			return;
		}
		struct rest_action a = { .kind = RA_CANCEL, .job = j->id };
		if (!queue(&a))
			weir_json_error(r, 503, "too many requests waiting; try again");
		else
			weir_json_reply(r, 202, json_object());
		return;
	}
	if (!strncmp(rest, "/vertices/", 10)) {
		if (!method(q, r, "GET"))
			return;
		weir_metrics_vertex_reply(r, q->path, &j->metrics, rest + 10, now_ms(), tm_host, NULL);
		return;
	}
	if (!strcmp(rest, "/checkpoints") || !strcmp(rest, "/exceptions")) {
		if (method(q, r, "GET"))
			weir_json_reply(r, 200, rest[1] == 'c' ? weir_ck_history_json(&j->ck, j->ck_on, j->restored, j->attempt)
							  : exceptions(j));
		return;
	}
	if (sscanf(rest, "/checkpoints/details/%63s", sub) == 1) {
		if (!method(q, r, "GET"))
			return;
		json_t *o = weir_ck_detail_json(&j->ck, j->ck_on, sub, &j->metrics);
		if (o)
			weir_json_reply(r, 200, o);
		else
			weir_json_error(r, 404, "no checkpoint %s of job %llu in its history", sub, (unsigned long long)j->id);
		return;
	}
	if (!strcmp(rest, "/savepoints") || !strcmp(rest, "/stop")) {
		if (!method(q, r, "POST"))
			return;
		if (!may_act(api, q)) {
			weir_json_error(r, 401, "savepoints and stops need the cluster's token (Authorization: Bearer ..., "
						"`weir cluster dashboard` prints it)");
			return;
		}
		savepoint_post(j, q, rest[1] == 's' && rest[2] == 't', r);
		return;
	}
	if (sscanf(rest, "/savepoints/%23s", sub) == 1) {
		if (method(q, r, "GET"))
			savepoint_status(j, sub, r);
		return;
	}
	weir_json_error(r, 404, "not found: %s", q->path);
}

/* Route a request. Holding jm.lock: the state is at rest. */
static void route(const struct asker *api, const struct weir_http_req *q, struct weir_http_resp *r)
{
	const char *p = q->path;
	if (weir_web_serve(q, r))
		return;
	if (api->wide && !may_act(api, q)) {
		weir_json_error(r, 401, "this API is bound beyond loopback: every request needs the cluster's token "
					"(Authorization: Bearer ...)");
		return;
	}
	if (!strcmp(p, "/overview") || !strcmp(p, "/config") || !strcmp(p, "/jobs") || !strcmp(p, "/jobs/overview") ||
	    !strcmp(p, "/taskmanagers") || !strcmp(p, "/metrics") || !strcmp(p, "/jobmanager/logs")) {
		if (!method(q, r, "GET"))
			return;
		if (!strcmp(p, "/overview"))
			weir_json_reply(r, 200, overview());
		else if (!strcmp(p, "/config"))
			weir_json_reply(r, 200, json_pack("{s:i,s:s,s:s}", "refresh-interval", 1000, "timezone-name", "UTC",
							  "weir-version", "0.1.0"));
		else if (!strcmp(p, "/taskmanagers"))
			weir_json_reply(r, 200, taskmanagers());
		else if (!strcmp(p, "/metrics"))
			weir_prom_reply(r, prom_write, NULL);
		else if (!strcmp(p, "/jobmanager/logs"))
			log_tail(r, "jobmanager.log");
		else {
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
			weir_json_reply(r, 200, json_pack("{s:o}", "jobs", a));
		}
		return;
	}
	if (!strncmp(p, "/jobs/", 6)) {
		const char *id = p + 6, *slash = strchr(id, '/');
		size_t len = slash ? (size_t)(slash - id) : strlen(id);
		struct jobrec *j = find_job(id, len);
		if (!j) {
			weir_json_error(r, 404, "no job %.*s", (int)(len > 40 ? 40 : len), id);
			return;
		}
		job_route(api, j, id + len, q, r);
		return;
	}
	if (!strncmp(p, "/taskmanagers/", 14)) {
		char *end = (char *)p + 14;
		unsigned long n = *end >= '0' && *end <= '9' ? strtoul(end, &end, 10) : ULONG_MAX;
		const struct tmrec *t = n <= UINT32_MAX ? tm_by_id((uint32_t)n) : NULL;
		if (!t || (*end && strcmp(end, "/logs"))) {
			weir_json_error(r, 404, "%s: %s", t ? "not found" : "no such taskmanager", p);
			return;
		}
		if (!method(q, r, "GET"))
			return;
		if (*end) {
			char name[48];
			snprintf(name, sizeof(name), "taskmanager-%u.log", t->id);
			log_tail(r, name);
		} else {
			weir_json_reply(r, 200, tm_json(t));
		}
		return;
	}
	weir_json_error(r, 404, "not found: %s", p);
}

static void on_request(void *arg, const struct weir_http_req *q, struct weir_http_resp *r)
{
	const struct rest *api = arg;
	struct asker a = { .wide = api->wide, .token = api->token };
	pthread_mutex_lock(&jm.lock);
	route(&a, q, r);
	pthread_mutex_unlock(&jm.lock);
}

void weir_rest_call(const struct weir_http_req *q, struct weir_http_resp *r)
{
	struct asker a = { .trusted = true };
	route(&a, q, r);
}

struct rest *weir_rest_start(const char *addr, uint16_t port, const struct weir_auth_secret *secret)
{
	struct rest *r = calloc(1, sizeof(*r));
	if (!r)
		return weir_err_set("out of memory"), NULL;
	if (weir_auth_rest_token(secret, r->token) < 0) {
		free(r);
		return NULL;
	}
	r->wide = addr && strcmp(addr, "127.0.0.1") && strcmp(addr, "localhost") && strcmp(addr, "::1");
	struct weir_http_config c = { .addr = addr, .port = port };
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
	explicit_bzero(r->token, sizeof(r->token));
	free(r);
}
