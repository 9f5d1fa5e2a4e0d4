/* engine/cluster/ctlio.c - see ctlio.h. */
#include "cluster/ctlio.h"
#include "net/cert.h"
#include "net/tls.h"
#include "graph/graph.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/safedir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void weir_rundir_init(struct weir_rundir *rd, const char *flag)
{
	const char *env = getenv("WEIR_RUN_DIR");
	if (flag && *flag)
		snprintf(rd->dir, sizeof(rd->dir), "%s", flag);
	else if (env && *env)
		snprintf(rd->dir, sizeof(rd->dir), "%s", env);
	else
		snprintf(rd->dir, sizeof(rd->dir), "/tmp/weir-%u", (unsigned)getuid());
}

int weir_rundir_check(struct weir_rundir *rd, bool create)
{
	return weir_safedir_check(rd->dir, sizeof(rd->dir), WEIR_SAFEDIR_PRIVATE | (create ? WEIR_SAFEDIR_CREATE : 0),
				  "run folder");
}

void weir_rundir_path(const struct weir_rundir *rd, const char *file, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", rd->dir, file);
}

int weir_write_file_atomic(const char *path, const char *content)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return weir_err_errno(errno, "create '%s'", tmp);
	size_t len = strlen(content);
	if (write(fd, content, len) != (ssize_t)len || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return weir_err_errno(e, "write '%s'", tmp);
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return weir_err_errno(e, "rename '%s'", path);
	}
	return 0;
}

int weir_read_small_file(const char *path, char *out, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return weir_err_errno(errno, "read '%s'", path);
	ssize_t r = read(fd, out, n - 1);
	int e = errno;
	close(fd);
	if (r < 0)
		return weir_err_errno(e, "read '%s'", path);
	out[r] = '\0';
	while (r > 0 && (out[r - 1] == '\n' || out[r - 1] == '\r'))
		out[--r] = '\0';
	return 0;
}

int weir_ctl_send(struct weir_conn *c, weir_msg *m)
{
	uint8_t *buf = NULL;
	long n = weir_ctl_encode_alloc(m, &buf);
	if (n < 0)
		return (int)n;
	int rc = weir_conn_send(c, WEIR_FRAME_CTL, buf, (uint32_t)n);
	free(buf);
	return rc;
}

int weir_ctl_send_body(struct weir_conn *c, uint64_t rid, Weir__Ctl__Envelope__BodyCase body_case, void *body)
{
	weir_msg m = WEIR__CTL__ENVELOPE__INIT;
	m.has_request_id = rid != 0;
	m.request_id = rid;
	m.body_case = body_case;
	/* the oneof is a union of pointers to messages, which all share one
	 * representation (C11 6.2.5p28): storing through one member is
	 * storing the body for whichever case body_case names */
	m.ok = body;
	return weir_ctl_send(c, &m);
}

/* ---- the synchronous client ------------------------------------------------- */

struct weir_ctl_client {
	struct weir_loop *loop;
	struct weir_tls_ctx *tls;	/* the cluster speaks TLS (run folder's tls file), else NULL */
	struct weir_conn *conn;
	struct weir_auth auth;
	bool authed;
	bool closed;
	int close_reason;
	uint64_t next_id;
	uint64_t want_id;
	weir_msg *reply;
	/* more answers to the same request that came in the same read (a job
	 * that fails at once: JobAccepted and its JobInfo together) */
	weir_msg *queued[8];
	int nqueued;
	char error[512];
};

