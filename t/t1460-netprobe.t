#!/usr/bin/env bash
# t1460-netprobe: the network benchmark's bare TCP probes
# (bench/netprobe.c, build/bench/weir-bench-netprobe) over loopback with tiny
# counts: each mode runs, its line (and its --json object) parses, the
# percentiles are in order; a client of the wrong probe is refused; bad
# usage exits 2. No timing is judged.
. "$(dirname "$0")/lib.sh"

NP=$WEIR_BUILD/bench/weir-bench-netprobe
[ -x "$NP" ] || { echo "Bail out! no netprobe at $NP"; exit 255; }
lo=127.0.0.1
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# server NAME ARGS...: a server in the background (60 s limit), its output
# in $T/NAME.out and .err, its port in $port once it listens (the empty
# port file first: wait_for sees a replaced file at once)
server() {
	local n=$1
	shift
	: >"$T/$n.port"
	timeout 60 "$NP" "$@" --listen $lo:0 --port-file "$T/$n.port" >"$T/$n.out" 2>"$T/$n.err" &
	srv=$!
	pids+=("$srv")
	wait_for "$T/$n.port" ""
	port=$(cat "$T/$n.port")
}
# run NAME ARGS...: a client; output in $T/NAME.out and .err, status in $rc
run() {
	local n=$1
	shift
	rc=0
	timeout 60 "$NP" "$@" >"$T/$n.out" 2>"$T/$n.err" || rc=$?
}
reap() { rc=0; wait "$1" 2>/dev/null || rc=$?; }
# matches FILE REGEX DESC: every line of FILE matches REGEX, and there is one
matches() {
	if [ -s "$1" ] && ! grep -Evq -- "$2" "$1"; then
		pass "$3"
	else
		fail "$3"
		diag "$(cat "$1" "${1%.out}.err" 2>/dev/null)"
	fi
}
# json FILE DESC: each line is a JSON object (perl's core JSON::PP)
json() {
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
	run u "$@"
	if [ "$rc" -eq 2 ] && grep -Eq -- "$pat" "$T/u.err"; then
		pass "usage: $desc"
	else
		fail "usage: $desc (exit $rc)"
		diag "$(cat "$T/u.err")"
	fi
}
usage 'no probe' 'which probe'
usage 'an unknown probe' "unknown probe 'iperf'" iperf
usage 'a client without --chunk' 'stream-client needs --bytes and --chunk' stream-client --to $lo:1 --bytes 10
usage 'a pingpong client without --count' 'pingpong-client needs --size and --count' pingpong-client --to $lo:1 --size 8
usage 'an option of another probe' "unknown option '--bytes' for pingpong-client" pingpong-client --to $lo:1 --bytes 8
usage 'a bad number' "--chunk: '0' is not a whole number from 1" stream-client --to $lo:1 --bytes 10 --chunk 0
usage 'a server without --listen' 'stream-server needs --listen' stream-server
usage 'a bad address' "--to: 'nowhere:1'" stream-client --to nowhere:1 --bytes 10 --chunk 1
run h --help
check '--help exits 0 and says how' test "$rc" -eq 0 -a -s "$T/h.out"

# ---- stream ----
server ss stream-server --conns 2
run sc1 stream-client --to $lo:"$port" --bytes 100000 --chunk 1000
check "stream-client exits 0 (exit $rc)" test "$rc" -eq 0
matches "$T/sc1.out" "^stream bytes=100000 chunk=1000 seconds=$num gbps=$num\$" 'stream-client: its line parses'
run sc2 stream-client --to $lo:"$port" --bytes 77777 --chunk 65536 --json
check "stream-client --json exits 0 (exit $rc)" test "$rc" -eq 0
json "$T/sc2.out" 'stream-client --json: a JSON object'
matches "$T/sc2.out" "^\\{\"probe\":\"stream\",\"bytes\":77777,\"chunk\":65536,\"seconds\":$num,\"gbps\":$num\\}\$" \
	'stream-client --json: its fields'
reap "$srv"
check "stream-server serves --conns 2 and exits 0 (exit $rc)" test "$rc" -eq 0
matches "$T/ss.out" "^stream-server bytes=(100000 chunk=1000|77777 chunk=65536) seconds=$num gbps=$num\$" \
	'stream-server: a line per connection'
check 'stream-server: two lines' test "$(wc -l <"$T/ss.out")" -eq 2

# ---- ping-pong ----
server ps pingpong-server --conns 2 --json
run pc1 pingpong-client --to $lo:"$port" --size 32 --count 200 --warmup 10
check "pingpong-client exits 0 (exit $rc)" test "$rc" -eq 0
matches "$T/pc1.out" "^pingpong size=32 count=200 warmup=10 min_us=$num p50_us=$num p99_us=$num p999_us=$num max_us=$num mean_us=$num\$" \
	'pingpong-client: its line parses'
ordered=$(perl -ne 'my %v = /(\w+)_us=([0-9.]+)/g; print(($v{min} <= $v{p50} && $v{p50} <= $v{p99} && $v{p99} <= $v{p999} && $v{p999} <= $v{max} && $v{min} <= $v{mean} && $v{mean} <= $v{max}) ? "yes" : "no")' "$T/pc1.out")
check 'pingpong-client: min <= p50 <= p99 <= p99.9 <= max, mean between min and max' test "$ordered" = yes
run pc2 pingpong-client --to $lo:"$port" --size 1 --count 50 --json
check "pingpong-client --json exits 0 (exit $rc)" test "$rc" -eq 0
json "$T/pc2.out" 'pingpong-client --json: a JSON object'
matches "$T/pc2.out" "^\\{\"probe\":\"pingpong\",\"size\":1,\"count\":50,\"warmup\":0,\"min_us\":$num,\"p50_us\":$num,\"p99_us\":$num,\"p999_us\":$num,\"max_us\":$num,\"mean_us\":$num\\}\$" \
	'pingpong-client --json: its fields'
reap "$srv"
check "pingpong-server exits 0 (exit $rc)" test "$rc" -eq 0
json "$T/ps.out" 'pingpong-server --json: an object per connection'
matches "$T/ps.out" '^\{"probe":"pingpong-server","size":(32,"rounds":210|1,"rounds":50)\}$' 'pingpong-server --json: its fields'

# ---- the wrong probe ----
server wp stream-server
run wc pingpong-client --to $lo:"$port" --size 8 --count 5
check "a pingpong client at a stream server fails (exit $rc)" test "$rc" -eq 1
reap "$srv"
check "and the server refuses it, exit 1 ($rc)" test "$rc" -eq 1
check 'saying why' grep -q 'not a stream client' "$T/wp.err"

reports=$(grep -lE 'AddressSanitizer|LeakSanitizer|runtime error' "$T"/*.err 2>/dev/null)
check "no sanitizer report${reports:+ (in $reports)}" test -z "$reports"

done_testing
