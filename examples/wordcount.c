/*
 * wordcount: a rolling count of every word.
 *
 *   weir local build/jobs/wordcount.so -- INPUT OUTDIR
 *
 * Words are runs of [a-z0-9] after lower-casing; everything else separates
 * them. Every occurrence of a word emits "word<TAB>count so far" to the
 * file sink, so the part files together hold, for each word, the lines
 * 1..n. Correct at any parallelism: keyBy sends every occurrence of a word
 * to the same subtask, which keeps its count.
 */
#include <weir/weir.h>

#include <stdio.h>
#include <string.h>

/* The record between the operators: a count and the word's bytes. Record
 * data is 8-byte aligned, so the struct can be read in place. */
struct counted {
	uint64_t count;
	char word[];
};

#define MAX_WORD 4096

/* line -> one record {1, word} per word */
static int tokenize(weir_ctx *ctx, const weir_rec *line)
{
	_Alignas(8) char buf[sizeof(struct counted) + MAX_WORD];
	struct counted *c = (struct counted *)buf;
	const char *s = line->data;
	uint32_t n = 0;
	for (uint32_t i = 0; i <= line->len; i++) {
		char ch = i < line->len ? s[i] : ' ';
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
			if (n == MAX_WORD)
				return weir_fail(ctx, "a word is longer than %d characters", MAX_WORD);
			c->word[n++] = ch;
			continue;
		}
		if (n) {
			c->count = 1;
			if (weir_emit(ctx, c, (uint32_t)(sizeof(*c) + n)) < 0)
				return -1;
			n = 0;
		}
	}
	return 0;
}

/* the key is the word */
static int word_key(weir_ctx *ctx, const weir_rec *r, weir_key *key)
{
	key->data = (const char *)r->data + sizeof(struct counted);
	key->len = r->len - (uint32_t)sizeof(struct counted);
	return 0;
}

/* acc + 1 occurrence */
static int add(weir_ctx *ctx, const weir_rec *acc, const weir_rec *in)
{
	_Alignas(8) char buf[sizeof(struct counted) + MAX_WORD];
	struct counted *c = (struct counted *)buf;
	memcpy(c, acc->data, acc->len);
	c->count += ((const struct counted *)in->data)->count;
	return weir_emit(ctx, c, acc->len);
}

/* {count, word} -> "word\tcount" */
static int format(weir_ctx *ctx, const weir_rec *r)
{
	const struct counted *c = r->data;
	char line[MAX_WORD + 32];
	int wl = (int)(r->len - sizeof(*c));
	int n = snprintf(line, sizeof(line), "%.*s\t%llu", wl, c->word, (unsigned long long)c->count);
	return weir_emit(ctx, line, (uint32_t)n);
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 3)
		return weir_env_fail(env, "usage: wordcount.so -- INPUT OUTDIR");
	weir_stream *lines = weir_source_file(env, argv[1]);
	weir_stream *words = weir_flat_map(lines, "tokenize", tokenize, NULL);
	weir_stream *counts = weir_reduce(weir_key_by(words, word_key, NULL), "count", add, NULL);
	weir_stream *out = weir_map(counts, "format", format, NULL);
	weir_sink_file(out, argv[2]);
	return 0;
}
