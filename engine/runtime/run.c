/*
 * engine/runtime/run.c - running a job: in this process (local mode, with
 * restarts from its checkpoints), or this TaskManager's part of it on a
 * cluster (weir_run_dist, its steps from the JobManager).
 *
 * An attempt plans, deploys (deploy.c), restores (checkpoint/restore.c),
 * runs its subtasks on the workers until every source has ended, a
 * subtask fails or the job is cancelled, then tears down: on success
 * every sink commits (file sinks rename their part files into place); on
 * failure or cancel every sink aborts, so a failed job leaves nothing that
 * looks like complete output.
 */
#include "runtime/run.h"
#include "runtime/internal.h"
#include "runtime/local.h"
#include "runtime/progress.h"
#include "runtime/localrest.h"
#include "checkpoint/restart.h"
#include "checkpoint/take.h"
#include "checkpoint/writer.h"
#include "operators/chain.h"
#include "operators/keyed.h"
#include "checkpoint/store.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/failpoint.h"
#include "sched/cpu.h"

#include <limits.h>
#include <signal.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* weir local's status for a cancelled job (engine/cli/main.c) */
#define WEIR_EXIT_CANCEL 130

static struct job *volatile running_job;
/* Set by a cancel that came before the job started running (during plan or
 * deploy); checked once the job is visible to the signal handler. */
static volatile sig_atomic_t cancel_pending;

void weir_local_cancel(void)
{
	cancel_pending = 1;
	struct job *job = running_job;
	if (job) {
		__atomic_store_n(&job->cancelled, 1, __ATOMIC_RELEASE);
		weir_sched_stop(&job->sched);
	}
}

/*
 * The watchdog (Flink's task cancellation watchdog): a thread per running
 * job, when cfg.cancel_timeout_ms is not 0. It notices the job's stop
 * (sched.stop: a cancel, a failure, an abort from the JobManager) and, when
 * a subtask is still inside a step cancel_timeout_ms later (user code that
 * does not return, or returns too late), names the operator and ends the
 * process: nothing else can take a thread out of code that never returns.
 * It reads the stop flag every 50 ms (a signal handler can only set a
 * flag, not wake a thread) and is over once the workers are joined and the
 * operators closed.
 */
struct watchdog {
	struct job *job;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool over;		/* under lock */
	bool running;
	int status_cancel, status_fail;	/* what the process exits with */
};

#define WATCHDOG_POLL_NS 50000000ull

static void __attribute__((noreturn)) watchdog_bite(struct watchdog *w)
{
	struct job *job = w->job;
	bool cancelled = __atomic_load_n(&job->cancelled, __ATOMIC_ACQUIRE);
	char who[1024] = "", why[1200], msg[2600];
	size_t n = 0;
	int nstuck = 0;
	for (int s = 0; s < job->nsub && n < sizeof(who) - 200; s++) {
		struct subtask *st = &job->subtasks[s];
		if (!st->ops || !__atomic_load_n(&st->cur_op, __ATOMIC_RELAXED))
			continue;
		char one[600];
		weir_crash_describe(st, one, sizeof(one));
		n += (size_t)snprintf(who + n, sizeof(who) - n, "%s%s", nstuck++ ? ", " : "", one);
	}
	pthread_mutex_lock(&job->lock);
	if (cancelled) /* on a TaskManager: the JobManager's abort, after a cancel or a failure */
		snprintf(why, sizeof(why), "%s", job->dist ? "the abort" : "the cancel");
	else
		snprintf(why, sizeof(why), "the job's stop (%s)", job->failed ? job->error : "aborted");
	pthread_mutex_unlock(&job->lock);
	snprintf(msg, sizeof(msg), "%s did not stop within %u ms of %s: ending the process (cancel timeout)",
		 nstuck ? who : "a worker thread", job->cfg.cancel_timeout_ms, why);
	weir_crash_note(msg);
	_exit(cancelled ? w->status_cancel : w->status_fail);
}

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	struct job *job = w->job;
	uint64_t timeout = (uint64_t)job->cfg.cancel_timeout_ms * 1000000u, since = 0;
	pthread_mutex_lock(&w->lock);
	while (!w->over) {
		uint64_t now = weir_real_now_ns();
		if (!since && __atomic_load_n(&job->sched.stop, __ATOMIC_ACQUIRE))
			since = now;
		if (since && now - since >= timeout)
			break;
		uint64_t wait = since ? since + timeout - now : WATCHDOG_POLL_NS;
		weir_cond_wait_ns(&w->cond, &w->lock, wait < WATCHDOG_POLL_NS ? wait : WATCHDOG_POLL_NS);
	}
	bool over = w->over;
	pthread_mutex_unlock(&w->lock);
	if (!over)
		watchdog_bite(w);
	return NULL;
}

