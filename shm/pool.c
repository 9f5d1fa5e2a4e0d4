/* shm/pool.c - see pool.h. */
#include "shm/pool.h"
#include "base/err.h"

#include <errno.h>
#include <numa.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t r = 1;
	while (r < n)
		r <<= 1;
	return r;
}

int weir_pool_init(struct weir_pool *p, uint32_t id, uint32_t nsegs, uint32_t seg_size, int numa_node)
{
	memset(p, 0, sizeof(*p));
	if (seg_size < 4096 || seg_size > (64u << 20) || (seg_size & (seg_size - 1))) {
		weir_err_set("segment size %u is not a power of two between 4 KiB and 64 MiB", seg_size);
		return -EINVAL;
	}
	if (nsegs == 0 || nsegs > WEIR_SEG_MAX_INDEX || id > 255) {
		weir_err_set("pool %u: %u segments is out of range (1..%u)", id, nsegs, WEIR_SEG_MAX_INDEX);
		return -EINVAL;
	}
	/* ck_ring keeps one slot empty, hence nsegs + 1. */
	uint32_t ring_size = pow2_at_least(nsegs + 1);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t ring_off = (sizeof(struct weir_pool_hdr) + 63) & ~(size_t)63;
	size_t segs_off = (ring_off + (size_t)ring_size * sizeof(struct weir_seg_slot) + page - 1) & ~(page - 1);
	size_t len = segs_off + (size_t)nsegs * seg_size;

	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		int e = errno;
		weir_err_errno(e, "pool %u: mmap %zu bytes", id, len);
		return -e;
	}
	if (numa_node >= 0 && numa_available() >= 0 && numa_node <= numa_max_node()) {
		numa_tonode_memory(m, len, numa_node);
		p->numa_bound = true;
	}
	/* Pre-fault from this thread (which the caller runs on the node), so
	 * the data path takes no page faults. */
	for (size_t off = 0; off < len; off += page)
		((volatile uint8_t *)m)[off] = 0;

	struct weir_pool_hdr *h = m;
	h->version = WEIR_POOL_VERSION;
	h->seg_size = seg_size;
	h->nsegs = nsegs;
	h->pool_id = id;
	h->ring_off = ring_off;
	h->segs_off = segs_off;
	h->map_len = len;
	weir_ring_init(&h->free, ring_size);

	p->hdr = h;
	p->ring = (struct weir_seg_slot *)((uint8_t *)m + ring_off);
	p->base = (uint8_t *)m + segs_off;
	p->id = id;
	p->seg_size = seg_size;
	p->seg_shift = (uint32_t)__builtin_ctz(seg_size);
	p->nsegs = nsegs;
	p->map_len = len;
	for (uint32_t i = 0; i < nsegs; i++) {
		weir_ring_seg_put_mp(&h->free, p->ring, weir_seg_make(id, i)); /* mp: keeps p_head in step */
	}
	/* The magic goes last: a reader that sees it sees a complete header. */
	ck_pr_fence_store();
	ck_pr_store_64(&h->magic, WEIR_POOL_MAGIC);
	return 0;
}

void weir_pool_release(struct weir_pool *p)
{
	if (p->hdr)
		munmap(p->hdr, p->map_len);
	memset(p, 0, sizeof(*p));
}

int weir_pool_get(struct weir_pool *p, weir_seg *seg)
{
	return weir_ring_seg_get_mc(&p->hdr->free, p->ring, seg) ? 0 : -ENOBUFS;
}

void weir_pool_put(struct weir_pool *p, weir_seg seg)
{
	/* Cannot fail: the ring holds more slots than the pool has segments,
	 * and each segment is on the list at most once (single ownership). */
	bool ok = weir_ring_seg_put_mp(&p->hdr->free, p->ring, seg);
	(void)ok;
}

uint32_t weir_pool_free_count(const struct weir_pool *p)
{
	return weir_ring_count(&p->hdr->free);
}
