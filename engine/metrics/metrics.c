/*
 * engine/metrics/metrics.c - series of subtask samples, and their JSON and
 * Prometheus renderings (metrics.h).
 */
#include "metrics/metrics.h"
#include "base/err.h"
#include "net/http.h"

#include <stdarg.h>

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BASE_GAP_NS 1000000000ull	/* rates over a second or more */

int weir_series_init(struct weir_series *s, uint32_t nv, const char *const *names, const uint32_t *par)
{
	memset(s, 0, sizeof(*s));
	uint32_t n = 0;
	for (uint32_t v = 0; v < nv; v++)
		n += par[v];
	s->names = calloc(nv ? nv : 1, sizeof(*s->names));
	s->par = calloc(nv ? nv : 1, sizeof(*s->par));
	s->cur = calloc(n ? n : 1, sizeof(*s->cur));
	s->prev = calloc(n ? n : 1, sizeof(*s->prev));
	if (!s->names || !s->par || !s->cur || !s->prev)
		goto oom;
	s->nv = nv;
	for (uint32_t v = 0; v < nv; v++) {
		if (!(s->names[v] = strdup(names[v])))
			goto oom;
		s->par[v] = par[v];
	}
	s->n = n;
	weir_series_reset(s);
	return 0;
oom:
	weir_series_free(s);
	return weir_err_set("out of memory");
}

void weir_series_free(struct weir_series *s)
{
	for (uint32_t v = 0; s->names && v < s->nv; v++)
		free(s->names[v]);
	free(s->names);
	free(s->par);
	free(s->cur);
	free(s->prev);
	free(s->lat_cur);
	free(s->lat_prev);
	memset(s, 0, sizeof(*s));
}

void weir_series_reset(struct weir_series *s)
{
	uint32_t i = 0;
	for (uint32_t v = 0; v < s->nv; v++)
		for (uint32_t k = 0; k < s->par[v]; k++, i++) {
			struct weir_task_sample z = { .vertex = v, .index = k, .wm_in = WEIR_METRICS_NO_WM,
						      .wm_out = WEIR_METRICS_NO_WM };
			s->cur[i] = z;
			s->prev[i] = z;
		}
	if (s->lat_cur) {
		memset(s->lat_cur, 0, sizeof(uint64_t) * WEIR_HISTO_BUCKETS * s->n);
		memset(s->lat_prev, 0, sizeof(uint64_t) * WEIR_HISTO_BUCKETS * s->n);
	}
}

void weir_series_start(struct weir_series *s, uint64_t at_ns)
{
	weir_series_reset(s);
	for (uint32_t i = 0; i < s->n; i++)
		s->cur[i].at_ns = at_ns;
}

uint32_t weir_series_first(const struct weir_series *s, uint32_t v)
{
	uint32_t i = 0;
	for (uint32_t k = 0; k < v && k < s->nv; k++)
		i += s->par[k];
	return v < s->nv ? i : s->n;
}

void weir_series_add(struct weir_series *s, const struct weir_task_sample *t)
{
	if (t->vertex >= s->nv || t->index >= s->par[t->vertex] || !t->at_ns)
		return;
	uint32_t i = weir_series_first(s, t->vertex) + t->index;
	struct weir_task_sample *c = &s->cur[i], *p = &s->prev[i];
	if (t->lat && !s->lat_cur) {
		s->lat_cur = calloc((size_t)s->n * WEIR_HISTO_BUCKETS, sizeof(uint64_t));
		s->lat_prev = calloc((size_t)s->n * WEIR_HISTO_BUCKETS, sizeof(uint64_t));
		if (!s->lat_cur || !s->lat_prev) { /* no latency figures, the rest stays */
			free(s->lat_cur);
			free(s->lat_prev);
			s->lat_cur = s->lat_prev = NULL;
		}
	}
	uint64_t *lc = s->lat_cur ? s->lat_cur + (size_t)i * WEIR_HISTO_BUCKETS : NULL;
	uint64_t *lp = s->lat_prev ? s->lat_prev + (size_t)i * WEIR_HISTO_BUCKETS : NULL;
	if (c->at_ns && (t->at_ns <= c->at_ns || t->records_in < c->records_in || t->records_out < c->records_out ||
			 t->busy_ns < c->busy_ns)) {
		/* an older sample, or the counters began again (a new attempt,
		 * another TaskManager's clock): no base for rates */
		p->at_ns = 0;
		if (lp)
			memset(lp, 0, sizeof(uint64_t) * WEIR_HISTO_BUCKETS);
	} else if (c->at_ns && (!p->at_ns || c->at_ns - p->at_ns >= BASE_GAP_NS || t->at_ns - c->at_ns >= BASE_GAP_NS)) {
		*p = *c;
		if (lp)
			memcpy(lp, lc, sizeof(uint64_t) * WEIR_HISTO_BUCKETS);
	}
	*c = *t;
	c->lat = NULL; /* the caller's; the series keeps its copy in lat_cur */
	if (lc && t->lat)
		memcpy(lc, t->lat, sizeof(uint64_t) * WEIR_HISTO_BUCKETS);
}