/* Before the workers start (nothing when the timeout is 0). */
static void watchdog_start(struct watchdog *w, struct job *job, int status_cancel, int status_fail)
{
	memset(w, 0, sizeof(*w));
	w->job = job;
	w->status_cancel = status_cancel;
	w->status_fail = status_fail;
	if (!job->cfg.cancel_timeout_ms)
		return;
	pthread_mutex_init(&w->lock, NULL);
	weir_cond_init_monotonic(&w->cond);
	if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0) {
		fprintf(stderr, "weir: cannot start the cancel watchdog: a stuck subtask will not be ended\n");
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		return;
	}
	w->running = true;
}

/* Once every subtask stopped and every operator closed. */
static void watchdog_stop(struct watchdog *w)
{
	if (!w->running)
		return;
	pthread_mutex_lock(&w->lock);
	w->over = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	w->running = false;
}

static void print_summary(struct job *job, bool ok)
{
	double ms = (double)(job->end_ns - job->start_ns) / 1e6;
	fprintf(stderr, "weir: job %s in %.1f ms\n", ok ? "finished" : "failed", ms);
	for (int n = 0; n < job->env->nnodes; n++) {
		struct node *nd = job->env->nodes[n];
		uint64_t in = 0, out = 0;
		int par = 0;
		for (int s = 0; s < job->nsub; s++) {
			struct subtask *st = &job->subtasks[s];
			for (int k = 0; st->ops && k < st->nops; k++)
				if (st->ops[k].node == nd) {
					in += st->ops[k].records_in;
					out += st->ops[k].records_out;
					par++;
				}
		}
		fprintf(stderr, "  %-24s parallelism %-3d in %-12llu out %llu\n", nd->name, par,
			(unsigned long long)in, (unsigned long long)out);
	}
	for (int w = 0; w < job->sched.nworkers; w++) {
		struct weir_worker *wk = &job->sched.workers[w];
		fprintf(stderr, "  worker %d (cpu %d): %d tasks, %llu rounds, %llu sleeps, %llu wake-ups sent to it\n",
			w, wk->cpu, wk->ntasks, (unsigned long long)wk->stats.rounds,
			(unsigned long long)wk->stats.sleeps, (unsigned long long)wk->db->wakeups);
	}
}

/* Give each subtask its snapshots from checkpoint m: its own at the same
 * parallelism; after a rescale, every snapshot of its vertex (keyed state
 * moves by key group, each subtask keeping the groups it owns now), with
 * the private state of old subtask i going to new subtask i mod the new
 * parallelism. Sources keep their parallelism: their positions do not
 * split or merge. 0, or -1 when one is missing or cannot be rescaled. */
static int assign_restore(struct job *job, const struct weir_ckpt_meta *m)
{
	for (int s = 0; s < job->nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		if (job->dist && !st->ops)
			continue; /* runs elsewhere */
		const char *name = job->env->nodes[st->v->nodes[0]]->name;
		uint32_t oldp = 0, n = 0;
		for (uint32_t i = 0; i < m->nfiles; i++)
			if (m->files[i].vertex == (uint32_t)st->v->id) {
				if (oldp && m->files[i].parallelism != oldp)
					return weir_err_set("checkpoint %llu is malformed: '%s' has snapshots at two "
							    "parallelisms", (unsigned long long)m->id, name);
				oldp = m->files[i].parallelism;
				n++;
			}
		if (!oldp || n != oldp)
			return weir_err_set("checkpoint %llu holds no complete snapshot of '%s' (was the job's graph "
					    "different, or does its chaining change with the parallelism? An operator "
					    "chained to a neighbour of fixed parallelism at one parallelism and not at "
					    "another cannot be restored)", (unsigned long long)m->id, name);
		bool same = oldp == (uint32_t)st->v->parallelism;
		const struct node *head = job->env->nodes[st->v->nodes[0]];
		if (!same && head->kind == OP_SOURCE && !head->restore_all)
			return weir_err_set("source '%s' had parallelism %u in checkpoint %llu and has %d now: a source "
					    "keeps its parallelism across a restore (set it with weir_set_parallelism)",
					    name, oldp, (unsigned long long)m->id, st->v->parallelism);
		st->restore = calloc(same ? 1 : oldp, sizeof(*st->restore));
		if (!st->restore)
			return weir_err_set("out of memory");
		for (uint32_t i = 0; i < m->nfiles; i++) {
			const struct weir_ckpt_file *f = &m->files[i];
			if (f->vertex != (uint32_t)st->v->id || (same && f->index != (uint32_t)st->index))
				continue;
			st->restore[st->nrestore++] = (struct restore_piece){
				f->data, (size_t)f->size, f->index, f->index % (uint32_t)st->v->parallelism == (uint32_t)st->index
			};
		}
		if (!st->nrestore)
			return weir_err_set("checkpoint %llu holds no snapshot of '%s' subtask %d/%d",
					    (unsigned long long)m->id, name, st->index + 1, st->v->parallelism);
	}
	job->ck_restored = m->id;
	job->ck_trigger = job->ck_complete = m->id;
	return 0;
}

