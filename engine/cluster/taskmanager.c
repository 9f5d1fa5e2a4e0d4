/*
 * engine/cluster/taskmanager.c - `weir taskmanager`: a worker process of the
 * cluster.
 *
 * It owns one NUMA node's share of the machine: a segment pool in shared
 * memory bound to the node (shm/pool.h, "weir-<cluster>/tm<id>-pool", in
 * the cluster's private folder in /dev/shm),
 * which its jobs carve their segments out of (each job a share, bounded by
 * what is free), and S slots. It connects to the JobManager named in the run folder, proves
 * it knows the cluster secret, registers, and heartbeats. It stops when
 * the JobManager tells it to (or on SIGINT/SIGTERM), and also when its
 * JobManager connection breaks: a TaskManager without a JobManager has
 * nothing to do. Either way its pool file goes with it; after a kill -9 the
 * file stays until the next cluster start or stop sweeps it (its owner
 * lock died with the process).
 *
 * Jobs: a Deploy names every subtask's place and the job's object by its
 * SHA-256. A TaskManager that does not have that object in its store
 * (<run-dir>/objects-tm<N>/) fetches it from the JobManager's, one chunk
 * per request, holding the Deploy until the last chunk is in and checked.
 * Then it copies the object for the job (checking the copy's digest again:
 * that copy is what it loads), builds the job's graph from the same arguments, and runs its own subtasks on a job thread
 * (engine/task/task.h, weir_run_dist). The job thread and this loop talk
 * through a mailbox: the loop turns the thread's steps (prepared, done,
 * released) into JobPhase messages, and the JobManager's answers (start,
 * commit, abort) into the thread's decisions. Several jobs may run at
 * once, each with its own copy of its object (so that two runs of one job
 * do not share the object's globals: dlopen would hand back the same
 * instance for the same file).
 */
#include "checkpoint/store.h"
#include "cluster/ctlio.h"
#include "cluster/daemons.h"
#include "cluster/supervisor.h"
#include "graph/load.h"
#include "runtime/run.h"
#include "ctl/objstore.h"
#include "ctl/sha.h"
#include <pthread.h>
#include <sys/stat.h>
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "sched/cpu.h"
#include "sched/worker.h"
#include "shm/pool.h"
#include "net/exchange.h"
#include "net/tls.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A checkpoint's snapshots here, written (or failed), for the JobManager. */
struct ck_ack {
	uint64_t id;
	struct weir_ckpt_file *files;
	int nfiles;
	uint64_t bytes, sync_max_ns, inflight;
	char *err;
};

/* The job this TaskManager runs, shared by the loop and the job thread. */
struct tmjob {
	uint64_t id;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct weir_job_object obj;
	weir_env *env;
	struct weir_config cfg;
	struct weir_dist dist;
	uint32_t *sub_tm, *sub_slot;
	uint8_t tcp[WEIR_XCHG_MAX_PEERS];	/* channels to TaskManager k over TCP */
	char **argv;		/* the job's arguments: weir_job may keep pointers to them */
	int argc;
	char objpath[PATH_MAX + 96];	/* this job's copy of the object */
	char *ck_dir;			/* the job's checkpoint folder (dist.ck_dir) */
	char ck_storage_id[40];
	/* thread -> loop (sent by the loop's tick) */
	bool tell_prepared, tell_done, done_ok, done_refused, tell_released, released_ok;
	char done_msg[1024], released_msg[1024];
	struct ck_ack *acks;	/* from the snapshot writer's thread */
	int nacks;
	char *ck_restore;
	/* loop -> thread */
	int start;		/* -1 pending, 0 abort, 1 go */
	int decision;		/* -1 pending, 0 abort, 1 commit */
	bool finished;		/* the thread ended; join it */
	/* metrics: the loop's buffer for its reports, and the last sample,
	 * taken by the job's thread once its subtasks ended (sent before DONE) */
	struct weir_task_sample *samples, *final;
	uint64_t *lat, *final_lat;	/* their latency histograms (latency tracking on), or NULL */
	int nfinal;
	bool tell_final;
};

#define MAX_TM_JOBS 8

/* A Deploy waiting for its object to arrive from the JobManager. */
struct fetch {
	uint64_t job_id;
	uint64_t rid;		/* the FetchObject in flight */
	uint8_t *deploy;	/* the Deploy, packed (the decoded one is freed with its frame) */
	size_t len;
	struct weir_obj_in in;
};

static struct {
	struct weir_rundir rd;
	struct tmjob *jobs[MAX_TM_JOBS];
	struct fetch *fetches[MAX_TM_JOBS];
	char objdir[PATH_MAX];	/* this TaskManager's object store */
	uint64_t next_rid;
	struct weir_loop *loop;
	struct weir_conn *jm;
	struct weir_auth auth;
	bool authed, registered, stopping;
	int exit_code;
	uint32_t id, slots;
	uint32_t first_core;	/* slot k on allowed CPU first_core + k */
	int node;
	struct weir_pool pool;	/* every job here takes its share of it */
	char pool_name[128];
	char cluster[64];	/* the cluster id, from the run folder: names the pools */
	int ready_fd;
	uint64_t hb_seq;
	uint32_t hb_ms;		/* the JobManager's heartbeat interval (RegisterAck) */
	uint64_t hb_last_ns;
	volatile sig_atomic_t signalled;
	uint32_t cancel_timeout_ms;	/* each job's (runtime/run.h: the watchdog) */
	/* the data plane: channels to TaskManagers on other hosts */
	struct weir_xchg *xchg;
	pthread_t xchg_thread;
	bool xchg_running;
	struct weir_auth_secret secret;	/* kept for the exchange's handshakes */
	char role[32];
	char host_id[128];	/* this machine and network namespace (weir_host_identity) */
	char data_addr[96];	/* where the exchange listens: "addr:port" */
	struct weir_log_limit xrefused;	/* refused data connections (the exchange's thread) */
	/* on another host (--jobmanager): the id and the cluster come with the
	 * RegisterAck, the pool is made then, and a lost JobManager is sought
	 * again instead of ending the process */
	bool remote;
	char jm_host[96];
	uint16_t jm_port;
	uint32_t segments, seg_size;	/* the pool's, made at registration when remote */
	uint64_t reconnect_at_ns;	/* remote, JobManager lost: the next try (0: none due) */
	uint64_t lost_since_ns;		/* remote: the JobManager lost since (0: registered) */
	uint32_t registration_timeout_ms;	/* remote: give up (exit 1) after this long without it */
	uint32_t reconnect_ms;		/* its backoff */
	enum weir_log_level level;
	struct weir_tls_ctx *tls_server, *tls_client;	/* --tls-dir/--tls-name (NULL: plain) */
} tm = { .ready_fd = -1 };

static void job_tick(void);
static int jm_dial(void);
/* The JobManager's connection is there (a remote TaskManager that lost it
 * has none until it dials again). */
static bool jm_up(void) { return tm.jm && weir_conn_is_open(tm.jm); }
static int registered(const Weir__Ctl__RegisterAck *a);
static void report_metrics(void);
static void job_timer(struct weir_loop *l, void *arg)
{
	(void)l, (void)arg;
	job_tick();
}

static void heartbeat(struct weir_loop *l, void *arg)
{
	(void)l, (void)arg;
	/* a timer of 10 ms this late: our loop stood still (said, because
	 * the JobManager may drop us for the heartbeats it missed) */
	static uint64_t last_ns;
	uint64_t now = weir_now_ns();
	if (last_ns && now - last_ns > 500000000ull)
		weir_log(WEIR_LOG_WARN, "the loop stood still for %llu ms", (unsigned long long)((now - last_ns) / 1000000u));
	last_ns = now;
	if (tm.signalled && !tm.stopping) {
		weir_log(WEIR_LOG_INFO, "signal: stopping");
		tm.stopping = true;
		weir_loop_stop(tm.loop);
		return;
	}
	if (tm.remote && !tm.registered && tm.lost_since_ns &&
	    weir_now_ns() - tm.lost_since_ns > (uint64_t)tm.registration_timeout_ms * 1000000u) {
		weir_log(WEIR_LOG_ERROR, "no jobmanager at %s:%u for %u ms: stopping", tm.jm_host, tm.jm_port,
			 tm.registration_timeout_ms);
		tm.exit_code = 1;
		tm.stopping = true;
		weir_loop_stop(tm.loop);
		return;
	}
	if (tm.remote && !tm.jm && tm.reconnect_at_ns && weir_now_ns() >= tm.reconnect_at_ns) {
		bool busy = false; /* the jobs of the lost connection end first */
		for (int i = 0; i < MAX_TM_JOBS; i++)
			busy |= tm.jobs[i] != NULL;
		if (!busy && jm_dial() < 0) {
			weir_log(WEIR_LOG_WARN, "the jobmanager at %s:%u: %s; trying again", tm.jm_host, tm.jm_port,
				 weir_err_msg());
			tm.reconnect_ms = tm.reconnect_ms * 2 > 2000 ? 2000 : tm.reconnect_ms * 2;
			tm.reconnect_at_ns = weir_now_ns() + (uint64_t)tm.reconnect_ms * 1000000u;
		} else if (!busy) {
			tm.reconnect_at_ns = 0;
		}
	}
	if (!tm.registered || !jm_up())
		return;
	now = weir_now_ns();
	if (now - tm.hb_last_ns < (uint64_t)tm.hb_ms * 1000000u)
		return; /* the JobManager's interval (RegisterAck); the timer ticks faster */
	tm.hb_last_ns = now;
	Weir__Ctl__Heartbeat hb = WEIR__CTL__HEARTBEAT__INIT;
	hb.seq = ++tm.hb_seq;
	if (tm.pool.hdr) {
		hb.has_pool_free = true;
		hb.pool_free = weir_pool_free_count(&tm.pool);
	}
	struct timespec cpu;
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0) {
		hb.has_cpu_ns = true;
		hb.cpu_ns = (uint64_t)cpu.tv_sec * 1000000000ull + (uint64_t)cpu.tv_nsec;
	}
	weir_ctl_send_body(tm.jm, 0, WEIR__CTL__ENVELOPE__BODY_HEARTBEAT, &hb);
	report_metrics();
}