/* The latency histogram of subtasks [first, first + n) over the last
 * second or two (newest minus base), or since their start where there is
 * no base, into h; the count. */
static uint64_t latency_window(const struct weir_series *s, uint32_t first, uint32_t n, uint64_t *h)
{
	uint64_t total = 0;
	memset(h, 0, sizeof(uint64_t) * WEIR_HISTO_BUCKETS);
	for (uint32_t i = first; s->lat_cur && i < first + n; i++) {
		const uint64_t *c = s->lat_cur + (size_t)i * WEIR_HISTO_BUCKETS;
		const uint64_t *p = s->lat_prev + (size_t)i * WEIR_HISTO_BUCKETS;
		bool base = s->prev[i].at_ns != 0;
		for (unsigned b = 0; b < WEIR_HISTO_BUCKETS; b++) {
			uint64_t x = base && c[b] >= p[b] ? c[b] - p[b] : c[b];
			h[b] += x;
			total += x;
		}
	}
	return total;
}

/* The q-quantile of histogram h of count values, in ms. */
static double quantile_ms(const uint64_t *h, uint64_t count, double q)
{
	uint64_t want = q >= 1.0 ? count - 1 : (uint64_t)(q * (double)count), seen = 0;
	for (unsigned b = 0; b < WEIR_HISTO_BUCKETS; b++) {
		seen += h[b];
		if (seen > want)
			return weir_histo_value(b) / 1e6;
	}
	return weir_histo_value(WEIR_HISTO_BUCKETS - 1) / 1e6;
}

/* {"count", "p50", "p95", "p99", "max"} (ms) of subtasks [first, first + n),
 * or NULL when none of them has latency figures. */
static json_t *latency_json(const struct weir_series *s, uint32_t first, uint32_t n)
{
	uint64_t h[WEIR_HISTO_BUCKETS];
	uint64_t count = latency_window(s, first, n, h);
	if (!count)
		return NULL;
	return json_pack("{s:I,s:f,s:f,s:f,s:f}", "count", (json_int_t)count, "p50", quantile_ms(h, count, 0.5), "p95",
			 quantile_ms(h, count, 0.95), "p99", quantile_ms(h, count, 0.99), "max",
			 quantile_ms(h, count, 1.0));
}

static double per_s(uint64_t a, uint64_t b, double secs) { return a >= b ? (double)(a - b) / secs : 0.0; }

struct weir_task_rates weir_series_rates(const struct weir_series *s, uint32_t i)
{
	struct weir_task_rates r = { .valid = false };
	if (i >= s->n)
		return r;
	const struct weir_task_sample *c = &s->cur[i], *p = &s->prev[i];
	if (!c->at_ns || !p->at_ns || c->at_ns <= p->at_ns)
		return r;
	double secs = (double)(c->at_ns - p->at_ns) / 1e9;
	r.valid = true;
	r.records_in = per_s(c->records_in, p->records_in, secs);
	r.records_out = per_s(c->records_out, p->records_out, secs);
	r.bytes_in = per_s(c->bytes_in, p->bytes_in, secs);
	r.bytes_out = per_s(c->bytes_out, p->bytes_out, secs);
	r.busy_ms = fmin(1000.0, per_s(c->busy_ns, p->busy_ns, secs) / 1e6);
	r.backpressured_ms = fmin(1000.0 - r.busy_ms, per_s(c->backpressured_ns, p->backpressured_ns, secs) / 1e6);
	r.idle_ms = fmax(0.0, 1000.0 - r.busy_ms - r.backpressured_ms);
	return r;
}

