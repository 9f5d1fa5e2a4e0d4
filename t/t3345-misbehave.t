#!/usr/bin/env bash
# t3345-misbehave: a job's code that misbehaves (t/jobs/misbehave.c) is
# named, in weir local and on a cluster:
#  - a map that loops forever cannot stop when cancelled: after the cancel
#    timeout weir local exits 130 naming the operator; on the cluster the
#    TaskManager ends itself, the supervisor starts it again, the job ends
#    canceled and its slot serves the next job;
#  - exit(0) in a map: weir local exits 3 (never 0), naming it;
#  - SIGSEGV and SIGABRT in a map: the signal, operator and subtask are
#    named by weir local (which still dies of the signal) and, on the
#    cluster, in the job's failure and weir list;
#  - a graph that differs between TaskManagers is refused with that reason.
# The jobs announce through a FIFO that they run; no sleeps.
. "$(dirname "$0")/lib.sh"

job=$TJOBS/misbehave.so
# read_fifo: the line the job writes into $T/fifo once it runs (the limit
# only turns a job that died before writing into a failure, not a hang)
read_fifo() { line=; exec 3<>"$T/fifo"; read -r -t 120 line <&3; exec 3<&-; }

# ---- weir local ----
mkfifo "$T/fifo"
"$WEIR" local "$job" -q --cancel-timeout 300 -- spin "$T/fifo" >"$T/out" 2>"$T/err" &
pid=$!
read_fifo
check "local: the map spins ($line)" test "$line" = spin
kill -INT "$pid"
# (wait_gone's 120 s limit only turns a hang into a failure)
wait_gone "$pid" || { fail 'local: the cancelled job ends by itself'; kill -9 "$pid"; }
rc=0
wait "$pid" || rc=$?
check "local: a cancelled job stuck in user code exits 130 after the cancel timeout (got $rc)" test "$rc" -eq 130
check 'local: naming the stuck operator and subtask' \
	grep -q "operator 'misbehave' (subtask 1/1) did not stop within 300 ms of the cancel" "$T/err"

# the same when the job stops because it failed (a restart, a failover)
# (timeout's 120 s only turns a hang into a failure)
rc=0
timeout -s KILL 120 "$WEIR" local "$job" -q -p 2 --workers 2 --cancel-timeout 300 -- failspin "$T/spinning1" \
	>"$T/out" 2>"$T/err" || rc=$?
check "local: a failed job with a subtask stuck in user code exits 1 after the timeout (got $rc)" test "$rc" -eq 1
check 'local: naming the stuck subtask and the failure' grep -q \
	"operator 'misbehave' (subtask 2/2) did not stop within 300 ms of the job's stop (operator 'misbehave' (subtask 1/2): fails while subtask 2 spins)" \
	"$T/err"

expect 3 "the job's code called exit\(0\) in operator 'misbehave' \(subtask 2/2\) before the job ended" \
	'local: exit(0) in a map exits 3, naming the operator' -- local "$job" -q -p 2 -- exit
expect 139 "killed by signal 11 \(SIGSEGV\) in operator 'misbehave' \(subtask 2/2\)" \
	'local: a segfault in a map dies of SIGSEGV, naming the operator' -- local "$job" -q -p 2 -- segv
expect 134 "killed by signal 6 \(SIGABRT\) in operator 'misbehave' \(subtask 2/2\)" \
	'local: abort() in a map dies of SIGABRT, naming the operator' -- local "$job" -q -p 2 -- abort

# ---- a cluster of 2 TaskManagers x 1 slot ----
export WEIR_RUN_DIR="$T/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
run_weir cluster start --taskmanagers 2 --slots 1 --slot-wait 60000 --cancel-timeout 300
check "cluster start (rc $rc)" grep -q 'started in' "$T/out"
restarts=0

# tm_back: the supervisor started a TaskManager again, and it registered
tm_back() {
	restarts=$((restarts + 1))
	check "the supervisor started it again (restart $restarts)" \
		wait_for "$WEIR_RUN_DIR/supervisor.log" "restart $restarts)"
	run_weir cluster status --wait 2
	check 'both taskmanagers are registered again' grep -q '2 taskmanagers, 2 slots' "$T/out"
}

