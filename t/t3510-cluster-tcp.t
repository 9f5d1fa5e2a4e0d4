#!/usr/bin/env bash
# t3510-cluster-tcp: the local cluster with every channel between two
# TaskManagers over TCP (weir cluster start --exchange tcp: the data plane
# between hosts, net/exchange.h, on one machine). Jobs give the same output
# as local mode: wordcount, windowed wordcount (keyed state, timers,
# watermarks) and session windows, spread over the TaskManagers at
# parallelism 4 and packed at 3, so one job has channels inside a process
# and over TCP; the exchanges proved the secret and carried data. Then the
# checkpointed keyed job (t/jobs/ckjob.c) with a TaskManager killed with
# kill -9 after a checkpoint, aligned and then unaligned under
# backpressure (in-flight data captured on the receiving side): exactly
# once. The logs show no sanitizer report and only the restarts caused.
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT

seed=${WEIR_SEED:-$(( $(date +%s) ^ $$ ))}
echo "# seed $seed (replay with WEIR_SEED=$seed)"
RANDOM=$seed
perl -e 'srand($ARGV[0]); my @v = map { join "", map { ("a".."z")[rand 26] } 1..(1 + int rand 6) } 1..300;
	for (1..6000) { my $ts = 1000 * $_ + int rand 3000; print "$ts ", join(" ", map { $v[rand @v] } 1..(1 + int rand 8)), "\n" }' \
	"$seed" >"$T/in.txt"
cut -d' ' -f2- "$T/in.txt" >"$T/words.txt"
perl -e 'srand($ARGV[0]); my $t = 0; for (1..5000) { $t += int rand 900; printf "%d,u%d,e%d\n", $t, rand 40, rand 5 }' \
	"$seed" >"$T/sess.txt"

run_weir cluster start --taskmanagers 2 --slots 2 --slot-wait 60000 --exchange tcp
check "cluster start --exchange tcp (rc $rc)" grep -q 'started in' "$T/out"

SAME_P=4 SAME_MODES=("-p 4 --spread" "-p 3") SAME_WHERE=", channels between TaskManagers over TCP"
same_as_cluster wordcount "$JOBS/wordcount.so" "$T/words.txt"
same_as_cluster 'windowed wordcount' "$JOBS/windowed_wordcount.so" "$T/in.txt"
same_as_cluster 'session windows' "$JOBS/sessions.so" "$T/sess.txt" 3000
same_as_cluster 'interval join' "$TJOBS/joinjob.so" 20000 interval
same_as_cluster 'window join' "$TJOBS/joinjob.so" 20000 window
check 'the TaskManagers made a data connection after proving the secret' \
	grep -q 'exchange: data connection with taskmanager 1 (.*) ready' "$WEIR_RUN_DIR/taskmanager-0.log"
check 'and no channel was lost' bash -c "! grep -q 'lost\\|refused' '$WEIR_RUN_DIR'/taskmanager-*.log"
run_weir cluster stop
wait_for "$WEIR_RUN_DIR/taskmanager-0.log" 'exchange: ' || true
check 'the exchanges carried frames, their CQs never overflowed' bash -c \
	"grep -h 'exchange: [0-9]* frames out' '$WEIR_RUN_DIR'/taskmanager-*.log | grep -q 'CQ overflow 0' &&
	 ! grep -h 'exchange: [0-9]* frames out' '$WEIR_RUN_DIR'/taskmanager-*.log | grep -qv 'CQ overflow 0$'"
check_logs "$T/run"

# exactly once across TCP while a TaskManager dies: 2 TaskManagers of 1
# slot, so every channel between the two subtasks crosses them
COUNT=20000 RATE=20000
tm_pid() { "$WEIR" cluster status >"$T/st" 2>&1; sed -n "s/.*taskmanager $1 *pid \([0-9]*\).*/\1/p" "$T/st"; }
"$WEIR" local "$TJOBS/ckjob.so" -q -p 2 -- $COUNT $RATE "$T/ref" 2>"$T/err" || { fail "reference run"; diag "$(cat "$T/err")"; }
ck_output "$T/ref" >"$T/want"
rm -rf "$T/run"
run_weir cluster start --taskmanagers 2 --slots 1 --slot-wait 60000 --exchange tcp
caused=0 job=0
for flags in "" "--unaligned"; do
	rm -rf "$T/ck" "$T/o"
	job=$((job + 1))
	extra=
	[ -n "$flags" ] && extra="0 0 100" # under backpressure: the records branch takes 100 us a record
	"$WEIR" run "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 50 --checkpoint-dir "$T/ck" --restart-attempts 10 \
		$flags -- $COUNT $RATE "$T/o" $extra >"$T/run.out" 2>"$T/run.err" &
	runpid=$!
	target=$((2 + RANDOM % 3))
	wait_for "$T/run/jobmanager.log" "job $job: checkpoint $target complete (" || fail "job $job never reached checkpoint $target"
	victim=$((RANDOM % 2))
	kill -9 "$(tm_pid $victim)" && caused=$((caused + 1))
	echo "# ${flags:-aligned}: taskmanager $victim killed after checkpoint $target"
	rc=0; wait "$runpid" || rc=$?
	check "${flags:-aligned}, over TCP, a TaskManager killed: the job finishes (rc $rc)" test "$rc" -eq 0
	[ "$rc" -eq 0 ] || diag "$(cat "$T/run.err")" "$(tail -20 "$T/run/jobmanager.log")"
	exact "$T/o" "${flags:-aligned}, over TCP, a TaskManager killed: exactly once"
	wait_for "$T/run/supervisor.log" ", restart $caused)" || true
done
check 'the unaligned restore replayed in-flight data' grep -q 'bytes of in-flight data to replay' "$T"/run/*.log
run_weir cluster stop
check_logs "$T/run" $caused

done_testing
