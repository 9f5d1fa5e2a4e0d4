#!/usr/bin/env bash
# t1490-xbench: the cross-host exchange benchmark (bench/exchange.c,
# build/bench/weir-bench-exchange) and the zero-copy probe (bench/zcprobe.c)
# over loopback with tiny counts: each mode runs to the end with every
# record in sequence, its line (and its --json object) parses, the
# latency percentiles are in order; over TLS (tls-setup's certificates) and
# with every frame through the exchange's thread (--no-direct) too; a --tls
# folder without certificates is named; bad usage exits 2. No timing is
# judged.
. "$(dirname "$0")/lib.sh"

XB=$WEIR_BUILD/bench/weir-bench-exchange
ZP=$WEIR_BUILD/bench/weir-bench-zcprobe
[ -x "$XB" ] || { echo "Bail out! no exchange benchmark at $XB"; exit 255; }
[ -x "$ZP" ] || { echo "Bail out! no zero-copy probe at $ZP"; exit 255; }
lo=127.0.0.1
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# server NAME PROG ARGS...: a receiver in the background (60 s limit), its
# output in $T/NAME.out and .err, its port in $port once it listens
server() {
	local n=$1 p=$2
	shift 2
	: >"$T/$n.port"
	timeout 60 "$p" "$@" --listen $lo:0 --port-file "$T/$n.port" >"$T/$n.out" 2>"$T/$n.err" &
	srv=$!
	pids+=("$srv")
	wait_for "$T/$n.port" ""
	port=$(cat "$T/$n.port")
}
# run NAME PROG ARGS...: a client; output in $T/NAME.out and .err, status in $rc
run() {
	local n=$1 p=$2
	shift 2
	rc=0
	timeout 60 "$p" "$@" >"$T/$n.out" 2>"$T/$n.err" || rc=$?
}
reap() { rc=0; wait "$1" 2>/dev/null || rc=$?; }
matches() { # matches FILE REGEX DESC: every line of FILE matches REGEX, and there is one
	if [ -s "$1" ] && ! grep -Evq -- "$2" "$1"; then
		pass "$3"
	else
		fail "$3"
		diag "$(cat "$1" "${1%.out}.err" 2>/dev/null)"
	fi
}
json() { # json FILE DESC: each line is a JSON object (perl's core JSON::PP)
	if perl -MJSON::PP -ne 'decode_json($_)->{probe} or die "no probe\n"' "$1" 2>"$T/json.err" && [ -s "$1" ]; then
		pass "$2"
	else
		fail "$2"
		diag "$(cat "$1" "$T/json.err")"
	fi
}
num='[0-9]+(\.[0-9]+)?'

# ---- usage ----
usage() { # usage DESC PATTERN ARGS...
	local desc=$1 pat=$2
	shift 2
	run u "$XB" "$@"
	if [ "$rc" -eq 2 ] && grep -Eq -- "$pat" "$T/u.err"; then
		pass "usage: $desc"
	else
		fail "usage: $desc (exit $rc)"
		diag "$(cat "$T/u.err")"
	fi
}
usage 'no side' 'which side'
usage 'an unknown side' "unknown side 'both'" both
usage 'send without --to' 'send needs --to' send --mode throughput --records 10
usage 'throughput without --records' 'needs --records' send --to $lo:1
usage 'latency without --rate' 'needs --rate' send --to $lo:1 --mode latency
usage 'latency with --fill' '--fill is for --mode throughput' send --to $lo:1 --mode latency --rate 10 --fill 2
usage 'a fill beyond the segment' 'do not fit' send --to $lo:1 --records 10 --seg 4096 --fill 200
usage 'a segment not a power of two' 'not a power of two' recv --listen $lo:0 --seg 5000
usage 'recv without --listen' 'recv needs --listen' recv
usage 'a sender with the higher id' 'must be below' send --to $lo:1 --records 10 --id 3
usage 'an option of the sender for recv' "unknown option '--rate' for recv" recv --listen $lo:0 --rate 5
run tls "$XB" send --to $lo:1 --records 10 --tls "$T/none"
check "--tls: a folder without certificates fails (exit $rc)" test "$rc" -eq 1
check '--tls: naming the file' grep -q "tls: .*$T/none/ca.crt" "$T/tls.err"

# ---- throughput: packed records, then lone records ----
server r1 "$XB" recv --credits 2 --seg 4096
run s1 "$XB" send --to $lo:"$port" --mode throughput --records 100000 --credits 2 --seg 4096
check "throughput: the sender exits 0 (exit $rc)" test "$rc" -eq 0
matches "$T/s1.out" "^exchange mode=throughput records=100000 record=32 fill=128 seg=4096 credits=2 spin_us=0 task_spin_us=50 seconds=$num gbps=$num GBps=$num records_per_s=$num recv_seconds=$num bad=0 cpu_s=$num\$" \
	'throughput: its line parses, no record out of sequence'
