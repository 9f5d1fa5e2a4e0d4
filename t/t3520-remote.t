#!/usr/bin/env bash
# t3520-remote: a cluster across hosts on the test bed (scripts/netbed:
# network namespaces on a bridge, each its own address; they share
# /dev/shm and the file system, and weir tells them apart by identity).
# Host 0 runs the JobManager and one TaskManager (weir cluster start,
# listening on host 0's address); hosts 1 and 2 each run a TaskManager
# started there (weir taskmanager --jobmanager --secret-file --advertise),
# which register with ids the JobManager assigns. Checked:
#  - cluster status shows the three, two on another host;
#  - wordcount, windowed wordcount, session windows, interval and window joins over all of them
#    give local mode's output (channels inside a host through shared
#    memory, between hosts over TCP);
#  - the checkpointed keyed job (t/jobs/ckjob.c) while a remote
#    TaskManager dies (kill -9): it restarts on the live slots, exactly once;
#  - the same while host 2's link is cut (no FIN: heartbeats notice) and
#    healed: exactly once, and the TaskManager there registers again and
#    serves its slots;
#  - cluster stop stops the remote TaskManagers too.
# Skipped, saying why, where namespaces cannot be made (not root, no iproute2).
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
NB=$here/../scripts/netbed
bed=wr$(($$ % 1000000))
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1 || ! "$NB" up "$bed" 3 2>"$T/err"; then
	"$NB" down "$bed" >/dev/null 2>&1 || true
	skip "cannot make network namespaces here ($(head -1 "$T/err" 2>/dev/null || echo 'not root or no ip'))" 1
	done_testing
	exit
