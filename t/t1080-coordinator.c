/*
 * t/t1080-coordinator.c - the checkpoint coordinator's decisions
 * (engine/checkpoint/coordinator.h) and the restart strategy
 * (engine/checkpoint/restart.h), driven by hand with a fake clock and fake
 * parts: when a checkpoint starts, which acknowledgements count, when it
 * completes (its metadata on disk), times out, is declined or refused for
 * missing files, savepoints, ids after a restore, and the delays between
 * restarts. The same code runs in local mode and in the JobManager.
 */
#include "tap.h"
#include "checkpoint/coordinator.h"
#include "checkpoint/restart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MS 1000000ull

/* what the fake parts were sent, and how checkpoints ended */
static struct {
	int n;
	enum ck_step step[64];
	uint64_t id[64];
	char dir[64][512];
} sent;
static struct {
	int n;
	uint64_t id;
	bool sp, ok;
	char text[512];
} ended;

static void send_step(void *arg, enum ck_step step, uint64_t id, const char *dir)
{
	(void)arg;
	sent.step[sent.n] = step;
	sent.id[sent.n] = id;
	snprintf(sent.dir[sent.n], sizeof(sent.dir[0]), "%s", dir ? dir : "");
	sent.n++;
}

static void on_ended(void *arg, uint64_t id, bool sp, bool ok, const char *text)
{
	(void)arg;
	ended.n++;
	ended.id = id;
	ended.sp = sp;
	ended.ok = ok;
	snprintf(ended.text, sizeof(ended.text), "%s", text);
}

static bool exists(const char *base, uint64_t id, const char *name)
{
	char p[1024];
	struct stat s;
	snprintf(p, sizeof(p), "%s/chk-%llu/%s", base, (unsigned long long)id, name);
	return stat(p, &s) == 0;
}

/* a part's snapshot files, as its writer would report them (the folder
 * exists: the writer made it) */
static void files_of(const char *dir, uint64_t id, int k, int n, struct weir_ckpt_file *f)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/chk-%llu", dir, (unsigned long long)id);
	mkdir(p, 0700);
	for (int i = 0; i < n; i++) {
		memset(&f[i], 0, sizeof(f[i]));
		f[i].vertex = 0;
		f[i].index = (uint32_t)(k * n + i);
		f[i].parallelism = 4;
		snprintf(f[i].name, sizeof(f[i].name), "v0-s%d.snap", k * n + i);
		f[i].size = 100;
		f[i].sum = 42;
	}
}

