/* sched/placement.c - see placement.h. */
#include "sched/placement.h"

#include <stdlib.h>
#include <string.h>

static int by_tm(const void *a, const void *b)
{
	const struct weir_slot_offer *x = a, *y = b;
	return x->tm < y->tm ? -1 : x->tm > y->tm;
}

long weir_place_job(const uint32_t *par, size_t nv, const struct weir_slot_offer *offers, size_t noffers,
		    bool spread, struct weir_place *out, uint32_t *total)
{
	uint32_t needed = 1, sum = 0, maxslots = 0;
	for (size_t v = 0; v < nv; v++)
		needed = par[v] > needed ? par[v] : needed;
	struct weir_slot_offer *o = malloc(sizeof(*o) * (noffers + 1));
	if (!o)
		return -1;
	memcpy(o, offers, sizeof(*o) * noffers);
	qsort(o, noffers, sizeof(*o), by_tm);
	for (size_t i = 0; i < noffers; i++) {
		sum += o[i].slots;
		maxslots = o[i].slots > maxslots ? o[i].slots : maxslots;
	}
	*total = sum;
	if (needed > sum) {
		free(o);
		return -1;
	}
	/* the first `needed` global slots */
	struct weir_place *g = malloc(sizeof(*g) * needed);
	if (!g) {
		free(o);
		return -1;
	}
	uint32_t n = 0;
	if (spread) {
		for (uint32_t s = 0; s < maxslots && n < needed; s++)
			for (size_t i = 0; i < noffers && n < needed; i++)
				if (s < o[i].slots)
					g[n++] = (struct weir_place){ o[i].tm, s };
	} else {
		for (size_t i = 0; i < noffers && n < needed; i++)
			for (uint32_t s = 0; s < o[i].slots && n < needed; s++)
				g[n++] = (struct weir_place){ o[i].tm, s };
	}
	size_t k = 0;
	for (size_t v = 0; v < nv; v++)
		for (uint32_t i = 0; i < par[v]; i++)
			out[k++] = g[i];
	free(g);
	free(o);
	return needed;
}
