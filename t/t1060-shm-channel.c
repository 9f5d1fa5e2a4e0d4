/* t1060-shm-channel: pools and channels between real processes. The test
 * re-executes itself as the second process (argv[1] names the role).
 *  - millions of records with sequence numbers and checksums through a
 *    channel with few credits: none lost, none doubled, order kept;
 *  - a slow consumer: the producer blocks, the channel never owns more
 *    than its credits plus floating segments;
 *  - kill -9 of the producer mid-stream: the consumer notices (owner lock),
 *    the dead producer's files are swept;
 *  - kill -9 of the consumer mid-stream: the producer notices and every
 *    segment of its pool comes home;
 *  - pool and channel files that do not match are refused, stale ones
 *    replaced; nothing is left in /dev/shm;
 *  - private folders (FOLDER/NAME): made 0700, removed with their last
 *    file; a folder that is a link, of another mode or (as root) another
 *    user's is refused and left alone, so is a file of another user or a
 *    link in ours; sweeping removes dead owners' files and empty folders
 *    of ours only.
 * Randomized record sizes: prints its seed; WEIR_SEED=N replays. */
#include "tap.h"
#include "io/record.h"
#include "shm/shmfile.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEG 32768
static char prefix[64], pool_name[96], chan_name[96];
static uint64_t seed;

/* record i: 8 bytes of i, then bytes derived from i; length from the seed */
static uint32_t len_of(uint64_t *rnd)
{
	uint64_t p = tap_rand(rnd) % 1000;
	return p < 995 ? (uint32_t)(8 + tap_rand(rnd) % 100) : (uint32_t)(8 + tap_rand(rnd) % (2 * SEG));
}

static void fill(uint8_t *b, uint32_t len, uint64_t i)
{
	memcpy(b, &i, 8);
	for (uint32_t k = 8; k < len; k++)
		b[k] = (uint8_t)(i * 131 + k);
}

/* Wait on our doorbell for something from the peer; -1 when it died. */
static int wait_peer(struct weir_chan *c, struct weir_doorbell *db, bool (*ready)(struct weir_chan *))
{
	uint32_t s = weir_doorbell_prepare(db);
	if (ready(c)) {
		weir_doorbell_cancel(db);
		return 0;
	}
	weir_doorbell_wait(db, s, 10 * 1000 * 1000); /* bounded: then ask the kernel whether it lives */
	return weir_chan_peer_alive(c) ? 0 : -1;
}

static bool has_data(struct weir_chan *c) { return weir_chan_pending(c) > 0; }
static bool has_credit(struct weir_chan *c) { return weir_chan_can_send(c); }

static struct weir_chan *wchan;
static int wait_segment(struct weir_writer *w, void *arg)
{
	(void)w, (void)arg;
	return wait_peer(wchan, wchan->producer_db, has_credit);
}

static int max_owned_seen;

/* Producer: n records (n < 0: until the peer dies). Returns records sent,
 * or -1 when the consumer died. */
static long produce(struct weir_chan *c, long n)
{
	uint64_t rnd = seed;
	static uint8_t buf[2 * SEG + 8];
	struct weir_writer w;
	weir_writer_init(&w, c);
	wchan = c;
	w.wait_for_segment = wait_segment;
	long i;
	for (i = 0; n < 0 || i < n; i++) {
		while (!(w.seg != WEIR_SEG_NONE && w.cap - w.used >= WEIR_REC_HDR) && !weir_chan_can_send(c))
			if (wait_peer(c, c->producer_db, has_credit) < 0) {
				weir_writer_discard(&w);
				return -1;
			}
		uint32_t len = len_of(&rnd);
		fill(buf, len, (uint64_t)i);
		if (weir_writer_put(&w, buf, len, (int64_t)i) < 0) {
			weir_writer_discard(&w);
			return -1;
		}
		if ((int)c->owned > max_owned_seen)
			max_owned_seen = (int)c->owned;
		if ((i & 1023) == 0 && weir_writer_flush(&w) < 0)
			return -1;
	}
	weir_writer_flush(&w);
	weir_chan_send_event(c, WEIR_EV_END, (uint64_t)i);
	return i;
}

