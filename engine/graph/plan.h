/*
 * engine/graph/plan.h - the plan: the env's nodes chained into vertices.
 *
 * A vertex is a chain of operators fused by plain function calls
 * (one-to-one neighbours of equal parallelism, forward partitioning,
 * single consumer); it runs as `parallelism` subtasks. The plan also
 * resolves each edge's partitioning (PART_DEFAULT becomes forward or
 * rebalance).
 */
#ifndef WEIR_ENGINE_GRAPH_PLAN_H
#define WEIR_ENGINE_GRAPH_PLAN_H

#include "graph/graph.h"

struct vertex {
	int id;
	int parallelism;
	int *nodes;		/* the chain, head first */
	int nnodes;
};

struct plan {
	struct vertex *v;
	int nv;
	int *node_vertex;	/* node id -> vertex id */
	enum part_kind *edge_part;	/* resolved partitioning, per (node, input) flattened */
	int *edge_base;		/* node id -> index of its first input in edge_part */
};

/* Build the plan; -1 with the trail set when the graph is not runnable. */
int weir_plan_build(struct plan *p, weir_env *env, const struct weir_config *cfg);
void weir_plan_release(struct plan *p);

#endif
