/*
 * sessions: per-user activity sessions (event-time session windows).
 *
 *   weir local build/jobs/sessions.so -- INPUT OUTDIR GAP_MS
 *
 * Input: lines (a file, or a folder of files, see weir_source_file)
 *
 *     TIMESTAMP,USER,EVENT
 *
 * TIMESTAMP: the event time in ms, 1 to 18 decimal digits (0 .. 10^18-1),
 * nothing else. USER: 1 to 256 bytes, none of them a comma or a control
 * character (bytes below 0x20, and 0x7f). EVENT: the rest of the line, any
 * bytes (commas too), possibly empty; only counted. Empty lines are skipped.
 * Any other line fails the job, never crashes it, with the message
 *
 *     bad line "...": <what is wrong>
 *
 * quoting the line (its first 60 bytes, non-printable bytes as \xNN).
 *
 * Sessions (Flink's event-time session windows, GAP_MS = gap, 1 .. 10^15):
 * each event at time t opens the window [t, t + gap); a user's windows that
 * overlap *or touch* merge into one. So, with a user's events sorted by
 * time t1 <= t2 <= ..., t(i+1) starts a new session exactly when
 * t(i+1) - t(i) > gap; a pause of exactly `gap` ms keeps the session going.
 *
 * Output: in folder OUTDIR (weir_sink_file), one line per session
 *
 *     USER <TAB> SESSION_START <TAB> SESSION_END <TAB> EVENTS
 *
 * where SESSION_START is the time of the session's first event, SESSION_END
 * = (time of its last event) + gap, i.e. [SESSION_START, SESSION_END) is the
 * session window, and EVENTS >= 1 is the number of events (lines) in it.
 * Lines are spread over the part files by user, in no particular order.
 *
 * Out-of-order input: timestamps need not rise, but every line must be at
 * most MAX_DISORDER_MS (10000) older than the newest line before it in the
 * input (a folder's files in name order): ts >= max(earlier ts) - 10000.
 * The watermark trails the largest timestamp seen by that bound, and a
 * session is emitted once the watermark reaches its end - 1; on a bounded
 * input every session is emitted at the end. Input that keeps the bound is
 * never late, whatever the parallelism (each source subtask reads
 * contiguous parts of the input). A line that breaks the bound may be read
 * after the session it belongs to was emitted; it then fails the job
 * ("late record ...") rather than being dropped or starting a wrong
 * session. (Whether it comes too late depends on when watermarks are
 * published: the engine does so once per step.)
 *
 * One caveat, inherited from the window semantics: an event whose time is
 * exactly the end of a session that the watermark has already closed
 * (t = last + gap, arriving after a later event >= t + 10000 ms of the
 * same input) starts a new session instead of extending the closed one,
 * whereas a batch computation would merge them. Input sorted by time, or
 * whose users never pause exactly `gap` ms, is not affected.
 *
 * Dataflow: file source -> parse (flatMap: {ts, user} per line) ->
 * assign timestamps (bound 10000 ms) -> keyBy user -> session window
 * aggregate (a count) -> file sink; late records -> a sink that fails.
 */
#include <weir/weir.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DISORDER_MS 10000
#define MAX_GAP_MS 1000000000000000LL	/* 10^15 */
#define MAX_TS_DIGITS 18
#define MAX_USER 256

/* The record between parse and the window: the event time and the user.
 * Record data is 8-byte aligned, so the struct can be read in place. */
struct event {
	int64_t ts;
	char user[];
};

static int bad_line(weir_ctx *ctx, const weir_rec *line, const char *why)
{
	char q[512];
	return weir_fail(ctx, "bad line \"%s\": %s", weir_quote(q, sizeof(q), line->data, line->len), why);
}