static void do_register(struct weir_conn *c)
{
	char host[64];
	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	Weir__Ctl__PoolInfo pi = WEIR__CTL__POOL_INFO__INIT;
	bool have_pool = tm.pool.hdr != NULL; /* remote, first registration: made once the id is known */
	pi.name = have_pool ? tm.pool_name : "";
	pi.pool_id = have_pool ? tm.pool.id : 0;
	pi.segments = have_pool ? tm.pool.nsegs : tm.segments;
	pi.segment_size = have_pool ? tm.pool.seg_size : tm.seg_size;
	pi.numa_node = have_pool && tm.pool.numa_bound ? tm.node : -1;
	Weir__Ctl__RegisterTaskManager r = WEIR__CTL__REGISTER_TASK_MANAGER__INIT;
	r.tm_id = tm.id == UINT32_MAX ? 0 : tm.id;
	r.has_assign_id = tm.id == UINT32_MAX;
	r.assign_id = r.has_assign_id;
	r.host = host;
	r.pid = (uint32_t)getpid();
	r.numa_node = tm.node;
	r.slots = tm.slots;
	r.pool = &pi;
	r.data_address = tm.data_addr;
	r.host_id = tm.host_id;
	weir_ctl_send_body(c, 1, WEIR__CTL__ENVELOPE__BODY_REGISTER_TM, &r);
}

static int job_prepared(void *arg)
{
	struct tmjob *j = arg;
	pthread_mutex_lock(&j->lock);
	j->tell_prepared = true;
	while (j->start < 0)
		pthread_cond_wait(&j->cond, &j->lock);
	int go = j->start;
	pthread_mutex_unlock(&j->lock);
	return go == 1 ? 0 : -1;
}

static int job_done(void *arg, bool ok, const char *msg)
{
	struct tmjob *j = arg;
	/* the subtasks' last figures, while they still exist */
	int nfinal = j->final ? weir_run_dist_sample(&j->dist, j->final, (int)j->dist.nsubtasks, j->final_lat) : 0;
	pthread_mutex_lock(&j->lock);
	j->nfinal = nfinal;
	j->tell_final = true;
	j->tell_done = true;
	j->done_ok = ok;
	j->done_refused = j->dist.refused; /* written by this (the job's) thread */
	snprintf(j->done_msg, sizeof(j->done_msg), "%s", msg ? msg : "");
	while (j->decision < 0)
		pthread_cond_wait(&j->cond, &j->lock);
	int d = j->decision;
	pthread_mutex_unlock(&j->lock);
	return d;
}

static void job_ck_acked(void *arg, uint64_t id, const struct weir_ckpt_file *files, int nfiles, uint64_t bytes,
			 uint64_t sync_max_ns, uint64_t inflight, const char *err)
{
	struct tmjob *j = arg;
	struct ck_ack a = { id, NULL, nfiles, bytes, sync_max_ns, inflight, err ? strdup(err) : NULL };
	if (err && !a.err)
		return; /* never a decline sent as a success: the JobManager's timeout aborts it */
	if (nfiles && (a.files = malloc(sizeof(*files) * (size_t)nfiles)))
		memcpy(a.files, files, sizeof(*files) * (size_t)nfiles);
	pthread_mutex_lock(&j->lock);
	struct ck_ack *q = realloc(j->acks, sizeof(*q) * (size_t)(j->nacks + 1));
	if (q) {
		j->acks = q;
		j->acks[j->nacks++] = a;
	}
	pthread_mutex_unlock(&j->lock);
	if (!q) { /* never acknowledged: the JobManager's timeout aborts it */
		free(a.files);
		free(a.err);
	}
}

static void ck_ack_free(struct ck_ack *a)
{
	free(a->files);
	free(a->err);
}

/* A MetricsReport of n samples of job's subtasks. */
static void send_metrics(uint64_t job, const struct weir_task_sample *t, int n)
{
	if (!jm_up() || n <= 0)
		return;
	Weir__Ctl__TaskSample *ts = calloc((size_t)n, sizeof(*ts));
	Weir__Ctl__TaskSample **tp = calloc((size_t)n, sizeof(*tp));
	if (!ts || !tp)
		goto out; /* a report missed: the next one comes in a second */
	for (int i = 0; i < n; i++) {
		Weir__Ctl__TaskSample init = WEIR__CTL__TASK_SAMPLE__INIT;
		ts[i] = init;
		ts[i].vertex = t[i].vertex;
		ts[i].index = t[i].index;
		ts[i].at_ns = t[i].at_ns;
		ts[i].has_records_in = ts[i].has_records_out = ts[i].has_bytes_in = ts[i].has_bytes_out = true;
		ts[i].records_in = t[i].records_in;
		ts[i].records_out = t[i].records_out;
		ts[i].bytes_in = t[i].bytes_in;
		ts[i].bytes_out = t[i].bytes_out;
		ts[i].has_busy_ns = ts[i].has_backpressured_ns = ts[i].has_state_entries = ts[i].has_timers = true;
		ts[i].busy_ns = t[i].busy_ns;
		ts[i].backpressured_ns = t[i].backpressured_ns;
		ts[i].state_entries = t[i].state_entries;
		ts[i].timers = t[i].timers;
		ts[i].has_wm_in = t[i].wm_in != WEIR_METRICS_NO_WM;
		ts[i].wm_in = t[i].wm_in;
		ts[i].has_align_ns = true;
		ts[i].align_ns = t[i].align_ns;
		ts[i].has_in_pool_permille = ts[i].has_out_pool_permille = true;
		ts[i].in_pool_permille = (uint32_t)(t[i].in_pool * 1000 + 0.5);
		ts[i].out_pool_permille = (uint32_t)(t[i].out_pool * 1000 + 0.5);
		ts[i].has_wm_out = t[i].wm_out != WEIR_METRICS_NO_WM;
		ts[i].wm_out = t[i].wm_out;
		if (t[i].lat) { /* points into the job's buffer, alive until the send */
			ts[i].n_latency = WEIR_HISTO_BUCKETS;
			ts[i].latency = (uint64_t *)t[i].lat;
		}
		tp[i] = &ts[i];
	}
	Weir__Ctl__MetricsReport r = WEIR__CTL__METRICS_REPORT__INIT;
	r.job_id = job;
	r.n_tasks = (size_t)n;
	r.tasks = tp;
	weir_ctl_send_body(tm.jm, 0, WEIR__CTL__ENVELOPE__BODY_METRICS_REPORT, &r);
out:
	free(ts);
	free(tp);
}

/* Once a second: a report of each running job's subtasks here. */
static void report_metrics(void)
{
	static uint64_t last_ns;
	uint64_t now = weir_now_ns();
	if (now - last_ns < 1000000000ull)
		return;
	last_ns = now;
	for (int i = 0; i < MAX_TM_JOBS; i++) {
		struct tmjob *j = tm.jobs[i];
		/* (j->start is the loop's; a job whose subtasks are gone samples
		 * nothing: weir_run_dist_sample finds it unregistered) */
		if (j && j->samples && j->start == 1)
			send_metrics(j->id, j->samples,
				     weir_run_dist_sample(&j->dist, j->samples, (int)j->dist.nsubtasks, j->lat));
	}
}

