/*
 * nats_counts: words counted per 5-second window, from one NATS
 * JetStream stream to another (weir/nats.h), exactly once.
 *
 *   weir local build/jobs/nats_counts.so --checkpoint-interval 1000 -- URL IN_STREAM OUT_SUBJECT
 *
 * Reads every subject of stream IN_STREAM (a split each), with event time
 * the stream's timestamp of each message and watermarks per subject (1 s
 * out of order); splits each message into words (runs of [a-z0-9] after
 * lower-casing) and publishes, when a 5-second window closes (a message
 * stamped 1 s after its end came on every subject), one message
 * "WINDOW_START WORD COUNT" per word to OUT_SUBJECT, which a JetStream stream must capture. With checkpoints
 * each count is published once, whatever crashes (within the output
 * stream's duplicate window: docs/api.md, "NATS JetStream"). README's
 * "Connectors: NATS JetStream" has the commands.
 */
#include <weir/nats.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define MAX_WORD 256

static int words(weir_ctx *ctx, const weir_rec *in)
{
	const unsigned char *p = in->data;
	char w[MAX_WORD];
	uint32_t n = 0;
	for (uint32_t i = 0; i <= in->len; i++) {
		int c = i < in->len ? tolower(p[i]) : ' ';
		if (isalnum(c) && c < 128) {
			if (n == MAX_WORD)
				return weir_fail(ctx, "a word is longer than %d characters", MAX_WORD);
			w[n++] = (char)c;
		} else if (n) {
			if (weir_emit(ctx, w, n) < 0) /* the record keeps the message's event time */
				return -1;
			n = 0;
		}
	}
	return 0;
}

static int word_key(weir_ctx *ctx, const weir_rec *r, weir_key *key)
{
	(void)ctx;
	key->data = r->data;
	key->len = r->len;
	return 0;
}

static int count_create(weir_ctx *ctx, void *acc)
{
	(void)ctx;
	memset(acc, 0, 8);
	return 0;
}

static int count_add(weir_ctx *ctx, void *acc, const weir_rec *in)
{
	(void)ctx, (void)in;
	uint64_t c;
	memcpy(&c, acc, 8);
	c++;
	memcpy(acc, &c, 8);
	return 0;
}

static int count_result(weir_ctx *ctx, const void *acc)
{
	int64_t start, end;
	weir_key key;
	uint64_t c;
	weir_ctx_window(ctx, &start, &end);
	weir_ctx_key(ctx, &key);
	memcpy(&c, acc, 8);
	char line[MAX_WORD + 64];
	int n = snprintf(line, sizeof(line), "%lld %.*s %llu", (long long)start, (int)key.len, (const char *)key.data,
			 (unsigned long long)c);
	return weir_emit(ctx, line, (uint32_t)n);
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 4)
		return weir_env_fail(env, "usage: nats_counts URL IN_STREAM OUT_SUBJECT");
	weir_nats_conf nc = { .url = argv[1] };
	weir_stream *in = weir_source_watermarks(weir_source_nats(env, &nc, argv[2], NULL, NULL), 1000, 0);
	weir_window_spec w = weir_tumbling(WEIR_EVENT_TIME, 5000);
	static const weir_aggregate count = { .acc_size = 8, .create = count_create, .add = count_add,
					      .result = count_result };
	weir_stream *counts = weir_window_aggregate(weir_key_by(weir_flat_map(in, "words", words, NULL), word_key, NULL),
						    "count", &w, &count, NULL);
	weir_sink_nats(counts, &nc, argv[3]);
	return 0;
}
