/*
 * engine/connectors/connectors.c - built-in sources and sinks: files, sequences,
 * stdout, discard (the file sink, on the connector API: file_sink.c).
 *
 * They are ordinary operators written against the public API, plus the
 * engine-internal hooks (idle, commit, abort) from graph.h. Paths are
 * checked when the job is built, so a missing input or an unusable output
 * folder fails `weir local` before anything runs.
 */
#include "connectors/internal.h"
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
void weir_unique_name(weir_env *env, const char *base, char *out, size_t len)
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
	weir_unique_name(env, "file-source", name, sizeof(name));
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
	weir_unique_name(env, "sequence", name, sizeof(name));
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
	weir_unique_name(in->env, "stdout", name, sizeof(name));
	struct node *n = weir_env_add(in->env, OP_SINK, name, in);
	if (!n)
		return NULL;
	n->fn.sink = stdout_write;
	n->builtin = true;
	n->to_stdout = true;
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
	weir_unique_name(in->env, "discard", name, sizeof(name));
	struct node *n = weir_env_add(in->env, OP_SINK, name, in);
	if (!n)
		return NULL;
	n->fn.sink = discard_write;
	n->builtin = true;
	return weir_env_stream(in->env, n);
}
