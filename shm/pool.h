/*
 * shm/pool.h - a pool of fixed-size memory segments.
 *
 * All record data and all network buffers live in segments. A pool is one
 * mapping: a header, the free list, then `nsegs` segments of `seg_size`
 * bytes (a power of two), page aligned, bound to a NUMA node and
 * pre-faulted, so the data path never calls malloc or takes a page fault.
 *
 * Invariants:
 *  - Nothing inside the mapping holds a pointer. A segment is named by a
 *    descriptor (pool id, segment index) and found through the local base
 *    address, so the same bytes can later be mapped by several processes.
 *  - Every segment has exactly one owner: the free list, a producer filling
 *    it, a channel carrying it, or a consumer reading it. Ownership moves
 *    with the descriptor; whoever holds it is the only one who may touch
 *    the bytes or give it back.
 *
 * A pool lives either in private memory (local mode) or in a named file
 * under /dev/shm (weir_pool_create_shm), which other processes of the
 * cluster map with weir_pool_attach to read segments whose descriptors
 * reach them. Only the owner takes from and returns to the free list;
 * attached processes hand descriptors back through channels.
 *
 * A share (weir_pool_share) is a part of a pool, taken off its free list
 * at once and kept on a free list of the share's own, in the owner's
 * private memory: the TaskManager's pool is carved into one share per job,
 * so one job cannot take another's segments, and a job checks that every
 * segment of its share came back without looking at the whole pool. A
 * share's descriptors are the pool's (same id, same indices, same bytes),
 * so other processes attach the pool itself.
 *
 * Threads: get/put are lock-free MPMC (ck_ring) and may be called from any
 * thread of the owner; create/destroy are not concurrent with anything
 * that uses the pool; shares are taken and released under a lock of the
 * process's, so several job threads may carve one pool at once.
 */
#ifndef WEIR_SHM_POOL_H
#define WEIR_SHM_POOL_H

#include "shm/ring.h"
#include "shm/shmfile.h"

#include <ck_ring.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A descriptor: pool id in the top 8 bits, segment index in the low 24. */
typedef uint32_t weir_seg;
#define WEIR_SEG_INDEX_BITS 24
#define WEIR_SEG_MAX_INDEX ((1u << WEIR_SEG_INDEX_BITS) - 1)
#define WEIR_SEG_NONE UINT32_MAX
#define WEIR_POOL_MAGIC 0x57454952504f4f4cull /* "WEIRPOOL" */
#define WEIR_POOL_VERSION 1

static inline weir_seg weir_seg_make(uint32_t pool_id, uint32_t index)
{
	return (pool_id << WEIR_SEG_INDEX_BITS) | index;
}
static inline uint32_t weir_seg_pool(weir_seg s) { return s >> WEIR_SEG_INDEX_BITS; }
static inline uint32_t weir_seg_index(weir_seg s) { return s & WEIR_SEG_MAX_INDEX; }

/* The header at offset 0 of the mapping; fixed layout, versioned. */
struct weir_pool_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t seg_size;
	uint32_t nsegs;
	uint32_t pool_id;
	uint64_t ring_off;	/* free-list ring buffer, from the mapping's start */
	uint64_t segs_off;	/* segment 0 */
	uint64_t map_len;
	char pad[16];
	struct ck_ring free;	/* own cache lines (ck pads it) */
};

/* The process-local handle. */
struct weir_pool {
	struct weir_pool_hdr *hdr;
	struct weir_seg_slot *ring;
	uint8_t *base;		/* segment 0 in this process */
	uint32_t id;
	uint32_t seg_size;
	uint32_t seg_shift;
	uint32_t nsegs;
	size_t map_len;
	bool numa_bound;	/* the mapping is bound to the requested node */
	bool huge;		/* transparent huge pages were requested and are enabled */
	bool attached;		/* another process's pool, mapped here */
	struct weir_shm shm;	/* the backing file, for shared pools */
	struct ck_ring *freelist;	/* &hdr->free, or a share's own */
	struct weir_pool *parent;	/* a share: the pool its segments are of */
	uint32_t share;		/* a share: how many segments it took */
};

