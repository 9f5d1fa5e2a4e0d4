/*
 * net/cert.h - the cluster's certificate authority and its host
 * certificates: making them (`weir cert`), and loading them (net/tls.h).
 *
 * A certificate folder holds the CA, ca.crt and ca.key, and each host's
 * NAME.crt and NAME.key. What the files are:
 *   - the CA: an EC P-256 key and a self-signed certificate, valid 10
 *     years, CN "weir cluster CA <8 random hex digits>" (two clusters' CAs
 *     have different names), basicConstraints critical CA:TRUE with no
 *     intermediate below it, keyUsage keyCertSign and cRLSign;
 *   - a host: an EC P-256 key and a certificate signed by the CA, CN NAME,
 *     subjectAltName DNS:NAME and IP:ADDR for each address given, usable as
 *     a TLS server and client, valid 10 years but never past the CA.
 * Every serial number is 16 random bytes; notBefore is an hour back, for
 * hosts whose clocks lag.
 *
 * The folder is made 0700 and checked as base/safedir.h says (never a
 * link, this user's, writable by nobody else). Files are written 0600,
 * never through a link and never over an existing file: a second CA in the
 * same folder is refused, naming the file, and so is a host name already
 * issued. A file is complete or absent: a failure removes what the call
 * made.
 *
 * Loading: a key must be a regular file of this user's that nobody else
 * may read or write (as ctl/auth.h's secret).
 *
 * Threads: any; the calls share nothing.
 */
#ifndef WEIR_NET_CERT_H
#define WEIR_NET_CERT_H

#include <limits.h>
#include <stddef.h>

#include <openssl/types.h>

#define WEIR_CERT_CA_CRT "ca.crt"
#define WEIR_CERT_CA_KEY "ca.key"
#define WEIR_CERT_NAME_MAX 64	/* X.509's upper bound of a common name */
#define WEIR_CERT_IPS_MAX 16	/* addresses in one host certificate */
#define WEIR_CERT_DAYS 3650

/* Make the cluster CA in dir (made 0700 when missing). 0, or -errno with
 * the trail set: -EEXIST when the folder holds a CA already (named),
 * -EACCES when the folder is refused (a link, another user's, ...). */
int weir_cert_ca_create(const char *dir);

/* Issue NAME.crt and NAME.key in dir, signed by its CA, for the host name
 * and the addresses ips[0..nips) (IPv4 or IPv6 literals). 0, or -errno
 * with the trail set: -EINVAL for a bad name or address or an expired CA,
 * -ENOENT when dir or its CA is missing, -EEXIST when NAME was issued already, -EACCES when
 * the folder or the CA's key is refused. */
int weir_cert_host_create(const char *dir, const char *name, const char *const *ips, size_t nips);

/* A host name weir issues certificates for: 1 to WEIR_CERT_NAME_MAX
 * letters, digits, '-' and '.', starting with a letter or digit, without
 * "..". Also a file name. 0, or -EINVAL with the trail saying why. */
int weir_cert_name_check(const char *name);
/* An IPv4 or IPv6 literal. 0, or -EINVAL with the trail saying why. */
int weir_cert_ip_check(const char *ip);

/* A host's files in a certificate folder, as net/tls.h's weir_tls_files
 * wants them. */
struct weir_cert_paths {
	char ca[PATH_MAX];	/* dir/ca.crt */
	char crt[PATH_MAX];	/* dir/NAME.crt */
	char key[PATH_MAX];	/* dir/NAME.key */
};
/* Fill *p for host `name` in dir. 0, or -ENAMETOOLONG with the trail set. */
int weir_cert_paths(const char *dir, const char *name, struct weir_cert_paths *p);

/* The first certificate of the PEM file path into *out (the caller frees
 * it with X509_free). 0, or -errno with the trail naming the file, as
 * `what` ("CA certificate"), and the reason. */
int weir_cert_load(const char *path, const char *what, X509 **out);
/* A PEM private key into *out (EVP_PKEY_free). 0, or -errno with the trail
 * naming the file and the reason: -ELOOP for a link, -EACCES when it is
 * not this user's or group or others may read or write it ("chmod 600
 * it"), -EINVAL when it is not a regular file or holds no key. */
int weir_cert_key_load(const char *path, const char *what, EVP_PKEY **out);

/* OpenSSL's reason for its last failure in this thread, with its detail
 * text when it has one ("no start line: Expecting: CERTIFICATE"), into
 * buf; OpenSSL's error queue is emptied. Returns buf. net/tls.c uses it
 * too. */
const char *weir_cert_ssl_error(char *buf, size_t n);

#endif
