/*
 * engine/connectors/file_sink.c - weir_sink_file, a sink with two phases
 * written on the public connector API (weir/connector.h), as a connector
 * author would write one.
 *
 * Each subtask writes `.part-<i>-<token>.inprogress` in the folder (token:
 * random, per run of the subtask). Without checkpoints, prepare at the
 * job's success names it, commit renames it to `part-<i>` (after fsync),
 * abort unlinks it (and the part, when another sink's commit failed after
 * ours). A reader of the folder thus sees finished parts or nothing.
 *
 * With checkpoints, output is committed per checkpoint: prepare(n) fsyncs
 * the in-progress file and renames it `.part-<i>-<n>-<token>.pending` (its
 * committable names it), and commit renames it `part-<i>-<n>`. A restore
 * commits again what its checkpoint holds (harmless when done already),
 * and recover deletes every other pending and in-progress file of the
 * subtask, and parts of later checkpoints: output after the checkpoint is
 * written again by the restored job, never twice.
 *
 * The token fences off an earlier attempt that still runs: a TaskManager
 * cut off from the cluster (its link down, no FIN) keeps writing until it
 * notices, while the restarted attempt writes the same subtask's part in
 * the same (shared) folder. With the token, whatever the zombie writes or
 * renames is its own and is never in a checkpoint, so never published
 * (the next recover removes it).
 */
#include "connectors/internal.h"
#include "operators/chain.h"
#include "state/snapshot.h"
#include "base/err.h"
#include "base/clock.h"
#include "base/safedir.h"

#include <weir/connector.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct file_sink {
	char *dir;
};

struct part_writer {
	int fd;
	int index;
	bool committed;		/* without checkpoints: part-<i> is ours */
	uint64_t written;	/* bytes in the in-progress file */
	char tmp[4096];
	char final[4096];
	char token[12];		/* this run's: in its in-progress and pending names */
	char *buf;
	size_t used, cap;
};

/* A committable: the file to publish. kind PENDING: .part-<index>-<id>-
 * <token>.pending -> part-<index>-<id>; kind END (no checkpoints): the
 * in-progress file -> part-<index>. */
enum { FC_PENDING = 1, FC_END = 2 };
#define FC_MAGIC 0x31435346u /* "FSC1" */
struct fcommit {
	uint32_t magic, kind, index, pad;
	uint64_t id;
	char token[16];
};

static void file_sink_free(void *arg)
{
	struct file_sink *fs = arg;
	free(fs->dir);
	free(fs);
}

