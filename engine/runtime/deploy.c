/*
 * engine/runtime/deploy.c - a plan becomes running subtasks, and goes away
 * again.
 *
 * Deploy: size one segment pool for every channel's credits plus a
 * floating reserve (on a cluster: take that share, for the channels this
 * TaskManager produces into, of the TaskManager's pool); place subtasks on workers (round robin over all
 * subtasks in vertex order: with parallelism >= workers this is Flink's
 * slot sharing, subtask i of each vertex in slot i mod workers; with less,
 * pipeline stages spread over the cores; on a cluster, the placement the
 * JobManager chose); connect producer and consumer subtasks with channels
 * whose doorbells are their workers'. Between TaskManagers the producer's
 * side creates a channel in /dev/shm and the consumer's attaches it once
 * every TaskManager is prepared.
 *
 * Teardown: close what is open, return every segment to the pool (a
 * missing one is a bug, and a job with a bug publishes nothing), commit or
 * abort the sinks, free the rest.
 */
#include "runtime/internal.h"
#include "base/histo.h"
#include "checkpoint/take.h"
#include "operators/chain.h"
#include "base/err.h"
#include "base/failpoint.h"
#include "base/clock.h"
#include "base/log.h"
#include "sched/cpu.h"
#include "net/exchange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- deploy ------------------------------------------------------------ */

static void ctx_init(struct weir_ctx *c, struct subtask *st, struct opinst *op, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->st = st;
	c->op = op;
	c->arg = arg;
	c->cur_ts = WEIR_TS_NONE;
}
/* What deploy works with, step by step. */
struct deployment {
	struct job *job;
	const struct weir_dist *d;	/* NULL in local mode */
	struct link *links;
	int nlinks, nchans, nsub, nworkers;
	int node;			/* the pool's NUMA node */
	char shm_prefix[64];		/* local mode's /dev/shm folder */
};

/* The links between vertices, and how many channels each needs. */
static int plan_links(struct deployment *dp)
{
	weir_env *env = dp->job->env;
	struct plan *p = &dp->job->plan;
	for (int v = 0; v < p->nv; v++)
		dp->nlinks += env->nodes[p->v[v].nodes[0]]->nin;
	dp->links = calloc((size_t)dp->nlinks + 1, sizeof(*dp->links));
	if (!dp->links)
		return weir_err_set("out of memory");
	int li = 0;
	for (int v = 0; v < p->nv; v++) {
		struct node *head = env->nodes[p->v[v].nodes[0]];
		for (int k = 0; k < head->nin; k++) {
			struct link *l = &dp->links[li++];
			l->consumer = v;
			l->producer = p->node_vertex[head->in[k].src];
			l->input = k;
			l->part = p->edge_part[p->edge_base[head->id] + k];
			l->base = dp->nchans;
			dp->nchans += l->part == PART_FORWARD ? p->v[v].parallelism
							      : p->v[v].parallelism * p->v[l->producer].parallelism;
		}
	}
	return 0;
}

/* The workers (in a cluster, this TaskManager's slots, whose doorbells
 * other TaskManagers ring through /dev/shm). */
