/* net/cert.c - see cert.h. */
#include "net/cert.h"

#include "base/err.h"
#include "base/safedir.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *weir_cert_ssl_error(char *buf, size_t n)
{
	const char *data = NULL;
	int flags = 0;
	unsigned long e = ERR_peek_last_error_data(&data, &flags);
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	if (!(flags & ERR_TXT_STRING) || !data || !*data)
		data = NULL;
	if (r)
		snprintf(buf, n, "%s%s%s", r, data ? ": " : "", data ? data : "");
	else if (e)
		snprintf(buf, n, "OpenSSL error %#lx", e);
	else
		snprintf(buf, n, "no reason given by OpenSSL");
	ERR_clear_error();
	return buf;
}

/* weir never reads encrypted keys: no prompt on a terminal, a failure */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

int weir_cert_name_check(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > WEIR_CERT_NAME_MAX)
		return weir_err_set("host name '%.80s': not 1 to %d characters long", name, WEIR_CERT_NAME_MAX), -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!name_char(name[i]))
			return weir_err_set("host name '%s': character %zu is not a letter, digit, '-' or '.'", name,
					    i + 1), -EINVAL;
	if (name[0] == '-' || name[0] == '.')
		return weir_err_set("host name '%s': starts with '%c' (a letter or digit, please)", name, name[0]),
		       -EINVAL;
	if (strstr(name, "..") || name[n - 1] == '.')
		return weir_err_set("host name '%s': has an empty label", name), -EINVAL;
	if (!strcmp(name, "ca")) /* its files would be the CA's */
		return weir_err_set("host name 'ca' is taken by the CA's files"), -EINVAL;
	return 0;
}

/* An address literal into buf (4 or 16 bytes): its length, or 0. */
static int ip_parse(const char *ip, uint8_t buf[16])
{
	if (inet_pton(AF_INET, ip, buf) == 1)
		return 4;
	if (inet_pton(AF_INET6, ip, buf) == 1)
		return 16;
	return 0;
}

int weir_cert_ip_check(const char *ip)
{
	uint8_t buf[16];
	if (!ip_parse(ip, buf))
		return weir_err_set("address '%.80s' is not an IPv4 or IPv6 literal", ip), -EINVAL;
	return 0;
}

int weir_cert_paths(const char *dir, const char *name, struct weir_cert_paths *p)
{
	size_t n = sizeof(p->ca);
	if ((size_t)snprintf(p->ca, n, "%s/%s", dir, WEIR_CERT_CA_CRT) >= n ||
	    (size_t)snprintf(p->crt, n, "%s/%s.crt", dir, name) >= n ||
	    (size_t)snprintf(p->key, n, "%s/%s.key", dir, name) >= n)
		return weir_err_set("certificate folder '%s': path too long", dir), -ENAMETOOLONG;
	return 0;
}

int weir_cert_load(const char *path, const char *what, X509 **out)
{
	char why[256];
	FILE *f = fopen(path, "re");
	if (!f) {
		int e = errno;
		return weir_err_errno(e, "%s '%s'", what, path), -e;
	}
	ERR_clear_error();
	*out = PEM_read_X509(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!*out)
		return weir_err_set("%s '%s': no PEM certificate in it (%s)", what, path, weir_cert_ssl_error(why, sizeof(why))),
		       -EINVAL;
	return 0;
}

