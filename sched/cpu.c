#include "sched/cpu.h"
#include "base/err.h"

#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>

int weir_cpu_allowed(int *cpus, int max)
{
	cpu_set_t set;
	int n = 0;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && n < max; c++)
			if (CPU_ISSET(c, &set))
				cpus[n++] = c;
	if (n == 0 && max > 0)
		cpus[n++] = 0;
	return n;
}

int weir_cpu_pin_self(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int e = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	return e ? -e : 0;
}

int weir_cpu_node(int cpu)
{
	if (numa_available() < 0)
		return 0;
	int n = numa_node_of_cpu(cpu);
	return n < 0 ? 0 : n;
}

int weir_cpu_nodes(int *nodes, int max)
{
	int cpus[1024], n = 0;
	int ncpu = weir_cpu_allowed(cpus, 1024);
	for (int i = 0; i < ncpu; i++) {
		int node = weir_cpu_node(cpus[i]), k = 0;
		while (k < n && nodes[k] != node)
			k++;
		if (k == n && n < max)
			nodes[n++] = node;
	}
	for (int i = 1; i < n; i++) /* ascending (few nodes: insertion sort) */
		for (int k = i; k > 0 && nodes[k - 1] > nodes[k]; k--) {
			int t = nodes[k];
			nodes[k] = nodes[k - 1];
			nodes[k - 1] = t;
		}
	if (n == 0 && max > 0)
		nodes[n++] = 0;
	return n;
}

int weir_cpu_bind_node(int node)
{
	int nodes[1024];
	int n = weir_cpu_nodes(nodes, 1024), k = 0;
	while (k < n && nodes[k] != node)
		k++;
	if (k == n) {
		char list[256] = "";
		for (int i = 0, l = 0; i < n && l < (int)sizeof(list) - 12; i++)
			l += snprintf(list + l, sizeof(list) - (size_t)l, i ? ", %d" : "%d", nodes[i]);
		return weir_err_set("NUMA node %d has no CPU this process may use (nodes with usable CPUs: %s)", node,
				    list);
	}
	if (numa_available() < 0)
		return 0; /* one node, 0: nothing to bind */
	cpu_set_t set;
	CPU_ZERO(&set);
	int cpus[1024];
	int ncpu = weir_cpu_allowed(cpus, 1024);
	for (int i = 0; i < ncpu; i++)
		if (weir_cpu_node(cpus[i]) == node)
			CPU_SET(cpus[i], &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return weir_err_errno(errno, "bind to the CPUs of NUMA node %d", node);
	numa_set_preferred(node);
	return 0;
}