static void send_ack(uint64_t job, const struct ck_ack *a)
{
	Weir__Ctl__CheckpointAck ca = WEIR__CTL__CHECKPOINT_ACK__INIT;
	Weir__Ctl__SnapshotFile *fs = calloc((size_t)a->nfiles + 1, sizeof(*fs));
	Weir__Ctl__SnapshotFile **fp = calloc((size_t)a->nfiles + 1, sizeof(*fp));
	ca.job_id = job;
	ca.checkpoint_id = a->id;
	if (!fs || !fp || (a->nfiles && !a->files)) {
		ca.error = "out of memory";
	} else {
		for (int i = 0; i < a->nfiles; i++) {
			Weir__Ctl__SnapshotFile init = WEIR__CTL__SNAPSHOT_FILE__INIT;
			fs[i] = init;
			fs[i].vertex = a->files[i].vertex;
			fs[i].index = a->files[i].index;
			fs[i].parallelism = a->files[i].parallelism;
			fs[i].name = a->files[i].name;
			fs[i].size = a->files[i].size;
			fs[i].sum = a->files[i].sum;
			fp[i] = &fs[i];
		}
		ca.n_files = (size_t)a->nfiles;
		ca.files = fp;
		ca.error = a->err;
	}
	ca.has_bytes = ca.has_sync_max_ns = ca.has_inflight_bytes = true;
	ca.bytes = a->bytes;
	ca.sync_max_ns = a->sync_max_ns;
	ca.inflight_bytes = a->inflight;
	if (jm_up())
		weir_ctl_send_body(tm.jm, 0, WEIR__CTL__ENVELOPE__BODY_CHECKPOINT_ACK, &ca);
	free(fs);
	free(fp);
}

