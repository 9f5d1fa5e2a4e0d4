/*
 * t/jobtest.h - what the engine tests that run jobs locally share
 * (t2010-backpressure, t2100-windows, t2110-process, t2120-joins).
 * Include it once, after tap.h, in the test's one C file: it defines
 * file-static state.
 *
 *   cfg, jobtest_config()  the run configuration: defaults, quiet, not pinned
 *   jobtest_start()        main's start: 120 s alarm, seed (printed;
 *                          WEIR_SEED=N replays), batch_rnd, cfg; -> the seed
 *   run(env)               weir_run_local then weir_env_destroy; when
 *                          batch_rnd is set, cfg.batch first varies with it
 *   BUILT(env, x)          in a void test: a failed test and return when the
 *                          builder refused (x NULL or env->error set)
 *   i64at, ts_of, key_of   records of int64 fields: key field 0 (8 bytes),
 *                          timestamp field 2
 *   cur_key(ctx), bad_key  the current key; counts in bad_key when absent
 *   fold_hash, HASH0       FNV-1a style fold of int64 values
 *   mod_pos(a, m)          a mod m in [0, m)
 */
#ifndef WEIR_T_JOBTEST_H
#define WEIR_T_JOBTEST_H

#include "tap.h"
#include "runtime/run.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static struct weir_config cfg;

/* The batch (records per step and per poll) varies with the seed: small
 * batches interleave watermarks and records more finely. 0: cfg.batch as is. */
static uint64_t batch_rnd;

/* Callbacks that did not see the key they should (cur_key counts here). */
static uint64_t bad_key;

static inline void jobtest_config(void)
{
	weir_config_defaults(&cfg);
	cfg.quiet = true;
	cfg.pin = false;
}

static inline uint64_t jobtest_start(void)
{
	alarm(120);
	uint64_t seed = tap_seed();
	batch_rnd = seed ^ 0x9e3779b97f4a7c15ull;
	jobtest_config();
	return seed;
}

static inline int run(weir_env *env)
{
	if (batch_rnd)
		cfg.batch = tap_rand(&batch_rnd) % 4 ? 1 + (uint32_t)(tap_rand(&batch_rnd) % 512)
						     : 1 + (uint32_t)(tap_rand(&batch_rnd) % 4);
	int rc = weir_run_local(env, &cfg, false);
	weir_env_destroy(env);
	return rc;
}

#define BUILT(env, x)                                                                                      \
	do {                                                                                               \
		if (!(x) || (env)->error[0]) {                                                             \
			ok(0, "building: %s (%s)", #x, (env)->error);                                       \
			weir_env_destroy(env);                                                             \
			return;                                                                            \
		}                                                                                          \
	} while (0)

static inline int64_t i64at(const void *p, int i)
{
	int64_t v;
	memcpy(&v, (const uint8_t *)p + 8 * i, 8);
	return v;
}

static inline int64_t ts_of(weir_ctx *ctx, const weir_rec *in)
{
	return i64at(in->data, 2);
}

static inline int key_of(weir_ctx *ctx, const weir_rec *in, weir_key *k)
{
	k->data = in->data;
	k->len = 8;
	return 0;
}

static inline int64_t cur_key(weir_ctx *ctx)
{
	weir_key k;
	if (weir_ctx_key(ctx, &k) < 0 || k.len != 8) {
		__atomic_fetch_add(&bad_key, 1, __ATOMIC_RELAXED);
		return -1;
	}
	return i64at(k.data, 0);
}

#define HASH0 1469598103934665603ull

static inline uint64_t fold_hash(uint64_t h, int64_t v)
{
	return (h ^ (uint64_t)v) * 1099511628211ull;
}

static inline int64_t mod_pos(int64_t a, int64_t m)
{
	int64_t r = a % m;
	return r < 0 ? r + m : r;
}

#endif
