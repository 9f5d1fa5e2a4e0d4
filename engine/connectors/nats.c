/*
 * engine/connectors/nats.c - NATS JetStream in and out (weir/nats.h), on
 * the public connector API (weir/connector.h) and libnats.
 *
 * Each subtask has its own connection, without reconnects: a connection
 * lost fails the subtask, and the job restarts from its checkpoint rather
 * than hang or skip. libnats reads on threads of its own; the worker only
 * takes what arrived (natsSubscription_NextMsg with timeout 0) and never
 * waits on the network but in the sink's commit, which waits for the
 * stream's acknowledgements (bounded by timeout_ms).
 *
 * Source positions: the stream sequence of the last message emitted from
 * the split (its subject), 8 bytes; a split resumes with an ordered
 * consumer from the next sequence.
 *
 * Sink staging (with checkpoints): `<checkpoint folder>/nats-sink/<name>-
 * <subtask>-<token>-<id>.staged`, [u32 length][bytes] per record, fsync'ed
 * and renamed into place before the checkpoint completes; its committable
 * names the file and the message-id prefix `<token>-<subtask>-<id>`, the
 * n-th record published with id `<prefix>-<n>`. The token is random per run
 * of the subtask, so two runs never share ids.
 */
#include "connectors/internal.h"
#include "operators/chain.h"
#include "base/err.h"

#include <weir/connector.h>
#include <weir/nats.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct nconf {
	char *url, *user, *password, *token, *creds;
	int64_t timeout_ms;
	char *stream;		/* source */
	char **subjects;	/* source: NULL-terminated, or NULL */
	weir_timestamp_fn ts_fn;
	char *subject;		/* sink */
	char name[WEIR_NAME_MAX];
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void nconf_free(void *arg)
{
	struct nconf *c = arg;
	if (!c)
		return;
	free(c->url);
	free(c->user);
	free(c->password);
	free(c->token);
	free(c->creds);
	free(c->stream);
	for (char **s = c->subjects; s && *s; s++)
		free(*s);
	free(c->subjects);
	free(c->subject);
	free(c);
}

static struct nconf *nconf_new(weir_env *env, const weir_nats_conf *conf, const char *what)
{
	if (!conf || !conf->url || !*conf->url)
		return weir_env_error(env, "%s: no server url", what), NULL;
	struct nconf *c = calloc(1, sizeof(*c));
	if (!c || !(c->url = strdup(conf->url))) {
		free(c);
		return weir_env_error(env, "out of memory"), NULL;
	}
	c->user = dup_or_null(conf->user);
	c->password = dup_or_null(conf->password);
	c->token = dup_or_null(conf->token);
	c->creds = dup_or_null(conf->creds_file);
	c->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 5000;
	return c;
}

/* libnats's words for what went wrong last on this thread */
static const char *nats_why(natsStatus s)
{
	natsStatus ls;
	const char *t = nats_GetLastError(&ls);
	return t && *t ? t : natsStatus_GetText(s);
}

/* A connection (no reconnects) and its JetStream context. */
static int nconnect(weir_ctx *ctx, const struct nconf *c, const char *what, natsConnection **nc, jsCtx **js)
{
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetURL(o, c->url);
	if (s == NATS_OK && (c->user || c->password))
		s = natsOptions_SetUserInfo(o, c->user, c->password);
	if (s == NATS_OK && c->token)
		s = natsOptions_SetToken(o, c->token);
	if (s == NATS_OK && c->creds)
		s = natsOptions_SetUserCredentialsFromFiles(o, c->creds, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, c->timeout_ms);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(o, false);
	if (s == NATS_OK)
		s = natsConnection_Connect(nc, o);
	natsOptions_Destroy(o);
	if (s != NATS_OK)
		return weir_fail(ctx, "%s: cannot connect to %s: %s", what, c->url, nats_why(s));
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = c->timeout_ms;
	s = natsConnection_JetStream(js, *nc, &jo);
	if (s != NATS_OK)
		return weir_fail(ctx, "%s: JetStream on %s: %s", what, c->url, nats_why(s));
	return 0;
}

static int nlost(weir_ctx *ctx, natsConnection *nc, const struct nconf *c, const char *what)
{
	if (natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED)
		return 0;
	return weir_fail(ctx, "%s: lost the connection to %s", what, c->url);
}

/* ==== the source ==== */

