/* natsctl: what the NATS tests need of a JetStream server, through libnats
 * (the Debian package has no `nats` command):
 *
 *   natsctl URL add-stream NAME SUBJECT...   a file-backed stream of those subjects
 *   natsctl URL pub SUBJECT COUNT PREFIX     COUNT messages "PREFIX <i>", each acknowledged
 *   natsctl URL count STREAM                 how many messages the stream holds
 *   natsctl URL dump STREAM                  every message's payload, a line each, in order
 *
 * Exit status: 0; 1 when the server says no (a line on stderr says why);
 * 2 for bad usage. */
#include <nats/nats.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, natsStatus s, jsErrCode je)
{
	natsStatus ls;
	const char *t = nats_GetLastError(&ls);
	fprintf(stderr, "natsctl: %s: %s (jetstream error %d)\n", what, t && *t ? t : natsStatus_GetText(s), (int)je);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: natsctl URL add-stream NAME SUBJECT... | pub SUBJECT COUNT PREFIX | count STREAM | "
				"dump STREAM\n");
		return 2;
	}
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsErrCode je = 0;
	natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
	if (s != NATS_OK)
		return fail("connect", s, 0);
	if ((s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK)
		return fail("jetstream", s, 0);
	int rc = 0;
	if (!strcmp(argv[2], "add-stream") && argc >= 5) {
		jsStreamConfig cfg;
		jsStreamConfig_Init(&cfg);
		cfg.Name = argv[3];
		cfg.Subjects = (const char **)argv + 4;
		cfg.SubjectsLen = argc - 4;
		cfg.Storage = js_FileStorage;
		jsStreamInfo *si = NULL;
		if ((s = js_AddStream(&si, js, &cfg, NULL, &je)) != NATS_OK)
			rc = fail("add-stream", s, je);
		jsStreamInfo_Destroy(si);
	} else if (!strcmp(argv[2], "pub") && argc == 6) {
		long n = atol(argv[4]);
		char buf[256];
		for (long i = 0; i < n && !rc; i++) {
			int len = snprintf(buf, sizeof(buf), "%s %ld", argv[5], i);
			jsPubAck *pa = NULL;
			if ((s = js_Publish(&pa, js, argv[3], buf, len, NULL, &je)) != NATS_OK)
				rc = fail("pub", s, je);
			jsPubAck_Destroy(pa);
		}
	} else if ((!strcmp(argv[2], "count") || !strcmp(argv[2], "dump")) && argc == 4) {
		jsStreamInfo *si = NULL;
		if ((s = js_GetStreamInfo(&si, js, argv[3], NULL, &je)) != NATS_OK)
			return fail("stream info", s, je);
		if (!strcmp(argv[2], "count")) {
			printf("%llu\n", (unsigned long long)si->State.Msgs);
		} else {
			for (uint64_t q = si->State.FirstSeq; q && q <= si->State.LastSeq && !rc; q++) {
				natsMsg *m = NULL;
				if ((s = js_GetMsg(&m, js, argv[3], q, NULL, &je)) != NATS_OK) {
					if (je == 10037) /* JSNoMessageFoundErr: deleted */
						continue;
					rc = fail("get", s, je);
					break;
				}
				fwrite(natsMsg_GetData(m), 1, (size_t)natsMsg_GetDataLength(m), stdout);
				putchar('\n');
				natsMsg_Destroy(m);
			}
		}
		jsStreamInfo_Destroy(si);
	} else {
		fprintf(stderr, "natsctl: bad usage\n");
		rc = 2;
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return rc;
}