static void *job_thread(void *arg)
{
	struct tmjob *j = arg;
	int rc = weir_run_dist(j->env, &j->cfg, &j->dist);
	pthread_mutex_lock(&j->lock);
	j->tell_released = true;
	j->released_ok = rc == 0;
	snprintf(j->released_msg, sizeof(j->released_msg), "%s", rc == 0 ? "" : weir_err_msg());
	j->finished = true;
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

static void job_free(struct tmjob *j)
{
	if (j->env)
		weir_env_destroy(j->env);
	weir_job_unload(&j->obj);
	if (j->objpath[0])
		unlink(j->objpath);
	free(j->sub_tm);
	free(j->sub_slot);
	for (int i = 0; i < j->nacks; i++)
		ck_ack_free(&j->acks[i]);
	free(j->acks);
	free(j->ck_restore);
	free(j->ck_dir);
	for (int i = 0; j->argv && i < j->argc; i++)
		free(j->argv[i]);
	free(j->argv);
	free(j->samples);
	free(j->final);
	free(j->lat);
	free(j->final_lat);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	free(j);
}

static void send_phase_refused(uint64_t id, Weir__Ctl__Phase ph, const char *msg, bool refused)
{
	Weir__Ctl__JobPhase jp = WEIR__CTL__JOB_PHASE__INIT;
	jp.job_id = id;
	jp.phase = ph;
	jp.has_refused = refused;
	jp.refused = refused;
	jp.message = msg && *msg ? (char *)msg : NULL;
	if (jm_up())
		weir_ctl_send_body(tm.jm, 0, WEIR__CTL__ENVELOPE__BODY_JOB_PHASE, &jp);
}

static void send_phase(uint64_t id, Weir__Ctl__Phase ph, const char *msg)
{
	send_phase_refused(id, ph, msg, false);
}

/* The loop's side of the mailbox, for one job. */
static void job_tick_one(int slot)
{
	struct tmjob *j = tm.jobs[slot];
	pthread_mutex_lock(&j->lock);
	bool prep = j->tell_prepared, done = j->tell_done, rel = j->tell_released, fin = j->finished;
	bool ok = j->done_ok, rok = j->released_ok, refused = j->done_refused;
	char dmsg[1024], rmsg[1024];
	snprintf(dmsg, sizeof(dmsg), "%s", j->done_msg);
	snprintf(rmsg, sizeof(rmsg), "%s", j->released_msg);
	j->tell_prepared = j->tell_done = j->tell_released = false;
	bool final = j->tell_final; /* the job thread wrote j->final before setting it, under the lock */
	j->tell_final = false;
	struct ck_ack *acks = j->acks;
	int nacks = j->nacks;
	j->acks = NULL;
	j->nacks = 0;
	pthread_mutex_unlock(&j->lock);
	for (int i = 0; i < nacks; i++) { /* before DONE: the JobManager completes with them */
		send_ack(j->id, &acks[i]);
		ck_ack_free(&acks[i]);
	}
	free(acks);
	if (final) /* before DONE: the JobManager keeps the last figures */
		send_metrics(j->id, j->final, j->nfinal);
	if (prep)
		send_phase(j->id, WEIR__CTL__PHASE__PHASE_PREPARED, NULL);
	if (done)
		send_phase_refused(j->id, ok ? WEIR__CTL__PHASE__PHASE_DONE : WEIR__CTL__PHASE__PHASE_FAILED, dmsg, refused);
	if (rel)
		send_phase(j->id, WEIR__CTL__PHASE__PHASE_RELEASED, rok ? NULL : rmsg);
	if (fin) {
		pthread_join(j->thread, NULL);
		weir_log(WEIR_LOG_INFO, "job %llu: %s", (unsigned long long)j->id, rok ? "done" : rmsg);
		job_free(j);
		tm.jobs[slot] = NULL;
	}
}

static void job_tick(void)
{
	for (int i = 0; i < MAX_TM_JOBS; i++)
		if (tm.jobs[i])
			job_tick_one(i);
}

static void fetch_free(int i);

/* A decision from the JobManager for the job thread. */
static void job_decide(uint64_t id, Weir__Ctl__Phase ph)
{
	struct tmjob *j = NULL;
	for (int i = 0; i < MAX_TM_JOBS && !j; i++)
		if (tm.jobs[i] && tm.jobs[i]->id == id)
			j = tm.jobs[i];
	if (!j) { /* still fetching its object: an abort ends that */
		for (int i = 0; i < MAX_TM_JOBS; i++)
			if (tm.fetches[i] && tm.fetches[i]->job_id == id && ph == WEIR__CTL__PHASE__PHASE_ABORT) {
				fetch_free(i);
				send_phase(id, WEIR__CTL__PHASE__PHASE_RELEASED, NULL);
			}
		return;
	}
	pthread_mutex_lock(&j->lock);
	if (ph == WEIR__CTL__PHASE__PHASE_START && j->start < 0)
		j->start = 1;
	if (ph == WEIR__CTL__PHASE__PHASE_COMMIT && j->decision < 0)
		j->decision = 1;
	if (ph == WEIR__CTL__PHASE__PHASE_ABORT) {
		if (j->start < 0)
			j->start = 0;
		if (j->decision < 0)
			j->decision = 0;
		weir_run_dist_cancel(&j->dist);
	}
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
}

/* A checkpoint step from the JobManager, for the job's coordinator. A
 * trigger that cannot reach it (the job is not running here) is declined
 * at once, so the JobManager aborts that checkpoint without waiting. */
static void job_checkpoint(const Weir__Ctl__CheckpointStep *cs)
{
	struct tmjob *j = NULL;
	for (int i = 0; i < MAX_TM_JOBS && !j; i++)
		if (tm.jobs[i] && tm.jobs[i]->id == cs->job_id)
			j = tm.jobs[i];
	enum ck_step step = cs->action == WEIR__CTL__CHECKPOINT_ACTION__CK_TRIGGER ? CK_STEP_TRIGGER
			  : cs->action == WEIR__CTL__CHECKPOINT_ACTION__CK_COMPLETE ? CK_STEP_COMPLETE : CK_STEP_ABORT;
	if (j && weir_run_dist_checkpoint(&j->dist, step, cs->checkpoint_id, cs->dir ? cs->dir : "") == 0)
		return;
	if (step == CK_STEP_TRIGGER) {
		struct ck_ack a = { cs->checkpoint_id, NULL, 0, 0, 0, 0, (char *)(j ? weir_err_msg() : "the job is not here") };
		send_ack(cs->job_id, &a);
	}
}

/* Deploy, once the store has the object: copy and load it, build the
 * graph, start the thread. On any problem: FAILED and RELEASED at once,
 * naming it. */
/* The job's object, copied for this job and loaded, and its arguments
 * (copies that live as long as the job: the message goes away). 0, or -1
 * with why (empty: out of memory). */
static int load_object(struct tmjob *j, const Weir__Ctl__Deploy *d, char *why, size_t n)
{
	char hex[2 * WEIR_SHA256_LEN + 1], stored[PATH_MAX], path[PATH_MAX + 80];
	weir_hex_encode(d->object_sha256.data, WEIR_SHA256_LEN, hex);
	weir_obj_path(tm.objdir, d->object_sha256.data, stored, sizeof(stored));
	/* a copy per job: dlopen of one file (or a hard link to it) twice
	 * would share the object's globals between two runs */
	snprintf(path, sizeof(path), "%s/%s-j%llu.so", tm.objdir, hex, (unsigned long long)d->job_id);
	if (weir_obj_copy_checked(stored, path, d->object_sha256.data) < 0) {
		snprintf(why, n, "the job object: %s", weir_err_msg());
		return -1;
	}
	snprintf(j->objpath, sizeof(j->objpath), "%s", path);
	if (weir_job_load(&j->obj, path) < 0) {
		snprintf(why, n, "%s", weir_err_msg());
		return -1;
	}
	if (!(j->argv = calloc(d->n_args + 2, sizeof(char *))))
		return -1;
	j->argc = (int)d->n_args + 1;
	j->argv[0] = strdup(path);
	for (size_t i = 0; i < d->n_args; i++)
		j->argv[i + 1] = strdup(d->args[i]);
	for (int i = 0; i < j->argc; i++)
		if (!j->argv[i])
			return -1;
	return 0;
}

/* The part of the job this TaskManager runs (struct weir_dist): where
 * each subtask runs, the attempt's names, our pool, the callbacks, the
 * checkpoint setup. The number of subtasks here, or -1 (out of memory). */
static long set_part(struct tmjob *j, const Weir__Ctl__Deploy *d)
{
	j->sub_tm = calloc(d->n_placements + 1, sizeof(uint32_t));
	j->sub_slot = calloc(d->n_placements + 1, sizeof(uint32_t));
	if (!j->sub_tm || !j->sub_slot)
		return weir_err_set("out of memory");
	long mine = 0;
	for (size_t i = 0; i < d->n_placements; i++) {
		j->sub_tm[i] = d->placements[i]->tm_id;
		j->sub_slot[i] = d->placements[i]->slot;
		mine += d->placements[i]->tm_id == tm.id;
	}
	j->dist.tm = tm.id;
	j->dist.sub_tm = j->sub_tm;
	j->dist.sub_slot = j->sub_slot;
	j->dist.nsubtasks = (uint32_t)d->n_placements;
	j->samples = calloc(d->n_placements + 1, sizeof(*j->samples));
	j->final = calloc(d->n_placements + 1, sizeof(*j->final));
	if (!j->samples || !j->final)
		return weir_err_set("out of memory");
	if (d->latency_interval_ms && (!(j->lat = calloc((d->n_placements + 1) * WEIR_HISTO_BUCKETS, sizeof(uint64_t))) ||
				       !(j->final_lat = calloc((d->n_placements + 1) * WEIR_HISTO_BUCKETS, sizeof(uint64_t)))))
		return weir_err_set("out of memory");
	j->dist.nslots = tm.slots;
	j->dist.first_cpu = tm.first_core;
	/* each attempt its own names: a killed TaskManager's files of an
	 * earlier attempt may still be there */
	weir_dist_job_prefix(j->dist.prefix, sizeof(j->dist.prefix), d->cluster_id ? d->cluster_id : "c",
			     (unsigned long long)d->job_id, d->attempt);
	/* the job's segments: a share of our pool; the other TaskManagers'
	 * pools are named after the same cluster id */
	j->dist.pool = &tm.pool;
	snprintf(j->dist.cluster, sizeof(j->dist.cluster), "%s", tm.cluster);
	j->dist.job_id = d->job_id;
	j->dist.attempt = d->attempt;
	/* a TaskManager on another host (or every one, when the cluster
	 * forces TCP) is reached through the exchange */
	for (size_t i = 0; i < d->n_peers; i++) {
		const Weir__Ctl__DeployPeer *pe = d->peers[i];
		if (pe->tm_id == tm.id || pe->tm_id >= WEIR_XCHG_MAX_PEERS || (!d->force_tcp && !strcmp(pe->host_id, tm.host_id)))
			continue;
		char addr[96];
		snprintf(addr, sizeof(addr), "%s", pe->data_address);
		char *colon = strrchr(addr, ':');
		long port = colon ? strtol(colon + 1, NULL, 10) : 0;
		if (!colon || port < 1 || port > 65535) {
			weir_err_set("taskmanager %u has no data address ('%s')", pe->tm_id, pe->data_address);
			return -1;
		}
		*colon = '\0';
		char *host = addr;
		if (host[0] == '[' && colon > host + 1 && colon[-1] == ']') {
			colon[-1] = '\0';
			host++;
		}
		if (weir_xchg_peer(tm.xchg, pe->tm_id, host, (uint16_t)port) < 0)
			return -1;
		j->tcp[pe->tm_id] = 1;
	}
	j->dist.xchg = tm.xchg;
	j->dist.tcp = j->tcp;
	j->dist.prepared = job_prepared;
	j->dist.done = job_done;
	j->dist.ck_acked = job_ck_acked;
	j->dist.arg = j;
	if (d->checkpoints) {
		j->dist.ck_on = true;
		if (d->checkpoints->dir && *d->checkpoints->dir) {
			if (!(j->ck_dir = strdup(d->checkpoints->dir)))
				return weir_err_set("out of memory");
			j->dist.ck_dir = j->ck_dir;
		}
		if (d->checkpoints->storage_id && *d->checkpoints->storage_id) {
			snprintf(j->ck_storage_id, sizeof(j->ck_storage_id), "%s", d->checkpoints->storage_id);
			j->dist.ck_storage_id = j->ck_storage_id;
		}
		j->dist.restarted = d->checkpoints->restarted;
		j->cfg.at_least_once = d->checkpoints->at_least_once;
		j->cfg.unaligned = d->checkpoints->unaligned;
		if (d->checkpoints->restore && *d->checkpoints->restore) {
			if (!(j->ck_restore = strdup(d->checkpoints->restore)))
				return -1;
			j->dist.ck_restore = j->ck_restore;
		}
	}
	return mine;
}

static void deploy_ready(const Weir__Ctl__Deploy *d)
{
	char why[1024] = "";
	int slot = 0;
	while (slot < MAX_TM_JOBS && tm.jobs[slot])
		slot++;
	if (slot == MAX_TM_JOBS) {
		send_phase(d->job_id, WEIR__CTL__PHASE__PHASE_FAILED, "this taskmanager runs too many jobs");
		send_phase(d->job_id, WEIR__CTL__PHASE__PHASE_RELEASED, "busy");
		return;
	}
	struct tmjob *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->id = d->job_id;
	j->start = j->decision = -1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	if (load_object(j, d, why, sizeof(why)) < 0)
		goto fail;
	weir_config_defaults(&j->cfg);
	j->cfg.parallelism = (int)d->parallelism;
	j->cfg.quiet = true;
	j->cfg.cancel_timeout_ms = tm.cancel_timeout_ms;
	if (d->has_max_parallelism)
		j->cfg.max_parallelism = d->max_parallelism;
	enum weir_idle idle = WEIR_IDLE_SLEEP;
	if (d->idle && weir_idle_parse(d->idle, &idle) < 0)
		weir_log(WEIR_LOG_WARN, "job %llu: unknown idle strategy '%.32s': sleep", (unsigned long long)d->job_id,
			 d->idle);
	j->cfg.idle = (int)idle;
	if (d->spin_us <= 10 * 1000 * 1000)
		j->cfg.spin_ns = (uint64_t)d->spin_us * 1000u;
	if (d->net_credits >= 1 && d->net_credits <= 1024)
		j->cfg.net_credits = d->net_credits;
	if (d->latency_interval_ms <= 3600u * 1000)
		j->cfg.latency_interval_ms = d->latency_interval_ms;
	if (d->debloat_us <= 3600u * 1000 * 1000)
		j->cfg.debloat_ns = (uint64_t)d->debloat_us * 1000u;
	j->env = weir_job_build(&j->obj, (int)d->parallelism, j->argc, j->argv);
	if (!j->env) {
		snprintf(why, sizeof(why), "job '%s': %s", d->job_name, weir_err_msg());
		goto fail;
	}
	long mine = set_part(j, d);
	if (mine < 0) {
		snprintf(why, sizeof(why), "%s", weir_err_msg());
		goto fail;
	}
	if (pthread_create(&j->thread, NULL, job_thread, j) != 0) {
		snprintf(why, sizeof(why), "cannot start the job thread");
		goto fail;
	}
	tm.jobs[slot] = j;
	weir_log(WEIR_LOG_INFO, "job %llu (%s): %ld of %zu subtasks here (workers idle: %s, spin %llu us)%s%.0llu%s",
		 (unsigned long long)d->job_id, d->job_name, mine, d->n_placements,
		 weir_idle_name((enum weir_idle)j->cfg.idle), (unsigned long long)(j->cfg.spin_ns / 1000u),
		 j->cfg.debloat_ns ? ", buffer debloating to " : "", (unsigned long long)(j->cfg.debloat_ns / 1000u),
		 j->cfg.debloat_ns ? " us" : "");
	return;
fail:
	if (!why[0])
		snprintf(why, sizeof(why), "out of memory");
	weir_log(WEIR_LOG_ERROR, "job %llu: %s", (unsigned long long)d->job_id, why);
	send_phase(d->job_id, WEIR__CTL__PHASE__PHASE_FAILED, why);
	send_phase(d->job_id, WEIR__CTL__PHASE__PHASE_RELEASED, why);
	job_free(j);
}

static void fetch_free(int i)
{
	struct fetch *f = tm.fetches[i];
	weir_obj_in_abort(&f->in);
	free(f->deploy);
	free(f);
	tm.fetches[i] = NULL;
}

static int fetch_next(struct fetch *f)
{
	Weir__Ctl__FetchObject fo = WEIR__CTL__FETCH_OBJECT__INIT;
	fo.object_sha256.data = f->in.sha;
	fo.object_sha256.len = WEIR_SHA256_LEN;
	fo.has_offset = true;
	fo.offset = f->in.got;
	f->rid = ++tm.next_rid;
	return !jm_up() || weir_ctl_send_body(tm.jm, f->rid, WEIR__CTL__ENVELOPE__BODY_FETCH_OBJECT, &fo) < 0
		       ? weir_err_set("cannot send to the jobmanager")
		       : 0;
}

static void deploy_failed(uint64_t job_id, const char *why)
{
	weir_log(WEIR_LOG_ERROR, "job %llu: %s", (unsigned long long)job_id, why);
	send_phase(job_id, WEIR__CTL__PHASE__PHASE_FAILED, why);
	send_phase(job_id, WEIR__CTL__PHASE__PHASE_RELEASED, why);
}

/* Deploy: run it when the store has the object, else fetch it first. */
static void deploy(const Weir__Ctl__Deploy *d)
{
	if (d->object_size > WEIR_OBJ_MAX) {
		deploy_failed(d->job_id, "the job object is too large");
		return;
	}
	if (weir_obj_have(tm.objdir, d->object_sha256.data, d->object_size)) {
		deploy_ready(d);
		return;
	}
	int i = 0;
	while (i < MAX_TM_JOBS && tm.fetches[i])
		i++;
	struct fetch *f = i < MAX_TM_JOBS ? calloc(1, sizeof(*f)) : NULL;
	size_t len = weir__ctl__deploy__get_packed_size(d);
	if (!f || !(f->deploy = malloc(len + 1))) {
		free(f);
		deploy_failed(d->job_id, i < MAX_TM_JOBS ? "out of memory" : "this taskmanager runs too many jobs");
		return;
	}
	f->in.fd = -1;
	f->job_id = d->job_id;
	f->len = weir__ctl__deploy__pack(d, f->deploy);
	tm.fetches[i] = f;
	char tag[32];
	snprintf(tag, sizeof(tag), "j%llu", (unsigned long long)d->job_id);
	if (weir_obj_in_begin(&f->in, tm.objdir, d->object_sha256.data, tag) < 0 || fetch_next(f) < 0) {
		char why[1024];
		snprintf(why, sizeof(why), "fetch the job object: %s", weir_err_msg());
		deploy_failed(d->job_id, why);
		fetch_free(i);
		return;
	}
	weir_log(WEIR_LOG_INFO, "job %llu: fetching its object (%llu bytes) from the jobmanager",
		 (unsigned long long)d->job_id, (unsigned long long)d->object_size);
}

/* An answer to a FetchObject: the next chunk (write it; ask for the next,
 * or deploy after the last) or an Error. Other answers are not ours. */
static void fetch_answer(const weir_msg *m)
{
	int i = 0;
	while (i < MAX_TM_JOBS && !(tm.fetches[i] && m->has_request_id && tm.fetches[i]->rid == m->request_id))
		i++;
	if (i == MAX_TM_JOBS)
		return;
	struct fetch *f = tm.fetches[i];
	int rc;
	if (m->body_case == WEIR__CTL__ENVELOPE__BODY_ERROR) {
		rc = weir_err_set("the jobmanager says: %s", m->error->message);
	} else {
		const Weir__Ctl__ObjectChunk *oc = m->object_chunk;
		rc = !weir_digest_equal(oc->object_sha256.data, f->in.sha, WEIR_SHA256_LEN)
			     ? weir_err_set("the jobmanager sent another object")
			     : weir_obj_in_write(&f->in, oc->offset, oc->data.data, oc->data.len);
		if (rc == 0 && oc->has_last && oc->last) {
			rc = weir_obj_in_finish(&f->in);
			Weir__Ctl__Deploy *d = rc < 0 ? NULL : weir__ctl__deploy__unpack(NULL, f->len, f->deploy);
			if (d) {
				weir_log(WEIR_LOG_INFO, "job %llu: object fetched (%llu bytes)",
					 (unsigned long long)f->job_id, (unsigned long long)f->in.got);
				fetch_free(i);
				deploy_ready(d);
				weir__ctl__deploy__free_unpacked(d, NULL);
				return;
			}
			if (rc == 0)
				rc = weir_err_set("out of memory");
		} else if (rc == 0 && oc->data.len == 0) {
			rc = weir_err_set("the jobmanager sent an empty chunk before the end");
		} else if (rc == 0) {
			rc = fetch_next(f);
		}
	}
	if (rc < 0) {
		char why[1024];
		snprintf(why, sizeof(why), "fetch the job object: %s", weir_err_msg());
		deploy_failed(f->job_id, why);
		fetch_free(i);
	}
}

static int on_frame(struct weir_conn *c, uint16_t type, const uint8_t *p, uint32_t len, void *arg)
{
	(void)arg;
	if (type != WEIR_FRAME_CTL)
		return -EPROTO;
	weir_msg *m;
	if (weir_ctl_decode(p, len, &m) < 0) {
		weir_log(WEIR_LOG_ERROR, "bad message from the jobmanager: %s", weir_err_msg());
		return -EPROTO;
	}
	int rc = 0;
	if (!tm.authed) {
		rc = weir_auth_feed_msg(&tm.auth, m);
		uint8_t out[WEIR_AUTH_OUT_MAX];
		long n = weir_auth_take_output(&tm.auth, out, sizeof(out));
		if (n > 0)
			weir_conn_send(c, WEIR_FRAME_CTL, out, (uint32_t)n);
		if (rc == 1) {
			tm.authed = true;
			do_register(c);
			rc = 0;
		} else if (rc < 0) {
			weir_log(WEIR_LOG_ERROR, "the jobmanager refused us: %s", weir_auth_reason(&tm.auth));
		}
		weir_ctl_free(m);
		return rc;
	}
	switch (m->body_case) {
	case WEIR__CTL__ENVELOPE__BODY_REGISTER_ACK:
		if (registered(m->register_ack) < 0) {
			weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
			tm.exit_code = 1;
			tm.stopping = true;
			weir_loop_stop(tm.loop);
			break;
		}
		tm.registered = true;
		/* left by a TaskManager of this id that crashed (registered: no
		 * live one has this id) */
		weir_obj_remove_all(tm.objdir);
		weir_log(WEIR_LOG_INFO, "registered with cluster %s (heartbeat every %u ms)", m->register_ack->cluster_id,
			 m->register_ack->heartbeat_interval_ms);
		if (tm.ready_fd >= 0) {
			if (write(tm.ready_fd, "R", 1) != 1)
				weir_log(WEIR_LOG_WARN, "could not signal readiness");
			close(tm.ready_fd);
			tm.ready_fd = -1;
		}
		break;
	case WEIR__CTL__ENVELOPE__BODY_DEPLOY:
		deploy(m->deploy);
		break;
	case WEIR__CTL__ENVELOPE__BODY_OBJECT_CHUNK:
		fetch_answer(m);
		break;
	case WEIR__CTL__ENVELOPE__BODY_JOB_PHASE:
		job_decide(m->job_phase->job_id, m->job_phase->phase);
		break;
	case WEIR__CTL__ENVELOPE__BODY_CHECKPOINT_STEP:
		job_checkpoint(m->checkpoint_step);
		break;
	case WEIR__CTL__ENVELOPE__BODY_STOP:
		weir_log(WEIR_LOG_INFO, "the jobmanager says stop (%s)", m->stop->reason ? m->stop->reason : "");
		tm.stopping = true;
		weir_loop_stop(tm.loop);
		break;
	case WEIR__CTL__ENVELOPE__BODY_ERROR:
		fetch_answer(m);
		weir_log(WEIR_LOG_ERROR, "the jobmanager says: %s", m->error->message);
		if (!tm.registered && tm.remote && tm.pool.hdr) {
			/* coming back: the JobManager may not have noticed yet that
			 * our id's last connection is gone; try again later */
			weir_conn_close(c, -EAGAIN);
		} else if (!tm.registered) {
			tm.exit_code = 1;
			weir_loop_stop(tm.loop);
		}
		break;
	default:
		weir_log(WEIR_LOG_WARN, "ignored %s from the jobmanager", weir_ctl_body_name(m->body_case));
		break;
	}
	weir_ctl_free(m);
	return rc;
}

static void on_close(struct weir_conn *c, int reason, void *arg)
{
	(void)c, (void)arg;
	if (tm.remote && !tm.stopping && !tm.signalled && tm.pool.hdr) {
		/* on another host nobody starts us again: our jobs end (their
		 * attempts are over), and we seek the JobManager until it is back */
		if (tm.registered)
			weir_log(WEIR_LOG_WARN, "lost the jobmanager: %s; its jobs here end, and we register again",
				 reason ? strerror(-reason) : "it closed the connection");
		tm.registered = tm.authed = false;
		tm.jm = NULL;
		if (!tm.lost_since_ns)
			tm.lost_since_ns = weir_now_ns();
		for (int i = 0; i < MAX_TM_JOBS; i++)
			if (tm.jobs[i])
				job_decide(tm.jobs[i]->id, WEIR__CTL__PHASE__PHASE_ABORT);
		for (int i = 0; i < MAX_TM_JOBS; i++)
			if (tm.fetches[i])
				fetch_free(i);
		tm.reconnect_ms = tm.reconnect_ms ? (tm.reconnect_ms * 2 > 2000 ? 2000 : tm.reconnect_ms * 2) : 100;
		tm.reconnect_at_ns = weir_now_ns() + (uint64_t)tm.reconnect_ms * 1000000u;
		return;
	}
	if (!tm.stopping) {
		weir_log(WEIR_LOG_ERROR, "lost the jobmanager: %s; stopping",
			 reason ? strerror(-reason) : "it closed the connection");
		tm.exit_code = 1;
	}
	weir_loop_stop(tm.loop);
}

static void on_signal(int sig)
{
	(void)sig;
	tm.signalled = 1;
}

const char weir_taskmanager_usage[] =
	"usage: weir taskmanager --id N [--run-dir D] [--slots S] [--segments N] [--segment-size BYTES]\n"
	"                        [--numa-node N] [--first-core K] [--ready-fd FD] [--log-level L]\n"
	"                        [--cancel-timeout MS] [--advertise ADDR] [--data-port P]\n"
	"                        [--tls-dir D --tls-name NAME] [--registration-timeout MS]\n"
	"       weir taskmanager --jobmanager HOST:PORT --secret-file F [--advertise ADDR] [--id N]\n"
	"                        [the other options above]\n"
	"weir cluster start runs it with values from its own flags and configuration file;\n"
	"with --jobmanager it joins a cluster from another host (docs/operations.md).\n";

/* The flags of weir taskmanager. */
struct tm_args {
	const char *run_dir, *level, *advertise, *jobmanager, *secret_file, *tls_dir, *tls_name;
	long long id, slots, segments, seg_size, node, first_core, ready, cancel_ms, data_port, reg_timeout;
};

/* Parse the flags into *o. -1 to go on, else the exit status (0 after
 * --help, 2 for bad usage, named on stderr). */
static int parse_args(int argc, char **argv, struct tm_args *o)
{
	*o = (struct tm_args){ .level = "info", .id = -1, .segments = 1024, .seg_size = 32768, .node = -1,
			       .first_core = -1, .ready = -1, .cancel_ms = 30000, .reg_timeout = 300000 };
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (weir_help_flag(a)) {
			fputs(weir_taskmanager_usage, stdout);
			return 0;
		}
		long long *num = !strcmp(a, "--id") ? &o->id : !strcmp(a, "--slots") ? &o->slots
			       : !strcmp(a, "--segments") ? &o->segments : !strcmp(a, "--segment-size") ? &o->seg_size
			       : !strcmp(a, "--numa-node") ? &o->node : !strcmp(a, "--first-core") ? &o->first_core
			       : !strcmp(a, "--ready-fd") ? &o->ready
			       : !strcmp(a, "--cancel-timeout") ? &o->cancel_ms
			       : !strcmp(a, "--data-port") ? &o->data_port
			       : !strcmp(a, "--registration-timeout") ? &o->reg_timeout : NULL;
		long long lo = num == &o->slots || num == &o->segments ? 1 : num == &o->seg_size ? 4096 : 0;
		long long hi = num == &o->id ? 255 : num == &o->slots ? 1024 : num == &o->segments ? 16777215
			     : num == &o->seg_size ? 64 << 20 : num == &o->node ? 4095
			     : num == &o->cancel_ms || num == &o->reg_timeout ? 24 * 3600 * 1000
			     : num == &o->data_port ? 65535 : INT_MAX;
		if (num && v) {
			if (weir_parse_num(argv[++i], lo, hi, false, num) < 0) {
				fprintf(stderr, "weir taskmanager: %s: %s\n", a, weir_err_msg());
				return 2;
			}
		} else if (!strcmp(a, "--run-dir") && v) {
			o->run_dir = argv[++i];
		} else if (!strcmp(a, "--log-level") && v) {
			o->level = argv[++i];
		} else if (!strcmp(a, "--advertise") && v) {
			o->advertise = argv[++i];
		} else if (!strcmp(a, "--jobmanager") && v) {
			o->jobmanager = argv[++i];
		} else if (!strcmp(a, "--tls-dir") && v) {
			o->tls_dir = argv[++i];
		} else if (!strcmp(a, "--tls-name") && v) {
			o->tls_name = argv[++i];
		} else if (!strcmp(a, "--secret-file") && v) {
			o->secret_file = argv[++i];
		} else {
			fprintf(stderr, "weir taskmanager: unknown or incomplete option '%s'\n", a);
			return 2;
		}
	}
	return -1;
}