static void fsync_path(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

/* part-<i>-<id>, or its pending name: .part-<i>-<id>-<token>.pending (an
 * empty token: .part-<i>-<id>.pending, as snapshots before tokens name it) */
static void sink_name(const struct file_sink *fs, int i, uint64_t id, const char *token, bool pending, char *out,
		      size_t n)
{
	if (!pending)
		snprintf(out, n, "%s/part-%d-%llu", fs->dir, i, (unsigned long long)id);
	else if (token && *token)
		snprintf(out, n, "%s/.part-%d-%llu-%s.pending", fs->dir, i, (unsigned long long)id, token);
	else
		snprintf(out, n, "%s/.part-%d-%llu.pending", fs->dir, i, (unsigned long long)id);
}

static int part_flush(weir_ctx *ctx, struct part_writer *w)
{
	size_t off = 0;
	while (off < w->used) {
		ssize_t n = write(w->fd, w->buf + off, w->used - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return weir_fail(ctx, "write '%s': %s", w->tmp, strerror(errno));
		off += (size_t)n;
	}
	w->written += w->used;
	w->used = 0;
	return 0;
}

static int file_sink_open(weir_ctx *ctx)
{
	struct file_sink *fs = weir_ctx_arg(ctx);
	struct part_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return weir_fail(ctx, "out of memory");
	w->fd = -1;
	weir_ctx_set_state(ctx, w);
	w->cap = 256 * 1024;
	if (!(w->buf = malloc(w->cap)))
		return weir_fail(ctx, "out of memory");
	/* the user's own folder, which nobody else can plant names in
	 * (base/safedir.h); its files are still never reached through a link */
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", fs->dir);
	if (weir_safedir_check(dir, sizeof(dir), WEIR_SAFEDIR_CREATE, "output folder") < 0)
		return weir_fail(ctx, "%s", weir_err_msg());
	int i = weir_ctx_subtask(ctx);
	w->index = i;
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)weir_real_now_ns() ^ (uint32_t)getpid();
	snprintf(w->token, sizeof(w->token), "%08x", r);
	snprintf(w->tmp, sizeof(w->tmp), "%s/.part-%d-%s.inprogress", dir, i, w->token);
	snprintf(w->final, sizeof(w->final), "%s/part-%d", dir, i);
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (w->fd < 0)
		return weir_fail(ctx, "create '%s': %s", w->tmp, strerror(errno));
	return 0;
}

static int file_sink_write(weir_ctx *ctx, const weir_rec *in)
{
	struct part_writer *w = weir_ctx_state(ctx);
	if (w->cap - w->used < (size_t)in->len + 1) {
		if (part_flush(ctx, w) < 0)
			return -1;
		if (w->cap < (size_t)in->len + 1) {
			/* a record larger than the buffer goes straight out */
			struct part_writer big = *w;
			big.buf = (char *)in->data;
			big.used = in->len;
			if (part_flush(ctx, &big) < 0)
				return -1;
			w->written = big.written;
			w->buf[w->used++] = '\n';
			return 0;
		}
	}
	memcpy(w->buf + w->used, in->data, in->len);
	w->used += in->len;
	w->buf[w->used++] = '\n';
	return 0;
}

/* Closed at the end of the input (everything durable: the last prepare
 * renames it), or when the run fails (then the in-progress file goes:
 * nothing in it will be committed). Frees the writer only when failing:
 * otherwise prepare, commit or abort may still come. */
static int file_sink_close(weir_ctx *ctx)
{
	struct part_writer *w = weir_ctx_state(ctx);
	if (!w)
		return 0;
	if (weir_ctx_failing(ctx)) {
		if (w->fd >= 0)
			close(w->fd);
		w->fd = -1;
		if (!w->committed)
			unlink(w->tmp);
		return 0;
	}
	if (w->fd < 0)
		return 0;
	if (part_flush(ctx, w) < 0)
		return -1;
	if (fsync(w->fd) < 0)
		return weir_fail(ctx, "fsync '%s': %s", w->tmp, strerror(errno));
	int fd = w->fd;
	w->fd = -1;
	if (close(fd) < 0)
		return weir_fail(ctx, "close '%s': %s", w->tmp, strerror(errno));
	return 0;
}

static int add_commit(weir_ctx *ctx, const struct part_writer *w, uint32_t kind, uint64_t id)
{
	struct fcommit c = { .magic = FC_MAGIC, .kind = kind, .index = (uint32_t)w->index, .id = id };
	snprintf(c.token, sizeof(c.token), "%s", w->token);
	return weir_committable_add(ctx, &c, sizeof(c));
}

/* Checkpoint id (with checkpoints): the in-progress file, when it holds
 * anything, becomes the pending file of id, durably; a new in-progress
 * file follows while the subtask runs. The end of a job without them
 * (id 0): the in-progress file is what commit publishes. */
static int file_sink_prepare(weir_ctx *ctx, uint64_t id)
{
	struct file_sink *fs = weir_ctx_arg(ctx);
	struct part_writer *w = weir_ctx_state(ctx);
	if (!weir_ctx_checkpointing(ctx))
		return add_commit(ctx, w, FC_END, 0);
	if (w->used && part_flush(ctx, w) < 0)
		return -1;
	if (!w->written) {
		if (w->fd < 0)
			unlink(w->tmp); /* the end, with nothing since the last checkpoint */
		return 0;
	}
	if (w->fd >= 0 && fsync(w->fd) < 0)
		return weir_fail(ctx, "fsync '%s': %s", w->tmp, strerror(errno));
	char to[4200];
	sink_name(fs, w->index, id, w->token, true, to, sizeof(to));
	if (rename(w->tmp, to) < 0)
		return weir_fail(ctx, "pre-commit '%s': %s", w->tmp, strerror(errno));
	fsync_path(fs->dir); /* the pending name durable before the checkpoint that lists it */
	w->written = 0;
	if (add_commit(ctx, w, FC_PENDING, id) < 0)
		return -1;
	if (w->fd >= 0) { /* still running: a fresh in-progress file */
		close(w->fd);
		w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (w->fd < 0)
			return weir_fail(ctx, "create '%s': %s", w->tmp, strerror(errno));
	}
	return 0;
}

/* Publish a pending file; done already is fine (a restore repeats the
 * commits its checkpoint covers). */
static int commit_pending(weir_ctx *ctx, const struct file_sink *fs, int i, uint64_t id, const char *token)
{
	char from[4200], to[4200];
	sink_name(fs, i, id, token, true, from, sizeof(from));
	sink_name(fs, i, id, NULL, false, to, sizeof(to));
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	int e = errno;
	if (e == ENOENT && access(to, F_OK) == 0)
		return 0; /* committed before */
	/* both names exist: a part of this checkpoint id was published by
	 * another run; never overwrite or drop either */
	return weir_fail(ctx, "commit '%s' as '%s': %s", from, to, strerror(e));
}

static bool fcommit_get(const void *p, uint32_t len, struct fcommit *c)
{
	if (len != sizeof(*c))
		return false;
	memcpy(c, p, sizeof(*c));
	c->token[sizeof(c->token) - 1] = '\0';
	size_t tl = strlen(c->token);
	return c->magic == FC_MAGIC && (c->kind == FC_PENDING || c->kind == FC_END) && c->index < 1u << 20 &&
	       strspn(c->token, "0123456789abcdef") == tl;
}

static int file_sink_commit(weir_ctx *ctx, const void *p, uint32_t len)
{
	struct file_sink *fs = weir_ctx_arg(ctx);
	struct part_writer *w = weir_ctx_state(ctx);
	struct fcommit c;
	if (!fcommit_get(p, len, &c))
		return weir_fail(ctx, "file sink: a malformed committable");
	if (c.kind == FC_PENDING) {
		if (commit_pending(ctx, fs, (int)c.index, c.id, c.token) < 0)
			return -1;
		fsync_path(fs->dir);
		return 0;
	}
	/* the end of a job without checkpoints: never replace a part file
	 * someone put there since the job was built (the abort would then
	 * delete theirs) */
	if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, w->final, RENAME_NOREPLACE) < 0)
		return weir_fail(ctx, "rename '%s' to '%s': %s", w->tmp, w->final, strerror(errno));
	w->committed = true;
	fsync_path(fs->dir); /* make the rename itself durable */
	return 0;
}

