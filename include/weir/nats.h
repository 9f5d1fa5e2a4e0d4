/*
 * weir/nats.h - NATS JetStream in and out (libnats), on the connector API
 * (weir/connector.h): a source with a split per subject and the stream
 * sequence as its position, and an exactly-once sink.
 *
 * Source: the messages of a JetStream stream, one split per subject (the
 * subjects given, or every subject of the stream's configuration), each
 * read by an ordered consumer from the sequence after its checkpointed
 * position, so a restore resumes exactly after what the checkpoint covers.
 * A record is the message's payload; its event time the stream's timestamp
 * of the message in milliseconds (or ts_fn's). Split sources rescale and
 * make watermarks per split (weir_source_watermarks, from weir/connector.h,
 * which this header includes).
 *
 * Sink: every record a message to `subject`, published only once the
 * checkpoint that covers it completed: at the barrier the subtask's
 * records since the last checkpoint go into a staging file in the job's
 * checkpoint folder (shared by every TaskManager), and the commit publishes
 * them with message ids unique to the batch and the record
 * (Nats-Msg-Id), so a commit repeated after a crash is dropped by the
 * stream's deduplication, and deletes the file. Exactly once holds as long
 * as a repeated commit comes within the stream's duplicate window
 * (`Duplicates`, 2 minutes by default): set it above the longest recovery
 * you expect. Without checkpoints the records are published when the job
 * succeeds (nothing on a failure).
 *
 * A lost connection to the server fails the job (it restarts from its
 * checkpoint), as does a server that does not answer within timeout_ms.
 */
#ifndef WEIR_NATS_H
#define WEIR_NATS_H

#include <weir/connector.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

typedef struct weir_nats_conf {
	const char *url;		/* "nats://host:port", or several separated by commas */
	const char *user, *password;	/* or NULL */
	const char *token;		/* or NULL */
	const char *creds_file;		/* a NATS credentials file (JWT and NKey seed), or NULL */
	uint32_t timeout_ms;		/* connect, requests, publish acknowledgements; 0: 5000 */
} weir_nats_conf;

/* stream's messages; subjects: NULL-terminated, or NULL for every subject
 * the stream is configured with. ts_fn NULL: the stream's timestamp. */
weir_stream *weir_source_nats(weir_env *env, const weir_nats_conf *conf, const char *stream,
			      const char *const *subjects, weir_timestamp_fn ts_fn);
/* Each record to subject (of a JetStream stream that captures it). */
weir_stream *weir_sink_nats(weir_stream *in, const weir_nats_conf *conf, const char *subject);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