int weir_cert_key_load(const char *path, const char *what, EVP_PKEY **out)
{
	char why[256], who[300];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			return weir_err_set("%s '%s' is a symbolic link (refused)", what, path), -ELOOP;
		return weir_err_errno(e, "%s '%s'", what, path), -e;
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) < 0)
		rc = -errno, weir_err_errno(-rc, "%s '%s'", what, path);
	else if (!S_ISREG(st.st_mode))
		rc = -EINVAL, weir_err_set("%s '%s' is not a regular file", what, path);
	else if (st.st_uid != geteuid())
		rc = -EACCES, weir_err_set("%s '%s' belongs to %s, not to you", what, path,
					   weir_user_name(st.st_uid, who, sizeof(who)));
	else if (st.st_mode & 077)
		rc = -EACCES, weir_err_set("%s '%s': mode %04o lets group or others at it (chmod 600 it)", what, path,
					   (unsigned)(st.st_mode & 07777));
	if (rc < 0) {
		close(fd);
		return rc;
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		int e = errno;
		close(fd);
		return weir_err_errno(e, "%s '%s'", what, path), -e;
	}
	ERR_clear_error();
	*out = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	fclose(f);
	if (!*out)
		return weir_err_set("%s '%s': no unencrypted PEM private key in it (%s)", what, path,
				    weir_cert_ssl_error(why, sizeof(why))), -EINVAL;
	return 0;
}

/* ---- making certificates ---------------------------------------------- */

static EVP_PKEY *key_new(void)
{
	char why[256];
	ERR_clear_error();
	EVP_PKEY *k = EVP_EC_gen("P-256");
	if (!k)
		weir_err_set("make an EC P-256 key: %s", weir_cert_ssl_error(why, sizeof(why)));
	return k;
}

/* Add extension nid with OpenSSL's configuration syntax (value). */
static int ext_add(X509 *x, X509V3_CTX *c, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, c, nid, value);
	if (!e)
		return -1;
	int ok = X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

/* subjectAltName: DNS:name, then IP:ips[i] */
static int san_add(X509 *x, const char *name, const char *const *ips, size_t nips)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		return -1;
	int rc = -1;
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
	if (!g || !dns || !ASN1_STRING_set(dns, name, -1)) {
		GENERAL_NAME_free(g);
		ASN1_IA5STRING_free(dns);
		goto out;
	}
	GENERAL_NAME_set0_value(g, GEN_DNS, dns);
	if (!sk_GENERAL_NAME_push(gens, g)) {
		GENERAL_NAME_free(g);
		goto out;
	}
	for (size_t i = 0; i < nips; i++) {
		uint8_t buf[16];
		int len = ip_parse(ips[i], buf);
		ASN1_OCTET_STRING *o = ASN1_OCTET_STRING_new();
		g = GENERAL_NAME_new();
		if (!len || !o || !g || !ASN1_OCTET_STRING_set(o, buf, len)) {
			GENERAL_NAME_free(g);
			ASN1_OCTET_STRING_free(o);
			goto out;
		}
		GENERAL_NAME_set0_value(g, GEN_IPADD, o);
		if (!sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			goto out;
		}
	}
	rc = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1 ? 0 : -1;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

/* A certificate for key with common name cn, signed by ca_key: self-signed
 * (the CA) when ca is NULL, else a host's with its names. NULL with the
 * trail set. */
