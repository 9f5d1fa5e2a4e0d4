#!/usr/bin/env bash
# t3310-cluster-jobs: jobs on a local cluster of 2 TaskManagers give the
# same results as in local mode (wordcount and windowed wordcount, packed
# and spread over the TaskManagers, so channels cross processes); a job
# that needs more slots than exist, one that fails to build on a
# TaskManager, one that fails mid-run, cancel mid-run, and a TaskManager
# killed mid-run each give a clear message, and the cluster keeps working
# (the killed TaskManager is started again by the supervisor).
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
# whatever happens, the cluster goes (and with it its processes and files)
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
run_weir cluster start --taskmanagers 2 --slots 2 --slot-wait 60000
check "cluster start (rc $rc)" grep -q 'started in' "$T/out"

seed=${WEIR_SEED:-$(( $(date +%s) ^ $$ ))}
echo "# seed $seed (replay with WEIR_SEED=$seed)"
perl -e 'srand($ARGV[0]); my @v = map { join "", map { ("a".."z")[rand 26] } 1..(1 + int rand 6) } 1..300;
	for (1..4000) { my $ts = 1000 * $_ + int rand 3000; print "$ts ", join(" ", map { $v[rand @v] } 1..(1 + int rand 8)), "\n" }' \
	"$seed" >"$T/in.txt"

same_as_local() { # same_as_local DESC JOB -- ARGS (OUT is appended as the last job argument)
	local desc=$1 job=$2
	shift 3
	rm -rf "$T/local" "$T/cl1" "$T/cl2"
	run_weir local "$job" -q -p 2 -- "$@" "$T/local"
	[ "$rc" -eq 0 ] || { fail "$desc: local run"; diag "$(cat "$T/err")"; return; }
	LC_ALL=C sort "$T/local"/part-* >"$T/want"
	for mode in packed spread; do
		local out="$T/cl-$mode" flag=
		[ "$mode" = spread ] && flag=--spread
		rm -rf "$out"
		run_weir run "$job" -p 2 $flag -- "$@" "$out"
		if [ "$rc" -ne 0 ]; then fail "$desc, $mode: runs"; diag "$(cat "$T/err")"; continue; fi
		LC_ALL=C sort "$out"/part-* >"$T/got"
		if cmp -s "$T/want" "$T/got"; then pass "$desc, $mode over 2 taskmanagers: same output as local mode"
		else fail "$desc, $mode: same output as local mode"; diag "$(diff "$T/want" "$T/got" | head -5)"; fi
	done
}
cut -d' ' -f2- "$T/in.txt" >"$T/words.txt"
same_as_local wordcount "$JOBS/wordcount.so" -- "$T/words.txt"
same_as_local 'windowed wordcount (keyed state, timers, watermarks)' "$JOBS/windowed_wordcount.so" -- "$T/in.txt"
check 'the jobmanager logged a spread job' grep -q '(spread)' "$WEIR_RUN_DIR/jobmanager.log"
same_as_local 'a job object over 3 MiB' "$TJOBS/bigjob.so" -- "$T/words.txt"
check 'it was uploaded to the jobmanager in chunks' grep -Eq 'object [0-9a-f]{64}\.so stored \([0-9]{7,} bytes\)' "$WEIR_RUN_DIR/jobmanager.log"
check 'and fetched by both taskmanagers' bash -c "grep -q 'object fetched' '$WEIR_RUN_DIR/taskmanager-0.log' && grep -q 'object fetched' '$WEIR_RUN_DIR/taskmanager-1.log'"


run_weir run "$TJOBS/tmfail.so" -p 2 --spread
check "a job failing to build on a taskmanager fails (rc $rc)" test "$rc" -eq 1
check 'with the taskmanager'"'"'s message' grep -q 'taskmanager [01]: .*this job refuses to run on a taskmanager' "$T/err"

{ for i in $(seq 1 5000); do echo "line $i"; done; echo poison; } >"$T/poison.txt"
run_weir run "$TJOBS/userfail.so" -p 2 --spread -- "$T/poison.txt" "$T/pout"
check "a failing operator fails the job (rc $rc)" grep -q "operator 'check' (subtask [12]/2): found poison" "$T/err"
n=$(find "$T/pout" -type f 2>/dev/null | wc -l)
check "and leaves no part or in-progress file ($n)" test "$n" -eq 0

# cancel mid-run: the job says it runs through a FIFO; no sleeps
mkfifo "$T/fifo"
run_weir run "$TJOBS/fifo_ticker.so" -p 2 --spread --detached -- "$T/fifo" "$T/tout"
jobid=$(cat "$T/out")
read -r line <"$T/fifo"
check "the detached job $jobid runs ($line)" test "$line" = running
run_weir cluster status
check 'status counts the slots the running job holds' grep -q '4 slots (2 used)' "$T/out"
run_weir cancel "$jobid"
check "cancel is accepted (rc $rc)" grep -q 'cancel requested' "$T/out"
wait_for "$WEIR_RUN_DIR/jobmanager.log" "job $jobid (fifo_ticker.so) canceled"
run_weir list
check 'weir list shows it canceled' grep -q "^$jobid .*canceled" "$T/out"
n=$(find "$T/tout" -name 'part-*' 2>/dev/null | wc -l)
check "a canceled job commits nothing ($n)" test "$n" -eq 0