struct nsrc {
	natsConnection *nc;
	jsCtx *js;
};

struct nsplit {
	char subject[WEIR_SPLIT_ID_MAX + 1];
	natsSubscription *sub;
	uint64_t seq;		/* the last emitted */
};

static int src_open(weir_ctx *ctx)
{
	struct nsrc *r = calloc(1, sizeof(*r));
	if (!r)
		return weir_fail(ctx, "out of memory");
	weir_ctx_set_state(ctx, r);
	return nconnect(ctx, weir_ctx_arg(ctx), "nats source", &r->nc, &r->js);
}

static int src_discover(weir_ctx *ctx)
{
	const struct nconf *c = weir_ctx_arg(ctx);
	struct nsrc *r = weir_ctx_state(ctx);
	if (c->subjects) {
		int64_t i = 0;
		for (char **s = c->subjects; *s; s++, i++)
			if (weir_split_found(ctx, *s, i, *s, (uint32_t)strlen(*s)) < 0)
				return -1;
		return 0;
	}
	jsStreamInfo *si = NULL;
	jsErrCode je = 0;
	natsStatus s = js_GetStreamInfo(&si, r->js, c->stream, NULL, &je);
	if (s != NATS_OK)
		return weir_fail(ctx, "nats source: stream '%s' on %s: %s", c->stream, c->url,
				 je == JSStreamNotFoundErr ? "no such stream" : nats_why(s));
	int rc = 0;
	for (int i = 0; rc == 0 && si->Config && i < si->Config->SubjectsLen; i++)
		rc = weir_split_found(ctx, si->Config->Subjects[i], i, si->Config->Subjects[i],
				      (uint32_t)strlen(si->Config->Subjects[i]));
	jsStreamInfo_Destroy(si);
	return rc;
}

static int src_add(weir_ctx *ctx, weir_split *sp, const void *pos, uint32_t len)
{
	const struct nconf *c = weir_ctx_arg(ctx);
	struct nsrc *r = weir_ctx_state(ctx);
	struct nsplit *p = calloc(1, sizeof(*p));
	if (!p)
		return weir_fail(ctx, "out of memory");
	weir_split_set_data(sp, p);
	uint32_t dl;
	const char *subj = weir_split_desc(sp, &dl);
	memcpy(p->subject, subj, dl < WEIR_SPLIT_ID_MAX ? dl : WEIR_SPLIT_ID_MAX);
	if (pos && len == 8)
		memcpy(&p->seq, pos, 8);
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = c->stream;
	so.Ordered = true;
	if (p->seq) {
		so.Config.DeliverPolicy = js_DeliverByStartSequence;
		so.Config.OptStartSeq = p->seq + 1;
	} else {
		so.Config.DeliverPolicy = js_DeliverAll;
	}
	jsErrCode je = 0;
	natsStatus s = js_SubscribeSync(&p->sub, r->js, p->subject, NULL, &so, &je);
	if (s != NATS_OK)
		return weir_fail(ctx, "nats source: subject '%s' of stream '%s': %s", p->subject, c->stream,
				 je == JSStreamNotFoundErr ? "no such stream" : nats_why(s));
	return 0;
}

static int src_poll(weir_ctx *ctx)
{
	const struct nconf *c = weir_ctx_arg(ctx);
	struct nsrc *r = weir_ctx_state(ctx);
	if (nlost(ctx, r->nc, c, "nats source") < 0)
		return -1;
	weir_split **v;
	int n = weir_splits_held(ctx, &v);
	uint32_t budget = weir_ctx_batch(ctx), got = 0;
	for (int i = 0; i < n && got < budget; i++) {
		struct nsplit *p = weir_split_data(v[i]);
		while (p && p->sub && got < budget) {
			natsMsg *m = NULL;
			natsStatus s = natsSubscription_NextMsg(&m, p->sub, 0);
			if (s == NATS_TIMEOUT)
				break;
			if (s != NATS_OK)
				return weir_fail(ctx, "nats source: subject '%s': %s", p->subject, nats_why(s));
			jsMsgMetaData *md = NULL;
			if (natsMsg_GetMetaData(&md, m) != NATS_OK) {
				natsMsg_Destroy(m);
				continue; /* not a stream message (a status): the ordered consumer's business */
			}
			uint64_t seq = md->Sequence.Stream;
			int64_t ts = md->Timestamp / 1000000;
			jsMsgMetaData_Destroy(md);
			if (seq <= p->seq) { /* a redelivery after the consumer was recreated */
				natsMsg_Destroy(m);
				continue;
			}
			weir_rec rec = { .data = natsMsg_GetData(m), .len = (uint32_t)natsMsg_GetDataLength(m), .ts = ts };
			if (c->ts_fn)
				rec.ts = c->ts_fn(ctx, &rec);
			int rc = weir_emit_split(ctx, v[i], rec.data, rec.len, rec.ts);
			natsMsg_Destroy(m);
			if (rc < 0)
				return -1;
			p->seq = seq;
			got++;
		}
	}
	if (got)
		return WEIR_SOURCE_MORE;
	weir_ctx_idle_until(ctx, weir_ctx_now_ns(ctx) + 1000000u);
	return WEIR_SOURCE_IDLE;
}

