/* A job whose own functions and global variable carry the names of engine
 * internals (t3040-symbols): libweir.so exports only the public API, so
 * the job's calls reach its own definitions, and the engine's calls its
 * own, though the names are the same.
 *
 *   sequence(COUNT[, RATE]) -> map "prepare": n -> {k, v} with k = keyed_get(n),
 *                              v = weir_kv_get(n), snap_put(v)
 *     -> keyBy k -> process "sum": per key {count, sum} in value state (the
 *        engine's keyed_get, keyed_put and weir_kv_get underneath, and its
 *        snap_put in every snapshot when checkpoints are on) and one
 *        event-time timer that fires at the end of input and writes
 *        "key K count C sum S", formatted by keyed_put
 *     -> OUTDIR
 *
 * and two lines that tell how often the job's own functions ran, in all
 * subtasks: the last "prepare" instance to close sends
 * "calls keyed_get=A weir_kv_get=B snap_put=C snap_sum=S modulus=M"
 * through the keyBy, and the last "sum" instance to close writes
 * "calls keyed_put=D". So with K keys and COUNT >= K: A = B = C = COUNT,
 * S the sum of the values, M 1000 and D = K.
 *
 * Had the job's calls bound to the engine's functions it would crash or
 * write other numbers; had weir_failpoints_armed bound to the engine's
 * flag (false), the modulus would be 0. */
#include <weir/weir.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The engine's: a bool, true once WEIR_FAILPOINT armed a failpoint
 * (base/failpoint.h). Here: the modulus of the values. */
long weir_failpoints_armed = 1000;

enum { C_KEYED_GET, C_KV_GET, C_SNAP_PUT, C_KEYED_PUT, NCALLS };
static long calls[NCALLS];
static unsigned long long snap_sum;
static unsigned long long nkeys;
static int prepare_closed, sum_closed;

static void called(int f)
{
	__atomic_fetch_add(&calls[f], 1, __ATOMIC_RELAXED);
}

/* The engine's: struct kv_slot *keyed_get(struct opinst *, int state, const void *ns, uint32_t nslen).
 * Here: the key of n. */
unsigned long long keyed_get(unsigned long long n)
{
	called(C_KEYED_GET);
	return n % nkeys;
}

/* The engine's: struct kv_slot *weir_kv_get(struct weir_kv *, uint64_t hash, const void *key, uint32_t len).
 * Here: the value of n. */
unsigned long long weir_kv_get(unsigned long long n)
{
	called(C_KV_GET);
	return (n * n + 7) % (unsigned long long)weir_failpoints_armed;
}

/* The engine's: void snap_put(struct snapbuf *, const void *p, size_t n).
 * Here: add a value to the job's own sum. */
void snap_put(unsigned long long v)
{
	called(C_SNAP_PUT);
	__atomic_fetch_add(&snap_sum, v, __ATOMIC_RELAXED);
}

/* The engine's: struct kv_slot *keyed_put(struct opinst *, int state, const void *ns, uint32_t nslen,
 * const void *data, uint32_t len). Here: a key's output line. */
int keyed_put(char *buf, size_t size, unsigned long long key, unsigned long long count, unsigned long long sum)
{
	called(C_KEYED_PUT);
	return snprintf(buf, size, "key %llu count %llu sum %llu", key, count, sum);
}

#define CALLS_KEY UINT64_MAX	/* the key of the record with the prepare counts */
#define END_TIME (1LL << 62)	/* past every record: the timer fires at the end of input */

struct kv {
	uint64_t k, v;
};

struct calls_rec {
	uint64_t tag;		/* CALLS_KEY */
	uint64_t get, kv_get, snap, sum, modulus;
};

static int prepare(weir_ctx *ctx, const weir_rec *in)
{
	uint64_t n;
	memcpy(&n, in->data, 8);
	struct kv r = { keyed_get(n), weir_kv_get(n) };
	snap_put(r.v);
	return weir_emit(ctx, &r, sizeof(r));
}

