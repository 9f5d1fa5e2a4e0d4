/* natsjob URL IN_STREAM OUT_SUBJECT [USER PASSWORD]: every message of the
 * JetStream stream IN_STREAM (a split per subject), upper-cased, to
 * OUT_SUBJECT (weir/nats.h), exactly once with checkpoints. */
#include <weir/nats.h>

#include <ctype.h>
#include <string.h>

static int upper(weir_ctx *ctx, const weir_rec *in)
{
	char buf[256];
	uint32_t n = in->len < sizeof(buf) ? in->len : (uint32_t)sizeof(buf);
	for (uint32_t i = 0; i < n; i++)
		buf[i] = (char)toupper(((const unsigned char *)in->data)[i]);
	return weir_emit(ctx, buf, n);
}

int weir_job(weir_env *env, int argc, char **argv)
{
	if (argc != 4 && argc != 6)
		return weir_env_fail(env, "usage: natsjob URL IN_STREAM OUT_SUBJECT [USER PASSWORD]");
	weir_nats_conf c = { .url = argv[1], .timeout_ms = 5000 };
	if (argc == 6) {
		c.user = argv[4];
		c.password = argv[5];
	}
	weir_stream *in = weir_source_nats(env, &c, argv[2], NULL, NULL);
	weir_sink_nats(weir_map(in, "upper", upper, NULL), &c, argv[3]);
	return 0;
}