static int src_position(weir_ctx *ctx, weir_split *s, void *pos, uint32_t cap)
{
	(void)ctx, (void)cap;
	const struct nsplit *p = weir_split_data(s);
	memcpy(pos, &p->seq, 8);
	return 8;
}

static void src_release(weir_ctx *ctx)
{
	struct nsrc *r = weir_ctx_state(ctx);
	weir_split **v;
	int n = weir_splits_held(ctx, &v);
	for (int i = 0; i < n; i++) {
		struct nsplit *p = weir_split_data(v[i]);
		if (p && p->sub)
			natsSubscription_Destroy(p->sub);
		free(p);
		weir_split_set_data(v[i], NULL);
	}
	if (!r)
		return;
	jsCtx_Destroy(r->js);
	natsConnection_Destroy(r->nc);
	free(r);
	weir_ctx_set_state(ctx, NULL);
}

weir_stream *weir_source_nats(weir_env *env, const weir_nats_conf *conf, const char *stream,
			      const char *const *subjects, weir_timestamp_fn ts_fn)
{
	if (!env)
		return NULL;
	if (!stream || !*stream)
		return weir_env_error(env, "nats source: no stream"), NULL;
	struct nconf *c = nconf_new(env, conf, "nats source");
	if (!c)
		return NULL;
	c->ts_fn = ts_fn;
	if (!(c->stream = strdup(stream)))
		goto oom;
	if (subjects) {
		int n = 0;
		while (subjects[n])
			n++;
		if (!n) {
			nconf_free(c);
			return weir_env_error(env, "nats source: an empty subject list (NULL takes the stream's)"), NULL;
		}
		if (!(c->subjects = calloc((size_t)n + 1, sizeof(char *))))
			goto oom;
		for (int i = 0; i < n; i++)
			if (!*subjects[i] || strlen(subjects[i]) > WEIR_SPLIT_ID_MAX || !(c->subjects[i] = strdup(subjects[i]))) {
				nconf_free(c);
				return weir_env_error(env, "nats source: subject %d is empty, longer than %d bytes, or "
						      "memory ran out", i, WEIR_SPLIT_ID_MAX), NULL;
			}
	}
	static const weir_source_impl impl = {
		.open = src_open,
		.discover = src_discover,
		.add_split = src_add,
		.poll = src_poll,
		.position = src_position,
		.release = src_release,
		.free_arg = nconf_free,
	};
	char name[WEIR_NAME_MAX];
	weir_unique_name(env, "nats-source", name, sizeof(name));
	return weir_source_splits(env, name, &impl, c);
oom:
	nconf_free(c);
	return weir_env_error(env, "out of memory"), NULL;
}

/* ==== the sink ==== */

struct nsink {
	natsConnection *nc;
	jsCtx *js;
	char token[12];
	uint8_t *buf;		/* [u32 len][bytes] per record since the last prepare */
	size_t used, cap;
	uint64_t count;
};

#define NC_MAGIC 0x3143534eu /* "NSC1" */
struct ncommit {
	uint32_t magic, subtask;
	uint64_t id, count;
	char token[12];
	char path[1024];	/* the staging file; "" without checkpoints (the records are in memory) */
};

static void stage_dir(weir_ctx *ctx, char *out, size_t n)
{
	snprintf(out, n, "%s/nats-sink", weir_ctx_checkpoint_dir(ctx));
}

