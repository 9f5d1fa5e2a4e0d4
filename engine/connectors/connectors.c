/*
 * engine/connectors/connectors.c - built-in sources and sinks: files, sequences,
 * stdout, discard.
 *
 * They are ordinary operators written against the public API, plus the
 * engine-internal hooks (idle, commit, abort) from graph.h. Paths are
 * checked when the job is built, so a missing input or an unusable output
 * folder fails `weir local` before anything runs.
 */
#include "operators/chain.h"
#include "state/snapshot.h"
#include "base/err.h"
#include "base/log.h"
#include "base/failpoint.h"
#include "base/safedir.h"
#include "base/clock.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* "base", "base-2", ...: the first name no operator has yet. */
static void unique_name(weir_env *env, const char *base, char *out, size_t len)
{
	for (int k = 1;; k++) {
		if (k == 1)
			snprintf(out, len, "%s", base);
		else
			snprintf(out, len, "%s-%d", base, k);
		bool taken = false;
		for (int i = 0; i < env->nnodes && !taken; i++)
			taken = !strcmp(env->nodes[i]->name, out);
		if (!taken)
			return;
	}
}

/* ---- file source -------------------------------------------------------- */

struct file_source {
	char **files;
	off_t *sizes;
	int nfiles;
};

struct file_reader {
	int file;		/* index of the file being read; nfiles: done */
	int fd;
	off_t end;		/* lines starting at or after this belong to the next subtask */
	off_t buf_off;		/* file offset of buf[0] */
	bool skip_first;	/* the first partial line belongs to the previous subtask */
	bool eof;
	char *buf;
	size_t cap, lo, hi;
	/* the file as opened, to notice it shrink or be replaced under us */
	dev_t dev;
	ino_t ino;
	off_t seen;		/* its size as the job was built, as opened, or the bytes read: the most */
	bool sized;		/* false: a file whose size says nothing (0 bytes, as /proc's) */
};

