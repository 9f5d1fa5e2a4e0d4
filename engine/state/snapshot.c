/* engine/state/snapshot.c - snapshot buffers and seals; see snapshot.h. */
#include "state/snapshot.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const char seal_magic[8] = { 'W', 'E', 'I', 'R', 'S', 'E', 'A', 'L' };

/* Mappings of freed big buffers, kept with their pages for the next
 * snapshot: a page touched for the first time costs a fault (tens of
 * microseconds in a VM, so a worker that wrote 100 MB into fresh pages
 * stood still for tens of milliseconds a checkpoint); a kept one costs
 * nothing. At most POOL_N mappings and POOL_BYTES of their pages. */
#define POOL_N 32
#define POOL_BYTES ((size_t)1 << 30)
struct kept {
	uint8_t *p;
	size_t reserved, cap;
};
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kept pool[POOL_N];
static int npool;
static size_t pool_bytes;

/* The kept mapping with the most pages, or one with none. */
static struct kept take_mapping(void)
{
	struct kept k = { 0 };
	pthread_mutex_lock(&pool_mu);
	int best = -1;
	for (int i = 0; i < npool; i++)
		if (best < 0 || pool[i].cap > pool[best].cap)
			best = i;
	if (best >= 0) {
		k = pool[best];
		pool[best] = pool[--npool];
		pool_bytes -= k.cap;
	}
	pthread_mutex_unlock(&pool_mu);
	return k;
}

/* Keep the mapping of a freed buffer. It is freed by whoever is done with
 * it, for a snapshot piece the checkpoint writer's thread, not a worker:
 * that thread also faults in a quarter more pages, so that state that
 * grows between checkpoints finds pages ready in the next snapshot too. */
static void give_mapping(uint8_t *p, size_t reserved, size_t cap)
{
	size_t more = cap / 4 / SNAP_BIG * SNAP_BIG;
	if (more > reserved - cap)
		more = reserved - cap;
	pthread_mutex_lock(&pool_mu);
	bool keep = npool < POOL_N && pool_bytes + cap + more <= POOL_BYTES;
	if (keep)
		pool_bytes += cap + more; /* room held while the pages come in, unlocked */
	pthread_mutex_unlock(&pool_mu);
	if (!keep) {
		munmap(p, reserved);
		return;
	}
	if (more && mprotect(p + cap, more, PROT_READ | PROT_WRITE) < 0) {
		pthread_mutex_lock(&pool_mu);
		pool_bytes -= more; /* kept as it was: cap stays what is writable */
		pthread_mutex_unlock(&pool_mu);
		more = 0;
	}
	/* a refusal (a kernel before 5.14) only means the pages come in on
	 * first touch instead */
	if (more)
		(void)madvise(p + cap, more, MADV_POPULATE_WRITE);
	cap += more;
	pthread_mutex_lock(&pool_mu);
	if (npool < POOL_N) {
		pool[npool++] = (struct kept){ p, reserved, cap };
		p = NULL;
	} else {
		pool_bytes -= cap;
	}
	pthread_mutex_unlock(&pool_mu);
	if (p)
		munmap(p, reserved);
}

/* Make room for need bytes in all in a reserved mapping (see snapshot.h):
 * writable in steps of SNAP_BIG, moved (mremap, no copy) only past the
 * reservation. 0 or -1. */
