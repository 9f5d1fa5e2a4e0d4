/* engine/checkpoint/store.c - checkpoint storage; see checkpoint.h. */
#include "checkpoint/store.h"
#include "state/snapshot.h"
#include "base/err.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "base/safedir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char meta_magic[8] = { 'W', 'E', 'I', 'R', 'M', 'E', 'T', 'A' };
#define META_VERSION 1

int weir_ckpt_prepare(char *base, size_t n)
{
	char want[PATH_MAX];
	snprintf(want, sizeof(want), "%s", base);
	int rc = weir_safedir_check(base, n, WEIR_SAFEDIR_CREATE | WEIR_SAFEDIR_PRIVATE, "checkpoint folder");
	/* The name is taken by what someone else put there (a link, their
	 * folder): never use it, and do not let it fail the job either: a
	 * name of our own beside it, unguessable. */
	for (int attempt = 0; rc == -2 && attempt < 3; attempt++) {
		char why[WEIR_ERR_MAX];
		snprintf(why, sizeof(why), "%s", weir_err_msg());
		uint32_t r;
		if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
			return weir_err_errno(errno, "checkpoint folder '%s': random name", want);
		if (snprintf(base, n, "%s-%08x", want, r) >= (int)n)
			return weir_err_set("checkpoint folder '%s': path too long", want);
		weir_log(WEIR_LOG_WARN, "%s; using '%s' instead", why, base);
		rc = weir_safedir_check(base, n, WEIR_SAFEDIR_CREATE | WEIR_SAFEDIR_PRIVATE, "checkpoint folder");
	}
	return rc < 0 ? -1 : 0;
}

/* Create a checkpoint's folder in base (0700; base is prepared). */
static int mkdir_chk(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return weir_err_errno(errno, "checkpoint folder '%s'", dir);
	return 0;
}

/* Make the names in a folder durable (its renames). 0 or -1. */
static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return weir_err_errno(errno, "open folder '%s'", path);
	int rc = fsync(fd) < 0 ? weir_err_errno(errno, "fsync folder '%s'", path) : 0;
	close(fd);
	return rc;
}

/* Write the pieces one after another, durably, as path (through path.tmp). */
static int write_durably(const char *path, const struct snapvec *sv, const char *failpoint)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return weir_err_errno(errno, "create '%s'", tmp);
	for (int i = 0; i < sv->n; i++) {
		const uint8_t *b = sv->v[i].p;
		size_t len = sv->v[i].len;
		for (size_t off = 0; off < len;) {
			ssize_t w = write(fd, b + off, len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				int e = w < 0 ? errno : ENOSPC;
				close(fd);
				unlink(tmp);
				return weir_err_errno(e, "write '%s'", tmp);
			}
			off += (size_t)w;
		}
	}
	/* A failed fsync fails the checkpoint: the page cache may have dropped
	 * the data, so retrying the fsync could "succeed" over lost bytes. */
	if (weir_failpoint(failpoint) < 0 || fsync(fd) < 0) {
		int e = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		return weir_err_errno(e, "fsync '%s'", tmp);
	}
	if (close(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return weir_err_errno(e, "close '%s'", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return weir_err_errno(e, "rename '%s'", tmp);
	}
	return 0;
}

int weir_ckpt_write(const char *base, uint64_t id, const char *name, const struct snapvec *sv,
		    struct weir_ckpt_file *out)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s/chk-%llu", base, (unsigned long long)id);
	if (mkdir_chk(dir) < 0)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	errno = 0;
	if (write_durably(path, sv, "checkpoint.write") < 0)
		return -1;
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->size = weir_snapvec_len(sv);
	out->sum = weir_snapvec_sum(sv);
	out->data = NULL;
	return 0;
}

/* "chk-<id>" with id decimal, no sign or leading zero, at least 1 and
 * within 64 bits: true and *id. */
