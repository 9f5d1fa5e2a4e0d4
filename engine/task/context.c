/*
 * engine/task/context.c - failing a subtask (weir_fail, the trail a job
 * reports) and the read-only accessors of an operator's context.
 */
#include "task/task.h"
#include "base/clock.h"
#include "base/err.h"

#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>

__thread struct subtask *weir_cur_st __attribute__((tls_model("initial-exec")));

static int vfail(struct subtask *st, struct opinst *op, const char *fmt, va_list ap)
{
	char msg[768];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	weir_err_set("%s", msg); /* also for the engine's code that called the hook */
	/* Errors while tearing a stopped job down (a close hook flushing a
	 * file that is about to be discarded) are not the job's error. */
	if (st->failed || st->discarding)
		return -1;
	char full[1024];
	snprintf(full, sizeof(full), "operator '%s' (subtask %d/%d): %s", op ? op->node->name : st->ops[0].node->name,
		 st->index + 1, st->v->parallelism, msg);
	st->failed = true;
	weir_job_fail(st->job, full);
	return -1;
}

int weir_op_fail(struct subtask *st, struct opinst *op, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(st, op, fmt, ap);
	va_end(ap);
	return -1;
}

int weir_fail(weir_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(ctx->st, ctx->op, fmt, ap);
	va_end(ap);
	return -1;
}

const char *weir_quote(char *buf, size_t size, const void *data, uint32_t len)
{
	const unsigned char *s = data;
	size_t o = 0;
	uint32_t i;
	if (!size)
		return buf;
	for (i = 0; i < len && i < 60 && o + 8 < size; i++) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
	}
	if (i < len && o + 4 < size)
		o += (size_t)snprintf(buf + o, size - o, "...");
	buf[o] = 0;
	return buf;
}

int weir_ctx_subtask(const weir_ctx *ctx) { return ctx->st->index; }
int weir_ctx_parallelism(const weir_ctx *ctx) { return ctx->st->v->parallelism; }
const char *weir_ctx_name(const weir_ctx *ctx) { return ctx->op->node->name; }
void *weir_ctx_arg(const weir_ctx *ctx) { return ctx->arg; }
void *weir_ctx_state(const weir_ctx *ctx) { return ctx->state; }
void weir_ctx_set_state(weir_ctx *ctx, void *state) { ctx->state = state; }
uint32_t weir_ctx_batch(const weir_ctx *ctx) { return ctx->st->job->cfg.batch; }
void weir_ctx_idle_until(weir_ctx *ctx, uint64_t mono_ns) { ctx->idle_until = mono_ns; }
uint64_t weir_ctx_now_ns(const weir_ctx *ctx) { (void)ctx; return weir_now_ns(); }

void weir_job_fail(struct job *job, const char *msg)
{
	pthread_mutex_lock(&job->lock);
	/* A cancelled job reports "cancelled", not the errors of the subtasks
	 * it stopped. */
	if (!job->failed && !__atomic_load_n(&job->cancelled, __ATOMIC_ACQUIRE)) {
		job->failed = true;
		snprintf(job->error, sizeof(job->error), "%s", msg);
	}
	pthread_mutex_unlock(&job->lock);
	weir_sched_stop(&job->sched);
}