/* --- JSON --- */

/* Event time that reads as milliseconds since 1970 after September 2001:
 * how far the watermark is behind the wall clock (ms); NAN for any other
 * (a job whose timestamps are not wall-clock time has no lag to show). */
static double wm_lag(int64_t wm)
{
	if (wm == WEIR_METRICS_NO_WM || wm < 1000000000000ll)
		return NAN;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6 - (double)wm;
}

static json_t *wm_value(int64_t wm)
{
	return wm == WEIR_METRICS_NO_WM ? json_null() : json_integer((json_int_t)wm);
}

/* A subtask's (or a sum's) metrics object. */
static json_t *metrics_obj(const struct weir_task_sample *c, const struct weir_task_rates *r, int64_t wm_in,
			   int64_t wm_out, double busy, double bp, double idle)
{
	json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "read-records", (json_int_t)c->records_in, "write-records",
			      (json_int_t)c->records_out, "read-bytes", (json_int_t)c->bytes_in, "write-bytes",
			      (json_int_t)c->bytes_out, "state-entries", (json_int_t)c->state_entries, "timers",
			      (json_int_t)c->timers);
	if (!o)
		return NULL;
	json_object_set_new(o, "accumulated-busy-time", json_integer((json_int_t)(c->busy_ns / 1000000u)));
	json_object_set_new(o, "accumulated-backpressured-time",
			    json_integer((json_int_t)(c->backpressured_ns / 1000000u)));
	json_object_set_new(o, "checkpoint-alignment-time", json_real((double)c->align_ns / 1e6));
	json_object_set_new(o, "in-pool-usage", json_real(c->in_pool));
	json_object_set_new(o, "out-pool-usage", json_real(c->out_pool));
	json_object_set_new(o, "current-input-watermark", wm_value(wm_in));
	json_object_set_new(o, "current-output-watermark", wm_value(wm_out));
	if (!isnan(wm_lag(wm_in)))
		json_object_set_new(o, "watermark-lag", json_real(wm_lag(wm_in)));
	if (r->valid) {
		json_object_set_new(o, "read-records-per-second", json_real(r->records_in));
		json_object_set_new(o, "write-records-per-second", json_real(r->records_out));
		json_object_set_new(o, "read-bytes-per-second", json_real(r->bytes_in));
		json_object_set_new(o, "write-bytes-per-second", json_real(r->bytes_out));
		json_object_set_new(o, "busy-ratio", json_real(busy));
		json_object_set_new(o, "backpressured-ratio", json_real(bp));
		json_object_set_new(o, "idle-ratio", json_real(idle));
	}
	return o;
}

static int64_t wm_min(int64_t a, int64_t b) { return a < b ? a : b; }

