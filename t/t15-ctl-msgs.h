/*
 * t/t15-ctl-msgs.h - one filled example of every control-plane message, for
 * the codec tests (t1500) and as seeds of the decoder fuzz (t1510).
 *
 * ctl_example(body, &m) fills m (an Envelope) with body `body` and every
 * field of it set, pointing at static storage: use one at a time.
 */
#ifndef WEIR_T_T15_CTL_MSGS_H
#define WEIR_T_T15_CTL_MSGS_H

#include "ctl/codec.h"

#include <string.h>

#define CTL_FIRST_BODY WEIR__CTL__ENVELOPE__BODY_HELLO
#define CTL_LAST_BODY WEIR__CTL__ENVELOPE__BODY_STOP

static uint8_t ex_digest[32] = { 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
				 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 0xff };
static uint8_t ex_data[300];
static char *ex_args[] = { "--input", "in.txt", "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x8c\x8a" };

static void ctl_example(Weir__Ctl__Envelope__BodyCase body, weir_msg *m)
{
	static Weir__Ctl__Hello hello;
	static Weir__Ctl__Challenge challenge;
	static Weir__Ctl__AuthResponse auth_response;
	static Weir__Ctl__AuthResult auth_result;
	static Weir__Ctl__Ok ok;
	static Weir__Ctl__Error error;
	static Weir__Ctl__PoolInfo pool;
	static Weir__Ctl__RegisterTaskManager register_tm;
	static Weir__Ctl__RegisterAck register_ack;
	static Weir__Ctl__Heartbeat heartbeat;
	static Weir__Ctl__Vertex v[3], *vp[3];
	static Weir__Ctl__Edge e[2], *ep[2];
	static Weir__Ctl__JobGraph graph;
	static Weir__Ctl__SubmitJob submit;
	static Weir__Ctl__ObjectChunk chunk;
	static Weir__Ctl__FetchObject fetch;
	static Weir__Ctl__JobAccepted accepted;
	static Weir__Ctl__JobRejected rejected;
	static Weir__Ctl__Placement pl[6], *plp[6];
	static Weir__Ctl__Deploy deploy;
	static Weir__Ctl__TaskUpdate task_update;
	static Weir__Ctl__Cancel cancel;
	static Weir__Ctl__JobInfo info[2], *infop[2];
	static Weir__Ctl__ListJobs list_jobs;
	static Weir__Ctl__JobList job_list;
	static Weir__Ctl__GetClusterStatus get_status;
	static Weir__Ctl__TaskManagerInfo tmi[2], *tmip[2];
	static Weir__Ctl__ClusterStatus status;
	static Weir__Ctl__Stop stop;

	for (size_t i = 0; i < sizeof(ex_data); i++)
		ex_data[i] = (uint8_t)(i * 7 + 3);
	*m = (weir_msg)WEIR__CTL__ENVELOPE__INIT;
	m->has_request_id = 1;
	m->request_id = 0x1234567890ull + (uint64_t)body;
	m->body_case = body;

	weir__ctl__pool_info__init(&pool);
	pool.name = "weir-c0ffee-tm2";
	pool.pool_id = 2;
	pool.segments = 4096;
	pool.segment_size = 32768;
	pool.numa_node = -1;

	switch (body) {
	case WEIR__CTL__ENVELOPE__BODY_HELLO:
		weir__ctl__hello__init(&hello);
		hello.role = WEIR__CTL__ROLE__ROLE_TASKMANAGER;
		hello.name = "taskmanager 2 on localhost:4242";
		m->hello = &hello;
		break;
	case WEIR__CTL__ENVELOPE__BODY_CHALLENGE:
		weir__ctl__challenge__init(&challenge);
		challenge.server_nonce = (ProtobufCBinaryData){ 32, ex_digest };
		m->challenge = &challenge;
		break;
	case WEIR__CTL__ENVELOPE__BODY_AUTH_RESPONSE:
		weir__ctl__auth_response__init(&auth_response);
		auth_response.client_nonce = (ProtobufCBinaryData){ 32, ex_digest };
		auth_response.mac = (ProtobufCBinaryData){ 32, ex_data };
		m->auth_response = &auth_response;
		break;
	case WEIR__CTL__ENVELOPE__BODY_AUTH_RESULT:
		weir__ctl__auth_result__init(&auth_result);
		auth_result.accepted = 1;
		auth_result.reason = "fine";
		auth_result.has_server_mac = 1;
		auth_result.server_mac = (ProtobufCBinaryData){ 32, ex_digest };
		m->auth_result = &auth_result;
		break;
	case WEIR__CTL__ENVELOPE__BODY_OK:
		weir__ctl__ok__init(&ok);
		m->ok = &ok;
		break;
	case WEIR__CTL__ENVELOPE__BODY_ERROR:
		weir__ctl__error__init(&error);
		error.message = "cancel: no job 7";
		m->error = &error;
		break;
	case WEIR__CTL__ENVELOPE__BODY_REGISTER_TM:
		weir__ctl__register_task_manager__init(&register_tm);
		register_tm.tm_id = 2;
		register_tm.host = "localhost";
		register_tm.pid = 4242;
		register_tm.numa_node = 1;
		register_tm.slots = 8;
		register_tm.pool = &pool;
		register_tm.data_address = "127.0.0.1:6124";
		m->register_tm = &register_tm;
		break;
	case WEIR__CTL__ENVELOPE__BODY_REGISTER_ACK:
		weir__ctl__register_ack__init(&register_ack);
		register_ack.tm_id = 2;
		register_ack.cluster_id = "c0ffee";
		register_ack.heartbeat_interval_ms = 100;
		register_ack.heartbeat_timeout_ms = 500;
		m->register_ack = &register_ack;
		break;
	case WEIR__CTL__ENVELOPE__BODY_HEARTBEAT:
		weir__ctl__heartbeat__init(&heartbeat);
		heartbeat.seq = UINT64_MAX - 1;
		heartbeat.has_slots_used = 1;
		heartbeat.slots_used = 3;
		m->heartbeat = &heartbeat;
		break;
	case WEIR__CTL__ENVELOPE__BODY_SUBMIT_JOB:
		for (int i = 0; i < 3; i++) {
			weir__ctl__vertex__init(&v[i]);
			v[i].id = (uint32_t)i;
			v[i].name = i == 0 ? "source -> tokenize" : i == 1 ? "count" : "sink";
			v[i].parallelism = (uint32_t)(i + 2);
			vp[i] = &v[i];
		}
		for (int i = 0; i < 2; i++) {
			weir__ctl__edge__init(&e[i]);
			e[i].source = (uint32_t)i;
			e[i].target = (uint32_t)i + 1;
			e[i].partitioning = i ? WEIR__CTL__PARTITIONING__PART_REBALANCE : WEIR__CTL__PARTITIONING__PART_HASH;
			e[i].has_source_output = 1;
			e[i].source_output = (uint32_t)i;
			e[i].has_target_input = 1;
			e[i].target_input = 0;
			ep[i] = &e[i];
		}
		weir__ctl__job_graph__init(&graph);
		graph.n_vertices = 3;
		graph.vertices = vp;
		graph.n_edges = 2;
		graph.edges = ep;
		graph.has_max_parallelism = 1;
		graph.max_parallelism = 128;
		weir__ctl__submit_job__init(&submit);
		submit.name = "wordcount.so";
		submit.object_sha256 = (ProtobufCBinaryData){ 32, ex_digest };
		submit.object_size = sizeof(ex_data);
		submit.n_args = 3;
		submit.args = ex_args;
		submit.parallelism = 4;
		submit.has_spread = 1;
		submit.spread = 1;
		submit.has_detached = 1;
		submit.detached = 0;
		submit.has_object = 1;
		submit.object = (ProtobufCBinaryData){ sizeof(ex_data), ex_data };
		submit.graph = &graph;
		m->submit_job = &submit;
		break;
	case WEIR__CTL__ENVELOPE__BODY_OBJECT_CHUNK:
		weir__ctl__object_chunk__init(&chunk);
		chunk.object_sha256 = (ProtobufCBinaryData){ 32, ex_digest };
		chunk.offset = 1u << 20;
		chunk.data = (ProtobufCBinaryData){ sizeof(ex_data), ex_data };
		chunk.has_last = 1;
		chunk.last = 1;
		m->object_chunk = &chunk;
		break;
	case WEIR__CTL__ENVELOPE__BODY_FETCH_OBJECT:
		weir__ctl__fetch_object__init(&fetch);
		fetch.object_sha256 = (ProtobufCBinaryData){ 32, ex_digest };
		m->fetch_object = &fetch;
		break;
	case WEIR__CTL__ENVELOPE__BODY_JOB_ACCEPTED:
		weir__ctl__job_accepted__init(&accepted);
		accepted.job_id = 7;
		m->job_accepted = &accepted;
		break;
	case WEIR__CTL__ENVELOPE__BODY_JOB_REJECTED:
		weir__ctl__job_rejected__init(&rejected);
		rejected.reason = "job wordcount.so needs 12 slots, the cluster has 8";
		m->job_rejected = &rejected;
		break;
	case WEIR__CTL__ENVELOPE__BODY_DEPLOY:
		for (int i = 0; i < 6; i++) {
			weir__ctl__placement__init(&pl[i]);
			pl[i].vertex = (uint32_t)i / 2;
			pl[i].index = (uint32_t)i % 2;
			pl[i].tm_id = (uint32_t)i % 2 + 1;
			pl[i].slot = (uint32_t)i / 2;
			plp[i] = &pl[i];
		}
		weir__ctl__deploy__init(&deploy);
		deploy.job_id = 7;
		deploy.job_name = "wordcount.so";
		deploy.object_sha256 = (ProtobufCBinaryData){ 32, ex_digest };
		deploy.object_size = 123456;
		deploy.n_args = 2;
		deploy.args = ex_args;
		deploy.parallelism = 2;
		deploy.n_placements = 6;
		deploy.placements = plp;
		m->deploy = &deploy;
		break;
	case WEIR__CTL__ENVELOPE__BODY_TASK_UPDATE:
		weir__ctl__task_update__init(&task_update);
		task_update.job_id = 7;
		task_update.vertex = 1;
		task_update.index = 0;
		task_update.state = WEIR__CTL__TASK_STATE__TASK_FAILED;
		task_update.message = "job wordcount.so: TaskManager 2: dlopen: undefined symbol tokenize";
		m->task_update = &task_update;
		break;
	case WEIR__CTL__ENVELOPE__BODY_CANCEL:
		weir__ctl__cancel__init(&cancel);
		cancel.job_id = 7;
		m->cancel = &cancel;
		break;
	case WEIR__CTL__ENVELOPE__BODY_JOB_INFO:
	case WEIR__CTL__ENVELOPE__BODY_JOB_LIST:
		for (int i = 0; i < 2; i++) {
			weir__ctl__job_info__init(&info[i]);
			info[i].job_id = (uint64_t)i + 7;
			info[i].name = i ? "sessions.so" : "wordcount.so";
			info[i].state = i ? WEIR__CTL__JOB_STATE__JOB_FAILED : WEIR__CTL__JOB_STATE__JOB_RUNNING;
			info[i].start_time_ms = 1700000000000ull;
			info[i].parallelism = 4;
			info[i].has_end_time_ms = i;
			info[i].end_time_ms = i ? 1700000001000ull : 0;
			info[i].message = i ? "TaskManager 2 lost" : NULL;
			infop[i] = &info[i];
		}
		if (body == WEIR__CTL__ENVELOPE__BODY_JOB_INFO) {
			m->job_info = &info[1];
		} else {
			weir__ctl__job_list__init(&job_list);
			job_list.n_jobs = 2;
			job_list.jobs = infop;
			m->job_list = &job_list;
		}
		break;
	case WEIR__CTL__ENVELOPE__BODY_LIST_JOBS:
		weir__ctl__list_jobs__init(&list_jobs);
		m->list_jobs = &list_jobs;
		break;
	case WEIR__CTL__ENVELOPE__BODY_GET_CLUSTER_STATUS:
		weir__ctl__get_cluster_status__init(&get_status);
		m->get_cluster_status = &get_status;
		break;
	case WEIR__CTL__ENVELOPE__BODY_CLUSTER_STATUS:
		for (int i = 0; i < 2; i++) {
			weir__ctl__task_manager_info__init(&tmi[i]);
			tmi[i].tm_id = (uint32_t)i + 1;
			tmi[i].host = "localhost";
			tmi[i].pid = 1000u + (uint32_t)i;
			tmi[i].numa_node = i;
			tmi[i].slots = 4;
			tmi[i].slots_used = (uint32_t)i;
			tmi[i].pool = &pool;
			tmi[i].has_last_heartbeat_ms = 1;
			tmi[i].last_heartbeat_ms = 42;
			tmip[i] = &tmi[i];
		}
		weir__ctl__cluster_status__init(&status);
		status.cluster_id = "c0ffee";
		status.n_taskmanagers = 2;
		status.taskmanagers = tmip;
		status.slots_total = 8;
		status.slots_used = 1;
		m->cluster_status = &status;
		break;
	case WEIR__CTL__ENVELOPE__BODY_STOP:
		weir__ctl__stop__init(&stop);
		stop.reason = "weir cluster stop";
		m->stop = &stop;
		break;
	default:
		m->body_case = WEIR__CTL__ENVELOPE__BODY__NOT_SET;
		break;
	}
}

#endif
