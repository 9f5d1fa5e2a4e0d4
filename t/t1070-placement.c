/* t1070-placement: slot sharing and packed/spread placement. */
#include "tap.h"
#include "sched/placement.h"

int main(void)
{
	struct weir_slot_offer offers[2] = { { 7, 2 }, { 3, 3 } }; /* out of id order on purpose */
	uint32_t par[3] = { 2, 3, 1 };
	struct weir_place out[6];
	uint32_t total = 0;
	long need = weir_place_job(par, 3, offers, 2, false, out, &total);
	is_int(need, 3, "a job needs as many slots as its largest parallelism");
	ok(out[0].tm == 3 && out[0].slot == 0 && out[1].tm == 3 && out[1].slot == 1, "packed: tm 3 (lowest id) first");
	ok(out[2].tm == 3 && out[2].slot == 0 && out[4].tm == 3 && out[4].slot == 2,
	   "subtask i of every vertex shares global slot i");
	ok(out[5].tm == 3 && out[5].slot == 0, "and the single subtask of the last vertex is in slot 0 too");
	need = weir_place_job(par, 3, offers, 2, true, out, &total);
	ok(need == 3 && out[2].tm == 3 && out[3].tm == 7 && out[4].tm == 3 && out[4].slot == 1,
	   "spread: neighbouring global slots alternate between taskmanagers");
	uint32_t big[1] = { 6 };
	ok(weir_place_job(big, 1, offers, 2, false, out, &total) == -1 && total == 5,
	   "too few slots: refused, with the total there is (5)");
	done_testing();
}