reap "$srv"
check "throughput: the receiver exits 0 (exit $rc)" test "$rc" -eq 0
matches "$T/r1.out" "^exchange-recv mode=throughput records=100000 seconds=$num GBps=$num bad=0 cpu_s=$num\$" \
	'throughput: the receiver counted every record'

server r2 "$XB" recv --spin-us 0 --task-spin-us 0
run s2 "$XB" send --to $lo:"$port" --records 3000 --fill 1 --record 48 --spin-us 0 --task-spin-us 0 --json
check "lone records, --json: the sender exits 0 (exit $rc)" test "$rc" -eq 0
json "$T/s2.out" 'lone records, --json: a JSON object'
matches "$T/s2.out" "^\\{\"probe\":\"exchange\",\"mode\":\"throughput\",\"records\":3000,\"record\":48,\"fill\":1,.*\"bad\":0,\"cpu_s\":$num\\}\$" \
	'lone records, --json: its fields'
reap "$srv"
check "lone records: the receiver exits 0 (exit $rc)" test "$rc" -eq 0

# ---- latency ----
server r3 "$XB" recv --dump "$T/dump"
run s3 "$XB" send --to $lo:"$port" --mode latency --rate 2000 --count 300 --warmup 20
check "latency: the sender exits 0 (exit $rc)" test "$rc" -eq 0
matches "$T/s3.out" "^exchange mode=latency rate=2000 achieved_rate=$num count=300 warmup=20 late=[0-9]+ record=32 seg=32768 credits=16 spin_us=0 task_spin_us=50 min_us=$num p50_us=$num p99_us=$num p999_us=$num max_us=$num mean_us=$num bad=0 cpu_s=$num\$" \
	'latency: its line parses'
ordered=$(perl -ne 'my %v = /(\w+)_us=([0-9.]+)/g; print(($v{min} > 0 && $v{min} <= $v{p50} && $v{p50} <= $v{p99} && $v{p99} <= $v{p999} && $v{p999} <= $v{max} && $v{min} <= $v{mean} && $v{mean} <= $v{max}) ? "yes" : "no")' "$T/s3.out")
check 'latency: 0 < min <= p50 <= p99 <= p99.9 <= max, mean between min and max' test "$ordered" = yes
reap "$srv"
check "latency: the receiver exits 0 (exit $rc)" test "$rc" -eq 0
check 'latency: --dump has a line per sample after the warmup' test "$(wc -l <"$T/dump")" -eq 300

# ---- TLS on, and every frame through the exchange's thread ----
run tlssetup "$XB" tls-setup "$T/tls" $lo
check "tls-setup: a CA and a certificate (exit $rc)" test "$rc" -eq 0 -a -s "$T/tls/bench.crt"
for v in "tls:--tls $T/tls" "no-direct:--no-direct"; do
	name=${v%%:*}
	read -r -a opt <<<"${v#*:}"
	server "r$name" "$XB" recv --seg 4096 "${opt[@]}"
	run "s$name" "$XB" send --to $lo:"$port" --mode throughput --records 50000 --seg 4096 "${opt[@]}"
	check "$name: the sender exits 0 (exit $rc)" test "$rc" -eq 0
	matches "$T/s$name.out" "^exchange mode=throughput records=50000 .* bad=0 cpu_s=$num\$" \
		"$name: no record out of sequence"
	reap "$srv"
	check "$name: the receiver exits 0 (exit $rc)" test "$rc" -eq 0
	matches "$T/r$name.out" "^exchange-recv mode=throughput records=50000 seconds=$num GBps=$num bad=0 cpu_s=$num\$" \
		"$name: the receiver counted every record"
done

# ---- the zero-copy probe ----
for m in copy zc; do
	server z$m "$ZP" server
	run c$m "$ZP" client --to $lo:"$port" --mode $m --bytes 1000000 --chunk 8192 --depth 3
	check "zcprobe $m: the client exits 0 (exit $rc)" test "$rc" -eq 0
	matches "$T/c$m.out" "^zcprobe mode=$m bytes=1000000 chunk=8192 depth=3 seconds=$num GBps=$num cpu_s=$num sends=[0-9]+ notifs=[0-9]+ copied=[0-9]+\$" \
		"zcprobe $m: its line parses"
	reap "$srv"
	check "zcprobe $m: the server exits 0 (exit $rc)" test "$rc" -eq 0
done
check 'zcprobe copy: no notifications' grep -q ' notifs=0 copied=0$' "$T/ccopy.out"
check 'zcprobe zc: a notification per send' perl -ne 'exit(!(/sends=(\d+) notifs=(\d+)/ && $1 == $2 && $1 > 0))' "$T/czc.out"

reports=$(grep -lE 'AddressSanitizer|LeakSanitizer|runtime error|ThreadSanitizer' "$T"/*.err 2>/dev/null)
check "no sanitizer report${reports:+ (in $reports)}" test -z "$reports"

done_testing
