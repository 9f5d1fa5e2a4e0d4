/* shm/pool.c - see pool.h. */
#include "shm/pool.h"
#include "base/err.h"

#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

struct layout {
	uint32_t ring_size;
	size_t ring_off;
	size_t segs_off;
	size_t len;
};

static int plan_layout(uint32_t id, uint32_t nsegs, uint32_t seg_size, struct layout *l)
{
	if (seg_size < 4096 || seg_size > (64u << 20) || (seg_size & (seg_size - 1))) {
		weir_err_set("segment size %u is not a power of two between 4 KiB and 64 MiB", seg_size);
		return -EINVAL;
	}
	if (nsegs == 0 || nsegs > WEIR_SEG_MAX_INDEX || id > 255) {
		weir_err_set("pool %u: %u segments is out of range (1..%u)", id, nsegs, WEIR_SEG_MAX_INDEX);
		return -EINVAL;
	}
	/* ck_ring keeps one slot empty, hence nsegs + 1. */
	l->ring_size = pow2_at_least(nsegs + 1);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	l->ring_off = (sizeof(struct weir_pool_hdr) + 63) & ~(size_t)63;
	l->segs_off = (l->ring_off + (size_t)l->ring_size * sizeof(struct weir_seg_slot) + page - 1) & ~(page - 1);
	l->len = l->segs_off + (size_t)nsegs * seg_size;
	return 0;
}

/* Bind the mapping m to numa_node (-1: leave it). */
static void bind_node(struct weir_pool *p, void *m, const struct layout *l, int numa_node)
{
	if (numa_node >= 0 && numa_available() >= 0 && numa_node <= numa_max_node()) {
		numa_tonode_memory(m, l->len, numa_node);
		p->numa_bound = true;
	}
}

/* Bind, pre-fault and format the mapping m as a pool; the magic goes last. */
static void format(struct weir_pool *p, void *m, const struct layout *l, uint32_t id, uint32_t nsegs,
		   uint32_t seg_size, int numa_node)
{
	bind_node(p, m, l, numa_node);
	/* Pre-fault from this thread (which the caller runs on the node), so
	 * the data path takes no page faults. */
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t off = 0; off < l->len; off += page)
		((volatile uint8_t *)m)[off] = 0;

	struct weir_pool_hdr *h = m;
	h->version = WEIR_POOL_VERSION;
	h->seg_size = seg_size;
	h->nsegs = nsegs;
	h->pool_id = id;
	h->ring_off = l->ring_off;
	h->segs_off = l->segs_off;
	h->map_len = l->len;
	weir_ring_init(&h->free, l->ring_size);

	p->hdr = h;
	p->ring = (struct weir_seg_slot *)((uint8_t *)m + l->ring_off);
	p->base = (uint8_t *)m + l->segs_off;
	p->id = id;
	p->seg_size = seg_size;
	p->seg_shift = (uint32_t)__builtin_ctz(seg_size);
	p->nsegs = nsegs;
	p->map_len = l->len;
	p->freelist = &h->free;
	for (uint32_t i = 0; i < nsegs; i++)
		weir_ring_seg_put_mp(&h->free, p->ring, weir_seg_make(id, i)); /* mp: keeps p_head in step */
	/* The magic goes last: a reader that sees it sees a complete header
	 * (pairs with the acquire load in weir_pool_attach). */
	__atomic_store_n(&h->magic, WEIR_POOL_MAGIC, __ATOMIC_RELEASE);
}

int weir_pool_init(struct weir_pool *p, uint32_t id, uint32_t nsegs, uint32_t seg_size, int numa_node)
{
	memset(p, 0, sizeof(*p));
	p->shm.fd = -1;
	struct layout l;
	int e = plan_layout(id, nsegs, seg_size, &l);
	if (e < 0)
		return e;
	void *m = mmap(NULL, l.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		e = errno;
		weir_err_errno(e, "pool %u: mmap %zu bytes", id, l.len);
		return -e;
	}
	format(p, m, &l, id, nsegs, seg_size, numa_node);
	return 0;
}

/* Whether files on /dev/shm may get transparent huge pages: that is the
 * tmpfs mount's huge= option (shmem_enabled in /sys only covers internal
 * shared memory). */
