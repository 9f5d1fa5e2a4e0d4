/*
 * engine/cluster/jobmanager.c - `weir jobmanager`: the cluster's coordinator.
 *
 * One io_uring loop (net/loop.h) on one thread. Every connection must
 * first prove it knows the cluster secret (ctl/auth.h); until then the
 * only messages it may send are the handshake's. Until then it is also
 * untrusted for the loop: a handshake not done within WEIR_AUTH_TIMEOUT_MS
 * is closed, and at most a quarter of the connection table is untrusted
 * at once: one more closes the oldest untrusted one, never an
 * authenticated one, so connections opened without the secret (3000 of
 * them, or one re-opened again and again) cannot lock out the owner's
 * clients and TaskManagers. A malformed frame or message closes that
 * connection and nothing else. Every connection closed or refused before
 * its handshake, or for bad framing, is logged with its peer's address
 * and the reason, at most one line a second and a summary of the rest
 * ("N more refused connections in T ms (REASON: n, ...)").
 *
 * After the handshake: TaskManagers register (id, pid, slots, pool) and
 * heartbeat; a TaskManager whose connection closes, or that misses its
 * heartbeats, is dropped at once (a closed connection is noticed in the
 * time it takes the kernel to tell us, not after a timeout). Clients ask
 * for the cluster's status (optionally waiting until a number of
 * TaskManagers is registered) and stop the cluster: the JobManager tells
 * every TaskManager to stop, waits until they are gone, removes its
 * address and pid files and exits.
 *
 * Jobs: a client uploads the job's object (inside SubmitJob when it fits
 * in one chunk, else in ObjectChunks before it), which the JobManager
 * stores by its SHA-256 in <run-dir>/objects/ (ctl/objstore.h), and the
 * job's graph (vertices and their parallelism, which the client built by
 * running weir_job). The JobManager places subtask i of every vertex in
 * global slot i (slot sharing); global slots fill one TaskManager after
 * another, or alternate between them with --spread. Deploy names the
 * object by its digest; a TaskManager that lacks it fetches it (FetchObject,
 * one chunk per request, so a big object never floods the connection).
 * Then, per job:
 *   Deploy -> every TaskManager involved  ... PREPARED from all -> START
 *   DONE or FAILED from all (or a TaskManager lost) -> COMMIT, or ABORT
 *   RELEASED from all -> the job is FINISHED, FAILED or CANCELED, and the
 *   client that submitted it (unless detached) gets its JobInfo.
 */
#include "checkpoint/coordinator.h"
#include "checkpoint/store.h"
#include "checkpoint/restart.h"
#include "cluster/config.h"
#include "graph/graph.h"
#include "cluster/ctlio.h"
#include "cluster/daemons.h"
#include "cluster/supervisor.h"
#include "ctl/objstore.h"
#include "ctl/sha.h"
#include "sched/placement.h"
#include "sched/worker.h"
#include "task/task.h"
#include "net/tls.h"
#include "shm/shmfile.h"
#include <time.h>
#include "base/clock.h"
#include "base/err.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "base/num.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/jm.h"
#include "cluster/rest.h"
#include "net/http.h"


/* A connection refused or closed before its handshake, or for breaking
 * the protocol: logged, at most a line a second (the rest summed up by
 * why, a short fixed text). */
#define log_refused(why, ...) weir_log_limited(&jm.refused, weir_real_now_ns(), why, __VA_ARGS__)

struct jm_state jm = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int ntms(void)
{
	int n = 0;
	for (int i = 0; i < MAX_TMS; i++)
		n += jm.tms[i].live;
	return n;
}

static void send_error(struct weir_conn *c, uint64_t request_id, const char *msg)
{
	Weir__Ctl__Error e = WEIR__CTL__ERROR__INIT;
	e.message = (char *)msg;
	weir_ctl_send_body(c, request_id, WEIR__CTL__ENVELOPE__BODY_ERROR, &e);
}

static void send_status(struct weir_conn *c, uint64_t request_id)
{
	Weir__Ctl__TaskManagerInfo infos[MAX_TMS], *ptrs[MAX_TMS];
	Weir__Ctl__PoolInfo pools[MAX_TMS];
	Weir__Ctl__ClusterStatus cs = WEIR__CTL__CLUSTER_STATUS__INIT;
	cs.cluster_id = jm.cluster_id;
	size_t n = 0;
	uint64_t now = weir_now_ns();
	for (int i = 0; i < MAX_TMS; i++) {
		struct tmrec *t = &jm.tms[i];
		if (!t->live)
			continue;
		Weir__Ctl__TaskManagerInfo ti = WEIR__CTL__TASK_MANAGER_INFO__INIT;
		Weir__Ctl__PoolInfo pi = WEIR__CTL__POOL_INFO__INIT;
		pi.name = t->pool;
		pi.pool_id = t->pool_id;
		pi.segments = t->segments;
		pi.segment_size = t->segment_size;
		pi.numa_node = t->pool_node;
		pools[n] = pi;
		ti.tm_id = t->id;
		ti.host = t->host;
		ti.host_id = t->host_id;
		ti.data_address = t->data_addr;
		ti.pid = t->pid;
		ti.numa_node = t->numa_node;
		ti.slots = t->slots;
		ti.slots_used = 0;
		for (uint32_t sl = 0; sl < t->slots && sl < 1024; sl++) /* held by running jobs */
			ti.slots_used += t->busy[sl];
		cs.slots_used += ti.slots_used;
		ti.pool = &pools[n];
		ti.has_last_heartbeat_ms = true;
		ti.last_heartbeat_ms = (uint32_t)((now - t->last_hb_ns) / 1000000u);
		infos[n] = ti;
		ptrs[n] = &infos[n];
		cs.slots_total += t->slots;
		n++;
	}
	cs.n_taskmanagers = n;
	cs.taskmanagers = ptrs;
	weir_ctl_send_body(c, request_id, WEIR__CTL__ENVELOPE__BODY_CLUSTER_STATUS, &cs);
}

/* Answer the status waiters whose count is reached (or all, with force). */
static void wake_waiters(bool force)
{
	uint64_t now = weir_now_ns();
	for (int i = 0; i < MAX_WAITERS; i++) {
		struct waiter *w = &jm.waiters[i];
		if (!w->used)
			continue;
		struct weir_conn *c = weir_loop_conn(jm.loop, w->conn);
		if (!c) { /* its client left */
			w->used = false;
			continue;
		}
		if (!force && (uint32_t)ntms() != w->want && now < w->deadline_ns)
			continue;
		send_status(c, w->request_id);
		w->used = false;
	}
}

static void send_stop(struct weir_conn *c, const char *reason)
{
	Weir__Ctl__Stop s = WEIR__CTL__STOP__INIT;
	s.reason = (char *)reason;
	weir_ctl_send_body(c, 0, WEIR__CTL__ENVELOPE__BODY_STOP, &s);
}

static void retry_parked(void);

static void begin_stop(const char *why)
{
	if (jm.stopping)
		return;
	jm.stopping = true;
	jm.stop_deadline_ns = weir_now_ns() + STOP_GRACE_MS * 1000000ull;
	weir_log(WEIR_LOG_INFO, "stopping (%s): telling %d taskmanagers", why, ntms());
	for (int i = 0; i < MAX_TMS; i++) {
		struct weir_conn *c = jm.tms[i].live ? weir_loop_conn(jm.loop, jm.tms[i].conn) : NULL;
		if (c)
			send_stop(c, why);
	}
	retry_parked(); /* refuses the jobs waiting for slots */
}

/* ---- jobs ------------------------------------------------------------------- */

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct jobrec *job_of(uint64_t id)
{
	for (int i = 0; i < MAX_JOBS; i++)
		if (jm.jobs[i].used && jm.jobs[i].id == id)
			return &jm.jobs[i];
	return NULL;
}

static struct tmrec *tm_by_id(uint32_t id)
{
	for (int i = 0; i < MAX_TMS; i++)
		if (jm.tms[i].live && jm.tms[i].id == id)
			return &jm.tms[i];
	return NULL;
}

static void job_info(const struct jobrec *j, Weir__Ctl__JobInfo *ji)
{
	Weir__Ctl__JobInfo init = WEIR__CTL__JOB_INFO__INIT;
	*ji = init;
	ji->job_id = j->id;
	ji->name = (char *)j->name;
	ji->state = j->state;
	ji->start_time_ms = j->start_ms;
	ji->parallelism = j->parallelism;
	ji->has_end_time_ms = j->end_ms != 0;
	ji->end_time_ms = j->end_ms;
	ji->message = j->stopped ? (char *)j->stop_msg : j->message[0] ? (char *)j->message : NULL;
	if (j->ck_on) {
		ji->has_restarts = ji->has_checkpoint_restored = ji->has_checkpoints_completed = true;
		ji->restarts = j->attempt;
		ji->checkpoint_restored = j->restored;
		ji->checkpoints_completed = j->ck.completed;
		ji->checkpoint_dir = (char *)j->ck.base;
	}
}

/* A message to every TaskManager of the job's attempt still in it. */
static void to_job_tms(struct jobrec *j, Weir__Ctl__Envelope__BodyCase body_case, void *body)
{
	for (int k = 0; k < j->ntm; k++) {
		struct tmrec *t = j->phase[k] < P_RELEASED ? tm_by_id(j->tm_ids[k]) : NULL;
		struct weir_conn *c = t ? weir_loop_conn(jm.loop, t->conn) : NULL;
		if (c)
			weir_ctl_send_body(c, 0, body_case, body);
	}
}

static void phase_to_tms(struct jobrec *j, Weir__Ctl__Phase ph)
{
	Weir__Ctl__JobPhase jp = WEIR__CTL__JOB_PHASE__INIT;
	jp.job_id = j->id;
	jp.phase = ph;
	to_job_tms(j, WEIR__CTL__ENVELOPE__BODY_JOB_PHASE, &jp);
}

/* Someone waits for a savepoint of j (a client, or the REST API). */
static bool sp_wanted(const struct jobrec *j) { return j->sp_conn || j->sp_rest; }

/* The savepoint asked for failed (why), or completed (why NULL, path). */
static void sp_answer(struct jobrec *j, const char *why, const char *path, uint64_t id)
{
	if (j->sp_rest) {
		j->sp_op.status = why ? SP_OP_FAILED : SP_OP_COMPLETED;
		snprintf(j->sp_op.result, sizeof(j->sp_op.result), "%s", why ? why : path);
	} else if (j->sp_conn) {
		struct weir_conn *c = weir_loop_conn(jm.loop, j->sp_conn);
		if (c && why) {
			send_error(c, j->sp_rid, why);
		} else if (c) {
			Weir__Ctl__Savepoint spm = WEIR__CTL__SAVEPOINT__INIT;
			spm.path = (char *)path;
			spm.checkpoint_id = id;
			weir_ctl_send_body(c, j->sp_rid, WEIR__CTL__ENVELOPE__BODY_SAVEPOINT, &spm);
		}
	}
	j->sp_conn = 0;
	j->sp_rest = false;
}

static void job_fail(struct jobrec *j, const char *why)
{
	if (!j->failed) {
		j->failed = true;
		snprintf(j->message, sizeof(j->message), "%s", why);
		if (j->canceled)
			return; /* asked for: not an exception */
		struct exc *e = &j->exc[j->nexc++ % JM_EXCEPTIONS];
		e->ms = wall_ms();
		e->attempt = j->attempt;
		snprintf(e->msg, sizeof(e->msg), "%s", why);
	}
}

/* Mark the slots the job holds busy (or free) on their TaskManagers, where
 * the same connection still stands. */
static void hold_slots(struct jobrec *j, bool busy)
{
	for (int h = 0; h < j->nheld; h++) {
		struct tmrec *t = tm_by_id(j->held[h].tm);
		if (t && t->conn == j->held_conn[h] && j->held[h].slot < 1024)
			t->busy[j->held[h].slot] = busy;
	}
}