static void file_source_free(void *arg)
{
	struct file_source *fs = arg;
	for (int i = 0; i < fs->nfiles; i++)
		free(fs->files[i]);
	free(fs->files);
	free(fs->sizes);
	free(fs);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_file(struct file_source *fs, const char *path, off_t size)
{
	char **f = realloc(fs->files, sizeof(char *) * (size_t)(fs->nfiles + 1));
	if (f)
		fs->files = f;
	off_t *s = realloc(fs->sizes, sizeof(off_t) * (size_t)(fs->nfiles + 1));
	if (s)
		fs->sizes = s;
	if (!f || !s || !(fs->files[fs->nfiles] = strdup(path)))
		return -1;
	fs->sizes[fs->nfiles++] = size;
	return 0;
}

/*
 * Has the file changed under us? A file that shrank (truncated: fewer
 * bytes now than it had when the job was built, when it was opened, or
 * than were read) would end the job with part of its output and exit 0;
 * one replaced at its path (renamed over, or removed and written again)
 * is not the file the job was built for. Either fails the job, naming the
 * file. Checked per read (one fstat for up to a buffer of lines, not per
 * record) and, with the path too, when a subtask is done with the file. A
 * file that grows is fine: what it holds when its last subtask reaches the
 * end is read (docs/api.md). 0, or -1 with the job failed.
 */
static int file_check(weir_ctx *ctx, struct file_reader *r, bool done)
{
	struct file_source *fs = weir_ctx_arg(ctx);
	const char *path = fs->files[r->file];
	struct stat st;
	off_t read_to = r->buf_off + (off_t)r->hi;
	if (read_to > r->seen)
		r->seen = read_to;
	if (fstat(r->fd, &st) < 0)
		return weir_fail(ctx, "stat '%s': %s", path, strerror(errno));
	if (r->sized && st.st_size < r->seen)
		return weir_fail(ctx, "'%s' shrank while it was read: %lld bytes, it had %lld (truncated?)", path,
				 (long long)st.st_size, (long long)r->seen);
	if (st.st_size > r->seen)
		r->seen = st.st_size;
	if (!done)
		return 0;
	if (stat(path, &st) < 0)
		return weir_fail(ctx, "'%s' was removed while it was read", path);
	if (st.st_dev != r->dev || st.st_ino != r->ino)
		return weir_fail(ctx, "'%s' was replaced while it was read (another file is at its path now)", path);
	return 0;
}

static int file_open_next(weir_ctx *ctx, struct file_reader *r)
{
	struct file_source *fs = weir_ctx_arg(ctx);
	int i = weir_ctx_subtask(ctx), p = weir_ctx_parallelism(ctx);
	if (r->fd >= 0 && file_check(ctx, r, true) < 0)
		return -1;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	if (++r->file >= fs->nfiles)
		return 0;
	off_t size = fs->sizes[r->file];
	off_t start = (off_t)((__int128)size * i / p);
	/* The last subtask reads to the end of the file, whatever its size
	 * now: files that grew since the job was built, /proc files of size 0. */
	r->end = i == p - 1 ? INT64_MAX : (off_t)((__int128)size * (i + 1) / p);
	r->fd = open(fs->files[r->file], O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return weir_fail(ctx, "open '%s': %s", fs->files[r->file], strerror(errno));
	struct stat st;
	if (fstat(r->fd, &st) < 0)
		return weir_fail(ctx, "stat '%s': %s", fs->files[r->file], strerror(errno));
	r->dev = st.st_dev;
	r->ino = st.st_ino;
	r->sized = size > 0 || st.st_size > 0;
	if (r->sized && st.st_size < size)
		return weir_fail(ctx, "'%s' shrank since the job was built: %lld bytes, it had %lld (truncated?)",
				 fs->files[r->file], (long long)st.st_size, (long long)size);
	r->seen = st.st_size > size ? st.st_size : size;
	/* Start one byte early: the line that byte ends belongs to the
	 * previous subtask, and is skipped; if that byte is a newline, the
	 * line at `start` is ours. */
	r->buf_off = start > 0 ? start - 1 : 0;
	r->skip_first = start > 0;
	r->eof = false;
	r->lo = r->hi = 0;
	if (lseek(r->fd, r->buf_off, SEEK_SET) < 0)
		return weir_fail(ctx, "seek '%s': %s", fs->files[r->file], strerror(errno));
	return 0;
}

static int file_source_open(weir_ctx *ctx)
{
	struct file_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return weir_fail(ctx, "out of memory");
	r->cap = 1 << 20;
	r->buf = malloc(r->cap);
	r->file = -1;
	r->fd = -1;
	weir_ctx_set_state(ctx, r);
	if (!r->buf)
		return weir_fail(ctx, "out of memory");
	return file_open_next(ctx, r);
}

static int file_source_close(weir_ctx *ctx)
{
	struct file_reader *r = weir_ctx_state(ctx);
	if (r) {
		if (r->fd >= 0)
			close(r->fd);
		free(r->buf);
		free(r);
		weir_ctx_set_state(ctx, NULL);
	}
	return 0;
}

/* Read more into the buffer, keeping the unread tail. */
static int file_fill(weir_ctx *ctx, struct file_reader *r)
{
	struct file_source *fs = weir_ctx_arg(ctx);
	if (r->lo > 0) {
		memmove(r->buf, r->buf + r->lo, r->hi - r->lo);
		r->buf_off += (off_t)r->lo;
		r->hi -= r->lo;
		r->lo = 0;
	}
	if (r->hi == r->cap) {
		char *b = realloc(r->buf, r->cap * 2);
		if (!b)
			return weir_fail(ctx, "out of memory for a line longer than %zu bytes", r->cap);
		r->buf = b;
		r->cap *= 2;
	}
	ssize_t n;
	do
		n = read(r->fd, r->buf + r->hi, r->cap - r->hi);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return weir_fail(ctx, "read '%s': %s", fs->files[r->file], strerror(errno));
	if (n == 0)
		r->eof = true;
	r->hi += (size_t)n;
	return file_check(ctx, r, false);
}

static int file_source_poll(weir_ctx *ctx)
{
	struct file_reader *r = weir_ctx_state(ctx);
	struct file_source *fs = weir_ctx_arg(ctx);
	uint32_t budget = weir_ctx_batch(ctx);
	while (budget) {
		if (r->file >= fs->nfiles)
			return WEIR_SOURCE_END;
		char *nl = memchr(r->buf + r->lo, '\n', r->hi - r->lo);
		size_t len;
		if (nl) {
			len = (size_t)(nl - (r->buf + r->lo));
		} else if (!r->eof) {
			if (r->skip_first) {
				/* bytes of the previous subtask's line: drop them
				 * instead of buffering a long line */
				r->buf_off += (off_t)r->hi;
				r->lo = r->hi = 0;
			} else if (r->hi - r->lo > ctx->st->job->cfg.max_record) {
				return weir_fail(ctx, "'%s': a line at offset %lld is longer than the maximum record "
						 "size (%u bytes)", fs->files[r->file],
						 (long long)(r->buf_off + (off_t)r->lo), ctx->st->job->cfg.max_record);
			}
			if (file_fill(ctx, r) < 0)
				return -1;
			continue;
		} else if (r->lo < r->hi) {
			len = r->hi - r->lo; /* last line, no newline */
		} else {
			if (file_open_next(ctx, r) < 0)
				return -1;
			continue;
		}
		off_t line_start = r->buf_off + (off_t)r->lo;
		const char *line = r->buf + r->lo;
		r->lo += len + (nl ? 1 : 0);
		if (r->skip_first) {
			r->skip_first = false;
			continue;
		}
		if (line_start >= r->end) {
			if (file_open_next(ctx, r) < 0)
				return -1;
			continue;
		}
		if (len > UINT32_MAX)
			return weir_fail(ctx, "'%s': a line of %zu bytes is too long", fs->files[r->file], len);
		if (weir_emit_ts(ctx, line, (uint32_t)len, WEIR_TS_NONE) < 0)
			return -1;
		budget--;
	}
	return WEIR_SOURCE_MORE;
}

/* Position: [u32 file][u32 skip_first][i64 offset of the next unread
 * byte]; after the end (closed), file = the number of files. */
static int file_source_snapshot(weir_ctx *ctx, struct snapbuf *b, uint64_t id)
{
	(void)id;
	struct file_reader *r = weir_ctx_state(ctx);
	struct file_source *fs = weir_ctx_arg(ctx);
	snap_u32(b, r ? (uint32_t)r->file : (uint32_t)fs->nfiles);
	snap_u32(b, r ? r->skip_first : 0);
	snap_i64(b, r ? (int64_t)(r->buf_off + (off_t)r->lo) : 0);
	return 0;
}

static int file_source_restore(weir_ctx *ctx, const void *p, size_t n, uint64_t id)
{
	(void)id;
	struct file_reader *r = weir_ctx_state(ctx);
	struct file_source *fs = weir_ctx_arg(ctx);
	if (!p)
		return 0;
	struct snapreader sr;
	snapreader_init(&sr, p, n);
	uint32_t file = snap_get_u32(&sr), skip = snap_get_u32(&sr);
	int64_t off = (int64_t)snap_get_u64(&sr);
	if (sr.bad || sr.off != n || file > (uint32_t)fs->nfiles || off < 0)
		return weir_err_set("file source: a malformed position");
	if (r->fd >= 0) /* the file open() began with: not read, nothing to check */
		close(r->fd);
	r->fd = -1;
	r->file = (int)file - 1; /* file_open_next moves on to `file` */
	if (file_open_next(ctx, r) < 0)
		return -1;
	if (r->fd < 0)
		return 0; /* past the last file: the source ends at once */
	/* a position past the end: the file is not the one the checkpoint read */
	if (r->sized && (off_t)off > r->seen)
		return weir_err_set("file source: '%s' is %lld bytes, shorter than the checkpoint's position %lld "
				    "(the file changed since)", fs->files[r->file], (long long)r->seen, (long long)off);
	r->buf_off = (off_t)off;
	r->skip_first = skip != 0;
	r->lo = r->hi = 0;
	r->eof = false;
	if (lseek(r->fd, r->buf_off, SEEK_SET) < 0)
		return weir_err_errno(errno, "seek '%s'", fs->files[r->file]);
	return 0;
}

weir_stream *weir_source_file(weir_env *env, const char *path)
{
	if (!env)
		return NULL;
	struct file_source *fs = calloc(1, sizeof(*fs));
	if (!fs)
		return weir_env_error(env, "out of memory"), NULL;
	struct stat st;
	if (!path || stat(path, &st) < 0) {
		weir_env_error(env, "file source: '%s': %s", path ? path : "(null)", path ? strerror(errno) : "no path");
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		if (!d) {
			weir_env_error(env, "file source: folder '%s': %s", path, strerror(errno));
			goto fail;
		}
		struct dirent *de;
		char full[4096];
		while ((de = readdir(d))) {
			struct stat fst;
			if (de->d_name[0] == '.')
				continue;
			snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
			if (stat(full, &fst) == 0 && S_ISREG(fst.st_mode) && add_file(fs, full, fst.st_size) < 0) {
				closedir(d);
				weir_env_error(env, "out of memory");
				goto fail;
			}
		}
		closedir(d);
		qsort(fs->files, (size_t)fs->nfiles, sizeof(char *), cmp_str);
		/* sizes were appended in readdir order: look them up again */
		for (int i = 0; i < fs->nfiles; i++) {
			struct stat fst;
			fs->sizes[i] = stat(fs->files[i], &fst) == 0 ? fst.st_size : 0;
		}
	} else if (S_ISREG(st.st_mode)) {
		if (add_file(fs, path, st.st_size) < 0) {
			weir_env_error(env, "out of memory");
			goto fail;
		}
	} else {
		weir_env_error(env, "file source: '%s' is neither a file nor a folder", path);
		goto fail;
	}
	for (int i = 0; i < fs->nfiles; i++) {
		int fd = open(fs->files[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			weir_env_error(env, "file source: cannot read '%s': %s", fs->files[i], strerror(errno));
			goto fail;
		}
		close(fd);
	}
	char name[WEIR_NAME_MAX];
	unique_name(env, "file-source", name, sizeof(name));
	struct node *n = weir_env_add(env, OP_SOURCE, name, NULL);
	if (!n)
		goto fail;
	n->fn.source = file_source_poll;
	n->builtin = true;
	n->arg = fs;
	n->open = file_source_open;
	n->close = file_source_close;
	n->hooks.free_arg = file_source_free;
	n->hooks.snapshot = file_source_snapshot;
	n->hooks.restore = file_source_restore;
	return weir_env_stream(env, n);
fail:
	file_source_free(fs);
	return NULL;
}

/* ---- sequence source ---------------------------------------------------- */

struct seq_conf {
	int64_t count;
	double rate;
};

struct seq_state {
	uint64_t next;
	uint64_t emitted;
	uint64_t start_ns;
};

static int seq_open(weir_ctx *ctx)
{
	struct seq_state *s = calloc(1, sizeof(*s));
	if (!s)
		return weir_fail(ctx, "out of memory");
	s->next = (uint64_t)weir_ctx_subtask(ctx);
	s->start_ns = weir_ctx_now_ns(ctx);
	weir_ctx_set_state(ctx, s);
	return 0;
}

static int seq_close(weir_ctx *ctx)
{
	free(weir_ctx_state(ctx));
	weir_ctx_set_state(ctx, NULL);
	return 0;
}

static int seq_poll(weir_ctx *ctx)
{
	const struct seq_conf *c = weir_ctx_arg(ctx);
	struct seq_state *s = weir_ctx_state(ctx);
	uint64_t step = (uint64_t)weir_ctx_parallelism(ctx);
	uint64_t budget = weir_ctx_batch(ctx);
	if (c->rate > 0) {
		/* this subtask's share of the rate */
		double per_ns = c->rate / (double)step / 1e9;
		uint64_t now = weir_ctx_now_ns(ctx);
		uint64_t due = (uint64_t)((double)(now - s->start_ns) * per_ns) + 1;
		if (s->emitted >= due) {
			weir_ctx_idle_until(ctx, s->start_ns + (uint64_t)((double)s->emitted / per_ns));
			return WEIR_SOURCE_IDLE;
		}
		if (due - s->emitted < budget)
			budget = due - s->emitted;
	}
	for (; budget; budget--) {
		if (c->count >= 0 && s->next >= (uint64_t)c->count)
			return WEIR_SOURCE_END;
		uint64_t le = htole64(s->next);
		if (weir_emit_ts(ctx, &le, sizeof(le), (int64_t)s->next) < 0)
			return -1;
		s->next += step;
		s->emitted++;
	}
	return WEIR_SOURCE_MORE;
}

/* Position: [u64 next]; after the end (closed), UINT64_MAX. */
static int seq_snapshot(weir_ctx *ctx, struct snapbuf *b, uint64_t id)
{
	(void)id;
	struct seq_state *st = weir_ctx_state(ctx);
	snap_u64(b, st ? st->next : UINT64_MAX);
	return 0;
}

static int seq_restore(weir_ctx *ctx, const void *p, size_t n, uint64_t id)
{
	(void)id;
	struct seq_state *st = weir_ctx_state(ctx);
	if (!p)
		return 0;
	struct snapreader sr;
	snapreader_init(&sr, p, n);
	uint64_t next = snap_get_u64(&sr);
	if (sr.bad || sr.off != n)
		return weir_err_set("sequence source: a malformed position");
	st->next = next;
	return 0;
}

weir_stream *weir_source_sequence(weir_env *env, int64_t count, double rate)
{
	if (!env)
		return NULL;
	/* 0 means unlimited; otherwise keep the rate where the pacing
	 * arithmetic stays exact (no inf, NaN or overflowing conversions). */
	if (!(rate == 0 || (rate >= 1e-3 && rate <= 1e12)))
		return weir_env_error(env, "sequence source: rate %g must be 0 (unlimited) or from 0.001 to 1e12 "
				      "records per second", rate), NULL;
	struct seq_conf *c = malloc(sizeof(*c));
	if (!c)
		return weir_env_error(env, "out of memory"), NULL;
	c->count = count;
	c->rate = rate;
	char name[WEIR_NAME_MAX];
	unique_name(env, "sequence", name, sizeof(name));
	struct node *n = weir_env_add(env, OP_SOURCE, name, NULL);
	if (!n) {
		free(c);
		return NULL;
	}
	n->fn.source = seq_poll;
	n->builtin = true;
	n->arg = c;
	n->open = seq_open;
	n->close = seq_close;
	n->hooks.free_arg = free;
	n->hooks.snapshot = seq_snapshot;
	n->hooks.restore = seq_restore;
	return weir_env_stream(env, n);
}

/* ---- file sink ----------------------------------------------------------- */

/*
 * Each subtask writes `.part-<i>.inprogress` in the folder; the job's
 * commit renames it to `part-<i>` (after fsync), its abort unlinks it. A
 * reader of the folder thus sees either finished parts or nothing.
 *
 * With checkpoints, output is committed per checkpoint (two-phase commit):
 * at checkpoint n's barrier the in-progress file is fsync'ed and renamed
 * `.part-<i>-<n>-<token>.pending` (pre-commit; the snapshot lists it), and
 * when n completes it becomes `part-<i>-<n>`. A restore from n commits
 * what n's snapshot lists (again, harmlessly, if that was done already)
 * and deletes every other pending and in-progress file of the subtask:
 * output after the checkpoint is written again by the restored job, never
 * twice.
 *
 * The token (random, per run of the subtask: `.part-<i>-<token>.inprogress`)
 * fences off an earlier attempt that still runs: a TaskManager cut off
 * from the cluster (its link down, no FIN) keeps writing until it notices,
 * while the restarted attempt writes the same subtask's part in the same
 * (shared) folder. Without the token both would write, and rename, the
 * same names, and the zombie's records would be published by the live
 * attempt beside their replay. With it, whatever the zombie writes or
 * renames is its own and is never listed in a snapshot, so never published
 * (the next restore removes it).
 */
struct file_sink {
	char *dir;
};

struct part_writer {
	int fd;
	bool committed;
	bool ck;		/* checkpointing: committed per checkpoint */
	int index;
	uint64_t written;	/* bytes in the in-progress file */
	uint64_t *pending;	/* pre-committed checkpoints, oldest first */
	int npending, cappending;
	char tmp[4096];
	char final[4096];
	char token[12];		/* this run's: in its in-progress and pending names */
	char *buf;
	size_t used, cap;
};

static void file_sink_free(void *arg)
{
	struct file_sink *fs = arg;
	free(fs->dir);
	free(fs);
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
	w->ck = ctx->st->job->ck_on;
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
			w->buf[w->used++] = '\n';
			return 0;
		}
	}
	memcpy(w->buf + w->used, in->data, in->len);
	w->used += in->len;
	w->buf[w->used++] = '\n';
	return 0;
}

static int file_sink_close(weir_ctx *ctx)
{
	struct part_writer *w = weir_ctx_state(ctx);
	if (!w || w->fd < 0)
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

static void sink_name(const struct file_sink *fs, int i, uint64_t id, const char *token, bool pending, char *out,
		      size_t n);
static void fsync_path(const char *dir);
static int sink_commit_one(const struct file_sink *fs, int i, uint64_t id, const char *token);

static int file_sink_commit(weir_ctx *ctx)
{
	struct part_writer *w = weir_ctx_state(ctx);
	struct file_sink *fs = weir_ctx_arg(ctx);
	if (!w)
		return 0;
	if (w->committed)
		return 0;
	if (w->ck) { /* the end: every pre-committed file, then whatever is left */
		for (int k = 0; k < w->npending; k++)
			if (sink_commit_one(fs, w->index, w->pending[k], w->token) < 0)
				return -1;
		w->npending = 0;
		if (w->written) {
			char to[4200];
			sink_name(fs, w->index, ctx->st->ck_last + 1, NULL, false, to, sizeof(to));
			if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, to, RENAME_NOREPLACE) < 0)
				return weir_err_errno(errno, "rename '%s' to '%s'", w->tmp, to);
		} else {
			unlink(w->tmp);
		}
		w->committed = true;
		fsync_path(fs->dir);
		return 0;
	}
	/* Never replace a part file someone put there since the job was built
	 * (the abort would then delete theirs). */
	if (renameat2(AT_FDCWD, w->tmp, AT_FDCWD, w->final, RENAME_NOREPLACE) < 0)
		return weir_err_errno(errno, "rename '%s' to '%s'", w->tmp, w->final);
	w->committed = true;
	/* make the rename itself durable */
	int dfd = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* ---- the file sink's two-phase commit (checkpoints) ---- */

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

static void fsync_path(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
}

/* Publish pre-committed checkpoint id's file; done already is fine (a
 * restore repeats the commits its checkpoint covers). */
static int sink_commit_one(const struct file_sink *fs, int i, uint64_t id, const char *token)
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
	return weir_err_errno(e, "commit '%s' as '%s'", from, to);
}