static bool chk_id(const char *name, uint64_t *id)
{
	const char *d = name + 4;
	if (strncmp(name, "chk-", 4) || *d < '1' || *d > '9')
		return false;
	uint64_t v = 0;
	for (; *d; d++) {
		if (*d < '0' || *d > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*d - '0');
	}
	*id = v;
	return true;
}

/* Remove base/chk-<id> and the files in it, never through a link and
 * only when the folder is this user's: what we did not write stays. */
static void rm_rf_chk(const char *base, uint64_t id)
{
	char name[32];
	snprintf(name, sizeof(name), "chk-%llu", (unsigned long long)id);
	int bfd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (bfd < 0)
		return;
	int dfd = openat(bfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	DIR *d = NULL;
	if (dfd < 0 || fstat(dfd, &st) < 0 || st.st_uid != geteuid() || !(d = fdopendir(dfd))) {
		if (dfd >= 0)
			close(dfd);
		close(bfd);
		return;
	}
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dfd, e->d_name, 0); /* a link is removed, not followed */
	closedir(d); /* closes dfd */
	unlinkat(bfd, name, AT_REMOVEDIR);
	close(bfd);
}

void weir_ckpt_discard(const char *base, uint64_t id)
{
	rm_rf_chk(base, id);
}

/* The ids of base's chk-<id> folders, ascending; with_meta: only those
 * with a _metadata file. Returns the count (ids malloc'd), or -1. */
static long list_ids(const char *base, bool with_meta, uint64_t **ids)
{
	*ids = NULL;
	DIR *d = opendir(base);
	if (!d)
		return errno == ENOENT ? 0 : weir_err_errno(errno, "checkpoint folder '%s'", base);
	long n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		uint64_t id;
		struct stat st;
		if (!chk_id(e->d_name, &id) || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue; /* not a checkpoint's folder (a link is never one) */
		if (with_meta) {
			char p[PATH_MAX + 300];
			snprintf(p, sizeof(p), "%s/%s/_metadata", base, e->d_name);
			if (access(p, F_OK) != 0)
				continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *x = realloc(*ids, sizeof(uint64_t) * (size_t)cap);
			if (!x) {
				closedir(d);
				free(*ids);
				*ids = NULL;
				return weir_err_set("out of memory");
			}
			*ids = x;
		}
		(*ids)[n++] = id;
	}
	closedir(d);
	for (long i = 1; i < n; i++) /* insertion sort: few folders */
		for (long k = i; k > 0 && (*ids)[k - 1] > (*ids)[k]; k--) {
			uint64_t t = (*ids)[k];
			(*ids)[k] = (*ids)[k - 1];
			(*ids)[k - 1] = t;
		}
	return n;
}