static int grow_mapped(struct snapbuf *b, size_t need)
{
	size_t cap = need > SIZE_MAX - SNAP_BIG ? need : (need + SNAP_BIG - 1) / SNAP_BIG * SNAP_BIG;
	if (!b->reserved) {
		struct kept k = take_mapping();
		if (!k.p) {
			k.reserved = cap > SNAP_RESERVE / 2 ? cap * 2 : SNAP_RESERVE;
			k.p = mmap(NULL, k.reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			if (k.p == MAP_FAILED)
				return -1;
		}
		if (cap > k.cap && cap <= k.reserved) {
			if (mprotect(k.p + k.cap, cap - k.cap, PROT_READ | PROT_WRITE) < 0) {
				give_mapping(k.p, k.reserved, k.cap);
				return -1;
			}
			k.cap = cap;
		}
		if (b->len) /* once, at most SNAP_BIG bytes (cap >= need > len) */
			memcpy(k.p, b->p, b->len);
		free(b->p);
		b->p = k.p;
		b->reserved = k.reserved;
		b->cap = k.cap;
		if (cap <= b->cap)
			return 0;
	}
	if (cap > b->reserved) {
		size_t res = cap * 2;
		uint8_t *p = mremap(b->p, b->reserved, res, MREMAP_MAYMOVE);
		if (p == MAP_FAILED)
			return -1;
		b->p = p;
		b->reserved = res;
	}
	if (mprotect(b->p + b->cap, cap - b->cap, PROT_READ | PROT_WRITE) < 0)
		return -1;
	b->cap = cap;
	return 0;
}

void *snap_room(struct snapbuf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (n > b->cap - b->len) {
		if (n > SIZE_MAX - b->len) {
			b->oom = true;
			return NULL;
		}
		if (b->reserved || b->len + n > SNAP_BIG) {
			if (grow_mapped(b, b->len + n) < 0) {
				b->oom = true;
				return NULL;
			}
		} else {
			size_t cap = b->cap ? b->cap : 4096;
			while (cap - b->len < n)
				cap *= 2;
			uint8_t *p = realloc(b->p, cap);
			if (!p) {
				b->oom = true;
				return NULL;
			}
			b->p = p;
			b->cap = cap;
		}
	}
	void *q = b->p + b->len;
	b->len += n;
	return q;
}

void snap_put(struct snapbuf *b, const void *p, size_t n)
{
	void *q = snap_room(b, n);
	if (q && n)
		memcpy(q, p, n);
}

void snap_free(struct snapbuf *b)
{
	if (b->reserved)
		give_mapping(b->p, b->reserved, b->cap);
	else
		free(b->p);
	memset(b, 0, sizeof(*b));
}

uint64_t weir_snap_sum(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

int weir_snap_seal(struct snapbuf *b)
{
	if (b->oom)
		return -1;
	uint64_t sum = XXH3_64bits(b->p, b->len), len = b->len;
	snap_u64(b, sum);
	snap_u64(b, len);
	snap_put(b, seal_magic, 8);
	return b->oom ? -1 : 0;
}

static uint64_t vec_sum(const struct snapvec *sv, int n)
{
	XXH3_state_t st;
	XXH3_INITSTATE(&st);
	XXH3_64bits_reset(&st);
	for (int i = 0; i < n; i++)
		if (sv->v[i].len)
			XXH3_64bits_update(&st, sv->v[i].p, sv->v[i].len);
	return XXH3_64bits_digest(&st);
}

int weir_snapvec_seal(struct snapvec *sv)
{
	uint64_t len = 0;
	for (int i = 0; i < sv->n; i++) {
		if (sv->v[i].oom)
			return -1;
		len += sv->v[i].len;
	}
	uint64_t sum = vec_sum(sv, sv->n);
	struct snapbuf *f = &sv->v[sv->n];
	memset(f, 0, sizeof(*f));
	snap_u64(f, sum);
	snap_u64(f, len);
	snap_put(f, seal_magic, 8);
	sv->n++;
	return f->oom ? -1 : 0;
}

size_t weir_snapvec_len(const struct snapvec *sv)
{
	size_t len = 0;
	for (int i = 0; i < sv->n; i++)
		len += sv->v[i].len;
	return len;
}

uint64_t weir_snapvec_sum(const struct snapvec *sv)
{
	return vec_sum(sv, sv->n);
}

void weir_snapvec_free(struct snapvec *sv)
{
	for (int i = 0; sv->v && i < sv->n; i++)
		snap_free(&sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

int snaprec_put(struct snapbuf *b, uint32_t tag, int64_t ts, const void *data, uint32_t len)
{
	size_t n = snaprec_size(len);
	uint8_t *q = snap_room(b, n);
	if (!q)
		return -1;
	memcpy(q, &len, 4);
	memcpy(q + 4, &tag, 4);
	memcpy(q + 8, &ts, 8);
	if (len)
		memcpy(q + 16, data, len);
	memset(q + 16 + len, 0, n - 16 - len);
	return 0;
}

void cow_marks_init(struct cow_marks *m, uint64_t *todo, uint32_t nchunks)
{
	size_t words = cow_marks_words(nchunks);
	m->nchunks = m->left = nchunks;
	m->next = 0;
	m->todo = todo;
	memset(todo, 0xff, sizeof(uint64_t) * words);
	if (nchunks % 64)
		todo[words - 1] = (1ull << (nchunks % 64)) - 1;
}

uint32_t cow_marks_next(struct cow_marks *m)
{
	uint32_t c = m->next;
	while (!cow_marks_pending(m, c))
		c = c + 1 < m->nchunks ? c + 1 : 0;
	m->next = c + 1 < m->nchunks ? c + 1 : 0;
	return c;
}

long weir_snap_unseal(const uint8_t *p, size_t len, const char **why)
{
	if (len < 24) {
		*why = "truncated (shorter than its footer)";
		return -1;
	}
	uint64_t sum, n;
	memcpy(&sum, p + len - 24, 8);
	memcpy(&n, p + len - 16, 8);
	if (memcmp(p + len - 8, seal_magic, 8)) {
		*why = "no footer at its end (truncated, or bytes appended)";
		return -1;
	}
	if (n != len - 24) {
		*why = "its length differs from the one its footer records";
		return -1;
	}
	if (XXH3_64bits(p, (size_t)n) != sum) {
		*why = "checksum mismatch (a damaged byte)";
		return -1;
	}
	return (long)n;
}
