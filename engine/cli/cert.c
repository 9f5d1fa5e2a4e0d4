/*
 * engine/cli/cert.c - `weir cert`: the cluster's CA and its hosts'
 * certificates, for TLS between hosts (net/cert.h makes them, net/tls.h
 * uses them).
 *
 *   weir cert ca --dir D                              the CA, in D
 *   weir cert host --dir D --name NAME [--ip ADDR]... a host's, signed by D's CA
 *
 * Exit status: 0 made; 1 not made (the line on stderr says why: a CA or
 * host there already, a refused folder, no CA); 2 bad usage.
 */
#include "base/err.h"
#include "cli/cli.h"
#include "cluster/daemons.h"
#include "net/cert.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define EXIT_FAIL 1
#define EXIT_USAGE 2

const char weir_cert_ca_usage[] = "usage: weir cert ca --dir D\n";
const char weir_cert_host_usage[] = "usage: weir cert host --dir D --name NAME [--ip ADDR]...\n";

static void cert_usage(FILE *f)
{
	static const char *const texts[] = { weir_cert_ca_usage, weir_cert_host_usage };
	weir_usage_print(f, texts, 2);
}

int weir_cert_main(int argc, char **argv)
{
	if (argc < 1 || weir_help_flag(argv[0])) {
		cert_usage(argc < 1 ? stderr : stdout);
		return argc < 1 ? EXIT_USAGE : 0;
	}
	const char *cmd = argv[0], *usage;
	bool host = !strcmp(cmd, "host");
	if (host)
		usage = weir_cert_host_usage;
	else if (!strcmp(cmd, "ca"))
		usage = weir_cert_ca_usage;
	else {
		fprintf(stderr, "weir cert: unknown command '%s'\n", cmd);
		cert_usage(stderr);
		return EXIT_USAGE;
	}
	const char *dir = NULL, *name = NULL, *ips[WEIR_CERT_IPS_MAX];
	size_t nips = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool is_dir = !strcmp(a, "--dir"), is_name = host && !strcmp(a, "--name"),
		     is_ip = host && !strcmp(a, "--ip");
		if (weir_help_flag(a)) {
			fputs(usage, stdout);
			return 0;
		}
		if (!is_dir && !is_name && !is_ip) {
			fprintf(stderr, "weir cert %s: %s '%s'\n%s", cmd, a[0] == '-' ? "unknown option" : "unexpected argument",
				a, usage);
			return EXIT_USAGE;
		}
		if (!v) {
			fprintf(stderr, "weir cert %s: %s needs a value\n%s", cmd, a, usage);
			return EXIT_USAGE;
		}
		i++;
		if (is_ip) {
			if (nips == WEIR_CERT_IPS_MAX) {
				fprintf(stderr, "weir cert host: more than %d --ip\n%s", WEIR_CERT_IPS_MAX, usage);
				return EXIT_USAGE;
			}
			if (weir_cert_ip_check(v) < 0) {
				fprintf(stderr, "weir cert host: --ip: %s\n%s", weir_err_msg(), usage);
				return EXIT_USAGE;
			}
			ips[nips++] = v;
			continue;
		}
		const char **to = is_dir ? &dir : &name;
		if (*to) {
			fprintf(stderr, "weir cert %s: %s given twice\n%s", cmd, a, usage);
			return EXIT_USAGE;
		}
		*to = v;
	}
	if (!dir || (host && !name)) {
		fprintf(stderr, "weir cert %s: %s is required\n%s", cmd, !dir ? "--dir" : "--name", usage);
		return EXIT_USAGE;
	}
	if (host && weir_cert_name_check(name) < 0) {
		fprintf(stderr, "weir cert host: --name: %s\n%s", weir_err_msg(), usage);
		return EXIT_USAGE;
	}
	if (!host) {
		if (weir_cert_ca_create(dir) < 0) {
			fprintf(stderr, "weir cert ca: %s\n", weir_err_msg());
			return EXIT_FAIL;
		}
		printf("cluster CA made in '%s': %s goes to every host; %s stays here (it signs host certificates)\n",
		       dir, WEIR_CERT_CA_CRT, WEIR_CERT_CA_KEY);
		return 0;
	}
	int rc = weir_cert_host_create(dir, name, ips, nips);
	if (rc == -ENOENT) {
		fprintf(stderr, "weir cert host: %s (make the CA first: weir cert ca --dir %s)\n", weir_err_msg(), dir);
		return EXIT_FAIL;
	}
	if (rc < 0) {
		fprintf(stderr, "weir cert host: %s\n", weir_err_msg());
		return EXIT_FAIL;
	}
	printf("host '%s' certified in '%s': %s.crt and %s.key go to that host, with %s\n", name, dir, name, name,
	       WEIR_CERT_CA_CRT);
	return 0;
}
