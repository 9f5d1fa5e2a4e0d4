#!/usr/bin/env bash
# t3300-cluster: the local cluster's life cycle and faults, with real
# processes. Start, status, a second start refused, garbage and oversized
# frames (the JobManager stays up), a port in use, a TaskManager killed
# with kill -9 (noticed through its closed connection: status waits for the
# count, no sleeps; the supervisor, held with SIGSTOP meanwhile, then starts
# it again), a JobManager killed with kill -9 (its TaskManagers stop by
# themselves), and stop: no process, no /dev/shm file, no address file, no
# sanitizer report in the logs.
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
# on any exit, also a failed or aborted one: stop what this test started
# (the daemons run in their own sessions), then remove the folder
cleanup() {
	kill -CONT ${sup:-} 2>/dev/null
	"$WEIR" cluster stop >/dev/null 2>&1
	kill -9 ${jm:-} ${tm0:-} ${tm1:-} 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
# started: weir exits 0 and its banner (stdout) says so
started() { run_weir cluster start "$@"; check "cluster start $* (rc $rc)" grep -q 'started in' "$T/out"; }
# a process is gone: no such pid, or a zombie nobody reaped yet
gone() { [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status"; }
shm_count() { shm_left "weir-$(cat "$WEIR_RUN_DIR/cluster.id" 2>/dev/null || echo none)"; }

started --taskmanagers 2 --slots 2 --slot-wait 300
check 'the banner names the jobmanager and both taskmanagers' grep -q 'taskmanager 1 ' "$T/out"
check 'run folder is 0700' test "$(stat -c %a "$WEIR_RUN_DIR")" = 700
check 'secret is 0600' test "$(stat -c %a "$WEIR_RUN_DIR/secret")" = 600
jm=$(cat "$WEIR_RUN_DIR/jobmanager.pid")
addr=$(cat "$WEIR_RUN_DIR/jobmanager.addr")
port=${addr##*:}
check "the jobmanager listens on loopback ($addr)" test "${addr%%:*}" = 127.0.0.1
id=$(cat "$WEIR_RUN_DIR/cluster.id")
check "two pools and the jobmanager's file in the cluster's folder in /dev/shm ($(shm_count) entries: the folder and its files)" \
	test "$(shm_count)" -eq 4
check 'the folder is 0700, the pools 0600' test "$(stat -c %a "/dev/shm/weir-$id" "/dev/shm/weir-$id/tm0-pool" \
	"/dev/shm/weir-$id/tm1-pool" | tr '\n' ' ')" = '700 600 600 ' 
run_weir cluster status
check 'status lists 2 taskmanagers and 4 slots' grep -q '2 taskmanagers, 4 slots' "$T/out"
expect 1 'already running' 'a second start in the same folder is refused' -- cluster start
# each TaskManager is started for a NUMA node: its process may use only that
# node's CPUs (so its pinned slots stay there) and its pool is bound there.
# (On a one-node machine this checks that binding keeps every CPU of the
# node, no fewer; that other nodes' CPUs are left out needs two nodes.)
run_weir cluster status
node0=$(sed -n 's/.*taskmanager 0 .*NUMA node \(-\?[0-9]*\).*/\1/p' "$T/out")
check "status names taskmanager 0's NUMA node ($node0)" test -n "$node0"
tm0pid=$(sed -n 's/.*taskmanager 0 *pid \([0-9]*\).*/\1/p' "$T/out")
want=$(cat "/sys/devices/system/node/node${node0:-0}/cpulist" 2>/dev/null || echo "0-$(( $(nproc) - 1 ))")
got=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "/proc/$tm0pid/status" 2>/dev/null)
check "taskmanager 0 runs on the CPUs of node $node0 ($got; the node has $want)" test -n "$got" -a "$got" = "$want"
check 'its log names the node and the cores of its slots' grep -Eq "on NUMA node ${node0:-0}; 2 slots on cores [0-9]+,[0-9]+" "$WEIR_RUN_DIR/taskmanager-0.log"
expect 1 'NUMA node 4095 has no CPU this process may use \(nodes with usable CPUs:' \
	'a taskmanager for a node without usable CPUs is refused, naming the nodes' -- taskmanager --id 9 --numa-node 4095
expect 1 "shared memory '/dev/shm/weir-c[0-9a-f]+/tm0-pool' is in use by a live process" \
	'a second taskmanager 0 is refused: its pool name is taken by the live one' -- taskmanager --id 0 --slots 1
expect 2 "--port: '99999' is not a whole number from 0 to 65535" 'a jobmanager with a bad --port is refused' -- \
	jobmanager --port 99999
expect 2 "--slot-wait: '5s' is not a whole number" 'a jobmanager with a bad --slot-wait is refused' -- jobmanager --slot-wait 5s
expect 2 "--numa-node: 'one' is not a whole number" 'a taskmanager with a bad --numa-node is refused' -- \
	taskmanager --id 9 --numa-node one

# hostile bytes at the control port: each connection closes, the JM stays
for payload in 'garbage garbage garbage' $'\xff\xff\xff\x7f\x01\x00\x01\x00' $'\x10\x00\x00\x00\x01\x00\x01\x00abc'; do
	exec 3<>"/dev/tcp/127.0.0.1/$port"
	printf '%s' "$payload" >&3
	exec 3<&- 3>&-
done
run_weir cluster status
check 'after garbage, truncated and oversized frames the jobmanager still answers' test "$rc" -eq 0
check 'and still has its 2 taskmanagers' grep -q '2 taskmanagers' "$T/out"

# another jobmanager on the same port: a clear message naming the address
run_weir jobmanager --run-dir "$WEIR_RUN_DIR" --port "$port"
check "a jobmanager on a port in use exits 1 (got $rc)" test "$rc" -eq 1
check 'naming the address and the reason' grep -q "127.0.0.1:$port: bind: Address already in use" "$T/err"
check 'and no sanitizer report' bash -c "! grep -Eq 'Sanitizer|runtime error:' '$T/err'"

# a job needing more slots than exist: refused after the bounded wait (--slot-wait 300), naming the numbers
: >"$T/none.txt"
run_weir run "$JOBS/wordcount.so" -p 5 -- "$T/none.txt" "$T/big"
check "a job needing 5 slots of 4 is refused (rc $rc)" grep -Eq "refused: the job needs 5 slots; the cluster has 4 free of 4 \(2 taskmanagers\), after waiting [0-9]+ ms" "$T/err"
check 'the jobmanager logged that it waited' grep -q "job 'wordcount.so' waits up to 300 ms for slots" "$WEIR_RUN_DIR/jobmanager.log"

# kill -9 of a taskmanager: the JobManager notices its closed connection,
# and the supervisor starts it again. The supervisor is held (SIGSTOP)
# while the JobManager's view of the loss is checked: a process stopped
# while it waits in poll(2) runs no code until SIGCONT, so the restart
# cannot come first (without the hold it could, at once, and status would
# count 2 again).
run_weir cluster status
tm1=$(sed -n 's/.*taskmanager 1 *pid \([0-9]*\).*/\1/p' "$T/out")
sup=$(cat "$WEIR_RUN_DIR/supervisor.pid")
kill -STOP "$sup"
kill -9 "$tm1"
run_weir cluster status --wait 1
check "status --wait 1 sees one taskmanager after kill -9 (rc $rc)" grep -q '1 taskmanagers' "$T/out"
check 'the jobmanager logged the loss' grep -q "taskmanager 1 (pid $tm1) lost" "$WEIR_RUN_DIR/jobmanager.log"
kill -CONT "$sup"
check 'the supervisor saw it killed' wait_for "$WEIR_RUN_DIR/supervisor.log" "taskmanager 1 (pid $tm1) killed by signal 9 (SIGKILL); starting it again"
check 'and started it again' wait_for "$WEIR_RUN_DIR/supervisor.log" 'taskmanager 1 started again (pid '
tm1b=$(sed -n 's/.*taskmanager 1 started again (pid \([0-9]*\), restart 1)$/\1/p' "$WEIR_RUN_DIR/supervisor.log")
run_weir cluster status --wait 2
check "status --wait 2 sees it registered again (rc $rc)" grep -q '2 taskmanagers, 4 slots' "$T/out"
check "as the new process the supervisor started ($tm1 -> ${tm1b:-none})" \
	grep -Eq "taskmanager 1 +pid ${tm1b:-none} " "$T/out"

check "status names the supervisor ($sup)" grep -Eq "supervisor +pid $sup\$" "$T/out"
kill -9 "$sup"
wait_gone "$sup"
run_weir cluster status
check "status says when the supervisor is gone (rc $rc)" grep -q 'supervisor: gone: a taskmanager that dies is not started again' "$T/out"

run_weir cluster stop
check "cluster stop (rc $rc)" grep -q 'stopped: the jobmanager and 2 taskmanagers' "$T/out"
check 'the jobmanager is gone' gone "$jm"
check 'no weir process of this cluster is left' bash -c "! pgrep -f 'weir (jobmanager|taskmanager) --run-dir $WEIR_RUN_DIR' >/dev/null"
check "no /dev/shm file of the cluster is left ($(shm_count))" test "$(shm_count)" -eq 0
check 'no address file is left' test ! -e "$WEIR_RUN_DIR/jobmanager.addr"
expect 1 'no cluster running' 'status with no cluster names the folder' -- cluster status
check_logs "$WEIR_RUN_DIR" 1

# kill -9 of the JobManager: its TaskManagers stop by themselves, and the
# next stop (or start) cleans what is left
started --taskmanagers 1 --slots 1
jm=$(cat "$WEIR_RUN_DIR/jobmanager.pid")
run_weir cluster status
tm0=$(sed -n 's/.*taskmanager 0 *pid \([0-9]*\).*/\1/p' "$T/out")
kill -9 "$jm"
wait_gone "$tm0"
check 'its taskmanager stops when it loses the jobmanager' gone "$tm0"
check 'and says why in its log' grep -q 'lost the jobmanager' "$WEIR_RUN_DIR/taskmanager-0.log"
check 'the supervisor ends with the jobmanager' wait_for "$WEIR_RUN_DIR/supervisor.log" 'the jobmanager is gone: done'
run_weir cluster stop
check "stop after a crashed jobmanager says so (rc $rc)" grep -q 'no cluster running' "$T/out"
check "and leaves no /dev/shm file ($(shm_count))" test "$(shm_count)" -eq 0
check_logs "$WEIR_RUN_DIR" 0
done_testing
