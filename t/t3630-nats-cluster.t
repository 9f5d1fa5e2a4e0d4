#!/usr/bin/env bash
# t3630-nats-cluster: the NATS JetStream job (t/jobs/natsjob.c) on the local
# cluster, two TaskManagers, checkpoints every 50 ms, while messages keep
# coming: kill -9 of a TaskManager (chosen by the seed) after a checkpoint
# the seed chooses, twice, and a restart of the nats-server in between
# (its connections are lost: the job fails and restarts from its
# checkpoint, as often as the server is away). The output stream then holds
# every message exactly once (a checker counts lost, duplicated and
# unexpected). The seed is printed; WEIR_SEED replays it.
. "$(dirname "$0")/lib.sh"

command -v nats-server >/dev/null || { echo "1..0 # SKIP no nats-server (scripts/setup-deps installs it)"; exit 0; }
CTL=$WEIR_BUILD/t/natsctl
export WEIR_RUN_DIR="$T/run"
nats=
cleanup() {
	"$WEIR" cluster stop >/dev/null 2>&1
	[ -n "$nats" ] && kill "$nats" 2>/dev/null && wait "$nats" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

seed=${WEIR_SEED:-$(( $(date +%s) ^ $$ ))}
echo "# seed $seed (replay with WEIR_SEED=$seed)"
RANDOM=$seed

port=$(perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die; print $s->sockport')
url=nats://127.0.0.1:$port
start_nats() {
	: >"$T/nats.log"
	nats-server -js -a 127.0.0.1 -p "$port" -sd "$T/js" -l "$T/nats.log" >/dev/null 2>&1 &
	nats=$!
	wait_for "$T/nats.log" "Server is ready"
}
start_nats || fail "nats-server started"
"$CTL" "$url" add-stream IN in.a in.b && "$CTL" "$url" add-stream OUT out || fail "streams made"
"$CTL" "$url" pub in.a 5000 a && "$CTL" "$url" pub in.b 5000 b || fail "the first messages"

"$WEIR" cluster start --taskmanagers 2 --slots 1 --slot-wait 60000 >"$T/out" 2>"$T/err" ||
	{ fail "cluster start"; diag "$(cat "$T/err")"; }
tm_pid() { "$WEIR" cluster status >"$T/st" 2>&1; sed -n "s/.*taskmanager $1 *pid \([0-9]*\).*/\1/p" "$T/st"; }
"$WEIR" run "$TJOBS/natsjob.so" -p 2 --checkpoint-interval 50 --checkpoint-dir "$T/ck" --restart-attempts 100 \
	--restart-delay 100 -- "$url" IN out >"$T/run.out" 2>"$T/run.err" &
runpid=$!
jm=$T/run/jobmanager.log
until_ck() { timeout 120 tail -n +1 -F "$jm" 2>/dev/null | grep -q -m1 -E "job 1: checkpoint $1 complete \("; }

target=0
for step in kill nats kill; do
	target=$((target + 3 + RANDOM % 4))
	until_ck "$target" || { fail "checkpoint $target never completed"; break; }
	case $step in
	kill)
		victim=$((RANDOM % 2))
		pid=$(tm_pid $victim)
		kill -9 "$pid"
		echo "# taskmanager $victim (pid $pid) killed after checkpoint $target"
		;;
	nats)
		kill "$nats"
		wait "$nats"
		echo "# nats-server stopped after checkpoint $target"
		start_nats || fail "nats-server started again"
		;;
	esac
	"$CTL" "$url" pub in.b 1000 "c$target" || fail "messages after step $step"
	# the job runs again: a checkpoint completes after this step
	target=$(grep -oE "job 1: checkpoint [0-9]+ complete" "$jm" | tail -1 | grep -oE "[0-9]+ complete" | cut -d' ' -f1)
done
# the last step's restart is logged after its kill: wait for the third
# (not grep -m3 >/dev/null: GNU grep then reads to the end of its input)
timeout 120 tail -n +1 -F "$jm" 2>/dev/null | awk '/job 1 \(natsjob\.so\): restart [0-9]* from/ && ++n == 3 { exit }'
restarts=$(grep -c "job 1 (natsjob.so): restart [0-9]* from" "$jm")
check "the job restarted after the kills and the server's restart ($restarts)" test "$restarts" -ge 3

total=$((10000 + 3000))
for ((i = 0; i < 600; i++)); do
	n=$("$CTL" "$url" count OUT 2>/dev/null || echo 0)
	[ "$n" -ge "$total" ] && break
	sleep 0.1 # polls the server's count, a condition with a deadline
done
check "the output stream reached $total messages ($n)" test "$n" -ge "$total"
"$WEIR" cancel 1 >/dev/null 2>&1
wait "$runpid"
{ perl -e 'print "A $_\n" for 0 .. 4999; print "B $_\n" for 0 .. 4999'
  "$CTL" "$url" dump IN | grep '^c' | tr 'a-z' 'A-Z'; } | LC_ALL=C sort >"$T/want"
"$CTL" "$url" dump OUT | LC_ALL=C sort >"$T/got"
t=$(tally "$T/want" "$T/got")
check "every message once across the kills and the server's restart: $t" test "$t" = "lost=0 dup=0 unexpected=0"
"$WEIR" cluster stop >/dev/null 2>&1
check_logs "$T/run" 2

done_testing
