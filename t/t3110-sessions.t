#!/usr/bin/env bash
# t3110-sessions: per-user event-time session windows (examples/sessions.c)
# at parallelism 1, 2 and 3, against a reference computed here by perl:
# per user, events sorted by time; a pause of more than GAP ms starts a new
# session; one line "user\tfirst_ts\tlast_ts+GAP\tevents" per session.
# Out-of-order input keeps the job's bound (10000 ms) and hits it exactly,
# with gaps shorter and longer than the bound. A pause of exactly GAP keeps
# a session (windows that touch merge); that is checked on input sorted by
# time, where the result cannot depend on when watermarks arrive (see
# sessions.c). Malformed lines fail the job with exit 1 and a message
# quoting the line, and leave no part file.
# Random input: prints its seed; WEIR_SEED=N replays.
. "$(dirname "$0")/lib.sh"

seed=${WEIR_SEED:-$(( $(date +%s) ^ $$ ))}
echo "# seed $seed (replay with WEIR_SEED=$seed)"
BOUND=10000

# gen FILE GAP MODE: lines "ts,user,event" for 40 users, sessions of 1..8
# events. MODE "shuffled": pauses within a session 0 .. GAP-1, between
# sessions GAP+1 .. 3*GAP+1 (often exactly GAP-1 and GAP+1), so never
# exactly GAP (see sessions.c on why that matters), lines ordered by
# ts + u, u uniform in 0..BOUND (often exactly 0 or BOUND), which gives
# every line ts >= (max of the earlier ts) - BOUND. MODE "sorted": pauses
# within a session 0 .. GAP (often exactly GAP), lines sorted by time.
# Some lines are empty; some timestamps have leading zeros; events may be
# empty or hold commas.
gen() {
	perl -e '
		my ($seed, $file, $gap, $mode, $bound) = @ARGV;
		srand($seed);
		my @users = ((map { "u$_" } 1..34), "Anna Lee", "x.y-z", "user/7", "\xc3\xbc\xc3\xb1i", "q\"uote", "semi;colon");
		my @ev = ("click", "view", "buy,now", "", "a,b,c", "log in");
		my (@l, $i);
		for my $u (@users) {
			my $t = int rand 20000;
			while ($t < 400 * $gap + 100000) {
				my $n = 1 + int rand 8;
				for my $k (1..$n) {
					push @l, [$t, ++$i, $u];
					last if $k == $n;
					my $r = rand();
					if ($mode eq "sorted") {
						$t += $r < 0.3 ? $gap : $r < 0.4 ? 0 : int rand($gap + 1);
					} else {
						$t += $r < 0.2 ? $gap - 1 : $r < 0.3 ? 0 : int rand $gap;
					}
				}
				$t += $gap + 1 + (rand() < 0.2 ? 0 : int rand(2 * $gap));
			}
		}
		for (@l) {
			my $r = rand();
			$_->[3] = $mode eq "sorted" ? 0 : $r < 0.15 ? 0 : $r < 0.3 ? $bound : int rand($bound + 1);
		}
		open my $fh, ">", $file or die;
		for (sort { $a->[0] + $a->[3] <=> $b->[0] + $b->[3] || $a->[1] <=> $b->[1] } @l) {
			print $fh "\n" if rand() < 0.01;
			my $ts = rand() < 0.03 ? sprintf("%07d", $_->[0]) : $_->[0];
			print $fh "$ts,$_->[2],$ev[rand @ev]\n";
		}
		close $fh or die;' "$seed" "$1" "$2" "$3" "$BOUND" || { echo "Bail out! perl failed"; exit 255; }
}

# reference GAP FILES...: one line per session, sorted
reference() {
	local gap=$1
	shift
	perl -e '
		my $gap = shift;
		my %t;
		while (<>) {
			chomp;
			next if $_ eq "";
			/^(\d{1,18}),([^,\x00-\x1f\x7f]{1,256}),/ or die "bad line $_";
			push @{$t{$2}}, $1 + 0;
		}
		for my $u (keys %t) {
			my @s = sort { $a <=> $b } @{$t{$u}};
			my ($start, $last, $n) = ($s[0], $s[0], 0);
			for (@s) {
				if ($_ - $last > $gap) { print "$u\t$start\t", $last + $gap, "\t$n\n"; ($start, $n) = ($_, 0) }
				$last = $_;
				$n++;
			}
			print "$u\t$start\t", $last + $gap, "\t$n\n";
		}' "$gap" "$@" | LC_ALL=C sort >"$T/ref"
}

# bound_kept FILE: the input really keeps the bound (tests the generator)
bound_kept() {
	perl -ne 'chomp; next unless /^(\d+)/; $bad++ if defined $m && $1 < $m - '"$BOUND"'; $m = $1 if !defined $m || $1 > $m; END { exit($bad ? 1 : 0) }' "$@"
}

run_case() { # run_case DESC INPUT GAP ARGS...
	local desc=$1 input=$2 gap=$3 out="$T/out.$tap_n"
	shift 3
	run_weir local "$JOBS/sessions.so" -q "$@" -- "$input" "$out" "$gap"
	if [ "$rc" -ne 0 ]; then
		fail "$desc: runs"; diag "exit $rc" "$(cat "$T/err")"; return
	fi
	LC_ALL=C sort "$out"/part-* >"$T/got"
	if cmp -s "$T/got" "$T/ref"; then pass "$desc: output equals the reference ($(wc -l <"$T/ref") sessions)"; else
		fail "$desc: output equals the reference"
		diag "$(diff "$T/ref" "$T/got" | head -8)" "$(wc -l <"$T/ref") lines expected, $(wc -l <"$T/got") got"
	fi
	if grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' "$T/err"; then
		fail "$desc: no sanitizer report"; diag "$(cat "$T/err")"; fi
}

