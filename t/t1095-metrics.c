/* t1095-metrics: the pieces of engine/metrics/ that compute, checked
 * against figures worked out by hand: base/histo.h's buckets (ordered,
 * every value within 12.5 % of its bucket's middle), a series' rates
 * (records and time shares over the gap between two samples; none across
 * a restart), latency quantiles from histograms, watermark lag, and
 * Prometheus label escaping. */
#include "tap.h"
#include "metrics/metrics.h"
#include "base/histo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void buckets(void)
{
	unsigned last = 0;
	bool ordered = true, close = true;
	uint64_t worst_at = 0;
	for (uint64_t ns = 1; ns < (1ull << 47); ns = ns < 64 ? ns + 1 : ns + ns / 7 + 1) {
		unsigned b = weir_histo_bucket(ns);
		ordered &= b >= last && b < WEIR_HISTO_BUCKETS;
		last = b;
		double mid = weir_histo_value(b);
		if (fabs(mid - (double)ns) > 0.125 * (double)ns + 0.5 && close) {
			close = false;
			worst_at = ns;
		}
	}
	ok(ordered, "buckets grow with the value and stay below %d", WEIR_HISTO_BUCKETS);
	ok(close, "every value is within 12.5%% of its bucket's middle (first miss: %llu)", (unsigned long long)worst_at);
	is_int(weir_histo_bucket(0), 0, "0 ns: bucket 0");
	is_int(weir_histo_bucket(UINT64_MAX), WEIR_HISTO_BUCKETS - 1, "the largest value: the last bucket");
}

static struct weir_task_sample at(uint32_t v, uint32_t i, uint64_t at_ns, uint64_t in, uint64_t busy_ns, uint64_t bp_ns)
{
	struct weir_task_sample t = { .vertex = v, .index = i, .at_ns = at_ns, .records_in = in, .records_out = in,
				      .busy_ns = busy_ns, .backpressured_ns = bp_ns, .wm_in = WEIR_METRICS_NO_WM,
				      .wm_out = WEIR_METRICS_NO_WM };
	return t;
}

static void rates(void)
{
	struct weir_series s;
	const char *names[] = { "src", "sink" };
	uint32_t par[] = { 1, 2 };
	ok(weir_series_init(&s, 2, names, par) == 0 && s.n == 3, "a series of 2 vertices, 3 subtasks");
	is_int(weir_series_first(&s, 1), 1, "vertex 1 starts at subtask 1");
	struct weir_task_sample t = at(1, 1, 1000000000ull, 100, 0, 0);
	weir_series_add(&s, &t);
	ok(!weir_series_rates(&s, 2).valid, "one sample: no rates");
	/* 2 s later: 4000 more records, 0.5 s busy, 1 s backpressured */
	t = at(1, 1, 3000000000ull, 4100, 500000000ull, 1000000000ull);
	weir_series_add(&s, &t);
	struct weir_task_rates r = weir_series_rates(&s, 2);
	ok(r.valid && fabs(r.records_in - 2000.0) < 1e-6, "2000 records a second (%.3f)", r.records_in);
	ok(fabs(r.busy_ms - 250.0) < 1e-6 && fabs(r.backpressured_ms - 500.0) < 1e-6 && fabs(r.idle_ms - 250.0) < 1e-6,
	   "busy 250, backpressured 500, idle 250 ms a second (%.1f, %.1f, %.1f)", r.busy_ms, r.backpressured_ms,
	   r.idle_ms);
	/* a restart: the counters begin again */
	t = at(1, 1, 4000000000ull, 10, 0, 0);
	weir_series_add(&s, &t);
	ok(!weir_series_rates(&s, 2).valid, "counters that went back (a restart) leave no rate");
	t = at(1, 7, 5000000000ull, 10, 0, 0);
	weir_series_add(&s, &t); /* not a subtask of the series: ignored */
	ok(s.cur[0].at_ns == 0 && s.cur[1].at_ns == 0, "a sample of an unknown subtask is ignored");

	/* latency: 90 markers of ~1 ms and 10 of ~100 ms, since the start */
	uint64_t h[WEIR_HISTO_BUCKETS] = { 0 };
	h[weir_histo_bucket(1000000)] = 90;
	h[weir_histo_bucket(100000000)] = 10;
	t = at(1, 0, 6000000000ull, 1, 0, 0);
	t.lat = h;
	weir_series_add(&s, &t);
	json_t *j = weir_metrics_vertex_json(&s, 1);
	json_t *lat = json_object_get(j, "latency");
	double p50 = json_number_value(json_object_get(lat, "p50")), p95 = json_number_value(json_object_get(lat, "p95"));
	is_int(json_integer_value(json_object_get(lat, "count")), 100, "the sink vertex counts 100 markers");
	ok(fabs(p50 - 1.0) <= 0.125, "p50 about 1 ms (%.3f)", p50);
	ok(fabs(p95 - 100.0) <= 12.5, "p95 about 100 ms (%.3f)", p95);
	json_decref(j);
	/* a second later, 100 more of ~2 ms: the window has only those */
	h[weir_histo_bucket(2000000)] = 100;
	t = at(1, 0, 7100000000ull, 2, 0, 0);
	t.lat = h;
	weir_series_add(&s, &t);
	j = weir_metrics_vertex_json(&s, 1);
	lat = json_object_get(j, "latency");
	p95 = json_number_value(json_object_get(lat, "p95"));
	is_int(json_integer_value(json_object_get(lat, "count")), 100, "the last second's window: 100 markers");
	ok(fabs(p95 - 2.0) <= 0.25, "its p95 about 2 ms (%.3f): the older ones are out of it", p95);
	json_decref(j);
	weir_series_free(&s);
}

static void lag(void)
{
	struct weir_series s;
	const char *names[] = { "win" };
	uint32_t par[] = { 1 };
	weir_series_init(&s, 1, names, par);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	struct weir_task_sample t = at(0, 0, 1000, 0, 0, 0);
	t.wm_in = now_ms - 5000;
	weir_series_add(&s, &t);
	json_t *j = weir_metrics_vertex_json(&s, 0);
	double l = json_number_value(json_object_get(j, "watermark-lag"));
	ok(l >= 5000 && l < 65000, "a wall-clock watermark 5 s old: lag %.0f ms", l);
	json_decref(j);
	t = at(0, 0, 2000, 0, 0, 0);
	t.wm_in = 12345; /* event time that is not wall-clock time */
	weir_series_add(&s, &t);
	j = weir_metrics_vertex_json(&s, 0);
	ok(!json_object_get(j, "watermark-lag"), "a watermark that is not wall-clock time has no lag");
	json_decref(j);
	weir_series_free(&s);
}

static void labels(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	weir_prom_label(f, "a\"b\\c\nd");
	fclose(f);
	is_string(text, "a\\\"b\\\\c\\nd", "label values escape quote, backslash and newline");
	free(text);
}

int main(void)
{
	buckets();
	rates();
	lag();
	labels();
	done_testing();
	return tap_failures() ? 1 : 0;
}
