#!/usr/bin/env bash
# t3620-nats: the NATS JetStream source and sink (weir/nats.h) against a
# real nats-server this test starts on a loopback port with a private store
# folder (and stops): t/jobs/natsjob.c copies stream IN (subjects in.a and
# in.b: two splits) to a stream of its own, upper-cased. With checkpoints,
# kill -9 at a barrier, before a commit publishes and after it published,
# then a run from the checkpoint: the output stream holds every message
# once (a checker counts lost, duplicated and unexpected), also with
# messages published after the restore. A server that is not there, a stream that does not exist and a
# wrong password each fail the job with a message that names them.
. "$(dirname "$0")/lib.sh"

command -v nats-server >/dev/null || { echo "1..0 # SKIP no nats-server (scripts/setup-deps installs it)"; exit 0; }
CTL=$WEIR_BUILD/t/natsctl
JOB=$TJOBS/natsjob.so
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

free_port() { perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die; print $s->sockport'; }
# server NAME [ARGS...]: a nats-server with JetStream in $T/NAME, its url in $url
server() {
	local n=$1 port
	shift
	port=$(free_port)
	mkdir -p "$T/$n"
	: >"$T/$n/log"
	nats-server -js -a 127.0.0.1 -p "$port" -sd "$T/$n/js" -l "$T/$n/log" "$@" >/dev/null 2>&1 &
	pids+=($!)
	wait_for "$T/$n/log" "Server is ready" || fail "nats-server $n started"
	url=nats://127.0.0.1:$port
}
# until_count STREAM N: until the stream holds N messages or more (60 s at most)
until_count() {
	local i n
	for ((i = 0; i < 600; i++)); do
		n=$("$CTL" "$url" count "$1" 2>/dev/null || echo 0)
		[ "$n" -ge "$2" ] && return 0
		sleep 0.1 # polls the server's count, a condition with a deadline
	done
	return 1
}
# want N_A N_B: the messages OUT must hold
want() { perl -e 'my ($a, $b) = @ARGV; print "A $_\n" for 0 .. $a - 1; print "B $_\n" for 0 .. $b - 1' "$@" | LC_ALL=C sort; }
same() { # same DESC STREAM: its messages are $T/want, each once
	"$CTL" "$url" dump "$2" | LC_ALL=C sort >"$T/got"
	local t
	t=$(tally "$T/want" "$T/got")
	if [ "$t" = "lost=0 dup=0 unexpected=0" ]; then pass "$1: $t"; else fail "$1: $t"; fi
}

server js
"$CTL" "$url" add-stream IN in.a in.b && "$CTL" "$url" pub in.a 10000 a && "$CTL" "$url" pub in.b 10000 b
check "streams made, 20000 messages in IN" test "$("$CTL" "$url" count IN)" -eq 20000

# kill -9 at a step (FP), then a run from its checkpoint, into OUT<K>/out<K>
k=0
for fp in checkpoint.barrier:8 sink.commit:3 sink.committed:3; do
	k=$((k + 1))
	"$CTL" "$url" add-stream "OUT$k" "out$k" || fail "stream OUT$k"
	rm -rf "$T/ck"
	# the source never ends: a run whose step never came (all of IN read
	# before it) is stopped after 60 s and the case skipped, said so
	rc=0; WEIR_FAILPOINT=$fp:kill-self timeout -s INT 60 "$WEIR" local "$JOB" -q -p 2 --checkpoint-interval 30 \
		--checkpoint-dir "$T/ck" -- "$url" IN "out$k" 2>"$T/err" || rc=$?
	if [ "$rc" -le 128 ]; then
		skip "$fp: the step never came (rc $rc)" 4
		continue
	fi
	check "$fp: kill -9 (rc $rc)" test "$rc" -gt 128
	base=$(ls -d "$T"/ck/job-* | head -1)
	"$WEIR" local "$JOB" -q -p 2 --checkpoint-interval 30 --checkpoint-dir "$T/ck" --from-checkpoint "$base" \
		-- "$url" IN "out$k" 2>"$T/err2" &
	job=$!
	pids+=($job)
	until_count "OUT$k" 20000 || diag "OUT$k holds $("$CTL" "$url" count "OUT$k") of 20000 after 60 s" "$(tail -5 "$T/err2")"
	want 10000 10000 >"$T/want"
	if [ $k -eq 3 ]; then
		# more after the restore: the running job reads on from where it is
		"$CTL" "$url" pub in.b 2000 c
		perl -e 'print "C $_\n" for 0 .. 1999' >>"$T/want"
		LC_ALL=C sort -o "$T/want" "$T/want"
		until_count "OUT$k" 22000 || diag "OUT$k holds $("$CTL" "$url" count "OUT$k") of 22000 after 60 s"
	fi
	kill -INT "$job"
	rc=0; wait "$job" || rc=$?
	check "$fp: the restored job runs until cancelled (rc $rc)" test "$rc" -eq 130
	same "$fp: kill -9, a restore$([ $k -eq 3 ] && echo ', messages after it'): OUT$k holds each once" "OUT$k"
	# (the crashed run's folder may keep a batch staged for a checkpoint
	# that never completed: never published, gone with that folder)
	newest=$(ls -d "$T"/ck/job-* | grep -vx "$base" | head -1)
	check "$fp: the restored run's staged batches are gone once published" \
		test -n "$newest" -a -z "$(find "$newest" -name '*.staged' 2>/dev/null)"
done

# what a user gets wrong
port=$(free_port)
rc=0; "$WEIR" local "$JOB" -q -- "nats://127.0.0.1:$port" IN out 2>"$T/err" || rc=$?
check "no server there: the job fails (rc $rc)" test "$rc" -eq 1
check 'naming the url' grep -q "nats source: cannot connect to nats://127.0.0.1:$port" "$T/err"
rc=0; "$WEIR" local "$JOB" -q -- "$url" NOPE out 2>"$T/err" || rc=$?
check "a stream that does not exist: the job fails (rc $rc), naming it" \
	eval '[ "$rc" -eq 1 ] && grep -q "nats source: stream .NOPE. on $url: no such stream" "$T/err"'

server auth --user weir --pass right
rc=0; "$WEIR" local "$JOB" -q -- "$url" IN out weir wrong 2>"$T/err" || rc=$?
check "a wrong password: the job fails (rc $rc), saying so" \
	eval '[ "$rc" -eq 1 ] && grep -qi "nats source: cannot connect to $url: .*authoriz" "$T/err"'
[ "$rc" -eq 1 ] || diag "$(cat "$T/err")"

done_testing