/*
 * Fill *p with a new pool of nsegs segments of seg_size bytes (a power of
 * two, 4 KiB..64 MiB), bound to numa_node (-1: no binding; binding failure
 * only warns). Returns 0 or -errno with the error trail set.
 */
int weir_pool_init(struct weir_pool *p, uint32_t id, uint32_t nsegs, uint32_t seg_size, int numa_node);
/*
 * Fill *p with a pool in the shared-memory file `name` (shm/shmfile.h:
 * NAME or FOLDER/NAME, mode 0600, owner lock, a dead owner's file
 * replaced). Every page is allocated at creation (weir_shm_reserve, after
 * the NUMA binding): a pool larger than what /dev/shm has free is refused
 * up front (-ENOSPC, naming the bytes asked and free), never a SIGBUS
 * later, and leaves no file. huge: ask for
 * transparent huge pages; when the system does not allow them for shared
 * memory, warn once and use normal pages. 0 or -errno with the trail set.
 */
int weir_pool_create_shm(struct weir_pool *p, const char *name, uint32_t id, uint32_t nsegs, uint32_t seg_size,
			 int numa_node, bool huge);
/*
 * Map another process's pool. Refuses, naming the problem, a file that is
 * truncated, not a weir pool, of another layout version, not yet ready, or
 * whose sizes do not add up, or whose id is not expect_id. Every header
 * field is read once and checked before use. 0 or -errno.
 */
int weir_pool_attach(struct weir_pool *p, const char *name, uint32_t expect_id);
/* Does the pool's owner live? (Kernel-held lock, not a PID.) */
bool weir_pool_owner_alive(const struct weir_pool *p);
/*
 * Fill *share with nsegs segments taken from parent's free list (parent:
 * a pool this process created, not a share), on a free list of its own.
 * get/put/free_count then work on the share alone; weir_pool_owns and
 * weir_pool_addr as on parent. -ENOBUFS, with the trail naming both numbers
 * ("N segments wanted, F free of T"), when parent has fewer free; nothing
 * is taken then. Parent must outlive the share.
 */
int weir_pool_share(struct weir_pool *share, struct weir_pool *parent, uint32_t nsegs);
/* Unmap (and, for the owner of a shared pool, remove its file). Segments
 * still owned elsewhere are simply gone. A share gives the segments on its
 * free list back to its parent; one that is missing stays lost to the
 * parent (weir_pool_missing said so before). */
void weir_pool_release(struct weir_pool *p);
/* Release a share without giving its segments back: for when another
 * process may still read them. They stay out of the parent's free list
 * for the parent's lifetime. */
void weir_pool_abandon(struct weir_pool *p);
/* Segments of p that are not on its free list now: 0 once everything came
 * back (exact when quiescent). For a share, of the segments it took. */
uint32_t weir_pool_missing(const struct weir_pool *p);

/* Take a free segment: 0 and *seg set, or -ENOBUFS when none is free. */
int weir_pool_get(struct weir_pool *p, weir_seg *seg);
/* Give a segment back; the caller must own it. */
void weir_pool_put(struct weir_pool *p, weir_seg seg);
/* Segments on the free list now (a snapshot; exact when quiescent). */
uint32_t weir_pool_free_count(const struct weir_pool *p);

/* True when seg names a segment of this pool. */
static inline bool weir_pool_owns(const struct weir_pool *p, weir_seg seg)
{
	return weir_seg_pool(seg) == p->id && weir_seg_index(seg) < p->nsegs;
}
/* The segment's bytes; seg must satisfy weir_pool_owns. */
static inline uint8_t *weir_pool_addr(const struct weir_pool *p, weir_seg seg)
{
	return p->base + ((size_t)weir_seg_index(seg) << p->seg_shift);
}

#endif