json_t *weir_metrics_vertex_json(const struct weir_series *s, uint32_t v)
{
	if (v >= s->nv)
		return NULL;
	uint32_t first = weir_series_first(s, v);
	struct weir_task_sample sum = { .at_ns = 0 };
	struct weir_task_rates rs = { .valid = true };
	double busy = 0, bp = 0, idle = 0;
	int64_t wi = INT64_MAX, wo = INT64_MAX;
	for (uint32_t i = first; i < first + s->par[v]; i++) {
		const struct weir_task_sample *c = &s->cur[i];
		struct weir_task_rates r = weir_series_rates(s, i);
		sum.records_in += c->records_in;
		sum.records_out += c->records_out;
		sum.bytes_in += c->bytes_in;
		sum.bytes_out += c->bytes_out;
		sum.busy_ns += c->busy_ns;
		sum.backpressured_ns += c->backpressured_ns;
		sum.state_entries += c->state_entries;
		sum.timers += c->timers;
		sum.in_pool += c->in_pool / s->par[v]; /* the mean over the subtasks */
		sum.align_ns = c->align_ns > sum.align_ns ? c->align_ns : sum.align_ns; /* the longest */
		sum.out_pool += c->out_pool / s->par[v];
		wi = wm_min(wi, c->wm_in);
		wo = wm_min(wo, c->wm_out);
		rs.valid &= r.valid;
		rs.records_in += r.records_in;
		rs.records_out += r.records_out;
		rs.bytes_in += r.bytes_in;
		rs.bytes_out += r.bytes_out;
		busy += r.busy_ms / 1000.0 / s->par[v];
		bp += r.backpressured_ms / 1000.0 / s->par[v];
		idle += r.idle_ms / 1000.0 / s->par[v];
	}
	json_t *o = metrics_obj(&sum, &rs, s->par[v] ? wi : WEIR_METRICS_NO_WM, s->par[v] ? wo : WEIR_METRICS_NO_WM, busy,
				bp, idle);
	json_t *lat = latency_json(s, first, s->par[v]);
	if (o && lat)
		json_object_set_new(o, "latency", lat);
	return o;
}

static json_t *subtask_metrics(const struct weir_series *s, uint32_t i)
{
	struct weir_task_rates r = weir_series_rates(s, i);
	const struct weir_task_sample *c = &s->cur[i];
	json_t *o = metrics_obj(c, &r, c->wm_in, c->wm_out, r.busy_ms / 1000.0, r.backpressured_ms / 1000.0,
				r.idle_ms / 1000.0);
	json_t *lat = latency_json(s, i, 1);
	if (o && lat)
		json_object_set_new(o, "latency", lat);
	return o;
}

json_t *weir_metrics_vertex_detail(const struct weir_series *s, uint32_t v, uint64_t now_ms,
				   const char *(*host)(uint32_t tm, void *arg), void *arg)
{
	if (v >= s->nv)
		return NULL;
	char id[16];
	snprintf(id, sizeof(id), "%u", v);
	json_t *subs = json_array();
	uint32_t first = weir_series_first(s, v);
	for (uint32_t i = first; subs && i < first + s->par[v]; i++) {
		const struct weir_task_sample *c = &s->cur[i];
		const char *h = host ? host(c->tm, arg) : "localhost";
		json_t *o = json_pack("{s:i,s:s,s:i,s:o}", "subtask", (int)c->index, "host", h ? h : "?", "taskmanager-id",
				      (int)c->tm, "metrics", subtask_metrics(s, i));
		json_array_append_new(subs, o);
	}
	return json_pack("{s:s,s:o,s:i,s:I,s:o}", "id", id, "name", weir_json_str(s->names[v]), "parallelism",
			 (int)s->par[v], "now", (json_int_t)now_ms, "subtasks", subs);
}

static const char *bp_level(double ratio) { return ratio <= 0.10 ? "ok" : ratio <= 0.5 ? "low" : "high"; }

json_t *weir_metrics_backpressure(const struct weir_series *s, uint32_t v, uint64_t now_ms)
{
	if (v >= s->nv)
		return NULL;
	json_t *subs = json_array();
	double worst = 0;
	bool any = false;
	uint32_t first = weir_series_first(s, v);
	for (uint32_t i = first; subs && i < first + s->par[v]; i++) {
		struct weir_task_rates r = weir_series_rates(s, i);
		if (!r.valid)
			continue;
		any = true;
		double bp = r.backpressured_ms / 1000.0;
		worst = fmax(worst, bp);
		json_array_append_new(subs, json_pack("{s:i,s:s,s:f,s:f,s:f}", "subtask", (int)s->cur[i].index,
						      "backpressure-level", bp_level(bp), "ratio", bp, "idleRatio",
						      r.idle_ms / 1000.0, "busyRatio", r.busy_ms / 1000.0));
	}
	/* "deprecated" until two samples are in: Flink's word for "no figures yet" */
	return json_pack("{s:s,s:s,s:I,s:o}", "status", any ? "ok" : "deprecated", "backpressure-level",
			 bp_level(worst), "end-timestamp", (json_int_t)now_ms, "subtasks", subs);
}