/* Consumer: reads until the end event; checks every record. Returns the
 * count, or -1 (peer died), -2 (a record was wrong). stop_after > 0: tell
 * the parent on fd 3 after that many records, then keep going. */
static long consume(struct weir_chan *c, long stop_after, int spin_per_record)
{
	uint64_t rnd = seed;
	struct weir_reader r;
	weir_reader_init(&r, c, 1 << 20);
	long i = 0;
	for (;;) {
		weir_rec rec;
		uint32_t code;
		uint64_t val;
		int rc = weir_reader_next(&r, &rec, &code, &val);
		if (rc == WEIR_READ_EMPTY) {
			if (wait_peer(c, c->consumer_db, has_data) < 0) {
				weir_reader_release(&r);
				return -1;
			}
			continue;
		}
		if (rc == WEIR_READ_EVENT && code == WEIR_EV_END)
			break;
		if (rc != WEIR_READ_RECORD) {
			diag("consumer: read returned %d: %s", rc, weir_err_msg());
			return -2;
		}
		uint32_t len = len_of(&rnd);
		uint64_t id;
		memcpy(&id, rec.data, 8);
		bool good = rec.len == len && id == (uint64_t)i && rec.ts == i;
		for (uint32_t k = 8; good && k < len; k++)
			good = ((const uint8_t *)rec.data)[k] == (uint8_t)(id * 131 + k);
		if (!good) {
			diag("consumer: record %ld wrong (id %llu len %u want %u)", i, (unsigned long long)id, rec.len, len);
			return -2;
		}
		for (volatile int s = 0; s < spin_per_record; s++)
			;
		if (++i == stop_after && write(3, "R", 1) != 1)
			return -2;
	}
	weir_reader_release(&r);
	return i;
}

static pid_t spawn(char *self, const char *role, long n, int *pipe_rd)
{
	int fds[2];
	if (pipe(fds) < 0)
		bail("pipe");
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]); /* first: the read end may be fd 3 */
		if (fds[1] != 3) {
			dup2(fds[1], 3);
			close(fds[1]);
		}
		char ns[32], ss[32];
		snprintf(ns, sizeof(ns), "%ld", n);
		snprintf(ss, sizeof(ss), "%llu", (unsigned long long)seed);
		execl(self, self, role, prefix, ns, ss, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	*pipe_rd = fds[0];
	return pid;
}

/* ---- the second process ------------------------------------------------- */

static int child(const char *role, long n)
{
	struct weir_pool pool;
	struct weir_chan c;
	if (!strcmp(role, "consumer") || !strcmp(role, "slow-consumer") || !strcmp(role, "stalled-consumer")) {
		if (weir_pool_attach(&pool, pool_name, 7) < 0 || weir_chan_attach_shm(&c, chan_name, &pool) < 0) {
			fprintf(stderr, "child: %s\n", weir_err_msg());
			return 3;
		}
		if (write(3, "A", 1) != 1) /* attached */
			return 3;
		long got = consume(&c, !strcmp(role, "stalled-consumer") ? 1000 : 0,
				   !strcmp(role, "slow-consumer") ? 2000 : 0);
		if (!strcmp(role, "stalled-consumer"))
			for (;;)
				pause(); /* holds its segments until killed */
		weir_chan_release(&c);
		weir_pool_release(&pool);
		return got == n ? 0 : 1;
	}
	if (!strcmp(role, "producer")) {
		if (weir_pool_create_shm(&pool, pool_name, 7, 64, SEG, -1, false) < 0 ||
		    weir_chan_create_shm(&c, chan_name, &pool, 4, 8) < 0) {
			fprintf(stderr, "child: %s\n", weir_err_msg());
			return 3;
		}
		if (write(3, "C", 1) != 1) /* created */
			return 3;
		produce(&c, -1); /* until killed */
		return 1;
	}
	return 2;
}