static int make_workers(struct deployment *dp)
{
	struct job *job = dp->job;
	const struct weir_config *cfg = &job->cfg;
	const struct weir_dist *d = dp->d;
	for (int v = 0; v < job->plan.nv; v++)
		dp->nsub += job->plan.v[v].parallelism;
	if (d && d->nsubtasks != (uint32_t)dp->nsub)
		return job->deploy_refused = true, /* the same again on a restart */
		       weir_err_set("the job built %d subtasks here, but the placement has %u: its graph differs "
				    "between processes (does weir_job depend on more than its arguments?)", dp->nsub,
				    d->nsubtasks);
	int cpus[1024];
	int ncpus = weir_cpu_allowed(cpus, 1024);
	dp->nworkers = d ? (int)d->nslots : cfg->workers > 0 ? cfg->workers : ncpus;
	if (!d && dp->nworkers > dp->nsub)
		dp->nworkers = dp->nsub;
	dp->node = weir_cpu_node(cpus[0]); /* local mode: the pool lives on the node of our first core */
	if (weir_sched_init(&job->sched, dp->nworkers, cfg->pin, d ? (int)d->first_cpu : 0, cfg->spin_ns) < 0)
		return -1;
	job->sched.idle = (enum weir_idle)cfg->idle;
	job->sched.no_times = cfg->no_metrics;
	if (d) {
		char name[160];
		snprintf(name, sizeof(name), "%s-tm%u-db", d->prefix, d->tm);
		if (weir_shm_create(&job->dbs, name, sizeof(struct weir_doorbell) * (size_t)dp->nworkers, NULL) < 0)
			return -1;
		if (weir_shm_reserve(&job->dbs) < 0) {
			weir_shm_close(&job->dbs);
			return -1;
		}
		weir_sched_share(&job->sched, job->dbs.map);
	}
	return 0;
}

/* dist: how many channels this TaskManager produces into (each takes its
 * credits from our share; the others' segments are their producers'), and
 * of the channels from other hosts, how many are received here (*net_in:
 * their receiving halves take exchange.credits from our share). */
static int channels_from_here(struct deployment *dp, int *net_in)
{
	*net_in = 0;
	struct plan *p = &dp->job->plan;
	int n = 0;
	for (int l = 0; l < dp->nlinks; l++) {
		struct link *lk = &dp->links[l];
		int pp = p->v[lk->producer].parallelism, pc = p->v[lk->consumer].parallelism;
		for (int i = 0; i < pp; i++) {
			size_t s = (size_t)(subtask_of(dp->job, lk->producer, i) - dp->job->subtasks);
			if (dp->d->sub_tm[s] == dp->d->tm) {
				n += lk->part == PART_FORWARD ? 1 : pc;
				continue;
			}
			/* a channel from another host into here: its receiving half
			 * takes its credits from our share too */
			for (int j = 0; j < pc && dp->d->tcp && dp->d->tcp[dp->d->sub_tm[s]]; j++) {
				if (lk->part == PART_FORWARD && i != j)
					continue;
				size_t cs = (size_t)(subtask_of(dp->job, lk->consumer, j) - dp->job->subtasks);
				*net_in += dp->d->sub_tm[cs] == dp->d->tm;
			}
		}
	}
	return n;
}

/* dist: the job's share of the TaskManager's pool, bounded by what is free
 * there: the credits of every channel we produce into, plus the floating
 * reserve. */
static int take_share(struct deployment *dp)
{
	struct job *job = dp->job;
	const struct weir_config *cfg = &job->cfg;
	const struct weir_dist *d = dp->d;
	int nin, nch = channels_from_here(dp, &nin);
	if (nch + nin == 0)
		return 0; /* only consumers here: every segment they read is a producer's */
	uint64_t nsegs = (uint64_t)nch * cfg->credits + (uint64_t)nin * cfg->net_credits + cfg->floating;
	uint32_t total = d->pool->nsegs;
	if (nsegs > total)
		job->deploy_refused = true; /* it never fits: a restart would meet it again */
	int rc = nsegs > total ? -ENOBUFS : weir_pool_share(&job->pool, d->pool, (uint32_t)nsegs);
	char net[96] = "";
	if (nin)
		snprintf(net, sizeof(net), " + %d from other hosts x %u (exchange.credits)", nin, cfg->net_credits);
	if (rc == -ENOBUFS)
		return weir_err_set("the job needs %llu segments on taskmanager %u (%d channels from here x %u credits%s + "
				    "%u floating), but its pool has %u free of %u%s (taskmanager.segments)",
				    (unsigned long long)nsegs, d->tm, nch, cfg->credits, net, cfg->floating,
				    weir_pool_free_count(d->pool), total, nsegs > total ? "" : ": other jobs hold the rest");
	if (rc < 0)
		return -1;
	return 0;
}

/* calloc on whole cache lines of its own, so that what one worker writes
 * per record shares no line with what another writes (false sharing);
 * free() frees it */
