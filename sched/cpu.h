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

#endif
