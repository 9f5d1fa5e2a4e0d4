/* engine/cluster/hosts.c - see hosts.h. */
#include "cluster/hosts.h"
#include "base/err.h"
#include "base/num.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

/* libyaml's events, pulled one at a time. */
struct yp {
	yaml_parser_t p;
	yaml_event_t ev;
	bool have;	/* ev holds an event (to delete before the next) */
	const char *path;
};

static int pull(struct yp *y)
{
	if (y->have)
		yaml_event_delete(&y->ev);
	y->have = false;
	if (!yaml_parser_parse(&y->p, &y->ev))
		return weir_err_set("%s:%zu: %s", y->path, y->p.problem_mark.line + 1,
				    y->p.problem ? y->p.problem : "not YAML");
	y->have = true;
	return 0;
}

static int line_of(const struct yp *y)
{
	return (int)y->ev.start_mark.line + 1;
}

static const char *scalar(const struct yp *y)
{
	return (const char *)y->ev.data.scalar.value;
}

/* What the event is, for "must be ..., not X". */
static const char *kind(const struct yp *y)
{
	switch (y->ev.type) {
	case YAML_MAPPING_START_EVENT: return "a mapping";
	case YAML_SEQUENCE_START_EVENT: return "a list";
	case YAML_ALIAS_EVENT: return "an alias";
	case YAML_SCALAR_EVENT: return "a plain value";
	default: return "something else";
	}
}

/* The value of key: a scalar. 0, or -1 with the trail set. */
static int value(struct yp *y, const char *key)
{
	if (pull(y) < 0)
		return -1;
	if (y->ev.type != YAML_SCALAR_EVENT)
		return weir_err_set("%s:%d: %s: must be a plain value, not %s", y->path, line_of(y), key, kind(y));
	return 0;
}

/* An IPv4 or IPv6 literal that other hosts can reach (not a wildcard),
 * into out (n bytes). 0, or -1 with the trail set. */
static int address(const struct yp *y, const char *key, const char *v, char *out, size_t n)
{
	unsigned char b[16] = { 0 };
	size_t len = inet_pton(AF_INET, v, b) == 1 ? 4 : inet_pton(AF_INET6, v, b) == 1 ? 16 : 0;
	if (!len)
		return weir_err_set("%s:%d: %s: '%.100s' is not an IPv4 or IPv6 address%s", y->path, line_of(y), key, v,
				    strcmp(key, "address") ? "" : " (a host name goes in 'host')");
	static const unsigned char zero[16];
	if (!memcmp(b, zero, len))
		return weir_err_set("%s:%d: %s: '%s' is a wildcard: give the address the other hosts reach", y->path,
				    line_of(y), key, v);
	if (strlen(v) >= n)
		return weir_err_set("%s:%d: %s: '%.100s' is too long", y->path, line_of(y), key, v);
	snprintf(out, n, "%s", v);
	return 0;
}

/* Do a and b name the same address (however written)? */
static bool same_address(const char *a, const char *b)
{
	unsigned char x[16] = { 0 }, z[16] = { 0 };
	int fa = inet_pton(AF_INET, a, x) == 1 ? AF_INET : inet_pton(AF_INET6, a, x) == 1 ? AF_INET6 : 0;
	int fb = inet_pton(AF_INET, b, z) == 1 ? AF_INET : inet_pton(AF_INET6, b, z) == 1 ? AF_INET6 : 0;
	return fa && fa == fb && !memcmp(x, z, sizeof(x));
}

bool weir_hosts_command_ok(const char *s)
{
	bool word = false;
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return false;
		if (*p == 0x7f)
			return false;
		word |= *p != ' ' && *p != '\t';
	}
	return word;
}

static const char *const tm_keys[] = { "address", "host", "slots", "numa_node", "launcher" };

