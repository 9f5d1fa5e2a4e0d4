#!/usr/bin/env bash
# t3050-layers: the build enforces the layers of docs/architecture.md
# ("Layers and their rules"): each layer compiles with an include path
# (<build>/layers/<name>/) that holds itself and the layers it may use,
# nothing above. A header of a higher layer does not compile in a lower
# one; each layer's allowed set is the documented one.
. "$(dirname "$0")/lib.sh"

L=$WEIR_BUILD/layers
[ -d "$L" ] || { echo "Bail out! no $L (a build folder of this tree?)"; exit 255; }
root=$(cd "$here/.." && pwd)

# what each layer may use (itself included), as docs/architecture.md says
declare -A may=(
	[base]="base"
	[shm]="base shm"
	[sched]="base sched shm"
	[net]="base net shm"
	[ctl]="base ctl"
	[graph]="base graph"
	[io]="base io shm"
	[state]="base graph state"
	[task]="base graph io sched shm state task"
	[operators]="base graph io operators sched shm state task"
	[connectors]="base connectors graph io operators sched shm state task"
	[checkpoint]="base checkpoint graph io operators sched shm state task"
	[metrics]="base metrics net shm"
	[runtime]="base checkpoint connectors graph io metrics net operators runtime sched shm state task"
	[cluster]="base checkpoint cluster connectors ctl graph io metrics net operators runtime sched shm state task"
	[cli]="base checkpoint cli cluster connectors ctl graph io metrics net operators runtime sched shm state task"
)
for l in "${!may[@]}"; do
	got=$(cd "$L/$l" 2>/dev/null && ls | sort | tr '\n' ' ' | sed 's/ $//')
	check "layer $l sees exactly: ${may[$l]}" test "$got" = "${may[$l]}"
done

# a header from each layer, to include from the others
declare -A hdr=([base]=base/err.h [shm]=shm/pool.h [sched]=sched/worker.h [net]=net/frame.h [ctl]=ctl/sha.h
	[graph]=graph/graph.h [io]=io/record.h [state]=state/kv.h [task]=task/task.h [operators]=operators/chain.h
	[connectors]=connectors/connectors.c [checkpoint]=checkpoint/coordinator.h [runtime]=runtime/run.h
	[metrics]=metrics/metrics.h [cluster]=cluster/ctlio.h [cli]=cli/cli.h)
cc=${CC:-cc}
for l in state task checkpoint runtime; do
	for h in graph io task operators metrics runtime cluster cli; do
		[ "${hdr[$h]##*.}" = h ] || continue
		printf '#include "%s"\n' "${hdr[$h]}" >"$T/x.c"
		rc=0
		"$cc" -fsyntax-only -D_GNU_SOURCE -I"$L/$l" -I"$root/include" -I"$WEIR_BUILD/gen" "$T/x.c" 2>"$T/cc.err" || rc=$?
		if [[ " ${may[$l]} " == *" $h "* ]]; then
			check "$l may include ${hdr[$h]}" test "$rc" -eq 0
		else
			check "$l may not include ${hdr[$h]} (it does not compile)" grep -q "${hdr[$h]}: No such file" "$T/cc.err"
		fi
	done
done

done_testing
