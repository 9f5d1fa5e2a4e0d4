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
	# weir stop answers once the savepoint is complete; the job ends after it
	wait_for "$T/run/jobmanager.log" "job $id (ckjob.so) stopped with a savepoint" || diag "job $id never ended"
	run_weir list
	check "the stopped job is finished, stopped with the savepoint" grep -Eq "^$id .*finished.*stopped with savepoint $sp" "$T/out"
	run_weir run "$TJOBS/ckjob.so" -p $p --checkpoint-interval 50 --checkpoint-dir "$T/ck" --from-savepoint "$sp" \
		-- $COUNT $RATE "$T/o$p" 2
	check "resumed from the savepoint at parallelism $p (rc $rc)" test "$rc" -eq 0
	[ "$rc" -eq 0 ] || diag "$(cat "$T/err")" "$(tail -5 "$T/run/jobmanager.log")"
	exact "$T/o$p" "parallelism 2 -> $p through a savepoint: the same output as an uninterrupted run"
	eval "sp_of_$p=\$sp"
done

# a chain of rescales, 3 -> 2 -> 3: the subtask that is new again at the end
# must not take back what an old one published under its index
rm -rf "$T/oc" "$T/spc"
p=3 from=()
for next in 2 3 end; do
	run_weir run "$TJOBS/ckjob.so" -p $p --detached --checkpoint-interval 0 --checkpoint-dir "$T/ck" "${from[@]}" \
		-- $COUNT $RATE "$T/oc" 2
	id=$(cat "$T/out")
	[ "$next" = end ] && break
	run_weir stop "$id" --savepoint "$T/spc"
	from=(--from-savepoint "$(cat "$T/out")")
	p=$next
done
check "the last of the chain runs (job $id)" test "$rc" -eq 0 -a -n "$id"
check "and finishes" wait_for "$T/run/jobmanager.log" "job $id (ckjob.so) finished"
exact "$T/oc" "parallelism 3 -> 2 -> 3 through two savepoints: the same output as an uninterrupted run"

# a savepoint that does not stop the job
rm -rf "$T/o" "$T/sp"
run_weir run "$TJOBS/ckjob.so" -p 2 --detached --checkpoint-interval 100 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2
id=$(cat "$T/out")
run_weir savepoint "$id" "$T/sp"
sp=$(cat "$T/out")
check "weir savepoint writes a complete savepoint (rc $rc: $sp)" test "$rc" -eq 0 -a -f "$sp/_metadata"
run_weir list
check "and the job goes on" grep -Eq "^$id .*running" "$T/out"
check "to its end" wait_for "$T/run/jobmanager.log" "job $id (ckjob.so) finished"
exact "$T/o" "a savepoint changes nothing in the output"
check "savepoints of two jobs in one folder never share one: a folder per job" \
	test "$(find "$T/sp" -name _metadata | wc -l)" -eq 1 -a "$(dirname "$(dirname "$sp")")" = "$T/sp"

# a source whose parallelism would change is refused, once, not retried
rm -rf "$T/o9"
before=$(grep -c 'restart [0-9]* of' "$T/run/jobmanager.log" || true)
run_weir run "$TJOBS/ckjob.so" -p 3 --checkpoint-interval 50 --checkpoint-dir "$T/ck" --from-savepoint "$sp_of_3" \
	-- $COUNT $RATE "$T/o9"
check "restoring sources at another parallelism fails (rc $rc)" test "$rc" -ne 0
check "saying a source keeps its parallelism" grep -q "keeps its parallelism" "$T/err"
after=$(grep -c 'restart [0-9]* of' "$T/run/jobmanager.log" || true)
check "without restarts: the refusal would repeat ($before -> $after)" test "$before" -eq "$after"

expect 1 'no running job 999' 'a savepoint of an unknown job is refused' -- savepoint 999 "$T/x"
run_weir run "$TJOBS/ckjob.so" -p 1 --detached -- 100000 1000 "$T/o8" 1
id=$(cat "$T/out")
expect 1 'runs without checkpoints' 'a savepoint of a job without checkpoints is refused' -- savepoint "$id" "$T/x"
"$WEIR" cancel "$id" >/dev/null 2>&1
expect 2 'usage: weir stop' 'weir stop needs --savepoint' -- stop 1
expect 2 'not a job id' 'weir savepoint needs a job id' -- savepoint abc
expect 2 "from-savepoint '$T/nowhere'" '--from-savepoint of a missing folder' -- run "$TJOBS/ckjob.so" --from-savepoint "$T/nowhere" -- 1 1 "$T/x"
run_weir cluster stop
check "cluster stop (rc $rc)" grep -q 'stopped' "$T/out"
check_logs "$WEIR_RUN_DIR"
done_testing