static void *calloc_lines(size_t n, size_t size)
{
	size_t bytes = (n * size + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, bytes ? bytes : 64);
	if (p)
		memset(p, 0, bytes ? bytes : 64);
	return p;
}

/* The pool: local mode, every channel's credits plus the floating reserve;
 * in a cluster, a share of the TaskManager's pool. */
static int make_pool(struct deployment *dp)
{
	struct job *job = dp->job;
	const struct weir_config *cfg = &job->cfg;
	const struct weir_dist *d = dp->d;
	/* subtasks (and each one's operators, below) on cache lines of their
	 * own: workers write theirs per record (cur_op, counters), and a line
	 * shared with another worker's subtask bounces between the cores */
	job->subtasks = calloc_lines((size_t)dp->nsub, sizeof(struct subtask));
	job->chans = calloc_lines((size_t)dp->nchans + 1, sizeof(struct weir_chan));
	job->chan_side = calloc((size_t)dp->nchans + 1, 1);
	if (!job->subtasks || !job->chans || !job->chan_side)
		return weir_err_set("out of memory");
	job->nsub = dp->nsub;
	if (d)
		return take_share(dp);
	uint64_t nsegs = (uint64_t)dp->nchans * cfg->credits + cfg->floating;
	if (nsegs > WEIR_SEG_MAX_INDEX)
		return weir_err_set("the job needs %llu segments, more than a pool holds",
				    (unsigned long long)nsegs);
	char name[160];
	if (cfg->shm) {
		/* what crashed local runs left behind: files whose owner died,
		 * and their folders */
		weir_shm_sweep("weir-local-");
		/* a private folder (shm/shmfile.h) that no other user can guess
		 * the name of before it exists: "weir-local-<pid>-<random>" */
		uint32_t rnd;
		if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return weir_err_errno(errno, "getrandom");
		snprintf(dp->shm_prefix, sizeof(dp->shm_prefix), "weir-local-%d-%08x", (int)getpid(), rnd);
		snprintf(name, sizeof(name), "%s/pool", dp->shm_prefix);
		if (weir_pool_create_shm(&job->pool, name, 0, (uint32_t)nsegs, cfg->segment_size, dp->node,
					 cfg->huge_pages) < 0)
			return weir_err_wrap("segment pool");
	} else if (weir_pool_init(&job->pool, 0, (uint32_t)nsegs, cfg->segment_size, dp->node) < 0) {
		return weir_err_wrap("segment pool");
	}
	return 0;
}

/* One subtask that runs here: its operator chain, on its worker. */
static int make_subtask(struct deployment *dp, struct subtask *st, int s)
{
	struct job *job = dp->job;
	struct vertex *vx = st->v;
	const struct weir_dist *d = dp->d;
	if (d && d->sub_slot[s] >= (uint32_t)dp->nworkers)
		return weir_err_set("subtask %d is placed on slot %u of %d", s, d->sub_slot[s], dp->nworkers);
	st->task.step = weir_subtask_step;
	st->task.rank = vx->id; /* vertex ids are a topological order */
	st->job = job;
	st->unaligned = job->cfg.unaligned;
	st->max_record = job->cfg.max_record;
	st->nops = vx->nnodes;
	st->ops = calloc_lines((size_t)vx->nnodes, sizeof(struct opinst));
	if (!st->ops)
		return weir_err_set("out of memory");
	for (int k = 0; k < vx->nnodes; k++) {
		struct opinst *op = &st->ops[k];
		op->node = job->env->nodes[vx->nodes[k]];
		op->next = k + 1 < vx->nnodes ? &st->ops[k + 1] : NULL;
		op->index = k;
		ctx_init(&op->ctx, st, op, op->node->arg);
		weir_kv_init(&op->kv);
		keyed_init(&op->keyed);
		op->wm = WEIR_WATERMARK_MIN;
		op->max_ts = INT64_MIN;
		op->emitted_wm = WEIR_WATERMARK_MIN;
	}
	st->is_source = st->ops[0].node->kind == OP_SOURCE;
	st->in_wm = WEIR_WATERMARK_MIN;
	st->m_wm_in = st->m_wm_out = WEIR_WATERMARK_MIN;
	if (job->cfg.latency_interval_ms && !(st->lat_hist = calloc(WEIR_HISTO_BUCKETS, sizeof(uint64_t))))
		return weir_err_set("out of memory");
	return weir_sched_add(&job->sched, d ? (int)d->sub_slot[s] : s % dp->nworkers, &st->task);
}