/* Where this TaskManager runs: bound to its NUMA node (before any thread
 * starts: they inherit it), its slots and the cores they are pinned to,
 * listed in corelist for the log. 0, or -1 with the trail set. */
static int place(const struct tm_args *o, char *corelist, size_t n)
{
	int cpus[1024];
	if (o->node >= 0 && weir_cpu_bind_node((int)o->node) < 0)
		return -1;
	int ncpu = weir_cpu_allowed(cpus, 1024);
	tm.node = o->node >= 0 ? (int)o->node : weir_cpu_node(cpus[0]);
	tm.slots = o->slots > 0 ? (uint32_t)o->slots : (uint32_t)ncpu;
	/* slot k runs on allowed CPU (first_core + k) mod the count: TaskManagers
	 * sharing a node are given different first cores by cluster start */
	tm.first_core = o->first_core >= 0 ? (uint32_t)o->first_core : tm.id == UINT32_MAX ? 0 : tm.id * tm.slots;
	corelist[0] = '\0';
	for (uint32_t k = 0, l = 0; k < tm.slots && l < n - 16; k++)
		l += (uint32_t)snprintf(corelist + l, n - l, k ? ",%d" : "%d", cpus[(tm.first_core + k) % (uint32_t)ncpu]);
	return 0;
}

