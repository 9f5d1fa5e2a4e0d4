/* shm/shmfile.c - see shmfile.h. */
#include "shm/shmfile.h"
#include "base/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

static int path_of(char *buf, size_t n, const char *name)
{
	if (!name || !*name || strchr(name, '/') || strlen(name) >= WEIR_SHM_NAME_MAX)
		return weir_err_set("shared memory name '%s' is empty, too long or has a slash", name ? name : ""),
		       -EINVAL;
	snprintf(buf, n, SHM_DIR "/%s", name);
	return 0;
}

/* Take the lock on byte off of fd: 0, or -EAGAIN when another process
 * holds it. */
static int lock_at(int fd, int off)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off, .l_len = 1 };
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EAGAIN : -errno;
}

static int lock_owner(int fd) { return lock_at(fd, 0); }

/* Is name's owner dead? 1 yes (the file is stale), 0 no, <0 error. */
static int is_stale(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 1 : -errno;
	int r = lock_owner(fd);
	close(fd); /* drops our probe lock with the description */
	return r == 0 ? 1 : r == -EAGAIN ? 0 : r;
}

int weir_shm_create(struct weir_shm *m, const char *name, size_t len, bool *stale_removed)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (stale_removed)
		*stale_removed = false;
	char path[WEIR_SHM_NAME_MAX + 16], tmp[WEIR_SHM_NAME_MAX + 48];
	int e = path_of(path, sizeof(path), name);
	if (e < 0)
		return e;
	/* Build the file under a private name, locked and sized, then move it
	 * into place: whoever can see the final name sees a live owner. (A
	 * crash in between leaves a stale temp file that sweeping removes.) */
	snprintf(tmp, sizeof(tmp), "%s.new.%d", path, (int)getpid());
	unlink(tmp);
	m->fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (m->fd < 0) {
		e = errno;
		return weir_err_errno(e, "create shared memory '%s'", tmp), -e;
	}
	if ((e = lock_owner(m->fd)) < 0 || ftruncate(m->fd, (off_t)len) < 0) {
		e = e < 0 ? -e : errno;
		goto fail;
	}
	for (int attempt = 0;; attempt++) {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
			break;
		e = errno;
		if (e != EEXIST || attempt == 3)
			goto fail;
		int st = is_stale(path);
		if (st == 0) {
			close(m->fd);
			unlink(tmp);
			m->fd = -1;
			return weir_err_set("shared memory '%s' is in use by a live process", path), -EEXIST;
		}
		/* The owner died without cleaning up: the file is stale. */
		if (st < 0 || (unlink(path) < 0 && errno != ENOENT)) {
			e = st < 0 ? -st : errno;
			goto fail;
		}
		if (stale_removed)
			*stale_removed = true;
	}
	m->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->map == MAP_FAILED) {
		e = errno;
		m->map = NULL;
		close(m->fd);
		unlink(path);
		m->fd = -1;
		return weir_err_errno(e, "map shared memory '%s' (%zu bytes)", path, len), -e;
	}
	m->len = len;
	m->owner = true;
	snprintf(m->name, sizeof(m->name), "%s", name);
	return 0;
fail:
	close(m->fd);
	unlink(tmp);
	m->fd = -1;
	return weir_err_errno(e, "create shared memory '%s' (%zu bytes)", path, len), -e;
}

int weir_shm_open(struct weir_shm *m, const char *name, size_t min_len)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	char path[WEIR_SHM_NAME_MAX + 16];
	int e = path_of(path, sizeof(path), name);
	if (e < 0)
		return e;
	m->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (m->fd < 0) {
		e = errno;
		return weir_err_errno(e, "open shared memory '%s'", path), -e;
	}
	struct stat st;
	if (fstat(m->fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size < min_len || st.st_size == 0) {
		close(m->fd);
		m->fd = -1;
		return weir_err_set("shared memory '%s' is truncated (%lld bytes, at least %zu expected)", path,
				    (long long)st.st_size, min_len), -EPROTO;
	}
	m->len = (size_t)st.st_size;
	m->map = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->map == MAP_FAILED) {
		e = errno;
		close(m->fd);
		m->fd = -1;
		m->map = NULL;
		return weir_err_errno(e, "map shared memory '%s'", path), -e;
	}
	snprintf(m->name, sizeof(m->name), "%s", name);
	return 0;
}

void weir_shm_close(struct weir_shm *m)
{
	if (m->map)
		munmap(m->map, m->len);
	if (m->owner && m->name[0]) {
		char path[WEIR_SHM_NAME_MAX + 16];
		snprintf(path, sizeof(path), SHM_DIR "/%s", m->name);
		unlink(path); /* before the lock goes: no one sees it stale */
	}
	if (m->fd >= 0)
		close(m->fd);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

bool weir_shm_byte_held(const struct weir_shm *m, int off)
{
	/* F_OFD_GETLK reports locks of other open file descriptions only */
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off, .l_len = 1 };
	if (m->fd < 0 || fcntl(m->fd, F_OFD_GETLK, &fl) < 0)
		return false;
	return fl.l_type != F_UNLCK;
}

bool weir_shm_owner_alive(const struct weir_shm *m)
{
	return m->owner || weir_shm_byte_held(m, 0);
}

int weir_shm_lock_byte(struct weir_shm *m, int off)
{
	return lock_at(m->fd, off);
}

static int walk(const char *prefix, bool remove_stale)
{
	DIR *d = opendir(SHM_DIR);
	if (!d)
		return -errno;
	size_t pl = strlen(prefix);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, prefix, pl))
			continue;
		if (!remove_stale) {
			n++;
			continue;
		}
		char path[512];
		snprintf(path, sizeof(path), SHM_DIR "/%s", de->d_name);
		if (is_stale(path) == 1 && unlink(path) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int weir_shm_sweep(const char *prefix) { return walk(prefix, true); }
int weir_shm_count(const char *prefix) { return walk(prefix, false); }
