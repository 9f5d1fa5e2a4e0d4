#!/usr/bin/env bash
# t3700-ysb: the Yahoo Streaming Benchmark job (bench/ysb_job.c) against a
# reference computed here by perl from the benchmark's definition (event v:
# ad (v % 100000) % 1000 of campaign ad / 10, a view when (v % 100000) % 3
# is 0; synthetic event time v / E s; counts per campaign in 10 s tumbling
# windows with the newest event's ts): at parallelism 1 and 2 in local mode,
# on a local cluster with checkpoints through a kill -9 of a TaskManager
# (exactly once), and the plain-loop baseline (bench/ysb_baseline.c) agrees
# with the job's checksum. Bad arguments are named.
. "$(dirname "$0")/lib.sh"

JOB=$JOBS/ysb.so
BASE=$WEIR_BUILD/bin/weir-bench-ysb
N=130000 E=4000 # 10 s of event time = 40000 events: windows 0, 10 s, 20 s and a part of 30 s

# reference: "campaign start count newest" per window and campaign
perl -e '
	use integer;
	my ($n, $e) = @ARGV; my (%c, %new);
	for my $v (0 .. $n - 1) {
		my $m = $v % 100000;
		next if $m % 3;
		my $camp = ($m % 1000) / 10;
		my $ts = $v * 1000000000 / $e;
		my $ms = $ts / 1000000;
		my $k = "$camp " . ($ms - $ms % 10000);
		$c{$k}++;
		$new{$k} = $ts if !defined $new{$k} || $ts > $new{$k};
	}
	print "$_ $c{$_} $new{$_}\n" for keys %c;' $N $E | LC_ALL=C sort >"$T/want"
check "the reference has 100 campaigns x 4 windows" test "$(wc -l <"$T/want")" -eq 400

for p in 1 2; do
	"$WEIR" local "$JOB" -q -p $p -- $N 0 $E print >"$T/out" 2>"$T/err" || diag "$(cat "$T/err")"
	LC_ALL=C sort "$T/out" >"$T/got"
	check "local -p $p: every window of every campaign as the reference" cmp -s "$T/want" "$T/got"
done

# the job's checksum (stats) equals the plain loop's
"$WEIR" local "$JOB" -q -p 2 -- $N 0 $E stats >"$T/stats" 2>"$T/err" || diag "$(cat "$T/err")"
"$BASE" $N $E >"$T/base" 2>&1
sum() { sed -n 's/^ysb results \([0-9]*\) checksum \([0-9a-f]*\) .*/\1 \2/p' "$1"; }
check "the baseline's results and checksum equal the job's ($(sum "$T/base"))" \
	test -n "$(sum "$T/base")" -a "$(sum "$T/base")" = "$(sum "$T/stats")"
# buffer debloating (segments sent at 4 KiB, the least it asks for) changes
# no result: 3M events, the job's checksum against the plain loop's
"$WEIR" local "$JOB" -q -p 2 --debloat-us 1 -- 3000000 0 $E stats >"$T/stats" 2>"$T/err" || diag "$(cat "$T/err")"
"$BASE" 3000000 $E >"$T/base" 2>&1
check "with --debloat-us 1 the job's results and checksum equal the loop's ($(sum "$T/stats"))" \
	test -n "$(sum "$T/base")" -a "$(sum "$T/base")" = "$(sum "$T/stats")"
check "the wall clock: latencies reported" \
	sh -c "'$WEIR' local '$JOB' -q -p 2 -- 200000 0 wall stats | grep -qE '^ysb results [1-9][0-9]* checksum [0-9a-f]+ latency_ns p50 [1-9]'"

# a local cluster, checkpoints every 30 ms, paced to last 6.5 s (the kill
# must come while it runs: checkpoints under a loaded machine's fsyncs may
# take half a second); a TaskManager killed after the 2nd checkpoint: still
# exactly once
export WEIR_RUN_DIR="$T/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
"$WEIR" cluster start --taskmanagers 2 --slots 1 >/dev/null 2>"$T/err" || { fail "cluster start"; diag "$(cat "$T/err")"; }
"$WEIR" run "$JOB" -p 2 --checkpoint-interval 30 --checkpoint-dir "$T/ck" --restart-attempts 5 --restart-delay 50 \
	-- $N 20000 $E "dir:$T/res" >"$T/run.out" 2>"$T/run.err" &
runpid=$!
jm=$T/run/jobmanager.log
timeout 120 tail -n +1 -F "$jm" 2>/dev/null | grep -q -m1 -E "job 1: checkpoint 2 complete \(" ||
	fail "checkpoint 2 completed"
"$WEIR" cluster status >"$T/st" 2>&1
pid=$(sed -n "s/.*taskmanager 1 *pid \([0-9]*\).*/\1/p" "$T/st")
kill -9 "$pid"
wait "$runpid"
check "the job finished after the kill (exit $?)" grep -q "finished" "$T/run.err"
check "it restarted from a checkpoint" grep -q "job 1 (ysb.so): restart 1 from" "$jm"
cat "$T"/res/part-* 2>/dev/null | LC_ALL=C sort >"$T/got"
check "through the kill: every result once, as the reference" cmp -s "$T/want" "$T/got"
[ -s "$T/got" ] && ! cmp -s "$T/want" "$T/got" && diag "$(diff "$T/want" "$T/got" | head -5)"
timeout 60 tail -n +1 -F "$T/run/supervisor.log" 2>/dev/null | grep -q -m1 "taskmanager 1 started again"
"$WEIR" cluster stop >/dev/null 2>&1
check_logs "$T/run" 1

# bad arguments: named, exit 1
"$WEIR" local "$JOB" -q -- 10 0 never print >"$T/out" 2>"$T/err"
check "a bad clock: exit 1 ($?)" test $? -eq 1
check "  the usage named" grep -q "usage: ysb.so -- COUNT RATE wall|EVENTS_PER_S" "$T/err"
"$BASE" 10 0 >"$T/out" 2>"$T/err"
check "the baseline refuses a clock of 0 events/s ($?)" grep -q "usage: weir-bench-ysb" "$T/err"

done_testing