/* Pre-commit: the in-progress file, when it holds anything, becomes the
 * pending file of id, durably; a new in-progress file follows. */
static int sink_precommit(weir_ctx *ctx, struct part_writer *w, uint64_t id)
{
	struct file_sink *fs = weir_ctx_arg(ctx);
	if (w->used && part_flush(ctx, w) < 0)
		return -1;
	if (!w->written)
		return 0;
	if (w->fd >= 0 && fsync(w->fd) < 0)
		return weir_fail(ctx, "fsync '%s': %s", w->tmp, strerror(errno));
	char to[4200];
	sink_name(fs, w->index, id, w->token, true, to, sizeof(to));
	if (rename(w->tmp, to) < 0)
		return weir_fail(ctx, "pre-commit '%s': %s", w->tmp, strerror(errno));
	fsync_path(fs->dir); /* the pending name durable before the checkpoint that lists it */
	if (w->npending == w->cappending) {
		int cap = w->cappending ? w->cappending * 2 : 8;
		uint64_t *p = realloc(w->pending, sizeof(uint64_t) * (size_t)cap);
		if (!p)
			return weir_fail(ctx, "out of memory");
		w->pending = p;
		w->cappending = cap;
	}
	w->pending[w->npending++] = id;
	w->written = 0;
	if (w->fd >= 0) { /* still running: a fresh in-progress file */
		close(w->fd);
		w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (w->fd < 0)
			return weir_fail(ctx, "create '%s': %s", w->tmp, strerror(errno));
	}
	return 0;
}