/* "ts,user,event" -> {ts, user}; empty lines -> nothing */
static int parse(weir_ctx *ctx, const weir_rec *line)
{
	const char *s = line->data;
	uint32_t len = line->len, i = 0;
	if (len == 0)
		return 0;
	int64_t ts = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		if (i == MAX_TS_DIGITS)
			return bad_line(ctx, line, "the timestamp has more than 18 digits");
		ts = ts * 10 + (s[i] - '0');
		i++;
	}
	if (i == 0)
		return bad_line(ctx, line, "expected TIMESTAMP (decimal digits) at the start");
	if (i == len || s[i] != ',')
		return bad_line(ctx, line, "expected a comma after the timestamp");
	uint32_t u0 = ++i;
	while (i < len && s[i] != ',') {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return bad_line(ctx, line, "a control character in USER");
		i++;
	}
	if (i == u0)
		return bad_line(ctx, line, "USER is empty");
	if (i == len)
		return bad_line(ctx, line, "expected a comma after USER");
	if (i - u0 > MAX_USER)
		return bad_line(ctx, line, "USER is longer than 256 bytes");

	_Alignas(8) char buf[sizeof(struct event) + MAX_USER];
	struct event *e = (struct event *)buf;
	e->ts = ts;
	memcpy(e->user, s + u0, i - u0);
	return weir_emit(ctx, e, (uint32_t)(sizeof(*e) + (i - u0)));
}

/* the event time, for weir_assign_timestamps: parsed into the record */
static int64_t event_time(weir_ctx *ctx, const weir_rec *in)
{
	return ((const struct event *)in->data)->ts;
}

/* the key is the user */
static int user_key(weir_ctx *ctx, const weir_rec *r, weir_key *key)
{
	key->data = (const char *)r->data + sizeof(struct event);
	key->len = r->len - (uint32_t)sizeof(struct event);
	return 0;
}

/* the accumulator: the number of events (uint64_t) */
static int count_create(weir_ctx *ctx, void *acc)
{
	memset(acc, 0, sizeof(uint64_t));
	return 0;
}

static int count_add(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	uint64_t c;
	memcpy(&c, acc, sizeof(c));
	c++;
	memcpy(acc, &c, sizeof(c));
	return 0;
}

/* two sessions of a user merged: their counts add up */
static int count_merge(weir_ctx *ctx, void *acc, const void *other)
{
	uint64_t a, b;
	memcpy(&a, acc, sizeof(a));
	memcpy(&b, other, sizeof(b));
	a += b;
	memcpy(acc, &a, sizeof(a));
	return 0;
}

/* a closed session -> "user\tstart\tend\tevents" */
static int session_result(weir_ctx *ctx, const void *acc)
{
	int64_t start, end;
	weir_key key;
	uint64_t c;
	memcpy(&c, acc, sizeof(c));
	if (weir_ctx_window(ctx, &start, &end) < 0)
		return weir_fail(ctx, "no window in the result function");
	if (weir_ctx_key(ctx, &key) < 0)
		return weir_fail(ctx, "no key in the result function");
	char line[MAX_USER + 80];
	int n = snprintf(line, sizeof(line), "%.*s\t%lld\t%lld\t%llu", (int)key.len, (const char *)key.data,
			 (long long)start, (long long)end, (unsigned long long)c);
	return weir_emit(ctx, line, (uint32_t)n);
}

static const weir_aggregate session_count = {
	.acc_size = sizeof(uint64_t),
	.create = count_create,
	.add = count_add,
	.merge = count_merge,
	.result = session_result,
};

/* an event whose session had been emitted: the input broke the bound */
static int late(weir_ctx *ctx, const weir_rec *in)
{
	const struct event *e = in->data;
	return weir_fail(ctx, "late record: user '%.*s' at %lld ms came after its session had been emitted "
			 "(input more than %d ms out of order)",
			 (int)(in->len - sizeof(*e)), e->user, (long long)e->ts, MAX_DISORDER_MS);
}

/* Built the same way by every call of weir_job; static, so that it outlives it. */
static weir_window_spec window;

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 4)
		return weir_env_fail(env, "usage: sessions.so -- INPUT OUTDIR GAP_MS");
	char *end;
	long long gap = strtoll(argv[3], &end, 10);
	if (*end || end == argv[3] || gap < 1 || gap > MAX_GAP_MS)
		return weir_env_fail(env, "GAP_MS: '%s' is not a number of milliseconds in 1 .. 10^15", argv[3]);
	window = weir_session(WEIR_EVENT_TIME, gap);

	weir_stream *lines = weir_source_file(env, argv[1]);
	weir_stream *events = weir_flat_map(lines, "parse", parse, NULL);
	weir_stream *timed = weir_assign_timestamps(events, event_time, MAX_DISORDER_MS, 0);
	weir_stream *sessions =
		weir_window_aggregate(weir_key_by(timed, user_key, NULL), "sessions", &window, &session_count, NULL);
	weir_sink_file(sessions, argv[2]);
	weir_sink(weir_late_records(sessions), "late", late, NULL);
	return 0;
}