int weir_ckpt_commit(const char *base, const struct weir_ckpt_meta *m)
{
	struct snapbuf b = { 0 };
	snap_put(&b, meta_magic, 8);
	snap_u32(&b, META_VERSION);
	snap_u32(&b, 0);
	snap_u64(&b, m->id);
	snap_u64(&b, m->time_ms);
	snap_u32(&b, m->nfiles);
	for (uint32_t i = 0; i < m->nfiles; i++) {
		const struct weir_ckpt_file *f = &m->files[i];
		uint32_t nl = (uint32_t)strlen(f->name);
		snap_u32(&b, f->vertex);
		snap_u32(&b, f->index);
		snap_u32(&b, f->parallelism);
		snap_u32(&b, nl);
		snap_put(&b, f->name, nl);
		snap_u64(&b, f->size);
		snap_u64(&b, f->sum);
	}
	if (weir_snap_seal(&b) < 0) {
		snap_free(&b);
		return weir_err_set("checkpoint %llu: out of memory for its metadata", (unsigned long long)m->id);
	}
	char dir[PATH_MAX], path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	snprintf(dir, sizeof(dir), "%s/chk-%llu", base, (unsigned long long)m->id);
	if (mkdir_chk(dir) < 0) {
		snap_free(&b);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/_metadata", dir);
	snprintf(tmp, sizeof(tmp), "%s/_metadata.pending", dir);
	/* the snapshot files' names must be durable before the metadata that
	 * lists them can be */
	if (fsync_dir(dir) < 0) {
		snap_free(&b);
		return weir_err_wrap("checkpoint %llu", (unsigned long long)m->id);
	}
	/* the metadata goes durable under a name restore ignores, then one
	 * rename makes the checkpoint complete */
	errno = 0;
	int rc = write_durably(tmp, &(struct snapvec){ &b, 1 }, "checkpoint.fsync-metadata");
	snap_free(&b);
	if (rc < 0)
		return weir_err_wrap("checkpoint %llu", (unsigned long long)m->id);
	if (weir_failpoint("checkpoint.metadata") < 0 || rename(tmp, path) < 0) {
		int e = errno ? errno : EIO;
		unlink(tmp);
		return weir_err_errno(e, "checkpoint %llu: rename its metadata", (unsigned long long)m->id);
	}
	if (fsync_dir(dir) < 0 || fsync_dir(base) < 0)
		return weir_err_wrap("checkpoint %llu", (unsigned long long)m->id);
	return 0;
}

void weir_ckpt_retain(const char *base, uint64_t newest, int retain)
{
	/* the newest `retain` complete ones stay; incomplete ones older than
	 * `newest` are leftovers of aborted checkpoints */
	uint64_t *ids;
	long n = list_ids(base, true, &ids);
	for (long i = 0; i < n - (retain > 0 ? retain : 1); i++)
		rm_rf_chk(base, ids[i]);
	free(ids);
	n = list_ids(base, false, &ids);
	for (long i = 0; i < n; i++) {
		char p[PATH_MAX + 64];
		snprintf(p, sizeof(p), "%s/chk-%llu/_metadata", base, (unsigned long long)ids[i]);
		if (ids[i] < newest && access(p, F_OK) != 0)
			rm_rf_chk(base, ids[i]);
	}
	free(ids);
}

static int read_all(const char *path, uint8_t **out, size_t *len)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return weir_err_errno(e, "%s", path);
	}
	uint8_t *p = malloc((size_t)st.st_size + 1);
	if (!p) {
		close(fd);
		return weir_err_set("%s: out of memory", path);
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*out = p;
	*len = got;
	return 0;
}

void weir_ckpt_meta_free(struct weir_ckpt_meta *m)
{
	for (uint32_t i = 0; m->files && i < m->nfiles; i++)
		free(m->files[i].data);
	free(m->files);
	memset(m, 0, sizeof(*m));
}

/* Load and check checkpoint id of base: 0, or -1 with the trail saying
 * which file is bad and how. */