static int check_nodes(struct job *job, bool restoring)
{
	for (int n = 0; n < job->env->nnodes; n++) {
		struct node *nd = job->env->nodes[n];
		if (nd->hooks.check && nd->hooks.check(nd, restoring) < 0)
			return -1;
	}
	return 0;
}

/* dist: can this TaskManager write the job's checkpoint folder? Every
 * part of a checkpoint is written where the JobManager reads it, so the
 * folder must be one that every host reaches (a shared file system); one
 * that is not is found here, before the job starts, naming the folder and
 * the TaskManager. A probe file, made exclusively and removed. */
static int check_ck_dir(const struct weir_dist *d)
{
	char probe[PATH_MAX + 64];
	if (d->ck_storage_id) { /* the same folder as the JobManager's, not one of this host's own */
		char got[64] = "";
		snprintf(probe, sizeof(probe), "%s/.storage-id", d->ck_dir);
		int fd = open(probe, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		ssize_t n = fd >= 0 ? read(fd, got, sizeof(got) - 1) : -1;
		if (fd >= 0)
			close(fd);
		got[n > 0 ? n : 0] = '\0';
		if (strcmp(got, d->ck_storage_id))
			return weir_err_set("taskmanager %u does not see the jobmanager's checkpoint folder at '%s' (%s): "
					    "checkpoints need one folder every TaskManager and the JobManager share, such "
					    "as a shared file system", d->tm, d->ck_dir,
					    fd < 0 ? "its .storage-id is missing here" : "its .storage-id differs here");
	}
	snprintf(probe, sizeof(probe), "%s/.probe-tm%u-%d", d->ck_dir, d->tm, (int)getpid());
	int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, "w", 1) != 1 || fsync(fd) < 0) {
		int e = errno;
		if (fd >= 0) {
			close(fd);
			unlink(probe);
		}
		return weir_err_set("taskmanager %u cannot write the checkpoint folder '%s': %s (checkpoints need a "
				    "folder every TaskManager and the JobManager reach, such as a shared file system)",
				    d->tm, d->ck_dir, strerror(e));
	}
	close(fd);
	unlink(probe);
	return 0;
}

/* One run of the job; with base, checkpoints go there, and from (when not
 * NULL) is the checkpoint it starts from. */