/* [u32 SINK_SNAP_MAGIC][u32 token length][token][u32 n][u64 pending id] x n
 * (before tokens: [u32 n][u64 id] x n, still read) */
#define SINK_SNAP_MAGIC 0x32534657u /* "WFS2" */
static int file_sink_snapshot(weir_ctx *ctx, struct snapbuf *b, uint64_t id)
{
	struct part_writer *w = weir_ctx_state(ctx);
	if (weir_failpoint("sink.precommit") < 0)
		return weir_fail(ctx, "%s", weir_err_msg());
	/* id 0: the snapshot at the end, for checkpoints after the last one
	 * this subtask saw; the next one commits its file */
	if (sink_precommit(ctx, w, id ? id : ctx->st->ck_last + 1) < 0)
		return -1;
	snap_u32(b, SINK_SNAP_MAGIC);
	snap_u32(b, (uint32_t)strlen(w->token));
	snap_put(b, w->token, strlen(w->token));
	snap_u32(b, (uint32_t)w->npending);
	for (int k = 0; k < w->npending; k++)
		snap_u64(b, w->pending[k]);
	return 0;
}

static int file_sink_notify(weir_ctx *ctx, uint64_t id)
{
	struct part_writer *w = weir_ctx_state(ctx);
	struct file_sink *fs = weir_ctx_arg(ctx);
	int k = 0;
	while (k < w->npending && w->pending[k] <= id)
		k++;
	if (!k)
		return 0;
	if (weir_failpoint("sink.commit") < 0)
		return -1;
	for (int j = 0; j < k; j++)
		if (sink_commit_one(fs, w->index, w->pending[j], w->token) < 0)
			return -1;
	memmove(w->pending, w->pending + k, sizeof(uint64_t) * (size_t)(w->npending - k));
	w->npending -= k;
	fsync_path(fs->dir);
	if (weir_failpoint("sink.committed") < 0) /* published; a crash here makes a restore commit again */
		return -1;
	return 0;
}