static int client_frame(struct weir_conn *c, uint16_t type, const uint8_t *p, uint32_t len, void *arg)
{
	struct weir_ctl_client *cl = arg;
	if (type != WEIR_FRAME_CTL)
		return -EPROTO;
	weir_msg *m;
	if (weir_ctl_decode(p, len, &m) < 0) {
		snprintf(cl->error, sizeof(cl->error), "bad message from the jobmanager: %s", weir_err_msg());
		return -EPROTO;
	}
	if (!cl->authed) {
		int rc = weir_auth_feed_msg(&cl->auth, m);
		weir_ctl_free(m);
		uint8_t out[WEIR_AUTH_OUT_MAX];
		long n = weir_auth_take_output(&cl->auth, out, sizeof(out));
		if (n > 0)
			weir_conn_send(c, WEIR_FRAME_CTL, out, (uint32_t)n);
		if (rc == 1)
			cl->authed = true;
		if (rc < 0) {
			snprintf(cl->error, sizeof(cl->error), "the jobmanager refused us: %s",
				 weir_auth_reason(&cl->auth)[0] ? weir_auth_reason(&cl->auth) : weir_err_msg());
			return -EACCES;
		}
		return 0;
	}
	if (m->has_request_id && m->request_id == cl->want_id) {
		if (!cl->reply) {
			cl->reply = m;
			return 0;
		}
		if (cl->nqueued < 8) {
			cl->queued[cl->nqueued++] = m;
			return 0;
		}
	}
	weir_ctl_free(m); /* not ours to wait for */
	return 0;
}

static void client_close(struct weir_conn *c, int reason, void *arg)
{
	(void)c;
	struct weir_ctl_client *cl = arg;
	cl->closed = true;
	cl->close_reason = reason;
}

/* Run the loop until done() or the deadline; -1 with the trail on failure. */
static int run_until(struct weir_ctl_client *cl, bool (*done)(struct weir_ctl_client *), int timeout_ms,
		     const char *what)
{
	uint64_t deadline = weir_now_ns() + (uint64_t)timeout_ms * 1000000u;
	while (!done(cl)) {
		if (cl->closed) {
			if (cl->error[0])
				return weir_err_set("%s", cl->error);
			return weir_err_set("%s: the jobmanager closed the connection (%s)", what,
					    cl->close_reason ? strerror(-cl->close_reason) : "orderly");
		}
		uint64_t now = weir_now_ns();
		if (now >= deadline)
			return weir_err_set("%s: no answer from the jobmanager within %d ms", what, timeout_ms);
		weir_loop_run_once(cl->loop, (int)((deadline - now) / 1000000u) + 1);
	}
	return 0;
}

static bool is_authed(struct weir_ctl_client *cl) { return cl->authed; }
static bool has_reply(struct weir_ctl_client *cl) { return cl->reply != NULL; }

int weir_ctl_client_open(struct weir_ctl_client **out, const struct weir_rundir *rd, const char *name)
{
	return weir_ctl_client_open_as(out, rd, name, WEIR__CTL__ROLE__ROLE_CLIENT);
}