static int make_subtasks(struct deployment *dp)
{
	struct plan *p = &dp->job->plan;
	int s = 0;
	for (int v = 0; v < p->nv; v++)
		for (int i = 0; i < p->v[v].parallelism; i++, s++) {
			struct subtask *st = &dp->job->subtasks[s];
			st->v = &p->v[v];
			st->index = i;
			if (dp->d && dp->d->sub_tm[s] != dp->d->tm)
				continue; /* runs on another TaskManager (a placeholder here) */
			if (make_subtask(dp, st, s) < 0)
				return -1;
		}
	return 0;
}

/* Channel c from prod to cons, if an end of it is here. */
static int make_channel(struct deployment *dp, int c, struct subtask *prod, struct subtask *cons)
{
	struct job *job = dp->job;
	const struct weir_config *cfg = &job->cfg;
	const struct weir_dist *d = dp->d;
	struct weir_chan *ch = &job->chans[c];
	char name[160];
	job->nchans = c + 1 > job->nchans ? c + 1 : job->nchans;
	if (d) {
		uint32_t ptm = d->sub_tm[prod - job->subtasks], ctm = d->sub_tm[cons - job->subtasks];
		if (ptm != d->tm && ctm != d->tm)
			return 0;
		if (ptm != ctm && d->tcp && d->tcp[ptm == d->tm ? ctm : ptm]) {
			/* across hosts: our half, joined to the other by the exchange
			 * (weir_attach_remote registers it). Sending: the exchange
			 * consumes it; receiving: it produces into it from our share,
			 * only against credits it granted (no floating) */
			bool out = ptm == d->tm;
			job->chan_side[c] = out ? CS_NET_OUT : CS_NET_IN;
			struct weir_doorbell *xdb = weir_xchg_doorbell(d->xchg);
			int rc = weir_chan_init(ch, &job->pool, out ? cfg->credits : cfg->net_credits, out ? cfg->floating : 0,
						out ? xdb : weir_sched_doorbell(&job->sched, cons->task.worker),
						out ? weir_sched_doorbell(&job->sched, prod->task.worker) : xdb);
			ch->producer_stays = !out; /* it has no floating segments to settle */
			return rc;
		}
		if (ptm != ctm) {
			job->chan_side[c] = ptm == d->tm ? CS_OUT : CS_IN;
			if (ptm != d->tm)
				return 0; /* attached once its producer made it */
			snprintf(name, sizeof(name), "%s-ch%d", d->prefix, c);
			if (weir_chan_create_shm(ch, name, &job->pool, cfg->credits, cfg->floating) < 0)
				return -1;
			ch->producer_db = weir_sched_doorbell(&job->sched, prod->task.worker);
			return 0; /* the consumer's doorbell: after `prepared` */
		}
	}
	job->chan_side[c] = CS_LOCAL;
	if (!cfg->shm)
		return weir_chan_init(ch, &job->pool, cfg->credits, cfg->floating,
				      weir_sched_doorbell(&job->sched, cons->task.worker),
				      weir_sched_doorbell(&job->sched, prod->task.worker));
	/* both ends in this process: one handle, our workers' doorbells; in a
	 * cluster under the job's prefix, so that a sweep of the cluster's
	 * files finds them after a TaskManager's crash */
	if (d)
		snprintf(name, sizeof(name), "%s-ch%d", d->prefix, c);
	else
		snprintf(name, sizeof(name), "%s/ch-%d", dp->shm_prefix, c);
	if (weir_chan_create_shm(ch, name, &job->pool, cfg->credits, cfg->floating) < 0)
		return -1;
	ch->consumer_db = weir_sched_doorbell(&job->sched, cons->task.worker);
	ch->producer_db = weir_sched_doorbell(&job->sched, prod->task.worker);
	return 0;
}

