#!/usr/bin/env bash
# t1450-faultproxy: the fault proxy of the cross-host tests (t/tools/faultproxy.c,
# issue 14) between a seeded source and a sink of its own, over loopback.
# Clean forwarding is byte-exact both ways and passes each side's FIN on
# (the sink's reply comes back after the source's FIN); --drop-after N
# delivers exactly N bytes, then both ends see a reset; --split delivers the
# same bytes in one write per byte; --flip-at and --flip-every change
# exactly the bytes they log (--flip-every replays from its seed); a stall
# holds the stream until SIGUSR1, then it completes; --conn and --dir pick
# the connection and direction; a target that dies mid-stream takes the
# client's connection with it; bad usage exits 2. Every wait is on a file
# or a process, under timeout.
. "$(dirname "$0")/lib.sh"

FP=$WEIR_BUILD/t/faultproxy
[ -x "$FP" ] || { echo "Bail out! no faultproxy at $FP"; exit 255; }
lo=127.0.0.1
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

# A program given --port-file $T/NAME.port renames the port into it once it
# listens. The launchers below make an empty one first: wait_for (tail -F)
# sees a file replaced at once, but polls for one that does not exist yet.
#
# bg NAME CMD...: runs CMD in the background (under a 60 s limit), stdout and
# stderr to $T/NAME.out and .err; its pid in $bgpid
bg() {
	local n=$1
	shift
	: >"$T/$n.port"
	timeout 60 "$@" >"$T/$n.out" 2>"$T/$n.err" &
	bgpid=$!
	pids+=("$bgpid")
}
# proxy NAME ARGS...: starts a proxy listening on an ephemeral port (in
# $T/NAME.port once it listens), logging to $T/NAME.log; its pid in $pxpid
proxy() {
	local n=$1
	shift
	: >"$T/$n.port"
	"$FP" --listen $lo:0 --port-file "$T/$n.port" --log "$T/$n.log" "$@" 2>"$T/$n.err" &
	pxpid=$!
	pids+=("$pxpid")
	wait_for "$T/$n.port" ""
}
# stop_proxy NAME: SIGTERM; it exits 0 saying so
stop_proxy() {
	kill -TERM "$pxpid"
	local rc=0
	wait "$pxpid" || rc=$?
	if [ "$rc" -eq 0 ] && grep -q 'exiting on SIGTERM' "$T/$1.log"; then
		pass "$1: the proxy exits 0 on SIGTERM"
	else
		fail "$1: the proxy exits 0 on SIGTERM (exit $rc)"
		diag "$(cat "$T/$1.log" "$T/$1.err")"
	fi
}
# reap PID: waits for it; its exit status in $rc
reap() { rc=0; wait "$1" 2>/dev/null || rc=$?; }
# field FILE KEY: the value of the first KEY=... on FILE's first line
field() { awk -v k="$2=" 'NR == 1 { for (i = 1; i <= NF; i++) if (index($i, k) == 1) { print substr($i, length(k) + 1); exit } }' "$1"; }
# same_digest SRC SINK: the sink got what the source sent, cleanly
same_digest() {
	[ "$(field "$1" sent)" = "$(field "$2" bytes)" ] && [ "$(field "$1" fnv1a)" = "$(field "$2" fnv1a)" ] &&
		[ "$(field "$2" end)" = eof ]
}
# show FILE...: their contents as diagnostics
show() { local f; for f in "$@"; do diag "--- $f:"; head -c 3000 "$f" 2>/dev/null | sed 's/^/# /' >&2; done; }
# logged_offsets LOG: the offsets the proxy says it flipped, sorted
logged_offsets() { sed -n 's/.* flipped offset \([0-9]*\) .*/\1/p' "$1" | sort -n; }
# changed_offsets A B: the 0-based offsets where files A and B differ
changed_offsets() { cmp -l "$1" "$2" | awk '{print $1 - 1}' | sort -n; }

