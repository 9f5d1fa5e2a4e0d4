/* t1600-jm-auth: a real JobManager process refuses 1000 attempts without
 * the secret: a wrong secret (a client whose run folder holds another), no
 * handshake at all (a request sent straight away), and a truncated
 * handshake. None gets an answer beyond the refusal; a correct client
 * still works afterwards, and the JobManager stays up. Then that client's
 * bad uploads (a first chunk not at offset 0, bytes that do not match
 * their digest, a submission of an object never uploaded) are refused
 * with nothing stored, and a good one is stored under its digest. Last,
 * an authenticated TaskManager registering with pid 0 or 1 or with 0
 * slots is refused (cluster stop signals that pid: kill(0) would hit its
 * own process group) and never listed. */
#include "tap.h"
#include "cluster/ctlio.h"
#include "base/err.h"
#include "net/frame.h"
#include "ctl/objstore.h"
#include "ctl/sha.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256], dir2[256];

static void path_in(const char *d, const char *f, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", d, f);
}

static int raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read what the JobManager sends until it closes; true if any frame in it
 * was a cluster status (which only an authenticated client may get). */
static int got_status;
static int on_frame(void *arg, uint16_t type, const uint8_t *p, uint32_t len)
{
	(void)arg, (void)type;
	weir_msg *m;
	if (weir_ctl_decode(p, len, &m) == 0) {
		if (m->body_case == WEIR__CTL__ENVELOPE__BODY_CLUSTER_STATUS)
			got_status++;
		weir_ctl_free(m);
	}
	return 0;
}

static bool drained_without_status(int fd)
{
	struct weir_frame_dec d;
	weir_frame_dec_init(&d, 0);
	got_status = 0;
	uint8_t buf[4096];
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10000) != 1)
			break; /* the JobManager must close within its handshake deadline */
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		weir_frame_dec_feed(&d, buf, (size_t)n, on_frame, NULL);
	}
	weir_frame_dec_release(&d);
	close(fd);
	return got_status == 0;
}

/* A one-vertex job named `name` whose object has digest sha and size
 * bytes: the submission in *sj, its graph in the rest. */
struct fake_job {
	Weir__Ctl__Vertex vx, *vxp;
	Weir__Ctl__JobGraph gr;
	Weir__Ctl__SubmitJob sj;
};
static void fake_job(struct fake_job *f, const char *name, uint8_t *sha, uint64_t size)
{
	Weir__Ctl__Vertex vx = WEIR__CTL__VERTEX__INIT;
	Weir__Ctl__JobGraph gr = WEIR__CTL__JOB_GRAPH__INIT;
	Weir__Ctl__SubmitJob sj = WEIR__CTL__SUBMIT_JOB__INIT;
	f->vx = vx;
	f->vx.name = "v";
	f->vx.parallelism = 1;
	f->vxp = &f->vx;
	f->gr = gr;
	f->gr.n_vertices = 1;
	f->gr.vertices = &f->vxp;
	f->sj = sj;
	f->sj.name = (char *)name;
	f->sj.object_sha256.data = sha;
	f->sj.object_sha256.len = 32;
	f->sj.object_size = size;
	f->sj.parallelism = 1;
	f->sj.graph = &f->gr;
}

