/* t1000-pool: segment pool: sizes, ownership, exhaustion, descriptors. */
#include "tap.h"
#include "shm/pool.h"
#include "base/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	struct weir_pool p;

	is_int(weir_pool_init(&p, 0, 16, 3000, -1), -EINVAL, "segment size not a power of two is refused");
	ok(strstr(weir_err_msg(), "3000") != NULL, "the error names the size: %s", weir_err_msg());
	is_int(weir_pool_init(&p, 0, 0, 4096, -1), -EINVAL, "zero segments are refused");
	is_int(weir_pool_init(&p, 300, 4, 4096, -1), -EINVAL, "pool id beyond 255 is refused");

	is_int(weir_pool_init(&p, 7, 64, 4096, 0), 0, "a pool of 64 x 4 KiB");
	is_int(p.hdr->magic, WEIR_POOL_MAGIC, "header carries the magic");
	is_int(p.hdr->version, WEIR_POOL_VERSION, "and the layout version");
	is_int(weir_pool_free_count(&p), 64, "all segments start free");

	weir_seg segs[64];
	bool seen[64] = { false };
	int distinct = 0, in_pool = 0;
	for (int i = 0; i < 64; i++) {
		if (weir_pool_get(&p, &segs[i]) < 0)
			bail("get %d failed", i);
		in_pool += weir_pool_owns(&p, segs[i]);
		uint32_t idx = weir_seg_index(segs[i]);
		if (idx < 64 && !seen[idx]) {
			seen[idx] = true;
			distinct++;
		}
	}
	is_int(distinct, 64, "64 gets give 64 distinct segments");
	is_int(in_pool, 64, "each descriptor names this pool");
	is_int(weir_seg_pool(segs[0]), 7, "descriptor carries the pool id");
	weir_seg extra;
	is_int(weir_pool_get(&p, &extra), -ENOBUFS, "an empty pool says ENOBUFS");

	/* segments are disjoint, page aligned and writable */
	for (int i = 0; i < 64; i++)
		memset(weir_pool_addr(&p, segs[i]), i, 4096);
	int intact = 0;
	for (int i = 0; i < 64; i++) {
		uint8_t *b = weir_pool_addr(&p, segs[i]);
		intact += b[0] == i && b[4095] == i && ((uintptr_t)b & 4095) == 0;
	}
	is_int(intact, 64, "segments are page aligned and do not overlap");

	for (int i = 0; i < 64; i++)
		weir_pool_put(&p, segs[i]);
	is_int(weir_pool_free_count(&p), 64, "every put segment is free again");
	ok(!weir_pool_owns(&p, weir_seg_make(7, 64)), "index past the end is not ours");
	ok(!weir_pool_owns(&p, weir_seg_make(8, 0)), "another pool id is not ours");
	weir_pool_release(&p);

	/* shares: a part of a pool on a free list of its own */
	struct weir_pool parent, a, b, c;
	is_int(weir_pool_init(&parent, 3, 32, 4096, -1), 0, "a pool of 32 to carve");
	is_int(weir_pool_share(&a, &parent, 20), 0, "a share of 20");
	is_int(weir_pool_free_count(&parent), 12, "the pool has 12 free left");
	is_int(weir_pool_free_count(&a), 20, "the share has its 20 free");
	is_int(weir_pool_share(&b, &parent, 13), -ENOBUFS, "a share of 13 when 12 are free is refused");
	ok(strstr(weir_err_msg(), "13 segments wanted, 12 free of 32") != NULL, "naming the numbers: %s", weir_err_msg());
	is_int(weir_pool_free_count(&parent), 12, "and takes nothing");
	is_int(weir_pool_share(&c, &a, 2), -EINVAL, "a share of a share is refused");
	is_int(weir_pool_share(&b, &parent, 12), 0, "a share of the 12 left");
	weir_seg got[32];
	int n = 0, ours = 0;
	while (weir_pool_get(&a, &got[n]) == 0)
		ours += weir_pool_owns(&parent, got[n]) && weir_seg_pool(got[n]) == 3, n++;
	is_int(n, 20, "a share hands out exactly its 20");
	is_int(ours, 20, "descriptors of the pool (its id, its indices)");
	ok(weir_pool_addr(&a, got[0]) == weir_pool_addr(&parent, got[0]), "at the pool's bytes");
	is_int(weir_pool_missing(&a), 20, "missing: the 20 out");
	is_int(weir_pool_missing(&b), 0, "the other share misses none");
	for (int i = 1; i < n; i++)
		weir_pool_put(&a, got[i]);
	is_int(weir_pool_missing(&a), 1, "one not put back is missing");
	weir_pool_put(&a, got[0]);
	is_int(weir_pool_missing(&a), 0, "none once all are back");
	weir_pool_release(&a);
	is_int(weir_pool_free_count(&parent), 20, "releasing a share gives its segments back to the pool");
	weir_pool_release(&b);
	is_int(weir_pool_free_count(&parent), 32, "and the other's: the whole pool is free");
	is_int(weir_pool_missing(&parent), 0, "a whole pool misses none");
	/* a share that someone elsewhere may still read is abandoned: its
	 * segments never go back to the pool */
	is_int(weir_pool_share(&a, &parent, 5), 0, "a share of 5");
	weir_pool_abandon(&a);
	is_int(weir_pool_free_count(&parent), 27, "an abandoned share's 5 stay out of the pool");
	is_int(weir_pool_share(&b, &parent, 28), -ENOBUFS, "and cannot be taken again");
	weir_pool_release(&parent);
	done_testing();
}