static int make_channels(struct deployment *dp)
{
	struct plan *p = &dp->job->plan;
	for (int l = 0; l < dp->nlinks; l++) {
		struct link *lk = &dp->links[l];
		int pp = p->v[lk->producer].parallelism, pc = p->v[lk->consumer].parallelism;
		for (int i = 0; i < pp; i++)
			for (int j = 0; j < pc; j++) {
				if (lk->part == PART_FORWARD && i != j)
					continue;
				if (make_channel(dp, chan_index(lk, pc, i, j), subtask_of(dp->job, lk->producer, i),
						 subtask_of(dp->job, lk->consumer, j)) < 0)
					return -1;
			}
	}
	return 0;
}

/* st's inputs from link lk (one per producer subtask; forward: one). */
static void make_inputs(struct deployment *dp, struct subtask *st, const struct link *lk)
{
	struct plan *p = &dp->job->plan;
	int pp = p->v[lk->producer].parallelism, pc = p->v[lk->consumer].parallelism;
	struct edge *e = &st->ops[0].node->in[lk->input];
	for (int i = 0; i < pp; i++) {
		if (lk->part == PART_FORWARD && i != st->index)
			continue;
		struct input *in = &st->in[st->nin++];
		in->ch = &dp->job->chans[chan_index(lk, pc, i, st->index)];
		weir_reader_init(&in->rd, in->ch, dp->job->cfg.max_record);
		in->key_fn = e->key_fn;
		in->side = e->side;
		in->edge = lk->input;
		in->keyed = lk->part == PART_HASH;
		if (in->keyed)
			weir_op_input_prefetch(&st->ops[0], &in->rd);
		in->broadcast = lk->part == PART_BROADCAST;
		in->wm = WEIR_WATERMARK_MIN;
		ctx_init(&in->keyctx, st, &st->ops[0], e->key_arg);
	}
}

/* st's output on link lk: a writer per consumer subtask (forward: one). */
static int make_output(struct deployment *dp, struct subtask *st, const struct link *lk)
{
	struct job *job = dp->job;
	struct plan *p = &job->plan;
	int pc = p->v[lk->consumer].parallelism;
	struct output *o = &st->out[st->nout];
	struct edge *e = &job->env->nodes[p->v[lk->consumer].nodes[0]]->in[lk->input];
	o->tag = e->tag;
	o->part = lk->part;
	o->key_fn = e->key_fn;
	ctx_init(&o->keyctx, st, &st->ops[st->nops - 1], e->key_arg);
	weir_kg_map_init(&o->kgmap, job->cfg.max_parallelism);
	o->nw = lk->part == PART_FORWARD ? 1 : pc;
	o->rr = (uint32_t)(st->index % o->nw);
	o->w = calloc_lines((size_t)o->nw, sizeof(struct weir_writer));
	if (!o->w)
		return weir_err_set("out of memory");
	st->nout++; /* only now: teardown walks o->w */
	for (int j = 0; j < o->nw; j++) {
		int c = chan_index(lk, pc, st->index, lk->part == PART_FORWARD ? st->index : j);
		weir_writer_init(&o->w[j], &job->chans[c]);
		o->w[j].overdraft = &st->overdraft;
		o->w[j].wait_for_segment = weir_subtask_wait_segment;
		o->w[j].waited = weir_subtask_waited;
		o->w[j].wait_arg = st;
	}
	return 0;
}