# cancel a job stuck in user code
run_weir run "$job" -p 1 --detached -- spin "$T/fifo"
jobid=$(cat "$T/out")
read_fifo
check "cluster: the detached job $jobid spins ($line)" test "$line" = spin
run_weir cancel "$jobid"
check "cancel is accepted (rc $rc)" grep -q 'cancel requested' "$T/out"
check 'the job ends canceled' wait_for "$WEIR_RUN_DIR/jobmanager.log" "job $jobid (misbehave.so) canceled"
run_weir list
check 'weir list shows it canceled' grep -q "^$jobid .*canceled" "$T/out"
check "the taskmanager named the stuck operator" grep -q \
	"ERROR taskmanager-0: operator 'misbehave' (subtask 1/1) did not stop within 300 ms of the abort" \
	"$WEIR_RUN_DIR/taskmanager-0.log"
check "and exited with status 4" wait_for "$WEIR_RUN_DIR/supervisor.log" "exited with status 4; starting it again"
tm_back
rm -rf "$T/wc"
printf 'a b\nb c\n' >"$T/words.txt"
run_weir run "$JOBS/wordcount.so" -p 2 -- "$T/words.txt" "$T/wc"
check "a job on both slots runs after it (rc $rc)" test "$rc" -eq 0

# a failover: subtask 1/2 (taskmanager 0) fails while 2/2 (taskmanager 1)
# spins; the job fails with the first failure, taskmanager 1 ends itself
run_weir run "$job" -p 2 --spread -- failspin "$T/spinning2"
check "failover with a stuck subtask: the job fails (rc $rc)" test "$rc" -eq 1
check 'with the failure that stopped it' grep -q "taskmanager 0: operator 'misbehave' (subtask 1/2): fails while subtask 2 spins" "$T/err"
check "taskmanager 1 named the stuck operator" wait_for "$WEIR_RUN_DIR/taskmanager-1.log" \
	"ERROR taskmanager-1: operator 'misbehave' (subtask 2/2) did not stop within 300 ms of the abort"
tm_back

# a segfault and an exit(0) in a map
for mode in segv exit; do
	case $mode in
	segv) want="killed by signal 11 (SIGSEGV) in operator 'misbehave' (subtask 1/1)" ;;
	exit) want="the job's code called exit(0) in operator 'misbehave' (subtask 1/1)" ;;
	esac
	run_weir run "$job" -p 1 -- "$mode"
	check "cluster, $mode: the job fails (rc $rc)" test "$rc" -eq 1
	check "cluster, $mode: naming the taskmanager, the cause, the operator and the subtask" \
		grep -qF "taskmanager 0 was lost: $want" "$T/err"
	if ! grep -qF "taskmanager 0 was lost: $want" "$T/err"; then diag "$(cat "$T/err")"; fi
	run_weir list
	check "cluster, $mode: weir list says it too" grep -qF "$want" "$T/out"
	tm_back
done
check 'the supervisor logged the signal by name' \
	grep -q "taskmanager 0 (pid [0-9]*) killed by signal 11 (SIGSEGV); starting it again" "$WEIR_RUN_DIR/supervisor.log"
check 'and quoted the taskmanager' \
	grep -q "taskmanager 0 (pid [0-9]*): killed by signal 11 (SIGSEGV) in operator 'misbehave' (subtask 1/1)" \
	"$WEIR_RUN_DIR/supervisor.log"

# a graph that differs between the TaskManagers (one or the other, with
# channels between them): that is the reason, every time, never the other
# TaskManager's missing channel (before the fix: about half the runs)
for i in 1 2 3 4 5 6; do
	run_weir run "$job" -p 2 --spread -- differ $((i % 2))
	check "differing graph, run $i: refused (rc $rc)" test "$rc" -eq 1
	if grep -q "taskmanager $((i % 2)): deploy: .*its graph differs between processes" "$T/err"; then
		pass "differing graph, run $i: the reason is the graph of taskmanager $((i % 2))"
	else
		fail "differing graph, run $i: the reason is the graph of taskmanager $((i % 2))"
		diag "$(cat "$T/err")"
	fi
done

run_weir cluster stop
check "cluster stop (rc $rc)" grep -q 'stopped' "$T/out"
check_logs "$WEIR_RUN_DIR" 4 # the two stuck, the segfaulting and the exiting taskmanagers
done_testing