/* The job is over for good: its state, its log line, its client's answer. */
static void job_end(struct jobrec *j)
{
	j->state = j->stopped ? WEIR__CTL__JOB_STATE__JOB_FINISHED
		 : j->canceled ? WEIR__CTL__JOB_STATE__JOB_CANCELED
		 : j->failed ? WEIR__CTL__JOB_STATE__JOB_FAILED : WEIR__CTL__JOB_STATE__JOB_FINISHED;
	j->end_ms = wall_ms();
	j->restarting = false;
	bool bad = j->failed && !j->canceled && !j->stopped;
	weir_log(bad ? WEIR_LOG_WARN : WEIR_LOG_INFO, "job %llu (%s) %s%s%s", (unsigned long long)j->id, j->name,
		 j->stopped ? "stopped with a savepoint" : j->canceled ? "canceled" : j->failed ? "failed" : "finished",
		 bad ? ": " : "", bad ? j->message : "");
	if (sp_wanted(j) && !j->stopped) /* a savepoint it never took */
		sp_answer(j, "the job ended before the savepoint completed", NULL, 0);
	struct weir_conn *c = j->client_conn ? weir_loop_conn(jm.loop, j->client_conn) : NULL;
	if (c) {
		Weir__Ctl__JobInfo ji;
		job_info(j, &ji);
		weir_ctl_send_body(c, j->client_rid, WEIR__CTL__ENVELOPE__BODY_JOB_INFO, &ji);
	}
	j->client_conn = 0;
}

/* An attempt is over on every TaskManager: what a killed one left in
 * /dev/shm goes (files whose owner died), and a checkpoint in flight can
 * never complete. */
static void attempt_cleanup(struct jobrec *j)
{
	char prefix[160];
	/* the attempt's files in the cluster's folder (task.h, weir_dist_job_prefix) */
	snprintf(prefix, sizeof(prefix), "weir-%s/j%llua%u-", jm.cluster_id, (unsigned long long)j->id, j->attempt);
	weir_shm_sweep(prefix);
	if (j->ck_on) {
		ck_coordinator_reset(&j->ck, weir_now_ns());
		/* every TaskManager of the attempt released it: none writes into
		 * the job's folder now, so a folder a writer made again after its
		 * checkpoint was aborted (and removed) goes, as does any other
		 * left without metadata */
		weir_ckpt_retain(j->ck.base, UINT64_MAX, (int)j->ck.retain);
	}
	if (sp_wanted(j) && j->sp_begun && !j->stopped) /* it was in flight when the attempt failed */
		sp_answer(j, "the savepoint was aborted: the job failed while taking it", NULL, 0);
}

/* A failed attempt of a job with checkpoints: when the restart strategy
 * allows another, schedule it (true); the tick deploys it. */
static bool restart_due(struct jobrec *j)
{
	if (!j->ck_on || !j->failed || j->canceled || j->stopped || jm.stopping)
		return false;
	if ((!j->started || j->refused) && !j->lost_tm) /* refused while deploying: the same again */
		return false;
	uint32_t delay;
	if (!ck_restart_next(&j->restart, &delay)) {
		char why[1100];
		snprintf(why, sizeof(why), "%s (after %u restarts)", j->message, j->attempt);
		snprintf(j->message, sizeof(j->message), "%s", why);
		return false;
	}
	uint64_t now = weir_now_ns();
	j->restarting = true;
	j->state = WEIR__CTL__JOB_STATE__JOB_RESTARTING;
	j->restart_at_ns = now + (uint64_t)delay * 1000000u;
	j->restart_deadline_ns = j->restart_at_ns + (uint64_t)(jm.slot_wait_ms > 0 ? jm.slot_wait_ms : 1) * 1000000u;
	weir_log(WEIR_LOG_WARN, "job %llu (%s) failed: %s; restart %u of %u in %u ms", (unsigned long long)j->id, j->name,
		 j->message, j->restart.made, j->restart.attempts, delay);
	return true;
}

/* Move a job on as far as its TaskManagers' phases allow. */
static void job_advance(struct jobrec *j)
{
	int prepared = 0, over = 0, released = 0;
	for (int k = 0; k < j->ntm; k++) {
		prepared += j->phase[k] >= P_PREPARED;
		over += j->phase[k] >= P_OVER;
		released += j->phase[k] >= P_RELEASED;
	}
	if (!j->started && !j->decided && !j->failed && prepared == j->ntm) {
		j->started = true;
		j->state = WEIR__CTL__JOB_STATE__JOB_RUNNING;
		phase_to_tms(j, WEIR__CTL__PHASE__PHASE_START);
	}
	if (!j->decided && (j->failed || over == j->ntm)) {
		j->decided = true;
		if (j->canceled)
			j->state = WEIR__CTL__JOB_STATE__JOB_CANCELING;
		phase_to_tms(j, j->failed ? WEIR__CTL__PHASE__PHASE_ABORT : WEIR__CTL__PHASE__PHASE_COMMIT);
	}
	if (released == j->ntm && !j->end_ms && !j->restarting) {
		attempt_cleanup(j);
		if (restart_due(j))
			return; /* its slots stay held through the delay: no new job takes them */
		hold_slots(j, false);
		j->nheld = 0;
		job_end(j);
	}
}

/* ---- checkpoints (engine/checkpoint/coordinator.h) ---------------------------------- */

/* Where TaskManager id stands in the job's current attempt, or -1. */
static int job_tm_index(const struct jobrec *j, uint32_t id)
{
	for (int k = 0; k < j->ntm; k++)
		if (j->tm_ids[k] == id)
			return k;
	return -1;
}

/* A checkpoint step to the job's TaskManagers. */
static void ck_send(struct jobrec *j, Weir__Ctl__CheckpointAction a, uint64_t id, const char *dir)
{
	Weir__Ctl__CheckpointStep cs = WEIR__CTL__CHECKPOINT_STEP__INIT;
	cs.job_id = j->id;
	cs.checkpoint_id = id;
	cs.action = a;
	cs.dir = (char *)dir;
	to_job_tms(j, WEIR__CTL__ENVELOPE__BODY_CHECKPOINT_STEP, &cs);
}

/* The coordinator's steps go to the job's TaskManagers. */
static void ck_send_step(void *arg, enum ck_step step, uint64_t id, const char *dir)
{
	struct jobrec *j = arg;
	ck_send(j, step == CK_STEP_TRIGGER ? WEIR__CTL__CHECKPOINT_ACTION__CK_TRIGGER
		   : step == CK_STEP_COMPLETE ? WEIR__CTL__CHECKPOINT_ACTION__CK_COMPLETE
					       : WEIR__CTL__CHECKPOINT_ACTION__CK_ABORT,
		id, dir);
}

/* The checkpoint in flight ended: a savepoint's client gets its answer,
 * and a stop-with-savepoint stops the job. */
static void ck_ended(void *arg, uint64_t id, bool sp, bool ok, const char *text)
{
	struct jobrec *j = arg;
	if (!sp || !sp_wanted(j))
		return;
	if (!ok) {
		char msg[1200];
		snprintf(msg, sizeof(msg), "savepoint %llu of job %llu aborted: %s", (unsigned long long)id,
			 (unsigned long long)j->id, text);
		sp_answer(j, msg, NULL, 0);
		return;
	}
	sp_answer(j, NULL, text, id);
	if (j->sp_stop) { /* stop-with-savepoint: the rest is cancelled (also when the attempt
			   * failed meanwhile: no restart); a restore from it resumes exactly there */
		j->stopped = j->canceled = true;
		char path[sizeof(j->ck.latest_path)]; /* a copy: both live in jm (-Wrestrict) */
		memcpy(path, j->ck.latest_path, sizeof(path));
		snprintf(j->stop_msg, sizeof(j->stop_msg), "stopped with savepoint %s", path);
		job_fail(j, "stopped with a savepoint");
		weir_log(WEIR_LOG_INFO, "job %llu: %s", (unsigned long long)j->id, j->stop_msg);
		job_advance(j);
	}
}

/* On every tick: the job's timeout, its next periodic checkpoint, or a
 * savepoint asked for. Only while its attempt runs. */
static void ck_tick(struct jobrec *j, uint64_t now)
{
	if (!j->ck_on || !j->started || j->decided || j->end_ms || j->restarting)
		return;
	bool sp = sp_wanted(j) && !j->sp_begun;
	uint64_t id = ck_coordinator_tick(&j->ck, j->ntm, j->nsub, sp ? j->sp_dir : NULL, now);
	if (id && sp)
		j->sp_begun = true;
}

/* A TaskManager's snapshots for a checkpoint, or its refusal. */
static void ck_acked(struct peer *p, const Weir__Ctl__CheckpointAck *a)
{
	struct jobrec *j = job_of(a->job_id);
	if (!j || !j->ck_on || p->tm < 0 || a->checkpoint_id != j->ck.pending)
		return; /* late, or for an aborted one */
	uint32_t id = jm.tms[p->tm].id;
	int k = job_tm_index(j, id);
	if (k < 0)
		return;
	char why[1200];
	uint64_t now = weir_now_ns();
	if (a->error) {
		snprintf(why, sizeof(why), "taskmanager %u: %s", id, a->error);
		ck_coordinator_acked(&j->ck, k, a->checkpoint_id, NULL, 0, 0, 0, 0, why, now);
		return;
	}
	struct weir_ckpt_file *fs = calloc(a->n_files + 1, sizeof(*fs));
	if (!fs)
		return; /* never acknowledged: the timeout aborts it */
	for (size_t i = 0; i < a->n_files; i++) {
		const Weir__Ctl__SnapshotFile *f = a->files[i];
		/* the metadata joins these names to the folder: plain names only */
		if (strlen(f->name) >= sizeof(fs[i].name) || strchr(f->name, '/') || f->name[0] == '.') {
			free(fs);
			snprintf(why, sizeof(why), "taskmanager %u sent a bad file name", id);
			ck_coordinator_abort(&j->ck, why, now);
			return;
		}
		fs[i].vertex = f->vertex;
		fs[i].index = f->index;
		fs[i].parallelism = f->parallelism;
		snprintf(fs[i].name, sizeof(fs[i].name), "%s", f->name);
		fs[i].size = f->size;
		fs[i].sum = f->sum;
	}
	ck_coordinator_acked(&j->ck, k, a->checkpoint_id, fs, (uint32_t)a->n_files, a->has_bytes ? a->bytes : 0,
			     a->has_sync_max_ns ? a->sync_max_ns : 0, a->has_inflight_bytes ? a->inflight_bytes : 0,
			     NULL, now);
	free(fs);
}

/* A client asks for a savepoint (and maybe to stop the job with it). */
/* A savepoint of job id into dir (then a stop, with stop), asked by a
 * client on connection conn (request rid), or by the REST API (conn 0:
 * the answer goes into the job's sp_op). NULL, or why not (in msg). */
static const char *savepoint_begin(uint64_t id, const char *dir, bool stop, uint64_t conn, uint64_t rid, char *msg,
				   size_t n)
{
	struct jobrec *j = job_of(id);
	if (!j || j->end_ms)
		snprintf(msg, n, "no running job %llu", (unsigned long long)id);
	else if (!j->ck_on)
		snprintf(msg, n, "job %llu runs without checkpoints: submit it with --checkpoint-interval MS "
			 "(0: savepoints only)", (unsigned long long)j->id);
	else if (dir[0] != '/')
		snprintf(msg, n, "the savepoint folder must be an absolute path");
	else if (sp_wanted(j))
		snprintf(msg, n, "a savepoint of job %llu is being taken already", (unsigned long long)j->id);
	else if (strlen(dir) >= sizeof(j->sp_dir) - 128)
		snprintf(msg, n, "the savepoint folder's path is too long");
	else
		msg[0] = '\0';
	if (msg[0])
		return msg;
	/* a folder of the job's own: ids restart with every job, so savepoints
	 * of two jobs in one DIR must never share (or remove) a chk-<id> */
	snprintf(j->sp_dir, sizeof(j->sp_dir), "%s/savepoint-%s-job%llu", dir, jm.cluster_id,
		 (unsigned long long)j->id);
	if (weir_ckpt_prepare(j->sp_dir, sizeof(j->sp_dir)) < 0) {
		snprintf(msg, n, "%s", weir_err_msg());
		return msg;
	}
	j->sp_conn = conn;
	j->sp_rid = rid;
	j->sp_rest = !conn;
	j->sp_stop = stop;
	j->sp_begun = false;
	weir_log(WEIR_LOG_INFO, "job %llu: savepoint into %s asked%s%s", (unsigned long long)j->id, j->sp_dir,
		 stop ? ", then stop" : "", conn ? "" : " (REST API)");
	ck_tick(j, weir_now_ns());
	return NULL;
}