/* ---- the tests ------------------------------------------------------------ */

static int files(void) { return weir_shm_count(prefix); }

static int wait_status(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_stream(char *self, const char *role, long n, uint32_t nsegs, const char *what)
{
	struct weir_pool pool;
	struct weir_chan c;
	max_owned_seen = 0;
	if (weir_pool_create_shm(&pool, pool_name, 7, nsegs, SEG, -1, false) < 0 ||
	    weir_chan_create_shm(&c, chan_name, &pool, 4, 8) < 0)
		bail("create: %s", weir_err_msg());
	int rd;
	pid_t pid = spawn(self, role, n, &rd);
	char ch;
	ok(read(rd, &ch, 1) == 1 && ch == 'A', "%s: the consumer process attached", what);
	long sent = produce(&c, n);
	is_int(sent, n, "%s: %ld records sent", what, n);
	is_int(wait_status(pid), 0, "%s: the consumer got every record once, in order, intact", what);
	ok(max_owned_seen <= 12, "%s: the channel never owned more than credits + floating (12): %d", what,
	   max_owned_seen);
	weir_chan_release(&c);
	is_int(weir_pool_free_count(&pool), nsegs, "%s: every segment back in the pool", what);
	weir_pool_release(&pool);
	close(rd);
}

static void test_kill_consumer(char *self)
{
	struct weir_pool pool;
	struct weir_chan c;
	if (weir_pool_create_shm(&pool, pool_name, 7, 64, SEG, -1, false) < 0 ||
	    weir_chan_create_shm(&c, chan_name, &pool, 4, 8) < 0)
		bail("create: %s", weir_err_msg());
	int rd;
	pid_t pid = spawn(self, "stalled-consumer", 0, &rd);
	char ch;
	ok(read(rd, &ch, 1) == 1 && ch == 'A', "kill consumer: attached");
	/* the producer runs in a thread-less loop: fork it off as part of us
	 * is not needed: produce until the consumer stalls, then kill it */
	pid_t killer = fork();
	if (killer == 0) {
		char r;
		/* wait for the consumer's "read 1000 records", then kill -9 it */
		if (read(rd, &r, 1) == 1)
			kill(pid, SIGKILL);
		_exit(0);
	}
	long sent = produce(&c, -1);
	is_int(sent, -1, "kill consumer: the blocked producer notices the consumer died");
	is_int(wait_status(pid), 128 + SIGKILL, "kill consumer: it died of SIGKILL");
	wait_status(killer);
	weir_chan_release(&c);
	is_int(weir_pool_free_count(&pool), 64, "kill consumer: every segment it held came home to the pool");
	weir_pool_release(&pool);
	close(rd);
}

static void test_kill_producer(char *self)
{
	int rd;
	pid_t pid = spawn(self, "producer", 0, &rd);
	char ch;
	ok(read(rd, &ch, 1) == 1 && ch == 'C', "kill producer: the producer process created pool and channel");
	struct weir_pool pool;
	struct weir_chan c;
	if (weir_pool_attach(&pool, pool_name, 7) < 0 || weir_chan_attach_shm(&c, chan_name, &pool) < 0)
		bail("attach: %s", weir_err_msg());
	ok(weir_pool_owner_alive(&pool) && weir_chan_peer_alive(&c), "kill producer: its owner locks are held");
	/* read a while, then kill it at an exact point: after 5000 records */
	uint64_t rnd = seed;
	struct weir_reader r;
	weir_reader_init(&r, &c, 1 << 20);
	long i = 0;
	bool killed = false, noticed = false;
	while (!noticed) {
		weir_rec rec;
		uint32_t code;
		uint64_t val;
		int rc = weir_reader_next(&r, &rec, &code, &val);
		if (rc == WEIR_READ_RECORD) {
			len_of(&rnd);
			if (++i == 5000 && !killed) {
				kill(pid, SIGKILL);
				killed = true;
			}
		} else if (rc == WEIR_READ_EMPTY) {
			noticed = wait_peer(&c, c.consumer_db, has_data) < 0;
		} else {
			break;
		}
	}
	ok(killed && noticed, "kill producer: the consumer notices the producer died (after %ld records)", i);
	ok(!weir_pool_owner_alive(&pool), "kill producer: its pool's owner lock is gone");
	is_int(wait_status(pid), 128 + SIGKILL, "kill producer: it died of SIGKILL");
	/* our handles: the segments we held belong to the dead pool; just unmap */
	r.seg = WEIR_SEG_NONE;
	weir_reader_release(&r);
	weir_chan_release(&c);
	weir_pool_release(&pool);
	ok(files() == 2, "kill producer: its pool and channel files are still there (%d)", files());
	is_int(weir_shm_sweep(prefix), 2, "kill producer: sweeping removes both (their owner is dead)");
	close(rd);
}

/* Shared memory is the cluster uid's alone: 0600, another uid gets EACCES. */
static void test_permissions(void)
{
	struct weir_pool p;
	if (weir_pool_create_shm(&p, pool_name, 7, 4, 4096, -1, false) < 0)
		bail("pool: %s", weir_err_msg());
	char path[160];
	snprintf(path, sizeof(path), "/dev/shm/%s", pool_name);
	struct stat st;
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_uid == getuid(),
	   "a pool file is mode 0600 and ours (%o)", st.st_mode & 0777);
	if (getuid() != 0) {
		skip("another uid's access needs root to switch uid", 1);
	} else {
		pid_t pid = fork();
		if (pid == 0) {
			if (setgid(65534) < 0 || setuid(65534) < 0)
				_exit(2);
			int fd = open(path, O_RDWR);
			_exit(fd < 0 && errno == EACCES ? 0 : 1);
		}
		int stc;
		waitpid(pid, &stc, 0);
		ok(WIFEXITED(stc) && WEXITSTATUS(stc) == 0, "another uid gets EACCES opening it");
	}
	weir_pool_release(&p);
}

