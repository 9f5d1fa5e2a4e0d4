#!/usr/bin/env bash
# t3610-socket-source: weir_source_socket (t/jobs/socketjob.c) against a
# server of the test's (perl, loopback, an ephemeral port): every line of
# two connections in order (the second made after the first closed, the
# last line without its newline, "\r\n" ends taken as line ends); the
# source ends once the server is gone for max_retry_s; a server that never
# answers fails the job naming the address; a host that does not resolve
# is named; checkpoints are refused, saying why.
. "$(dirname "$0")/lib.sh"

# server PORTFILE N1 N2: serves N1 lines on its first connection, N2 on its
# second (the last without a newline, some with "\r\n"), then exits
server() {
	perl -MIO::Socket::INET -e '
		my ($pf, @n) = @ARGV;
		my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 4, ReuseAddr => 1) or die;
		open my $f, ">", "$pf.tmp" or die; print $f $l->sockport, "\n"; close $f; rename "$pf.tmp", $pf;
		my $i = 0;
		for my $c (0 .. $#n) {
			my $s = $l->accept or die;
			for my $k (1 .. $n[$c]) {
				my $end = ($c == $#n && $k == $n[$c]) ? "" : ($i % 7 == 0 ? "\r\n" : "\n");
				print $s "line $i", $end; $i++;
			}
			close $s;
		}' "$@"
}

: >"$T/port"
server "$T/port" 500 700 &
srv=$!
wait_for "$T/port" ""
port=$(cat "$T/port")
rc=0; "$WEIR" local "$TJOBS/socketjob.so" -q -- 127.0.0.1 "$port" 1 "$T/o" 2>"$T/err" || rc=$?
wait "$srv"
check "two connections, then the server gone for a second: the source ends, the job finishes (rc $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(cat "$T/err")"
perl -e 'print "line $_\n" for 0 .. 1199' >"$T/want"
check 'every line of both connections, in order, without "\r" (the last one had no newline)' \
	cmp -s "$T/want" "$T/o/part-0"

# a port nobody listens on: bind one, then let it go
port=$(perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die; print $s->sockport')
rc=0; "$WEIR" local "$TJOBS/socketjob.so" -q -- 127.0.0.1 "$port" 0 "$T/o2" 2>"$T/err" || rc=$?
check "nobody listening, no retry: the job fails (rc $rc)" test "$rc" -eq 1
check 'naming the address and why' grep -q "socket source: cannot connect to 127.0.0.1:$port: Connection refused" "$T/err"

rc=0; "$WEIR" local "$TJOBS/socketjob.so" -q -- no-such-host.invalid 9 0 "$T/o3" 2>"$T/err" || rc=$?
check "a host that does not resolve: the job fails (rc $rc), naming it" eval \
	'[ "$rc" -eq 1 ] && grep -q "cannot connect to no-such-host.invalid:9: cannot resolve .no-such-host.invalid." "$T/err"' 

rc=0; "$WEIR" local "$TJOBS/socketjob.so" -q --checkpoint-interval 100 --checkpoint-dir "$T/ck" \
	-- 127.0.0.1 "$port" 0 "$T/o4" 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] || fail "with checkpoints: exit status $rc, not 1"
check "with checkpoints: refused (rc $rc), saying why" \
	grep -q "source 'socket' cannot be checkpointed (what came through a socket cannot be read again)" "$T/err"

done_testing