/* ---- the exchange: data to TaskManagers on other hosts ---- */

/* The handshake on a data connection: the same proof of the cluster
 * secret as towards the JobManager (ctl/auth.h), the connecting side the
 * client. Runs on the exchange's thread; tm.secret is read-only by then. */
static void *xauth_start(struct weir_conn *c, bool outgoing, void *arg)
{
	(void)arg;
	struct weir_auth *a = calloc(1, sizeof(*a));
	if (!a) {
		weir_conn_close(c, -ENOMEM);
		return NULL;
	}
	if (outgoing)
		weir_auth_client_init(a, &tm.secret, WEIR__CTL__ROLE__ROLE_TASKMANAGER, tm.role);
	else
		weir_auth_server_init(a, &tm.secret);
	uint8_t out[WEIR_AUTH_OUT_MAX];
	long len = weir_auth_take_output(a, out, sizeof(out));
	if (len > 0)
		weir_conn_send(c, WEIR_FRAME_CTL, out, (uint32_t)len);
	return a;
}

static int xauth_frame(struct weir_conn *c, void *st, const uint8_t *p, uint32_t len, void *arg)
{
	(void)arg;
	struct weir_auth *a = st;
	if (!a)
		return -EPROTO;
	int rc = weir_auth_feed(a, p, len);
	uint8_t out[WEIR_AUTH_OUT_MAX];
	long n = weir_auth_take_output(a, out, sizeof(out));
	if (n > 0)
		weir_conn_send(c, WEIR_FRAME_CTL, out, (uint32_t)n);
	if (rc < 0) {
		/* on the exchange's thread only: its limiter is its own */
		weir_log_limited(&tm.xrefused, weir_real_now_ns(), "no secret", "a data connection from %s refused: %s",
				 weir_conn_peer(c), weir_auth_reason(a)[0] ? weir_auth_reason(a) : weir_err_msg());
		return -EACCES;
	}
	if (rc == 1 && a->server && a->role != WEIR__CTL__ROLE__ROLE_TASKMANAGER) {
		weir_log_limited(&tm.xrefused, weir_real_now_ns(), "not a taskmanager",
				 "a data connection from %s is not a taskmanager's: refused", weir_conn_peer(c));
		return -EACCES;
	}
	return rc == 1 ? 1 : 0;
}

