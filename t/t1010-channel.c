/* t1010-channel: credits, order of data and events, floating segments,
 * hostile messages, and segment accounting at release. */
#include "tap.h"
#include "shm/channel.h"
#include "base/err.h"

#include <errno.h>
#include <string.h>

int main(void)
{
	struct weir_pool pool;
	struct weir_doorbell cdb, pdb;
	weir_doorbell_init(&cdb);
	weir_doorbell_init(&pdb);
	if (weir_pool_init(&pool, 1, 16, 4096, -1) < 0)
		bail("pool: %s", weir_err_msg());

	struct weir_chan c;
	is_int(weir_chan_init(&c, &pool, 20, 4, &cdb, &pdb), -ENOBUFS, "more credits than the pool has: ENOBUFS");
	is_int(weir_pool_free_count(&pool), 16, "a failed init gives back what it took");

	is_int(weir_chan_init(&c, &pool, 3, 1, &cdb, &pdb), 0, "channel with 3 credits");
	is_int(weir_pool_free_count(&pool), 13, "it holds its 3 exclusive segments");

	weir_seg s[5];
	ok(weir_chan_can_send(&c), "fresh channel has credit");
	int within = 0;
	for (int i = 0; i < 3; i++)
		within += weir_chan_acquire(&c, &s[i]) == 0;
	is_int(within, 3, "three acquires within credit");
	ok(!weir_chan_can_send(&c), "no credit once all three are out");
	is_int(weir_chan_acquire(&c, &s[3]), 1, "a fourth is floating (over credit)");
	is_int(weir_pool_free_count(&pool), 12, "the floating one came from the pool");
	is_int(weir_chan_acquire(&c, &s[4]), -ENOBUFS, "a second floating one is beyond max_floating (1)");

	memcpy(weir_pool_addr(&pool, s[0]), "abc", 3);
	is_int(weir_chan_send(&c, s[0], 3), 0, "send a segment");
	is_int(weir_chan_send_event(&c, 9, 42), 0, "then an event");
	is_int(weir_chan_send(&c, s[1], 100), 0, "then another segment");
	is_int(weir_chan_pending(&c), 3, "three messages wait");

	struct weir_chan_msg m;
	is_int(weir_chan_recv(&c, &m), 1, "recv 1");
	ok(m.kind == WEIR_MSG_DATA && m.seg == s[0] && m.val == 3 &&
	   !memcmp(weir_pool_addr(&pool, m.seg), "abc", 3), "first: the data segment, bytes intact");
	is_int(weir_chan_recv(&c, &m), 1, "recv 2");
	ok(m.kind == WEIR_MSG_EVENT && m.seg == 9 && m.val == 42, "second: the event, in order");
	is_int(weir_chan_recv(&c, &m), 1, "recv 3");
	ok(m.kind == WEIR_MSG_DATA && m.seg == s[1], "third: the second segment");
	is_int(weir_chan_recv(&c, &m), 0, "then empty");

	weir_chan_give(&c, s[0]);
	weir_chan_give(&c, s[1]);
	ok(weir_chan_can_send(&c), "credit returns with the handed-back segments");
	/* the channel owned 4 (one floating): one returned goes back to the pool */
	is_int(weir_pool_free_count(&pool), 13, "the floating segment went home to the pool");
	is_int(c.stats.floating_taken, 1, "stats count one floating segment");

	/* settle: after the producer's last message the consumer sends the
	 * floating segments it handed back home to the pool */
	{
		struct weir_chan d;
		weir_seg x[4];
		if (weir_chan_init(&d, &pool, 1, 3, &cdb, &pdb) < 0)
			bail("settle channel: %s", weir_err_msg());
		uint32_t before = weir_pool_free_count(&pool);
		int floating = 0;
		for (int i = 0; i < 4; i++) {
			floating += weir_chan_acquire(&d, &x[i]) == 1;
			weir_chan_send(&d, x[i], 8);
		}
		weir_chan_send_event(&d, 1, 0);
		for (int i = 0; i < 5; i++) {
			weir_chan_recv(&d, &m);
			if (m.kind == WEIR_MSG_DATA)
				weir_chan_give(&d, m.seg);
		}
		is_int(floating, 3, "three of four segments were floating");
		is_int(weir_pool_free_count(&pool), before - 3, "they stay away while only the ring holds them");
		weir_chan_settle(&d);
		is_int(weir_pool_free_count(&pool), before, "settle sends the floating ones home");
		weir_chan_release(&d);
	}

	/* hostile messages: built by hand in the ring, as a corrupt peer would */
	struct weir_chan_msg bad[3] = {
		{ .kind = WEIR_MSG_DATA, .seg = weir_seg_make(1, 99), .val = 8 },
		{ .kind = WEIR_MSG_DATA, .seg = s[2], .val = 5000 },
		{ .kind = 77, .seg = 0, .val = 0 },
	};
	const char *why[3] = { "outside pool", "exceeds segment size", "unknown message kind" };
	for (int i = 0; i < 3; i++) {
		weir_ring_msg_put(&c.r->data, c.data_buf, &bad[i]);
		is_int(weir_chan_recv(&c, &m), -EPROTO, "hostile message %d is refused", i);
		ok(strstr(weir_err_msg(), why[i]) != NULL, "with '%s': %s", why[i], weir_err_msg());
	}

	/* the bad-length message named s[2], a real segment, and recv handed
	 * it back; but it never went out through send, so the producer
	 * refuses to take it back (a hostile consumer cannot inject
	 * descriptors into the free list) and still holds it itself */
	weir_chan_settle(&c); /* reclaim what came back */
	ok(c.stats.bad_returns == 1, "a segment handed back that was never sent is refused");
	weir_chan_recycle(&c, s[2]);
	weir_chan_recycle(&c, s[3]);
	weir_chan_release(&c);
	is_int(weir_pool_free_count(&pool), 16, "release returns every segment: none leaked");
	weir_pool_release(&pool);
	done_testing();
}