static void savepoint_request(struct weir_conn *c, uint64_t rid, const Weir__Ctl__TriggerSavepoint *t)
{
	char msg[PATH_MAX + 128];
	if (savepoint_begin(t->job_id, t->dir, t->has_stop && t->stop, weir_conn_id(c), rid, msg, sizeof(msg)))
		send_error(c, rid, msg);
}

/* A TaskManager's step in a job. */
static void job_phase(struct peer *p, const Weir__Ctl__JobPhase *ph)
{
	struct jobrec *j = job_of(ph->job_id);
	if (!j || p->tm < 0)
		return;
	uint32_t id = jm.tms[p->tm].id;
	int k = job_tm_index(j, id);
	if (k < 0)
		return;
	char why[1100];
	switch (ph->phase) {
	case WEIR__CTL__PHASE__PHASE_PREPARED:
		if (j->phase[k] < P_PREPARED)
			j->phase[k] = P_PREPARED;
		break;
	case WEIR__CTL__PHASE__PHASE_FAILED:
		snprintf(why, sizeof(why), "taskmanager %u: %s", id, ph->message ? ph->message : "failed");
		job_fail(j, why);
		j->refused |= ph->has_refused && ph->refused;
		if (j->phase[k] < P_OVER)
			j->phase[k] = P_OVER;
		break;
	case WEIR__CTL__PHASE__PHASE_DONE:
		if (j->phase[k] < P_OVER)
			j->phase[k] = P_OVER;
		break;
	case WEIR__CTL__PHASE__PHASE_RELEASED:
		if (ph->message && !j->failed) {
			snprintf(why, sizeof(why), "taskmanager %u: %s", id, ph->message);
			job_fail(j, why);
		}
		j->phase[k] = P_RELEASED;
		break;
	default:
		return;
	}
	job_advance(j);
}

/* A TaskManager is gone: its part of every job is over, and failed. note:
 * its last words (supervisor.h), or NULL. */
static void jobs_lost_tm(uint32_t id, const char *note)
{
	for (int i = 0; i < MAX_JOBS; i++) {
		struct jobrec *j = &jm.jobs[i];
		if (!j->used || j->end_ms)
			continue;
		for (int k = 0; k < j->ntm; k++)
			if (j->tm_ids[k] == id && j->phase[k] < P_RELEASED) {
				char why[1200];
				snprintf(why, sizeof(why), "taskmanager %u was lost%s%s", id, note ? ": " : "", note ? note : "");
				job_fail(j, why);
				j->lost_tm = true;
				j->phase[k] = P_RELEASED;
				job_advance(j);
			}
	}
}

static int reject(struct weir_conn *c, uint64_t rid, const char *why)
{
	Weir__Ctl__JobRejected r = WEIR__CTL__JOB_REJECTED__INIT;
	r.reason = (char *)why;
	weir_ctl_send_body(c, rid, WEIR__CTL__ENVELOPE__BODY_JOB_REJECTED, &r);
	weir_log(WEIR_LOG_WARN, "job refused: %s", why);
	return 0;
}

/* What a submission that finds too few free slots does: SUB_NEW parks
 * (when slot_wait_ms > 0, else is refused), SUB_RETRY stays parked,
 * SUB_LAST is refused saying how long it waited (waited_ms). */
enum sub_mode { SUB_NEW, SUB_RETRY, SUB_LAST };
#define SUBMIT_PARKED 1
static int park(struct weir_conn *c, uint64_t rid, const Weir__Ctl__SubmitJob *sj, const char *why);

/* The free slots of the live TaskManagers, for placement. */
static size_t slot_offers(struct weir_slot_offer *offers)
{
	size_t n = 0;
	for (int i = 0; i < MAX_TMS; i++)
		if (jm.tms[i].live) {
			uint32_t free_slots = 0;
			for (uint32_t sl = 0; sl < jm.tms[i].slots && sl < 1024; sl++)
				free_slots += !jm.tms[i].busy[sl];
			offers[n++] = (struct weir_slot_offer){ jm.tms[i].id, free_slots };
		}
	return n;
}

/* Place sj's subtasks on free slots: *places (malloc'ed, vertex by vertex)
 * and the global slots used, or -1 when too few are free (*total: how
 * many are). par: each vertex's parallelism; nsub: their sum. */
static long place(const Weir__Ctl__SubmitJob *sj, const uint32_t *par, size_t nsub, struct weir_place **places,
		  uint32_t *total)
{
	struct weir_slot_offer offers[MAX_TMS];
	size_t noffers = slot_offers(offers);
	bool spread = sj->has_spread && sj->spread;
	*total = 0;
	*places = malloc(sizeof(**places) * (nsub + 1));
	if (!*places)
		return -2;
	*total = 0;
	long needed = weir_place_job(par, sj->graph->n_vertices, offers, noffers, spread, *places, total);
	if (needed < 0)
		return needed;
	/* placement counts free slots 0, 1, ... per TaskManager: map them to
	 * the slots that are free there */
	for (size_t q = 0; q < nsub; q++) {
		struct tmrec *t = tm_by_id((*places)[q].tm);
		uint32_t r = (*places)[q].slot, sl = 0;
		for (;; sl++)
			if (!t->busy[sl] && r-- == 0)
				break;
		(*places)[q].slot = sl;
	}
	return needed;
}

/* Deploy the job's current attempt: hold its slots, send Deploy to every
 * TaskManager it uses (a new attempt restores j->restore when set). */
static void deploy_attempt(struct jobrec *j, const Weir__Ctl__SubmitJob *sj, const uint32_t *par, size_t nsub,
			   const struct weir_place *places, long needed)
{
	Weir__Ctl__Placement *pl = calloc(nsub, sizeof(*pl)), **pls = calloc(nsub, sizeof(*pls));
	if (!pl || !pls) {
		free(pl);
		free(pls);
		job_fail(j, "out of memory");
		return;
	}
	/* placements, vertex by vertex: subtask i in global slot i */
	size_t n = 0;
	for (size_t v = 0; v < sj->graph->n_vertices; v++)
		for (uint32_t i = 0; i < par[v]; i++, n++) {
			Weir__Ctl__Placement init = WEIR__CTL__PLACEMENT__INIT;
			pl[n] = init;
			pl[n].vertex = (uint32_t)v;
			pl[n].index = i;
			pl[n].tm_id = places[n].tm;
			pl[n].slot = places[n].slot;
			pls[n] = &pl[n];
			int k = 0;
			while (k < j->ntm && j->tm_ids[k] != places[n].tm)
				k++;
			if (k == j->ntm)
				j->tm_ids[j->ntm++] = places[n].tm;
		}
	for (long g = 0; g < needed; g++) { /* global slot g is one slot on its TaskManager */
		const struct weir_place *gp = NULL;
		size_t idx = 0;
		for (size_t v = 0; v < sj->graph->n_vertices && !gp; idx += par[v], v++)
			if ((uint32_t)g < par[v])
				gp = &places[idx + (size_t)g];
		for (int k = 0; gp && k < j->ntm; k++)
			if (j->tm_ids[k] == gp->tm)
				j->slots_on[k]++;
		if (gp && j->nheld < 1024) { /* held until the attempt ends */
			struct tmrec *t = tm_by_id(gp->tm);
			j->held_conn[j->nheld] = t->conn;
			j->held[j->nheld++] = *gp;
			t->busy[gp->slot] = true;
		}
	}
	Weir__Ctl__Deploy d = WEIR__CTL__DEPLOY__INIT;
	Weir__Ctl__CheckpointSetup cs = WEIR__CTL__CHECKPOINT_SETUP__INIT;
	d.job_id = j->id;
	d.job_name = j->name;
	d.object_sha256 = sj->object_sha256;
	d.object_size = sj->object_size;
	d.n_args = sj->n_args;
	d.args = sj->args;
	d.parallelism = sj->parallelism;
	d.n_placements = nsub;
	d.placements = pls;
	d.cluster_id = jm.cluster_id;
	d.has_max_parallelism = sj->graph->has_max_parallelism;
	d.max_parallelism = sj->graph->max_parallelism;
	d.has_attempt = true;
	d.attempt = j->attempt;
	j->nsub = (uint32_t)nsub;
	if (j->ck_on) {
		cs.has_at_least_once = cs.has_restarted = true;
		cs.at_least_once = j->alo;
		cs.has_unaligned = true;
		cs.unaligned = j->unaligned;
		cs.restarted = j->attempt > 0;
		cs.restore = j->restore[0] ? j->restore : NULL;
		cs.dir = j->ck.base;
		cs.storage_id = j->ck_token;
		d.checkpoints = &cs;
	}
	/* where each TaskManager of the job is: channels between two on
	 * different hosts (or all of them, with force_tcp) go over TCP */
	Weir__Ctl__DeployPeer peerv[MAX_TMS], *peerp[MAX_TMS];
	size_t npeer = 0;
	for (int k = 0; k < j->ntm && npeer < MAX_TMS; k++) {
		struct tmrec *t = tm_by_id(j->tm_ids[k]);
		if (!t)
			continue;
		weir__ctl__deploy_peer__init(&peerv[npeer]);
		peerv[npeer].tm_id = t->id;
		peerv[npeer].host_id = t->host_id;
		peerv[npeer].data_address = t->data_addr;
		peerp[npeer] = &peerv[npeer];
		npeer++;
	}
	d.n_peers = npeer;
	d.peers = peerp;
	d.has_force_tcp = jm.force_tcp;
	d.force_tcp = jm.force_tcp;
	d.has_net_credits = true;
	d.net_credits = jm.net_credits;
	/* the workers' idle strategy: the job's (weir run --idle), else the cluster's */
	char idle[16];
	snprintf(idle, sizeof(idle), "%s", sj->idle ? sj->idle : weir_idle_name((enum weir_idle)jm.ckdef.idle));
	d.idle = idle;
	d.has_spin_us = true;
	d.spin_us = sj->idle && sj->has_spin_us ? sj->spin_us : (uint32_t)(jm.ckdef.spin_ns / 1000u);
	d.has_latency_interval_ms = sj->has_latency_interval_ms;
	d.latency_interval_ms = sj->latency_interval_ms;
	d.has_debloat_us = true;
	d.debloat_us = sj->has_debloat_us ? sj->debloat_us : (uint32_t)(jm.ckdef.debloat_ns / 1000u);
	for (int k = 0; k < j->ntm; k++) {
		struct tmrec *t = tm_by_id(j->tm_ids[k]);
		struct weir_conn *tc = t ? weir_loop_conn(jm.loop, t->conn) : NULL;
		if (!tc || weir_ctl_send_body(tc, 0, WEIR__CTL__ENVELOPE__BODY_DEPLOY, &d) < 0) {
			j->phase[k] = P_RELEASED;
			j->lost_tm = true;
			job_fail(j, "a taskmanager could not be reached");
		}
	}
	free(pl);
	free(pls);
	weir_log(WEIR_LOG_INFO, "job %llu (%s): %zu subtasks on %d taskmanagers%s%s%s", (unsigned long long)j->id,
		 j->name, nsub, j->ntm, sj->has_spread && sj->spread ? " (spread)" : "",
		 j->restore[0] ? ", restoring " : "", j->restore);
}

/* The parallelism of each vertex of sj's graph (checked), their sum in
 * *nsub; NULL with why set when out of range. */
static const char *graph_par(const Weir__Ctl__SubmitJob *sj, uint32_t *par, size_t *nsub)
{
	if (!sj->graph || !sj->graph->n_vertices)
		return "the submission has no job graph";
	if (sj->graph->n_vertices > 1024)
		return "the job graph has too many vertices";
	*nsub = 0;
	for (size_t v = 0; v < sj->graph->n_vertices; v++) {
		par[v] = sj->graph->vertices[v]->parallelism;
		if (par[v] < 1 || par[v] > 1024)
			return "a vertex's parallelism is out of range";
		*nsub += par[v];
	}
	return NULL;
}

/* The checkpoint folder a restore starts from: path itself when it names
 * one chk-<id> folder, else its newest good checkpoint's. 0; -1 when
 * there are some but none is good (why lists them); -2 when there is none. */
