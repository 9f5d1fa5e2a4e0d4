/*
 * engine/graph/plan.c - from nodes to vertices: resolve partitioning, check the
 * graph, and chain.
 *
 * Node ids are already a topological order (a stream can only name nodes
 * that exist), so one pass suffices. A node joins its producer's chain
 * when records would go from subtask i to subtask i anyway and nothing
 * else consumes the producer: one input edge, forward partitioning, equal
 * parallelism, a producer with one consumer. Chained operators call each
 * other directly; no channel, no serialization.
 */
#include "graph/plan.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>

static int node_par(const weir_env *env, const struct node *n)
{
	if (n->parallelism)
		return n->parallelism;
	if (n->inherit_parallelism && n->nin == 1)
		return node_par(env, env->nodes[n->in[0].src]);
	return env->parallelism;
}

void weir_plan_release(struct plan *p)
{
	for (int i = 0; i < p->nv; i++)
		free(p->v[i].nodes);
	free(p->v);
	free(p->node_vertex);
	free(p->edge_part);
	free(p->edge_base);
	memset(p, 0, sizeof(*p));
}

int weir_plan_build(struct plan *p, weir_env *env, const struct weir_config *cfg)
{
	memset(p, 0, sizeof(*p));
	int nn = env->nnodes, nedges = 0, nsources = 0, nsinks = 0;
	for (int i = 0; i < nn; i++) {
		nedges += env->nodes[i]->nin;
		nsources += env->nodes[i]->kind == OP_SOURCE;
		nsinks += env->nodes[i]->kind == OP_SINK;
	}
	if (nsources == 0)
		return weir_err_set("the job defines no source");
	if (nsinks == 0)
		return weir_err_set("the job defines no sink");

	p->v = calloc((size_t)nn, sizeof(*p->v));
	p->node_vertex = calloc((size_t)nn, sizeof(int));
	p->edge_part = calloc((size_t)nedges + 1, sizeof(enum part_kind));
	p->edge_base = calloc((size_t)nn, sizeof(int));
	if (!p->v || !p->node_vertex || !p->edge_part || !p->edge_base) {
		weir_plan_release(p);
		return weir_err_set("out of memory");
	}
	int e = 0;
	for (int i = 0; i < nn; i++) {
		struct node *n = env->nodes[i];
		int par = node_par(env, n);
		p->edge_base[i] = e;
		for (int k = 0; k < n->nin; k++, e++) {
			struct node *src = env->nodes[n->in[k].src];
			int spar = node_par(env, src);
			enum part_kind part = n->in[k].part;
			if (part == PART_DEFAULT)
				part = spar == par ? PART_FORWARD : PART_REBALANCE;
			if (part == PART_FORWARD && spar != par) {
				weir_plan_release(p);
				return weir_err_set("forward partitioning from '%s' (parallelism %d) to '%s' "
						    "(parallelism %d) needs equal parallelism",
						    src->name, spar, n->name, par);
			}
			if (part == PART_HASH && (uint32_t)par > cfg->max_parallelism) {
				weir_plan_release(p);
				return weir_err_set("'%s': parallelism %d exceeds the maximum parallelism %u "
						    "(the number of key groups)", n->name, par, cfg->max_parallelism);
			}
			p->edge_part[e] = part;
		}
		bool chain = n->nin == 1 && n->in[0].tag == 0 && p->edge_part[p->edge_base[i]] == PART_FORWARD &&
			     env->nodes[n->in[0].src]->nconsumers == 1;
		struct vertex *v;
		if (chain) {
			v = &p->v[p->node_vertex[n->in[0].src]];
		} else {
			v = &p->v[p->nv];
			v->id = p->nv++;
			v->parallelism = par;
			v->nodes = calloc((size_t)nn, sizeof(int));
			if (!v->nodes) {
				weir_plan_release(p);
				return weir_err_set("out of memory");
			}
		}
		v->nodes[v->nnodes++] = i;
		p->node_vertex[i] = v->id;
	}
	return 0;
}
