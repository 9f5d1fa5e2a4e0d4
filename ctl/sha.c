/* ctl/sha.c - SHA-256 and hex; see sha.h. */
#include "ctl/sha.h"

#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

int weir_sha256_buf(const void *p, size_t len, uint8_t out[WEIR_SHA256_LEN])
{
	unsigned int n = 0;
	if (!EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) || n != WEIR_SHA256_LEN) {
		weir_err_set("sha256: libcrypto failed");
		return -EIO;
	}
	return 0;
}

int weir_sha256_fd(int fd, uint8_t out[WEIR_SHA256_LEN], uint64_t *size)
{
	uint8_t buf[65536];
	uint64_t total = 0;
	unsigned int n = 0;
	int rc = -EIO;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		weir_err_set("sha256: libcrypto failed");
		goto out_free;
	}
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			weir_err_errno(errno, "sha256: read");
			goto out_free;
		}
		if (r == 0)
			break;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)r)) {
			weir_err_set("sha256: libcrypto failed");
			goto out_free;
		}
		total += (uint64_t)r;
	}
	if (!EVP_DigestFinal_ex(ctx, out, &n) || n != WEIR_SHA256_LEN) {
		weir_err_set("sha256: libcrypto failed");
		goto out_free;
	}
	if (size)
		*size = total;
	rc = 0;
out_free:
	EVP_MD_CTX_free(ctx);
	return rc;
}

int weir_sha256_file(const char *path, uint8_t out[WEIR_SHA256_LEN], uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		weir_err_errno(e, "sha256: open '%s'", path);
		return -e;
	}
	int rc = weir_sha256_fd(fd, out, size);
	if (rc < 0)
		weir_err_wrap("'%s'", path);
	close(fd);
	return rc;
}

void weir_hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int weir_hex_decode(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]);
		int lo = hi < 0 ? -1 : hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return s[2 * n] ? -EINVAL : 0;
}

bool weir_digest_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
