/*
 * engine/connectors.c - built-in sources and sinks: files, sequences,
 * stdout, discard.
 *
 * They are ordinary operators written against the public API, plus the
 * engine-internal hooks (idle, commit, abort) from graph.h. Paths are
 * checked when the job is built, so a missing input or an unusable output
 * folder fails `weir local` before anything runs.
 */
#include "engine/runtime.h"
#include "base/err.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int file_open_next(weir_ctx *ctx, struct file_reader *r)
{
	struct file_source *fs = weir_ctx_arg(ctx);
	int i = weir_ctx_subtask(ctx), p = weir_ctx_parallelism(ctx);
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
	return 0;
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
	return weir_env_stream(env, n);
}

/* ---- file sink ----------------------------------------------------------- */

/*
 * Each subtask writes `.part-<i>.inprogress` in the folder; the job's
 * commit renames it to `part-<i>` (after fsync), its abort unlinks it. A
 * reader of the folder thus sees either finished parts or nothing.
 */
struct file_sink {
	char *dir;
};

struct part_writer {
	int fd;
	bool committed;
	char tmp[4096];
	char final[4096];
	char *buf;
	size_t used, cap;
};

static void file_sink_free(void *arg)
{
	struct file_sink *fs = arg;
	free(fs->dir);
	free(fs);
}

static int mkdir_p(const char *path)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return errno = ENAMETOOLONG, -1;
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -1;
	struct stat st;
	if (stat(tmp, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return errno = ENOTDIR, -1;
	return 0;
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
	if (mkdir_p(fs->dir) < 0)
		return weir_fail(ctx, "output folder '%s': %s", fs->dir, strerror(errno));
	int i = weir_ctx_subtask(ctx);
	snprintf(w->tmp, sizeof(w->tmp), "%s/.part-%d.inprogress", fs->dir, i);
	snprintf(w->final, sizeof(w->final), "%s/part-%d", fs->dir, i);
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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

static int file_sink_commit(weir_ctx *ctx)
{
	struct part_writer *w = weir_ctx_state(ctx);
	struct file_sink *fs = weir_ctx_arg(ctx);
	if (!w)
		return 0;
	if (w->committed)
		return 0;
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

static void part_free(weir_ctx *ctx)
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

/* Discard this part: the in-progress file, or, when another sink's commit
 * failed after this one committed, the committed file (the folder held no
 * part files when the job started, so it is ours). */
static void file_sink_abort(weir_ctx *ctx)
{
	struct part_writer *w = weir_ctx_state(ctx);
	if (!w)
		return;
	if (w->committed)
		unlink(w->final);
	else if (w->tmp[0])
		unlink(w->tmp);
	part_free(ctx);
}

weir_stream *weir_sink_file(weir_stream *in, const char *dir)
{
	if (!in)
		return NULL;
	weir_env *env = in->env;
	if (!dir || !*dir)
		return weir_env_error(env, "file sink: no output folder given"), NULL;
	struct stat st;
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return weir_env_error(env, "file sink: '%s' exists and is not a folder", dir), NULL;
		DIR *d = opendir(dir);
		if (!d)
			return weir_env_error(env, "file sink: output folder '%s': %s", dir, strerror(errno)), NULL;
		struct dirent *de;
		bool parts = false;
		while ((de = readdir(d)))
			parts |= !strncmp(de->d_name, "part-", 5);
		closedir(d);
		if (parts)
			return weir_env_error(env, "file sink: '%s' already holds part files; "
					      "remove them or choose another folder", dir), NULL;
	} else if (errno != ENOENT) {
		return weir_env_error(env, "file sink: output folder '%s': %s", dir, strerror(errno)), NULL;
	}
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
	n->hooks.release = part_free;
	n->hooks.free_arg = file_sink_free;
	return weir_env_stream(env, n);
}

/* ---- stdout and discard -------------------------------------------------- */

static int stdout_write(weir_ctx *ctx, const weir_rec *in)
{
	flockfile(stdout); /* one record, one unbroken line */
	fwrite_unlocked(in->data, 1, in->len, stdout);
	putc_unlocked('\n', stdout);
	funlockfile(stdout);
	return 0;
}

static int stdout_flush(weir_ctx *ctx)
{
	if (fflush(stdout) != 0)
		return weir_fail(ctx, "write to standard output: %s", strerror(errno));
	return 0;
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
	n->close = stdout_flush;
	n->hooks.idle = stdout_flush;
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