json_t *weir_metrics_watermarks(const struct weir_series *s, uint32_t v)
{
	if (v >= s->nv)
		return NULL;
	json_t *a = json_array();
	uint32_t first = weir_series_first(s, v);
	for (uint32_t i = first; a && i < first + s->par[v]; i++) {
		const struct weir_task_sample *c = &s->cur[i];
		char id[48], val[32];
		snprintf(id, sizeof(id), "%u.currentInputWatermark", c->index);
		snprintf(val, sizeof(val), "%" PRId64, c->wm_in);
		json_array_append_new(a, json_pack("{s:s,s:s}", "id", id, "value", val));
		snprintf(id, sizeof(id), "%u.currentOutputWatermark", c->index);
		snprintf(val, sizeof(val), "%" PRId64, c->wm_out);
		json_array_append_new(a, json_pack("{s:s,s:s}", "id", id, "value", val));
	}
	return a;
}

/* The figures a subtask has, by name, for aggregates and Prometheus. */
struct figure {
	const char *rest;	/* the REST API's id */
	const char *prom;	/* Prometheus's family, after weir_task_ */
	const char *type;	/* gauge or counter */
	const char *help;
	double (*get)(const struct weir_task_sample *c, const struct weir_task_rates *r);
};

static double f_rin(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return (double)c->records_in; }
static double f_rout(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return (double)c->records_out; }
static double f_bin(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return (double)c->bytes_in; }
static double f_bout(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return (double)c->bytes_out; }
static double f_rins(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)c; return r->records_in; }
static double f_routs(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)c; return r->records_out; }
static double f_bins(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)c; return r->bytes_in; }
static double f_bouts(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)c; return r->bytes_out; }
static double f_busy(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)c; return r->busy_ms; }
static double f_bp(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)c; return r->backpressured_ms; }
static double f_idle(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)c; return r->idle_ms; }
static double f_abusy(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return (double)(c->busy_ns / 1000000u); }
static double f_abp(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return (double)(c->backpressured_ns / 1000000u); }
static double f_wmi(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return c->wm_in == WEIR_METRICS_NO_WM ? NAN : (double)c->wm_in; }
static double f_wml(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return wm_lag(c->wm_in); }
static double f_wmo(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return c->wm_out == WEIR_METRICS_NO_WM ? NAN : (double)c->wm_out; }
static double f_state(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return (double)c->state_entries; }
static double f_timers(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return (double)c->timers; }
static double f_align(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return (double)c->align_ns; }
static double f_inpool(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return c->in_pool; }
static double f_outpool(const struct weir_task_sample *c, const struct weir_task_rates *r) { (void)r; return c->out_pool; }

