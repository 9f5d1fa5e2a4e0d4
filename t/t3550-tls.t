#!/usr/bin/env bash
# t3550-tls: a cluster whose every connection speaks TLS (tls.enabled, with
# certificates made by weir cert): the local cluster's JobManager and
# TaskManager use host h0's certificate, a TaskManager joining as from
# another host uses h1's. Its connection to the JobManager and its data
# connection go through the fault proxy, which records the bytes on the
# wire (--record). Checked:
#  - the commands (status, run) speak TLS too (the run folder names the
#    certificates);
#  - a wordcount over both TaskManagers (channels over TCP) gives local
#    mode's output, and no recorded byte stream holds a word of the input or
#    the job's arguments in clear; the same run without TLS does (the
#    recording would show them);
#  - a TaskManager with a certificate of another CA is refused, and the
#    cluster goes on.
. "$(dirname "$0")/lib.sh"

FP=$WEIR_BUILD/t/faultproxy
[ -x "$FP" ] || { echo "Bail out! no faultproxy at $FP"; exit 255; }
export WEIR_RUN_DIR="$T/run"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	"$WEIR" cluster stop >/dev/null 2>&1
	[ -n "${WEIR_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT
free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'; }

run_weir cert ca --dir "$T/certs"
run_weir cert host --dir "$T/certs" --name h0 --ip 127.0.0.1
run_weir cert host --dir "$T/certs" --name h1 --ip 127.0.0.1
run_weir cert ca --dir "$T/other"
run_weir cert host --dir "$T/other" --name h1 --ip 127.0.0.1
check 'certificates made' test -f "$T/certs/h1.crt" -a -f "$T/other/h1.crt"

# the input: words nobody would find on the wire by chance
perl -e 'srand(1); for (1..3000) { print join(" ", map { "zqxmarker" . int(rand 50) } 1..5), "\n" }' >"$T/words.txt"
run_weir local "$JOBS/wordcount.so" -q -p 2 -- "$T/words.txt" "$T/local"
LC_ALL=C sort "$T/local"/part-* >"$T/want"

# cluster [tls]: a cluster (TLS when asked) and a TaskManager joined through
# the recording proxies (recordings in $T/rec-MODE)
cluster() {
	local mode=$1 rec="$T/rec-$1"
	mkdir -p "$rec"
	if [ "$mode" = tls ]; then
		printf 'tls.enabled: 1\ntls.dir: %s\ntls.name: h0\n' "$T/certs" >"$T/cluster.yaml"
	else
		: >"$T/cluster.yaml"
	fi
	run_weir cluster start --config "$T/cluster.yaml" --taskmanagers 1 --slots 1 --slot-wait 60000 --exchange tcp
	check "cluster start ($mode, rc $rc)" grep -q 'started in' "$T/out"
	[ "$rc" -eq 0 ] || diag "$(cat "$T/err")"
	local jport dport pport
	jport=$(free_port) dport=$(free_port) pport=$(free_port)
	"$FP" --listen "127.0.0.1:$jport" --to "$(cat "$T/run/jobmanager.addr")" --record "$rec" --log "$T/pj.log" &
	pids+=($!)
	"$FP" --listen "127.0.0.1:$pport" --to "127.0.0.1:$dport" --record "$rec" --log "$T/pd.log" &
	pids+=($!)
	wait_for "$T/pj.log" listening
	wait_for "$T/pd.log" listening
	local tls=()
	[ "$mode" = tls ] && tls=(--tls-dir "$T/certs" --tls-name h1)
	"$WEIR" taskmanager --jobmanager "127.0.0.1:$jport" --secret-file "$T/run/secret" "${tls[@]}" \
		--advertise "127.0.0.1:$pport" --data-port "$dport" --slots 1 --run-dir "$T/rd-$mode" >"$T/tm-$mode.log" 2>&1 &
	pids+=($!)
	run_weir cluster status --wait 2
	check "$mode: the joined TaskManager registered through the proxy (status over $mode)" \
		grep -q "data 127.0.0.1:$pport" "$T/out"
}
stop_cluster() {
	run_weir cluster stop
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait_gone "${pids[@]}" || true
	pids=()
}
wordcount() {
	rm -rf "$T/cl"
	rc=0
	timeout 60 "$WEIR" run "$JOBS/wordcount.so" -p 2 -- "$T/words.txt" "$T/cl" >"$T/out" 2>"$T/err" || rc=$?
	check "$1: wordcount over both TaskManagers (rc $rc)" test "$rc" -eq 0
	[ "$rc" -eq 0 ] || diag "$(cat "$T/err")"
	LC_ALL=C sort "$T/cl"/part-* >"$T/got" 2>/dev/null
	check "$1: same output as local mode" cmp -s "$T/want" "$T/got"
}
clear_in() { # clear_in DIR: the recorded bytes hold the input's words or the job's arguments
	cat "$1"/c* 2>/dev/null | grep -aqE 'zqxmarker|words\.txt'
}

cluster tls
wordcount tls
check 'TLS: both connections were recorded' bash -c "ls '$T/rec-tls'/c1.up '$T/rec-tls'/c1.down >/dev/null && [ \$(cat '$T/rec-tls'/c* | wc -c) -gt 100000 ]"
check 'TLS: no word of the input, no job argument in clear on the wire' bash -c "! { cat '$T/rec-tls'/c* | grep -aqE 'zqxmarker|words\\.txt'; }"

# another CA's certificate: refused
"$WEIR" taskmanager --jobmanager "$(cat "$T/run/jobmanager.addr")" --secret-file "$T/run/secret" \
	--tls-dir "$T/other" --tls-name h1 --slots 1 --run-dir "$T/rd-other" >"$T/tm-other.log" 2>&1
rc=$?
check "a TaskManager with another CA's certificate is refused (exit $rc)" test "$rc" -eq 1
run_weir cluster status --wait 2
check 'the cluster goes on with its two TaskManagers' test "$(grep -c '^  taskmanager ' "$T/out")" -eq 2
stop_cluster

cluster plain
wordcount plain
check 'without TLS the recording shows the words (the check above can see them)' clear_in "$T/rec-plain"
stop_cluster
check_logs "$T/run" 0

done_testing