/* Without checkpoints, the job failed: the in-progress file goes, and the
 * part when we published it (the folder held no part files when the job
 * started, so it is ours). */
static int file_sink_abort(weir_ctx *ctx, const void *p, uint32_t len)
{
	struct part_writer *w = weir_ctx_state(ctx);
	(void)p, (void)len;
	if (!w)
		return 0;
	unlink(w->committed ? w->final : w->tmp);
	return 0;
}

/* What subtask idx's earlier runs left that no completed checkpoint
 * covers: pending and in-progress files (but this run's own), and parts
 * of checkpoints after restored_id (all of them on a fresh start, when an
 * older checkpoint is restored because a newer one was damaged or one was
 * named). The restored job writes all of it again, so it goes. */
static int file_sink_recover(weir_ctx *ctx, uint64_t restored_id, int idx)
{
	struct file_sink *fs = weir_ctx_arg(ctx);
	const struct part_writer *own = weir_ctx_state(ctx); /* opened already: its file stays */
	DIR *d = opendir(fs->dir);
	if (!d)
		return weir_fail(ctx, "output folder '%s': %s", fs->dir, strerror(errno));
	char pending[32], part[32], path[4400];
	int pl = snprintf(pending, sizeof(pending), ".part-%d-", idx);
	int ql = snprintf(part, sizeof(part), "part-%d-", idx);
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		char *end;
		bool drop = !strncmp(e->d_name, pending, (size_t)pl) && l > 8 && !strcmp(e->d_name + l - 8, ".pending");
		if (!strncmp(e->d_name, pending, (size_t)pl) && l > 11 && !strcmp(e->d_name + l - 11, ".inprogress") &&
		    !(own && strstr(e->d_name, own->token)))
			drop = true;
		if (!strncmp(e->d_name, part, (size_t)ql) && e->d_name[ql] >= '0' && e->d_name[ql] <= '9') {
			unsigned long long pid = strtoull(e->d_name + ql, &end, 10);
			drop |= !*end && pid > restored_id;
		}
		if (drop) {
			snprintf(path, sizeof(path), "%s/%s", fs->dir, e->d_name);
			unlink(path);
		}
	}
	closedir(d);
	fsync_path(fs->dir);
	return 0;
}