# two jobs at once (each on its own slots), a third finds no free slot
mkfifo "$T/fa" "$T/fb"
run_weir run "$TJOBS/fifo_ticker.so" -p 2 --detached -- "$T/fa" "$T/oa"; ja=$(cat "$T/out")
read -r line <"$T/fa"
run_weir run "$TJOBS/fifo_ticker.so" -p 2 --detached -- "$T/fb" "$T/ob"; jb=$(cat "$T/out")
read -r line2 <"$T/fb"
check "two jobs run at once ($ja: $line, $jb: $line2)" test "$line$line2" = runningrunning
run_weir cluster status
check 'together they hold all 4 slots' grep -q '4 slots (4 used)' "$T/out"
# a third job finds no free slot: it waits (the JobManager says so) and runs once slots free
"$WEIR" run "$JOBS/wordcount.so" -p 1 -- "$T/words.txt" "$T/oc" >"$T/oc.txt" 2>"$T/oc.err" &
ocpid=$!
parked="job 'wordcount.so' waits up to 60000 ms for slots: the job needs 1 slots; the cluster has 0 free of 4"
check 'a third job waits for a free slot' wait_for "$WEIR_RUN_DIR/jobmanager.log" "$parked"
run_weir cancel "$ja"; run_weir cancel "$jb"
rc=0; wait "$ocpid" || rc=$?
check "once the others are cancelled it runs and finishes (rc $rc)" grep -q 'finished in' "$T/oc.err"
run_weir local "$JOBS/wordcount.so" -q -p 1 -- "$T/words.txt" "$T/ocl"
LC_ALL=C sort "$T"/oc/part-* >"$T/oc.sorted" 2>/dev/null; LC_ALL=C sort "$T"/ocl/part-* >"$T/ocl.sorted" 2>/dev/null
check "with the same output as local mode (local rc $rc)" bash -c "[ $rc -eq 0 ] && [ -s '$T/ocl.sorted' ] && cmp -s '$T/oc.sorted' '$T/ocl.sorted'"
# a job frees its slots before the JobManager logs its end
wait_for "$WEIR_RUN_DIR/jobmanager.log" "job $ja (fifo_ticker.so) canceled"
wait_for "$WEIR_RUN_DIR/jobmanager.log" "job $jb (fifo_ticker.so) canceled"
run_weir cluster status
check 'all slots are free again' grep -q '4 slots (0 used)' "$T/out"

# a TaskManager killed with kill -9 while a job runs
rm -f "$T/fifo"; mkfifo "$T/fifo"
"$WEIR" run "$TJOBS/fifo_ticker.so" -p 2 --spread -- "$T/fifo" "$T/kout" >"$T/kout.txt" 2>"$T/kerr.txt" &
runpid=$!
read -r line <"$T/fifo"
run_weir cluster status
tm1=$(sed -n 's/.*taskmanager 1 *pid \([0-9]*\).*/\1/p' "$T/out")
kill -9 "$tm1"
rc=0; wait "$runpid" || rc=$?
check "weir run fails when a taskmanager dies mid-job (rc $rc)" test "$rc" -eq 1
check 'naming the lost taskmanager' grep -q 'taskmanager 1 was lost' "$T/kerr.txt"
run_weir cluster status --wait 2
check 'the supervisor started the killed taskmanager again: 2 registered' grep -q '2 taskmanagers, 4 slots' "$T/out"
tm1b=$(sed -n 's/.*taskmanager 1 *pid \([0-9]*\).*/\1/p' "$T/out")
check "as a new process ($tm1 -> $tm1b)" test -n "$tm1b" -a "$tm1b" != "$tm1"
check 'the supervisor logged why' grep -q "taskmanager 1 (pid $tm1) killed by signal 9" "$T/run/supervisor.log"
check 'and the restart' wait_for "$T/run/supervisor.log" "taskmanager 1 started again (pid $tm1b, restart 1)"
rm -rf "$T/after"
run_weir run "$JOBS/wordcount.so" -p 2 -- "$T/words.txt" "$T/after"
check "the cluster still runs jobs (rc $rc)" test "$rc" -eq 0

run_weir cluster stop
check "cluster stop (rc $rc)" grep -q 'stopped' "$T/out"
id=$(cat "$WEIR_RUN_DIR/cluster.id")
left=$(shm_left "weir-$id")
check "no /dev/shm file of the cluster is left ($left)" test "$left" -eq 0
left=$(ls "$WEIR_RUN_DIR" | grep -c '^objects' || true)
check "nor any object store in the run folder ($left)" test "$left" -eq 0
left=$(shm_left "weir-local-$tm1-")
check "none of the killed taskmanager's either ($left)" test "$left" -eq 0
check_logs "$WEIR_RUN_DIR" 1 # the kill -9 above
done_testing