int main(int argc, char **argv)
{
	alarm(300);
	(void)argc;
	char bin[512];
	const char *b = getenv("WEIR_BUILD");
	if (b)
		snprintf(bin, sizeof(bin), "%s/bin/weir", b);
	else
		snprintf(bin, sizeof(bin), "%.*s/../bin/weir", (int)(strrchr(argv[0], '/') - argv[0]), argv[0]);
	snprintf(dir, sizeof(dir), "/tmp/weir-t1600-%d", (int)getpid());
	snprintf(dir2, sizeof(dir2), "/tmp/weir-t1600-%d-wrong", (int)getpid());
	mkdir(dir, 0700);
	mkdir(dir2, 0700);
	char p[512], p2[512];
	path_in(dir, "secret", p, sizeof(p));
	path_in(dir2, "secret", p2, sizeof(p2));
	struct weir_auth_secret s;
	if (weir_auth_secret_create(p, &s) < 0 || weir_auth_secret_create(p2, &s) < 0)
		bail("secrets: %s", weir_err_msg());
	path_in(dir, "cluster.id", p, sizeof(p));
	weir_write_file_atomic(p, "ct1600");

	int fds[2];
	if (pipe(fds) < 0)
		bail("pipe");
	pid_t jm = fork();
	if (jm == 0) {
		close(fds[0]);
		if (fds[1] != 3) {
			dup2(fds[1], 3);
			close(fds[1]);
		}
		char log[512];
		path_in(dir, "jobmanager.log", log, sizeof(log));
		int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(lf, 2);
		execl(bin, bin, "jobmanager", "--run-dir", dir, "--ready-fd", "3", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char r = 0;
	if (read(fds[0], &r, 1) != 1 || r != 'R')
		bail("the jobmanager did not start (%s)", bin);
	close(fds[0]);
	char addr[128];
	path_in(dir, "jobmanager.addr", p, sizeof(p));
	weir_read_small_file(p, addr, sizeof(addr));
	int port = atoi(strrchr(addr, ':') + 1);
	/* the wrong folder points at the same jobmanager */
	path_in(dir2, "jobmanager.addr", p2, sizeof(p2));
	weir_write_file_atomic(p2, addr);

	struct weir_rundir good, bad;
	snprintf(good.dir, sizeof(good.dir), "%s", dir);
	snprintf(bad.dir, sizeof(bad.dir), "%s", dir2);

	/* 1. a wrong secret, 400 times */
	int accepted = 0, refused_msg = 0;
	for (int i = 0; i < 400; i++) {
		struct weir_ctl_client *c;
		if (weir_ctl_client_open(&c, &bad, "intruder") == 0) {
			accepted++;
			weir_ctl_client_close(c);
		} else if (strstr(weir_err_msg(), "refused")) {
			refused_msg++;
		}
	}
	is_int(accepted, 0, "400 clients with a wrong secret: none accepted");
	is_int(refused_msg, 400, "each is told it was refused");

	/* 2. no handshake: a status request straight away, 300 times */
	Weir__Ctl__GetClusterStatus g = WEIR__CTL__GET_CLUSTER_STATUS__INIT;
	weir_msg m = WEIR__CTL__ENVELOPE__INIT;
	m.body_case = WEIR__CTL__ENVELOPE__BODY_GET_CLUSTER_STATUS;
	m.get_cluster_status = &g;
	uint8_t enc[256], frame[300];
	long n = weir_ctl_encode(&m, enc, sizeof(enc));
	long fl = weir_frame_encode(frame, sizeof(frame), WEIR_FRAME_CTL, enc, (uint32_t)n);
	/* all at once, then read each until the JobManager closes it */
	int clean = 0, conns[300];
	for (int i = 0; i < 300; i++) {
		conns[i] = raw_connect(port);
		if (conns[i] >= 0 && write(conns[i], frame, (size_t)fl) != fl) {
			close(conns[i]);
			conns[i] = -1;
		}
	}
	for (int i = 0; i < 300; i++)
		if (conns[i] >= 0)
			clean += drained_without_status(conns[i]);
	is_int(clean, 300, "300 requests without a handshake: never answered with the cluster's status");

	/* 2b. a job submitted without a handshake, 100 times */
	{
		static uint8_t fake[4096], sj_enc[8192], sj_frame[8300];
		uint8_t sha[32];
		weir_sha256_buf(fake, sizeof(fake), sha);
		struct fake_job fj;
		fake_job(&fj, "evil.so", sha, sizeof(fake));
		fj.sj.has_object = true;
		fj.sj.object.data = fake;
		fj.sj.object.len = sizeof(fake);
		weir_msg sm0 = WEIR__CTL__ENVELOPE__INIT;
		sm0.body_case = WEIR__CTL__ENVELOPE__BODY_SUBMIT_JOB;
		sm0.submit_job = &fj.sj;
		long en = weir_ctl_encode(&sm0, sj_enc, sizeof(sj_enc));
		long sfl = en > 0 ? weir_frame_encode(sj_frame, sizeof(sj_frame), WEIR_FRAME_CTL, sj_enc, (uint32_t)en) : -1;
		int sent = 0, sconns[100];
		for (int i = 0; i < 100; i++) {
			sconns[i] = raw_connect(port);
			if (sconns[i] >= 0 && sfl > 0 && write(sconns[i], sj_frame, (size_t)sfl) == sfl)
				sent++;
		}
		for (int i = 0; i < 100; i++)
			if (sconns[i] >= 0)
				drained_without_status(sconns[i]);
		is_int(sent, 100, "100 job submissions without a handshake sent");
	}

	/* 3. truncated handshakes: half a Hello, then close */
	int truncated = 0;
	for (int i = 0; i < 300; i++) {
		int fd = raw_connect(port);
		if (fd < 0)
			continue;
		if (write(fd, frame, (size_t)fl / 2) == fl / 2)
			truncated++;
		close(fd);
	}
	is_int(truncated, 300, "300 truncated handshakes sent and dropped");

	/* 4. the JobManager is up, and a correct client works */
	struct weir_ctl_client *c;
	weir_err_clear();
	ok(weir_ctl_client_open(&c, &good, "tester") == 0, "a client with the right secret is accepted%s%s",
	   weir_err_msg()[0] ? ": " : "", weir_err_msg());
	weir_msg *rep = NULL;
	ok(weir_ctl_client_call(c, &m, &rep, 5000) == 0 && rep &&
	   rep->body_case == WEIR__CTL__ENVELOPE__BODY_CLUSTER_STATUS && !strcmp(rep->cluster_status->cluster_id, "ct1600"),
	   "and gets the cluster's status");
	if (rep)
		weir_ctl_free(rep);
	/* 5. uploads */
	{
		static uint8_t obj[(1u << 20) + 10];
		for (size_t i = 0; i < sizeof(obj); i++)
			obj[i] = (uint8_t)(i * 2654435761u >> 13);
		uint8_t sha[32], other[32];
		weir_sha256_buf(obj, sizeof(obj), sha);
		weir_sha256_buf(obj, 10, other);
		char objdir[512];
		path_in(dir, "objects", objdir, sizeof(objdir));
		Weir__Ctl__ObjectChunk oc = WEIR__CTL__OBJECT_CHUNK__INIT;
		weir_msg cm = WEIR__CTL__ENVELOPE__INIT;
		cm.body_case = WEIR__CTL__ENVELOPE__BODY_OBJECT_CHUNK;
		cm.object_chunk = &oc;
		oc.object_sha256.len = 32;
		oc.has_last = true;
		/* (a) the first chunk at offset 5 */
		oc.object_sha256.data = sha;
		oc.offset = 5;
		oc.data.data = obj;
		oc.data.len = 10;
		int rc = weir_ctl_client_call(c, &cm, &rep, 5000);
		ok(rc < 0 && strstr(weir_err_msg(), "starts at offset 0"), "an upload starting at offset 5 is refused (%s)",
		   weir_err_msg());
		/* (b) two chunks whose bytes are not the ones named */
		int oks = 0;
		for (int k = 0; k < 2; k++) {
			oc.object_sha256.data = other;
			oc.offset = k ? 1u << 20 : 0;
			oc.data.data = obj + oc.offset;
			oc.data.len = k ? 10 : 1u << 20;
			oc.last = k == 1;
			weir_err_clear();
			rc = weir_ctl_client_call(c, &cm, &rep, 5000);
			oks += rc == 0;
			if (rep)
				weir_ctl_free(rep);
			rep = NULL;
		}
		ok(oks == 1 && strstr(weir_err_msg(), "do not match"), "an upload whose bytes differ from its digest is refused at its end (%s)",
		   weir_err_msg());
		ok(!weir_obj_have(objdir, other, sizeof(obj)), "and nothing is stored under that digest");
		char cmd2[700];
		snprintf(cmd2, sizeof(cmd2), "ls %s | grep -q part", objdir);
		ok(system(cmd2) != 0, "nor any partial file left");
		/* (c) a submission naming an object never uploaded */
		struct fake_job fj;
		fake_job(&fj, "ghost.so", sha, sizeof(obj));
		weir_msg sjm = WEIR__CTL__ENVELOPE__INIT;
		sjm.body_case = WEIR__CTL__ENVELOPE__BODY_SUBMIT_JOB;
		sjm.submit_job = &fj.sj;
		rc = weir_ctl_client_call(c, &sjm, &rep, 5000);
		ok(rc == 0 && rep && rep->body_case == WEIR__CTL__ENVELOPE__BODY_JOB_REJECTED &&
			   strstr(rep->job_rejected->reason, "not uploaded"),
		   "a submission of an object never uploaded is rejected (%s)",
		   rep && rep->body_case == WEIR__CTL__ENVELOPE__BODY_JOB_REJECTED ? rep->job_rejected->reason : "?");
		if (rep)
			weir_ctl_free(rep);
		rep = NULL;
		/* (d) a good upload in two chunks */
		oks = 0;
		for (int k = 0; k < 2; k++) {
			oc.object_sha256.data = sha;
			oc.offset = k ? 1u << 20 : 0;
			oc.data.data = obj + oc.offset;
			oc.data.len = k ? 10 : 1u << 20;
			oc.last = k == 1;
			rc = weir_ctl_client_call(c, &cm, &rep, 5000);
			oks += rc == 0 && rep && rep->body_case == WEIR__CTL__ENVELOPE__BODY_OK;
			if (rep)
				weir_ctl_free(rep);
			rep = NULL;
		}
		ok(oks == 2 && weir_obj_have(objdir, sha, sizeof(obj)), "a good upload in two chunks is stored under its digest");
		uint8_t back[64];
		uint64_t size = 0;
		long got = weir_obj_read(objdir, sha, (1u << 20) + 2, back, sizeof(back), &size);
		ok(got == 8 && size == sizeof(obj) && !memcmp(back, obj + (1u << 20) + 2, 8), "with its bytes");
	}
	/* 6. registrations cluster stop could not signal safely */
	{
		static const struct { uint32_t pid, slots; } bad_regs[] = { { 0, 2 }, { 1, 2 }, { 4242, 0 }, { 0x80000000u, 2 } };
		int refused = 0;
		for (size_t k = 0; k < sizeof(bad_regs) / sizeof(bad_regs[0]); k++) {
			struct weir_ctl_client *tc;
			if (weir_ctl_client_open_as(&tc, &good, "fake taskmanager", WEIR__CTL__ROLE__ROLE_TASKMANAGER) < 0) {
				diag("fake taskmanager: %s", weir_err_msg());
				continue;
			}
			Weir__Ctl__PoolInfo pi = WEIR__CTL__POOL_INFO__INIT;
			pi.name = "";
			pi.numa_node = -1;
			Weir__Ctl__RegisterTaskManager rg = WEIR__CTL__REGISTER_TASK_MANAGER__INIT;
			rg.tm_id = 7;
			rg.host = "fake";
			rg.pid = bad_regs[k].pid;
			rg.slots = bad_regs[k].slots;
			rg.numa_node = -1;
			rg.pool = &pi;
			weir_msg rm = WEIR__CTL__ENVELOPE__INIT;
			rm.body_case = WEIR__CTL__ENVELOPE__BODY_REGISTER_TM;
			rm.register_tm = &rg;
			weir_err_clear();
			if (weir_ctl_client_call(tc, &rm, &rep, 5000) < 0 && strstr(weir_err_msg(), "its pid (2 or more)"))
				refused++;
			else
				diag("pid %u, %u slots: %s", bad_regs[k].pid, bad_regs[k].slots, weir_err_msg());
			if (rep)
				weir_ctl_free(rep);
			rep = NULL;
			weir_ctl_client_close(tc);
		}
		is_int(refused, 4, "registrations with pid 0, pid 1, pid 2^31 or 0 slots are refused");
		ok(weir_ctl_client_call(c, &m, &rep, 5000) == 0 && rep &&
			   rep->body_case == WEIR__CTL__ENVELOPE__BODY_CLUSTER_STATUS && rep->cluster_status->n_taskmanagers == 0,
		   "and none of them is listed");
		if (rep)
			weir_ctl_free(rep);
		rep = NULL;
	}
	Weir__Ctl__Stop st = WEIR__CTL__STOP__INIT;
	weir_msg sm = WEIR__CTL__ENVELOPE__INIT;
	sm.body_case = WEIR__CTL__ENVELOPE__BODY_STOP;
	sm.stop = &st;
	Weir__Ctl__ListJobs lj = WEIR__CTL__LIST_JOBS__INIT;
	weir_msg lm = WEIR__CTL__ENVELOPE__INIT;
	lm.body_case = WEIR__CTL__ENVELOPE__BODY_LIST_JOBS;
	lm.list_jobs = &lj;
	ok(weir_ctl_client_call(c, &lm, &rep, 5000) == 0 && rep && rep->job_list->n_jobs == 0,
	   "no job was accepted from any of them (the job list is empty)");
	if (rep)
		weir_ctl_free(rep);
	ok(weir_ctl_client_call(c, &sm, &rep, 5000) == 0, "stop is accepted");
	if (rep)
		weir_ctl_free(rep);
	weir_ctl_client_close(c);
	int status;
	waitpid(jm, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the jobmanager exits 0 after stop");
	char log[512], cmd[1200];
	path_in(dir, "jobmanager.log", log, sizeof(log));
	snprintf(cmd, sizeof(cmd), "grep -c 'refused' %s > /dev/null", log);
	ok(system(cmd) == 0, "its log records the refusals");
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, dir2);
	if (system(cmd) != 0)
		diag("cleanup failed");
	done_testing();
}