static int sink_open(weir_ctx *ctx)
{
	const struct nconf *c = weir_ctx_arg(ctx);
	struct nsink *k = calloc(1, sizeof(*k));
	if (!k)
		return weir_fail(ctx, "out of memory");
	weir_ctx_set_state(ctx, k);
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)weir_ctx_now_ns(ctx) ^ (uint32_t)getpid();
	snprintf(k->token, sizeof(k->token), "%08x", r);
	if (weir_ctx_checkpointing(ctx)) {
		char d[4096];
		stage_dir(ctx, d, sizeof(d));
		if (mkdir(d, 0700) < 0 && errno != EEXIST)
			return weir_fail(ctx, "nats sink: staging folder '%s': %s", d, strerror(errno));
	}
	return nconnect(ctx, c, "nats sink", &k->nc, &k->js);
}

static int sink_write(weir_ctx *ctx, const weir_rec *in)
{
	struct nsink *k = weir_ctx_state(ctx);
	size_t need = k->used + 4 + in->len;
	if (need > k->cap) {
		size_t cap = k->cap ? k->cap : 65536;
		while (cap < need)
			cap *= 2;
		uint8_t *b = realloc(k->buf, cap);
		if (!b)
			return weir_fail(ctx, "out of memory");
		k->buf = b;
		k->cap = cap;
	}
	uint32_t l = in->len;
	memcpy(k->buf + k->used, &l, 4);
	if (l)
		memcpy(k->buf + k->used + 4, in->data, l);
	k->used = need;
	k->count++;
	return 0;
}

static int sink_prepare(weir_ctx *ctx, uint64_t id)
{
	const struct nconf *c = weir_ctx_arg(ctx);
	struct nsink *k = weir_ctx_state(ctx);
	struct ncommit cm = { .magic = NC_MAGIC, .subtask = (uint32_t)weir_ctx_subtask(ctx), .id = id,
			      .count = k->count };
	snprintf(cm.token, sizeof(cm.token), "%s", k->token);
	if (!k->count)
		return 0;
	if (weir_ctx_checkpointing(ctx)) {
		char d[4096], tmp[1100];
		stage_dir(ctx, d, sizeof(d));
		snprintf(cm.path, sizeof(cm.path), "%s/%s-%u-%s-%llu.staged", d, c->name, cm.subtask, k->token,
			 (unsigned long long)id);
		snprintf(tmp, sizeof(tmp), "%s.tmp", cm.path);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return weir_fail(ctx, "nats sink: stage '%s': %s", tmp, strerror(errno));
		size_t off = 0;
		while (off < k->used) {
			ssize_t w = write(fd, k->buf + off, k->used - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				close(fd);
				return weir_fail(ctx, "nats sink: write '%s': %s", tmp, strerror(errno));
			}
			off += (size_t)w;
		}
		if (fsync(fd) < 0 || close(fd) < 0)
			return weir_fail(ctx, "nats sink: fsync '%s': %s", tmp, strerror(errno));
		if (rename(tmp, cm.path) < 0)
			return weir_fail(ctx, "nats sink: stage '%s': %s", cm.path, strerror(errno));
		int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		k->used = 0;
		k->count = 0;
	}
	return weir_committable_add(ctx, &cm, sizeof(cm));
}

/* Publish the records of b[0..n) with ids <prefix>-<i>, waiting for every
 * acknowledgement: the stream drops those it has seen (a commit again). */
static int publish_all(weir_ctx *ctx, struct nsink *k, const struct nconf *c, const struct ncommit *cm,
		       const uint8_t *b, size_t n)
{
	jsPubOptions po;
	uint64_t i = 0;
	for (size_t off = 0; off < n; i++) {
		uint32_t l;
		if (n - off < 4 || (memcpy(&l, b + off, 4), n - off - 4 < l))
			return weir_fail(ctx, "nats sink: a damaged staging file '%s'", cm->path);
		char mid[64];
		snprintf(mid, sizeof(mid), "%s-%u-%llu-%llu", cm->token, cm->subtask, (unsigned long long)cm->id,
			 (unsigned long long)i);
		jsPubOptions_Init(&po);
		po.MsgId = mid;
		natsStatus s = js_PublishAsync(k->js, c->subject, b + off + 4, (int)l, &po);
		if (s != NATS_OK)
			return weir_fail(ctx, "nats sink: publish to '%s': %s", c->subject, nats_why(s));
		off += 4 + l;
	}
	jsPubOptions_Init(&po);
	po.MaxWait = c->timeout_ms;
	natsStatus s = js_PublishAsyncComplete(k->js, &po);
	if (s != NATS_OK)
		return weir_fail(ctx, "nats sink: acknowledgements from '%s': %s", c->subject, nats_why(s));
	natsMsgList pending = { 0 };
	if (js_PublishAsyncGetPendingList(&pending, k->js) == NATS_OK && pending.Count) {
		natsMsgList_Destroy(&pending);
		return weir_fail(ctx, "nats sink: messages to '%s' not acknowledged", c->subject);
	}
	return 0;
}

