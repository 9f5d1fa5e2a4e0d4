/* engine/cluster/config.c - see config.h. */
#include "cluster/config.h"
#include "cluster/hosts.h"
#include "graph/graph.h"
#include "base/err.h"
#include "base/num.h"
#include "base/log.h"
#include "sched/worker.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void weir_cluster_config_defaults(struct weir_cluster_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->bind, sizeof(c->bind), "127.0.0.1");
	snprintf(c->rest_bind, sizeof(c->rest_bind), "127.0.0.1");
	snprintf(c->log_level, sizeof(c->log_level), "info");
	c->segments = 1024;
	c->slot_wait_ms = 5000;
	c->cancel_timeout_ms = 30000;
	c->segment_size = 32768;
	c->ck_timeout_ms = 60000;
	c->ck_retain = 3;
	snprintf(c->ck_dir, sizeof(c->ck_dir), "checkpoints");
	c->restart_attempts = 3;
	c->restart_delay_ms = 100;
	snprintf(c->exchange, sizeof(c->exchange), "auto");
	c->hb_ms = 100;
	c->net_credits = 16;
	snprintf(c->idle, sizeof(c->idle), "sleep");
	c->spin_us = 50;
	c->hb_timeout_ms = 2000;
	snprintf(c->launcher, sizeof(c->launcher), "ssh");
	c->launch_timeout_ms = 30000;
}

enum kind { NUM, STR };

struct key {
	const char *name;
	enum kind kind;
	long lo, hi;
	size_t off, len;
};

#define NUMKEY(n, f, lo, hi) { n, NUM, lo, hi, offsetof(struct weir_cluster_config, f), 0 }
#define STRKEY(n, f) { n, STR, 0, 0, offsetof(struct weir_cluster_config, f), sizeof(((struct weir_cluster_config *)0)->f) }

static const struct key keys[] = {
	NUMKEY("taskmanagers", taskmanagers, 1, 64),
	NUMKEY("taskmanager.slots", slots, 1, 1024),
	NUMKEY("taskmanager.segments", segments, 16, (1 << 24) - 1), /* WEIR_SEG_MAX_INDEX */
	NUMKEY("taskmanager.segment_size", segment_size, 4096, 64 << 20),
	NUMKEY("taskmanager.cancel_timeout_ms", cancel_timeout_ms, 0, 24 * 3600 * 1000),
	NUMKEY("jobmanager.port", port, 0, 65535),
	NUMKEY("rest.port", rest_port, -1, 65535),
	STRKEY("rest.bind", rest_bind),
	NUMKEY("jobmanager.slot_wait_ms", slot_wait_ms, 0, 600000),
	STRKEY("jobmanager.bind", bind),
	STRKEY("run_dir", run_dir),
	STRKEY("log_level", log_level),
	NUMKEY("checkpoint.interval_ms", ck_interval_ms, 0, 24 * 3600 * 1000),
	NUMKEY("checkpoint.timeout_ms", ck_timeout_ms, 1, 24 * 3600 * 1000),
	NUMKEY("checkpoint.min_pause_ms", ck_min_pause_ms, 0, 24 * 3600 * 1000),
	NUMKEY("checkpoint.retain", ck_retain, 1, 1000),
	NUMKEY("checkpoint.at_least_once", ck_at_least_once, 0, 1),
	NUMKEY("checkpoint.unaligned", ck_unaligned, 0, 1),
	STRKEY("checkpoint.dir", ck_dir),
	NUMKEY("restart.attempts", restart_attempts, 0, 1000000),
	NUMKEY("restart.delay_ms", restart_delay_ms, 0, 3600 * 1000),
	NUMKEY("restart.max_delay_ms", restart_max_delay_ms, 0, 3600 * 1000),
	STRKEY("cluster.exchange", exchange),
	NUMKEY("exchange.credits", net_credits, 1, 1024),
	STRKEY("worker.idle", idle),
	NUMKEY("worker.spin_us", spin_us, 0, 10 * 1000 * 1000),
	NUMKEY("heartbeat.interval_ms", hb_ms, 10, 600000),
	NUMKEY("heartbeat.timeout_ms", hb_timeout_ms, 20, 600000),
	NUMKEY("tls.enabled", tls_enabled, 0, 1),
	STRKEY("tls.dir", tls_dir),
	STRKEY("tls.name", tls_name),
	STRKEY("cluster.hosts", hosts),
	STRKEY("cluster.launcher", launcher),
	STRKEY("cluster.remote_weir", remote_weir),
	STRKEY("cluster.remote_run_dir", remote_run_dir),
	NUMKEY("cluster.launch_timeout_ms", launch_timeout_ms, 1000, 600000),
};
_Static_assert(sizeof(keys) / sizeof(keys[0]) <= 64, "set() keeps the keys seen in a uint64_t");