# ---- bad usage ----
usage() { # usage DESC PATTERN ARGS...
	local desc=$1 pat=$2 rc=0
	shift 2
	"$FP" "$@" >"$T/u.out" 2>"$T/u.err" || rc=$?
	if [ "$rc" -eq 2 ] && grep -Eq -- "$pat" "$T/u.err"; then
		pass "usage: $desc"
	else
		fail "usage: $desc (exit $rc)"
		diag "$(cat "$T/u.err")"
	fi
}
usage 'no arguments' 'the proxy needs --listen and --to'
usage 'a bad --dir' "--dir: 'sideways' is not up, down or both" --listen $lo:0 --to $lo:1 --dir sideways --split
usage 'a bad number' "--drop-after: 'x' is not a whole number" --listen $lo:0 --to $lo:1 --drop-after x
usage 'a negative number' "--stall-after: '-1' is not a whole number" --listen $lo:0 --to $lo:1 --stall-after -1
usage 'no port' "--to: '127.0.0.1' is not ADDR:PORT" --listen $lo:0 --to $lo
usage 'a host name' "--to: 'localhost:80'" --listen $lo:0 --to localhost:80
usage 'an unknown option' "unknown option '--bogus'" --listen $lo:0 --to $lo:1 --bogus
usage 'a missing value' "'--flip-at' needs a value" --listen $lo:0 --to $lo:1 --flip-at
usage '--flip-every 0' "--flip-every: '0' is not a whole number from 1" --listen $lo:0 --to $lo:1 --flip-every 0
usage 'a source without --bytes' 'needs --bytes' --source --to $lo:1
usage 'a sink with rules' 'rules and --log are for the proxy' --sink --listen $lo:0 --split
usage 'a sink with both ends' 'needs one of --to and --listen' --sink --listen $lo:0 --to $lo:1

# ---- clean: byte-exact both ways, FINs passed on ----
bg sink1 "$FP" --sink --listen $lo:0 --port-file "$T/sink1.port" --save "$T/got1" --result "$T/sink1.res"
sink=$bgpid
wait_for "$T/sink1.port" ""
proxy px1 --to $lo:"$(cat "$T/sink1.port")"
bg src1 "$FP" --source --to $lo:"$(cat "$T/px1.port")" --bytes 1048576 --seed 11 --save "$T/sent1" --result "$T/src1.res"
src=$bgpid
reap "$src"; rs=$rc; reap "$sink"; rk=$rc
if [ "$rs$rk" = 00 ] && same_digest "$T/src1.res" "$T/sink1.res" && cmp -s "$T/sent1" "$T/got1"; then
	pass "clean: 1 MiB arrives byte-exact ($(field "$T/sink1.res" bytes) bytes)"
else
	fail "clean: 1 MiB arrives byte-exact (source $rs, sink $rk)"
	show "$T/src1.res" "$T/sink1.res" "$T/px1.log"
fi
reply=$(sed -n 's/.*reply=\[\([^]]*\)\].*/\1/p' "$T/src1.res")
check "clean: the sink's reply, sent after the source's FIN, comes back whole ($reply)" \
	test "$reply" = "$(field "$T/sink1.res" bytes | sed 's/^/bytes=/') fnv1a=$(field "$T/sink1.res" fnv1a)"
check "clean: the proxy passed both FINs on and logged the close" \
	grep -q 'conn 1 closed (up 1048576 bytes in [0-9]* writes, down [0-9]* bytes' "$T/px1.log"
check "clean: both FINs in the log" grep -q 'conn 1 up eof at byte 1048576' "$T/px1.log"
stop_proxy px1

