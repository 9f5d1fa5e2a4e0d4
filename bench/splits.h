/*
 * bench/splits.h - the generators' splits, shared by the YSB and Nexmark
 * jobs: split i of N holds the event numbers i, i + N, i + 2N, ... below a
 * count, its position in a checkpoint is the next number, and a paced run
 * schedules number n of a split at (n / N - k0) periods after the split
 * came to the subtask (k0: its index then). Each job's source_impl calls
 * these from its own callbacks (which know N and the split names); its
 * poll is gsplits_poll with a function that makes and emits one event.
 */
#ifndef WEIR_BENCH_SPLITS_H
#define WEIR_BENCH_SPLITS_H

#include <weir/connector.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gsplit {
	uint64_t next;	       /* the next event number */
	uint64_t k0;	       /* its index within the split when the split came */
	uint64_t mono0, wall0; /* then (monotonic and CLOCK_REALTIME ns), for pacing */
	int done;
};

/* discover: splits "<prefix>-<i>" for i < n, split i to subtask i mod p */
static inline int gsplits_discover(weir_ctx *ctx, const char *prefix, int n)
{
	for (uint64_t i = 0; i < (uint64_t)n; i++) {
		char id[64];
		snprintf(id, sizeof(id), "%s-%llu", prefix, (unsigned long long)i);
		if (weir_split_found(ctx, id, (int64_t)i, &i, sizeof(i)) < 0)
			return -1;
	}
	return 0;
}

/* add_split: from the restored position, else from the split's first number */
static inline int gsplits_add(weir_ctx *ctx, weir_split *s, const void *pos, uint32_t len, int n)
{
	struct gsplit *p = calloc(1, sizeof(*p));
	uint32_t dl;
	const void *d = weir_split_desc(s, &dl);
	if (!p)
		return weir_fail(ctx, "out of memory");
	if (pos && len == sizeof(p->next))
		memcpy(&p->next, pos, sizeof(p->next));
	else if (!pos && dl == sizeof(p->next))
		memcpy(&p->next, d, sizeof(p->next));
	else
		return free(p), weir_fail(ctx, "split %s: a position of %u bytes", weir_split_id(s), len);
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	p->k0 = p->next / (uint64_t)n;
	p->mono0 = weir_ctx_now_ns(ctx);
	p->wall0 = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
	weir_split_set_data(s, p);
	return 0;
}

/* Paced: the offset (ns since mono0) of the split's next number, or
 * UINT64_MAX when it is not due at now (then *next_due holds the earliest
 * such time over the calls); period: ns between a split's numbers. */
static inline uint64_t gsplit_due(const struct gsplit *p, int n, uint64_t period, uint64_t now, uint64_t *next_due)
{
	uint64_t off = (p->next / (uint64_t)n - p->k0) * period;
	if (p->mono0 + off > now) {
		if (p->mono0 + off < *next_due)
			*next_due = p->mono0 + off;
		return UINT64_MAX;
	}
	return off;
}

/* One event of a poll: number e of split s (its state p), due off ns after
 * p->mono0 when paced (0 unpaced). 0, or -1 (the subtask failed). */
typedef int (*gsplit_emit_fn)(weir_ctx *ctx, weir_split *s, const struct gsplit *p, uint64_t e, uint64_t off,
			      void *arg);

/* A poll over the splits held: up to weir_ctx_batch events, shared out
 * between them, each split's numbers below count in order, paced at rate
 * events/s in all (0: unpaced); returns a weir_source_status, or -1. A
 * static inline with a constant emit: the compiler makes it a direct call. */
static inline int gsplits_poll(weir_ctx *ctx, int n, uint64_t count, uint64_t rate, gsplit_emit_fn emit, void *arg)
{
	weir_split **v;
	int held = weir_splits_held(ctx, &v), open = 0;
	if (!held)
		return WEIR_SOURCE_END;
	uint32_t per = weir_ctx_batch(ctx) / (uint32_t)held + 1;
	uint64_t now = rate ? weir_ctx_now_ns(ctx) : 0, next_due = UINT64_MAX;
	uint64_t period = rate ? 1000000000ull * (uint64_t)n / rate : 0; /* a split's numbers are n apart */
	for (int i = 0; i < held; i++) {
		struct gsplit *p = weir_split_data(v[i]);
		if (!p || p->done)
			continue;
		for (uint32_t k = 0; k < per && p->next < count; k++) {
			uint64_t off = rate ? gsplit_due(p, n, period, now, &next_due) : 0;
			if (off == UINT64_MAX)
				break;
			uint64_t e = p->next;
			p->next += (uint64_t)n;
			if (emit(ctx, v[i], p, e, off, arg) < 0)
				return -1;
		}
		if (p->next >= count) {
			p->done = 1;
			weir_split_finished(ctx, v[i]);
		} else {
			open++;
		}
	}
	if (!open)
		return WEIR_SOURCE_END;
	if (next_due != UINT64_MAX) {
		weir_ctx_idle_until(ctx, next_due);
		return WEIR_SOURCE_IDLE;
	}
	return WEIR_SOURCE_MORE;
}

static inline int gsplits_position(weir_ctx *ctx, weir_split *s, void *pos, uint32_t cap)
{
	(void)ctx, (void)cap;
	const struct gsplit *p = weir_split_data(s);
	memcpy(pos, &p->next, sizeof(p->next));
	return sizeof(p->next);
}

static inline void gsplits_release(weir_ctx *ctx)
{
	weir_split **v;
	int n = weir_splits_held(ctx, &v);
	for (int i = 0; i < n; i++) {
		free(weir_split_data(v[i]));
		weir_split_set_data(v[i], NULL);
	}
}

#endif