static int run_once(weir_env *env, const struct weir_config *cfg, bool print, const char *base,
		    const struct weir_ckpt_meta *from, bool restart, bool *refused)
{
	struct job job;
	memset(&job, 0, sizeof(job));
	job.env = env;
	job.cfg = *cfg;
	job.ck_on = base != NULL;
	job.ck_folder = base;
	pthread_mutex_init(&job.lock, NULL);
	struct link *links = NULL;
	int nlinks = 0;

	if (weir_plan_build(&job.plan, env, cfg) < 0) {
		pthread_mutex_destroy(&job.lock);
		return -1;
	}
	int bad = 0;
	/* a restart finds what earlier attempts published; restores sort it out */
	if (check_nodes(&job, from != NULL || cfg->restore_from || restart) < 0 ||
	    (job.ck_on && ck_check_sources(&job) < 0))
		bad = *refused = true; /* the same again on a restart: none */
	else if (weir_deploy(&job, &links, &nlinks) < 0)
		bad = 1;
	else if (from && assign_restore(&job, from) < 0)
		bad = *refused = true; /* not this job's checkpoint */
	else if (job.ck_on && cfg->checkpoint_interval_ms && weir_local_ck_start(&job, base, from ? from->id : 0) < 0)
		bad = 1;
	if (bad) {
		weir_err_wrap("deploy");
		char msg[WEIR_ERR_MAX];
		snprintf(msg, sizeof(msg), "%s", weir_err_msg());
		weir_close_all(&job);
		weir_release_data(&job);
		weir_finish_sinks(&job, false);
		weir_release_rest(&job);
		free(links);
		return weir_err_set("%s", msg);
	}
	free(links);
	job.start_ns = weir_now_ns();
	job.start_real_ns = weir_real_now_ns();
	job.sampling = true; /* every channel was made by weir_deploy; no thread reads yet */
	running_job = &job;
	if (cancel_pending) /* a cancel came during plan or deploy */
		weir_local_cancel();
	struct watchdog dog;
	watchdog_start(&dog, &job, WEIR_EXIT_CANCEL, 1);
	struct progress *line = print ? weir_progress_start(&job, cfg->quiet) : NULL;
	struct local_rest *api = NULL;
	if (print && cfg->rest_port >= 0 && !(api = weir_local_rest_start(&job, cfg->rest_port))) {
		weir_err_wrap("REST API (--rest-port)");
		weir_job_fail(&job, weir_err_msg());
	} else if (weir_sched_start(&job.sched) < 0) {
		weir_job_fail(&job, weir_err_msg());
	}
	weir_sched_join(&job.sched);
	running_job = NULL;
	job.end_ns = weir_now_ns();
	weir_local_rest_stop(api); /* it reads the subtasks */
	weir_progress_stop(line); /* it reads the checkpoint driver */
	weir_local_ck_stop(&job);

	bool all_done = true;
	for (int s = 0; s < job.nsub; s++)
		all_done &= job.subtasks[s].state == ST_DONE;
	bool cancelled = __atomic_load_n(&job.cancelled, __ATOMIC_ACQUIRE);
	bool success = !job.failed && !cancelled && all_done;
	weir_close_all(&job);
	watchdog_stop(&dog);
	/* Count segments before anything commits: a leak is a bug, and a
	 * job with a bug must not publish output. */
	int leaked = weir_release_data(&job);
	if (success && leaked) {
		char msg[128];
		snprintf(msg, sizeof(msg), "internal error: %d segments were not returned to the pool", leaked);
		weir_job_fail(&job, msg);
		success = false;
	}
	success = weir_finish_sinks(&job, success);
	if (print && !cfg->quiet)
		print_summary(&job, success);
	char err[1024] = "";
	if (job.failed)
		snprintf(err, sizeof(err), "%s", job.error);
	else if (cancelled)
		snprintf(err, sizeof(err), "cancelled");
	else if (!success)
		snprintf(err, sizeof(err), "internal error: the job stopped before every subtask finished");
	weir_release_rest(&job);
	if (success)
		return 0;
	return weir_err_set("%s", err);
}

