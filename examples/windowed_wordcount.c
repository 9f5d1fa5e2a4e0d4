/*
 * windowed_wordcount: word counts per tumbling event-time window.
 *
 *   weir local build/jobs/windowed_wordcount.so -- INPUT OUTDIR [WINDOW_MS]
 *
 * Input: lines (a file, or a folder of files, see weir_source_file) of the
 * form
 *
 *     TIMESTAMP_MS SEP TEXT
 *
 * TIMESTAMP_MS is the line's event time: 1 to 18 decimal digits (0 ..
 * 10^18-1 ms), nothing else. SEP is one space or tab. TEXT is the rest of
 * the line and may be empty; a line may also end right after the
 * timestamp. Empty lines are skipped. Any other line (no timestamp, a sign,
 * a letter right after the digits, a number of 19 or more digits) fails the
 * job with the message
 *
 *     bad line "...": <what is wrong>
 *
 * quoting the line (its first 60 bytes, non-printable bytes as \xNN).
 *
 * Words are runs of [a-z0-9] after lower-casing, as in wordcount. Each
 * occurrence of a word counts in the tumbling window [k*W, (k+1)*W) that
 * holds its line's timestamp, W = WINDOW_MS (default 60000, at most
 * 10^15).
 *
 * Out-of-order input: timestamps need not rise, but every line must be at
 * most MAX_DISORDER_MS (5000) older than the newest line before it in the
 * input (a folder's files in name order): ts >= max(earlier ts) - 5000. The watermark trails the
 * largest timestamp seen by that bound (weir_assign_timestamps), and a
 * window fires once the watermark reaches its end - 1. Input that keeps the
 * bound is never late, whatever the parallelism: each source subtask reads
 * contiguous parts of the files in name order, and a part of a sequence
 * that keeps the bound keeps it too. A line that breaks the bound may be
 * read after its window fired; it then fails the job ("late record ...")
 * rather than being dropped or counted in a second line for the window.
 * (Whether it comes too late depends on when watermarks are published:
 * the engine does so once per step, so it may also count normally.)
 *
 * Output: in folder OUTDIR (weir_sink_file), when the windows fire, one line
 *
 *     WINDOW_END <TAB> WORD <TAB> COUNT
 *
 * for every window and every word that occurs in it, exactly once:
 * WINDOW_END is the window's exclusive end (k+1)*W, COUNT >= 1 the number
 * of occurrences. On a bounded input the watermark reaches +infinity at the
 * end, so every window fires and the output equals the batch result.
 * Lines are spread over the part files by word and come in no particular
 * order; sort them to compare.
 *
 * Dataflow: file source -> parse (flatMap: one {ts, word} per word) ->
 * assign timestamps (bound 5000 ms) -> keyBy word -> tumbling window
 * aggregate (a count) -> file sink; late records -> a sink that fails.
 */
#include <weir/weir.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DISORDER_MS 5000
#define DEFAULT_WINDOW_MS 60000
#define MAX_WINDOW_MS 1000000000000000LL	/* 10^15 */
#define MAX_TS_DIGITS 18
#define MAX_WORD 4096

/* The record between parse and the window: the event time and the word.
 * Record data is 8-byte aligned, so the struct can be read in place. */
struct word_rec {
	int64_t ts;
	char word[];
};

static int bad_line(weir_ctx *ctx, const weir_rec *line, const char *why)
{
	char q[512];
	return weir_fail(ctx, "bad line \"%s\": %s", weir_quote(q, sizeof(q), line->data, line->len), why);
}