static int file_sink_restore(weir_ctx *ctx, const void *p, size_t n, uint64_t id)
{
	struct file_sink *fs = weir_ctx_arg(ctx);
	/* the subtask that wrote the snapshot: after a rescale, another one's
	 * files may be ours to finish */
	uint32_t idx = ctx->st->restore_index;
	if (p) { /* what the checkpoint covers is published: finish its commits */
		struct snapreader sr;
		snapreader_init(&sr, p, n);
		uint32_t np = snap_get_u32(&sr);
		char token[12] = "";
		if (np == SINK_SNAP_MAGIC) {
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
			if (!sr.bad && sink_commit_one(fs, (int)idx, pid, token) < 0)
				return -1;
		}
		if (sr.bad || sr.off != n)
			return weir_err_set("file sink: a malformed snapshot");
	}
	/* everything else of this subtask's came after the checkpoint: pending
	 * files, and parts published by later checkpoints (when an older one
	 * is restored, because a newer one was damaged or one was named): the
	 * restored job writes all of it again, so it goes */
	const struct part_writer *own = weir_ctx_state(ctx); /* opened already: its file stays */
	DIR *d = opendir(fs->dir);
	if (!d)
		return weir_err_errno(errno, "output folder '%s'", fs->dir);
	char pending[32], part[32], path[4400];
	int pl = snprintf(pending, sizeof(pending), ".part-%u-", idx);
	int ql = snprintf(part, sizeof(part), "part-%u-", idx);
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		char *end;
		bool drop = !strncmp(e->d_name, pending, (size_t)pl) && l > 8 && !strcmp(e->d_name + l - 8, ".pending");
		/* and in-progress files of earlier runs (not this one's own) */
		if (!strncmp(e->d_name, pending, (size_t)pl) && l > 11 && !strcmp(e->d_name + l - 11, ".inprogress") &&
		    !(own && strstr(e->d_name, own->token)))
			drop = true;
		if (!strncmp(e->d_name, part, (size_t)ql) && e->d_name[ql] >= '0' && e->d_name[ql] <= '9') {
			unsigned long long pid = strtoull(e->d_name + ql, &end, 10);
			drop |= !*end && ((!p && !id) || pid > id); /* fresh: all of it; restored: what is newer */
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

static void part_free(weir_ctx *ctx)
{
	struct part_writer *w = weir_ctx_state(ctx);
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->buf);
	free(w->pending);
	free(w);
	weir_ctx_set_state(ctx, NULL);
}

/* Discard this part: the in-progress file, or, when another sink's commit
 * failed after this one committed, the committed file (the folder held no
 * part files when the job started, so it is ours). */
static void file_sink_abort(weir_ctx *ctx)
{
	struct part_writer *w = weir_ctx_state(ctx);
	if (!w)
		return;
	if (w->ck) {
		/* what a complete checkpoint covers is published now (its
		 * announcement may have come just before the cancel, as with a
		 * stop with a savepoint); the other pre-committed files wait for
		 * a restore to sort them */
		uint64_t done = __atomic_load_n(&ctx->st->job->ck_complete, __ATOMIC_ACQUIRE);
		if (done > ctx->st->ck_committed && file_sink_notify(ctx, done) < 0)
			weir_log(WEIR_LOG_WARN, "file sink: %s (a restore commits it)", weir_err_msg());
		unlink(w->tmp);
	}
	else if (w->committed)
		unlink(w->final);
	else if (w->tmp[0])
		unlink(w->tmp);
	part_free(ctx);
}

/* A new run never mixes its output with parts already there; a restored
 * one finds its own committed parts there, by design. */
static int file_sink_check(void *arg, bool restoring)
{
	const struct file_sink *fs = arg;
	DIR *d = opendir(fs->dir);
	if (!d)
		return errno == ENOENT ? 0 : weir_err_errno(errno, "file sink: output folder '%s'", fs->dir);
	struct dirent *de;
	bool parts = false;
	while ((de = readdir(d)))
		parts |= !strncmp(de->d_name, "part-", 5);
	closedir(d);
	if (parts && !restoring)
		return weir_err_set("file sink: '%s' already holds part files; remove them or choose another folder",
				    fs->dir);
	return 0;
}

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
		if (o->kind == OP_SINK && o->open == file_sink_open && !strcmp(((struct file_sink *)o->arg)->dir, dir))
			return weir_env_error(env, "file sink: two sinks write to '%s'", dir), NULL;
	}
	struct file_sink *fs = calloc(1, sizeof(*fs));
	if (!fs || !(fs->dir = strdup(dir))) {
		free(fs);
		return weir_env_error(env, "out of memory"), NULL;
	}
	char name[WEIR_NAME_MAX];
	unique_name(env, "file-sink", name, sizeof(name));
	struct node *n = weir_env_add(env, OP_SINK, name, in);
	if (!n) {
		file_sink_free(fs);
		return NULL;
	}
	n->fn.sink = file_sink_write;
	n->builtin = true;
	n->arg = fs;
	n->open = file_sink_open;
	n->close = file_sink_close;
	n->hooks.commit = file_sink_commit;
	n->hooks.abort = file_sink_abort;
	n->hooks.snapshot = file_sink_snapshot;
	n->hooks.restore = file_sink_restore;
	n->hooks.notify = file_sink_notify;
	n->hooks.check = file_sink_check;
	n->hooks.release = part_free;
	n->hooks.free_arg = file_sink_free;
	return weir_env_stream(env, n);
}