static int resolve_restore(const char *path, char *out, size_t n, uint64_t *id, char *why, size_t wn)
{
	struct weir_ckpt_meta m;
	char report[2048] = "";
	int r = weir_ckpt_latest(path, &m, report, sizeof(report));
	if (r <= 0) {
		snprintf(why, wn, r == 0 ? "no complete checkpoint in '%s'" : "no good checkpoint in '%s': %s", path,
			 weir_err_msg());
		return r == 0 ? -2 : -1;
	}
	*id = m.id;
	weir_ckpt_meta_free(&m);
	char meta[PATH_MAX + 64];
	snprintf(meta, sizeof(meta), "%s/chk-%llu/_metadata", path, (unsigned long long)*id);
	if (access(meta, F_OK) == 0)
		snprintf(out, n, "%s/chk-%llu", path, (unsigned long long)*id);
	else
		snprintf(out, n, "%s", path);
	return 0;
}

/* Write a fresh random token into dir/.storage-id (0600, replacing an
 * older one of ours) and into token. 0, or -1 with the trail set. */
static int write_storage_id(const char *dir, char *token, size_t n)
{
	uint8_t r[16];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return weir_err_errno(errno, "getrandom");
	for (size_t i = 0; i < sizeof(r) && 2 * i + 2 < n; i++)
		snprintf(token + 2 * i, 3, "%02x", r[i]);
	char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/.storage-id", dir);
	snprintf(tmp, sizeof(tmp), "%s/.storage-id.%d", dir, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return weir_err_errno(errno, "checkpoint folder: create '%s'", tmp);
	size_t len = strlen(token);
	bool ok = write(fd, token, len) == (ssize_t)len && fsync(fd) == 0;
	close(fd);
	if (!ok || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return weir_err_errno(e, "checkpoint folder: write '%s'", path);
	}
	return 0;
}

/* A new job's checkpoint setup from its submission; NULL, or why not. */
static const char *job_ck_setup(struct jobrec *j, const Weir__Ctl__CheckpointConfig *cc, char *why, size_t wn)
{
	if (cc->dir[0] != '/')
		return "the checkpoint folder must be an absolute path";
	if (cc->restore_from && cc->restore_from[0] != '/')
		return "the folder to restore from must be an absolute path";
	char base[PATH_MAX];
	if (snprintf(base, sizeof(base), "%s/%s-job%llu", cc->dir, jm.cluster_id, (unsigned long long)j->id) >=
	    (int)sizeof(base))
		return "the checkpoint folder's path is too long";
	if (weir_ckpt_prepare(base, sizeof(base)) < 0) {
		snprintf(why, wn, "%s", weir_err_msg());
		return why;
	}
	/* a token every TaskManager must read back from the folder: one that
	 * sees a folder of its own there (storage not shared) is found before
	 * the job starts */
	if (write_storage_id(base, j->ck_token, sizeof(j->ck_token)) < 0) {
		snprintf(why, wn, "%s", weir_err_msg());
		return why;
	}
	struct ck_coordinator_ops ops = { ck_send_step, ck_ended, j };
	if (ck_coordinator_init(&j->ck, j->id, cc->interval_ms, cc->has_timeout_ms ? cc->timeout_ms : 60000,
				cc->has_min_pause_ms ? cc->min_pause_ms : 0, cc->has_retain ? cc->retain : 3, base, 0, &ops,
				weir_now_ns()) < 0)
		return "the checkpoint folder's path is too long";
	j->ck_on = true;
	j->alo = cc->has_at_least_once && cc->at_least_once;
	j->unaligned = cc->has_unaligned && cc->unaligned;
	if (j->alo && j->unaligned)
		return "unaligned checkpoints and at-least-once exclude each other";
	ck_restart_init(&j->restart, cc->has_restart_attempts ? cc->restart_attempts : 3,
			cc->has_restart_delay_ms ? cc->restart_delay_ms : 100,
			cc->has_restart_max_delay_ms ? cc->restart_max_delay_ms : 0);
	if (cc->restore_from && *cc->restore_from) {
		uint64_t id;
		if (resolve_restore(cc->restore_from, j->restore, sizeof(j->restore), &id, why, wn) < 0)
			return why;
		j->ck.last_id = id; /* ids go on after it: a sink's parts never collide */
		j->restored = id;
	}
	return NULL;
}

static void jobrec_clear(struct jobrec *j)
{
	free(j->sub);
	weir_series_free(&j->metrics);
	ck_coordinator_release(&j->ck, weir_now_ns());
	memset(j, 0, sizeof(*j));
}

/* The submission's object: in the message (checked, then stored; parked
 * jobs come back without it) or uploaded before. NULL, or why not. */
static const char *submit_object(struct weir_conn *c, const Weir__Ctl__SubmitJob *sj, char *why, size_t n)
{
	uint8_t sha[WEIR_SHA256_LEN];
	if (!sj->has_object)
		return weir_obj_have(jm.objdir, sj->object_sha256.data, sj->object_size)
			       ? NULL
			       : "the object was not uploaded (ObjectChunk messages come before SubmitJob)";
	char tag[32];
	snprintf(tag, sizeof(tag), "c%llx", (unsigned long long)weir_conn_id(c));
	if (sj->object.len != sj->object_size || weir_sha256_buf(sj->object.data, sj->object.len, sha) < 0 ||
	    !weir_digest_equal(sha, sj->object_sha256.data, WEIR_SHA256_LEN))
		return "the object does not match its SHA-256";
	if (weir_obj_put(jm.objdir, sha, sj->object.data, sj->object.len, tag) < 0) {
		snprintf(why, n, "the jobmanager cannot store the object: %s", weir_err_msg());
		return why;
	}
	return NULL;
}

/* Too few free slots for it: park the submission (it waits for slots),
 * or refuse it, saying how many it needs. */
static int submit_no_slots(struct weir_conn *c, uint64_t rid, const Weir__Ctl__SubmitJob *sj, const uint32_t *par,
			   uint32_t total, enum sub_mode mode, long waited_ms)
{
	char why[2400];
	uint32_t want = 1;
	for (size_t v = 0; v < sj->graph->n_vertices; v++)
		want = par[v] > want ? par[v] : want;
	uint32_t all = 0;
	for (int i = 0; i < MAX_TMS; i++)
		all += jm.tms[i].live ? jm.tms[i].slots : 0;
	snprintf(why, sizeof(why), "the job needs %u slots; the cluster has %u free of %u (%d taskmanagers)", want,
		 total, all, ntms());
	if (mode == SUB_RETRY)
		return SUBMIT_PARKED;
	if (mode == SUB_NEW && jm.slot_wait_ms > 0 && !jm.stopping)
		return park(c, rid, sj, why);
	if (mode == SUB_LAST) {
		size_t l = strlen(why);
		snprintf(why + l, sizeof(why) - l, ", after waiting %ld ms", waited_ms);
	}
	return reject(c, rid, why);
}

/* A record for an accepted submission: its checkpoint setup (the
 * cluster's defaults when it names none) and the submission without its
 * object, which every attempt deploys. NULL with why. */
static struct jobrec *submit_record(const Weir__Ctl__SubmitJob *sj, char *why, size_t n)
{
	struct jobrec *j = NULL;
	for (int i = 0; i < MAX_JOBS && !j; i++)
		if (!jm.jobs[i].used)
			j = &jm.jobs[i];
	for (int i = 0; i < MAX_JOBS && !j; i++) /* reuse an ended one */
		if (jm.jobs[i].end_ms)
			j = &jm.jobs[i];
	if (!j) {
		snprintf(why, n, "too many jobs");
		return NULL;
	}
	enum weir_idle idle;
	if (sj->idle && weir_idle_parse(sj->idle, &idle) < 0) {
		snprintf(why, n, "unknown idle strategy '%.32s' (sleep, busy, yield or backoff)", sj->idle);
		return NULL;
	}
	if (sj->has_spin_us && sj->spin_us > 10 * 1000 * 1000) {
		snprintf(why, n, "a spin of %u us is over the limit (10 s)", sj->spin_us);
		return NULL;
	}
	if (sj->has_debloat_us && sj->debloat_us > 3600u * 1000 * 1000) {
		snprintf(why, n, "a debloating target of %u us is over the limit (1 h)", sj->debloat_us);
		return NULL;
	}
	jobrec_clear(j);
	j->id = jm.next_job + 1;
	Weir__Ctl__CheckpointConfig def = WEIR__CTL__CHECKPOINT_CONFIG__INIT;
	const Weir__Ctl__CheckpointConfig *cc = sj->checkpoints;
	if (!cc && jm.ckdef.checkpoint_interval_ms) {
		weir_ctl_ck_config(&jm.ckdef, jm.ckdef.checkpoint_dir, NULL, &def);
		cc = &def;
	}
	const char *bad;
	if (cc && (bad = job_ck_setup(j, cc, why, n))) {
		if (bad != why)
			snprintf(why, n, "%s", bad);
		jobrec_clear(j);
		return NULL;
	}
	Weir__Ctl__SubmitJob lean = *sj; /* the store has the object */
	lean.has_object = false;
	lean.object.data = NULL;
	lean.object.len = 0;
	j->sublen = weir__ctl__submit_job__get_packed_size(&lean);
	if (!(j->sub = malloc(j->sublen + 1))) {
		jobrec_clear(j);
		snprintf(why, n, "out of memory");
		return NULL;
	}
	weir__ctl__submit_job__pack(&lean, j->sub);
	/* the graph was checked (graph_par): at most 1024 vertices */
	const char *names[1024];
	uint32_t vpar[1024];
	for (size_t v = 0; v < sj->graph->n_vertices; v++) {
		names[v] = sj->graph->vertices[v]->name;
		vpar[v] = sj->graph->vertices[v]->parallelism;
	}
	if (weir_series_init(&j->metrics, (uint32_t)sj->graph->n_vertices, names, vpar) < 0) {
		jobrec_clear(j);
		snprintf(why, n, "out of memory");
		return NULL;
	}
	j->used = true;
	j->id = ++jm.next_job;
	snprintf(j->name, sizeof(j->name), "%s", sj->name);
	j->state = WEIR__CTL__JOB_STATE__JOB_CREATED;
	j->start_ms = wall_ms();
	j->parallelism = sj->parallelism;
	return j;
}

static int submit(struct weir_conn *c, uint64_t rid, const Weir__Ctl__SubmitJob *sj, enum sub_mode mode,
		  long waited_ms)
{
	char why[2400];
	const char *bad = submit_object(c, sj, why, sizeof(why));
	if (bad)
		return reject(c, rid, bad);
	size_t nsub = 0;
	uint32_t par[1024];
	if ((bad = graph_par(sj, par, &nsub)))
		return reject(c, rid, bad);
	struct weir_place *places;
	uint32_t total = 0;
	long needed = place(sj, par, nsub, &places, &total);
	if (needed == -2)
		return reject(c, rid, "out of memory");
	if (needed >= 0 && mode == SUB_NEW && jm.nparked > 0) { /* no overtaking the jobs that wait */
		free(places);
		snprintf(why, sizeof(why), "%d jobs wait for slots before it", jm.nparked);
		return park(c, rid, sj, why);
	}
	if (needed < 0) {
		free(places);
		return submit_no_slots(c, rid, sj, par, total, mode, waited_ms);
	}
	struct jobrec *j = submit_record(sj, why, sizeof(why));
	if (!j) {
		free(places);
		return reject(c, rid, why);
	}
	if (!(sj->has_detached && sj->detached)) {
		j->client_conn = weir_conn_id(c);
		j->client_rid = rid;
	}
	Weir__Ctl__JobAccepted ja = WEIR__CTL__JOB_ACCEPTED__INIT;
	ja.job_id = j->id;
	weir_ctl_send_body(c, rid, WEIR__CTL__ENVELOPE__BODY_JOB_ACCEPTED, &ja);
	if (j->ck_on)
		weir_log(WEIR_LOG_INFO, "job %llu: checkpoints %s%u ms in %s", (unsigned long long)j->id,
			 j->ck.interval_ms ? "every " : "off (savepoints only), interval ", j->ck.interval_ms, j->ck.base);
	deploy_attempt(j, sj, par, nsub, places, needed);
	free(places);
	job_advance(j);
	return 0;
}

/* A job waiting to restart (on every tick): once its delay is over and
 * enough slots are free, the next attempt deploys, from the newest good
 * checkpoint (or what the job started from). Slots that do not come back
 * in time fail the job. */
static void restart_tick(struct jobrec *j, uint64_t now)
{
	if (now < j->restart_at_ns)
		return;
	if (jm.stopping) {
		hold_slots(j, false);
		j->nheld = 0;
		job_end(j);
		return;
	}
	Weir__Ctl__SubmitJob *sj = weir__ctl__submit_job__unpack(NULL, j->sublen, j->sub);
	hold_slots(j, false); /* the attempt's own slots are free for it again */
	size_t nsub = 0;
	uint32_t par[1024];
	char why[2400];
	if (!sj || graph_par(sj, par, &nsub)) {
		job_fail(j, "out of memory");
		goto end;
	}
	struct weir_place *places;
	uint32_t total;
	long needed = place(sj, par, nsub, &places, &total);
	if (needed < 0) {
		if (needed == -1)
			free(places);
		if (now < j->restart_deadline_ns) {
			hold_slots(j, true); /* still ours while we wait */
			goto out; /* a supervised TaskManager may come back */
		}
		snprintf(why, sizeof(why), "%s; no slots to restart on (%u free after %ld ms)", j->message, total,
			 jm.slot_wait_ms);
		snprintf(j->message, sizeof(j->message), "%s", why);
		goto end;
	}
	/* the newest good checkpoint of the job, else what it started from */
	uint64_t id = 0;
	char path[sizeof(j->restore)];
	if (j->ck.latest && resolve_restore(j->ck.latest_path, path, sizeof(path), &id, why, sizeof(why)) < 0)
		weir_log(WEIR_LOG_WARN, "job %llu: the latest checkpoint is damaged: %s", (unsigned long long)j->id, why);
	if (!id && resolve_restore(j->ck.base, path, sizeof(path), &id, why, sizeof(why)) == -1) {
		free(places); /* some, every one bad: never start from nothing */
		snprintf(j->message, sizeof(j->message), "cannot restart: %s", why);
		goto end;
	}
	if (id)
		snprintf(j->restore, sizeof(j->restore), "%s", path);
	j->restored = id ? id : j->restored;
	if (!j->restore[0])
		j->restored = 0;
	/* a new attempt */
	j->nheld = 0;
	j->attempt++;
	weir_series_reset(&j->metrics); /* the new attempt's counters start from 0 */
	j->restarting = j->started = j->decided = j->failed = j->lost_tm = j->refused = false;
	j->message[0] = '\0';
	j->ntm = 0;
	memset(j->phase, 0, sizeof(j->phase));
	memset(j->slots_on, 0, sizeof(j->slots_on));
	j->state = WEIR__CTL__JOB_STATE__JOB_CREATED;
	weir_log(WEIR_LOG_INFO, "job %llu (%s): restart %u from %s", (unsigned long long)j->id, j->name, j->attempt,
		 j->restore[0] ? j->restore : "the beginning (no checkpoint completed)");
	deploy_attempt(j, sj, par, nsub, places, needed);
	free(places);
	weir__ctl__submit_job__free_unpacked(sj, NULL);
	job_advance(j);
	return;
end:
	if (sj)
		weir__ctl__submit_job__free_unpacked(sj, NULL);
	j->nheld = 0; /* freed above */
	job_end(j);
	return;
out:
	weir__ctl__submit_job__free_unpacked(sj, NULL);
}

static int park(struct weir_conn *c, uint64_t rid, const Weir__Ctl__SubmitJob *sj, const char *why)
{
	struct parked *pk = jm.nparked < MAX_PARKED ? &jm.parked[jm.nparked] : NULL;
	Weir__Ctl__SubmitJob lean = *sj; /* the store has the object now */
	lean.has_object = false;
	lean.object.data = NULL;
	lean.object.len = 0;
	size_t len = weir__ctl__submit_job__get_packed_size(&lean);
	uint8_t *buf = pk ? malloc(len + 1) : NULL;
	if (!buf)
		return reject(c, rid, pk ? "out of memory" : "too many jobs waiting for slots");
	weir__ctl__submit_job__pack(&lean, buf);
	uint64_t now = weir_now_ns();
	*pk = (struct parked){ weir_conn_id(c), rid, buf, len, now, now + (uint64_t)jm.slot_wait_ms * 1000000u };
	jm.nparked++;
	weir_log(WEIR_LOG_INFO, "job '%s' waits up to %ld ms for slots: %s", sj->name, jm.slot_wait_ms, why);
	return SUBMIT_PARKED;
}

/* Try the parked submissions again, oldest first (on every tick: slots
 * free when jobs end and when TaskManagers register). One that still finds
 * too few slots stays parked until its deadline, then is refused; one
 * whose client left is dropped. */
static void retry_parked(void)
{
	uint64_t now = weir_now_ns();
	for (int i = 0; i < jm.nparked;) {
		struct parked *pk = &jm.parked[i];
		struct weir_conn *c = weir_loop_conn(jm.loop, pk->conn);
		if (c && jm.stopping) {
			reject(c, pk->rid, "the cluster is stopping");
		} else if (c) {
			Weir__Ctl__SubmitJob *sj = weir__ctl__submit_job__unpack(NULL, pk->len, pk->buf);
			int rc = -1;
			if (sj) {
				bool last = now >= pk->deadline_ns;
				long waited = (long)((now - pk->since_ns) / 1000000u);
				rc = submit(c, pk->rid, sj, last ? SUB_LAST : SUB_RETRY, waited);
				weir__ctl__submit_job__free_unpacked(sj, NULL);
			} else {
				reject(c, pk->rid, "out of memory");
			}
			if (rc == SUBMIT_PARKED) {
				i++; /* still too few slots: stays parked */
				continue;
			}
		}
		free(pk->buf);
		memmove(pk, pk + 1, sizeof(*pk) * (size_t)(jm.nparked - i - 1));
		jm.nparked--;
	}
}

static void send_ok(struct weir_conn *c, uint64_t rid)
{
	Weir__Ctl__Ok ok = WEIR__CTL__OK__INIT;
	weir_ctl_send_body(c, rid, WEIR__CTL__ENVELOPE__BODY_OK, &ok);
}

/* A client's upload, one chunk per request: each is written to a .part
 * file at once and answered Ok, so the client sends the next only when
 * this one is on disk; the last is checked against the digest and
 * renamed into the store. Any problem ends the upload with an Error. */
static int upload_chunk(struct weir_conn *c, struct peer *p, uint64_t rid, const Weir__Ctl__ObjectChunk *oc)
{
	if (p->up.fd >= 0 && !weir_digest_equal(p->up.sha, oc->object_sha256.data, WEIR_SHA256_LEN))
		weir_obj_in_abort(&p->up); /* a different object: the old upload is abandoned */
	int rc = 0;
	if (p->up.fd < 0) {
		char tag[32];
		snprintf(tag, sizeof(tag), "c%llx", (unsigned long long)p->conn);
		rc = oc->offset != 0 ? weir_err_set("an upload starts at offset 0, not %llu",
						    (unsigned long long)oc->offset)
				     : weir_obj_in_begin(&p->up, jm.objdir, oc->object_sha256.data, tag);
	}
	if (rc == 0)
		rc = weir_obj_in_write(&p->up, oc->offset, oc->data.data, oc->data.len);
	if (rc == 0 && oc->has_last && oc->last) {
		uint64_t size = p->up.got;
		rc = weir_obj_in_finish(&p->up);
		if (rc == 0)
			weir_log(WEIR_LOG_INFO, "object %s stored (%llu bytes)", strrchr(p->up.path, '/') + 1,
				 (unsigned long long)size);
	}
	if (rc < 0) {
		weir_obj_in_abort(&p->up);
		weir_log(WEIR_LOG_WARN, "upload refused: %s", weir_err_msg());
		send_error(c, rid, weir_err_msg());
		return 0;
	}
	send_ok(c, rid);
	return 0;
}

/* A TaskManager fetches a stored object, one chunk per request. */
static int fetch_chunk(struct weir_conn *c, uint64_t rid, const Weir__Ctl__FetchObject *fo)
{
	uint64_t off = fo->has_offset ? fo->offset : 0, size = 0;
	long n = weir_obj_read(jm.objdir, fo->object_sha256.data, off, jm.chunk, WEIR_CTL_MAX_CHUNK, &size);
	if (n < 0 || (n == 0 && off != size)) {
		send_error(c, rid, n < 0 ? weir_err_msg() : "offset past the object's end");
		return 0;
	}
	Weir__Ctl__ObjectChunk oc = WEIR__CTL__OBJECT_CHUNK__INIT;
	oc.object_sha256 = fo->object_sha256;
	oc.offset = off;
	oc.data.data = jm.chunk;
	oc.data.len = (size_t)n;
	oc.has_last = true;
	oc.last = off + (uint64_t)n >= size;
	if (weir_ctl_send_body(c, rid, WEIR__CTL__ENVELOPE__BODY_OBJECT_CHUNK, &oc) < 0)
		send_error(c, rid, "the object chunk could not be sent");
	return 0;
}

/* A registration refused: the answer goes out, then the connection
 * closes (on a tick; closing now would drop the answer). */
static int refuse_tm(struct weir_conn *c, struct peer *p, uint64_t rid, const char *why)
{
	send_error(c, rid, why);
	p->close_at_ns = weir_now_ns() + 100000000ull;
	return 0;
}

/* ---- messages: one handler each ------------------------------------------------ */

/* A TaskManager registers (id, pid, slots, pool), once. */
static int msg_register_tm(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	const Weir__Ctl__RegisterTaskManager *r = m->register_tm;
	int slot = -1;
	uint32_t id = r->tm_id;
	if (r->assign_id) {
		/* from another host: the lowest id no live TaskManager has, above
		 * the local cluster's (0..63, which its supervisor may be
		 * starting again) */
		for (id = 64; id < 256; id++) {
			bool used = false;
			for (int i = 0; i < MAX_TMS; i++)
				used |= jm.tms[i].live && jm.tms[i].id == id;
			if (!used)
				break;
		}
		if (id >= 256)
			return refuse_tm(c, p, rid, "no taskmanager id left (64..255 are in use)");
	} else if (id > 255) {
		return refuse_tm(c, p, rid, "a taskmanager's id is 0..255");
	}
	for (int i = 0; i < MAX_TMS; i++) {
		if (jm.tms[i].live && jm.tms[i].id == id) {
			weir_log(WEIR_LOG_WARN, "taskmanager %u registers again: refused", r->tm_id);
			return refuse_tm(c, p, rid, "a taskmanager with this id is registered already");
		}
		if (!jm.tms[i].live && slot < 0)
			slot = i;
	}
	if (slot < 0 || jm.stopping) {
		return refuse_tm(c, p, rid, jm.stopping ? "the cluster is stopping" : "too many taskmanagers");
	}
	/* weir cluster stop signals these pids: 0 or a "negative" one would
	 * hit a process group, or everything the user may signal */
	if (r->pid < 2 || r->pid > INT_MAX || r->slots < 1 || r->slots > 1024) {
		weir_log(WEIR_LOG_WARN, "taskmanager %u registers with pid %u and %u slots: refused", r->tm_id,
			 r->pid, r->slots);
		return refuse_tm(c, p, rid, "a taskmanager registers with its pid (2 or more) and 1 to 1024 slots");
	}
	struct tmrec *t = &jm.tms[slot];
	memset(t, 0, sizeof(*t));
	t->live = true;
	t->id = id;
	t->pid = r->pid;
	t->numa_node = r->numa_node;
	t->slots = r->slots;
	snprintf(t->host, sizeof(t->host), "%s", r->host);
	snprintf(t->host_id, sizeof(t->host_id), "%s", r->host_id ? r->host_id : r->host);
	snprintf(t->data_addr, sizeof(t->data_addr), "%s", r->data_address ? r->data_address : "");
	if (r->pool->name && *r->pool->name)
		snprintf(t->pool, sizeof(t->pool), "%s", r->pool->name);
	else
		weir_dist_pool_name(t->pool, sizeof(t->pool), jm.cluster_id, id); /* made after this answer */
	t->pool_id = r->pool->name && *r->pool->name ? r->pool->pool_id : id;
	t->segments = r->pool->segments;
	t->segment_size = r->pool->segment_size;
	t->pool_node = r->pool->numa_node;
	t->conn = weir_conn_id(c);
	t->last_hb_ns = weir_now_ns();
	p->tm = slot;
	weir_log(WEIR_LOG_INFO,
		 "taskmanager %u registered: pid %u, %u slots, NUMA node %d, pool %s (%u x %u bytes), data at %s, host %s",
		 t->id, t->pid, t->slots, t->numa_node, t->pool, t->segments, t->segment_size,
		 t->data_addr[0] ? t->data_addr : "(none)", t->host_id);
	Weir__Ctl__RegisterAck ack = WEIR__CTL__REGISTER_ACK__INIT;
	ack.tm_id = t->id;
	ack.cluster_id = jm.cluster_id;
	ack.heartbeat_interval_ms = jm.hb_ms;
	ack.heartbeat_timeout_ms = jm.hb_timeout_ms;
	weir_ctl_send_body(c, rid, WEIR__CTL__ENVELOPE__BODY_REGISTER_ACK, &ack);
	wake_waiters(false);
	return 0;
}

static int msg_heartbeat(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	struct tmrec *t = &jm.tms[p->tm];
	uint64_t now = weir_now_ns();
	t->last_hb_ns = now;
	const Weir__Ctl__Heartbeat *hb = m->heartbeat;
	t->pool_free = hb->has_pool_free ? hb->pool_free : t->pool_free;
	if (hb->has_cpu_ns) {
		if (!t->cpu_prev_at_ns || now - t->cpu_prev_at_ns >= 1000000000ull) {
			t->cpu_prev_ns = t->cpu_ns;
			t->cpu_prev_at_ns = t->cpu_at_ns;
		}
		t->cpu_ns = hb->cpu_ns;
		t->cpu_at_ns = now;
	}
	return 0;
}

/* The status now, or once the number of TaskManagers asked for is
 * registered (or its timeout passed): a waiter that wake_waiters answers. */
static int msg_get_cluster_status(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	const Weir__Ctl__GetClusterStatus *g = m->get_cluster_status;
	if (!g->has_wait_taskmanagers || (uint32_t)ntms() == g->wait_taskmanagers) {
		send_status(c, rid);
		return 0;
	}
	for (int i = 0; i < MAX_WAITERS; i++)
		if (!jm.waiters[i].used) {
			uint32_t t = g->has_wait_timeout_ms ? g->wait_timeout_ms : 10000;
			jm.waiters[i] = (struct waiter){ true, weir_conn_id(c), rid, g->wait_taskmanagers,
							 weir_now_ns() + (uint64_t)t * 1000000u };
			return 0;
		}
	send_error(c, rid, "too many clients waiting");
	return 0;
}

static int msg_stop(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	send_ok(c, rid);
	begin_stop(m->stop->reason && *m->stop->reason ? m->stop->reason : "asked by a client");
	return 0;
}

static int msg_submit_job(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	if (jm.stopping)
		return reject(c, rid, "the cluster is stopping");
	submit(c, rid, m->submit_job, SUB_NEW, 0);
	return 0;
}

static int msg_object_chunk(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	return upload_chunk(c, p, rid, m->object_chunk);
}

static int msg_fetch_object(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	return fetch_chunk(c, rid, m->fetch_object);
}

static int msg_job_phase(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	job_phase(p, m->job_phase);
	return 0;
}

/* The REST API over this connection (weir top, weir run's progress line). */
static int msg_rest_request(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	const Weir__Ctl__RestRequest *rq = m->rest_request;
	char *body = malloc(rq->has_body ? rq->body.len + 1 : 1);
	if (!body) {
		send_error(c, rid, "out of memory");
		return 0;
	}
	if (rq->has_body)
		memcpy(body, rq->body.data, rq->body.len);
	body[rq->has_body ? rq->body.len : 0] = '\0';
	struct weir_http_req q = { .method = rq->method, .path = rq->path, .body = (const uint8_t *)body,
				   .body_len = rq->has_body ? rq->body.len : 0 };
	struct weir_http_resp r = { .status = 500 };
	weir_rest_call(&q, &r); /* the loop thread holds jm.lock */
	Weir__Ctl__RestReply rr = WEIR__CTL__REST_REPLY__INIT;
	rr.status = (uint32_t)r.status;
	rr.has_body = r.body != NULL;
	rr.body.data = (uint8_t *)r.body;
	rr.body.len = r.len;
	rr.content_type = (char *)(r.type ? r.type : "application/json");
	weir_ctl_send_body(c, rid, WEIR__CTL__ENVELOPE__BODY_REST_REPLY, &rr);
	free(r.body);
	free(body);
	return 0;
}

/* A TaskManager's figures for the subtasks of a job it runs. */
static int msg_metrics_report(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	const Weir__Ctl__MetricsReport *r = m->metrics_report;
	struct jobrec *j = NULL;
	for (int i = 0; i < MAX_JOBS && !j; i++)
		if (jm.jobs[i].used && jm.jobs[i].id == r->job_id)
			j = &jm.jobs[i];
	bool part = false; /* only a TaskManager of the job's attempt speaks for it */
	for (int k = 0; j && k < j->ntm && !part; k++)
		part = j->tm_ids[k] == jm.tms[p->tm].id;
	if (!part)
		return 0;
	for (size_t i = 0; i < r->n_tasks; i++) {
		const Weir__Ctl__TaskSample *t = r->tasks[i];
		struct weir_task_sample s = {
			.vertex = t->vertex, .index = t->index, .tm = jm.tms[p->tm].id, .at_ns = t->at_ns,
			.records_in = t->records_in, .records_out = t->records_out, .bytes_in = t->bytes_in,
			.bytes_out = t->bytes_out, .busy_ns = t->busy_ns, .backpressured_ns = t->backpressured_ns,
			.wm_in = t->has_wm_in ? t->wm_in : WEIR_METRICS_NO_WM,
			.wm_out = t->has_wm_out ? t->wm_out : WEIR_METRICS_NO_WM, .state_entries = t->state_entries,
			.timers = t->timers,
			.align_ns = t->align_ns,
			.in_pool = t->in_pool_permille > 1000 ? 1.0 : t->in_pool_permille / 1000.0,
			.out_pool = t->out_pool_permille > 1000 ? 1.0 : t->out_pool_permille / 1000.0,
			.lat = t->n_latency == WEIR_HISTO_BUCKETS ? t->latency : NULL, /* another length: ignored */
		};
		weir_series_add(&j->metrics, &s);
	}
	return 0;
}

static int msg_checkpoint_ack(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	ck_acked(p, m->checkpoint_ack);
	return 0;
}

static int msg_trigger_savepoint(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	savepoint_request(c, rid, m->trigger_savepoint);
	return 0;
}

static int msg_list_jobs(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	static Weir__Ctl__JobInfo infos[MAX_JOBS];
	Weir__Ctl__JobInfo *ptrs[MAX_JOBS];
	size_t n = 0;
	for (int i = 0; i < MAX_JOBS; i++)
		if (jm.jobs[i].used) {
			job_info(&jm.jobs[i], &infos[n]);
			ptrs[n] = &infos[n];
			n++;
		}
	Weir__Ctl__JobList jl = WEIR__CTL__JOB_LIST__INIT;
	jl.n_jobs = n;
	jl.jobs = ptrs;
	weir_ctl_send_body(c, rid, WEIR__CTL__ENVELOPE__BODY_JOB_LIST, &jl);
	return 0;
}

/* Cancel job id; false when it is not running. */
static bool cancel_job(uint64_t id, const char *who)
{
	struct jobrec *j = job_of(id);
	if (!j || j->end_ms)
		return false;
	j->canceled = true;
	job_fail(j, "cancelled");
	weir_log(WEIR_LOG_INFO, "job %llu: cancel (%s)", (unsigned long long)j->id, who);
	if (j->restarting) { /* nothing runs: over now */
		hold_slots(j, false);
		j->nheld = 0;
		job_end(j);
	}
	else
		job_advance(j);
	return true;
}

static int msg_cancel(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m)
{
	if (!cancel_job(m->cancel->job_id, "asked by a client")) {
		char msg[96];
		snprintf(msg, sizeof(msg), "no running job %llu", (unsigned long long)m->cancel->job_id);
		send_error(c, rid, msg);
		return 0;
	}
	send_ok(c, rid);
	return 0;
}

/* The REST API's actions (rest.c checked them as it could; the job may
 * have ended since): carried out here, on the loop thread. */
static void rest_actions(void)
{
	for (int i = 0; i < jm.nactions; i++) {
		const struct rest_action *a = &jm.actions[i];
		if (a->kind == RA_CANCEL) {
			cancel_job(a->job, "REST API");
			continue;
		}
		char msg[PATH_MAX + 128];
		struct jobrec *j = job_of(a->job);
		if (!j)
			continue;
		if (savepoint_begin(a->job, a->dir, a->stop, 0, 0, msg, sizeof(msg))) {
			if (j->sp_op.trigger == a->trigger) {
				j->sp_op.status = SP_OP_FAILED;
				snprintf(j->sp_op.result, sizeof(j->sp_op.result), "%s", msg);
			}
		}
	}
	jm.nactions = 0;
}

/* Who may send a message. A message from anyone else is a protocol error:
 * its connection closes. */
enum sender {
	ANY_PEER,		/* any authenticated peer */
	CLIENT,			/* a peer authenticated as a client */
	TASKMANAGER,		/* a registered TaskManager */
	NEW_TASKMANAGER,	/* a peer authenticated as a TaskManager, not registered yet */
};

static bool sender_ok(const struct peer *p, enum sender from)
{
	switch (from) {
	case ANY_PEER:
		return true;
	case CLIENT:
		return p->auth.role == WEIR__CTL__ROLE__ROLE_CLIENT;
	case TASKMANAGER:
		return p->tm >= 0;
	case NEW_TASKMANAGER:
		return p->auth.role == WEIR__CTL__ROLE__ROLE_TASKMANAGER && p->tm < 0;
	}
	return false;
}

/* The messages the JobManager takes after the handshake, by body case. The
 * handler returns 0, or a negative errno that closes the connection. */
static const struct handler {
	int (*fn)(struct weir_conn *c, struct peer *p, uint64_t rid, const weir_msg *m);
	enum sender from;
	const char *refusal;	/* sent as an Error to a wrong sender before the close (NULL: nothing) */
} handlers[] = {
	[WEIR__CTL__ENVELOPE__BODY_REGISTER_TM] = { msg_register_tm, NEW_TASKMANAGER,
						    "only a taskmanager registers, once" },
	[WEIR__CTL__ENVELOPE__BODY_HEARTBEAT] = { msg_heartbeat, TASKMANAGER, NULL },
	[WEIR__CTL__ENVELOPE__BODY_GET_CLUSTER_STATUS] = { msg_get_cluster_status, ANY_PEER, NULL },
	[WEIR__CTL__ENVELOPE__BODY_STOP] = { msg_stop, CLIENT, NULL },
	[WEIR__CTL__ENVELOPE__BODY_SUBMIT_JOB] = { msg_submit_job, CLIENT, NULL },
	[WEIR__CTL__ENVELOPE__BODY_OBJECT_CHUNK] = { msg_object_chunk, CLIENT, NULL },
	[WEIR__CTL__ENVELOPE__BODY_FETCH_OBJECT] = { msg_fetch_object, TASKMANAGER, NULL },
	/* job_phase ignores a peer that is not a registered TaskManager */
	[WEIR__CTL__ENVELOPE__BODY_JOB_PHASE] = { msg_job_phase, ANY_PEER, NULL },
	[WEIR__CTL__ENVELOPE__BODY_CHECKPOINT_ACK] = { msg_checkpoint_ack, TASKMANAGER, NULL },
	[WEIR__CTL__ENVELOPE__BODY_METRICS_REPORT] = { msg_metrics_report, TASKMANAGER, NULL },
	[WEIR__CTL__ENVELOPE__BODY_REST_REQUEST] = { msg_rest_request, CLIENT, NULL },
	[WEIR__CTL__ENVELOPE__BODY_TRIGGER_SAVEPOINT] = { msg_trigger_savepoint, CLIENT, NULL },
	[WEIR__CTL__ENVELOPE__BODY_LIST_JOBS] = { msg_list_jobs, ANY_PEER, NULL },
	[WEIR__CTL__ENVELOPE__BODY_CANCEL] = { msg_cancel, ANY_PEER, NULL },
};

static int handle(struct weir_conn *c, struct peer *p, weir_msg *m)
{
	uint64_t rid = m->has_request_id ? m->request_id : 0;
	size_t k = (size_t)m->body_case;
	const struct handler *h = k < sizeof(handlers) / sizeof(handlers[0]) ? &handlers[k] : NULL;
	if (!h || !h->fn) { /* one the JobManager does not take (yet): answered, the connection stays */
		char msg[128];
		snprintf(msg, sizeof(msg), "%s is not implemented yet", weir_ctl_body_name(m->body_case));
		send_error(c, rid, msg);
		return 0;
	}
	if (!sender_ok(p, h->from)) {
		if (h->refusal)
			send_error(c, rid, h->refusal);
		return -EPROTO;
	}
	return h->fn(c, p, rid, m);
}

static int on_frame(struct weir_conn *c, uint16_t type, const uint8_t *payload, uint32_t len, void *arg)
{
	(void)arg;
	struct peer *p = weir_conn_data(c);
	if (!p || p->close_at_ns)
		return 0; /* refused: waiting to close */
	if (type != WEIR_FRAME_CTL) {
		log_refused("bad frame", "connection from %s closed: frame of unknown type %u", weir_conn_peer(c), type);
		p->logged = true;
		return -EPROTO;
	}
	weir_msg *m;
	if (weir_ctl_decode(payload, len, &m) < 0) {
		log_refused("bad message", "connection from %s closed: %s", weir_conn_peer(c), weir_err_msg());
		p->logged = true;
		return -EPROTO;
	}
	if (!p->authed) {
		int rc = weir_auth_feed_msg(&p->auth, m);
		weir_ctl_free(m);
		uint8_t out[WEIR_AUTH_OUT_MAX];
		long n = weir_auth_take_output(&p->auth, out, sizeof(out));
		if (n > 0)
			weir_conn_send(c, WEIR_FRAME_CTL, out, (uint32_t)n);
		if (rc == 1) {
			p->authed = true;
			weir_conn_trust(c);
			weir_log(WEIR_LOG_DEBUG, "%s '%s' authenticated from %s",
				 p->auth.role == WEIR__CTL__ROLE__ROLE_TASKMANAGER ? "taskmanager" : "client",
				 p->auth.name, weir_conn_peer(c));
		} else if (rc < 0) {
			log_refused("handshake refused", "connection from %s refused: %s", weir_conn_peer(c),
				    weir_auth_reason(&p->auth)[0] ? weir_auth_reason(&p->auth) : weir_err_msg());
			p->logged = true;
			/* let the refusal reach the peer, then close (next tick;
			 * the handshake deadline closes it if it does not read) */
			p->close_at_ns = weir_now_ns() + 100000000ull;
		}
		return 0;
	}
	int rc = handle(c, p, m);
	weir_ctl_free(m);
	return rc;
}

static void on_open(struct weir_conn *c, void *arg)
{
	(void)arg;
	struct peer *p = calloc(1, sizeof(*p));
	if (!p) {
		weir_conn_close(c, -ENOMEM);
		return;
	}
	weir_auth_server_init(&p->auth, &jm.secret);
	p->tm = -1;
	p->up.fd = -1;
	p->opened_ns = weir_now_ns();
	p->conn = weir_conn_id(c);
	p->next = jm.peers;
	if (jm.peers)
		jm.peers->prev = p;
	jm.peers = p;
	weir_conn_set_data(c, p);
}

static void on_close(struct weir_conn *c, int reason, void *arg)
{
	(void)arg;
	struct peer *p = weir_conn_data(c);
	if (!p)
		return;
	const char *peer = weir_conn_peer(c);
	if (p->logged) {
		/* said when it was refused */
	} else if (reason == -EPROTO || reason == -EMSGSIZE) {
		/* the loop's decoder left why in the trail */
		log_refused(reason == -EMSGSIZE ? "frame too long" : "bad framing", "connection from %s closed: %s", peer,
			    weir_err_msg());
	} else if (!p->authed) {
		if (reason == -EOVERFLOW)
			log_refused("evicted", "connection from %s closed before its handshake: %u unauthenticated "
				    "connections at once, the oldest goes", peer, weir_loop_untrusted(jm.loop) + 1);
		else if (reason == -ETIMEDOUT)
			log_refused("no handshake in time", "connection from %s closed: no handshake within %d ms", peer,
				    WEIR_AUTH_TIMEOUT_MS);
		else
			log_refused("closed before the handshake", "connection from %s closed before its handshake (%s)",
				    peer, reason ? strerror(-reason) : "by the peer");
	} else if (reason == -ETIMEDOUT && p->tm < 0) {
		log_refused("stalled", "%s '%s' from %s closed: a frame or its answers stalled for %d ms",
			    p->auth.role == WEIR__CTL__ROLE__ROLE_TASKMANAGER ? "taskmanager" : "client", p->auth.name,
			    peer, STALL_MS);
	}
	if (p->tm >= 0 && jm.tms[p->tm].live) {
		struct tmrec *t = &jm.tms[p->tm];
		/* a crash, exit() or stuck subtask wrote its note before the close */
		char note[1024];
		bool said = weir_tm_note_read(jm.rd.dir, (int)t->id, (pid_t)t->pid, note, sizeof(note));
		if (!jm.stopping)
			weir_log(WEIR_LOG_WARN, "taskmanager %u (pid %u) lost: %s", t->id, t->pid,
				 said ? note : reason ? strerror(-reason) : "its connection closed");
		else
			weir_log(WEIR_LOG_INFO, "taskmanager %u stopped", t->id);
		t->live = false;
		jobs_lost_tm(t->id, said ? note : NULL);
		wake_waiters(false);
	}
	if (p->prev)
		p->prev->next = p->next;
	else
		jm.peers = p->next;
	if (p->next)
		p->next->prev = p->prev;
	weir_obj_in_abort(&p->up);
	weir_auth_release(&p->auth);
	free(p);
	weir_conn_set_data(c, NULL);
}

/* The loop refused a connection before on_open. */
static void on_refuse(const char *peer, int reason, void *arg)
{
	(void)arg;
	if (reason == -EMFILE && strcmp(peer, "?"))
		log_refused("table full", "connection from %s refused: %u connections, all authenticated", peer,
			    weir_loop_conns(jm.loop));
	else if (reason == -EMFILE || reason == -ENFILE)
		log_refused("out of descriptors", "accept: %s: the oldest unauthenticated connection closed",
			    strerror(-reason));
	else
		log_refused("accept failed", "connection from %s refused: %s", peer, strerror(-reason));
}

/* Every 10 ms: refused connections whose answer went out, heartbeats
 * missed, waiters due, the end of a stop, the summary of refused
 * connections. (The loop closes handshakes that take too long.) */
static void tick(struct weir_loop *l, void *arg)
{
	(void)arg;
	uint64_t now = weir_now_ns();
	/* A tick this late means our own loop stood still (a slow fsync of a
	 * checkpoint's metadata, a starved CPU): heartbeats that arrived
	 * meanwhile wait unread in the sockets, so silence in that time says
	 * nothing about the TaskManagers. Counting from now is fair to them
	 * and still drops one that stays silent. */
	static uint64_t last_tick_ns;
	if (last_tick_ns && now - last_tick_ns > (uint64_t)jm.hb_timeout_ms * 1000000ull / 4) {
		weir_log(WEIR_LOG_WARN, "the jobmanager's loop stood still for %llu ms: heartbeats not judged for that time",
			 (unsigned long long)((now - last_tick_ns) / 1000000u));
		for (int i = 0; i < MAX_TMS; i++)
			if (jm.tms[i].live && now - jm.tms[i].last_hb_ns > (uint64_t)jm.hb_timeout_ms * 1000000ull / 4)
				jm.tms[i].last_hb_ns = now - (uint64_t)jm.hb_timeout_ms * 1000000ull / 4;
	}
	last_tick_ns = now;
	rest_actions();
	for (int i = 0; i < MAX_TMS; i++) {
		struct tmrec *t = &jm.tms[i];
		if (t->live && now - t->last_hb_ns > jm.hb_timeout_ms * 1000000ull) {
			weir_log(WEIR_LOG_WARN, "taskmanager %u missed its heartbeats for %d ms: dropped", t->id,
				 jm.hb_timeout_ms);
			struct weir_conn *c = weir_loop_conn(l, t->conn);
			t->live = false;
			jobs_lost_tm(t->id, NULL);
			if (c)
				weir_conn_close(c, -ETIMEDOUT);
		}
	}
	/* refused peers whose answer went out */
	for (struct peer *p = jm.peers, *next; p; p = next) {
		next = p->next; /* closing frees p */
		if (p->close_at_ns && now >= p->close_at_ns) {
			struct weir_conn *c = weir_loop_conn(l, p->conn);
			if (c)
				weir_conn_close(c, -EACCES);
		}
	}
	weir_log_limit_flush(&jm.refused, weir_real_now_ns());
	wake_waiters(false);
	retry_parked();
	for (int i = 0; i < MAX_JOBS; i++) {
		struct jobrec *j = &jm.jobs[i];
		if (j->used && !j->end_ms && j->restarting)
			restart_tick(j, now);
		else if (j->used && !j->end_ms)
			ck_tick(j, now);
	}
	if (jm.signalled && !jm.stopping)
		begin_stop("signal");
	/* stop once the TaskManagers are gone and the last answers (the one
	 * to the client that asked for the stop) are out */
	if (jm.stopping && ((ntms() == 0 && !weir_loop_sending(l)) || now > jm.stop_deadline_ns)) {
		if (ntms())
			weir_log(WEIR_LOG_WARN, "%d taskmanagers did not stop within %d ms", ntms(), STOP_GRACE_MS);
		weir_loop_stop(l);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	jm.signalled = 1;
}

const char weir_jobmanager_usage[] =
	"usage: weir jobmanager [--run-dir D] [--port P] [--bind ADDR] [--slot-wait MS] [--ready-fd FD]\n"
	"                       [--exchange auto|tcp] [--exchange-credits N] [--heartbeat-interval MS] [--heartbeat-timeout MS]\n"
	"                       [--idle MODE] [--spin-us N] [--debloat-us N]\n"
	"                       [--tls-dir D --tls-name NAME]\n"
	"                       [--log-level L] [checkpoint and restart options of weir local]\n"
	"weir cluster start runs it with values from its own flags and configuration file;\n"
	"docs/configuration.md (\"The local cluster\") describes them.\n";

/* The flags of weir jobmanager (the checkpoint and restart ones go to jm.ckdef). */
struct jm_args {
	const char *run_dir, *bind, *rest_bind, *level, *tls_dir, *tls_name;
	long long port, ready, wait, hb, hb_timeout, net_credits, rest_port;
};

/* Parse the flags into *o. -1 to go on, else the exit status (0 after
 * --help, 2 for bad usage, named on stderr). */
static int parse_args(int argc, char **argv, struct jm_args *o)
{
	*o = (struct jm_args){ .bind = "127.0.0.1", .rest_bind = "127.0.0.1", .level = "info", .ready = -1, .wait = 5000, .hb = 100,
			       .hb_timeout = 2000, .net_credits = 16 };
	o->rest_port = 0;
	weir_config_defaults(&jm.ckdef);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (weir_help_flag(a)) {
			fputs(weir_jobmanager_usage, stdout);
			return 0;
		}
		int ckr = weir_config_ck_option(&jm.ckdef, argc, argv, &i, 0);
		if (ckr == 0)
			ckr = weir_config_idle_option(&jm.ckdef, argc, argv, &i); /* the jobs' default */
		if (ckr < 0)
			return 2;
		if (ckr > 0)
			continue;
		long long *num = !strcmp(a, "--port") ? &o->port : !strcmp(a, "--ready-fd") ? &o->ready
			       : !strcmp(a, "--slot-wait") ? &o->wait : !strcmp(a, "--heartbeat-interval") ? &o->hb
			       : !strcmp(a, "--heartbeat-timeout") ? &o->hb_timeout
			       : !strcmp(a, "--exchange-credits") ? &o->net_credits : NULL;
		long long hi = num == &o->port ? 65535 : num == &o->wait ? 600000 : num == &o->net_credits ? 1024
			     : num == &o->hb || num == &o->hb_timeout ? 600000 : INT_MAX;
		if (num && v) {
			if (weir_parse_num(argv[++i], 0, hi, false, num) < 0) {
				fprintf(stderr, "weir jobmanager: %s: %s\n", a, weir_err_msg());
				return 2;
			}
		} else if (!strcmp(a, "--rest-port") && v) {
			if (weir_parse_num(argv[++i], -1, 65535, false, &o->rest_port) < 0) {
				fprintf(stderr, "weir jobmanager: --rest-port: %s (-1: off, 0: any free port)\n", weir_err_msg());
				return 2;
			}
		} else if (!strcmp(a, "--run-dir") && v) {
			o->run_dir = argv[++i];
		} else if (!strcmp(a, "--bind") && v) {
			o->bind = argv[++i];
		} else if (!strcmp(a, "--rest-bind") && v) {
			o->rest_bind = argv[++i];
		} else if (!strcmp(a, "--tls-dir") && v) {
			o->tls_dir = argv[++i];
		} else if (!strcmp(a, "--tls-name") && v) {
			o->tls_name = argv[++i];
		} else if (!strcmp(a, "--exchange") && v && (!strcmp(v, "auto") || !strcmp(v, "tcp"))) {
			jm.force_tcp = !strcmp(argv[++i], "tcp");
		} else if (!strcmp(a, "--log-level") && v) {
			o->level = argv[++i];
		} else {
			fprintf(stderr, "weir jobmanager: unknown or incomplete option '%s'\n", a);
			return 2;
		}
	}
	return -1;
}

/* What start prepared in the run folder (the secret, the cluster id), and
 * an empty object store. 0, or -1 logged. */
static int load_run_dir(const char *run_dir)
{
	jm.hold.fd = -1; /* nothing to close yet */
	weir_rundir_init(&jm.rd, run_dir);
	int chk = weir_rundir_check(&jm.rd, false);
	if (chk != 0) {
		if (chk == 1)
			weir_err_set("run folder '%s' does not exist", jm.rd.dir);
		weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
		return -1;
	}
	char path[PATH_MAX];
	weir_rundir_path(&jm.rd, "secret", path, sizeof(path));
	if (weir_auth_secret_load(path, &jm.secret) < 0) {
		weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
		return -1;
	}
	weir_rundir_path(&jm.rd, "cluster.id", path, sizeof(path));
	if (weir_read_small_file(path, jm.cluster_id, sizeof(jm.cluster_id)) < 0) {
		weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
		return -1;
	}
	weir_rundir_path(&jm.rd, "objects", jm.objdir, sizeof(jm.objdir));
	weir_obj_remove_all(jm.objdir); /* a crashed JobManager's uploads */
	jm.chunk = malloc(WEIR_CTL_MAX_CHUNK);
	if (!jm.chunk) {
		weir_log(WEIR_LOG_ERROR, "out of memory");
		return -1;
	}
	return 0;
}

/* The REST API's thread reads the state while the loop thread waits. */
static void guard(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&jm.lock);
}