static void test_bad_files(void)
{
	char path[160];
	struct weir_pool p;
	/* garbage under the pool's name, no owner: attach refuses, create replaces */
	snprintf(path, sizeof(path), "/dev/shm/%s", pool_name);
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	char junk[8192];
	memset(junk, 'x', sizeof(junk));
	if (fd < 0 || write(fd, junk, sizeof(junk)) != (ssize_t)sizeof(junk))
		bail("write junk");
	close(fd);
	ok(weir_pool_attach(&p, pool_name, 7) < 0 && strstr(weir_err_msg(), "not a weir pool"),
	   "a file of junk is refused: %s", weir_err_msg());
	ok(weir_pool_create_shm(&p, pool_name, 7, 8, 4096, -1, false) == 0, "create replaces a stale junk file");
	/* a live owner's file: a second create refuses */
	struct weir_pool q;
	ok(weir_pool_create_shm(&q, pool_name, 7, 8, 4096, -1, false) == -EEXIST &&
	   strstr(weir_err_msg(), "in use by a live process"), "a live owner's pool is not taken over: %s",
	   weir_err_msg());
	/* another pool's id */
	ok(weir_pool_attach(&q, pool_name, 9) < 0 && strstr(weir_err_msg(), "pool id 7, expected 9"),
	   "another pool's file is refused: %s", weir_err_msg());
	/* truncated: shrink the file behind the owner's back */
	struct weir_pool ok_attach;
	ok(weir_pool_attach(&ok_attach, pool_name, 7) == 0 && weir_pool_owner_alive(&ok_attach),
	   "a good pool attaches and its owner lives");
	weir_pool_release(&ok_attach);
	if (truncate(path, 4096 * 3) < 0)
		bail("truncate");
	ok(weir_pool_attach(&q, pool_name, 7) < 0 && strstr(weir_err_msg(), "truncated"),
	   "a truncated pool file is refused: %s", weir_err_msg());
	weir_pool_release(&p);
	ok(access(path, F_OK) != 0, "the owner's release removes its file");

	/* a channel file that is not a channel */
	snprintf(path, sizeof(path), "/dev/shm/%s", chan_name);
	fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	if (fd < 0 || write(fd, junk, sizeof(junk)) != (ssize_t)sizeof(junk))
		bail("write junk");
	close(fd);
	struct weir_pool pool;
	struct weir_chan c;
	if (weir_pool_create_shm(&pool, pool_name, 7, 16, 4096, -1, false) < 0)
		bail("pool: %s", weir_err_msg());
	ok(weir_chan_attach_shm(&c, chan_name, &pool) < 0 && strstr(weir_err_msg(), "not a weir channel"),
	   "a channel file of junk is refused: %s", weir_err_msg());
	unlink(path);
	/* hostile descriptors written into a real channel's ring */
	struct weir_chan pc, cc;
	if (weir_chan_create_shm(&pc, chan_name, &pool, 2, 2) < 0 || weir_chan_attach_shm(&cc, chan_name, &pool) < 0)
		bail("chan: %s", weir_err_msg());
	ok(weir_chan_attach_shm(&c, chan_name, &pool) < 0 && strstr(weir_err_msg(), "already has a live consumer"),
	   "a second consumer is refused: %s", weir_err_msg());
	uint64_t rnd = seed;
	int rejected = 0, accepted_bad = 0;
	for (int i = 0; i < 10000; i++) {
		struct weir_chan_msg m = { .kind = 1 + (uint32_t)(tap_rand(&rnd) % 3), .seg = (uint32_t)tap_rand(&rnd),
					   .val = tap_rand(&rnd) % (3 * 4096) };
		if (tap_rand(&rnd) & 1)
			m.seg = weir_seg_make(7, (uint32_t)(16 + tap_rand(&rnd) % 100)); /* index past the end */
		bool bad = m.kind == 3 || (m.kind == WEIR_MSG_DATA && (!weir_pool_owns(&pool, m.seg) || m.val > 4096));
		if (!bad)
			continue;
		weir_ring_msg_put(&pc.r->data, pc.data_buf, &m);
		struct weir_chan_msg got;
		int rc = weir_chan_recv(&cc, &got);
		rejected += rc == -EPROTO;
		accepted_bad += rc == 1;
	}
	ok(rejected > 1000 && accepted_bad == 0, "%d hostile descriptors (pool id, index past the end, length past "
	   "the segment, unknown kind) are all refused", rejected);
	weir_chan_settle(&pc);
	weir_chan_release(&cc);
	weir_chan_release(&pc);
	is_int(weir_pool_free_count(&pool), 16, "descriptors handed back by refusals never enter the free list twice");
	weir_pool_release(&pool);
}