static int sink_commit(weir_ctx *ctx, const void *p, uint32_t len)
{
	const struct nconf *c = weir_ctx_arg(ctx);
	struct nsink *k = weir_ctx_state(ctx);
	struct ncommit cm;
	if (len != sizeof(cm))
		return weir_fail(ctx, "nats sink: a malformed committable");
	memcpy(&cm, p, sizeof(cm));
	cm.path[sizeof(cm.path) - 1] = '\0';
	cm.token[sizeof(cm.token) - 1] = '\0';
	if (cm.magic != NC_MAGIC)
		return weir_fail(ctx, "nats sink: a malformed committable");
	if (nlost(ctx, k->nc, c, "nats sink") < 0)
		return -1;
	if (!cm.path[0]) /* without checkpoints: the records in memory */
		return publish_all(ctx, k, c, &cm, k->buf, k->used);
	int fd = open(cm.path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return 0; /* committed before: its file went after its last acknowledgement */
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return weir_fail(ctx, "nats sink: staging file '%s': %s", cm.path, strerror(errno));
	}
	uint8_t *b = malloc((size_t)st.st_size + 1);
	ssize_t got = b ? read(fd, b, (size_t)st.st_size) : -1;
	close(fd);
	if (got != st.st_size) {
		free(b);
		return weir_fail(ctx, "nats sink: read '%s': %s", cm.path, got < 0 ? strerror(errno) : "short read");
	}
	int rc = publish_all(ctx, k, c, &cm, b, (size_t)st.st_size);
	free(b);
	if (rc < 0)
		return -1;
	unlink(cm.path);
	return 0;
}

/* Staging files of subtask idx that no completed checkpoint holds (those
 * it held were committed, and their files removed, before this). */
static int sink_recover(weir_ctx *ctx, uint64_t restored_id, int idx)
{
	(void)restored_id;
	const struct nconf *c = weir_ctx_arg(ctx);
	if (!weir_ctx_checkpointing(ctx))
		return 0;
	char d[4096], prefix[WEIR_NAME_MAX + 32], path[4400];
	stage_dir(ctx, d, sizeof(d));
	int pl = snprintf(prefix, sizeof(prefix), "%s-%d-", c->name, idx);
	DIR *dir = opendir(d);
	if (!dir)
		return errno == ENOENT ? 0 : weir_fail(ctx, "nats sink: staging folder '%s': %s", d, strerror(errno));
	struct dirent *e;
	while ((e = readdir(dir)))
		if (!strncmp(e->d_name, prefix, (size_t)pl)) {
			snprintf(path, sizeof(path), "%s/%s", d, e->d_name);
			unlink(path);
		}
	closedir(dir);
	return 0;
}

static void sink_release(weir_ctx *ctx)
{
	struct nsink *k = weir_ctx_state(ctx);
	if (!k)
		return;
	jsCtx_Destroy(k->js);
	natsConnection_Destroy(k->nc);
	free(k->buf);
	free(k);
	weir_ctx_set_state(ctx, NULL);
}

weir_stream *weir_sink_nats(weir_stream *in, const weir_nats_conf *conf, const char *subject)
{
	if (!in)
		return NULL;
	weir_env *env = in->env;
	if (!subject || !*subject)
		return weir_env_error(env, "nats sink: no subject"), NULL;
	struct nconf *c = nconf_new(env, conf, "nats sink");
	if (!c)
		return NULL;
	if (!(c->subject = strdup(subject))) {
		nconf_free(c);
		return weir_env_error(env, "out of memory"), NULL;
	}
	weir_unique_name(env, "nats-sink", c->name, sizeof(c->name));
	static const weir_sink_impl impl = {
		.open = sink_open,
		.write = sink_write,
		.prepare = sink_prepare,
		.commit = sink_commit,
		.recover = sink_recover,
		.release = sink_release,
		.free_arg = nconf_free,
	};
	return weir_sink_two_phase(in, c->name, &impl, c);
}