static void xauth_end(void *st, void *arg)
{
	(void)arg;
	if (st) {
		weir_auth_release(st);
		free(st);
	}
}

static void *xchg_main(void *arg)
{
	weir_xchg_run(arg);
	return NULL;
}

/* The exchange, listening on addr (port 0: any), on a thread of its own.
 * 0, or -1 with the trail set. */
static int start_exchange(const char *advertise, uint16_t port)
{
	/* --advertise ADDR, or ADDR:PORT ([V6]:PORT): others reach us there;
	 * we listen on ADDR (at --data-port). With a port of its own it may be
	 * a forwarder's (a NAT, the tests' fault proxy) that leads to ours. */
	char addr[96], adv_port[8] = "";
	snprintf(addr, sizeof(addr), "%s", advertise);
	char *colon = strrchr(addr, ':');
	bool v6 = addr[0] == '[';
	if (colon && (v6 ? colon > addr && colon[-1] == ']' : strchr(addr, ':') == colon)) {
		long ap = strtol(colon + 1, NULL, 10);
		if (ap < 1 || ap > 65535 || strspn(colon + 1, "0123456789") != strlen(colon + 1))
			return weir_err_set("--advertise '%s': not ADDR or ADDR:PORT", advertise);
		snprintf(adv_port, sizeof(adv_port), "%ld", ap);
		*colon = '\0';
	}
	if (v6) {
		size_t l = strlen(addr);
		if (l < 2 || addr[l - 1] != ']')
			return weir_err_set("--advertise '%s': not ADDR or ADDR:PORT", advertise);
		memmove(addr, addr + 1, l - 2);
		addr[l - 2] = '\0';
	}
	struct weir_xchg_config xc = {
		.id = tm.id, .listen_addr = addr, .listen_port = port, .seg_size = tm.seg_size,
		/* no spin: it sleeps in its ring (sockets and doorbell at once), and
		 * a spinning exchange takes the CPU its tasks need (docs/performance.md,
		 * "The exchange between two hosts": spin 50 cost 1.7x throughput, 3x p50) */
		.spin_us = 0, .ctl_type = WEIR_FRAME_CTL, .tls_server = tm.tls_server, .tls_client = tm.tls_client,
		.auth_start = xauth_start, .auth_frame = xauth_frame, .auth_end = xauth_end,
	};
	weir_log_limit_init(&tm.xrefused, "data connections refused", WEIR_LOG_WARN, 10000);
	tm.xchg = weir_xchg_create(&xc);
	if (!tm.xchg)
		return weir_err_wrap("the data plane's listener on %s:%u", addr, port);
	if (adv_port[0])
		snprintf(tm.data_addr, sizeof(tm.data_addr), strchr(addr, ':') ? "[%s]:%s" : "%s:%s", addr, adv_port);
	else
		snprintf(tm.data_addr, sizeof(tm.data_addr), strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr,
			 weir_xchg_port(tm.xchg));
	if (adv_port[0])
		weir_log(WEIR_LOG_INFO, "data: listening on %s:%u, advertised as %s", addr, weir_xchg_port(tm.xchg),
			 tm.data_addr);
	return 0;
}

/* Once registered (our id is known): the exchange's thread. */
static int run_exchange(void)
{
	if (tm.xchg_running)
		return 0;
	weir_xchg_set_id(tm.xchg, tm.id);
	if (pthread_create(&tm.xchg_thread, NULL, xchg_main, tm.xchg) != 0)
		return weir_err_set("cannot start the exchange's thread");
	tm.xchg_running = true;
	return 0;
}

/* The pool in shared memory, named after the cluster and our id. 0, or -1
 * with the trail set. */
static int create_pool(void)
{
	weir_dist_pool_name(tm.pool_name, sizeof(tm.pool_name), tm.cluster, tm.id);
	if (weir_pool_create_shm(&tm.pool, tm.pool_name, tm.id, tm.segments, tm.seg_size, tm.node, false) < 0)
		return weir_err_wrap("pool of %u segments of %u bytes (taskmanager.segments x taskmanager.segment_size)",
				     tm.segments, tm.seg_size);
	return 0;
}

/* Connect to the JobManager and say hello (a fresh handshake each time:
 * a remote TaskManager comes back after losing it). 0, or -1 with the
 * trail set. */
static int jm_dial(void)
{
	weir_auth_release(&tm.auth);
	weir_auth_client_init(&tm.auth, &tm.secret, WEIR__CTL__ROLE__ROLE_TASKMANAGER, tm.role);
	struct weir_conn *c;
	if (weir_loop_connect(tm.loop, tm.jm_host, tm.jm_port, 2000, &c) < 0)
		return -1;
	tm.jm = c;
	tm.authed = tm.registered = false;
	uint8_t hello[WEIR_AUTH_OUT_MAX];
	long len = weir_auth_take_output(&tm.auth, hello, sizeof(hello));
	if (len > 0)
		weir_conn_send(tm.jm, WEIR_FRAME_CTL, hello, (uint32_t)len);
	return 0;
}

/* The RegisterAck: our id (assigned, when we asked) and the cluster; a
 * remote TaskManager makes its pool now. 0, or -1 with the trail set. */
static int registered(const Weir__Ctl__RegisterAck *a)
{
	if (tm.id == UINT32_MAX) {
		if (a->tm_id >= WEIR_XCHG_MAX_PEERS)
			return weir_err_set("the jobmanager assigned id %u (0..255 expected)", a->tm_id);
		tm.id = a->tm_id;
		snprintf(tm.role, sizeof(tm.role), "taskmanager-%u", tm.id);
		weir_log_init(tm.role, tm.level);
		snprintf(tm.objdir, sizeof(tm.objdir), "%s/objects-tm%u", tm.rd.dir, tm.id);
	} else if (a->tm_id != tm.id) {
		return weir_err_set("the jobmanager registered us as %u, not %u", a->tm_id, tm.id);
	}
	if (!tm.pool.hdr) {
		if (!a->cluster_id || !*a->cluster_id || strlen(a->cluster_id) >= sizeof(tm.cluster) ||
		    strspn(a->cluster_id, "0123456789abcdefghijklmnopqrstuvwxyz") != strlen(a->cluster_id))
			return weir_err_set("the jobmanager's cluster id is not a plain name");
		snprintf(tm.cluster, sizeof(tm.cluster), "%s", a->cluster_id);
		if (create_pool() < 0)
			return -1;
		weir_log(WEIR_LOG_INFO, "pool %s: %u x %u bytes on NUMA node %d%s", tm.pool_name, tm.pool.nsegs,
			 tm.pool.seg_size, tm.node, tm.pool.numa_bound ? "" : " (not bound)");
	} else if (strcmp(a->cluster_id, tm.cluster)) {
		return weir_err_set("the jobmanager now runs cluster %s, not %s: stopping", a->cluster_id, tm.cluster);
	}
	tm.reconnect_ms = 0;
	tm.lost_since_ns = 0;
	tm.hb_ms = a->heartbeat_interval_ms >= 10 ? a->heartbeat_interval_ms : 100;
	/* data connections: as silent as the JobManager lets us be */
	if (!tm.xchg_running && a->heartbeat_timeout_ms >= 2 * tm.hb_ms)
		weir_xchg_set_silence(tm.xchg, a->heartbeat_timeout_ms);
	return run_exchange();
}

static void stop_exchange(void)
{
	if (tm.xchg_running) {
		weir_xchg_stop(tm.xchg);
		pthread_join(tm.xchg_thread, NULL);
		tm.xchg_running = false;
		struct weir_xchg_stats st;
		weir_xchg_stats(tm.xchg, &st);
		weir_log(WEIR_LOG_INFO,
			 "exchange: %llu frames out, %llu in, %llu bytes out, %llu in, %llu credits granted, %llu received, "
			 "%llu bad frames, %llu connections lost, CQ overflow %llu",
			 (unsigned long long)st.frames_out, (unsigned long long)st.frames_in,
			 (unsigned long long)st.bytes_out, (unsigned long long)st.bytes_in,
			 (unsigned long long)st.credits_out, (unsigned long long)st.credits_in,
			 (unsigned long long)st.bad_frames, (unsigned long long)st.conns_lost,
			 (unsigned long long)st.cq_overflow);
	}
	weir_xchg_destroy(tm.xchg);
	tm.xchg = NULL;
}

