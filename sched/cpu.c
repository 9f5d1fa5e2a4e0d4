#include "sched/cpu.h"

#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>

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