static int load_one(const char *base, uint64_t id, struct weir_ckpt_meta *m)
{
	memset(m, 0, sizeof(*m));
	char dir[PATH_MAX], path[PATH_MAX + 64];
	snprintf(dir, sizeof(dir), "%s/chk-%llu", base, (unsigned long long)id);
	snprintf(path, sizeof(path), "%s/_metadata", dir);
	uint8_t *p;
	size_t len;
	const char *why;
	if (read_all(path, &p, &len) < 0)
		return -1;
	long n = weir_snap_unseal(p, len, &why);
	if (n < 0) {
		free(p);
		return weir_err_set("_metadata: %s", why);
	}
	struct snapreader r;
	snapreader_init(&r, p, (size_t)n);
	const void *magic = snap_take(&r, 8);
	uint32_t version = snap_get_u32(&r);
	snap_get_u32(&r);
	m->id = snap_get_u64(&r);
	m->time_ms = snap_get_u64(&r);
	m->nfiles = snap_get_u32(&r);
	if (!magic || memcmp(magic, meta_magic, 8) || version != META_VERSION || m->id != id || m->nfiles > 1u << 20) {
		free(p);
		m->nfiles = 0;
		return weir_err_set("_metadata: not a version %d metadata file of checkpoint %llu", META_VERSION,
				    (unsigned long long)id);
	}
	m->files = calloc(m->nfiles + 1, sizeof(*m->files));
	if (!m->files) {
		free(p);
		m->nfiles = 0;
		return weir_err_set("out of memory");
	}
	for (uint32_t i = 0; i < m->nfiles && !r.bad; i++) {
		struct weir_ckpt_file *f = &m->files[i];
		f->vertex = snap_get_u32(&r);
		f->index = snap_get_u32(&r);
		f->parallelism = snap_get_u32(&r);
		uint32_t nl = snap_get_u32(&r);
		const char *name = nl < sizeof(f->name) ? snap_take(&r, nl) : NULL;
		if (!name || memchr(name, '/', nl) || memchr(name, '\0', nl) || nl == 0) {
			r.bad = true;
			break;
		}
		memcpy(f->name, name, nl);
		f->size = snap_get_u64(&r);
		f->sum = snap_get_u64(&r);
	}
	bool bad = r.bad || r.off != r.len;
	free(p);
	if (bad)
		return weir_err_set("_metadata: malformed file list");
	for (uint32_t i = 0; i < m->nfiles; i++) {
		struct weir_ckpt_file *f = &m->files[i];
		snprintf(path, sizeof(path), "%s/%s", dir, f->name);
		if (read_all(path, &f->data, &len) < 0)
			return -1;
		if (len != f->size)
			return weir_err_set("%s: %zu bytes, the metadata says %llu (truncated?)", f->name, len,
					    (unsigned long long)f->size);
		if (weir_snap_unseal(f->data, len, &why) < 0)
			return weir_err_set("%s: %s", f->name, why);
		if (weir_snap_sum(f->data, len) != f->sum)
			return weir_err_set("%s: its checksum differs from the metadata's", f->name);
	}
	return 0;
}

int weir_ckpt_latest(const char *path, struct weir_ckpt_meta *m, char *report, size_t rn)
{
	memset(m, 0, sizeof(*m));
	if (report && rn)
		report[0] = '\0';
	char base[PATH_MAX];
	snprintf(base, sizeof(base), "%s", path);
	size_t bl = strlen(base);
	while (bl > 1 && base[bl - 1] == '/')
		base[--bl] = '\0';
	const char *last = strrchr(base, '/');
	const char *leaf = last ? last + 1 : base;
	uint64_t only = 0;
	if (chk_id(leaf, &only)) {
		if (last == base)
			base[1] = '\0';
		else if (last)
			base[last - base] = '\0';
		else
			snprintf(base, sizeof(base), ".");
	} else {
		only = 0;
	}
	uint64_t *ids = NULL;
	long n;
	if (only) {
		char p[PATH_MAX + 64];
		snprintf(p, sizeof(p), "%s/chk-%llu/_metadata", base, (unsigned long long)only);
		if (access(p, F_OK) != 0)
			return weir_err_set("'%s' is not a complete checkpoint (no _metadata)", path), -1;
		ids = malloc(sizeof(uint64_t));
		if (!ids)
			return weir_err_set("out of memory");
		ids[0] = only;
		n = 1;
	} else if ((n = list_ids(base, true, &ids)) < 0) {
		return -1;
	}
	size_t used = 0;
	for (long i = n - 1; i >= 0; i--) {
		if (load_one(base, ids[i], m) == 0) {
			free(ids);
			return 1;
		}
		weir_log(WEIR_LOG_WARN, "checkpoint %llu in %s is damaged, skipped: %s", (unsigned long long)ids[i], base,
			 weir_err_msg());
		if (report && used < rn)
			used += (size_t)snprintf(report + used, rn - used, "%schk-%llu: %s", used ? "; " : "",
						 (unsigned long long)ids[i], weir_err_msg());
		weir_ckpt_meta_free(m);
	}
	free(ids);
	if (n == 0)
		return 0;
	weir_err_set("every complete checkpoint in '%s' is damaged: %s", base, report ? report : "");
	return -1;
}