# ---- drop-after, up; --conn 2 picks the second connection ----
bg sink2 "$FP" --sink --conns 2 --listen $lo:0 --port-file "$T/sink2.port" --save "$T/got2" --result "$T/sink2.res"
sink=$bgpid
wait_for "$T/sink2.port" ""
proxy px2 --to $lo:"$(cat "$T/sink2.port")" --conn 2 --dir up --drop-after 5000
bg src2a "$FP" --source --to $lo:"$(cat "$T/px2.port")" --bytes 100000 --seed 21 --save "$T/sent2a" --result "$T/src2a.res"
reap $bgpid; rs1=$rc
bg src2b "$FP" --source --to $lo:"$(cat "$T/px2.port")" --bytes 100000 --seed 22 --save "$T/sent2b" --result "$T/src2b.res"
reap $bgpid; rs2=$rc
reap "$sink"; rk=$rc
sed -n 1p "$T/sink2.res" >"$T/sink2a.res"
sed -n 2p "$T/sink2.res" >"$T/sink2b.res"
if [ "$rs1" = 0 ] && same_digest "$T/src2a.res" "$T/sink2a.res"; then
	pass "--conn 2: the first connection is untouched"
else
	fail "--conn 2: the first connection is untouched (source $rs1)"
	show "$T/src2a.res" "$T/sink2.res" "$T/px2.log"
fi
got=$(field "$T/sink2b.res" bytes)
if [ "$got" = 5000 ] && [ "$(field "$T/sink2b.res" end)" = reset ] && cmp -s -n 5000 "$T/sent2b" "$T/got2.2"; then
	pass "drop-after 5000: the sink gets exactly the first 5000 bytes, then a reset"
else
	fail "drop-after 5000: the sink gets exactly the first 5000 bytes, then a reset (got $got)"
	show "$T/sink2.res" "$T/px2.log"
fi
check "drop-after: the client sees a reset too (exit $rs2, $(field "$T/src2b.res" end))" \
	test "$rs2" = 1 -a "$(field "$T/src2b.res" end)" = reset
check "drop-after: logged" grep -q 'conn 2 up dropped at byte 5000: reset both sides$' "$T/px2.log"
check "drop-after: the sink's exit says a stream failed" test "$rk" = 1
stop_proxy px2

# ---- drop-after, down: the target sends, the client receives ----
bg src3 "$FP" --source --listen $lo:0 --port-file "$T/src3.port" --bytes 50000 --seed 31 --save "$T/sent3" --result "$T/src3.res"
src=$bgpid
wait_for "$T/src3.port" ""
proxy px3 --to $lo:"$(cat "$T/src3.port")" --dir down --drop-after 3000
bg sink3 "$FP" --sink --to $lo:"$(cat "$T/px3.port")" --save "$T/got3" --result "$T/sink3.res"
reap $bgpid; rk=$rc; reap "$src"; rs=$rc
if [ "$(field "$T/sink3.res" bytes)" = 3000 ] && [ "$(field "$T/sink3.res" end)" = reset ] &&
	cmp -s -n 3000 "$T/sent3" "$T/got3" && [ "$rk$rs" = 11 ]; then
	pass "--dir down --drop-after 3000: the client gets the target's first 3000 bytes, both see a reset"
else
	fail "--dir down --drop-after 3000 (sink $rk, source $rs)"
	show "$T/sink3.res" "$T/src3.res" "$T/px3.log"
fi
stop_proxy px3

# ---- split: one write per byte, the same bytes ----
bg sink4 "$FP" --sink --listen $lo:0 --port-file "$T/sink4.port" --result "$T/sink4.res"
sink=$bgpid
wait_for "$T/sink4.port" ""
proxy px4 --to $lo:"$(cat "$T/sink4.port")" --dir up --split
bg src4 "$FP" --source --to $lo:"$(cat "$T/px4.port")" --bytes 3000 --seed 41 --result "$T/src4.res"
reap $bgpid; rs=$rc; reap "$sink"; rk=$rc
if [ "$rs$rk" = 00 ] && same_digest "$T/src4.res" "$T/sink4.res"; then
	pass "split: 3000 bytes arrive byte-exact"