/* A producer that seals its channel refuses consumers from then on, and
 * weir_chan_consumer_holds tells whether one still has it open (its lock
 * byte). The consumer here is a second handle of this process: the locks
 * are per open file description, as between processes. */
static void test_seal(void)
{
	struct weir_pool pool, rpool;
	struct weir_chan c, rc;
	if (weir_pool_create_shm(&pool, pool_name, 7, 16, SEG, -1, false) < 0 ||
	    weir_chan_create_shm(&c, chan_name, &pool, 4, 8) < 0)
		bail("create: %s", weir_err_msg());
	if (weir_pool_attach(&rpool, pool_name, 7) < 0)
		bail("attach pool: %s", weir_err_msg());
	ok(!weir_chan_consumer_holds(&c), "seal: no consumer holds a new channel");
	is_int(weir_chan_attach_shm(&rc, chan_name, &rpool), 0, "seal: a consumer attaches before the seal");
	ok(weir_chan_consumer_holds(&c), "seal: and holds it");
	weir_chan_seal(&c);
	ok(weir_chan_consumer_holds(&c), "seal: an attached consumer still holds it after the seal");
	weir_chan_release(&rc);
	ok(!weir_chan_consumer_holds(&c), "seal: not once it let go");
	ok(weir_chan_attach_shm(&rc, chan_name, &rpool) < 0 && strstr(weir_err_msg(), "closed"),
	   "seal: a consumer coming after the seal is refused (%s)", weir_err_msg());
	ok(!weir_chan_consumer_holds(&c), "seal: and holds nothing");
	weir_chan_release(&c);
	weir_pool_release(&rpool);
	weir_pool_release(&pool);
}