fi
export WEIR_RUN_DIR="$T/run"
cleanup() {
	"$NB" exec "$bed" 0 "$WEIR" cluster stop >/dev/null 2>&1
	for p in ${tmpid[1]:-} ${tmpid[2]:-} ${tmpid[3]:-}; do kill -9 "$p" 2>/dev/null; done
	"$NB" down "$bed"
	[ -n "${WEIR_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT
a0=$("$NB" addr "$bed" 0)

seed=${WEIR_SEED:-$(( $(date +%s) ^ $$ ))}
echo "# seed $seed (replay with WEIR_SEED=$seed)"
RANDOM=$seed

printf 'jobmanager.bind: %s\n' "$a0" >"$T/cluster.yaml"
on0() { "$NB" exec "$bed" 0 "$@"; } # a command on host 0
run_weir0() { rc=0; on0 "$WEIR" "$@" >"$T/out" 2>"$T/err" || rc=$?; }
declare -a tmpid
start_remote() { # start_remote I: a TaskManager on host I, joining the cluster
	local i=$1
	"$NB" exec "$bed" "$i" "$WEIR" taskmanager --jobmanager "$(cat "$T/run/jobmanager.addr")" \
		--secret-file "$T/run/secret" --advertise "$("$NB" addr "$bed" "$i")" --slots 2 \
		--run-dir "$T/rd$i" >>"$T/tm$i.log" 2>&1 &
	tmpid[$i]=$!
	disown # the test kills it on purpose: no job-control notice
}
run_weir0 cluster start --config "$T/cluster.yaml" --taskmanagers 1 --slots 1 --slot-wait 60000
check "cluster start on host 0 (rc $rc)" grep -q 'started in' "$T/out"
start_remote 1
start_remote 2
run_weir0 cluster status --wait 3
check 'three taskmanagers registered, two from other hosts' \
	test "$(grep -c '(another host)' "$T/out")" -eq 2 -a "$(grep -c '^  taskmanager ' "$T/out")" -eq 3
check 'the remote ones were given ids 64 and 65' grep -q 'taskmanager 65 ' "$T/out"
id_on() { # id_on I: the id of the TaskManager on host I (from the last status)
	sed -n "s/^  taskmanager \([0-9]*\) .* data $("$NB" addr "$bed" "$1"):.*/\1/p" "$T/out"
}
id2=$(id_on 2)

# ---- jobs across hosts give local mode's output ----
perl -e 'srand($ARGV[0]); my @v = map { join "", map { ("a".."z")[rand 26] } 1..(1 + int rand 6) } 1..300;
	for (1..6000) { my $ts = 1000 * $_ + int rand 3000; print "$ts ", join(" ", map { $v[rand @v] } 1..(1 + int rand 8)), "\n" }' \
	"$seed" >"$T/in.txt"
cut -d' ' -f2- "$T/in.txt" >"$T/words.txt"
perl -e 'srand($ARGV[0]); my $t = 0; for (1..5000) { $t += int rand 900; printf "%d,u%d,e%d\n", $t, rand 40, rand 5 }' \
	"$seed" >"$T/sess.txt"
SAME_P=5 SAME_MODES=("-p 5 --spread" "-p 4") SAME_RUN=run_weir0 SAME_WHERE=" across 3 hosts"
same_as_cluster wordcount "$JOBS/wordcount.so" "$T/words.txt"
same_as_cluster 'windowed wordcount' "$JOBS/windowed_wordcount.so" "$T/in.txt"
same_as_cluster 'session windows' "$JOBS/sessions.so" "$T/sess.txt" 3000
same_as_cluster 'interval join' "$TJOBS/joinjob.so" 20000 interval
same_as_cluster 'window join' "$TJOBS/joinjob.so" 20000 window
check 'host 1 and host 2 exchanged data over TCP' grep -q 'exchange: data connection with taskmanager 6[45] (.*) ready' "$T/tm1.log" "$T/tm2.log"

# ---- exactly once while a remote TaskManager dies, and while a host is cut off ----
COUNT=40000 RATE=20000
"$WEIR" local "$TJOBS/ckjob.so" -q -p 3 -- $COUNT $RATE "$T/ref" 2>"$T/err" || { fail "reference run"; diag "$(cat "$T/err")"; }
ck_output "$T/ref" >"$T/want"
submit() { # the job's id in $job, from weir run's first line
	rm -rf "$T/ck" "$T/o"
	: >"$T/run.err"
	on0 "$WEIR" run "$TJOBS/ckjob.so" -p 3 --spread --checkpoint-interval 50 --checkpoint-dir "$T/ck" \
		--restart-attempts 10 -- $COUNT $RATE "$T/o" >"$T/run.out" 2>"$T/run.err" &
	runpid=$!
	wait_for "$T/run.err" submitted || fail 'the job was submitted'
	job=$(sed -n 's/^weir run: job \([0-9]*\) .*submitted$/\1/p' "$T/run.err")
}
submit
wait_for "$T/run/jobmanager.log" "job $job: checkpoint $((2 + RANDOM % 3)) complete (" || fail "job $job never checkpointed"
kill -9 "${tmpid[1]}"
echo "# taskmanager on host 1 (pid ${tmpid[1]}) killed"
rc=0; wait "$runpid" || rc=$?
check "a remote TaskManager killed: the job restarts on live slots and finishes (rc $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(cat "$T/run.err")" "$(tail -20 "$T/run/jobmanager.log")"
check 'it restarted from a checkpoint' grep -q "job $job (ckjob.so): restart 1 from" "$T/run/jobmanager.log"
exact "$T/o" "a remote TaskManager killed: exactly once"
start_remote 1 # it comes back (a new process, a new id)

submit
wait_for "$T/run/jobmanager.log" "job $job: checkpoint $((2 + RANDOM % 3)) complete (" || fail "job $job never checkpointed"
"$NB" cut "$bed" 2
echo "# host 2 cut off"
wait_for "$T/run/jobmanager.log" "taskmanager $id2 missed its heartbeats for 2000 ms" || fail 'the jobmanager noticed the silent host'
wait_for "$T/run/jobmanager.log" "job $job (ckjob.so): restart 1 from" || fail "job $job restarted"
"$NB" heal "$bed" 2
echo "# host 2 healed"
rc=0; wait "$runpid" || rc=$?
check "host 2 cut off and healed: the job finishes (rc $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(cat "$T/run.err")" "$(tail -20 "$T/run/jobmanager.log")"
exact "$T/o" "host 2 cut off and healed: exactly once"
wait_for "$T/tm2.log" "lost the jobmanager" || fail 'the TaskManager on host 2 saw it had lost the jobmanager'
run_weir0 cluster status --wait 3
check 'the TaskManager on host 2 registered again (3 taskmanagers)' test "$(grep -c '^  taskmanager ' "$T/out")" -eq 3
rm -rf "$T/cl"
run_weir0 run "$JOBS/wordcount.so" -p 5 --spread -- "$T/words.txt" "$T/cl"
check "its slots serve again: a job on all 5 slots runs (rc $rc)" test "$rc" -eq 0

# ---- checkpoint storage that is not shared ----
# a TaskManager on host 1 whose view of the checkpoint folder is a file
# system of its own (a private mount, as a host without the NFS mount): a
# checkpointed job that needs it is refused, naming it and the folder
mkdir -p "$T/ck"
"$NB" exec "$bed" 1 unshare -m sh -c 'mount -t tmpfs none "$1" && shift && exec "$@"' sh "$T/ck" \
	"$WEIR" taskmanager --jobmanager "$(cat "$T/run/jobmanager.addr")" --secret-file "$T/run/secret" \
	--advertise "$("$NB" addr "$bed" 1)" --slots 2 --run-dir "$T/rd3" >"$T/tm3.log" 2>&1 &
tmpid[3]=$!
disown
run_weir0 cluster status --wait 4
rm -rf "$T/o"
run_weir0 run "$TJOBS/ckjob.so" -p 7 --spread --checkpoint-interval 50 --checkpoint-dir "$T/ck" -- 1000 1000 "$T/o"
check "a checkpointed job on a TaskManager that does not share the checkpoint folder fails (rc $rc)" test "$rc" -eq 1
check 'naming the TaskManager and the folder' grep -q "does not see the jobmanager's checkpoint folder at '$T/ck/" "$T/err"
[ "$rc" -eq 1 ] || diag "$(cat "$T/err")"
rm -rf "$T/cl"
run_weir0 run "$JOBS/wordcount.so" -p 7 --spread -- "$T/words.txt" "$T/cl"
check "a job without checkpoints runs there (rc $rc)" test "$rc" -eq 0

# ---- stop ----
run_weir0 cluster stop
check 'cluster stop names the TaskManagers on other hosts' grep -q '3 on other hosts' "$T/out"
check 'and they exit' wait_gone "${tmpid[1]}" "${tmpid[2]}" "${tmpid[3]}"
check 'no sanitizer report or crash from a remote TaskManager' bash -c "! grep -qE 'Sanitizer|runtime error|killed by signal' '$T'/tm*.log"
wait_gone $(cat "$T/run/jobmanager.pid" 2>/dev/null) || true
check 'no sanitizer report from the JobManager and the local TaskManager' \
	bash -c "! grep -qE 'Sanitizer|runtime error' '$T'/run/*.log"

done_testing
