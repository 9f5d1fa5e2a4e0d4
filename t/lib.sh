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