/* The last prepare instance to close has every count. */
static int prepare_close(weir_ctx *ctx)
{
	if (__atomic_add_fetch(&prepare_closed, 1, __ATOMIC_ACQ_REL) != weir_ctx_parallelism(ctx))
		return 0;
	struct calls_rec c = { CALLS_KEY, (uint64_t)__atomic_load_n(&calls[C_KEYED_GET], __ATOMIC_ACQUIRE),
			       (uint64_t)__atomic_load_n(&calls[C_KV_GET], __ATOMIC_ACQUIRE),
			       (uint64_t)__atomic_load_n(&calls[C_SNAP_PUT], __ATOMIC_ACQUIRE),
			       __atomic_load_n(&snap_sum, __ATOMIC_ACQUIRE), (uint64_t)weir_failpoints_armed };
	return weir_emit(ctx, &c, sizeof(c));
}

static __thread uint64_t keybuf;

static int key_of(weir_ctx *ctx, const weir_rec *in, weir_key *key)
{
	(void)ctx;
	memcpy(&keybuf, in->data, 8);
	key->data = &keybuf;
	key->len = 8;
	return 0;
}

static int sum(weir_ctx *ctx, const weir_rec *in)
{
	char line[160];
	if (in->len == sizeof(struct calls_rec)) {
		struct calls_rec c;
		memcpy(&c, in->data, sizeof(c));
		int n = snprintf(line, sizeof(line), "calls keyed_get=%llu weir_kv_get=%llu snap_put=%llu snap_sum=%llu "
			"modulus=%llu", (unsigned long long)c.get, (unsigned long long)c.kv_get,
			(unsigned long long)c.snap, (unsigned long long)c.sum, (unsigned long long)c.modulus);
		return weir_emit(ctx, line, (uint32_t)n);
	}
	if (in->len != sizeof(struct kv))
		return weir_fail(ctx, "a record of %u bytes", in->len);
	struct kv r;
	uint64_t acc[2] = { 0, 0 };
	memcpy(&r, in->data, sizeof(r));
	weir_rec st;
	int got = weir_value_get(ctx, 0, &st);
	if (got < 0)
		return -1;
	if (got == 1 && st.len == sizeof(acc))
		memcpy(acc, st.data, sizeof(acc));
	else if (weir_timer_register(ctx, WEIR_EVENT_TIME, END_TIME) < 0)
		return -1;
	acc[0]++;
	acc[1] += r.v;
	return weir_value_set(ctx, 0, acc, sizeof(acc));
}

static int sum_timer(weir_ctx *ctx, int64_t time, enum weir_time_domain domain)
{
	(void)time, (void)domain;
	weir_key key;
	weir_rec st;
	uint64_t k, acc[2];
	if (weir_ctx_key(ctx, &key) < 0 || key.len != 8 || weir_value_get(ctx, 0, &st) != 1 || st.len != sizeof(acc))
		return weir_fail(ctx, "a timer without its key's state");
	memcpy(&k, key.data, 8);
	memcpy(acc, st.data, sizeof(acc));
	char line[128];
	int n = keyed_put(line, sizeof(line), k, acc[0], acc[1]);
	return weir_emit(ctx, line, (uint32_t)n);
}

/* The last sum instance to close: every timer has fired. */
static int sum_close(weir_ctx *ctx)
{
	if (__atomic_add_fetch(&sum_closed, 1, __ATOMIC_ACQ_REL) != weir_ctx_parallelism(ctx))
		return 0;
	char line[64];
	int n = snprintf(line, sizeof(line), "calls keyed_put=%ld", __atomic_load_n(&calls[C_KEYED_PUT], __ATOMIC_ACQUIRE));
	return weir_emit(ctx, line, (uint32_t)n);
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc < 4 || argc > 5)
		return weir_env_fail(env, "usage: clash.so -- COUNT KEYS OUTDIR [RATE]");
	long long count = atoll(argv[1]);
	nkeys = strtoull(argv[2], NULL, 10);
	if (count < 1 || nkeys < 1)
		return weir_env_fail(env, "COUNT and KEYS must be 1 or more");
	weir_stream *s = weir_source_sequence(env, count, argc == 5 ? atof(argv[4]) : 0);
	s = weir_on_close(weir_map(s, "prepare", prepare, NULL), prepare_close);
	s = weir_process(weir_key_by(s, key_of, NULL), "sum", sum, sum_timer, NULL);
	static const weir_state_desc acc = { .name = "acc", .kind = WEIR_VALUE_STATE };
	if (weir_declare_state(s, &acc) != 0)
		return -1;
	weir_sink_file(weir_on_close(s, sum_close), argv[3]);
	return 0;
}
