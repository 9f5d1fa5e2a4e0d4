/* t1020-record: records through writer, channel and reader: sizes from 0
 * to several segments, alignment, timestamps, and malformed headers.
 * Randomized: prints its seed; WEIR_SEED=N replays. */
#include "tap.h"
#include "io/record.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>

#define SEG 4096

static void fill(uint8_t *b, uint32_t len, uint64_t id)
{
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(id * 31 + i);
}

static bool check(const weir_rec *r, uint32_t len, uint64_t id)
{
	if (r->len != len || r->ts != (int64_t)id * 3 - 7)
		return false;
	const uint8_t *b = r->data;
	for (uint32_t i = 0; i < len; i++)
		if (b[i] != (uint8_t)(id * 31 + i))
			return false;
	return true;
}

/* the prefetch callback of the key-hash test: hash = record id + 1 */
enum { N = 3000 };
static uint8_t seen[N];
struct ahead {
	int last_read;
	int early;	/* a hash of a record already read */
	int wrong;	/* a hash no record carries */
};

static void ahead_cb(void *arg, uint32_t kh)
{
	struct ahead *a = arg;
	if (kh == 0 || kh > N || (kh - 1) % 2) {
		a->wrong++;
		return;
	}
	if ((int)kh - 1 <= a->last_read)
		a->early++;
	seen[kh - 1]++;
}