/* line -> one {ts, word} per word */
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
		return bad_line(ctx, line, "expected TIMESTAMP_MS (decimal digits) at the start");
	if (i < len && s[i] != ' ' && s[i] != '\t')
		return bad_line(ctx, line, "expected a space or tab after the timestamp");

	_Alignas(8) char buf[sizeof(struct word_rec) + MAX_WORD];
	struct word_rec *w = (struct word_rec *)buf;
	w->ts = ts;
	uint32_t n = 0;
	for (i++; i <= len; i++) {
		char ch = i < len ? s[i] : ' ';
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
			if (n == MAX_WORD)
				return weir_fail(ctx, "a word is longer than %d characters", MAX_WORD);
			w->word[n++] = ch;
			continue;
		}
		if (n) {
			if (weir_emit(ctx, w, (uint32_t)(sizeof(*w) + n)) < 0)
				return -1;
			n = 0;
		}
	}
	return 0;
}

/* the event time, for weir_assign_timestamps: parsed into the record */
static int64_t event_time(weir_ctx *ctx, const weir_rec *in)
{
	return ((const struct word_rec *)in->data)->ts;
}

/* the key is the word */
static int word_key(weir_ctx *ctx, const weir_rec *r, weir_key *key)
{
	key->data = (const char *)r->data + sizeof(struct word_rec);
	key->len = r->len - (uint32_t)sizeof(struct word_rec);
	return 0;
}

/* the accumulator: a count (uint64_t) */
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

static int count_merge(weir_ctx *ctx, void *acc, const void *other)
{
	uint64_t a, b;
	memcpy(&a, acc, sizeof(a));
	memcpy(&b, other, sizeof(b));
	a += b;
	memcpy(acc, &a, sizeof(a));
	return 0;
}

/* a fired window -> "window_end\tword\tcount" */
static int count_result(weir_ctx *ctx, const void *acc)
{
	int64_t start, end;
	weir_key key;
	uint64_t c;
	memcpy(&c, acc, sizeof(c));
	if (weir_ctx_window(ctx, &start, &end) < 0)
		return weir_fail(ctx, "no window in the result function");
	if (weir_ctx_key(ctx, &key) < 0)
		return weir_fail(ctx, "no key in the result function");
	char line[MAX_WORD + 64];
	int n = snprintf(line, sizeof(line), "%lld\t%.*s\t%llu", (long long)end, (int)key.len,
			 (const char *)key.data, (unsigned long long)c);
	return weir_emit(ctx, line, (uint32_t)n);
}

static const weir_aggregate counter = {
	.acc_size = sizeof(uint64_t),
	.create = count_create,
	.add = count_add,
	.merge = count_merge,
	.result = count_result,
};

/* a record whose window had fired: the input broke the bound */
static int late(weir_ctx *ctx, const weir_rec *in)
{
	const struct word_rec *w = in->data;
	return weir_fail(ctx, "late record: word '%.*s' at %lld ms came after its window had fired "
			 "(input more than %d ms out of order)",
			 (int)(in->len - sizeof(*w)), w->word, (long long)w->ts, MAX_DISORDER_MS);
}

/* Built the same way by every call of weir_job; static, so that they outlive it. */
static weir_window_spec window;

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 3 && argc != 4)
		return weir_env_fail(env, "usage: windowed_wordcount.so -- INPUT OUTDIR [WINDOW_MS]");
	int64_t window_ms = DEFAULT_WINDOW_MS;
	if (argc == 4) {
		char *e;
		long long v = strtoll(argv[3], &e, 10);
		if (*e || e == argv[3] || v < 1 || v > MAX_WINDOW_MS)
			return weir_env_fail(env, "WINDOW_MS: '%s' is not a number of milliseconds in 1 .. 10^15",
					     argv[3]);
		window_ms = v;
	}
	window = weir_tumbling(WEIR_EVENT_TIME, window_ms);

	weir_stream *lines = weir_source_file(env, argv[1]);
	weir_stream *words = weir_flat_map(lines, "parse", parse, NULL);
	weir_stream *timed = weir_assign_timestamps(words, event_time, MAX_DISORDER_MS, 0);
	weir_stream *counts =
		weir_window_aggregate(weir_key_by(timed, word_key, NULL), "window-count", &window, &counter, NULL);
	weir_sink_file(counts, argv[2]);
	weir_sink(weir_late_records(counts), "late", late, NULL);
	return 0;
}
