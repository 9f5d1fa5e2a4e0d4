/*
 * engine/graph/keygroup.h - from a key to its hash, key group and subtask.
 *
 * Keys hash with XXH3-64 (inlined: keys are short, and a call through the
 * library costs as much as the hash). The hash picks a key group,
 * hash mod max_parallelism, and the group picks the subtask that owns it,
 * kg * parallelism / max_parallelism (contiguous ranges of groups, as in
 * Flink, so that rescaling moves whole ranges). Snapshots will write
 * state grouped by key group, which is what lets a savepoint be restored
 * at another parallelism. The hash and the mapping are part of that
 * format: changing either is a format change.
 */
#ifndef WEIR_ENGINE_KEYGROUP_H
#define WEIR_ENGINE_KEYGROUP_H

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <stdbool.h>
#include <stdint.h>

static inline uint64_t weir_key_hash(const void *key, uint32_t len)
{
	return XXH3_64bits(key, len);
}

/* The mapping for one max_parallelism, with shifts instead of divisions
 * when it is a power of two (the default, 128). */
struct weir_kg_map {
	uint32_t maxp;
	uint32_t shift;		/* log2(maxp) when pow2 */
	bool pow2;
};

static inline void weir_kg_map_init(struct weir_kg_map *m, uint32_t maxp)
{
	m->maxp = maxp;
	m->pow2 = (maxp & (maxp - 1)) == 0;
	m->shift = m->pow2 ? (uint32_t)__builtin_ctz(maxp) : 0;
}

static inline uint32_t weir_key_group(const struct weir_kg_map *m, uint64_t hash)
{
	return m->pow2 ? (uint32_t)(hash & (m->maxp - 1)) : (uint32_t)(hash % m->maxp);
}

static inline uint32_t weir_kg_subtask(const struct weir_kg_map *m, uint32_t kg, uint32_t parallelism)
{
	uint64_t x = (uint64_t)kg * parallelism;
	return m->pow2 ? (uint32_t)(x >> m->shift) : (uint32_t)(x / m->maxp);
}

#endif