/* One entry of taskmanagers (its MAPPING_START is the current event). */
static int entry(struct yp *y, struct weir_hosts *h)
{
	int start = line_of(y);
	if (h->n >= WEIR_HOSTS_LOCAL_MAX + WEIR_HOSTS_REMOTE_MAX)
		return weir_err_set("%s:%d: more than %d taskmanagers", y->path, start,
				    WEIR_HOSTS_LOCAL_MAX + WEIR_HOSTS_REMOTE_MAX);
	struct weir_hosts_tm *t = &h->tm[h->n];
	memset(t, 0, sizeof(*t));
	t->numa_node = -1;
	t->line = start;
	unsigned seen = 0;
	for (;;) {
		if (pull(y) < 0)
			return -1;
		if (y->ev.type == YAML_MAPPING_END_EVENT)
			break;
		if (y->ev.type != YAML_SCALAR_EVENT)
			return weir_err_set("%s:%d: a taskmanager's keys must be plain words, not %s", y->path, line_of(y),
					    kind(y));
		char key[64];
		snprintf(key, sizeof(key), "%s", scalar(y));
		size_t k = 0;
		while (k < sizeof(tm_keys) / sizeof(tm_keys[0]) && strcmp(key, tm_keys[k]))
			k++;
		if (k == sizeof(tm_keys) / sizeof(tm_keys[0]))
			return weir_err_set("%s:%d: unknown key '%s' in a taskmanager (address, host, slots, numa_node, "
					    "launcher; see docs/operations.md)", y->path, line_of(y), key);
		if (seen & (1u << k))
			return weir_err_set("%s:%d: '%s' is given twice", y->path, line_of(y), key);
		seen |= 1u << k;
		if (value(y, key) < 0)
			return -1;
		const char *v = scalar(y);
		long long num;
		switch (k) {
		case 0:
			if (address(y, key, v, t->address, sizeof(t->address)) < 0)
				return -1;
			break;
		case 1:
			if (!*v || strlen(v) >= sizeof(t->host))
				return weir_err_set("%s:%d: host: '%.100s' is empty or too long", y->path, line_of(y), v);
			if (v[0] == '-')
				return weir_err_set("%s:%d: host: '%.100s' starts with '-' (the launcher would take it for "
						    "an option)", y->path, line_of(y), v);
			for (const char *p = v; *p; p++)
				if ((unsigned char)*p <= ' ' || *p == 0x7f)
					return weir_err_set("%s:%d: host: '%.100s' has a blank or control character",
							    y->path, line_of(y), v);
			snprintf(t->host, sizeof(t->host), "%s", v);
			t->host_line = line_of(y);
			break;
		case 2:
		case 3:
			if (weir_parse_num(v, k == 2 ? 1 : 0, k == 2 ? 1024 : 4095, false, &num) < 0)
				return weir_err_set("%s:%d: %s: '%.100s' is not a whole number from %d to %d", y->path,
						    line_of(y), key, v, k == 2 ? 1 : 0, k == 2 ? 1024 : 4095);
			*(k == 2 ? &t->slots : &t->numa_node) = (long)num;
			break;
		default:
			if (strlen(v) >= sizeof(t->launcher) || !weir_hosts_command_ok(v))
				return weir_err_set("%s:%d: launcher: '%.100s' is empty, too long or has control "
						    "characters", y->path, line_of(y), v);
			snprintf(t->launcher, sizeof(t->launcher), "%s", v);
			t->launcher_line = line_of(y);
			break;
		}
	}
	if (!t->address[0])
		return weir_err_set("%s:%d: a taskmanager without 'address' (the address it is reached on)", y->path,
				    start);
	if (!t->host[0])
		memcpy(t->host, t->address, sizeof(t->address)); /* both NUL-terminated, host the larger */
	h->n++;
	return 0;
}

