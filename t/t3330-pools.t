#!/usr/bin/env bash
# t3330-pools: a job on the cluster takes its segments from its
# TaskManagers' own pools (no pool file of its own in /dev/shm), two jobs
# share a TaskManager's pool and both finish right, a job that does not fit
# in what is free of a pool fails naming the numbers and
# taskmanager.segments, and the segments come back when a job ends.
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT

# want N: the output of fifo_gate with COUNT N, sorted
want() { for ((i = 0; i < $1; i++)); do echo "n $i"; done | LC_ALL=C sort >"$T/want"; }
same() { # same DESC OUTDIR
	LC_ALL=C sort "$2"/part-* >"$T/got" 2>/dev/null
	if [ -s "$T/got" ] && cmp -s "$T/want" "$T/got"; then pass "$1"; else fail "$1"; diag "$(diff "$T/want" "$T/got" | head -5)"; fi
}
# gated NAME P ARGS...: runs fifo_gate in the background with FIFOs $T/NAME.run and
# $T/NAME.gate, output $T/NAME.out, and waits until it says it runs
gated() {
	local name=$1 p=$2
	shift 2
	rm -rf "$T/$name.out" "$T/$name.run" "$T/$name.gate"
	mkfifo "$T/$name.run" "$T/$name.gate"
	"$WEIR" run "$TJOBS/fifo_gate.so" -p "$p" "$@" -- "$T/$name.run" "$T/$name.gate" 20000 "$T/$name.out" \
		>"$T/$name.txt" 2>"$T/$name.err" &
	eval "${name}_pid=$!"
	timeout 60 head -n 1 "$T/$name.run" >"$T/$name.said" || true
	grep -qx running "$T/$name.said"
}
says() { # says DESC PATTERN: weir's stderr matches the extended regex
	if grep -Eq -- "$2" "$T/err"; then pass "$1"; else fail "$1"; diag "stderr: $(cat "$T/err")"; fi
}
open_gate() { timeout 60 sh -c "echo go >'$T/$1.gate'"; }
want 20000

# --- a cluster with the default pools (256 segments each)
run_weir cluster start --taskmanagers 2 --slots 2
check "cluster start (rc $rc)" grep -q 'started in' "$T/out"
id=$(cat "$WEIR_RUN_DIR/cluster.id")

check 'a first job runs over both taskmanagers' gated a 2 --spread
check 'a second job runs beside it, on the same taskmanagers' gated b 2 --spread
run_weir cluster status
check 'together they hold all 4 slots' grep -q '4 slots (4 used)' "$T/out"
ls "/dev/shm/weir-$id" >"$T/shm"
n=$(grep -c "^j" "$T/shm" || true)
check "the jobs have their files in the cluster's folder in /dev/shm ($n)" test "$n" -gt 0
n=$(grep -Ec "^j.*pool" "$T/shm" || true)
check "but no pool of their own ($n)" test "$n" -eq 0
check 'the taskmanagers'"'"' pools are there' bash -c "grep -qx 'tm0-pool' '$T/shm' && grep -qx 'tm1-pool' '$T/shm'"
open_gate a
open_gate b
rc=0; wait "$a_pid" || rc=$?
check "the first job finishes (rc $rc)" grep -q 'finished in' "$T/a.err"
same 'with the right output' "$T/a.out"
rc=0; wait "$b_pid" || rc=$?
check "the second job finishes (rc $rc)" grep -q 'finished in' "$T/b.err"
same 'with the right output' "$T/b.out"
run_weir cluster stop
check "cluster stop (rc $rc)" grep -q stopped "$T/out"
check_logs "$WEIR_RUN_DIR"

# --- pools of 76 segments: a job spread over both taskmanagers needs 72 on
# each (2 channels from there x 4 credits + 64 floating), so one fits and a
# second does not; packed on one it needs 80, more than the whole pool
printf 'taskmanagers: 2\ntaskmanager.slots: 2\ntaskmanager.segments: 76\n' >"$T/small.yaml"
run_weir cluster start --config "$T/small.yaml"
check "cluster start with pools of 76 segments (rc $rc)" grep -q 'started in' "$T/out"
check 'a job that fits runs' gated a 2 --spread
run_weir run "$TJOBS/fifo_gate.so" -p 2 --spread -- "$T/x.run" "$T/x.gate" 10 "$T/x.out"
check "a second one does not fit beside it: it fails (rc $rc)" test "$rc" -eq 1
says 'naming the numbers and the configuration key' \
	'taskmanager [01]: deploy: the job needs 72 segments on taskmanager [01] \(2 channels from here x 4 credits \+ 64 floating\), but its pool has 4 free of 76: other jobs hold the rest \(taskmanager\.segments\)' "$T/err"
open_gate a
rc=0; wait "$a_pid" || rc=$?
check "the first job is untouched: it finishes (rc $rc)" grep -q 'finished in' "$T/a.err"
same 'with the right output' "$T/a.out"
check 'once it is over its segments are back: another job that needs 72 runs' gated c 2 --spread
open_gate c
rc=0; wait "$c_pid" || rc=$?
same "and finishes right (rc $rc)" "$T/c.out"
run_weir run "$TJOBS/fifo_gate.so" -p 2 -- "$T/x.run" "$T/x.gate" 10 "$T/x.out"
check "a job that needs more than a whole pool (packed: 80 on one taskmanager) fails at once (rc $rc)" test "$rc" -eq 1
says 'naming the numbers and the configuration key' \
	'taskmanager 0: deploy: the job needs 80 segments on taskmanager 0 \(4 channels from here x 4 credits \+ 64 floating\), but its pool has 76 free of 76 \(taskmanager\.segments\)' "$T/err"
run_weir cluster stop
check "cluster stop (rc $rc)" grep -q stopped "$T/out"
left=$(shm_left "weir-$id")
check "no /dev/shm file of the first cluster is left ($left)" test "$left" -eq 0
id=$(cat "$WEIR_RUN_DIR/cluster.id")
left=$(shm_left "weir-$id")
check "nor of the second ($left)" test "$left" -eq 0
check_logs "$WEIR_RUN_DIR"
done_testing