# Gap shorter than the bound: sessions close and merge while lines of the
# same span still arrive out of order.
gen "$T/short.txt" 3000 shuffled
check "the generated input keeps the ${BOUND} ms bound" bound_kept "$T/short.txt"
reference 3000 "$T/short.txt"
for p in 1 2 3; do
	run_case "gap 3 s, out of order, parallelism $p" "$T/short.txt" 3000 -p "$p"
done
run_case "gap 3 s, p=3, 4 KiB segments, 1 credit, batch 1" "$T/short.txt" 3000 -p 3 \
	--segment-size 4096 --credits 1 --floating 0 --batch 1

# Gap longer than the bound.
gen "$T/long.txt" 25000 shuffled
reference 25000 "$T/long.txt"
for p in 1 2 3; do
	run_case "gap 25 s, out of order, parallelism $p" "$T/long.txt" 25000 -p "$p"
done

# A pause of exactly GAP keeps the session (sorted input).
gen "$T/sorted.txt" 4000 sorted
reference 4000 "$T/sorted.txt"
for p in 1 2 3; do
	run_case "gap 4 s, pauses of exactly the gap, sorted, parallelism $p" "$T/sorted.txt" 4000 -p "$p"
done

# A folder: one bounded sequence cut into 3 files, read in name order.
mkdir "$T/dir"
split -n l/3 -d "$T/short.txt" "$T/dir/part"
reference 3000 "$T"/dir/part*
run_case "folder of 3 files, gap 3 s, parallelism 2" "$T/dir" 3000 -p 2

# A tiny case spelled out: sessions [0, 10), [20, 40) (20 and 30 are
# exactly the gap apart), [100, 110); user b's late-arriving 5 (within the
# bound) bridges 0 and 15 into one session [0, 25).
printf '%s\n' 0,a,x 20,a,y 30,a,z 100,a,w 0,b,1 15,b,2 5,b,3 >"$T/tiny.txt"
printf 'a\t0\t10\t1\na\t100\t110\t1\na\t20\t40\t2\nb\t0\t25\t3\n' >"$T/ref"
run_case "tiny input, gap 10, parallelism 1" "$T/tiny.txt" 10 -p 1

# Malformed lines: exit 1, the line quoted, no part file left.
bad_case() { # bad_case DESC LINE PATTERN
	local desc=$1 line=$2 pat=$3 out="$T/bad.$tap_n"
	{ head -3000 "$T/short.txt"; printf '%s\n' "$line"; sed -n '3001,6000p' "$T/short.txt"; } >"$T/bad.txt"
	expect 1 "operator 'parse' \\(subtask [0-9]+/3\\): bad line \"$pat" "malformed: $desc" -- \
		local "$JOBS/sessions.so" -q -p 3 -- "$T/bad.txt" "$out" 3000
	n=$(find "$out" -name 'part-*' 2>/dev/null | wc -l)
	check "malformed: $desc: no part file ($n)" test "$n" -eq 0
}
bad_case "letters in the timestamp" "12x,alice,click" '12x,alice,click": expected a comma after the timestamp'
bad_case "no timestamp" "alice,click" 'alice,click": expected TIMESTAMP'
bad_case "a sign" "-5,alice,click" '-5,alice,click": expected TIMESTAMP'
bad_case "empty user" "12,,click" '12,,click": USER is empty'
bad_case "no event field" "12,alice" '12,alice": expected a comma after USER'
bad_case "19 digits" "1234567890123456789,a,b" '1234567890123456789,a,b": the timestamp has more than 18 digits'
bad_case "a tab in the user, quoted as \\xNN" $'12,al\tice,x' '12,al\\x09ice,x": a control character in USER'
bad_case "only spaces" "   " '   ": expected TIMESTAMP'
long=12$(printf 'x%.0s' {1..100})
bad_case "a long line, cut at 60 bytes" "$long" "12x{58}\\.\\.\\.\": expected a comma after the timestamp"

# An event far beyond the bound, read after its session was emitted, fails
# the job. (--batch 1: the watermark of the first line leaves before the
# second.)
printf '100000,a,x\n1,a,y\n' >"$T/late.txt"
expect 1 "operator 'late' \\(subtask 1/1\\): late record: user 'a' at 1 ms" 'a late record fails the job' -- \
	local "$JOBS/sessions.so" -q -p 1 --batch 1 -- "$T/late.txt" "$T/o.late" 10
n=$(find "$T/o.late" -name 'part-*' 2>/dev/null | wc -l)
check "late record: no part file ($n)" test "$n" -eq 0

expect 1 "GAP_MS: '0' is not a number" 'GAP_MS 0 is refused' -- local "$JOBS/sessions.so" -- "$T/tiny.txt" "$T/o.g0" 0
expect 1 "GAP_MS: 'x' is not a number" 'GAP_MS x is refused' -- local "$JOBS/sessions.so" -- "$T/tiny.txt" "$T/o.gx" x
expect 1 "usage: sessions.so -- INPUT OUTDIR GAP_MS" 'a missing GAP_MS is refused' -- \
	local "$JOBS/sessions.so" -- "$T/tiny.txt" "$T/o.g"
done_testing