/* Private folders: FOLDER/NAME. */
static void test_folders(void)
{
	char dir[128], name[160], path[200], other[160];
	struct weir_shm m, a;
	struct stat st;
	snprintf(dir, sizeof(dir), "%s-d", prefix);
	snprintf(name, sizeof(name), "%s/f", dir);
	snprintf(path, sizeof(path), "/dev/shm/%s", dir);
	is_int(weir_shm_create(&m, name, 4096, NULL), 0, "folders: create FOLDER/NAME");
	ok(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 && st.st_uid == geteuid(),
	   "folders: the folder is made 0700, ours");
	is_int(weir_shm_reserve(&m), 0, "folders: its pages are reserved");
	is_int(weir_shm_open(&a, name, 4096), 0, "folders: an attacher opens it");
	weir_shm_close(&a);
	snprintf(other, sizeof(other), "%s/g", dir);
	struct weir_shm m2;
	is_int(weir_shm_create(&m2, other, 4096, NULL), 0, "folders: a second file in the folder");
	weir_shm_close(&m);
	ok(stat(path, &st) == 0, "folders: the folder stays while a file is in it");
	weir_shm_close(&m2);
	ok(stat(path, &st) < 0 && errno == ENOENT, "folders: and goes with its last file");

	/* a folder of ours of another mode, a link: refused, left alone */
	mkdir(path, 0755);
	chmod(path, 0755);
	ok(weir_shm_create(&m, name, 4096, NULL) == -EPERM && strstr(weir_err_msg(), "has mode 0755, not 0700"),
	   "folders: a folder of mode 0755 is refused: %s", weir_err_msg());
	ok(weir_shm_open(&m, name, 1) == -EPERM, "folders: and not opened either");
	ok(stat(path, &st) == 0, "folders: and left alone");
	rmdir(path);
	char target[200];
	snprintf(target, sizeof(target), "/dev/shm/%s-target", prefix);
	mkdir(target, 0700);
	ok(symlink(target, path) == 0, "folders: plant a link at the folder name");
	ok(weir_shm_create(&m, name, 4096, NULL) == -EPERM && strstr(weir_err_msg(), "is a symbolic link"),
	   "folders: a link is refused: %s", weir_err_msg());
	snprintf(other, sizeof(other), "%s/f", target);
	ok(access(other, F_OK) < 0, "folders: nothing was made through it");
	unlink(path);
	rmdir(target);

	/* a link inside a folder of ours, a file that is not regular: refused */
	is_int(weir_shm_create(&m, name, 4096, NULL), 0, "folders: create again");
	char lnk[220], lname[180];
	snprintf(lnk, sizeof(lnk), "%s/l", path);
	snprintf(lname, sizeof(lname), "%s/l", dir);
	ok(symlink("/etc/passwd", lnk) == 0 && weir_shm_open(&a, lname, 1) == -EPERM &&
	   strstr(weir_err_msg(), "symbolic link"), "folders: a link in the folder is not opened: %s", weir_err_msg());
	unlink(lnk);
	if (geteuid() == 0) {
		/* as root: another user's folder and file */
		ok(chown(path, 65534, 65534) == 0, "folders: give the folder to uid 65534");
		ok(weir_shm_open(&a, name, 1) == -EPERM && strstr(weir_err_msg(), "belongs to uid 65534"),
		   "folders: another user's folder is refused: %s", weir_err_msg());
		is_int(weir_shm_sweep(prefix), 0, "folders: sweeping leaves another user's folder alone");
		ok(chown(path, 0, 0) == 0, "folders: and back");
		char fpath[220];
		snprintf(fpath, sizeof(fpath), "%s/f", path);
		ok(chown(fpath, 65534, 65534) == 0 && weir_shm_open(&a, name, 1) == -EPERM &&
		   strstr(weir_err_msg(), "belongs to uid 65534"), "folders: another user's file is refused: %s",
		   weir_err_msg());
		ok(chown(fpath, 0, 0) == 0, "folders: and back");
	} else {
		skip("not root: cannot make another user's folder", 6);
	}
	/* a dead owner's file: swept, and the folder with it */
	pid_t pid = fork();
	if (pid == 0) {
		struct weir_shm c;
		snprintf(other, sizeof(other), "%s/dead", dir);
		_exit(weir_shm_create(&c, other, 4096, NULL) == 0 ? 0 : 1); /* exits holding it: stale */
	}
	int status = 0;
	waitpid(pid, &status, 0);
	is_int(weir_shm_count(prefix), 2, "folders: count sees both files in the folder");
	char sub[160];
	snprintf(sub, sizeof(sub), "%s/", dir);
	is_int(weir_shm_sweep(sub), 1, "folders: sweeping the folder removes the dead owner's file only");
	weir_shm_close(&m);
	ok(stat(path, &st) < 0, "folders: the last close removes the folder");
	/* a file larger than /dev/shm has free: refused up front, nothing left */
	struct statvfs vs;
	statvfs("/dev/shm", &vs);
	size_t huge = (size_t)vs.f_bavail * vs.f_frsize + (1u << 20);
	ok(weir_shm_create(&m, name, huge, NULL) == -ENOSPC && strstr(weir_err_msg(), "asked, but /dev/shm has"),
	   "folders: more than /dev/shm has free is refused: %s", weir_err_msg());
	ok(stat(path, &st) < 0, "folders: and leaves nothing, not even the folder");
}

