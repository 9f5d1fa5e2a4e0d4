# t/lib.sh - TAP helpers for weir's shell tests. Source it first.
#
#   WEIR_BUILD   the build folder (default: ../build beside t/)
#   $WEIR        the weir binary; $JOBS, $TJOBS: job folders
#   $T           a scratch folder removed at exit
#
# Rules (from git's t/README): never pipe the program under test into
# another command (a crash would hide); capture its output in files.
set -u
here=$(cd "$(dirname "$0")" && pwd)
WEIR_BUILD=${WEIR_BUILD:-$here/../build}
WEIR=$WEIR_BUILD/bin/weir
JOBS=$WEIR_BUILD/jobs
TJOBS=$WEIR_BUILD/t/jobs
T=$(mktemp -d "${TMPDIR:-/tmp}/weir-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
[ -x "$WEIR" ] || { echo "Bail out! no weir binary at $WEIR (set WEIR_BUILD)"; exit 255; }

tap_n=0
tap_failed=0

pass() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
fail() { tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1)); echo "not ok $tap_n - $*"; }
diag() { printf '# %s\n' "$@" >&2; }
skip() { local i; for ((i = 0; i < $2; i++)); do tap_n=$((tap_n + 1)); echo "ok $tap_n # skip $1"; done; } # skip REASON N
check() { # check DESCRIPTION COMMAND...: pass when COMMAND succeeds
	local desc=$1
	shift
	if "$@"; then pass "$desc"; else fail "$desc"; fi
}

# run_weir ARGS...: runs weir, stdout to $T/out, stderr to $T/err, status in $rc
run_weir() {
	rc=0
	"$WEIR" "$@" >"$T/out" 2>"$T/err" || rc=$?
}

# expect STATUS PATTERN DESCRIPTION -- ARGS...: weir exits STATUS and its
# stderr matches the extended regex PATTERN.
expect() {
	local want=$1 pat=$2 desc=$3
	shift 4
	run_weir "$@"
	if [ "$rc" -eq "$want" ] && grep -Eq -- "$pat" "$T/err"; then
		pass "$desc"
	else
		fail "$desc"
		diag "weir $*" "exit $rc (wanted $want); stderr:" "$(cat "$T/err")"
	fi
	if grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' "$T/err"; then
		fail "$desc: no sanitizer report"
		diag "$(cat "$T/err")"
	fi
}

done_testing() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
}

