#!/usr/bin/env bash
# t3420-savepoints: savepoints on the local cluster, and restoring them at
# another parallelism. The keyed job with windows (t/jobs/ckjob.c, sources
# fixed at parallelism 2) is stopped with a savepoint at parallelism 2 and
# resumed from it at 3 and at 1: keyed state (window contents, timers)
# moves by key group, and the committed output equals an uninterrupted
# run's (tally). A savepoint taken without stopping leaves the job running
# and exact. Bad requests get clear errors.
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
COUNT=30000 RATE=15000 # two seconds a run

run_weir cluster start --taskmanagers 2 --slots 3 --slot-wait 60000
check "cluster start (rc $rc)" grep -q 'started in' "$T/out"
"$WEIR" local "$TJOBS/ckjob.so" -q -p 2 -- $COUNT $RATE "$T/ref" 2 2>"$T/err" || { fail "reference run"; diag "$(cat "$T/err")"; }
ck_output "$T/ref" >"$T/want"

for p in 3 1; do
	rm -rf "$T/o$p" "$T/sp$p"
	run_weir run "$TJOBS/ckjob.so" -p 2 --detached --checkpoint-interval 0 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o$p" 2
	id=$(cat "$T/out")
	check "job submitted detached, savepoints only (id $id)" test "$rc" -eq 0 -a -n "$id"
	run_weir stop "$id" --savepoint "$T/sp$p"
	sp=$(cat "$T/out")
	check "weir stop --savepoint names the savepoint (rc $rc: $sp)" test "$rc" -eq 0 -a -f "$sp/_metadata"
	run_weir list
	check "the stopped job is finished, stopped with the savepoint" grep -Eq "^$id .*finished.*stopped with savepoint $sp" "$T/out"
	run_weir run "$TJOBS/ckjob.so" -p $p --checkpoint-interval 50 --checkpoint-dir "$T/ck" --from-savepoint "$sp" \
		-- $COUNT $RATE "$T/o$p" 2
	check "resumed from the savepoint at parallelism $p (rc $rc)" test "$rc" -eq 0
	[ "$rc" -eq 0 ] || diag "$(cat "$T/err")" "$(tail -5 "$T/run/jobmanager.log")"
	exact "$T/o$p" "parallelism 2 -> $p through a savepoint: the same output as an uninterrupted run"
done

# a savepoint that does not stop the job
rm -rf "$T/o" "$T/sp"
run_weir run "$TJOBS/ckjob.so" -p 2 --detached --checkpoint-interval 100 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2
id=$(cat "$T/out")
run_weir savepoint "$id" "$T/sp"
sp=$(cat "$T/out")
check "weir savepoint writes a complete savepoint (rc $rc: $sp)" test "$rc" -eq 0 -a -f "$sp/_metadata"
run_weir list
check "and the job goes on" grep -Eq "^$id .*(running|finished)" "$T/out"
timeout 120 tail -n +1 -F "$T/run/jobmanager.log" 2>/dev/null | grep -q -m1 "job $id (ckjob.so) finished"
exact "$T/o" "a savepoint changes nothing in the output"

# a source whose parallelism would change is refused, once, not retried
rm -rf "$T/o9"
run_weir run "$TJOBS/ckjob.so" -p 3 --checkpoint-interval 50 --checkpoint-dir "$T/ck" --from-savepoint "$T/sp3" \
	-- $COUNT $RATE "$T/o9"
check "restoring sources at another parallelism fails (rc $rc)" test "$rc" -ne 0
check "saying a source keeps its parallelism" grep -q "keeps its parallelism" "$T/err"
check "without restarts" bash -c "! grep -q 'restart 1 from' '$T/run/jobmanager.log' || ! grep -q 'o9' '$T/run/jobmanager.log'"

expect 1 'no running job 999' 'a savepoint of an unknown job is refused' -- savepoint 999 "$T/x"
run_weir run "$TJOBS/ckjob.so" -p 1 --detached -- 100000 1000 "$T/o8" 1
id=$(cat "$T/out")
expect 1 'runs without checkpoints' 'a savepoint of a job without checkpoints is refused' -- savepoint "$id" "$T/x"
"$WEIR" cancel "$id" >/dev/null 2>&1
expect 2 'usage: weir stop' 'weir stop needs --savepoint' -- stop 1
expect 2 'not a job id' 'weir savepoint needs a job id' -- savepoint abc
expect 2 "from-savepoint '$T/nowhere'" '--from-savepoint of a missing folder' -- run "$TJOBS/ckjob.so" --from-savepoint "$T/nowhere" -- 1 1 "$T/x"
done_testing