/* Snapshots of the file sink from before the connector API, still read:
 * [u32 "WFS2"][u32 token length][token][u32 n][u64 pending id] x n, or
 * before tokens [u32 n][u64 id] x n. What they list is committed, as the
 * committer would. */
#define LEGACY_MAGIC 0x32534657u /* "WFS2" */
static int file_sink_legacy(weir_ctx *ctx, const void *p, size_t n)
{
	struct file_sink *fs = weir_ctx_arg(ctx);
	int idx = (int)ctx->st->restore_index;
	struct snapreader sr;
	snapreader_init(&sr, p, n);
	uint32_t np = snap_get_u32(&sr);
	char token[12] = "";
	if (np == LEGACY_MAGIC) {
		uint32_t tl = snap_get_u32(&sr);
		const void *t = tl < sizeof(token) ? snap_take(&sr, tl) : NULL;
		if (!t)
			return weir_err_set("file sink: a malformed snapshot");
		memcpy(token, t, tl);
		token[tl] = '\0';
		if (strspn(token, "0123456789abcdef") != tl)
			return weir_err_set("file sink: a malformed snapshot");
		np = snap_get_u32(&sr);
	}
	for (uint32_t k = 0; k < np && !sr.bad; k++) {
		uint64_t pid = snap_get_u64(&sr);
		if (!sr.bad && commit_pending(ctx, fs, idx, pid, token) < 0)
			return -1;
	}
	if (sr.bad || sr.off != n)
		return weir_err_set("file sink: a malformed snapshot");
	return 0;
}

/* A new run never mixes its output with parts already there; a restored
 * one finds its own committed parts there, by design. */
static int file_sink_check(void *arg, bool restoring)
{
	const struct file_sink *fs = arg;
	DIR *d = opendir(fs->dir);
	if (!d)
		return errno == ENOENT ? 0 : weir_check_fail("file sink: output folder '%s': %s", fs->dir, strerror(errno));
	struct dirent *de;
	bool parts = false;
	while ((de = readdir(d)))
		parts |= !strncmp(de->d_name, "part-", 5);
	closedir(d);
	if (parts && !restoring)
		return weir_check_fail("file sink: '%s' already holds part files; remove them or choose another folder",
				       fs->dir);
	return 0;
}


/* The last call: the writer goes. */
static void file_sink_release(weir_ctx *ctx)
{
	struct part_writer *w = weir_ctx_state(ctx);
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	free(w);
	weir_ctx_set_state(ctx, NULL);
}

static const weir_sink_impl file_sink_impl = {
	.open = file_sink_open,
	.write = file_sink_write,
	.prepare = file_sink_prepare,
	.commit = file_sink_commit,
	.abort = file_sink_abort,
	.recover = file_sink_recover,
	.close = file_sink_close,
	.check = file_sink_check,
	.release = file_sink_release,
	.free_arg = file_sink_free,
};

weir_stream *weir_sink_file(weir_stream *in, const char *dir)
{
	if (!in)
		return NULL;
	weir_env *env = in->env;
	if (!dir || !*dir)
		return weir_env_error(env, "file sink: no output folder given"), NULL;
	struct stat st;
	if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return weir_env_error(env, "file sink: '%s' exists and is not a folder", dir), NULL;
	if (stat(dir, &st) < 0 && errno != ENOENT)
		return weir_env_error(env, "file sink: output folder '%s': %s", dir, strerror(errno)), NULL;
	for (int i = 0; i < env->nnodes; i++) {
		struct node *o = env->nodes[i];
		if (o->kind == OP_SINK && o->sink2 && o->sink2->write == file_sink_write &&
		    !strcmp(((struct file_sink *)o->sink2_arg)->dir, dir))
			return weir_env_error(env, "file sink: two sinks write to '%s'", dir), NULL;
	}
	struct file_sink *fs = calloc(1, sizeof(*fs));
	if (!fs || !(fs->dir = strdup(dir))) {
		free(fs);
		return weir_env_error(env, "out of memory"), NULL;
	}
	char name[WEIR_NAME_MAX];
	weir_unique_name(env, "file-sink", name, sizeof(name));
	weir_stream *s = weir_sink_two_phase(in, name, &file_sink_impl, fs);
	if (s)
		env->nodes[env->nnodes - 1]->sink2_legacy = file_sink_legacy;
	return s;
}