else
	fail "split: 3000 bytes arrive byte-exact (source $rs, sink $rk)"
	show "$T/src4.res" "$T/sink4.res" "$T/px4.log"
fi
check "split: in 3000 writes" grep -q 'conn 1 closed (up 3000 bytes in 3000 writes' "$T/px4.log"
stop_proxy px4

# ---- flip-at: exactly the logged bytes change; --dir up leaves the reply alone ----
bg sink5 "$FP" --sink --listen $lo:0 --port-file "$T/sink5.port" --save "$T/got5" --result "$T/sink5.res"
sink=$bgpid
wait_for "$T/sink5.port" ""
proxy px5 --to $lo:"$(cat "$T/sink5.port")" --seed 5 --dir up --flip-at 0 --flip-at 100 --flip-at 19999 --flip-at 70000
bg src5 "$FP" --source --to $lo:"$(cat "$T/px5.port")" --bytes 20000 --seed 51 --save "$T/sent5" --result "$T/src5.res"
reap $bgpid; rs=$rc; reap "$sink"; rk=$rc
logged_offsets "$T/px5.log" >"$T/logged5"
changed_offsets "$T/sent5" "$T/got5" >"$T/changed5"
if [ "$(paste -sd' ' "$T/logged5")" = "0 100 19999" ] && cmp -s "$T/logged5" "$T/changed5"; then
	pass "flip-at: bytes 0, 100 and 19999 changed, and only they (70000 is past the end)"
else
	fail "flip-at: bytes 0, 100 and 19999 changed, and only they"
	diag "logged: $(paste -sd' ' "$T/logged5")" "changed: $(paste -sd' ' "$T/changed5")"
fi
reply=$(sed -n 's/.*reply=\[\([^]]*\)\].*/\1/p' "$T/src5.res")
check "flip-at --dir up: the reply down is untouched and the streams end cleanly" \
	test "$rs$rk" = 00 -a "$reply" = "bytes=20000 fnv1a=$(field "$T/sink5.res" fnv1a)"
stop_proxy px5

# ---- flip-every: one byte per block, from the seed, replayable ----
for run in a b; do
	bg sink6$run "$FP" --sink --listen $lo:0 --port-file "$T/sink6$run.port" --save "$T/got6$run" --result "$T/sink6$run.res"
	sink=$bgpid
	wait_for "$T/sink6$run.port" ""
	proxy px6$run --to $lo:"$(cat "$T/sink6$run.port")" --seed 4242 --dir up --flip-every 4096
	bg src6$run "$FP" --source --to $lo:"$(cat "$T/px6$run.port")" --bytes 65536 --seed 61 --save "$T/sent6$run" --result "$T/src6$run.res"
	reap $bgpid
	reap "$sink"
	stop_proxy px6$run
done
logged_offsets "$T/px6a.log" >"$T/logged6"
changed_offsets "$T/sent6a" "$T/got6a" >"$T/changed6"
blocks=$(awk '{print int($1 / 4096)}' "$T/logged6" | sort -un | wc -l)
if [ "$(wc -l <"$T/logged6")" = 16 ] && [ "$blocks" = 16 ] && cmp -s "$T/logged6" "$T/changed6"; then
	pass "flip-every 4096: 16 bytes of 64 KiB changed, one per block, exactly those logged"
else
	fail "flip-every 4096: 16 bytes changed, one per block ($(wc -l <"$T/logged6") logged, $blocks blocks)"
	diag "logged: $(paste -sd' ' "$T/logged6")" "changed: $(paste -sd' ' "$T/changed6")"
fi
check "flip-every: the seed is logged" grep -q '^seed 4242$' "$T/px6a.log"
check "flip-every: the same seed flips the same bytes the same way" \
	cmp -s <(grep flipped "$T/px6a.log") <(grep flipped "$T/px6b.log")

