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
#include <sys/statvfs.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

/* A name cut into its folder (may be empty: the file is in /dev/shm
 * itself) and its file name. */
struct shm_name {
	char folder[WEIR_SHM_NAME_MAX];
	char file[WEIR_SHM_NAME_MAX];
};

static bool bad_part(const char *s, size_t n)
{
	return n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

static int split_name(const char *name, struct shm_name *sn)
{
	const char *slash = name ? strchr(name, '/') : NULL;
	size_t len = name ? strlen(name) : 0;
	if (!name || len == 0 || len >= WEIR_SHM_NAME_MAX || (slash && strchr(slash + 1, '/')) ||
	    (slash ? bad_part(name, (size_t)(slash - name)) || bad_part(slash + 1, strlen(slash + 1))
		   : bad_part(name, len)))
		return weir_err_set("shared memory name '%s' is empty, too long, or not NAME or FOLDER/NAME",
				    name ? name : ""), -EINVAL;
	if (slash) {
		snprintf(sn->folder, sizeof(sn->folder), "%.*s", (int)(slash - name), name);
		snprintf(sn->file, sizeof(sn->file), "%s", slash + 1);
	} else {
		sn->folder[0] = '\0';
		snprintf(sn->file, sizeof(sn->file), "%s", name);
	}
	return 0;
}

/* Open /dev/shm/<folder> (folder "": /dev/shm itself) as a directory
 * descriptor. A folder must be ours: a directory (not a link to one),
 * owned by this user, mode 0700; anything else is refused (-EPERM, the
 * trail naming the path and the reason). create: make it first (mkdir
 * 0700) when it is missing. -ENOENT (trail set) when it is missing and
 * create is false. */
static int open_folder(const char *folder, bool create, int *dfd)
{
	*dfd = -1;
	if (!*folder) {
		int fd = open(SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC), e = errno;
		if (fd < 0)
			return weir_err_errno(e, "open '" SHM_DIR "'"), -e;
		*dfd = fd;
		return 0;
	}
	char path[WEIR_SHM_NAME_MAX + 16];
	snprintf(path, sizeof(path), SHM_DIR "/%s", folder);
	bool made = false;
	if (create) {
		if (mkdir(path, 0700) == 0)
			made = true;
		else if (errno != EEXIST) {
			int e = errno;
			return weir_err_errno(e, "create shared memory folder '%s'", path), -e;
		}
	}
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	const char *why = NULL;
	char buf[96];
	struct stat st;
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return weir_err_set("shared memory folder '%s' does not exist", path), -ENOENT;
		if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			why = "is a symbolic link";
		else if (e == ENOTDIR)
			why = "is not a folder";
		else
			return weir_err_errno(e, "open shared memory folder '%s'", path), -e;
	} else if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return weir_err_errno(e, "fstat shared memory folder '%s'", path), -e;
	} else if (!S_ISDIR(st.st_mode)) {
		why = "is not a folder";
	} else if (st.st_uid != geteuid()) {
		snprintf(buf, sizeof(buf), "belongs to uid %u, not to this user (uid %u)", (unsigned)st.st_uid,
			 (unsigned)geteuid());
		why = buf;
	} else if (made && (st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0) {
		snprintf(buf, sizeof(buf), "cannot be made private: %s", strerror(errno));
		why = buf; /* ours, just made, but a umask took bits */
	} else if (!made && (st.st_mode & 07777) != 0700) {
		snprintf(buf, sizeof(buf), "has mode %04o, not 0700", (unsigned)(st.st_mode & 07777));
		why = buf;
	}
	if (why) {
		if (fd >= 0)
			close(fd);
		return weir_err_set("shared memory folder '%s' %s: refusing to use it", path, why), -EPERM;
	}
	*dfd = fd;
	return 0;
}

/* Is fd a regular file of this user? 0, or -EPERM with the trail naming
 * path. */