/* rates (per second) have no figure until two samples are in: NAN */
static const struct figure figures[] = {
	{ "numRecordsIn", "numRecordsIn", "counter", "Records the task's chain took in.", f_rin },
	{ "numRecordsOut", "numRecordsOut", "counter", "Records the task's chain sent out.", f_rout },
	{ "numBytesIn", "numBytesIn", "counter", "Bytes of the segments the task read.", f_bin },
	{ "numBytesOut", "numBytesOut", "counter", "Bytes of the segments the task sent.", f_bout },
	{ "numRecordsInPerSecond", "numRecordsInPerSecond", "gauge", "Records in per second, over the last second or two.", f_rins },
	{ "numRecordsOutPerSecond", "numRecordsOutPerSecond", "gauge", "Records out per second.", f_routs },
	{ "numBytesInPerSecond", "numBytesInPerSecond", "gauge", "Bytes in per second.", f_bins },
	{ "numBytesOutPerSecond", "numBytesOutPerSecond", "gauge", "Bytes out per second.", f_bouts },
	{ "busyTimeMsPerSecond", "busyTimeMsPerSecond", "gauge", "Milliseconds a second the task worked.", f_busy },
	{ "backPressuredTimeMsPerSecond", "backPressuredTimeMsPerSecond", "gauge", "Milliseconds a second the task waited for credit downstream.", f_bp },
	{ "idleTimeMsPerSecond", "idleTimeMsPerSecond", "gauge", "Milliseconds a second the task had nothing to do.", f_idle },
	{ "accumulatedBusyTime", "accumulatedBusyTime", "counter", "Milliseconds the task worked since its attempt began.", f_abusy },
	{ "accumulatedBackPressuredTime", "accumulatedBackPressuredTime", "counter", "Milliseconds the task was backpressured.", f_abp },
	{ "currentInputWatermark", "currentInputWatermark", "gauge", "The task's input watermark (ms).", f_wmi },
	{ "watermarkLag", "watermarkLag", "gauge", "Milliseconds the input watermark is behind the wall clock (event time in ms since 1970 only).", f_wml },
	{ "currentOutputWatermark", "currentOutputWatermark", "gauge", "The watermark of the task's last operator (ms).", f_wmo },
	{ "stateEntries", "stateEntries", "gauge", "Entries of keyed state the task holds.", f_state },
	{ "timersPending", "timersPending", "gauge", "Timers the task has pending.", f_timers },
	{ "checkpointAlignmentTime", "checkpointAlignmentTime", "gauge", "Nanoseconds the last checkpoint barrier's alignment took here.", f_align },
	{ "inPoolUsage", "inPoolUsage", "gauge", "Segments queued in the task's input channels over their credits (0 to 1).", f_inpool },
	{ "outPoolUsage", "outPoolUsage", "gauge", "Segments waiting in the task's fullest output channel over its credits (0 to 1).", f_outpool },
};
#define NFIG (sizeof(figures) / sizeof(figures[0]))

static bool is_rate(const struct figure *f)
{
	return f->get == f_rins || f->get == f_routs || f->get == f_bins || f->get == f_bouts || f->get == f_busy ||
	       f->get == f_bp || f->get == f_idle;
}

json_t *weir_metrics_aggregated(const struct weir_series *s, uint32_t v)
{
	if (v >= s->nv)
		return NULL;
	json_t *a = json_array();
	uint32_t first = weir_series_first(s, v);
	for (size_t k = 0; a && k < NFIG; k++) {
		double mn = INFINITY, mx = -INFINITY, sum = 0;
		uint32_t have = 0;
		for (uint32_t i = first; i < first + s->par[v]; i++) {
			struct weir_task_rates r = weir_series_rates(s, i);
			if (is_rate(&figures[k]) && !r.valid)
				continue;
			double x = figures[k].get(&s->cur[i], &r);
			if (isnan(x))
				continue;
			mn = fmin(mn, x);
			mx = fmax(mx, x);
			sum += x;
			have++;
		}
		if (!have)
			continue;
		json_array_append_new(a, json_pack("{s:s,s:f,s:f,s:f,s:f}", "id", figures[k].rest, "min", mn, "max", mx,
						   "avg", sum / have, "sum", sum));
	}
	return a;
}

void weir_metrics_vertex_reply(struct weir_http_resp *r, const char *path, const struct weir_series *s,
			       const char *sub, uint64_t now_ms, const char *(*host)(uint32_t tm, void *arg),
			       void *arg)
{
	char *end;
	unsigned long v = sub[0] >= '0' && sub[0] <= '9' ? strtoul(sub, &end, 10) : ULONG_MAX;
	if (v >= s->nv) {
		weir_json_error(r, 404, "no such vertex: %s", path);
		return;
	}
	json_t *j;
	if (!*end)
		j = weir_metrics_vertex_detail(s, (uint32_t)v, now_ms, host, arg);
	else if (!strcmp(end, "/backpressure"))
		j = weir_metrics_backpressure(s, (uint32_t)v, now_ms);
	else if (!strcmp(end, "/watermarks"))
		j = weir_metrics_watermarks(s, (uint32_t)v);
	else if (!strcmp(end, "/subtasks/metrics"))
		j = weir_metrics_aggregated(s, (uint32_t)v);
	else {
		weir_json_error(r, 404, "no such path: %s", path);
		return;
	}
	weir_json_reply(r, 200, j); /* NULL: out of memory, a 500 */
}