int weir_ctl_client_open_as(struct weir_ctl_client **out, const struct weir_rundir *given, const char *name,
			    Weir__Ctl__Role role)
{
	*out = NULL;
	char path[PATH_MAX], addr[128], secret_path[PATH_MAX];
	struct weir_rundir checked = *given, *rd = &checked;
	int chk = weir_rundir_check(rd, false);
	if (chk < 0)
		return -1;
	weir_rundir_path(rd, "jobmanager.addr", path, sizeof(path));
	if (chk == 1 || (access(path, F_OK) != 0 && errno == ENOENT))
		return weir_err_set("no cluster running in '%s' (no jobmanager.addr; start one with weir cluster start)",
				    rd->dir);
	if (weir_read_small_file(path, addr, sizeof(addr)) < 0)
		return -1;
	char *colon = strrchr(addr, ':');
	long port = colon ? strtol(colon + 1, NULL, 10) : 0;
	if (!colon || port <= 0 || port > 65535)
		return weir_err_set("'%s' holds '%s', not host:port", path, addr);
	*colon = '\0';
	const char *host = addr[0] == '[' ? addr + 1 : addr;
	if (addr[0] == '[' && colon[-1] == ']')
		colon[-1] = '\0';
	struct weir_auth_secret secret;
	weir_rundir_path(rd, "secret", secret_path, sizeof(secret_path));
	if (weir_auth_secret_load(secret_path, &secret) < 0)
		return -1;
	/* a cluster started with TLS: towards the JobManager too */
	char tdir[PATH_MAX], tname[256];
	struct weir_tls_ctx *tls = NULL;
	int t = weir_rundir_tls(rd, tdir, sizeof(tdir), tname, sizeof(tname));
	if (t < 0 || (t == 1 && weir_cluster_tls(tdir, tname, NULL, &tls) < 0)) {
		weir_auth_secret_wipe(&secret);
		return -1;
	}
	struct weir_ctl_client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		weir_tls_ctx_destroy(tls);
		return weir_err_set("out of memory");
	}
	cl->tls = tls;
	struct weir_loop_config cfg = { .entries = 16, .max_conns = 4, .on_frame = client_frame,
					.on_close = client_close, .arg = cl, .tls_client = tls };
	cl->loop = weir_loop_create(&cfg);
	if (!cl->loop) {
		weir_tls_ctx_destroy(tls);
		free(cl);
		return -1;
	}
	weir_auth_client_init(&cl->auth, &secret, role, name);
	weir_auth_secret_wipe(&secret);
	if (weir_loop_connect(cl->loop, host, (uint16_t)port, 2000, &cl->conn) < 0) {
		weir_err_wrap("connect %s:%ld", host, port);
		weir_ctl_client_close(cl);
		return -1;
	}
	uint8_t hello[WEIR_AUTH_OUT_MAX];
	long n = weir_auth_take_output(&cl->auth, hello, sizeof(hello));
	if (n > 0)
		weir_conn_send(cl->conn, WEIR_FRAME_CTL, hello, (uint32_t)n);
	char what[200];
	snprintf(what, sizeof(what), "jobmanager at %s:%ld", host, port);
	if (run_until(cl, is_authed, 5000, what) < 0) {
		if (cl->close_reason == -ECONNREFUSED || cl->close_reason == -ETIMEDOUT)
			weir_err_set("connect %s:%ld: %s (is the cluster in '%s' running?)", host, port,
				     strerror(-cl->close_reason), rd->dir);
		weir_ctl_client_close(cl);
		return -1;
	}
	*out = cl;
	return 0;
}

int weir_ctl_client_call(struct weir_ctl_client *cl, weir_msg *req, weir_msg **reply, int timeout_ms)
{
	*reply = NULL;
	req->has_request_id = true;
	req->request_id = cl->want_id = ++cl->next_id;
	for (int i = 0; i < cl->nqueued; i++) /* answers to an older request */
		weir_ctl_free(cl->queued[i]);
	cl->nqueued = 0;
	if (weir_ctl_send(cl->conn, req) < 0)
		return weir_err_set("send to the jobmanager failed");
	if (run_until(cl, has_reply, timeout_ms, "request") < 0)
		return -1;
	*reply = cl->reply;
	cl->reply = NULL;
	if ((*reply)->body_case == WEIR__CTL__ENVELOPE__BODY_ERROR) {
		weir_err_set("%s", (*reply)->error->message);
		weir_ctl_free(*reply);
		*reply = NULL;
		return -1;
	}
	return 0;
}

static void dequeue(struct weir_ctl_client *cl);

int weir_ctl_client_wait(struct weir_ctl_client *cl, weir_msg **reply, int timeout_ms)
{
	*reply = NULL;
	dequeue(cl);
	if (run_until(cl, has_reply, timeout_ms, "wait") < 0) {
		if (!cl->closed && !cl->error[0] && strstr(weir_err_msg(), "no answer"))
			return 0;
		return -1;
	}
	*reply = cl->reply;
	cl->reply = NULL;
	return 1;
}

/* The next queued answer becomes the current one. */
static void dequeue(struct weir_ctl_client *cl)
{
	if (!cl->reply && cl->nqueued) {
		cl->reply = cl->queued[0];
		memmove(cl->queued, cl->queued + 1, sizeof(cl->queued[0]) * (size_t)--cl->nqueued);
	}
}

int weir_ctl_client_post(struct weir_ctl_client *cl, weir_msg *req)
{
	req->has_request_id = true;
	req->request_id = ++cl->next_id;
	return weir_ctl_send(cl->conn, req) < 0 ? weir_err_set("send to the jobmanager failed") : 0;
}

