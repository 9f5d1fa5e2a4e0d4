/* ctl/objstore.c - job objects stored by SHA-256; see objstore.h. */
#include "ctl/objstore.h"

#include "base/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void weir_obj_path(const char *dir, const uint8_t sha[WEIR_SHA256_LEN], char *out, size_t n)
{
	char hex[WEIR_SHA256_HEX_LEN + 1];
	weir_hex_encode(sha, WEIR_SHA256_LEN, hex);
	snprintf(out, n, "%s/%s.so", dir, hex);
}

bool weir_obj_have(const char *dir, const uint8_t sha[WEIR_SHA256_LEN], uint64_t size)
{
	char path[PATH_MAX];
	struct stat st;
	weir_obj_path(dir, sha, path, sizeof(path));
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

int weir_obj_in_begin(struct weir_obj_in *in, const char *dir, const uint8_t sha[WEIR_SHA256_LEN], const char *tag)
{
	in->fd = -1;
	in->got = 0;
	memcpy(in->sha, sha, WEIR_SHA256_LEN);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return weir_err_errno(errno, "object store '%s'", dir);
	weir_obj_path(dir, sha, in->path, sizeof(in->path));
	if (snprintf(in->tmp, sizeof(in->tmp), "%s.%s.part", in->path, tag) >= (int)sizeof(in->tmp))
		return weir_err_set("object store '%s': path too long", dir);
	in->fd = open(in->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	if (in->fd < 0)
		return weir_err_errno(errno, "object store: create '%s'", in->tmp);
	return 0;
}

int weir_obj_in_write(struct weir_obj_in *in, uint64_t offset, const void *p, size_t n)
{
	if (in->fd < 0)
		return weir_err_set("object chunk without an upload in progress");
	if (offset != in->got)
		return weir_err_set("object chunk at offset %llu, expected %llu", (unsigned long long)offset,
				    (unsigned long long)in->got);
	if (n > WEIR_OBJ_MAX - in->got)
		return weir_err_set("object larger than %llu MiB", WEIR_OBJ_MAX >> 20);
	const char *b = p;
	for (size_t done = 0; done < n;) {
		ssize_t w = pwrite(in->fd, b + done, n - done, (off_t)(offset + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return weir_err_errno(w < 0 ? errno : ENOSPC, "object store: write '%s'", in->tmp);
		done += (size_t)w;
	}
	in->got += n;
	return 0;
}

void weir_obj_in_abort(struct weir_obj_in *in)
{
	if (in->fd >= 0) {
		close(in->fd);
		unlink(in->tmp);
	}
	in->fd = -1;
}

int weir_obj_in_finish(struct weir_obj_in *in)
{
	uint8_t sha[WEIR_SHA256_LEN];
	if (in->fd < 0)
		return weir_err_set("object: no upload in progress");
	if (lseek(in->fd, 0, SEEK_SET) < 0 || weir_sha256_fd(in->fd, sha, NULL) < 0) {
		weir_err_wrap("object store: '%s'", in->tmp);
		weir_obj_in_abort(in);
		return -1;
	}
	if (!weir_digest_equal(sha, in->sha, WEIR_SHA256_LEN)) {
		weir_obj_in_abort(in);
		return weir_err_set("the object's %llu bytes do not match its SHA-256", (unsigned long long)in->got);
	}
	/* another upload of the same object may have won the race: the
	 * rename replaces it with identical bytes */
	if (rename(in->tmp, in->path) < 0) {
		int e = errno;
		weir_obj_in_abort(in);
		return weir_err_errno(e, "object store: rename to '%s'", in->path);
	}
	close(in->fd);
	in->fd = -1;
	return 0;
}

int weir_obj_put(const char *dir, const uint8_t sha[WEIR_SHA256_LEN], const void *p, size_t n, const char *tag)
{
	if (weir_obj_have(dir, sha, n))
		return 0;
	struct weir_obj_in in;
	if (weir_obj_in_begin(&in, dir, sha, tag) < 0)
		return -1;
	if (weir_obj_in_write(&in, 0, p, n) < 0) {
		weir_obj_in_abort(&in);
		return -1;
	}
	return weir_obj_in_finish(&in);
}

long weir_obj_read(const char *dir, const uint8_t sha[WEIR_SHA256_LEN], uint64_t offset, void *buf, size_t cap,
		   uint64_t *size)
{
	char path[PATH_MAX];
	weir_obj_path(dir, sha, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return weir_err_errno(e, "object store: '%s'", path);
	}
	*size = (uint64_t)st.st_size;
	long got = 0;
	while ((size_t)got < cap && offset + (uint64_t)got < *size) {
		ssize_t r = pread(fd, (char *)buf + got, cap - (size_t)got, (off_t)(offset + (uint64_t)got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			close(fd);
			return weir_err_errno(e, "object store: read '%s'", path);
		}
		got += r;
	}
	close(fd);
	return got;
}

int weir_obj_copy_checked(const char *src, const char *dst, const uint8_t sha[WEIR_SHA256_LEN])
{
	char tmp[PATH_MAX + 8];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", dst) >= (int)sizeof(tmp))
		return weir_err_set("'%s': path too long", dst);
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return weir_err_errno(errno, "open '%s'", src);
	int out = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	if (out < 0) {
		int e = errno;
		close(in);
		return weir_err_errno(e, "create '%s'", tmp);
	}
	char buf[65536];
	int rc = 0;
	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = weir_err_errno(errno, "read '%s'", src);
			break;
		}
		if (r == 0)
			break;
		for (ssize_t done = 0; done < r;) {
			ssize_t w = write(out, buf + done, (size_t)(r - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rc = weir_err_errno(w < 0 ? errno : ENOSPC, "write '%s'", tmp);
				break;
			}
			done += w;
		}
		if (rc < 0)
			break;
	}
	close(in);
	uint8_t got[WEIR_SHA256_LEN];
	if (rc == 0 && (lseek(out, 0, SEEK_SET) < 0 || weir_sha256_fd(out, got, NULL) < 0))
		rc = weir_err_wrap("'%s'", tmp);
	if (rc == 0 && !weir_digest_equal(got, sha, WEIR_SHA256_LEN))
		rc = weir_err_set("'%s' does not match its SHA-256: refused to load it", src);
	close(out);
	if (rc == 0 && rename(tmp, dst) < 0)
		rc = weir_err_errno(errno, "rename to '%s'", dst);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

int weir_obj_remove_all(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	char path[PATH_MAX];
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		bool ours = (l > 3 && !strcmp(e->d_name + l - 3, ".so")) ||
			    (l > 5 && !strcmp(e->d_name + l - 5, ".part")) || (l > 4 && !strcmp(e->d_name + l - 4, ".tmp"));
		if (ours && snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path) && unlink(path) == 0)
			n++;
	}
	closedir(d);
	rmdir(dir);
	return n;
}
