/* sched/cpu.h - which cores we may use, pinning, and their NUMA nodes. */
#ifndef WEIR_SCHED_CPU_H
#define WEIR_SCHED_CPU_H

/* The CPUs this process may run on (its affinity mask), ascending, at most
 * max of them. Returns the count (>= 1). */
int weir_cpu_allowed(int *cpus, int max);
/* Pin the calling thread to one CPU. 0 or -errno. */
int weir_cpu_pin_self(int cpu);
/* The NUMA node of a CPU; 0 when libnuma is unavailable. */
int weir_cpu_node(int cpu);
/* The NUMA nodes holding at least one CPU this process may use, ascending,
 * at most max. Returns the count (>= 1: {0} without libnuma). */
int weir_cpu_nodes(int *nodes, int max);
/*
 * Keep this process on NUMA node `node`: its affinity becomes the node's
 * CPUs it may use (so weir_cpu_allowed lists only those, and threads
 * pinned from that list stay on the node), and memory it allocates from
 * now on comes from the node when it can. 0, or -1 with the trail naming
 * the problem (no such node, or none of its CPUs allowed). Call it before
 * starting threads: the affinity is the calling thread's, inherited by
 * those it starts.
 */
int weir_cpu_bind_node(int node);

#endif