/* ---- stdout and discard -------------------------------------------------- */

/* Each subtask gathers its lines in a buffer of its own and hands the
 * whole buffer to stdio under one lock (so lines of parallel subtasks never
 * interleave mid-line), when it fills and whenever the subtask runs out of
 * input: no lock per record, and a lone record still leaves at once. */
#define STDOUT_BUF (64u << 10)

struct stdout_buf {
	size_t used;
	char b[STDOUT_BUF];
};

static int stdout_open(weir_ctx *ctx)
{
	struct stdout_buf *o = malloc(sizeof(*o));
	if (!o)
		return weir_fail(ctx, "out of memory");
	o->used = 0;
	weir_ctx_set_state(ctx, o);
	return 0;
}

static int stdout_drain(weir_ctx *ctx, struct stdout_buf *o, const void *extra, size_t n)
{
	flockfile(stdout);
	size_t w = fwrite_unlocked(o->b, 1, o->used, stdout);
	bool ok = w == o->used;
	if (ok && n) {
		ok = fwrite_unlocked(extra, 1, n, stdout) == n && putc_unlocked('\n', stdout) != EOF;
	}
	funlockfile(stdout);
	o->used = 0;
	return ok ? 0 : weir_fail(ctx, "write to standard output: %s", strerror(errno));
}