# tally WANT GOT: compare two outputs as multisets of lines, the way the
# exactly-once tests judge a run; prints "lost=L dup=D unexpected=U" (lines
# of WANT missing from GOT, extra copies of WANT's lines, lines WANT lacks).
tally() {
	perl -e 'my (%w, %g); open my $a, "<", $ARGV[0] or die; $w{$_}++ while <$a>;
		open my $b, "<", $ARGV[1] or die; $g{$_}++ while <$b>;
		my ($l, $d, $u) = (0, 0, 0);
		for (keys %w) { my $x = $w{$_} - ($g{$_} // 0); $l += $x if $x > 0; $d -= $x if $x < 0 }
		for (keys %g) { $u += $g{$_} unless exists $w{$_} }
		print "lost=$l dup=$d unexpected=$u\n"' "$1" "$2"
}

# The checkpoint tests' job (t/jobs/ckjob.c):
# ck_output DIR: its committed output in DIR (every part file), sorted
ck_output() { cat "$1"/windows/part-* "$1"/records/part-* "$1"/short/part-* "$1"/counts/part-* 2>/dev/null | LC_ALL=C sort; }
# exact OUT DESC: passes when OUT's committed output equals $T/want line for
# line (as multisets: nothing lost, doubled or unexpected)
exact() {
	ck_output "$1" >"$T/got"
	local t
	t=$(tally "$T/want" "$T/got")
	if [ "$t" = "lost=0 dup=0 unexpected=0" ]; then pass "$2: $t"; else fail "$2: $t"; fi
}

# wait_for FILE PATTERN: until a line of FILE (a log being written) contains
# PATTERN (a fixed string): an event, not a sleep; fails after 120 s
wait_for() { timeout 120 tail -n +1 -F "$1" 2>/dev/null | grep -q -m1 -F -- "$2"; }

# eventually COMMAND...: until COMMAND succeeds, tried again every 0.1 s,
# for at most 60 s (status 1 then). For a state another process reaches
# at its own pace (a TaskManager's report once a second, a scrape): the
# test asserts the state, never how long it took.
eventually() {
	local end=$((SECONDS + 60))
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

# local_api ERRFILE: the address weir local --rest-port says on its stderr
# (written into ERRFILE), once it is said: "http://127.0.0.1:PORT"
local_api() {
	wait_for "$1" "REST API on http://" &&
		sed -n 's|^weir: REST API on \(http://127\.0\.0\.1:[0-9]*\)/$|\1|p' "$1"
}

# free_port: a TCP port on 127.0.0.1 that no one listens on now (for a
# server that cannot be told to pick one itself and say which)
free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)->sockport'; }

# wait_gone PID...: until each process has exited (a zombie counts as
# exited: it writes nothing more). Waits on a pidfd (an event, not a sleep);
# fails after 120 s in all.
wait_gone() {
	perl -e 'use POSIX (); my $end = time + 120;
		for my $pid (@ARGV) {
			my $fd = syscall(434, $pid + 0, 0); # pidfd_open(2)
			next if $fd < 0;                    # no such process: gone
			my $rin = ""; vec($rin, $fd, 1) = 1;
			my $left = $end - time;
			exit 1 if $left <= 0 || select($rin, undef, undef, $left) <= 0;
			POSIX::close($fd);
		}' "$@"
}

# shm_left PREFIX: how many entries of /dev/shm start with PREFIX, counting
# the files inside such folders too (a cluster's files are in its folder
# /dev/shm/weir-<cluster id>/, a local run's in weir-local-<pid>-<random>/)
shm_left() { find /dev/shm -mindepth 1 -maxdepth 2 -path "/dev/shm/$1*" 2>/dev/null | wc -l; }

# check_logs RUN_DIR [RESTARTS]: call once a cluster of RUN_DIR was stopped
# (after `weir cluster stop`, which leaves the logs in place). Two checks on
# the logs its processes wrote there (jobmanager.log, supervisor.log,
# taskmanager-N.log; each file from where the previous check_logs of it
# ended, so a folder that serves several clusters is checked per cluster):
#  - no sanitizer report (ASan, LSan, UBSan, TSan): a daemon's crash or
#    leak fails the test that caused it, the lines go to diag;
#  - TaskManagers died and came back exactly RESTARTS times (default 0: as
#    often as the test made them die on purpose), counted three ways, which
#    must all agree: the supervisor's restarts, its lines
#      "supervisor: taskmanager N started again (pid P, restart K)",
#    the deaths it saw,
#      "supervisor: taskmanager N (pid P) killed by signal S (SIGNAME); starting it again in D ms"
#      "supervisor: taskmanager N (pid P) exited with status S; starting it again in D ms",
#    and the JobManager's losses, "jobmanager: taskmanager N (pid P) lost: WHY".
#    A death the test did not cause shows as a loss (and usually as a death)
#    even when the stop came before the restart. A test whose kills are
#    followed by asynchronous restarts waits for the restart lines (wait_for)
#    before the stop, so that the count is exact.
# First it waits (pidfd, up to 120 s) until no process has one of those logs
# open: reports written at exit (LeakSanitizer) are in the files by then,
# and a process still running after the stop fails the check.
check_logs() {
	local dir want=${2:-0} pids found counts name=${1#"$T"/}
	dir=$(cd "$1" 2>/dev/null && pwd -P) || dir=$1
	pids=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "$dir/*.log" 2>/dev/null | cut -d/ -f3 | sort -u)
	if [ -n "$pids" ] && ! wait_gone $pids; then
		fail "logs of $name: every process writing them has exited"
		diag "still running after 120 s: $(echo $pids)"
	fi
	found=$(perl -e 'my ($dir, $marks) = @ARGV; my %off;
		my %head; # the first bytes at the last check: another file of the same name starts otherwise
		if (open my $m, "<", $marks) { while (<$m>) { chomp; my ($o, $hd, $f) = split /\t/, $_, 3; $off{$f} = $o; $head{$f} = $hd } }
		my ($restarts, $deaths, $losses, @rep) = (0, 0, 0);
		for my $f (sort glob("$dir/*.log")) {
			open my $h, "<", $f or next;
			read $h, my $first, 256;
			$first = unpack "H*", $first // "";
			my $o = $off{$f} // 0;
			$o = 0 unless defined $head{$f} && substr($first, 0, length $head{$f}) eq $head{$f};
			seek $h, $o, 0;
			(my $name = $f) =~ s{.*/}{};
			my $after = 0;
			while (my $l = <$h>) {
				if ($name eq "supervisor.log") {
					$restarts++ if $l =~ /supervisor: taskmanager \d+ started again \(pid \d+, restart \d+\)$/;
					$deaths++ if $l =~ /supervisor: taskmanager \d+ \(pid \d+\) (killed by signal|exited with status) \d+( \([A-Z0-9]+\))?; starting it again/;
				}
				$losses++ if $name eq "jobmanager.log" && $l =~ /jobmanager: taskmanager \d+ \(pid \d+\) lost: /;
				if ($l =~ /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer|SUMMARY: |did not let go in/) {
					push @rep, "$name: $l"; $after = 12;
				} elsif ($after > 0 && @rep < 80) {
					push @rep, "$name:   $l"; $after--;
				}
			}
			$off{$f} = tell $h;
			seek $h, 0, 0;
			read $h, $first, 256;
			$head{$f} = unpack "H*", $first // "";
		}
		open my $m, ">", $marks or die "$marks: $!";
		print $m "$off{$_}\t$head{$_}\t$_\n" for sort keys %off;
		print "$restarts $deaths $losses\n", @rep;' "$dir" "$T/.logmarks")
	counts=${found%%$'\n'*}
	found=${found#"$counts"}
	found=${found#$'\n'}
	if [ -z "$found" ]; then
		pass "logs of $name: no sanitizer report, no pool share abandoned"
	else
		fail "logs of $name: no sanitizer report, no pool share abandoned"
		local lines
		mapfile -t lines <<<"$found"
		diag "${lines[@]}"
	fi
	local what="restarts, deaths seen by the supervisor, losses seen by the jobmanager"
	if [ "$counts" = "$want $want $want" ]; then
		pass "logs of $name: $what: $want each, as the test caused"
	else
		fail "logs of $name: $what: ${counts:-?}; the test caused $want"
		local lines
		mapfile -t lines < <(grep -hE 'supervisor: taskmanager|jobmanager: taskmanager .* lost' "$dir/supervisor.log" "$dir/jobmanager.log" 2>/dev/null | sort | tail -30)
		diag "${lines[@]}"
		# and what the TaskManagers said last: why one ended that the test did not end
		mapfile -t lines < <(grep -HE ' (ERROR|WARN) ' "$dir"/taskmanager-*.log 2>/dev/null | sed 's|.*/||' | tail -12)
		diag "${lines[@]}"
	fi
}

# Another local user: the attacker of docs/operations.md "Security" (any
# other uid on the host, without the cluster secret).
# other_user_ok: can this run act as one? (needs root, setpriv and nobody)
other_user_ok() {
	[ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 && id nobody >/dev/null 2>&1 &&
		getent group nogroup >/dev/null 2>&1
}
# as_other CMD...: run CMD as nobody:nogroup with no supplementary groups
# and no capabilities. Folders it must reach need o+x (tests chmod them).
as_other() { setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all -- "$@"; }

# same_as_cluster DESC JOB IN [ARGS...]: JOB run in local mode at parallelism
# $SAME_P, then with weir run once per entry of the array SAME_MODES (weir
# run's flags, e.g. "-p 4 --spread"), through the command $SAME_RUN (default
# run_weir; a function that runs weir and sets rc, as run_weir does), each
# sorted output compared with local mode's. The job's arguments are IN, the
# output folder, then ARGS. $SAME_WHERE ends each passing line.
same_as_cluster() {
	local desc=$1 job=$2 in=$3 mode
	shift 3
	rm -rf "$T/local"
	run_weir local "$job" -q -p "${SAME_P:-2}" -- "$in" "$T/local" "$@"
	[ "$rc" -eq 0 ] || { fail "$desc: local run"; diag "$(cat "$T/err")"; return; }
	LC_ALL=C sort "$T/local"/part-* >"$T/want"
	for mode in "${SAME_MODES[@]}"; do
		rm -rf "$T/cl"
		${SAME_RUN:-run_weir} run "$job" $mode -- "$in" "$T/cl" "$@"
		if [ "$rc" -ne 0 ]; then fail "$desc ($mode): runs"; diag "$(cat "$T/err")"; continue; fi
		LC_ALL=C sort "$T/cl"/part-* >"$T/got"
		if cmp -s "$T/want" "$T/got"; then pass "$desc ($mode)${SAME_WHERE:-}: same output as local mode"
		else fail "$desc ($mode): same output as local mode"; diag "$(diff "$T/want" "$T/got" | head -5)"; fi
	done
}