static int check_file(int fd, const char *path, struct stat *st)
{
	if (fstat(fd, st) < 0) {
		int e = errno;
		return weir_err_errno(e, "fstat shared memory '%s'", path), -e;
	}
	if (!S_ISREG(st->st_mode))
		return weir_err_set("shared memory '%s' is not a regular file: refusing to use it", path), -EPERM;
	if (st->st_uid != geteuid())
		return weir_err_set("shared memory '%s' belongs to uid %u, not to this user (uid %u): refusing to use "
				    "it", path, (unsigned)st->st_uid, (unsigned)geteuid()), -EPERM;
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

/* Is file (in folder dfd) a file of ours whose owner is dead? 1 yes (the
 * file is stale, or gone), 0 no (a live owner), -EPERM not ours (another
 * user's, or not a regular file: never touched), <0 error. */
static int is_stale(int dfd, const char *file)
{
	int fd = openat(dfd, file, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 1 : errno == ELOOP ? -EPERM : -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		close(fd);
		return -EPERM;
	}
	int r = lock_owner(fd);
	close(fd); /* drops our probe lock with the description */
	return r == 0 ? 1 : r == -EAGAIN ? 0 : r;
}

/* The room left in the file system of dfd, in bytes (0 when unknown). */
static unsigned long long room_in(int dfd)
{
	struct statvfs vs;
	if (fstatvfs(dfd, &vs) < 0)
		return 0;
	return (unsigned long long)vs.f_bavail * vs.f_frsize;
}

static int no_room(const char *path, size_t len, unsigned long long room)
{
	return weir_err_set("shared memory '%s': %zu bytes (%.1f MiB) asked, but " SHM_DIR " has %llu bytes "
			    "(%.1f MiB) free", path, len, (double)len / 1048576.0, room, (double)room / 1048576.0),
	       -ENOSPC;
}

/* One try at creating: 0, -EAGAIN to try again from the start (the
 * folder or the temporary file went away under us: a sweep of another
 * process saw them empty or unlocked), or -errno with the trail set. */
static int create_once(struct weir_shm *m, const struct shm_name *sn, const char *path, size_t len,
		       bool *stale_removed)
{
	char tmp[WEIR_SHM_NAME_MAX + 32];
	int dfd, e = open_folder(sn->folder, true, &dfd);
	if (e < 0)
		return e == -ENOENT ? -EAGAIN : e;
	/* Refuse up front what cannot fit: tmpfs sizes a file without
	 * reserving its pages, and touching one past the room is a SIGBUS. */
	unsigned long long room = room_in(dfd);
	if (room && len > room) {
		close(dfd);
		return no_room(path, len, room);
	}
	/* Build the file under a private name, locked and sized, then move it
	 * into place: whoever can see the final name sees a live owner. (A
	 * crash in between leaves a stale temp file that sweeping removes.) */
	snprintf(tmp, sizeof(tmp), "%s.new.%d", sn->file, (int)getpid());
	unlinkat(dfd, tmp, 0);
	m->fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (m->fd < 0) {
		e = errno;
		close(dfd);
		if (e == ENOENT)
			return -EAGAIN; /* the folder was removed (empty) after we opened it */
		return weir_err_errno(e, "create shared memory '%s' (%s)", path, tmp), -e;
	}
	if ((e = lock_owner(m->fd)) < 0 || ftruncate(m->fd, (off_t)len) < 0) {
		e = e < 0 ? -e : errno;
		goto fail;
	}
	for (int attempt = 0;; attempt++) {
		if (renameat2(dfd, tmp, dfd, sn->file, RENAME_NOREPLACE) == 0)
			break;
		e = errno;
		if (e == ENOENT) { /* our temporary file was swept before we locked it */
			close(m->fd);
			m->fd = -1;
			close(dfd);
			return -EAGAIN;
		}
		if (e != EEXIST || attempt == 3)
			goto fail;
		int st = is_stale(dfd, sn->file);
		if (st == 0 || st == -EPERM) {
			close(m->fd);
			unlinkat(dfd, tmp, 0);
			close(dfd);
			m->fd = -1;
			return weir_err_set("shared memory '%s' is %s", path,
					    st == 0 ? "in use by a live process" : "another user's, or not a regular file"),
			       -EEXIST;
		}
		/* The owner died without cleaning up: the file is stale. */
		if (st < 0 || (unlinkat(dfd, sn->file, 0) < 0 && errno != ENOENT)) {
			e = st < 0 ? -st : errno;
			goto fail;
		}
		if (stale_removed)
			*stale_removed = true;
	}
	close(dfd);
	m->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->map == MAP_FAILED) {
		e = errno;
		m->map = NULL;
		snprintf(m->name, sizeof(m->name), "%s%s%s", sn->folder, sn->folder[0] ? "/" : "", sn->file);
		m->owner = true;
		weir_shm_close(m);
		return weir_err_errno(e, "map shared memory '%s' (%zu bytes)", path, len), -e;
	}
	return 0;
fail:
	close(m->fd);
	unlinkat(dfd, tmp, 0);
	close(dfd);
	m->fd = -1;
	return weir_err_errno(e, "create shared memory '%s' (%zu bytes)", path, len), -e;
}

/* Remove the folder of sn when it is empty (never when it holds anything:
 * rmdir refuses). */
static void drop_folder_if_empty(const char *folder)
{
	char path[WEIR_SHM_NAME_MAX + 16];
	if (!*folder)
		return;
	snprintf(path, sizeof(path), SHM_DIR "/%s", folder);
	rmdir(path);
}

int weir_shm_create(struct weir_shm *m, const char *name, size_t len, bool *stale_removed)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (stale_removed)
		*stale_removed = false;
	struct shm_name sn;
	int e = split_name(name, &sn);
	if (e < 0)
		return e;
	char path[WEIR_SHM_NAME_MAX + 16];
	snprintf(path, sizeof(path), SHM_DIR "/%s", name);
	for (int attempt = 0; (e = create_once(m, &sn, path, len, stale_removed)) == -EAGAIN; attempt++)
		if (attempt == 8)
			return weir_err_set("create shared memory '%s': its folder or file kept going away", path),
			       -EAGAIN;
	if (e < 0) {
		if (e != -EPERM) /* a folder that is ours: if we made it, leave nothing */
			drop_folder_if_empty(sn.folder);
		return e;
	}
	m->len = len;
	m->owner = true;
	snprintf(m->name, sizeof(m->name), "%s", name);
	return 0;
}