static int stdout_write(weir_ctx *ctx, const weir_rec *in)
{
	struct stdout_buf *o = weir_ctx_state(ctx);
	if (o->used + in->len + 1 > STDOUT_BUF) /* a line longer than the buffer goes out whole */
		return stdout_drain(ctx, o, in->data, in->len);
	memcpy(o->b + o->used, in->data, in->len);
	o->used += in->len;
	o->b[o->used++] = '\n';
	return 0;
}

static int stdout_flush(weir_ctx *ctx)
{
	struct stdout_buf *o = weir_ctx_state(ctx);
	if (o && o->used && stdout_drain(ctx, o, NULL, 0) < 0)
		return -1;
	if (fflush(stdout) != 0)
		return weir_fail(ctx, "write to standard output: %s", strerror(errno));
	return 0;
}

static void stdout_release(weir_ctx *ctx)
{
	free(weir_ctx_state(ctx));
	weir_ctx_set_state(ctx, NULL);
}

weir_stream *weir_sink_stdout(weir_stream *in)
{
	if (!in)
		return NULL;
	char name[WEIR_NAME_MAX];
	unique_name(in->env, "stdout", name, sizeof(name));
	struct node *n = weir_env_add(in->env, OP_SINK, name, in);
	if (!n)
		return NULL;
	n->fn.sink = stdout_write;
	n->builtin = true;
	n->open = stdout_open;
	n->close = stdout_flush;
	n->hooks.idle = stdout_flush;
	n->hooks.release = stdout_release;
	return weir_env_stream(in->env, n);
}

static int discard_write(weir_ctx *ctx, const weir_rec *in)
{
	return 0;
}

weir_stream *weir_sink_discard(weir_stream *in)
{
	if (!in)
		return NULL;
	char name[WEIR_NAME_MAX];
	unique_name(in->env, "discard", name, sizeof(name));
	struct node *n = weir_env_add(in->env, OP_SINK, name, in);
	if (!n)
		return NULL;
	n->fn.sink = discard_write;
	n->builtin = true;
	return weir_env_stream(in->env, n);
}
