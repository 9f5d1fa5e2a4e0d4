#!/usr/bin/env bash
# t3360-flood: connections made without the secret cannot lock the owner
# out (issue 13). Another local user (nobody, when this run can act as
# one; else this user) opens 3000 idle connections to the JobManager's
# port and keeps opening new ones until told to stop, the way an attacker
# who keeps re-opening would. Meanwhile the owner's cluster status, an
# attached run, a detached run, list and cancel all work, and the
# TaskManager is never lost. The JobManager logs the refused connections
# with the peer's address, at most a line a second and a summary of the
# rest; a 4 GiB length header, garbage and a junk message are each logged
# too (in full or counted in a summary). No sleeps: the test waits for the
# flooder's own word and for log lines.
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
cleanup() {
	exec 3>&- 2>/dev/null
	"$WEIR" cluster stop >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
run_weir cluster start --taskmanagers 1 --slots 2 --slot-wait 60000
check "cluster start (rc $rc)" grep -q 'started in' "$T/out"
addr=$(cat "$WEIR_RUN_DIR/jobmanager.addr")
port=${addr##*:}
log=$WEIR_RUN_DIR/jobmanager.log

# the flooder: N idle connections, "open N" on stdout, then one more every
# millisecond (closing its oldest, so it stays at N descriptors) until its
# stdin ends; then "made M" (every connection it opened)
cat >"$T/flood.pl" <<'PERL'
use strict; use IO::Socket::INET; use IO::Select;
my ($port, $n) = @ARGV; my (@s, $made);
$| = 1;
sub one { my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $port, Proto => "tcp") or return;
	$made++; push @s, $s; shift @s while @s > $n }
one() for 1 .. $n;
print "open ", scalar(@s), "\n";
my $in = IO::Select->new(\*STDIN);
while (1) {
	if ($in->can_read(0.001)) { last if !sysread(STDIN, my $b, 1) }
	one();
}
print "made $made\n";
PERL
chmod 755 "$T"
chmod 644 "$T/flood.pl"
n=3000
soft=$(ulimit -Sn)
[ "$soft" != unlimited ] && [ "$soft" -lt $((n + 64)) ] && { ulimit -n "$(ulimit -Hn)" 2>/dev/null; soft=$(ulimit -Sn); }
[ "$soft" != unlimited ] && [ "$soft" -lt $((n + 64)) ] && n=$((soft - 64))
if other_user_ok; then who=nobody; flood() { as_other perl "$@"; }
else who=$(id -un); flood() { perl "$@"; }; diag "the flood comes from this user: $(other_user_ok || echo 'cannot act as nobody (needs root and setpriv)')"; fi
mkfifo "$T/flood.in"
flood "$T/flood.pl" "$port" "$n" <"$T/flood.in" >"$T/flood.out" 2>"$T/flood.err" &
flooder=$!
exec 3>"$T/flood.in"
wait_for "$T/flood.out" "open "
check "$who holds $n connections to the jobmanager's port ($(head -1 "$T/flood.out"))" grep -q "^open $n$" "$T/flood.out"

run_weir cluster status
check "cluster status answers during the flood (rc $rc)" grep -q '1 taskmanagers, 2 slots' "$T/out"
printf 'a b a\nc a\n' >"$T/words.txt"
run_weir run "$JOBS/wordcount.so" -p 1 -- "$T/words.txt" "$T/wc"
check "an attached weir run finishes during the flood (rc $rc)" grep -q 'finished in' "$T/err"
check 'with its output' grep -qxP 'a\t3' <(cat "$T"/wc/part-* 2>/dev/null)
mkfifo "$T/fifo"
run_weir run "$TJOBS/fifo_ticker.so" -p 1 --detached -- "$T/fifo" "$T/tout"
jobid=$(cat "$T/out")
read -r line <"$T/fifo"
check "a detached job $jobid runs during the flood ($line)" test "$line" = running
run_weir list
check 'weir list shows it running' grep -q "^$jobid .*running" "$T/out"
run_weir cancel "$jobid"
check "weir cancel is accepted (rc $rc)" grep -q 'cancel requested' "$T/out"
wait_for "$log" "job $jobid (fifo_ticker.so) canceled"
run_weir list
check 'weir list shows it canceled' grep -q "^$jobid .*canceled" "$T/out"
wait_for "$log" "more refused connections in"
run_weir cluster status
check "cluster status still answers (rc $rc)" grep -q '1 taskmanagers, 2 slots' "$T/out"

exec 3>&-
wait "$flooder"
made=$(sed -n 's/^made //p' "$T/flood.out")
check "the flooder opened $made connections in all" test "${made:-0}" -ge "$n"

# the log: refused connections named with the peer's address, the rest summed
full=$(grep -c 'jobmanager: connection from 127\.0\.0\.1:[0-9]* closed before its handshake' "$log")
summaries=$(grep -c 'more refused connections in' "$log")
summed=$(perl -ne '$n += $1 if /(\d+) more refused connections in/; END { print $n + 0 }' "$log")
check "refused connections are logged with the peer's address ($full lines)" test "$full" -ge 1
check "and the others summed up ($summaries summaries for $summed connections)" test "$summed" -ge $((n / 2))
lines=$((full + summaries))
check "at most a line for every 20 refused connections ($lines lines for $((full + summed)))" \
	test $((lines * 20)) -le $((full + summed))

# a frame header announcing 4 GiB, garbage, a version 9 header, a junk
# message: each closes its connection and is logged, in full or counted
wait_re() { timeout 120 tail -n +1 -F "$1" 2>/dev/null | grep -q -m1 -E -- "$2"; }
send() { perl -e 'use IO::Socket::INET; my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1", PeerPort => $ARGV[0]) or die;
	print $s pack("H*", $ARGV[1]); shutdown($s, 1); my $b; 1 while sysread($s, $b, 4096)' "$port" "$1"; }
send ffffffff01000100
wait_re "$log" 'closed: frame: length 4294967295 exceeds the limit|frame too long: [0-9]'
check 'a 4 GiB length header is logged' grep -Eq 'from 127\.0\.0\.1:[0-9]+ closed: frame: length 4294967295 exceeds|frame too long: [0-9]' "$log"
send 474554202f20485454502f312e300d0a0d0a
wait_re "$log" 'length 542393671 exceeds|frame too long: [0-9]'
check 'garbage ("GET / HTTP/1.0") is logged' grep -Eq 'length 542393671 exceeds|frame too long: [0-9]' "$log"
send 0400000009000100deadbeef
wait_re "$log" 'closed: frame: version 9|bad framing: [0-9]'
check 'a frame of version 9 is logged' grep -Eq 'closed: frame: version 9|bad framing: [0-9]' "$log"
send 0400000001000100deadbeef
wait_re "$log" 'from 127\.0\.0\.1:[0-9]+ closed: .*(envelope|message|decode|protobuf)|bad message: [0-9]'
check 'a junk message is logged' grep -Eq 'from 127\.0\.0\.1:[0-9]+ closed: |bad message: [0-9]' "$log"

run_weir cluster stop
check "cluster stop (rc $rc)" test "$rc" -eq 0
check_logs "$WEIR_RUN_DIR"
grep -E 'refused connections|stopped \(' "$log" | tail -3 | sed 's/^/# /' >&2
done_testing