static void unguard(void *arg)
{
	(void)arg;
	pthread_mutex_unlock(&jm.lock);
}

/* The loop, listening on bind:port; the address it got (addr) and our pid
 * in the run folder. 0, or -1 logged (the loop destroyed). */
static int listen_on(const char *bind, uint16_t port, char *addr, size_t an, char *pid, size_t pn)
{
	/* descriptors: the soft limit raised to the hard one; the table
	 * takes at most half of what is left after 256 for files (a closed
	 * connection keeps its descriptor until its last completion) */
	struct rlimit rl;
	uint32_t max_conns = MAX_CONNS;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rlim_t was = rl.rlim_cur;
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				rl.rlim_cur = was;
		}
		if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 256 + 2 * (rlim_t)MAX_CONNS)
			max_conns = rl.rlim_cur > 256 + 2 * 64 ? (uint32_t)((rl.rlim_cur - 256) / 2) : 64;
	}
	/* a CQ that holds a receive and a send of every connection at once
	 * (net/loop.h), so none waits for room */
	unsigned entries = 64;
	while (entries * 4 < 2 * max_conns + 32)
		entries *= 2;
	struct weir_loop_config cfg = { .entries = entries, .max_conns = max_conns,
					.untrusted_max = max_conns / 4, .untrusted_ms = WEIR_AUTH_TIMEOUT_MS,
					.stall_ms = STALL_MS, .on_frame = on_frame, .on_open = on_open,
					.on_close = on_close, .on_refuse = on_refuse, .tls_server = jm.tls,
					.guard = guard, .unguard = unguard };
	weir_log_limit_init(&jm.refused, "refused connections", WEIR_LOG_WARN, REFUSED_LOG_MS);
	jm.max_conns = max_conns;
	jm.loop = weir_loop_create(&cfg);
	if (!jm.loop) {
		weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
		return -1;
	}
	uint16_t bound = 0;
	if (weir_loop_listen(jm.loop, bind, port, &bound) < 0) {
		weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
		fprintf(stderr, "weir jobmanager: %s\n", weir_err_msg());
		weir_loop_destroy(jm.loop);
		return -1;
	}
	char path[PATH_MAX];
	snprintf(addr, an, strchr(bind, ':') ? "[%s]:%u" : "%s:%u", bind, bound);
	snprintf(pid, pn, "%d", (int)getpid());
	weir_rundir_path(&jm.rd, "jobmanager.pid", path, sizeof(path));
	weir_write_file_atomic(path, pid);
	weir_rundir_path(&jm.rd, "jobmanager.addr", path, sizeof(path));
	if (weir_write_file_atomic(path, addr) < 0) {
		weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
		weir_loop_destroy(jm.loop);
		return -1;
	}
	return 0;
}