static int set(const char *path, int line, const char *k, const char *v, struct weir_cluster_config *c, uint64_t *seen)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct key *key = &keys[i];
		if (strcmp(key->name, k))
			continue;
		if (*seen & (1ull << i))
			return weir_err_set("%s:%d: '%s' is given twice", path, line, k);
		*seen |= 1ull << i;
		if (key->kind == STR) {
			if (!*v || strlen(v) >= key->len)
				return weir_err_set("%s:%d: %s: '%s' is empty or too long", path, line, k, v);
			enum weir_log_level lv;
			if (!strcmp(k, "log_level") && weir_log_parse_level(v, &lv) < 0)
				return weir_err_set("%s:%d: %s: '%s' is not debug, info, warn or error", path, line, k, v);
			if (!strcmp(k, "cluster.exchange") && strcmp(v, "auto") && strcmp(v, "tcp"))
				return weir_err_set("%s:%d: %s: '%s' is not auto or tcp", path, line, k, v);
			enum weir_idle idle;
			if (!strcmp(k, "worker.idle") && weir_idle_parse(v, &idle) < 0)
				return weir_err_set("%s:%d: %s: '%s' is not sleep, busy, yield or backoff", path, line, k, v);
			/* words given to a launcher and a shell there: no control characters */
			if (!strncmp(k, "cluster.", 8) && strcmp(k, "cluster.exchange") &&
			    (!weir_hosts_command_ok(v) || (strcmp(k, "cluster.launcher") && strchr(v, '\t'))))
				return weir_err_set("%s:%d: %s: '%.100s' has control characters or only blanks", path,
						    line, k, v);
			snprintf((char *)c + key->off, key->len, "%s", v);
			return 0;
		}
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (!*v || *end || errno || n < key->lo || n > key->hi)
			return weir_err_set("%s:%d: %s: '%s' is not a whole number from %ld to %ld", path, line, k, v,
					    key->lo, key->hi);
		if (!strcmp(k, "taskmanager.segment_size") && (n & (n - 1)))
			return weir_err_set("%s:%d: %s: %ld is not a power of two", path, line, k, n);
		*(long *)((char *)c + key->off) = n;
		return 0;
	}
	return weir_err_set("%s:%d: unknown key '%s' (see docs/configuration.md)", path, line, k);
}

int weir_cluster_config_load(const char *path, struct weir_cluster_config *c)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return weir_err_errno(errno, "configuration '%s'", path);
	yaml_parser_t p;
	yaml_event_t ev;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	int rc = 0, depth = 0;
	uint64_t seen = 0;
	char key[128] = "";
	bool have_key = false, done = false;
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			rc = weir_err_set("%s:%zu: %s", path, p.problem_mark.line + 1,
					  p.problem ? p.problem : "not YAML");
			break;
		}
		int line = (int)ev.start_mark.line + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_MAPPING_START_EVENT:
			if (++depth > 1)
				rc = weir_err_set("%s:%d: values must be plain (key: value), not mappings", path, line);
			break;
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SEQUENCE_START_EVENT:
			rc = weir_err_set("%s:%d: values must be plain (key: value), not lists", path, line);
			break;
		case YAML_ALIAS_EVENT:
			rc = weir_err_set("%s:%d: aliases are not allowed", path, line);
			break;
		case YAML_SCALAR_EVENT: {
			const char *s = (const char *)ev.data.scalar.value;
			if (depth != 1) {
				rc = weir_err_set("%s:%d: the file must be a mapping of key: value lines", path, line);
			} else if (!have_key) {
				snprintf(key, sizeof(key), "%s", s);
				have_key = true;
			} else {
				rc = set(path, line, key, s, c, &seen);
				have_key = false;
			}
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (rc < 0)
			break;
	}
	yaml_parser_delete(&p);
	fclose(f);
	if (rc == 0 && c->ck_at_least_once && c->ck_unaligned)
		rc = weir_err_set("%s: checkpoint.at_least_once and checkpoint.unaligned exclude each other", path);
	return rc;
}