/* The inputs and outputs of every subtask here. */
static int connect_subtasks(struct deployment *dp)
{
	struct job *job = dp->job;
	struct plan *p = &job->plan;
	for (int s = 0; s < dp->nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		if (!st->ops)
			continue; /* another TaskManager's */
		int v = st->v->id, nin = 0, nout = 0;
		for (int l = 0; l < dp->nlinks; l++) {
			if (dp->links[l].consumer == v)
				nin += dp->links[l].part == PART_FORWARD ? 1 : p->v[dp->links[l].producer].parallelism;
			if (dp->links[l].producer == v)
				nout++;
		}
		st->in = calloc_lines((size_t)nin + 1, sizeof(struct input));
		st->out = calloc_lines((size_t)nout + 1, sizeof(struct output));
		if (!st->in || !st->out)
			return weir_err_set("out of memory");
		for (int l = 0; l < dp->nlinks; l++) {
			if (dp->links[l].consumer == v)
				make_inputs(dp, st, &dp->links[l]);
			if (dp->links[l].producer == v && make_output(dp, st, &dp->links[l]) < 0)
				return -1;
		}
		st->nin_open = st->nin;
	}
	return 0;
}

int weir_deploy(struct job *job, struct link **links_out, int *nlinks_out)
{
	struct deployment dp = { .job = job, .d = job->dist };
	int rc = plan_links(&dp);
	*links_out = dp.links;
	*nlinks_out = dp.nlinks;
	if (rc < 0 || make_workers(&dp) < 0 || make_pool(&dp) < 0 || make_subtasks(&dp) < 0 ||
	    make_channels(&dp) < 0 || connect_subtasks(&dp) < 0)
		return -1;
	return 0;
}

/* dist: map TaskManager tm's pool and the job's doorbells there (once). */
static int map_remote(struct job *job, uint32_t tm)
{
	const struct weir_dist *d = job->dist;
	if (job->rpools[tm].hdr)
		return 0;
	char name[160];
	weir_dist_pool_name(name, sizeof(name), d->cluster, tm);
	if (weir_pool_attach(&job->rpools[tm], name, tm) < 0)
		return -1;
	snprintf(name, sizeof(name), "%s-tm%u-db", d->prefix, tm);
	return weir_shm_open(&job->rdbs[tm], name, sizeof(struct weir_doorbell));
}

static struct weir_doorbell *remote_db(struct job *job, uint32_t tm, uint32_t slot)
{
	struct weir_shm *m = &job->rdbs[tm];
	if ((size_t)(slot + 1) * sizeof(struct weir_doorbell) > m->len)
		return NULL;
	return (struct weir_doorbell *)m->map + slot;
}

/* A channel across hosts: its name on the wire (unique per job, attempt
 * and channel among everything two exchanges carry) and the group the
 * attempt's channels leave the exchange in. */
static uint64_t net_key(const struct weir_dist *d, int c)
{
	return (d->job_id & 0xffffffu) << 40 | (uint64_t)(d->attempt & 0xffffu) << 24 | ((uint64_t)c & 0xffffffu);
}

static uint64_t net_group(const struct weir_dist *d) { return d->job_id << 16 | (d->attempt & 0xffffu); }

/* The exchange's thread: a channel of the job's can carry nothing more. */
static void net_lost(void *arg, const char *msg)
{
	weir_job_fail(arg, msg);
}

/* dist, after `prepared`: every TaskManager has created its outgoing
 * channels. Attach the incoming ones, and point every cross-process
 * channel at the other side's worker doorbell. */