/* The REST API on bind:port, its address in the run folder
 * (jobmanager.rest). 0, or -1 logged. */
static int start_rest(const char *bind, uint16_t port)
{
	if (!(jm.rest = weir_rest_start(bind, port, &jm.secret))) {
		weir_log(WEIR_LOG_ERROR, "REST API: %s", weir_err_msg());
		fprintf(stderr, "weir jobmanager: REST API: %s (rest.port, --rest-port; -1 turns it off)\n", weir_err_msg());
		return -1;
	}
	char path[PATH_MAX], addr[96];
	snprintf(addr, sizeof(addr), "%s:%u", bind, weir_rest_port(jm.rest));
	weir_rundir_path(&jm.rd, "jobmanager.rest", path, sizeof(path));
	if (weir_write_file_atomic(path, addr) < 0) {
		weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
		return -1;
	}
	weir_log(WEIR_LOG_INFO, "REST API on http://%s/", addr);
	return 0;
}

/* After the loop: free what is left, remove the address and pid files,
 * the secret from memory and the object store. */
static void shut_down(void)
{
	for (int i = 0; i < jm.nparked; i++) /* refused as the stop began; a client gone meanwhile left these */
		free(jm.parked[i].buf);
	for (int i = 0; i < MAX_JOBS; i++)
		jobrec_clear(&jm.jobs[i]);
	struct weir_loop_stats st;
	weir_loop_stats(jm.loop, &st);
	weir_loop_destroy(jm.loop);
	weir_tls_ctx_destroy(jm.tls); /* after the loop: its sessions used it */
	char path[PATH_MAX];
	weir_rundir_path(&jm.rd, "jobmanager.addr", path, sizeof(path));
	unlink(path);
	weir_rundir_path(&jm.rd, "jobmanager.pid", path, sizeof(path));
	unlink(path);
	weir_rundir_path(&jm.rd, "jobmanager.rest", path, sizeof(path));
	unlink(path);
	weir_auth_secret_wipe(&jm.secret);
	weir_obj_remove_all(jm.objdir);
	free(jm.chunk);
	weir_shm_close(&jm.hold); /* the file, and the folder if it was the last */
	weir_log_limit_flush(&jm.refused, weir_real_now_ns() + (uint64_t)REFUSED_LOG_MS * 1000000u);
	weir_log(WEIR_LOG_INFO,
		 "stopped (%llu connections, %llu refused frames, %llu refused at accept, %llu evicted and %llu "
		 "timed out before their handshake, %llu stalled, CQ overflow %llu)",
		 (unsigned long long)st.accepted, (unsigned long long)st.proto_errors,
		 (unsigned long long)st.refused, (unsigned long long)st.evicted,
		 (unsigned long long)st.untrusted_timeouts, (unsigned long long)st.stalled,
		 (unsigned long long)st.cq_overflow);
}