static X509 *cert_make(EVP_PKEY *key, const char *cn, X509 *ca, EVP_PKEY *ca_key, const char *const *ips,
		       size_t nips)
{
	char why[256];
	uint8_t serial[16];
	ERR_clear_error();
	X509 *x = X509_new();
	BIGNUM *bn = NULL;
	if (!x)
		goto fail;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] = (serial[0] & 0x7f) | 0x40; /* positive, and 16 bytes long */
	X509_NAME *subj = X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) || !(bn = BN_bin2bn(serial, sizeof(serial), NULL)) ||
	    !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), WEIR_CERT_DAYS, 0, NULL) ||
	    !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : subj) || !X509_set_pubkey(x, key))
		goto fail;
	if (ca && ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(ca)) > 0 &&
	    !X509_set1_notAfter(x, X509_get0_notAfter(ca)))
		goto fail;
	X509V3_CTX c;
	X509V3_set_ctx(&c, ca ? ca : x, x, NULL, NULL, 0);
	if (!ca) {
		if (ext_add(x, &c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
		    ext_add(x, &c, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
		    ext_add(x, &c, NID_subject_key_identifier, "hash") < 0)
			goto fail;
	} else {
		if (ext_add(x, &c, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
		    ext_add(x, &c, NID_key_usage, "critical,digitalSignature") < 0 ||
		    ext_add(x, &c, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
		    san_add(x, cn, ips, nips) < 0 || ext_add(x, &c, NID_subject_key_identifier, "hash") < 0 ||
		    ext_add(x, &c, NID_authority_key_identifier, "keyid:always") < 0)
			goto fail;
	}
	if (X509_sign(x, ca_key, EVP_sha256()) <= 0)
		goto fail;
	BN_free(bn);
	return x;
fail:
	weir_err_set("make the certificate of '%s': %s", cn, weir_cert_ssl_error(why, sizeof(why)));
	BN_free(bn);
	X509_free(x);
	return NULL;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The PEM text of key (when x is NULL) or of x, written to the new file
 * fd, then fsync'd. 0 or -errno, the trail naming path. */
static int pem_write(int fd, const char *path, EVP_PKEY *key, X509 *x)
{
	char why[256];
	ERR_clear_error();
	/* a key's text lives in memory that is wiped when freed */
	BIO *b = BIO_new(x ? BIO_s_mem() : BIO_s_secmem());
	if (!b || !(x ? PEM_write_bio_X509(b, x) : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))) {
		BIO_free(b);
		return weir_err_set("'%s': PEM: %s", path, weir_cert_ssl_error(why, sizeof(why))), -ENOMEM;
	}
	char *data;
	long len = BIO_get_mem_data(b, &data);
	int rc = write_all(fd, data, (size_t)len);
	BIO_free(b);
	if (rc < 0)
		return weir_err_errno(-rc, "write '%s'", path), rc;
	if (fsync(fd) < 0)
		return rc = -errno, weir_err_errno(-rc, "fsync '%s'", path), rc;
	return 0;
}

/* Write key and certificate to the new files keypath and crtpath (0600,
 * never through a link, never over a file), then fsync the folder dir. On
 * failure neither file is left. 0 or -errno with the trail set; -EEXIST
 * names the file that is there. */
static int pair_write(const char *dir, const char *keypath, EVP_PKEY *key, const char *crtpath, X509 *x)
{
	struct stat st;
	/* name what is there before making anything */
	if (lstat(keypath, &st) == 0 || lstat(crtpath, &st) == 0)
		return weir_err_set("'%s' exists (refusing to overwrite it)", lstat(keypath, &st) == 0 ? keypath : crtpath),
		       -EEXIST;
	const char *paths[2] = { keypath, crtpath };
	int fds[2] = { -1, -1 }, rc = 0;
	for (int i = 0; i < 2 && rc == 0; i++) {
		fds[i] = open(paths[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fds[i] < 0) {
			rc = -errno;
			if (rc == -EEXIST) /* made since the check above */
				weir_err_set("'%s' exists (refusing to overwrite it)", paths[i]);
			else
				weir_err_errno(-rc, "create '%s'", paths[i]);
		} else if (fchmod(fds[i], 0600) < 0) { /* the umask may only have taken bits away */
			rc = -errno;
			weir_err_errno(-rc, "chmod '%s'", paths[i]);
		}
	}
	if (rc == 0)
		rc = pem_write(fds[0], keypath, key, NULL);
	if (rc == 0)
		rc = pem_write(fds[1], crtpath, NULL, x);
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			if (rc < 0)
				unlink(paths[i]);
		}
	if (rc < 0)
		return rc;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		rc = -errno;
		weir_err_errno(-rc, "fsync certificate folder '%s'", dir);
		unlink(keypath);
		unlink(crtpath);
	}
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* Check dir (as base/safedir.h; made when create) into buf. 0 or -errno. */
static int dir_check(const char *dir, char *buf, size_t n, bool create)
{
	if ((size_t)snprintf(buf, n, "%s", dir) >= n)
		return weir_err_set("certificate folder '%s': path too long", dir), -ENAMETOOLONG;
	int rc = weir_safedir_check(buf, n, WEIR_SAFEDIR_PRIVATE | (create ? WEIR_SAFEDIR_CREATE : 0),
				    "certificate folder");
	if (rc == 1)
		return weir_err_set("certificate folder '%s' does not exist", dir), -ENOENT;
	return rc == -2 ? -EACCES : rc < 0 ? -EIO : 0;
}

int weir_cert_ca_create(const char *dir)
{
	char d[PATH_MAX], cn[64];
	uint8_t tag[4];
	struct weir_cert_paths p;
	int rc = dir_check(dir, d, sizeof(d), true);
	if (rc < 0)
		return rc;
	if ((size_t)snprintf(p.ca, sizeof(p.ca), "%s/%s", d, WEIR_CERT_CA_CRT) >= sizeof(p.ca) ||
	    (size_t)snprintf(p.key, sizeof(p.key), "%s/%s", d, WEIR_CERT_CA_KEY) >= sizeof(p.key))
		return weir_err_set("certificate folder '%s': path too long", d), -ENAMETOOLONG;
	if (RAND_bytes(tag, sizeof(tag)) != 1)
		return weir_err_set("cluster CA: no random bytes from libcrypto"), -EIO;
	snprintf(cn, sizeof(cn), "weir cluster CA %02x%02x%02x%02x", tag[0], tag[1], tag[2], tag[3]);
	EVP_PKEY *key = key_new();
	if (!key)
		return weir_err_wrap("cluster CA"), -ENOMEM;
	X509 *x = cert_make(key, cn, NULL, key, NULL, 0);
	rc = x ? pair_write(d, p.key, key, p.ca, x) : -ENOMEM;
	if (rc < 0)
		weir_err_wrap("cluster CA");
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int weir_cert_host_create(const char *dir, const char *name, const char *const *ips, size_t nips)
{
	char d[PATH_MAX], cakey[PATH_MAX];
	struct weir_cert_paths p;
	int rc;
	if ((rc = weir_cert_name_check(name)) < 0)
		return rc;
	if (nips > WEIR_CERT_IPS_MAX)
		return weir_err_set("host '%s': %zu addresses, at most %d", name, nips, WEIR_CERT_IPS_MAX), -EINVAL;
	for (size_t i = 0; i < nips; i++)
		if ((rc = weir_cert_ip_check(ips[i])) < 0)
			return weir_err_wrap("host '%s'", name), rc;
	if ((rc = dir_check(dir, d, sizeof(d), false)) < 0 || (rc = weir_cert_paths(d, name, &p)) < 0)
		return rc;
	if ((size_t)snprintf(cakey, sizeof(cakey), "%s/%s", d, WEIR_CERT_CA_KEY) >= sizeof(cakey))
		return weir_err_set("certificate folder '%s': path too long", d), -ENAMETOOLONG;
	X509 *ca = NULL, *x = NULL;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	if ((rc = weir_cert_load(p.ca, "CA certificate", &ca)) < 0 ||
	    (rc = weir_cert_key_load(cakey, "CA key", &ca_key)) < 0)
		goto out;
	if (X509_cmp_current_time(X509_get0_notAfter(ca)) <= 0) {
		rc = -EINVAL;
		weir_err_set("CA certificate '%s' has expired", p.ca);
		goto out;
	}
	if (X509_check_private_key(ca, ca_key) != 1) {
		ERR_clear_error();
		rc = -EINVAL;
		weir_err_set("CA key '%s' does not match CA certificate '%s'", cakey, p.ca);
		goto out;
	}
	rc = -ENOMEM;
	if (!(key = key_new()) || !(x = cert_make(key, name, ca, ca_key, ips, nips)))
		goto out;
	rc = pair_write(d, p.key, key, p.crt, x);
out:
	if (rc < 0)
		weir_err_wrap("host '%s'", name);
	X509_free(x);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
	return rc;
}