int weir_attach_remote(struct job *job, const struct link *links, int nlinks)
{
	const struct weir_dist *d = job->dist;
	struct plan *p = &job->plan;
	job->rpools = calloc(256, sizeof(struct weir_pool));
	job->rdbs = calloc(256, sizeof(struct weir_shm));
	if (!job->rpools || !job->rdbs)
		return weir_err_set("out of memory");
	for (int i = 0; i < 256; i++)
		job->rdbs[i].fd = -1;
	for (int l = 0; l < nlinks; l++) {
		const struct link *lk = &links[l];
		int pp = p->v[lk->producer].parallelism, pc = p->v[lk->consumer].parallelism;
		for (int i = 0; i < pp; i++)
			for (int j = 0; j < pc; j++) {
				if (lk->part == PART_FORWARD && i != j)
					continue;
				int c = chan_index(lk, pc, i, j);
				size_t ps = (size_t)(subtask_of(job, lk->producer, i) - job->subtasks);
				size_t cs = (size_t)(subtask_of(job, lk->consumer, j) - job->subtasks);
				if (job->chan_side[c] == CS_NET_OUT || job->chan_side[c] == CS_NET_IN) {
					bool out = job->chan_side[c] == CS_NET_OUT;
					struct weir_xchg_chan xc = {
						.key = net_key(d, c), .group = net_group(d),
						.peer = out ? d->sub_tm[cs] : d->sub_tm[ps], .send = out,
						.ch = &job->chans[c], .credits = job->cfg.net_credits,
						.lost = net_lost, .arg = job,
					};
					if (weir_xchg_add(d->xchg, &xc, 1) < 0)
						return -1;
					job->net_added = true;
					continue;
				}
				if (job->chan_side[c] != CS_IN && job->chan_side[c] != CS_OUT)
					continue;
				uint32_t other = job->chan_side[c] == CS_IN ? d->sub_tm[ps] : d->sub_tm[cs];
				if (map_remote(job, other) < 0)
					return weir_err_wrap("taskmanager %u", other);
				struct weir_chan *ch = &job->chans[c];
				struct weir_doorbell *db;
				if (job->chan_side[c] == CS_IN) {
					char name[160];
					snprintf(name, sizeof(name), "%s-ch%d", d->prefix, c);
					if (weir_chan_attach_shm(ch, name, &job->rpools[other]) < 0)
						return -1;
					ch->consumer_db = weir_sched_doorbell(&job->sched, job->subtasks[cs].task.worker);
					db = remote_db(job, other, d->sub_slot[ps]);
					if (!db)
						return weir_err_set("taskmanager %u: no doorbell for slot %u", other, d->sub_slot[ps]);
					ch->producer_db = db;
				} else {
					db = remote_db(job, other, d->sub_slot[cs]);
					if (!db)
						return weir_err_set("taskmanager %u: no doorbell for slot %u", other, d->sub_slot[cs]);
					ch->consumer_db = db;
				}
			}
	}
	return 0;
}

/* ---- teardown ----------------------------------------------------------- */

/* Close what never finished, with its output going nowhere, so that user
 * code can free what it holds. */
void weir_close_all(struct job *job)
{
	for (int s = 0; s < job->nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		st->discarding = true;
		for (int k = 0; st->ops && k < st->nops; k++)
			weir_op_close(st, &st->ops[k]);
	}
}