int weir_jobmanager_main(int argc, char **argv)
{
	struct jm_args o;
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	int ready_fd = (int)o.ready;
	jm.slot_wait_ms = (long)o.wait;
	if (o.hb < 10 || o.hb_timeout < 2 * o.hb) {
		fprintf(stderr, "weir jobmanager: --heartbeat-interval must be at least 10 ms and --heartbeat-timeout "
				"at least twice it\n");
		return 2;
	}
	jm.hb_ms = (uint32_t)o.hb;
	jm.hb_timeout_ms = (uint32_t)o.hb_timeout;
	if (o.net_credits < 1) {
		fprintf(stderr, "weir jobmanager: --exchange-credits must be from 1 to 1024\n");
		return 2;
	}
	jm.net_credits = (uint32_t)o.net_credits;
	if (!o.tls_dir != !o.tls_name) {
		fprintf(stderr, "weir jobmanager: --tls-dir and --tls-name go together\n");
		return 2;
	}
	if (o.tls_dir && weir_cluster_tls(o.tls_dir, o.tls_name, &jm.tls, NULL) < 0) {
		fprintf(stderr, "weir jobmanager: %s\n", weir_err_msg());
		return 1;
	}
	enum weir_log_level lv;
	if (weir_log_parse_level(o.level, &lv) < 0) {
		fprintf(stderr, "weir jobmanager: bad --log-level '%s'\n", o.level);
		return 2;
	}
	weir_log_init("jobmanager", lv);
	char addr[160], pid[32];
	if (load_run_dir(o.run_dir) < 0 || listen_on(o.bind, (uint16_t)o.port, addr, sizeof(addr), pid, sizeof(pid)) < 0)
		return 1;
	/* The cluster's folder in /dev/shm is made here (once we listen: a
	 * second JobManager of the cluster fails at its port first), before
	 * any TaskManager uses a name in it, and holds a file of ours for the
	 * JobManager's life: it is never empty, so no sweep removes it and
	 * nobody else can take its name while the cluster runs, even with
	 * every TaskManager dead (shm/shmfile.h). A crash leaves the file
	 * stale, for cluster stop. */
	char hold[WEIR_SHM_NAME_MAX];
	snprintf(hold, sizeof(hold), "weir-%s/cluster", jm.cluster_id);
	if (weir_shm_create(&jm.hold, hold, 64, NULL) < 0) {
		weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
		shut_down();
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	weir_loop_timer_add(jm.loop, 10, tick, NULL);
	if (o.rest_port >= 0 && start_rest(o.rest_bind, (uint16_t)o.rest_port) < 0) {
		shut_down();
		return 1;
	}
	weir_log(WEIR_LOG_INFO, "cluster %s: listening on %s (pid %s; %u connections, %u of them unauthenticated)",
		 jm.cluster_id, addr, pid, jm.max_conns, jm.max_conns / 4);
	if (ready_fd >= 0) {
		if (write(ready_fd, "R", 1) != 1)
			weir_log(WEIR_LOG_WARN, "could not signal readiness");
		close(ready_fd);
	}
	pthread_mutex_lock(&jm.lock); /* the loop lets go of it only to wait */
	weir_loop_run(jm.loop);
	pthread_mutex_unlock(&jm.lock);
	weir_rest_stop(jm.rest); /* its thread reads what shut_down frees */
	jm.rest = NULL;
	shut_down();
	return 0;
}