static bool shm_mount_thp(void)
{
	FILE *f = fopen("/proc/self/mounts", "r");
	if (!f)
		return false;
	char line[512];
	bool ok = false;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " /dev/shm ") && (strstr(line, "huge=always") || strstr(line, "huge=advise") ||
						  strstr(line, "huge=within_size")))
			ok = true;
	fclose(f);
	return ok;
}

int weir_pool_create_shm(struct weir_pool *p, const char *name, uint32_t id, uint32_t nsegs, uint32_t seg_size,
			 int numa_node, bool huge)
{
	memset(p, 0, sizeof(*p));
	p->shm.fd = -1;
	struct layout l;
	int e = plan_layout(id, nsegs, seg_size, &l);
	if (e < 0)
		return e;
	if ((e = weir_shm_create(&p->shm, name, l.len, NULL)) < 0)
		return e;
	if (huge) {
		if (shm_mount_thp() && madvise(p->shm.map, l.len, MADV_HUGEPAGE) == 0)
			p->huge = true;
		else
			fprintf(stderr, "weir: pool %s: /dev/shm is not mounted with huge=always, advise or "
				"within_size; using normal pages\n", name);
	}
	/* Every page allocated now (after the binding, which the file's pages
	 * follow): a /dev/shm that fills up fails here, not with a SIGBUS
	 * when a segment is first touched. */
	bind_node(p, p->shm.map, &l, numa_node);
	if ((e = weir_shm_reserve(&p->shm)) < 0) {
		weir_shm_close(&p->shm);
		return e;
	}
	format(p, p->shm.map, &l, id, nsegs, seg_size, -1);
	return 0;
}

int weir_pool_attach(struct weir_pool *p, const char *name, uint32_t expect_id)
{
	memset(p, 0, sizeof(*p));
	p->shm.fd = -1;
	int e = weir_shm_open(&p->shm, name, sizeof(struct weir_pool_hdr));
	if (e < 0)
		return e;
	const struct weir_pool_hdr *h = p->shm.map;
	/* Read every field once, into locals, after the magic (acquire:
	 * pairs with the release store in format). */
	uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_ACQUIRE);
	struct weir_pool_hdr c;
	memcpy(&c, h, sizeof(c));
	const char *why = NULL;
	char buf[160];
	struct layout l;
	if (magic == 0) {
		why = "not ready (its owner has not finished creating it)";
	} else if (magic != WEIR_POOL_MAGIC) {
		why = "not a weir pool (bad magic)";
	} else if (c.version != WEIR_POOL_VERSION) {
		snprintf(buf, sizeof(buf), "layout version %u, this build reads %u", c.version, WEIR_POOL_VERSION);
		why = buf;
	} else if (c.pool_id != expect_id) {
		snprintf(buf, sizeof(buf), "pool id %u, expected %u (another pool's file)", c.pool_id, expect_id);
		why = buf;
	} else if (plan_layout(c.pool_id, c.nsegs, c.seg_size, &l) < 0 || l.ring_off != c.ring_off ||
		   l.segs_off != c.segs_off || l.len != c.map_len) {
		why = "its sizes do not add up";
	} else if (c.map_len != p->shm.len) {
		snprintf(buf, sizeof(buf), "truncated: the file has %zu bytes, its header says %llu", p->shm.len,
			 (unsigned long long)c.map_len);
		why = buf;
	}
	if (why) {
		weir_shm_close(&p->shm);
		return weir_err_set("pool '%s': %s", name, why), -EPROTO;
	}
	p->hdr = p->shm.map;
	p->ring = (struct weir_seg_slot *)((uint8_t *)p->shm.map + c.ring_off);
	p->base = (uint8_t *)p->shm.map + c.segs_off;
	p->id = c.pool_id;
	p->seg_size = c.seg_size;
	p->seg_shift = (uint32_t)__builtin_ctz(c.seg_size);
	p->nsegs = c.nsegs;
	p->map_len = c.map_len;
	p->freelist = &p->hdr->free; /* the owner's: not ours to take from */
	p->attached = true;
	return 0;
}

bool weir_pool_owner_alive(const struct weir_pool *p)
{
	return p->shm.map ? weir_shm_owner_alive(&p->shm) : true;
}