int main(void)
{
	char tmpl[] = "/tmp/weir-t1080.XXXXXX";
	char *root = mkdtemp(tmpl);
	if (!root)
		bail("mkdtemp");
	char base[600], spdir[600];
	snprintf(base, sizeof(base), "%s/ck", root);
	snprintf(spdir, sizeof(spdir), "%s/sp", root);
	mkdir(base, 0700);
	mkdir(spdir, 0700);

	struct ck_coordinator c;
	struct ck_coordinator_ops ops = { send_step, on_ended, NULL };
	struct weir_ckpt_file f[4];
	uint64_t t = 1000 * MS;
	/* interval 100 ms, timeout 1 s, minimum pause 150 ms, retain 1 */
	ok(ck_coordinator_init(&c, 7, 100, 1000, 150, 1, base, 0, &ops, t) == 0, "init");

	/* due */
	is_int(ck_coordinator_tick(&c, 2, 4, NULL, t + 99 * MS), 0, "nothing starts before the interval");
	is_int(ck_coordinator_wake(&c), (long long)(t + 100 * MS), "it wakes at the interval");
	is_int(ck_coordinator_tick(&c, 2, 4, NULL, t + 100 * MS), 1, "checkpoint 1 starts at the interval");
	ok(sent.n == 1 && sent.step[0] == CK_STEP_TRIGGER && sent.id[0] == 1 && !strcmp(sent.dir[0], base),
	   "a trigger for 1 into the job's folder goes to the parts");
	is_int(ck_coordinator_tick(&c, 2, 4, NULL, t + 300 * MS), 0, "one at a time");

	/* acks */
	t += 100 * MS;
	files_of(base, 1, 0, 2, f);
	ck_coordinator_acked(&c, 0, 1, f, 2, 200, 5, 0, NULL, t + 10 * MS);
	ok(c.pending == 1 && !exists(base, 1, "_metadata"), "one part of two: not complete");
	ck_coordinator_acked(&c, 0, 1, f, 2, 200, 5, 0, NULL, t + 11 * MS);
	ck_coordinator_acked(&c, 1, 2, f, 2, 200, 5, 0, NULL, t + 11 * MS);
	ck_coordinator_acked(&c, 5, 1, f, 2, 200, 5, 0, NULL, t + 11 * MS);
	ok(c.pending == 1 && c.nfiles == 2, "a repeated ack, another id's and an unknown part's are ignored");
	files_of(base, 1, 1, 2, f);
	ck_coordinator_acked(&c, 1, 1, f, 2, 200, 9, 64, NULL, t + 20 * MS);
	ok(!c.pending && c.completed == 1 && c.latest == 1 && exists(base, 1, "_metadata"),
	   "every part in: complete, its metadata durable");
	ok(sent.n == 2 && sent.step[1] == CK_STEP_COMPLETE && sent.id[1] == 1, "and announced");
	ok(ended.n == 1 && ended.ok && !ended.sp && strstr(ended.text, "/chk-1"), "ended: complete, in chk-1");
	ok(c.bytes == 400 && c.sync_max_ns == 9 && c.inflight == 64, "bytes, longest pause and in-flight bytes add up");
	/* the next one: the minimum pause (150) is longer than the interval (100) */
	is_int(ck_coordinator_tick(&c, 2, 4, NULL, t + 169 * MS), 0, "the minimum pause holds the next one back");
	is_int(ck_coordinator_tick(&c, 2, 4, NULL, t + 170 * MS), 2, "checkpoint 2 after it");

	/* timeout */
	t += 170 * MS;
	is_int(ck_coordinator_wake(&c), (long long)(t + 1000 * MS + 1), "it wakes past the timeout");
	ck_coordinator_tick(&c, 2, 4, NULL, t + 1000 * MS);
	ok(c.pending == 2, "not timed out at the timeout");
	ck_coordinator_tick(&c, 2, 4, NULL, t + 1001 * MS);
	ok(!c.pending && c.aborted == 1 && sent.step[sent.n - 1] == CK_STEP_ABORT && sent.id[sent.n - 1] == 2,
	   "past it: aborted, the parts told");
	ok(ended.n == 2 && !ended.ok && !strcmp(ended.text, "timed out"), "ended: timed out");
	t += 1001 * MS;
	is_int(ck_coordinator_tick(&c, 2, 4, NULL, t + 149 * MS), 0, "after an abort, the minimum pause");
	is_int(ck_coordinator_tick(&c, 2, 4, NULL, t + 150 * MS), 3, "then checkpoint 3");

	/* declined */
	t += 150 * MS;
	ck_coordinator_acked(&c, 1, 3, NULL, 0, 0, 0, 0, "taskmanager 1: disk full", t + MS);
	ok(!c.pending && c.aborted == 2 && sent.step[sent.n - 1] == CK_STEP_ABORT && sent.id[sent.n - 1] == 3 &&
	   !exists(base, 3, "_metadata"), "a part declines: aborted everywhere, never complete");

	/* files missing */
	t += 1000 * MS;
	is_int(ck_coordinator_tick(&c, 2, 4, NULL, t), 4, "checkpoint 4");
	files_of(base, 4, 0, 2, f);
	ck_coordinator_acked(&c, 0, 4, f, 2, 0, 0, 0, NULL, t + MS);
	files_of(base, 4, 1, 1, f);
	ck_coordinator_acked(&c, 1, 4, f, 1, 0, 0, 0, NULL, t + MS);
	ok(!c.pending && !exists(base, 4, "_metadata") && strstr(ended.text, "3 snapshot files for 4 subtasks"),
	   "3 files for 4 subtasks: aborted (%s)", ended.text);

	/* a savepoint: asked, it starts at once, goes to its folder, survives retention */
	t += 1000 * MS;
	is_int(ck_coordinator_tick(&c, 1, 2, spdir, t), 5, "a savepoint starts when asked");
	ok(!strcmp(sent.dir[sent.n - 1], spdir), "into the savepoint's folder");
	files_of(spdir, 5, 0, 2, f);
	ck_coordinator_acked(&c, 0, 5, f, 2, 0, 0, 0, NULL, t + MS);
	ok(ended.sp && ended.ok && exists(spdir, 5, "_metadata") && c.latest == 5, "complete in its folder");
	t += 1000 * MS;
	is_int(ck_coordinator_tick(&c, 1, 2, NULL, t), 6, "checkpoint 6");
	files_of(base, 6, 0, 2, f);
	ck_coordinator_acked(&c, 0, 6, f, 2, 0, 0, 0, NULL, t + MS);
	ok(exists(base, 6, "_metadata") && !exists(base, 1, "_metadata") && exists(spdir, 5, "_metadata"),
	   "retention (1) removed checkpoint 1, not the savepoint");

	/* reset: an attempt ended; the one in flight goes without a step */
	t += 1000 * MS;
	is_int(ck_coordinator_tick(&c, 1, 2, NULL, t), 7, "checkpoint 7");
	int n = sent.n;
	ck_coordinator_reset(&c, t + MS);
	ok(!c.pending && sent.n == n, "reset drops it, sends nothing");
	is_int(ck_coordinator_tick(&c, 1, 2, NULL, t + 101 * MS), 8, "ids go on after it");
	ck_coordinator_release(&c, t + 102 * MS);

	/* ids after a restore; local mode has no label */
	ok(ck_coordinator_init(&c, 0, 10, 0, 0, 0, base, 41, &ops, 0) == 0 && !c.label[0] && c.timeout_ms == 60000 &&
	   c.retain == 1, "defaults: timeout 60 s, retain 1; local mode's log lines have no job label");
	is_int(ck_coordinator_tick(&c, 1, 1, NULL, 10 * MS), 42, "after restoring 41, the next is 42");
	ck_coordinator_release(&c, 11 * MS);
	ok(!exists(base, 42, "_metadata"), "release drops the one in flight");
	ok(ck_coordinator_init(&c, 0, 0, 0, 0, 0, base, 0, &ops, 0) == 0, "interval 0: savepoints only");
	is_int(ck_coordinator_tick(&c, 1, 1, NULL, 1000000 * MS), 0, "nothing is ever due");
	is_int(ck_coordinator_wake(&c), (long long)UINT64_MAX, "and nothing wakes it");
	ck_coordinator_release(&c, 0);

	/* aborts in a row back off: the interval (at least the minimum pause),
	 * doubled for each further one, up to CK_BACKOFF_MAX_MS; a completion
	 * starts over */
	ok(ck_coordinator_init(&c, 0, 1000, 100, 0, 1, base, 100, &ops, 0) == 0, "backoff: interval 1 s, timeout 100 ms");
	uint64_t now = 0, waits[9];
	for (int i = 0; i < 9; i++) {
		uint64_t at = c.next_ns;
		ok(ck_coordinator_tick(&c, 1, 1, NULL, at - 1) == 0 && ck_coordinator_tick(&c, 1, 1, NULL, at) != 0,
		   "backoff: attempt %d starts exactly when due", i + 1);
		now = at + 101 * MS;
		ck_coordinator_tick(&c, 1, 1, NULL, now); /* times out */
		waits[i] = (c.next_ns - now) / MS;
	}
	ok(waits[0] == 1000 && waits[1] == 2000 && waits[2] == 4000 && waits[5] == 32000 && waits[6] == 60000 &&
	   waits[8] == 60000, "backoff: 1, 2, 4 ... 32 s, then 60 s (%llu %llu %llu %llu %llu)",
	   (unsigned long long)waits[0], (unsigned long long)waits[1], (unsigned long long)waits[2],
	   (unsigned long long)waits[6], (unsigned long long)waits[8]);
	uint64_t id = ck_coordinator_tick(&c, 1, 1, NULL, c.next_ns);
	files_of(base, id, 0, 1, f);
	now = c.next_ns + MS;
	ck_coordinator_acked(&c, 0, id, f, 1, 0, 0, 0, NULL, now);
	ok(c.completed == 1 && c.fails == 0 && c.next_ns == now + 1000 * MS, "backoff: a completion starts over");
	ck_coordinator_release(&c, now);

	/* the restart strategy */
	struct ck_restart r;
	uint32_t d = 0, ds[5];
	ck_restart_init(&r, 3, 100, 0);
	int k = 0;
	while (ck_restart_next(&r, &d))
		ds[k++] = d;
	ok(k == 3 && ds[0] == 100 && ds[1] == 100 && ds[2] == 100 && r.made == 3, "fixed delay: 3 restarts of 100 ms");
	ck_restart_init(&r, 5, 100, 350);
	for (k = 0; ck_restart_next(&r, &d);)
		ds[k++] = d;
	ok(k == 5 && ds[0] == 100 && ds[1] == 200 && ds[2] == 350 && ds[3] == 350 && ds[4] == 350,
	   "backoff: 100, 200, 350, 350, 350");
	ck_restart_init(&r, 2, 0, 8);
	ok(ck_restart_next(&r, &d) && d == 0 && ck_restart_next(&r, &d) && d == 1 && !ck_restart_next(&r, &d),
	   "backoff from 0: 0, then 1; then none left");
	ck_restart_init(&r, 0, 100, 0);
	ok(!ck_restart_next(&r, &d), "no attempts: no restart");

	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		diag("could not remove %s", root);
	done_testing();
}