int main(void)
{
	uint64_t seed = tap_seed(), rnd = seed;
	struct weir_pool pool;
	struct weir_doorbell db;
	weir_doorbell_init(&db);
	if (weir_pool_init(&pool, 0, 512, SEG, -1) < 0)
		bail("pool: %s", weir_err_msg());
	struct weir_chan ch;
	if (weir_chan_init(&ch, &pool, 8, 504, &db, &db) < 0)
		bail("chan: %s", weir_err_msg());
	struct weir_writer w;
	struct weir_reader r;
	weir_writer_init(&w, &ch);
	weir_reader_init(&r, &ch, 1 << 20);

	uint8_t *buf = malloc(4 * SEG);
	uint32_t lens[64];
	int bad = 0, misaligned = 0, total = 0, big = 0;
	for (int round = 0; round < 200; round++) {
		int n = 1 + (int)(tap_rand(&rnd) % 64);
		for (int i = 0; i < n; i++) {
			uint64_t pick = tap_rand(&rnd) % 100;
			lens[i] = pick < 10 ? 0 : pick < 80 ? (uint32_t)(tap_rand(&rnd) % 200)
				: pick < 95 ? (uint32_t)(tap_rand(&rnd) % SEG) : (uint32_t)(tap_rand(&rnd) % (3 * SEG));
			big += lens[i] > SEG - WEIR_REC_HDR;
			fill(buf, lens[i], (uint64_t)(total + i));
			if (weir_writer_put(&w, buf, lens[i], (int64_t)(total + i) * 3 - 7) < 0)
				bail("put: %s", weir_err_msg());
		}
		weir_writer_flush(&w);
		for (int i = 0; i < n; i++) {
			weir_rec rec;
			uint32_t code;
			uint64_t val;
			int rc = weir_reader_next(&r, &rec, &code, &val);
			if (rc != WEIR_READ_RECORD) {
				bad++;
				diag("round %d record %d: read returned %d (%s)", round, i, rc, weir_err_msg());
				break;
			}
			bad += !check(&rec, lens[i], (uint64_t)(total + i));
			misaligned += ((uintptr_t)rec.data & 7) != 0;
		}
		total += n;
		weir_rec rec;
		uint32_t code;
		uint64_t val;
		if (weir_reader_next(&r, &rec, &code, &val) != WEIR_READ_EMPTY)
			bad++;
	}
	is_int(bad, 0, "%d records (%d spanning segments) came back intact and in order", total, big);
	is_int(misaligned, 0, "every record's data is 8-byte aligned");
	ok(big > 0, "the random mix included records larger than a segment");

	/* Key hashes ride in the header; a reader with a prefetch callback is
	 * told the hashes of records ahead, each once, before it reads them,
	 * never those of markers or of records without one. */
	{
		struct ahead ah = { -1, 0, 0 };
		r.prefetch = NULL;
		uint64_t segs0 = ch.stats.segs_sent;
		int wrong_hash = 0, read = 0, evens = 0;
		for (int i = 0; i < N; i++) {
			uint32_t len = (uint32_t)(i % 40);
			fill(buf, len, (uint64_t)i);
			if (weir_writer_put_hash(&w, buf, len, (int64_t)i * 3 - 7, i % 2 ? 0 : (uint32_t)i + 1) < 0)
				bail("put: %s", weir_err_msg());
			evens += i % 2 == 0;
			if (i % 7 == 0)
				weir_writer_marker(&w, WEIR_KIND_WATERMARK, i);
			/* read as we go, so the ring never fills */
			if (i % 500 == 499 || i == N - 1) {
				weir_writer_flush(&w);
				for (;;) {
					weir_rec rec;
					uint32_t code;
					uint64_t val;
					r.prefetch = ahead_cb;
					r.prefetch_arg = &ah;
					int rc = weir_reader_next(&r, &rec, &code, &val);
					if (rc == WEIR_READ_EMPTY)
						break;
					if (rc != WEIR_READ_RECORD)
						continue;
					wrong_hash += r.khash != (read % 2 ? 0 : (uint32_t)read + 1) || !check(&rec, (uint32_t)(read % 40), (uint64_t)read);
					ah.last_read = read++;
				}
			}
		}
		int twice = 0, reported = 0;
		for (int i = 0; i < N; i++) {
			twice += seen[i] > 1;
			reported += seen[i] > 0;
		}
		uint64_t segs = ch.stats.segs_sent - segs0;
		is_int(read, N, "%d records with key hashes read back", N);
		is_int(wrong_hash, 0, "each came back with its key hash (0 where it had none)");
		is_int(ah.wrong + ah.early, 0, "the prefetch saw only records' hashes, of records not yet read");
		is_int(twice, 0, "no hash was handed to the prefetch twice");
		ok((uint64_t)reported + segs >= (uint64_t)evens && reported < evens,
		   "the hashes of all records with one but the first of each segment were prefetched (%d of %d, %llu segments)",
		   reported, evens, (unsigned long long)segs);
		r.prefetch = NULL;
	}
	ok(weir_writer_put(&w, buf, WEIR_REC_LEN_MAX + 1, 0) < 0 && strstr(weir_err_msg(), "longer than"),
	   "a record longer than a header can say is refused: %s", weir_err_msg());

	/* Debloating: with a fill hint the writer sends a segment once it
	 * holds that much; the reader turns the bytes it read per time into
	 * the hint that makes the credits hold the target time of them. */
	{
		struct weir_pool pool2;
		struct weir_chan ch2;
		if (weir_pool_init(&pool2, 0, 16, 32768, -1) < 0 || weir_chan_init(&ch2, &pool2, 4, 12, &db, &db) < 0)
			bail("pool/chan: %s", weir_err_msg());
		struct weir_writer w2;
		struct weir_reader r2;
		weir_writer_init(&w2, &ch2);
		weir_reader_init(&r2, &ch2, 1 << 20);
		weir_chan_set_fill_hint(&ch2, 8192);
		for (int i = 0; i < 100; i++) /* 1016 bytes each with the header: 9 to a segment of 8192 */
			weir_writer_put(&w2, buf, 1000, i);
		weir_writer_flush(&w2);
		is_int((int)ch2.stats.segs_sent, 12, "with a fill hint of 8 KiB, 100 records of 1000 bytes go in 12 segments");
		weir_reader_debloat(&r2, 1000000000u, 100000u);
		int n = 0;
		weir_rec rec;
		uint32_t code;
		uint64_t val;
		while (weir_reader_next(&r2, &rec, &code, &val) == WEIR_READ_RECORD)
			n++;
		is_int(n, 100, "and all come out");
		/* 101600 bytes in 2 ms: 50.8 MB/s; 100 us of it over 4 credits is
		 * 1270 bytes, raised to the 4 KiB floor */
		weir_reader_debloat(&r2, 1002000000u, 100000u);
		is_int((int)weir_chan_fill_hint(&ch2), 4096, "the reader asks for 4 KiB segments for 100 us at 50 MB/s");
		int put_bad = 0;
		for (int i = 0; i < 60; i++) /* 5 to a segment of 4 KiB now: 12 segments */
			put_bad += weir_writer_put(&w2, buf, 1000, i) < 0;
		put_bad += weir_writer_flush(&w2) < 0;
		while (weir_reader_next(&r2, &rec, &code, &val) == WEIR_READ_RECORD)
			;
		/* 60960 bytes in 2 ms: 1 ms of them over 4 credits is 7620 */
		weir_reader_debloat(&r2, 1004000000u, 1000000u);
		ok(!put_bad && weir_chan_fill_hint(&ch2) == 7620, "and for 7620 bytes a segment for 1 ms at 30 MB/s (%u)",
		   weir_chan_fill_hint(&ch2));
		weir_reader_release(&r2);
		weir_writer_discard(&w2);
		weir_chan_release(&ch2);
		weir_pool_release(&pool2);
	}

	/* an event between records keeps its place */
	weir_writer_put(&w, "x", 1, 1);
	weir_writer_flush(&w);
	weir_chan_send_event(&ch, 5, 99);
	weir_writer_put(&w, "y", 1, 2);
	weir_writer_flush(&w);
	weir_rec rec;
	uint32_t code = 0;
	uint64_t val = 0;
	int a = weir_reader_next(&r, &rec, &code, &val);
	int b = weir_reader_next(&r, &rec, &code, &val);
	ok(a == WEIR_READ_RECORD && b == WEIR_READ_EVENT && code == 5 && val == 99, "event arrives between its records");
	ok(weir_reader_next(&r, &rec, &code, &val) == WEIR_READ_RECORD && rec.len == 1 &&
	   !memcmp(rec.data, "y", 1), "and the record after it follows");

	/* a header claiming more than the maximum record size is refused */
	weir_seg s;
	weir_chan_acquire(&ch, &s);
	uint8_t *p = weir_pool_addr(&pool, s);
	uint32_t huge = (1u << 20) + 1;
	memset(p, 0, 16);
	memcpy(p, &huge, 4);
	weir_chan_send(&ch, s, 16);
	ok(weir_reader_next(&r, &rec, &code, &val) < 0 && strstr(weir_err_msg(), "exceeds the maximum"),
	   "an oversized length in a header fails the channel: %s", weir_err_msg());

	weir_reader_release(&r);
	weir_writer_discard(&w);
	weir_chan_release(&ch);
	is_int(weir_pool_free_count(&pool), 512, "no segment leaked");
	weir_pool_release(&pool);
	free(buf);
	done_testing();
}
