#!/usr/bin/env bash
# t3410-cluster-recovery: exactly-once on the local cluster while
# TaskManagers die. The keyed job with windows (t/jobs/ckjob.c) runs at
# parallelism 2 on 2 TaskManagers of 1 slot each (every attempt needs both,
# so each restart also waits for the supervisor to start the killed one
# again), with a checkpoint every 50 ms:
#  - kill -9 of a random TaskManager (seeded) three times, each after a
#    chosen checkpoint completed: the committed output equals a fault-free
#    run's (tally: lost, duplicated, unexpected), and weir list shows the
#    restarts and the checkpoint restored;
#  - the same once in at-least-once mode: nothing lost, duplicates counted;
#  - a TaskManager crashing at each step of the protocol (failpoints,
#    kill-self; only TaskManager 0 armed), and a restore that fails once:
#    the job restarts and the output is exact;
#  - the JobManager crashing after writing a checkpoint's metadata but
#    before announcing it, or before renaming it: weir run fails, and a new
#    cluster resumes with --from-checkpoint, exactly.
# Every cluster ends with check_logs: no sanitizer report in any daemon's
# log, and exactly as many TaskManager restarts as the test caused.
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
COUNT=20000 RATE=20000 # a second a run: 20 checkpoints, whatever the machine
tm_pid() { "$WEIR" cluster status >"$T/st" 2>&1; sed -n "s/.*taskmanager $1 *pid \([0-9]*\).*/\1/p" "$T/st"; }
submit() { # submit OUT [FLAG [JOB ARGS...]]: runs the job on the cluster in the background ($runpid)
	local out=$1 flag=${2:-}
	shift $(($# < 2 ? $# : 2))
	"$WEIR" run "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 50 --checkpoint-dir "$T/ck" --restart-attempts 10 \
		${flag:+"$flag"} -- $COUNT $RATE "$out" "$@" >"$T/run.out" 2>"$T/run.err" &
	runpid=$!
}
start_cluster() { # start_cluster [ENV...]
	rm -rf "$T/run"
	env "$@" "$WEIR" cluster start --taskmanagers 2 --slots 1 --slot-wait 60000 >"$T/out" 2>"$T/err" ||
		{ fail "cluster start"; diag "$(cat "$T/err")"; }
}
restarted() { # restarted N: until the supervisor made its N-th restart of a TaskManager (N > 0)
	wait_for "$T/run/supervisor.log" ", restart $1)"
}
stop_cluster() { # stop_cluster RESTARTS: stop, then check the logs (RESTARTS: the test's kills)
	[ "$1" -eq 0 ] || restarted "$1" || true # a restart is asynchronous: wait for it, check_logs counts
	"$WEIR" cluster stop >/dev/null 2>&1
	check_logs "$T/run" "$1"
}

"$WEIR" local "$TJOBS/ckjob.so" -q -p 2 -- $COUNT $RATE "$T/ref" 2>"$T/err" || { fail "reference run"; diag "$(cat "$T/err")"; }
ck_output "$T/ref" >"$T/want"

seed=${WEIR_SEED:-$(( $(date +%s) ^ $$ ))}
echo "# seed $seed (replay with WEIR_SEED=$seed)"
RANDOM=$seed

# three kills -9 of a random TaskManager, each after a chosen checkpoint (a
# machine so slow that the job ends first gets fewer kills, said so; the
# checks below count the kills made)
start_cluster
rm -rf "$T/ck" "$T/o"
COUNT=60000 submit "$T/o" # 3 s: room for the three kills
target=0 kills=0 caused=0 # caused: the TaskManagers killed on this cluster
for k in 1 2 3; do
	target=$((target + 2 + RANDOM % 3))
	timeout 120 tail -n +1 -F "$T/run/jobmanager.log" 2>/dev/null |
		grep -q -m1 -E "job 1: checkpoint $target complete \(|job 1 \(ckjob.so\) finished$"
	if grep -qE "job 1 \(ckjob.so\) finished$" "$T/run/jobmanager.log"; then
		echo "# the job ended before kill $k (a slow machine): $kills kills"
		break
	fi
	victim=$((RANDOM % 2))
	pid=$(tm_pid $victim)
	kill -9 "$pid" && caused=$((caused + 1))
	kills=$k
	echo "# kill $k: taskmanager $victim (pid $pid) after checkpoint $target"
	wait_for "$T/run/jobmanager.log" "restart $k from" || { fail "no restart $k"; break; }
done
check "TaskManagers were killed during the job ($kills)" test "$kills" -ge 1
rc=0; wait "$runpid" || rc=$?
check "the job finishes despite $kills kills -9 (rc $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(cat "$T/run.err")" "$(tail -20 "$T/run/jobmanager.log")"
"$WEIR" local "$TJOBS/ckjob.so" -q -p 2 -- 60000 $RATE "$T/ref3" 2>"$T/err" || fail "the 3 s reference run"
ck_output "$T/ref3" >"$T/want3"
ck_output "$T/o" >"$T/got"
t=$(tally "$T/want3" "$T/got")
check "$kills TaskManagers killed: exactly once ($t)" test "$t" = "lost=0 dup=0 unexpected=0"
restored=$(sed -n "s/.*restart $kills from .*chk-\([0-9]*\).*/\1/p" "$T/run/jobmanager.log")
check "the last restart restored a checkpoint (${restored:-none})" test -n "$restored"
"$WEIR" list >"$T/list" 2>&1
check "weir list shows the restarts and the checkpoint restored" grep -q "restarts $kills, checkpoints [0-9]*, restored checkpoint ${restored:-x}" "$T/list"
n=$(grep -c 'killed by signal 9 (SIGKILL); starting it again' "$T/run/supervisor.log")
check "the supervisor started each killed TaskManager again ($n)" test "$n" -eq "$kills"
check "a checkpoint in flight at a kill is aborted and removed: no temporary file, no chk folder without metadata" \
	bash -c "[ -z \"\$(find '$T/ck' -name '*.tmp' -o -name '_metadata.pending')\" ] &&
		for d in '$T'/ck/*-job1/chk-*; do [ -e \"\$d/_metadata\" ] || exit 1; done"
cid=$(cat "$T/run/cluster.id")
n=$( (ls "/dev/shm/weir-$cid" | grep -c "^j1a") 2>/dev/null || true)
check "the killed TaskManagers' shared memory of every attempt is gone while the cluster runs ($n)" test "$n" -eq 0

# at-least-once: nothing lost; duplicates are counted, not refused
rm -rf "$T/ck" "$T/o"
COUNT=60000 submit "$T/o" --at-least-once
wait_for "$T/run/jobmanager.log" "job 2: checkpoint 4 complete (" || fail "job 2 never checkpointed"
pid=$(tm_pid $((RANDOM % 2)))
kill -9 "$pid" && caused=$((caused + 1))
rc=0; wait "$runpid" || rc=$?
# the records (window counts may count a replayed record twice)
cat "$T"/o/records/part-* | LC_ALL=C sort >"$T/got"
grep '^r ' "$T/want3" >"$T/want-r"
t=$(tally "$T/want-r" "$T/got")
check "at-least-once, a TaskManager killed: finishes (rc $rc) and loses no record ($t)" \
	bash -c "[ $rc -eq 0 ] && [[ '$t' == lost=0\ *unexpected=0 ]]"
diag "at-least-once duplicates: ${t#* }"

# unaligned, under backpressure (the records branch takes 100 us a record),
# a TaskManager killed after checkpoint 3: in-flight data is restored
# across processes (channels between TaskManagers), exactly once
rm -rf "$T/ck" "$T/o"
COUNT=20000 submit "$T/o" --unaligned 0 0 100
wait_for "$T/run/jobmanager.log" "job 3: checkpoint 3 complete (" || fail "job 3 never checkpointed"
pid=$(tm_pid $((RANDOM % 2)))
kill -9 "$pid" && caused=$((caused + 1))
rc=0; wait "$runpid" || rc=$?
check "unaligned, a TaskManager killed: the job finishes (rc $rc)" test "$rc" -eq 0
exact "$T/o" "unaligned, a TaskManager killed: exactly once"
check 'the restore replayed in-flight data' grep -q 'bytes of in-flight data to replay' "$T"/run/*.log
stop_cluster $caused

# a TaskManager crashing at each step of the protocol; a restore failing once.
# Only TaskManager 0 stays armed: TaskManager 1 is killed first, and the
# supervisor starts it again without WEIR_FAILPOINT. (With both armed, the
# one that survived the first crash would crash in a later attempt, or not,
# as the job's timing went: restarts 1 or 2.) So the supervisor restarts
# exactly twice: the kill, then the failpoint's crash.
# A job that ends before its N-th pass (a machine so loaded that fewer
# checkpoints fit in its second) is not a failure: it runs again with three
# times the records (want3), and is skipped, said so, if it ends first again.
for fp in checkpoint.barrier:9:kill-self checkpoint.snapshot:21:kill-self checkpoint.write:21:kill-self \
	sink.precommit:13:kill-self sink.commit:7:kill-self sink.committed:5:kill-self; do
	for count in $COUNT 60000; do
		start_cluster WEIR_FAILPOINT=$fp
		kill -9 "$(tm_pid 1)"
		restarted 1 || fail "failpoint $fp: taskmanager 1 started again, unarmed"
		rm -rf "$T/ck" "$T/o"
		COUNT=$count submit "$T/o"
		rc=0; wait "$runpid" || rc=$?
		grep -q 'taskmanager 0 (pid [0-9]*) killed by signal 9' "$T/run/supervisor.log" && break
		echo "# failpoint $fp: the job ($count records, rc $rc) ended before it"
		stop_cluster 1
		count=none
	done
	if [ "$count" = none ]; then
		skip "failpoint $fp: the job ended before it twice (a loaded machine)" 2
		continue
	fi
	r=$(grep -c 'restart [0-9]* of' "$T/run/jobmanager.log")
	check "failpoint $fp: taskmanager 0 crashed at it; the job restarts ($r) and finishes (rc $rc)" \
		test "$rc" -eq 0 -a "$r" -ge 1
	[ "$rc" -eq 0 ] || diag "$(cat "$T/run.err")"
	ck_output "$T/o" >"$T/got"
	t=$(tally "$([ "$count" = 60000 ] && echo "$T/want3" || echo "$T/want")" "$T/got")
	check "failpoint $fp: exactly once ($count records): $t" test "$t" = "lost=0 dup=0 unexpected=0"
	stop_cluster 2
done

# recovery itself failing once: TaskManager 0 is killed after a checkpoint;
# TaskManager 1 (still armed) fails its first restore, and the next attempt
# restores. A job that ended before the kill landed (a loaded machine: its
# third checkpoint came late) restarted nothing: it runs again with three
# times the records, and is skipped, said so, if it ends first again.
for count in $COUNT 60000; do
	start_cluster WEIR_FAILPOINT=recovery.restore:1:error
	rm -rf "$T/ck" "$T/o"
	COUNT=$count submit "$T/o"
	wait_for "$T/run/jobmanager.log" "checkpoint 3 complete ("
	kill -9 "$(tm_pid 0)"
	rc=0; wait "$runpid" || rc=$?
	grep -q 'restart 1 of' "$T/run/jobmanager.log" && break
	echo "# a restore that fails once: the job ($count records, rc $rc) ended before the kill"
	stop_cluster 1
	count=none
done
if [ "$count" = none ]; then
	skip "a restore that fails once: the job ended before the kill twice (a loaded machine)" 3
else
	check "a restore that fails once: the job finishes (rc $rc)" test "$rc" -eq 0
	if grep -q 'restore: failpoint recovery.restore; restart 2 of' "$T/run/jobmanager.log"; then
		pass "after restarting again"
	else
		fail "after restarting again"
		diag "$(grep -E 'restart|lost|failed' "$T/run/jobmanager.log" | tail -8)"
	fi
	ck_output "$T/o" >"$T/got"
	t=$(tally "$([ "$count" = 60000 ] && echo "$T/want3" || echo "$T/want")" "$T/got")
	check "a restore that fails once: exactly once ($count records): $t" test "$t" = "lost=0 dup=0 unexpected=0"
	stop_cluster 1
fi

# the JobManager crashing mid-protocol: the cluster is gone; a new one
# resumes from the checkpoint folder
for fp in checkpoint.complete:4:kill-self checkpoint.metadata:4:kill-self; do
	start_cluster WEIR_FAILPOINT=$fp
	rm -rf "$T/ck" "$T/o"
	submit "$T/o"
	rc=0; wait "$runpid" || rc=$?
	check "failpoint $fp: the JobManager dies, weir run fails (rc $rc)" test "$rc" -ne 0
	# the supervisor ends with the JobManager: no restart after this line
	wait_for "$T/run/supervisor.log" 'the jobmanager is gone: done' || fail "failpoint $fp: the supervisor ends"
	stop_cluster 0
	dir=$(find "$T/ck" -mindepth 1 -maxdepth 1 -name '*-job1')
	start_cluster
	rc=0; "$WEIR" run "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 50 --checkpoint-dir "$T/ck" \
		--from-checkpoint "$dir" -- $COUNT $RATE "$T/o" >"$T/run.out" 2>"$T/run.err" || rc=$?
	check "failpoint $fp: a new cluster resumes with --from-checkpoint (rc $rc)" test "$rc" -eq 0
	[ "$rc" -eq 0 ] || diag "$(cat "$T/run.err")"
	exact "$T/o" "failpoint $fp: exactly once across the two clusters"
	stop_cluster 0
done

done_testing
