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
	done_testing();
}
