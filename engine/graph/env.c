/*
 * engine/graph/env.c - the builder side of the public API: weir_map() and
 * friends append nodes to the env. Any misuse records the first error in
 * the env and returns NULL; every builder accepts NULL input (and then
 * returns NULL), so a job can chain calls and check once, and the engine
 * refuses to run an env that holds an error.
 */
#include "graph/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void weir_config_defaults(struct weir_config *c)
{
	memset(c, 0, sizeof(*c));
	c->rest_port = -1;
	c->parallelism = 1;
	c->workers = 0;
	c->pin = true;
	c->segment_size = 32 * 1024;
	c->credits = 4;
	c->net_credits = 16;
	c->floating = 64;
	c->buffer_timeout_ns = 100 * 1000 * 1000ull;
	c->spin_ns = 50 * 1000ull;
	c->batch = 256;
	c->max_parallelism = 128;
	c->max_record = 64u << 20;
	c->checkpoint_timeout_ms = 60000;
	c->checkpoint_retain = 3;
	c->checkpoint_dir = "checkpoints";
	c->restart_attempts = 3;
	c->restart_delay_ms = 100;
	c->cancel_timeout_ms = 30000;
	/* WEIR_CHANNELS=shm runs local jobs over shared-memory pools and
	 * channels, the transport between processes (tests use it to run the
	 * engine over both). */
	const char *ch = getenv("WEIR_CHANNELS");
	c->shm = ch && !strcmp(ch, "shm");
}

weir_env *weir_env_create(int parallelism)
{
	weir_env *env = calloc(1, sizeof(*env));
	if (env)
		env->parallelism = parallelism;
	return env;
}

void weir_env_destroy(weir_env *env)
{
	if (!env)
		return;
	for (int i = 0; i < env->nnodes; i++) {
		struct node *n = env->nodes[i];
		if (n->hooks.free_arg)
			n->hooks.free_arg(n->impl_arg ? n->impl_arg : n->arg);
		free(n->sink2);
		free(n->src2);
		for (int k = 0; k < n->nstates; k++)
			free((char *)n->states[k].name);
		free(n->states);
		free(n->tags);
		free(n->in);
		free(n);
	}
	free(env->nodes);
	while (env->streams) {
		weir_stream *s = env->streams;
		env->streams = s->next_alloc;
		free(s);
	}
	free(env);
}

static int verror(weir_env *env, const char *fmt, va_list ap)
{
	if (env && !env->error[0])
		vsnprintf(env->error, sizeof(env->error), fmt, ap);
	return -1;
}

int weir_env_error(weir_env *env, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verror(env, fmt, ap);
	va_end(ap);
	return -1;
}

int weir_env_fail(weir_env *env, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verror(env, fmt, ap);
	va_end(ap);
	return -1;
}

int weir_env_parallelism(const weir_env *env)
{
	return env ? env->parallelism : 1;
}

static weir_stream *stream_alloc(weir_env *env, int nparts)
{
	weir_stream *s = calloc(1, sizeof(*s) + sizeof(struct stream_part) * (size_t)nparts);
	if (!s) {
		weir_env_error(env, "out of memory");
		return NULL;
	}
	s->env = env;
	s->nparts = nparts;
	s->next_alloc = env->streams;
	env->streams = s;
	return s;
}

weir_stream *weir_env_stream(weir_env *env, struct node *n)
{
	weir_stream *s = stream_alloc(env, 1);
	if (s) {
		s->parts[0].node = n->id;
		s->parts[0].part = PART_DEFAULT;
	}
	return s;
}