static int document(struct yp *y, struct weir_hosts *h)
{
	if (pull(y) < 0)
		return -1;
	if (y->ev.type == YAML_STREAM_END_EVENT)
		return weir_err_set("%s: the file is empty (it needs jobmanager: ADDRESS and taskmanagers: a list)",
				    y->path);
	if (pull(y) < 0) /* the document's first node */
		return -1;
	if (y->ev.type != YAML_MAPPING_START_EVENT)
		return weir_err_set("%s:%d: the file must be a mapping (jobmanager: ADDRESS, taskmanagers: a list), not "
				    "%s", y->path, line_of(y), kind(y));
	bool have_jm = false, have_tms = false;
	int tms_line = 0;
	for (;;) {
		if (pull(y) < 0)
			return -1;
		if (y->ev.type == YAML_MAPPING_END_EVENT)
			break;
		if (y->ev.type != YAML_SCALAR_EVENT)
			return weir_err_set("%s:%d: keys must be plain words, not %s", y->path, line_of(y), kind(y));
		char key[64];
		snprintf(key, sizeof(key), "%s", scalar(y));
		bool jm = !strcmp(key, "jobmanager"), tms = !strcmp(key, "taskmanagers");
		if (!jm && !tms)
			return weir_err_set("%s:%d: unknown key '%s' (jobmanager, taskmanagers; see docs/operations.md)",
					    y->path, line_of(y), key);
		if (jm ? have_jm : have_tms)
			return weir_err_set("%s:%d: '%s' is given twice", y->path, line_of(y), key);
		if (jm) {
			have_jm = true;
			if (value(y, key) < 0 || address(y, key, scalar(y), h->jobmanager, sizeof(h->jobmanager)) < 0)
				return -1;
			continue;
		}
		have_tms = true;
		if (pull(y) < 0)
			return -1;
		tms_line = line_of(y);
		if (y->ev.type != YAML_SEQUENCE_START_EVENT)
			return weir_err_set("%s:%d: taskmanagers: must be a list (- address: ADDRESS ...), not %s", y->path,
					    line_of(y), kind(y));
		for (;;) {
			if (pull(y) < 0)
				return -1;
			if (y->ev.type == YAML_SEQUENCE_END_EVENT)
				break;
			if (y->ev.type != YAML_MAPPING_START_EVENT)
				return weir_err_set("%s:%d: a taskmanager must be a mapping (- address: ADDRESS ...), not %s",
						    y->path, line_of(y), kind(y));
			if (entry(y, h) < 0)
				return -1;
		}
	}
	if (pull(y) < 0) /* DOCUMENT_END */
		return -1;
	if (pull(y) < 0)
		return -1;
	if (y->ev.type != YAML_STREAM_END_EVENT)
		return weir_err_set("%s:%d: one document only", y->path, line_of(y));
	if (!have_jm)
		return weir_err_set("%s: no 'jobmanager' (the address of this host that it binds and the others reach)",
				    y->path);
	if (!have_tms)
		return weir_err_set("%s: no 'taskmanagers' (a list: - address: ADDRESS ...)", y->path);
	if (h->n == 0)
		return weir_err_set("%s:%d: taskmanagers: the list is empty", y->path, tms_line);
	/* which entries are local (the jobmanager may come after the list) */
	int nremote = 0;
	h->nlocal = 0;
	for (int i = 0; i < h->n; i++) {
		struct weir_hosts_tm *t = &h->tm[i];
		t->local = same_address(t->address, h->jobmanager);
		if (t->local && (t->host_line || t->launcher_line))
			return weir_err_set("%s:%d: %s: this taskmanager is on the jobmanager's host (address %s): weir "
					    "cluster start starts it itself, without a launcher", y->path,
					    t->launcher_line ? t->launcher_line : t->host_line,
					    t->launcher_line ? "launcher" : "host", t->address);
		t->local ? h->nlocal++ : nremote++;
		if (h->nlocal > WEIR_HOSTS_LOCAL_MAX || nremote > WEIR_HOSTS_REMOTE_MAX)
			return weir_err_set("%s:%d: more than %d taskmanagers %s", y->path, t->line,
					    t->local ? WEIR_HOSTS_LOCAL_MAX : WEIR_HOSTS_REMOTE_MAX,
					    t->local ? "on the jobmanager's host" : "on other hosts");
	}
	return 0;
}

int weir_hosts_load(const char *path, struct weir_hosts *h)
{
	memset(h, 0, sizeof(*h));
	FILE *f = fopen(path, "rb");
	if (!f)
		return weir_err_errno(errno, "hosts file '%s'", path);
	struct yp y = { .path = path };
	yaml_parser_initialize(&y.p);
	yaml_parser_set_input_file(&y.p, f);
	int rc = pull(&y); /* STREAM_START */
	if (rc == 0)
		rc = document(&y, h);
	if (y.have)
		yaml_event_delete(&y.ev);
	yaml_parser_delete(&y.p);
	fclose(f);
	return rc < 0 ? -1 : 0;
}