int weir_shm_reserve(struct weir_shm *m)
{
	if (!m->owner || m->fd < 0)
		return weir_err_set("shared memory '%s': only its owner reserves it", m->name), -EINVAL;
	if (fallocate(m->fd, 0, 0, (off_t)m->len) == 0)
		return 0;
	int e = errno;
	char path[WEIR_SHM_NAME_MAX + 16];
	snprintf(path, sizeof(path), SHM_DIR "/%s", m->name);
	if (e == EOPNOTSUPP)
		return 0; /* a file system that cannot: the size check up front is all there is */
	if (e == ENOSPC) {
		struct statvfs vs;
		unsigned long long room = fstatvfs(m->fd, &vs) == 0 ? (unsigned long long)vs.f_bavail * vs.f_frsize : 0;
		return no_room(path, m->len, room);
	}
	return weir_err_errno(e, "reserve shared memory '%s' (%zu bytes)", path, m->len), -e;
}

int weir_shm_open(struct weir_shm *m, const char *name, size_t min_len)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	struct shm_name sn;
	int e = split_name(name, &sn);
	if (e < 0)
		return e;
	char path[WEIR_SHM_NAME_MAX + 16];
	snprintf(path, sizeof(path), SHM_DIR "/%s", name);
	int dfd;
	if ((e = open_folder(sn.folder, false, &dfd)) < 0)
		return e == -ENOENT ? weir_err_errno(ENOENT, "open shared memory '%s'", path), e : e;
	m->fd = openat(dfd, sn.file, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	e = errno;
	close(dfd);
	if (m->fd < 0) {
		if (e == ELOOP)
			return weir_err_set("shared memory '%s' is a symbolic link: refusing to use it", path), -EPERM;
		return weir_err_errno(e, "open shared memory '%s'", path), -e;
	}
	struct stat st;
	if ((e = check_file(m->fd, path, &st)) < 0) {
		close(m->fd);
		m->fd = -1;
		return e;
	}
	if ((size_t)st.st_size < min_len || st.st_size == 0) {
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
	struct shm_name sn;
	int dfd;
	/* The owner unlinks before the lock goes (no one sees it stale), in
	 * its folder checked again, then the folder if that was its last file. */
	if (m->owner && m->name[0] && split_name(m->name, &sn) == 0 && open_folder(sn.folder, false, &dfd) == 0) {
		unlinkat(dfd, sn.file, 0);
		close(dfd);
		drop_folder_if_empty(sn.folder);
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

/* In folder dfd, the entries starting with prefix that are files of ours:
 * count them, or remove those whose owner is dead. Another user's entries
 * and anything not a regular file are never touched. */
static int walk_folder(int dfd, const char *prefix, bool remove_stale)
{
	int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	if (!d) {
		int e = errno;
		if (dup >= 0)
			close(dup);
		return -e;
	}
	rewinddir(d); /* the duplicate shares its offset with dfd: start at the start */
	size_t pl = strlen(prefix);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (strncmp(de->d_name, prefix, pl) || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != geteuid())
			continue;
		if (!remove_stale)
			n++;
		else if (is_stale(dfd, de->d_name) == 1 && unlinkat(dfd, de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static int walk(const char *prefix, bool remove_stale)
{
	const char *slash = strchr(prefix, '/');
	int dfd, n = 0, e;
	if (slash) { /* in one folder: FOLDER/PREFIX */
		char folder[WEIR_SHM_NAME_MAX];
		snprintf(folder, sizeof(folder), "%.*s", (int)(slash - prefix), prefix);
		if ((e = open_folder(folder, false, &dfd)) < 0) {
			weir_err_clear();
			return e == -ENOENT ? 0 : e;
		}
		n = walk_folder(dfd, slash + 1, remove_stale);
		close(dfd);
		if (remove_stale && !slash[1])
			drop_folder_if_empty(folder);
		return n;
	}
	/* in /dev/shm: files of ours, and folders of ours with everything in them */
	if ((e = open_folder("", false, &dfd)) < 0)
		return e;
	int f = walk_folder(dfd, prefix, remove_stale);
	if (f < 0) {
		close(dfd);
		return f;
	}
	n += f;
	int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
	if (!d) {
		e = errno;
		if (dup >= 0)
			close(dup);
		close(dfd);
		return -e;
	}
	rewinddir(d);
	size_t pl = strlen(prefix);
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		int sub;
		if (strncmp(de->d_name, prefix, pl) || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || open_folder(de->d_name, false, &sub) < 0) {
			weir_err_clear();
			continue;
		}
		if ((f = walk_folder(sub, "", remove_stale)) > 0)
			n += f;
		close(sub);
		if (remove_stale)
			drop_folder_if_empty(de->d_name);
	}
	closedir(d);
	close(dfd);
	return n;
}

int weir_shm_sweep(const char *prefix) { return walk(prefix, true); }
int weir_shm_count(const char *prefix) { return walk(prefix, false); }