int weir_run_local(weir_env *env, const struct weir_config *cfg, bool print)
{
	if (!cfg->checkpoint_interval_ms && !cfg->restore_from) {
		bool refused = false;
		int rc = run_once(env, cfg, print, NULL, NULL, false, &refused);
		cancel_pending = 0;
		return rc;
	}
	/* this run's checkpoints: a folder of its own, so that a new run never
	 * restores an old one's by accident (--from-checkpoint does, asked) */
	char base[PATH_MAX];
	time_t now = time(NULL);
	struct tm tmv;
	localtime_r(&now, &tmv);
	snprintf(base, sizeof(base), "%s/job-%04d%02d%02d-%02d%02d%02d-%d", cfg->checkpoint_dir, tmv.tm_year + 1900,
		 tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec, (int)getpid());
	if (weir_ckpt_prepare(base, sizeof(base)) < 0)
		return -1;
	if (cfg->checkpoint_interval_ms)
		fprintf(stderr, "weir: checkpoints every %u ms in %s\n", cfg->checkpoint_interval_ms, base);
	struct weir_ckpt_meta m;
	char report[2048];
	memset(&m, 0, sizeof(m));
	if (cfg->restore_from) {
		int r = weir_ckpt_latest(cfg->restore_from, &m, report, sizeof(report));
		if (r <= 0)
			return r == 0 ? weir_err_set("no complete checkpoint in '%s'", cfg->restore_from)
				      : weir_err_wrap("refusing to start");
		fprintf(stderr, "weir: restoring checkpoint %llu from %s\n", (unsigned long long)m.id, cfg->restore_from);
	}
	struct ck_restart strategy;
	ck_restart_init(&strategy, cfg->restart_attempts, cfg->restart_delay_ms, cfg->restart_max_delay_ms);
	for (uint32_t attempt = 0;; attempt++) {
		bool refused = false;
		int rc = run_once(env, cfg, print, base, m.id ? &m : NULL, attempt > 0, &refused);
		weir_ckpt_meta_free(&m);
		bool cancelled = cancel_pending;
		uint32_t delay_ms;
		if (rc == 0 || cancelled || refused || !ck_restart_next(&strategy, &delay_ms)) {
			cancel_pending = 0;
			return rc;
		}
		char why[WEIR_ERR_MAX];
		snprintf(why, sizeof(why), "%s", weir_err_msg());
		if (delay_ms) {
			struct timespec ts = { delay_ms / 1000, (long)(delay_ms % 1000) * 1000000 };
			nanosleep(&ts, NULL); /* the restart strategy's delay */
		}
		/* the newest good checkpoint of this run, else the one it started from */
		int r = weir_ckpt_latest(base, &m, report, sizeof(report));
		if (r == 0 && cfg->restore_from)
			r = weir_ckpt_latest(cfg->restore_from, &m, report, sizeof(report));
		if (r < 0)
			return weir_err_wrap("the job failed (%s), and cannot restart", why);
		fprintf(stderr, "weir: job failed: %s; restart %u of %u from %s\n", why, attempt + 1,
			cfg->restart_attempts, r ? "its latest checkpoint" : "the beginning (no checkpoint completed)");
		if (r)
			fprintf(stderr, "weir: restoring checkpoint %llu\n", (unsigned long long)m.id);
	}
}

/* The jobs weir_run_dist runs now, so that weir_run_dist_cancel can reach
 * them from the control thread. */
static pthread_mutex_t dist_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	const struct weir_dist *d;
	struct job *job;
} dist_jobs[16];