/* Shares are taken and given back one at a time in a process, so that two
 * jobs carving one pool at once never both fail halfway. */
static pthread_mutex_t share_lock = PTHREAD_MUTEX_INITIALIZER;

int weir_pool_share(struct weir_pool *share, struct weir_pool *parent, uint32_t nsegs)
{
	memset(share, 0, sizeof(*share));
	share->shm.fd = -1;
	if (parent->attached || parent->parent || nsegs == 0)
		return weir_err_set("pool %u: cannot take a share of %u segments (an attached pool, a share, or none "
				    "wanted)", parent->id, nsegs), -EINVAL;
	uint32_t ring_size = pow2_at_least(nsegs + 1);
	size_t ring_off = (sizeof(struct ck_ring) + 63) & ~(size_t)63;
	size_t len = (ring_off + (size_t)ring_size * sizeof(struct weir_seg_slot) + 63) & ~(size_t)63;
	uint8_t *m = aligned_alloc(64, len);
	if (!m)
		return weir_err_set("pool %u: out of memory for a share of %u segments", parent->id, nsegs), -ENOMEM;
	struct ck_ring *fl = (struct ck_ring *)m;
	struct weir_seg_slot *ring = (struct weir_seg_slot *)(m + ring_off);
	weir_ring_init(fl, ring_size);
	pthread_mutex_lock(&share_lock);
	uint32_t free_now = weir_pool_free_count(parent), got = 0;
	weir_seg s;
	while (got < nsegs && free_now >= nsegs && weir_pool_get(parent, &s) == 0) {
		weir_ring_seg_put_mp(fl, ring, s);
		got++;
	}
	if (got < nsegs) {
		while (weir_ring_seg_get_mc(fl, ring, &s))
			weir_pool_put(parent, s);
		pthread_mutex_unlock(&share_lock);
		free(m);
		return weir_err_set("pool %u: %u segments wanted, %u free of %u", parent->id, nsegs, free_now,
				    parent->nsegs), -ENOBUFS;
	}
	pthread_mutex_unlock(&share_lock);
	share->hdr = parent->hdr;
	share->ring = ring;
	share->base = parent->base;
	share->id = parent->id;
	share->seg_size = parent->seg_size;
	share->seg_shift = parent->seg_shift;
	share->nsegs = parent->nsegs; /* descriptors index the whole pool */
	share->map_len = parent->map_len;
	share->numa_bound = parent->numa_bound;
	share->huge = parent->huge;
	share->freelist = fl;
	share->parent = parent;
	share->share = nsegs;
	return 0;
}

uint32_t weir_pool_missing(const struct weir_pool *p)
{
	uint32_t have = p->parent ? p->share : p->nsegs, free_now = weir_pool_free_count(p);
	return free_now < have ? have - free_now : 0;
}

void weir_pool_abandon(struct weir_pool *p)
{
	if (p->parent)
		free(p->freelist);
	memset(p, 0, sizeof(*p));
	p->shm.fd = -1;
}

void weir_pool_release(struct weir_pool *p)
{
	if (p->parent) {
		weir_seg s;
		pthread_mutex_lock(&share_lock);
		while (weir_ring_seg_get_mc(p->freelist, p->ring, &s))
			weir_pool_put(p->parent, s);
		pthread_mutex_unlock(&share_lock);
		free(p->freelist);
	} else if (p->shm.map)
		weir_shm_close(&p->shm);
	else if (p->hdr)
		munmap(p->hdr, p->map_len);
	memset(p, 0, sizeof(*p));
	p->shm.fd = -1;
}

int weir_pool_get(struct weir_pool *p, weir_seg *seg)
{
	return weir_ring_seg_get_mc(p->freelist, p->ring, seg) ? 0 : -ENOBUFS;
}

void weir_pool_put(struct weir_pool *p, weir_seg seg)
{
	/* Cannot fail: the ring holds more slots than the pool has segments,
	 * and each segment is on the list at most once (single ownership). */
	bool ok = weir_ring_seg_put_mp(p->freelist, p->ring, seg);
	(void)ok;
}

uint32_t weir_pool_free_count(const struct weir_pool *p)
{
	return weir_ring_count(p->freelist);
}