/* The secret and the cluster (a TaskManager of the local cluster reads
 * them in the run folder and makes its pool now; a remote one reads the
 * secret in --secret-file and learns the cluster at registration), the
 * loop, the handshake, the exchange's listener. 0, or -1 with the trail
 * set (nothing left behind). */
static int open_pool_and_loop(const struct tm_args *o)
{
	char path[PATH_MAX], cluster[64];
	if (tm.remote) {
		snprintf(path, sizeof(path), "%s", o->secret_file);
	} else {
		weir_rundir_path(&tm.rd, "cluster.id", path, sizeof(path));
		if (weir_read_small_file(path, cluster, sizeof(cluster)) < 0)
			return -1;
		snprintf(tm.cluster, sizeof(tm.cluster), "%s", cluster);
		weir_rundir_path(&tm.rd, "secret", path, sizeof(path));
	}
	if (weir_auth_secret_load(path, &tm.secret) < 0)
		return -1;
	if (!tm.remote && create_pool() < 0)
		goto fail;
	struct weir_loop_config cfg = { .entries = 64, .max_conns = 16, .on_frame = on_frame, .on_close = on_close,
					.tls_client = tm.tls_client };
	tm.loop = weir_loop_create(&cfg);
	if (!tm.loop)
		goto fail;
	if (start_exchange(o->advertise ? o->advertise : "127.0.0.1", (uint16_t)o->data_port) < 0) {
		weir_loop_destroy(tm.loop);
		goto fail;
	}
	return 0;
fail:
	weir_auth_secret_wipe(&tm.secret);
	if (tm.pool.hdr)
		weir_pool_release(&tm.pool);
	return -1;
}

/* Connect to the JobManager: the one named by --jobmanager, or the one at
 * the address in the run folder (addr: for the log). 0, or -1 with the
 * trail set (the loop and pool released). */
static int connect_jm(const struct tm_args *o, char *addr, size_t n)
{
	char path[PATH_MAX];
	if (tm.remote) {
		snprintf(addr, n, "%s", o->jobmanager);
	} else {
		weir_rundir_path(&tm.rd, "jobmanager.addr", path, sizeof(path));
		if (weir_read_small_file(path, addr, n) < 0) {
			weir_err_wrap("the jobmanager's address");
			goto fail;
		}
	}
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", addr);
	char *colon = strrchr(buf, ':');
	long port = colon ? strtol(colon + 1, NULL, 10) : 0;
	if (!colon || port < 1 || port > 65535) {
		weir_err_set("the jobmanager's address '%s' is not HOST:PORT", addr);
		goto fail;
	}
	*colon = '\0';
	const char *host = buf; /* "[v6]:port" or "v4:port" */
	if (buf[0] == '[' && colon > buf + 1 && colon[-1] == ']') {
		colon[-1] = '\0';
		host = buf + 1;
	}
	snprintf(tm.jm_host, sizeof(tm.jm_host), "%s", host);
	tm.jm_port = (uint16_t)port;
	if (jm_dial() < 0)
		goto fail;
	return 0;
fail:
	stop_exchange();
	weir_loop_destroy(tm.loop);
	if (tm.pool.hdr)
		weir_pool_release(&tm.pool);
	return -1;
}

/* After the loop: abort the jobs still here (waiting for their threads),
 * drop the fetches, release the pool and the object store. */
static void shut_down(void)
{
	for (int i = 0; i < MAX_TM_JOBS; i++) /* stopping with jobs: abort them, wait for their threads */
		if (tm.jobs[i]) {
			job_decide(tm.jobs[i]->id, WEIR__CTL__PHASE__PHASE_ABORT);
			pthread_join(tm.jobs[i]->thread, NULL);
			job_free(tm.jobs[i]);
			tm.jobs[i] = NULL;
		}
	for (int i = 0; i < MAX_TM_JOBS; i++)
		if (tm.fetches[i])
			fetch_free(i);
	stop_exchange(); /* after the jobs: none of theirs is registered with it now */
	weir_loop_destroy(tm.loop);
	weir_tls_ctx_destroy(tm.tls_server); /* after the loops: their sessions used them */
	weir_tls_ctx_destroy(tm.tls_client);
	weir_auth_release(&tm.auth);
	weir_auth_secret_wipe(&tm.secret);
	weir_pool_release(&tm.pool);
	weir_obj_remove_all(tm.objdir);
	weir_log(WEIR_LOG_INFO, "stopped");
}

int weir_taskmanager_main(int argc, char **argv)
{
	struct tm_args o;
	int rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	tm.ready_fd = (int)o.ready;
	tm.remote = o.jobmanager != NULL;
	if ((!tm.remote && o.id < 0) || weir_log_parse_level(o.level, &tm.level) < 0 ||
	    (tm.remote && !o.secret_file) || !o.tls_dir != !o.tls_name) {
		fprintf(stderr, "weir taskmanager: needs --id 0..255, or --jobmanager HOST:PORT and --secret-file F "
				"(and a valid --log-level; --tls-dir and --tls-name go together)\n%s", weir_taskmanager_usage);
		return 2;
	}
	/* remote without --id: the JobManager assigns one at registration */
	tm.id = o.id >= 0 ? (uint32_t)o.id : UINT32_MAX;
	if (tm.id == UINT32_MAX)
		snprintf(tm.role, sizeof(tm.role), "taskmanager");
	else
		snprintf(tm.role, sizeof(tm.role), "taskmanager-%u", tm.id);
	weir_log_init(tm.role, tm.level);
	tm.segments = (uint32_t)o.segments;
	tm.seg_size = (uint32_t)o.seg_size;
	if (weir_host_identity(tm.host_id, sizeof(tm.host_id)) < 0)
		goto fail;
	/* TLS on every connection: to the JobManager, and between exchanges */
	if (o.tls_dir && weir_cluster_tls(o.tls_dir, o.tls_name, &tm.tls_server, &tm.tls_client) < 0)
		goto fail;
	tm.cancel_timeout_ms = (uint32_t)o.cancel_ms;
	tm.registration_timeout_ms = (uint32_t)o.reg_timeout;
	char corelist[128];
	if (place(&o, corelist, sizeof(corelist)) < 0)
		goto fail;
	weir_rundir_init(&tm.rd, o.run_dir);
	/* on another host the run folder is only ours (objects, nothing the
	 * JobManager reads): made when missing */
	int chk = weir_rundir_check(&tm.rd, tm.remote);
	if (chk != 0) {
		if (chk == 1)
			weir_err_set("run folder '%s' does not exist", tm.rd.dir);
		weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
		goto fail;
	}
	if (tm.id != UINT32_MAX)
		snprintf(tm.objdir, sizeof(tm.objdir), "%s/objects-tm%u", tm.rd.dir, tm.id);
	/* a job's code that crashes, calls exit() or does not stop: a line
	 * naming its operator here and, on the JobManager's host, in the note
	 * it and the supervisor quote (runtime/run.h) */
	char note[PATH_MAX];
	weir_tm_note_path(tm.rd.dir, (int)tm.id, note, sizeof(note));
	if (weir_guard_start(tm.role, true, tm.remote ? NULL : note) < 0)
		weir_log(WEIR_LOG_WARN, "%s: a crash in a job will not be named", weir_err_msg());
	tm.next_rid = 1; /* 1 is the registration's */
	char addr[128];
	if (open_pool_and_loop(&o) < 0 || connect_jm(&o, addr, sizeof(addr)) < 0)
		goto fail;
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* heartbeats (once registered) and signal checks; the JobManager
	 * expects one every 100 ms */
	weir_loop_timer_add(tm.loop, 10, heartbeat, NULL); /* sends at the JobManager's interval */
	weir_loop_timer_add(tm.loop, 5, job_timer, NULL);
	char poolmsg[256] = "";
	if (tm.pool.hdr) /* remote: made at registration */
		snprintf(poolmsg, sizeof(poolmsg), "pool %s: %u x %u bytes on NUMA node %d%s; ", tm.pool_name,
			 tm.pool.nsegs, tm.pool.seg_size, tm.node, tm.pool.numa_bound ? "" : " (not bound)");
	weir_log(WEIR_LOG_INFO, "%s%u slots on cores %s; data at %s; connecting to the jobmanager at %s", poolmsg,
		 tm.slots, corelist, tm.data_addr, addr);
	weir_loop_run(tm.loop);
	shut_down();
	weir_guard_end();
	return tm.exit_code;
fail:
	weir_guard_end();
	weir_log(WEIR_LOG_ERROR, "%s", weir_err_msg());
	fprintf(stderr, "weir taskmanager: %s\n", weir_err_msg());
	return 1;
}