struct node *weir_env_add2(weir_env *env, enum op_kind kind, const char *name, weir_stream *a, weir_stream *b)
{
	if (!env)
		return NULL;
	if (!name || !*name || strlen(name) >= WEIR_NAME_MAX) {
		weir_env_error(env, "operator name '%s' must have 1 to %d characters",
			       name ? name : "(null)", WEIR_NAME_MAX - 1);
		return NULL;
	}
	for (int i = 0; i < env->nnodes; i++)
		if (!strcmp(env->nodes[i]->name, name)) {
			weir_env_error(env, "two operators are named '%s'; names must be unique", name);
			return NULL;
		}
	weir_stream *ins[2] = { a, b };
	int nin = 0;
	for (int k = 0; k < 2; k++) {
		if (!ins[k])
			continue;
		if (ins[k]->env != env) {
			weir_env_error(env, "%s: its inputs belong to different jobs", name);
			return NULL;
		}
		for (int i = 0; i < ins[k]->nparts; i++)
			if (env->nodes[ins[k]->parts[i].node]->kind == OP_SINK) {
				weir_env_error(env, "%s: its input is the sink '%s', which has no output", name,
					       env->nodes[ins[k]->parts[i].node]->name);
				return NULL;
			}
		nin += ins[k]->nparts;
	}
	if (env->nnodes == env->cap) {
		int cap = env->cap ? env->cap * 2 : 16;
		struct node **nn = realloc(env->nodes, sizeof(*nn) * (size_t)cap);
		if (!nn) {
			weir_env_error(env, "out of memory");
			return NULL;
		}
		env->nodes = nn;
		env->cap = cap;
	}
	struct node *n = calloc(1, sizeof(*n));
	if (!n || (nin && !(n->in = calloc((size_t)nin, sizeof(struct edge))))) {
		free(n);
		weir_env_error(env, "out of memory");
		return NULL;
	}
	n->id = env->nnodes;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->kind = kind;
	for (int k = 0; k < 2; k++) {
		for (int i = 0; ins[k] && i < ins[k]->nparts; i++) {
			struct edge *e = &n->in[n->nin++];
			const struct stream_part *sp = &ins[k]->parts[i];
			e->src = sp->node;
			e->tag = sp->tag;
			e->side = k;
			e->part = sp->part;
			e->key_fn = sp->key_fn;
			e->key_arg = sp->key_arg;
			env->nodes[sp->node]->nconsumers++;
		}
	}
	env->nodes[env->nnodes++] = n;
	return n;
}

struct node *weir_env_add(weir_env *env, enum op_kind kind, const char *name, weir_stream *in)
{
	return weir_env_add2(env, kind, name, in, NULL);
}

/* The env of a stream argument, recording an error when it is NULL. */
static weir_env *input_env(weir_stream *in, const char *what)
{
	if (in)
		return in->env;
	/* No env to record into: the earlier call that returned NULL already
	 * recorded why. */
	(void)what;
	return NULL;
}

weir_stream *weir_source(weir_env *env, const char *name, weir_source_fn poll, void *arg)
{
	if (!env)
		return NULL;
	if (!poll)
		return weir_env_error(env, "source '%s': poll function is NULL", name ? name : "?"), NULL;
	struct node *n = weir_env_add(env, OP_SOURCE, name, NULL);
	if (!n)
		return NULL;
	n->fn.source = poll;
	n->arg = arg;
	return weir_env_stream(env, n);
}

static weir_stream *unary(weir_stream *in, enum op_kind kind, const char *name, void *fn, void *arg)
{
	weir_env *env = input_env(in, name);
	if (!env)
		return NULL;
	if (!fn)
		return weir_env_error(env, "operator '%s': function is NULL", name ? name : "?"), NULL;
	struct node *n = weir_env_add(env, kind, name, in);
	if (!n)
		return NULL;
	switch (kind) {
	case OP_MAP: n->fn.map = (weir_map_fn)fn; break;
	case OP_FILTER: n->fn.filter = (weir_filter_fn)fn; break;
	case OP_FLAT_MAP: n->fn.flat_map = (weir_flat_map_fn)fn; break;
	case OP_REDUCE: n->fn.reduce = (weir_reduce_fn)fn; break;
	case OP_SINK: n->fn.sink = (weir_sink_fn)fn; break;
	default: break;
	}
	n->arg = arg;
	return weir_env_stream(env, n);
}

weir_stream *weir_map(weir_stream *in, const char *name, weir_map_fn fn, void *arg)
{
	return unary(in, OP_MAP, name, (void *)fn, arg);
}

weir_stream *weir_filter(weir_stream *in, const char *name, weir_filter_fn fn, void *arg)
{
	return unary(in, OP_FILTER, name, (void *)fn, arg);
}

weir_stream *weir_flat_map(weir_stream *in, const char *name, weir_flat_map_fn fn, void *arg)
{
	return unary(in, OP_FLAT_MAP, name, (void *)fn, arg);
}

weir_stream *weir_sink(weir_stream *in, const char *name, weir_sink_fn fn, void *arg)
{
	return unary(in, OP_SINK, name, (void *)fn, arg);
}

weir_stream *weir_reduce(weir_stream *keyed, const char *name, weir_reduce_fn fn, void *arg)
{
	if (!keyed)
		return NULL;
	for (int i = 0; i < keyed->nparts; i++)
		if (keyed->parts[i].part != PART_HASH)
			return weir_env_error(keyed->env, "reduce '%s': its input is not keyed (call weir_key_by first)",
					      name ? name : "?"), NULL;
	return unary(keyed, OP_REDUCE, name, (void *)fn, arg);
}