void weir_ctl_client_close(struct weir_ctl_client *cl)
{
	if (!cl)
		return;
	if (cl->loop)
		weir_loop_destroy(cl->loop);
	if (cl->reply)
		weir_ctl_free(cl->reply);
	for (int i = 0; i < cl->nqueued; i++)
		weir_ctl_free(cl->queued[i]);
	weir_auth_release(&cl->auth);
	weir_tls_ctx_destroy(cl->tls); /* after the loop: its sessions used it */
	free(cl);
}

void weir_ctl_ck_config(const struct weir_config *cfg, const char *dir, const char *restore,
			Weir__Ctl__CheckpointConfig *out)
{
	Weir__Ctl__CheckpointConfig c = WEIR__CTL__CHECKPOINT_CONFIG__INIT;
	c.interval_ms = cfg->checkpoint_interval_ms;
	c.dir = (char *)dir;
	c.has_timeout_ms = c.has_min_pause_ms = c.has_retain = c.has_at_least_once = true;
	c.timeout_ms = cfg->checkpoint_timeout_ms;
	c.min_pause_ms = cfg->checkpoint_min_pause_ms;
	c.retain = cfg->checkpoint_retain;
	c.at_least_once = cfg->at_least_once;
	c.has_unaligned = true;
	c.unaligned = cfg->unaligned;
	c.has_restart_attempts = c.has_restart_delay_ms = c.has_restart_max_delay_ms = true;
	c.restart_attempts = cfg->restart_attempts;
	c.restart_delay_ms = cfg->restart_delay_ms;
	c.restart_max_delay_ms = cfg->restart_max_delay_ms;
	c.restore_from = (char *)restore;
	*out = c;
}

int weir_host_identity(char *buf, size_t n)
{
	char boot[64];
	struct stat shm, net;
	if (weir_read_small_file("/proc/sys/kernel/random/boot_id", boot, sizeof(boot)) < 0)
		return weir_err_wrap("this machine's identity");
	boot[strcspn(boot, "\n")] = '\0';
	if (stat("/dev/shm", &shm) < 0)
		return weir_err_errno(errno, "this machine's identity: /dev/shm");
	if (stat("/proc/self/ns/net", &net) < 0)
		return weir_err_errno(errno, "this machine's identity: its network namespace");
	snprintf(buf, n, "%s/shm%llx/net%llu", boot, (unsigned long long)shm.st_dev, (unsigned long long)net.st_ino);
	return 0;
}

int weir_cluster_tls(const char *dir, const char *name, struct weir_tls_ctx **server, struct weir_tls_ctx **client)
{
	struct weir_cert_paths cp;
	if (weir_cert_paths(dir, name, &cp) < 0)
		return -1;
	struct weir_tls_files f = { cp.ca, cp.crt, cp.key };
	if (server && !(*server = weir_tls_ctx_create(&f, true)))
		return weir_err_wrap("TLS (certificate '%s' in '%s')", name, dir);
	if (client && !(*client = weir_tls_ctx_create(&f, false))) {
		if (server) {
			weir_tls_ctx_destroy(*server);
			*server = NULL;
		}
		return weir_err_wrap("TLS (certificate '%s' in '%s')", name, dir);
	}
	return 0;
}

int weir_rundir_tls(const struct weir_rundir *rd, char *dir, size_t dn, char *name, size_t nn)
{
	char path[PATH_MAX], buf[PATH_MAX + 320];
	weir_rundir_path(rd, "tls", path, sizeof(path));
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	if (weir_read_small_file(path, buf, sizeof(buf)) < 0)
		return -1;
	char *nl = strchr(buf, '\n');
	if (!nl || nl == buf || !nl[1])
		return weir_err_set("'%s' does not hold a certificate folder and a name", path);
	*nl = '\0';
	char *n2 = nl + 1;
	n2[strcspn(n2, "\n")] = '\0';
	snprintf(dir, dn, "%s", buf);
	snprintf(name, nn, "%s", n2);
	return 1;
}