void weir_json_reply(struct weir_http_resp *r, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	r->status = s ? status : 500;
	r->body = s ? s : strdup("{\"errors\":[\"out of memory\"]}");
	r->len = r->body ? strlen(r->body) : 0;
}

void weir_json_error(struct weir_http_resp *r, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	weir_json_reply(r, status, json_pack("{s:[o]}", "errors", weir_json_str(msg)));
}

json_t *weir_json_str(const char *s)
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

/* --- Prometheus --- */

void weir_prom_label(FILE *f, const char *value)
{
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			fputc('\\', f), fputc(*p, f);
		else if (*p == '\n')
			fputs("\\n", f);
		else
			fputc(*p, f);
	}
}

void weir_prom_family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A subtask's labels: job_id="..",job_name="..",task_name="..",subtask_index="..",tm_id="..",host=".." */
static void task_labels(FILE *f, const struct weir_prom_job *job, const struct weir_task_sample *c)
{
	const char *h = job->host ? job->host(c->tm, job->arg) : "localhost";
	fputs("job_id=\"", f);
	weir_prom_label(f, job->id);
	fputs("\",job_name=\"", f);
	weir_prom_label(f, job->name);
	fputs("\",task_name=\"", f);
	weir_prom_label(f, job->s->names[c->vertex]);
	fprintf(f, "\",subtask_index=\"%u\",tm_id=\"%u\",host=\"", c->index, c->tm);
	weir_prom_label(f, h ? h : "?");
	fputc('"', f);
}

void weir_prom_reply(struct weir_http_resp *r, void (*write)(FILE *f, void *arg), void *arg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		weir_json_error(r, 500, "out of memory");
		return;
	}
	write(f, arg);
	if (fclose(f) != 0) {
		free(text);
		weir_json_error(r, 500, "out of memory");
		return;
	}
	r->status = 200;
	r->body = text;
	r->len = len;
	r->type = "text/plain; version=0.0.4; charset=utf-8";
}

void weir_prom_tasks(FILE *f, const struct weir_prom_job *jobs, int njobs)
{
	for (size_t k = 0; k < NFIG; k++) {
		char fam[96];
		snprintf(fam, sizeof(fam), "weir_task_%s", figures[k].prom);
		bool said = false;
		for (int j = 0; j < njobs; j++) {
			const struct weir_series *s = jobs[j].s;
			for (uint32_t i = 0; i < s->n; i++) {
				const struct weir_task_sample *c = &s->cur[i];
				struct weir_task_rates r = weir_series_rates(s, i);
				if (!c->at_ns || (is_rate(&figures[k]) && !r.valid))
					continue;
				double x = figures[k].get(c, &r);
				if (isnan(x))
					continue;
				if (!said)
					weir_prom_family(f, fam, figures[k].type, figures[k].help);
				said = true;
				fprintf(f, "%s{", fam);
				task_labels(f, &jobs[j], c);
				fprintf(f, "} %.17g\n", x);
			}
		}
	}
	/* latency tracking: each sink subtask's quantiles over the last second
	 * or two (a summary, as Flink's latency histogram) */
	bool said = false;
	for (int j = 0; j < njobs; j++) {
		const struct weir_series *s = jobs[j].s;
		for (uint32_t i = 0; s->lat_cur && i < s->n; i++) {
			uint64_t h[WEIR_HISTO_BUCKETS];
			uint64_t count = latency_window(s, i, 1, h);
			if (!count)
				continue;
			if (!said)
				weir_prom_family(f, "weir_task_latency", "gauge",
						 "Milliseconds latency markers took from the sources to this sink subtask, "
						 "quantiles over the last second or two.");
			said = true;
			static const double qs[] = { 0.5, 0.95, 0.99 };
			for (int k = 0; k < 3; k++) {
				fputs("weir_task_latency{", f);
				task_labels(f, &jobs[j], &s->cur[i]);
				fprintf(f, ",quantile=\"%g\"} %.17g\n", qs[k], quantile_ms(h, count, qs[k]));
			}
		}
	}
}