static weir_stream *repartition(weir_stream *in, enum part_kind part, weir_key_fn fn, void *arg)
{
	if (!in)
		return NULL;
	weir_stream *s = stream_alloc(in->env, in->nparts);
	if (!s)
		return NULL;
	for (int i = 0; i < in->nparts; i++) {
		s->parts[i].node = in->parts[i].node;
		s->parts[i].tag = in->parts[i].tag;
		s->parts[i].part = part;
		s->parts[i].key_fn = fn;
		s->parts[i].key_arg = arg;
	}
	return s;
}

weir_stream *weir_key_by(weir_stream *in, weir_key_fn fn, void *arg)
{
	if (in && !fn)
		return weir_env_error(in->env, "key_by: key function is NULL"), NULL;
	return repartition(in, PART_HASH, fn, arg);
}

weir_stream *weir_rebalance(weir_stream *in) { return repartition(in, PART_REBALANCE, NULL, NULL); }
weir_stream *weir_broadcast(weir_stream *in) { return repartition(in, PART_BROADCAST, NULL, NULL); }
weir_stream *weir_forward(weir_stream *in) { return repartition(in, PART_FORWARD, NULL, NULL); }

weir_stream *weir_union(weir_stream *a, weir_stream *b)
{
	if (!a || !b)
		return NULL;
	if (a->env != b->env)
		return weir_env_error(a->env, "union: the streams belong to different jobs"), NULL;
	weir_stream *s = stream_alloc(a->env, a->nparts + b->nparts);
	if (!s)
		return NULL;
	memcpy(s->parts, a->parts, sizeof(struct stream_part) * (size_t)a->nparts);
	memcpy(s->parts + a->nparts, b->parts, sizeof(struct stream_part) * (size_t)b->nparts);
	return s;
}

/* The node that produced s: the setters below apply to it. */
static struct node *producer(weir_stream *s, const char *what)
{
	if (!s)
		return NULL;
	if (s->nparts != 1) {
		weir_env_error(s->env, "%s: applies to one operator, not to a union", what);
		return NULL;
	}
	return s->env->nodes[s->parts[0].node];
}

weir_stream *weir_set_parallelism(weir_stream *s, int parallelism)
{
	struct node *n = producer(s, "set_parallelism");
	if (!n)
		return NULL;
	if (parallelism < 1 || parallelism > 1024)
		return weir_env_error(s->env, "%s: parallelism %d is out of range (1..1024)", n->name,
				      parallelism), NULL;
	n->parallelism = parallelism;
	return s;
}

static struct node *user_operator(weir_stream *s, const char *what)
{
	struct node *n = producer(s, what);
	if (n && n->builtin) {
		weir_env_error(s->env, "%s: '%s' is a built-in connector with its own hooks", what, n->name);
		return NULL;
	}
	return n;
}

weir_stream *weir_on_open(weir_stream *s, weir_open_fn fn)
{
	struct node *n = user_operator(s, "on_open");
	if (n)
		n->open = fn;
	return n ? s : NULL;
}

weir_stream *weir_on_close(weir_stream *s, weir_close_fn fn)
{
	struct node *n = user_operator(s, "on_close");
	if (n)
		n->close = fn;
	return n ? s : NULL;
}

/* ---- time, keyed operators, state and side outputs ------------------------ */

weir_stream *weir_assign_timestamps(weir_stream *in, weir_timestamp_fn fn, int64_t max_out_of_orderness_ms,
				    int64_t idle_timeout_ms)
{
	if (!in)
		return NULL;
	weir_env *env = in->env;
	if (max_out_of_orderness_ms < 0 || idle_timeout_ms < 0)
		return weir_env_error(env, "assign_timestamps: out-of-orderness %lld and idle timeout %lld must be >= 0",
				      (long long)max_out_of_orderness_ms, (long long)idle_timeout_ms), NULL;
	char name[WEIR_NAME_MAX];
	for (int k = 1;; k++) {
		snprintf(name, sizeof(name), k == 1 ? "timestamps" : "timestamps-%d", k);
		bool taken = false;
		for (int i = 0; i < env->nnodes && !taken; i++)
			taken = !strcmp(env->nodes[i]->name, name);
		if (!taken)
			break;
	}
	struct node *n = weir_env_add(env, OP_ASSIGN, name, in);
	if (!n)
		return NULL;
	n->ts_fn = fn;
	/* As in Flink, the assigner runs at its input's parallelism, chained
	 * to it, so each subtask bounds the disorder of its own stream. */
	n->inherit_parallelism = true;
	n->out_of_order_ms = max_out_of_orderness_ms;
	n->idle_ms = idle_timeout_ms;
	return weir_env_stream(env, n);
}