static void dist_register(const struct weir_dist *d, struct job *job)
{
	pthread_mutex_lock(&dist_lock);
	for (int i = 0; i < 16; i++) {
		if (job && !dist_jobs[i].d) { /* register in a free entry */
			dist_jobs[i].d = d;
			dist_jobs[i].job = job;
			break;
		}
		if (!job && dist_jobs[i].d == d) { /* unregister */
			dist_jobs[i].d = NULL;
			dist_jobs[i].job = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&dist_lock);
}

int weir_run_dist_checkpoint(const struct weir_dist *d, enum ck_step step, uint64_t id, const char *dir)
{
	int rc = weir_err_set("the job is not running here");
	pthread_mutex_lock(&dist_lock); /* the job stays registered (and its coordinator up) meanwhile */
	for (int i = 0; i < 16; i++)
		if (dist_jobs[i].d == d)
			rc = ck_writer_step(dist_jobs[i].job, step, id, dir);
	pthread_mutex_unlock(&dist_lock);
	return rc;
}

int weir_run_dist_sample(const struct weir_dist *d, struct weir_task_sample *out, int max, uint64_t *lat)
{
	int n = 0;
	pthread_mutex_lock(&dist_lock); /* the job's subtasks stay while it is registered */
	for (int i = 0; i < 16; i++)
		if (dist_jobs[i].d == d)
			n = weir_job_sample(dist_jobs[i].job, d->tm, out, max, lat);
	pthread_mutex_unlock(&dist_lock);
	return n;
}

void weir_run_dist_cancel(const struct weir_dist *d)
{
	pthread_mutex_lock(&dist_lock);
	for (int i = 0; i < 16; i++)
		if (dist_jobs[i].d == d) {
			__atomic_store_n(&dist_jobs[i].job->cancelled, 1, __ATOMIC_RELEASE);
			weir_sched_stop(&dist_jobs[i].job->sched);
		}
	pthread_mutex_unlock(&dist_lock);
}

int weir_run_dist(weir_env *env, const struct weir_config *cfg, struct weir_dist *d)
{
	struct job job;
	memset(&job, 0, sizeof(job));
	job.env = env;
	job.cfg = *cfg;
	job.cfg.shm = true;
	job.dist = d;
	job.dbs.fd = -1;
	pthread_mutex_init(&job.lock, NULL);
	struct link *links = NULL;
	int nlinks = 0;
	char err[1024] = "";
	bool success = false;
	struct watchdog dog = { .running = false };

	if (weir_plan_build(&job.plan, env, cfg) < 0) {
		pthread_mutex_destroy(&job.lock);
		d->prepared(d->arg);
		d->done(d->arg, false, weir_err_msg());
		return -1;
	}
	struct weir_ckpt_meta from;
	memset(&from, 0, sizeof(from));
	job.ck_on = d->ck_on;
	job.ck_folder = d->ck_on ? d->ck_dir : NULL;
	/* A failure before `prepared` is reported instead of it (done, below):
	 * the JobManager then aborts the attempt before any TaskManager starts,
	 * so no other one runs into its consequences (a channel this one never
	 * made) and reports those first: the reason is this one, every time. */
	if (check_nodes(&job, d->ck_restore || d->restarted) < 0 || (job.ck_on && ck_check_sources(&job) < 0) ||
	    (job.ck_on && d->ck_dir && check_ck_dir(d) < 0)) {
		snprintf(err, sizeof(err), "deploy: %s", weir_err_msg());
		d->refused = true; /* the same again on a restart */
		goto out;
	}
	if (weir_deploy(&job, &links, &nlinks) < 0) {
		snprintf(err, sizeof(err), "deploy: %s", weir_err_msg());
		d->refused = job.deploy_refused;
		goto out;
	}
	if (d->ck_restore) { /* the JobManager checked it; every byte is checked again here */
		char report[2048] = "";
		int r = weir_ckpt_latest(d->ck_restore, &from, report, sizeof(report));
		if (r <= 0 || assign_restore(&job, &from) < 0) {
			snprintf(err, sizeof(err), "restore from '%s': %s", d->ck_restore,
				 r == 0 ? "no complete checkpoint there" : weir_err_msg());
			d->refused = r > 0; /* read and sound, but not this job's: the same again */
			goto out;
		}
	}
	if (job.ck_on && ck_writer_start(&job, from.id, d->ck_acked, d->arg) < 0) {
		snprintf(err, sizeof(err), "deploy: %s", weir_err_msg());
		goto out;
	}
	dist_register(d, &job);
	if (d->prepared(d->arg) < 0) {
		snprintf(err, sizeof(err), "aborted before it started");
		goto out;
	}
	if (weir_attach_remote(&job, links, nlinks) < 0) {
		snprintf(err, sizeof(err), "connect to the other taskmanagers: %s", weir_err_msg());
		goto out;
	}
	__atomic_store_n(&job.sampling, true, __ATOMIC_RELEASE); /* after the attaches: see weir_job_sample */
	job.start_ns = weir_now_ns();
	watchdog_start(&dog, &job, WEIR_EXIT_STUCK, WEIR_EXIT_STUCK);
	if (weir_sched_start(&job.sched) < 0)
		weir_job_fail(&job, weir_err_msg());
	weir_sched_join(&job.sched);
	job.end_ns = weir_now_ns();
	bool all_done = true;
	for (int s = 0; s < job.nsub; s++)
		if (job.subtasks[s].ops)
			all_done &= job.subtasks[s].state == ST_DONE;
	/* under the lock: the exchange's thread may still fail the job (a
	 * channel across hosts lost) until weir_release_remote removes them */
	pthread_mutex_lock(&job.lock);
	bool failed = job.failed;
	if (failed)
		snprintf(err, sizeof(err), "%s", job.error);
	pthread_mutex_unlock(&job.lock);
	success = !failed && all_done;
	if (!failed && (!all_done || __atomic_load_n(&job.cancelled, __ATOMIC_ACQUIRE)))
		snprintf(err, sizeof(err), "cancelled");
out:
	free(links);
	weir_close_all(&job);
	watchdog_stop(&dog);
	/* every local subtask is over, but other TaskManagers may still read
	 * segments of ours: the decision waits for all of them */
	int decision = d->done(d->arg, success, err);
	dist_register(d, NULL);
	ck_writer_stop(&job);
	weir_ckpt_meta_free(&from);
	/* other TaskManagers may still read segments of ours (an abort comes
	 * before they stopped): they go back to the pool only once no one can */
	weir_release_remote(&job, 10000000000ull);
	int leaked = weir_release_data(&job);
	if (decision == 1 && leaked) {
		snprintf(err, sizeof(err), "internal error: %d segments were not returned to the pool", leaked);
		decision = 0;
	}
	success = weir_finish_sinks(&job, decision == 1 && success);
	weir_release_rest(&job);
	if (success)
		return 0;
	return weir_err_set("%s", err[0] ? err : "aborted");
}

