#!/usr/bin/env bash
# t3500-netbed: the multi-host test bed of scripts/netbed (issue 14), on
# which the cross-host tests will run: two hosts (network namespaces on a
# bridge) reach each other over TCP and not the machine's own namespace;
# a cut host is silent (its peer's connection sees no FIN, no RST) and,
# healed, the same connection carries data again; down leaves no
# namespace, interface or process. Skipped, saying why, where namespaces
# cannot be made (not root, no iproute2).
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
NB=$here/../scripts/netbed
bed=nb$(($$ % 1000000))
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1 || ! "$NB" up "$bed" 2 2>"$T/err"; then
	"$NB" down "$bed" >/dev/null 2>&1 || true
	skip "cannot make network namespaces here ($(head -1 "$T/err" 2>/dev/null || echo 'not root or no ip'))" 1
	done_testing
	exit
fi
cleanup() {
	exec 3>&- 2>/dev/null
	[ -n "${srv:-}" ] && kill "$srv" 2>/dev/null
	"$NB" down "$bed"
	rm -rf "$T"
}
trap cleanup EXIT
a0=$("$NB" addr "$bed" 0)
a1=$("$NB" addr "$bed" 1)
pass "up: two hosts, $a0 and $a1"

# an echo server on host 1: one line back per line, per connection
cat >"$T/echo.pl" <<'PERL'
use strict; use IO::Socket::INET;
my $l = IO::Socket::INET->new(LocalAddr => $ARGV[0], LocalPort => 7777, Listen => 8, ReuseAddr => 1) or die "listen: $!";
$| = 1; print "listening\n";
while (my $c = $l->accept) { while (my $line = <$c>) { print $c $line; $c->flush } }
PERL
"$NB" exec "$bed" 1 perl "$T/echo.pl" "$a1" >"$T/srv.out" 2>&1 &
srv=$!
check "the echo server listens on host 1" wait_for "$T/srv.out" listening

# a client on host 0: its commands on stdin (send LINE, expect, silent SECONDS), answers on stdout
cat >"$T/client.pl" <<'PERL'
use strict; use IO::Socket::INET; use IO::Select;
$| = 1;
my $s = IO::Socket::INET->new(PeerAddr => $ARGV[0], PeerPort => 7777, Timeout => 10) or do { print "connect failed: $!\n"; exit 1 };
print "connected\n";
my $sel = IO::Select->new($s);
while (my $cmd = <STDIN>) {
	chomp $cmd;
	if ($cmd =~ /^send (.*)/) { syswrite($s, "$1\n") or print "send failed: $!\n" }
	elsif ($cmd eq "expect") {
		if ($sel->can_read(60)) { my $n = sysread($s, my $b, 4096); print defined $n && $n > 0 ? "got $b" : "closed\n" }
		else { print "no answer\n" }
	} elsif ($cmd =~ /^silent (\d+)/) {
		if ($sel->can_read($1)) { my $n = sysread($s, my $b, 4096); print $n ? "data\n" : "closed or reset\n" }
		else { print "silent\n" }
	}
}
PERL
mkfifo "$T/cmd"
"$NB" exec "$bed" 0 perl "$T/client.pl" "$a1" <"$T/cmd" >"$T/cli.out" 2>&1 &
cli=$!
exec 3>"$T/cmd"
check "host 0 connects to host 1" wait_for "$T/cli.out" connected
echo "send hello" >&3
echo "expect" >&3
check "and gets its line back" wait_for "$T/cli.out" "got hello"

"$NB" cut "$bed" 1
echo "send lost" >&3
echo "silent 1" >&3
check "cut: host 1 is silent (no FIN, no RST reaches host 0)" wait_for "$T/cli.out" "silent"
"$NB" heal "$bed" 1
echo "expect" >&3
check "healed: the same connection carries the line sent during the cut" wait_for "$T/cli.out" "got lost"
exec 3>&-
wait "$cli"

kill "$srv"
wait "$srv" 2>/dev/null
srv=
"$NB" down "$bed"
left=$( (ip netns list; ip -o link show) | grep -c "$bed" || true)
check "down: no namespace or interface of the bed is left ($left)" test "$left" -eq 0
done_testing