# ---- stall until SIGUSR1 ----
bg sink7 "$FP" --sink --listen $lo:0 --port-file "$T/sink7.port" --save "$T/got7" --result "$T/sink7.res"
sink=$bgpid
wait_for "$T/sink7.port" ""
proxy px7 --to $lo:"$(cat "$T/sink7.port")" --dir up --stall-after 10000
bg src7 "$FP" --source --to $lo:"$(cat "$T/px7.port")" --bytes 300000 --seed 71 --save "$T/sent7" --result "$T/src7.res"
src=$bgpid
check "stall: logged at byte 10000" wait_for "$T/px7.log" 'conn 1 up stalled at byte 10000'
# the proxy reads nothing past byte 10000, so the sink cannot have seen the end
check "stall: the sink is still waiting for the rest" test ! -e "$T/sink7.res" -a -d "/proc/$sink"
kill -USR1 "$pxpid"
reap "$src"; rs=$rc; reap "$sink"; rk=$rc
if [ "$rs$rk" = 00 ] && same_digest "$T/src7.res" "$T/sink7.res" && cmp -s "$T/sent7" "$T/got7"; then
	pass "stall: after SIGUSR1 the stream completes byte-exact"
else
	fail "stall: after SIGUSR1 the stream completes byte-exact (source $rs, sink $rk)"
	show "$T/src7.res" "$T/sink7.res" "$T/px7.log"
fi
check "stall: the resume is logged" grep -q 'conn 1 up resumed at byte 10000' "$T/px7.log"
stop_proxy px7

# ---- the target dies mid-stream: the client's connection goes too ----
bg sink8 "$FP" --sink --listen $lo:0 --port-file "$T/sink8.port" --result "$T/sink8.res"
sink=$bgpid
wait_for "$T/sink8.port" ""
sinkprog=$(pgrep -P "$sink") # the sink itself, under timeout
proxy px8 --to $lo:"$(cat "$T/sink8.port")" --dir up --stall-after 1000
bg src8 "$FP" --source --to $lo:"$(cat "$T/px8.port")" --bytes 2000000 --seed 81 --result "$T/src8.res"
src=$bgpid
wait_for "$T/px8.log" 'conn 1 up stalled at byte 1000'
kill -KILL "$sinkprog"
reap "$sink"
# the sink's FIN comes down: passed on to the client
check "target gone: its FIN is passed on to the client" wait_for "$T/px8.log" 'conn 1 down eof at byte 0'
kill -USR1 "$pxpid"
reap "$src"; rs=$rc
check "target gone: forwarding to it resets the client too (source exit $rs, $(field "$T/src8.res" end))" \
	grep -Eq 'conn 1 target: (Connection reset by peer|Broken pipe); resetting the client' "$T/px8.log"
check "target gone: the source got no reply and did not hang (exit $rs)" \
	test "$rs" != 124 -a -n "$(grep -F 'reply=[]' "$T/src8.res")"
stop_proxy px8

# ---- connection refused by the target: the client is reset, the proxy lives on ----
bg dead "$FP" --sink --listen $lo:0 --port-file "$T/dead.port"
deadport=$(wait_for "$T/dead.port" "" && cat "$T/dead.port")
kill "$bgpid"
reap "$bgpid"
proxy px9 --to $lo:"$deadport"
bg src9 "$FP" --source --to $lo:"$(cat "$T/px9.port")" --bytes 10 --result "$T/src9.res"
reap $bgpid; rs=$rc
check "refused: the client sees a reset (exit $rs, $(field "$T/src9.res" end))" test "$rs" = 1
check "refused: logged" grep -q "conn 1 connect to $lo:$deadport: Connection refused" "$T/px9.log"
stop_proxy px9

# every program's stderr: no sanitizer report (an ASan build of the tools)
reports=$(grep -lE 'AddressSanitizer|LeakSanitizer|runtime error' "$T"/*.err "$T"/*.out 2>/dev/null)
check "no sanitizer report from the proxy, sources or sinks${reports:+ (in $reports)}" test -z "$reports"

done_testing