bool weir_release_remote(struct job *job, uint64_t timeout_ns)
{
	if (!job->dist || !job->chan_side)
		return true;
	/* the channels across hosts first: once the exchange lets go of them
	 * (nothing of theirs in flight in the kernel), they are ours alone and
	 * go back to the pool like the channels inside this process */
	if (job->net_added) {
		weir_xchg_remove(job->dist->xchg, net_group(job->dist));
		job->net_added = false;
	}
	/* ours first: every TaskManager lets go of what it reads before it
	 * waits for its own consumers, so no two wait for each other */
	for (int s = 0; s < job->nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		for (int i = 0; i < st->nin; i++)
			if (job->chan_side[st->in[i].ch - job->chans] == CS_IN)
				weir_reader_release(&st->in[i].rd);
	}
	for (int c = 0; c < job->nchans; c++)
		if (job->chan_side[c] == CS_IN)
			weir_chan_release(&job->chans[c]);
	/* no consumer attaches from now on (one deploying late is refused) */
	for (int c = 0; c < job->nchans; c++)
		if (job->chan_side[c] == CS_OUT)
			weir_chan_seal(&job->chans[c]);
	uint64_t until = weir_now_ns() + timeout_ns;
	for (int c = 0; c < job->nchans; c++) {
		if (job->chan_side[c] != CS_OUT)
			continue;
		/* the consumer's lock byte goes when its TaskManager releases the
		 * channel (after its own decision) or dies: a bounded poll, as the
		 * kernel offers no wait with a timeout on it */
		while (weir_chan_consumer_holds(&job->chans[c])) {
			if (weir_now_ns() >= until) {
				weir_log(WEIR_LOG_WARN, "job %s: the consumer of channel %d did not let go in %llu ms: "
					 "this job's segments stay out of the pool until the taskmanager restarts",
					 job->dist->prefix, c, (unsigned long long)(timeout_ns / 1000000u));
				job->keep_share = true;
				return false;
			}
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	return true;
}

/* Give every segment back to the pool: readers, writers, channels. Returns
 * how many are missing, which is a bug in ownership. */
int weir_release_data(struct job *job)
{
	for (int s = 0; s < job->nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		for (int i = 0; i < st->nin; i++)
			weir_reader_release(&st->in[i].rd);
		for (int i = 0; i < st->nout; i++)
			for (int k = 0; k < st->out[i].nw; k++)
				weir_writer_discard(&st->out[i].w[k]);
	}
	for (int c = 0; c < job->nchans; c++)
		weir_chan_release(&job->chans[c]);
	if (!job->pool.hdr)
		return 0;
	return (int)weir_pool_missing(&job->pool); /* a share: of what it took */
}

/* Commit every sink; if one fails, abort all of them, the committed ones
 * included (abort takes back a commit), so that a failed job never leaves
 * output that looks complete. Returns whether the job succeeded. */
bool weir_finish_sinks(struct job *job, bool success)
{
	for (int s = 0; s < job->nsub && success; s++) {
		struct subtask *st = &job->subtasks[s];
		for (int k = 0; st->ops && k < st->nops && success; k++) {
			struct opinst *op = &st->ops[k];
			if (!op->opened || !op->node->hooks.commit)
				continue;
			if (weir_failpoint("job.commit") < 0 || op->node->hooks.commit(&op->ctx) < 0) {
				char msg[1024];
				snprintf(msg, sizeof(msg), "operator '%s' (subtask %d/%d): commit: %s", op->node->name,
					 st->index + 1, st->v->parallelism, weir_err_msg());
				weir_job_fail(job, msg);
				success = false;
			}
		}
	}
	for (int s = 0; s < job->nsub && !success; s++) {
		struct subtask *st = &job->subtasks[s];
		for (int k = 0; st->ops && k < st->nops; k++) {
			struct opinst *op = &st->ops[k];
			if (op->opened && op->node->hooks.abort)
				op->node->hooks.abort(&op->ctx);
		}
	}
	return success;
}

void weir_release_rest(struct job *job)
{
	for (int s = 0; s < job->nsub; s++) {
		struct subtask *st = &job->subtasks[s];
		for (int i = 0; i < st->nout; i++)
			free(st->out[i].w);
		ck_cow_free(st); /* a snapshot the subtask never finished */
		snap_free(&st->replay);
		for (int i = 0; st->in && i < st->nin; i++)
			snap_free(&st->in[i].pend);
		for (int k = 0; st->ops && k < st->nops; k++) {
			struct opinst *op = &st->ops[k];
			if (op->opened && op->node->hooks.release)
				op->node->hooks.release(&op->ctx);
			weir_kv_release(&op->kv);
			keyed_release(&op->keyed);
			free(op->scratch);
		}
		free(st->ops);
		free(st->lat_hist);
		free(st->in);
		free(st->out);
		free(st->restore);
	}
	if (job->keep_share)
		weir_pool_abandon(&job->pool);
	else
		weir_pool_release(&job->pool);
	for (int i = 0; job->rpools && i < 256; i++) {
		if (job->rpools[i].hdr)
			weir_pool_release(&job->rpools[i]);
		if (job->rdbs[i].map)
			weir_shm_close(&job->rdbs[i]);
	}
	free(job->rpools);
	free(job->rdbs);
	if (job->dbs.map)
		weir_shm_close(&job->dbs);
	free(job->chan_side);
	free(job->subtasks);
	free(job->chans);
	weir_sched_release(&job->sched);
	weir_plan_release(&job->plan);
	pthread_mutex_destroy(&job->lock);
}