int main(int argc, char **argv)
{
	if (argc == 5) { /* the second process */
		snprintf(prefix, sizeof(prefix), "%s", argv[2]);
		snprintf(pool_name, sizeof(pool_name), "%s-pool", prefix);
		snprintf(chan_name, sizeof(chan_name), "%s-ch", prefix);
		seed = strtoull(argv[4], NULL, 0);
		return child(argv[1], atol(argv[3]));
	}
	seed = tap_seed();
	alarm(240);
	weir_shm_sweep("weir-t1060-"); /* files of killed earlier runs (dead owners only) */
	snprintf(prefix, sizeof(prefix), "weir-t1060-%d", (int)getpid());
	snprintf(pool_name, sizeof(pool_name), "%s-pool", prefix);
	snprintf(chan_name, sizeof(chan_name), "%s-ch", prefix);
	char *self = argv[0];

	test_stream(self, "consumer", 2000000, 64, "2M records");
	test_stream(self, "slow-consumer", 20000, 64, "slow consumer");
	/* 5 segments for a channel allowed 12: the producer meets an empty
	 * pool mid-record and waits for the consumer instead of failing */
	test_stream(self, "consumer", 100000, 5, "pool of 5 segments");
	test_permissions();
	test_kill_consumer(self);
	test_kill_producer(self);
	test_bad_files();
	test_seal();
	test_folders();
	is_int(files(), 0, "nothing of ours is left in /dev/shm");
	weir_shm_sweep(prefix);
	done_testing();
}
