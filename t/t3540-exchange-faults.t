#!/usr/bin/env bash
# t3540-exchange-faults: the data connection between two TaskManagers goes
# through the fault proxy (t/tools/faultproxy.c) while the checkpointed
# keyed job (t/jobs/ckjob.c, parallelism 2, one subtask on each) runs with
# its channels over TCP. TaskManager 0 is the local cluster's; the other
# joins as from another host and advertises the proxy's address, so
# TaskManager 0 (the lower id, which connects) reaches it through the proxy.
# For each fault the committed output equals a fault-free local run's
# (nothing lost, doubled or unexpected):
#  - none: no restart;
#  - the first connection dropped (RST) after N bytes: the job recovers
#    from its checkpoint over a new connection;
#  - a byte flipped in the first connection: the checksum catches it (the
#    TaskManager names it), the job recovers, no corrupted record is
#    published;
#  - the first connection stalled (no bytes, no FIN): the keepalive closes
#    it, the job recovers;
#  - every byte in a write of its own: frames split at every byte arrive
#    whole; no restart.
# Every wait is on a log line or a process. The proxy logs each fault it
# made, so a fault that did not happen fails the test.
. "$(dirname "$0")/lib.sh"

FP=$WEIR_BUILD/t/faultproxy
[ -x "$FP" ] || { echo "Bail out! no faultproxy at $FP"; exit 255; }
export WEIR_RUN_DIR="$T/run"
cleanup() {
	[ -n "${proxy:-}" ] && kill "$proxy" 2>/dev/null
	"$WEIR" cluster stop >/dev/null 2>&1
	[ -n "${tm:-}" ] && kill -9 "$tm" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'; }
dport=$(free_port) pport=$(free_port)

COUNT=20000 RATE=20000
"$WEIR" local "$TJOBS/ckjob.so" -q -p 2 -- $COUNT $RATE "$T/ref" 2>"$T/err" || { fail "reference run"; diag "$(cat "$T/err")"; }
ck_output "$T/ref" >"$T/want"

run_weir cluster start --taskmanagers 1 --slots 1 --slot-wait 60000 --exchange tcp
check "cluster start --exchange tcp (rc $rc)" grep -q 'started in' "$T/out"
"$WEIR" taskmanager --jobmanager "$(cat "$T/run/jobmanager.addr")" --secret-file "$T/run/secret" \
	--advertise "127.0.0.1:$pport" --data-port "$dport" --slots 1 --run-dir "$T/rd1" >"$T/tm.log" 2>&1 &
tm=$!
disown
run_weir cluster status --wait 2
check 'the second TaskManager registered, advertising the proxy' grep -q "data 127.0.0.1:$pport" "$T/out"

job=0
scenario() { # scenario DESC PROXY-RULES...
	local desc=$1
	shift
	: >"$T/proxy.log"
	"$FP" --listen "127.0.0.1:$pport" --to "127.0.0.1:$dport" --log "$T/proxy.log" --seed 7 "$@" \
		>"$T/proxy.out" 2>&1 &
	proxy=$!
	wait_for "$T/proxy.log" "listening" || true
	rm -rf "$T/ck" "$T/o"
	job=$((job + 1))
	run_weir run "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 50 --checkpoint-dir "$T/ck" --restart-attempts 10 \
		-- $COUNT $RATE "$T/o"
	check "$desc: the job finishes (rc $rc)" test "$rc" -eq 0
	[ "$rc" -eq 0 ] || diag "$(cat "$T/err")" "$(tail -5 "$T/run/jobmanager.log")" "$(tail -5 "$T/proxy.log")"
	exact "$T/o" "$desc: exactly once"
	kill "$proxy" 2>/dev/null
	wait "$proxy" 2>/dev/null
	proxy=
}
restarts() { grep -c "job $job (ckjob.so): restart [0-9]* from" "$T/run/jobmanager.log"; }

scenario 'no fault'
check 'no fault: no restart' test "$(restarts)" -eq 0

scenario 'the connection dropped after 100000 bytes' --conn 1 --dir up --drop-after 100000
check 'the proxy dropped it' grep -q 'drop' "$T/proxy.log"
check 'and the job recovered from a checkpoint' test "$(restarts)" -ge 1

scenario 'a byte flipped' --conn 1 --dir up --flip-at 150000
check 'the proxy flipped a byte' grep -q 'flip' "$T/proxy.log"
check 'the job recovered from a checkpoint' test "$(restarts)" -ge 1
# (a flipped byte may land anywhere: a checksum, a header, a frame's length
# that then waits for bytes that never come; each ends in a failure named)
check 'the TaskManager that received it failed the connection, saying why' \
	grep -qE 'exchange: the connection to taskmanager [0-9]+ failed: .' "$T/tm.log"

scenario 'the connection stalled' --conn 1 --dir up --stall-after 100000
check 'the proxy stalled it' grep -q 'stall' "$T/proxy.log"
check 'the keepalive noticed: the job recovered' test "$(restarts)" -ge 1
check 'a TaskManager named the silence' grep -q 'silent for' "$T/tm.log" "$T/run/taskmanager-0.log"

COUNT=4000 RATE=4000
"$WEIR" local "$TJOBS/ckjob.so" -q -p 2 -- $COUNT $RATE "$T/ref2" 2>"$T/err" || fail "reference run"
ck_output "$T/ref2" >"$T/want"
scenario 'every byte in a write of its own' --split
check 'split: no restart' test "$(restarts)" -eq 0

run_weir cluster stop
check 'the TaskManager joined by hand stops with the cluster' wait_gone "$tm"
tm=
check 'no sanitizer report from it' bash -c "! grep -qE 'Sanitizer|runtime error|killed by signal' '$T/tm.log'"
check_logs "$T/run" 0

done_testing