int weir_config_idle_option(struct weir_config *cfg, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	if (!strcmp(a, "--idle")) {
		enum weir_idle idle;
		if (!val || weir_idle_parse(val, &idle) < 0) {
			fprintf(stderr, "weir: --idle: '%s' is not sleep, busy, yield or backoff\n", val ? val : "");
			return -1;
		}
		cfg->idle = (int)idle;
		cfg->idle_set = true;
		(*i)++;
		return 1;
	}
	if (!strcmp(a, "--latency-interval")) {
		long long v;
		if (!val || weir_parse_num(val, 0, 3600ll * 1000, false, &v) < 0) {
			fprintf(stderr, "weir: --latency-interval: %s\n", val ? weir_err_msg() : "needs a number of milliseconds");
			return -1;
		}
		cfg->latency_interval_ms = (uint32_t)v;
		(*i)++;
		return 1;
	}
	if (!strcmp(a, "--debloat-us")) {
		long long v;
		if (!val || weir_parse_num(val, 0, 3600ll * 1000 * 1000, false, &v) < 0) {
			fprintf(stderr, "weir: --debloat-us: %s\n", val ? weir_err_msg() : "needs a number of microseconds");
			return -1;
		}
		cfg->debloat_ns = (uint64_t)v * 1000u;
		(*i)++;
		return 1;
	}
	if (!strcmp(a, "--spin-us")) {
		long long v;
		if (!val || weir_parse_num(val, 0, 10 * 1000 * 1000, false, &v) < 0) {
			fprintf(stderr, "weir: --spin-us: %s\n", val ? weir_err_msg() : "needs a number of microseconds");
			return -1;
		}
		cfg->spin_ns = (uint64_t)v * 1000u;
		cfg->idle_set = true;
		(*i)++;
		return 1;
	}
	return 0;
}

int weir_config_ck_option(struct weir_config *cfg, int argc, char **argv, int *i, long long interval_min)
{
	static const struct {
		const char *flag;
		long long lo, hi;
	} nums[] = {
		{ "--checkpoint-interval", 0, 24 * 3600 * 1000 }, { "--checkpoint-timeout", 1, 24 * 3600 * 1000 },
		{ "--checkpoint-min-pause", 0, 24 * 3600 * 1000 }, { "--checkpoint-retain", 1, 1000 },
		{ "--restart-attempts", 0, 1000000 }, { "--restart-delay", 0, 3600 * 1000 },
		{ "--restart-max-delay", 0, 3600 * 1000 },
	};
	const char *a = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
	bool alo = !strcmp(a, "--at-least-once"), una = !strcmp(a, "--unaligned");
	if (alo || una) {
		*(alo ? &cfg->at_least_once : &cfg->unaligned) = true;
		if (cfg->at_least_once && cfg->unaligned) {
			fprintf(stderr, "weir: --unaligned and --at-least-once exclude each other (unaligned "
					"checkpoints are exactly once without alignment)\n");
			return -1;
		}
		return 1;
	}
	bool dir = !strcmp(a, "--checkpoint-dir"), from = !strcmp(a, "--from-checkpoint") || !strcmp(a, "--from-savepoint");
	if (dir || from) {
		if (!val || !*val) {
			fprintf(stderr, "weir: %s needs a folder\n", a);
			return -1;
		}
		*(dir ? &cfg->checkpoint_dir : &cfg->restore_from) = val;
		(*i)++;
		return 1;
	}
	for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
		if (strcmp(a, nums[k].flag))
			continue;
		long long v, lo = k == 0 ? interval_min : nums[k].lo;
		if (!val) {
			fprintf(stderr, "weir: %s needs a value\n", a);
			return -1;
		}
		if (weir_parse_num(val, lo, nums[k].hi, false, &v) < 0) {
			fprintf(stderr, "weir: %s: %s\n", a, weir_err_msg());
			return -1;
		}
		uint32_t *dst[] = { &cfg->checkpoint_interval_ms, &cfg->checkpoint_timeout_ms,
				    &cfg->checkpoint_min_pause_ms, &cfg->checkpoint_retain, &cfg->restart_attempts,
				    &cfg->restart_delay_ms, &cfg->restart_max_delay_ms };
		*dst[k] = (uint32_t)v;
		(*i)++;
		return 1;
	}
	return 0;
}