/* A keyed operator needs every input hash-partitioned (weir_key_by). */
static bool keyed_input(weir_env *env, weir_stream *in, const char *name)
{
	for (int i = 0; in && i < in->nparts; i++)
		if (in->parts[i].part != PART_HASH) {
			weir_env_error(env, "'%s': its input is not keyed (call weir_key_by first)", name ? name : "?");
			return false;
		}
	return in != NULL;
}

struct node *weir_keyed_node(weir_stream *a, weir_stream *b, const char *name, const struct keyed_impl *impl)
{
	if (!a || (b && !b->env))
		return NULL;
	if (!keyed_input(a->env, a, name) || (b && !keyed_input(a->env, b, name)))
		return NULL;
	struct node *n = weir_env_add2(a->env, OP_KEYED, name, a, b);
	if (n)
		n->impl = impl;
	return n;
}

int weir_node_state(weir_env *env, struct node *n, const char *name, enum weir_state_kind kind)
{
	if (n->nstates >= 254) /* ids are one byte in composite keys; 255 is the timers' */
		return weir_env_error(env, "%s: more than 254 states", n->name);
	weir_state_desc *d = realloc(n->states, sizeof(*d) * (size_t)(n->nstates + 1));
	if (!d)
		return weir_env_error(env, "out of memory");
	n->states = d;
	memset(&d[n->nstates], 0, sizeof(*d));
	d[n->nstates].name = strdup(name);
	d[n->nstates].kind = kind;
	if (!d[n->nstates].name)
		return weir_env_error(env, "out of memory");
	return n->nstates++;
}

int weir_node_tag(weir_env *env, struct node *n, const char *tag)
{
	if (!tag || !*tag || strlen(tag) >= WEIR_NAME_MAX)
		return weir_env_error(env, "%s: side output tag '%s' must have 1 to %d characters", n->name,
				      tag ? tag : "(null)", WEIR_NAME_MAX - 1);
	for (int i = 0; i < n->ntags; i++)
		if (!strcmp(n->tags[i], tag))
			return weir_env_error(env, "%s: two side outputs are tagged '%s'", n->name, tag);
	char (*t)[WEIR_NAME_MAX] = realloc(n->tags, sizeof(*t) * (size_t)(n->ntags + 1));
	if (!t)
		return weir_env_error(env, "out of memory");
	n->tags = t;
	snprintf(t[n->ntags], WEIR_NAME_MAX, "%s", tag);
	return ++n->ntags;
}

int weir_declare_state(weir_stream *s, const weir_state_desc *desc)
{
	struct node *n = producer(s, "declare_state");
	if (!n)
		return -1;
	if (n->kind != OP_KEYED || !n->process[0])
		return weir_env_error(s->env, "declare_state: '%s' is not a process function", n->name);
	if (!desc || !desc->name || desc->kind > WEIR_REDUCING_STATE || desc->ttl_ms < 0 ||
	    (desc->kind == WEIR_REDUCING_STATE && !desc->reduce))
		return weir_env_error(s->env, "declare_state on '%s': needs a name, a kind, a reduce function "
				      "for reducing state and a TTL >= 0", n->name);
	for (int i = 0; i < n->nstates; i++)
		if (!strcmp(n->states[i].name, desc->name))
			return weir_env_error(s->env, "declare_state on '%s': two states are named '%s'", n->name,
					      desc->name);
	int id = weir_node_state(s->env, n, desc->name, desc->kind);
	if (id >= 0) {
		n->states[id].reduce = desc->reduce;
		n->states[id].ttl_ms = desc->ttl_ms;
		n->nuser_states = n->nstates;
	}
	return id;
}

int weir_declare_side_output(weir_stream *s, const char *tag)
{
	struct node *n = producer(s, "declare_side_output");
	if (!n)
		return -1;
	if (n->builtin || n->kind == OP_SINK)
		return weir_env_error(s->env, "declare_side_output: '%s' cannot have side outputs", n->name);
	return weir_node_tag(s->env, n, tag);
}

weir_stream *weir_side_output(weir_stream *s, int tag)
{
	struct node *n = producer(s, "side_output");
	if (!n)
		return NULL;
	if (tag < 1 || tag > n->ntags)
		return weir_env_error(s->env, "side_output: '%s' has no side output %d", n->name, tag), NULL;
	weir_stream *o = weir_env_stream(s->env, n);
	if (o)
		o->parts[0].tag = tag;
	return o;
}
