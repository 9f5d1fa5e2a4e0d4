#!/usr/bin/env bash
# t3100-windowed-wordcount: word counts per tumbling event-time window
# (examples/windowed_wordcount.c) over out-of-order input, at parallelism
# 1, 2 and 3, against a reference computed here by perl: exactly one line
# "window_end\tword\tcount" per window and word. The input keeps the job's
# out-of-orderness bound (5000 ms) and hits it exactly; timestamps fall on
# window boundaries and on their last millisecond. Malformed lines fail the
# job with exit 1 and a message quoting the line, and leave no part file.
# Random input: prints its seed; WEIR_SEED=N replays.
. "$(dirname "$0")/lib.sh"

seed=${WEIR_SEED:-$(( $(date +%s) ^ $$ ))}
echo "# seed $seed (replay with WEIR_SEED=$seed)"
BOUND=5000

# gen FILE LINES WINDOW: lines "ts<space|tab>text" in an order that keeps
# the bound: sorting by ts + u, u uniform in 0..BOUND (often exactly 0 or
# BOUND), gives every line ts >= (max of the earlier ts) - BOUND. Some
# timestamps snap to a window's start or last millisecond; some lines are
# empty, hold only a timestamp, or a timestamp with leading zeros.
gen() {
	perl -e '
		my ($seed, $file, $lines, $w, $bound) = @ARGV;
		srand($seed);
		my @v = map { join "", map { ("a".."z","0".."9")[rand 36] } 1..(1 + int rand 6) } 1..250;
		my @sep = (" ", "  ", ", ", ". ", "!", "\t", "-", "\x27", "\r");
		my ($t, @l) = (0);
		for my $i (1..$lines) {
			$t += int rand 40;
			my $ts = $t;
			if (rand() < 0.1) { # a window boundary near t
				my $b = int($t / $w) * $w - (rand() < 0.5 ? 1 : 0);
				$ts = $b if $b >= 0;
			}
			my $r = rand();
			my $u = $r < 0.15 ? 0 : $r < 0.3 ? $bound : int rand($bound + 1);
			my $text = join "", map { my $x = $v[rand @v]; $x = uc $x if rand() < 0.2; $x . $sep[rand @sep] } 1..int rand 9;
			my $tss = rand() < 0.03 ? sprintf("%06d", $ts) : $ts;
			my $line = rand() < 0.03 ? "" : rand() < 0.03 ? $tss : $tss . (rand() < 0.5 ? " " : "\t") . $text;
			push @l, [$ts + $u, $i, $line];
		}
		open my $fh, ">", $file or die;
		print $fh "$_->[2]\n" for sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @l;
		close $fh or die;' "$seed" "$1" "$2" "$3" "$BOUND" || { echo "Bail out! perl failed"; exit 255; }
}

# reference WINDOW FILES...: "end\tword\tcount" per window and word, sorted
reference() {
	local w=$1
	shift
	perl -e '
		use integer;
		my $w = shift;
		my %c;
		while (<>) {
			chomp;
			next if $_ eq "";
			/^(\d{1,18})(?:[ \t](.*))?$/s or die "bad line $_";
			my $end = ($1 / $w + 1) * $w;
			for (split /[^a-z0-9]+/, lc($2 // "")) { $c{"$end\t$_"}++ if length }
		}
		print "$_\t$c{$_}\n" for keys %c;' "$w" "$@" | LC_ALL=C sort >"$T/ref"
}

# bound_kept FILES...: the input really keeps the bound (tests the generator)
bound_kept() {
	perl -ne 'chomp; next unless /^(\d+)/; $bad++ if defined $m && $1 < $m - '"$BOUND"'; $m = $1 if !defined $m || $1 > $m; END { exit($bad ? 1 : 0) }' "$@"
}

run_case() { # run_case DESC INPUT WINDOW ARGS...
	local desc=$1 input=$2 w=$3 out="$T/out.$tap_n"
	shift 3
	run_weir local "$JOBS/windowed_wordcount.so" -q "$@" -- "$input" "$out" "$w"
	if [ "$rc" -ne 0 ]; then
		fail "$desc: runs"; diag "exit $rc" "$(cat "$T/err")"; return
	fi
	LC_ALL=C sort "$out"/part-* >"$T/got"
	if cmp -s "$T/got" "$T/ref"; then pass "$desc: output equals the reference ($(wc -l <"$T/ref") lines)"; else
		fail "$desc: output equals the reference"
		diag "$(diff "$T/ref" "$T/got" | head -8)" "$(wc -l <"$T/ref") lines expected, $(wc -l <"$T/got") got"
	fi
	if grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' "$T/err"; then
		fail "$desc: no sanitizer report"; diag "$(cat "$T/err")"; fi
}

gen "$T/in.txt" 30000 1000
check "the generated input keeps the ${BOUND} ms bound" bound_kept "$T/in.txt"
reference 1000 "$T/in.txt"
for p in 1 2 3; do
	run_case "1 s windows, parallelism $p" "$T/in.txt" 1000 -p "$p"
done
run_case "1 s windows, p=3, 4 KiB segments, 1 credit, batch 1" "$T/in.txt" 1000 -p 3 \
	--segment-size 4096 --credits 1 --floating 0 --batch 1
reference 60000 "$T/in.txt"
for p in 1 2 3; do
	run_case "60 s windows, parallelism $p" "$T/in.txt" 60000 -p "$p"
done
reference 7 "$T/in.txt"
run_case "7 ms windows (shorter than the bound), parallelism 2" "$T/in.txt" 7 -p 2

# A folder: one bounded sequence cut into 3 files, read in name order.
mkdir "$T/dir"
split -l 10000 -d "$T/in.txt" "$T/dir/part"
reference 1000 "$T"/dir/part*
run_case "folder of 3 files, 1 s windows, parallelism 3" "$T/dir" 1000 -p 3

# The default window is 60 s.
reference 60000 "$T/in.txt"
run_weir local "$JOBS/windowed_wordcount.so" -q -p 2 -- "$T/in.txt" "$T/out.default"
LC_ALL=C sort "$T"/out.default/part-* >"$T/got" 2>/dev/null
check "no WINDOW_MS: 60 s windows (exit $rc)" cmp -s "$T/got" "$T/ref"

# Malformed lines: exit 1, the line quoted, no part file left.
bad_case() { # bad_case DESC LINE PATTERN
	local desc=$1 line=$2 pat=$3 out="$T/bad.$tap_n"
	{ head -2000 "$T/in.txt"; printf '%s\n' "$line"; sed -n '2001,4000p' "$T/in.txt"; } >"$T/bad.txt"
	expect 1 "operator 'parse' \\(subtask [0-9]+/3\\): bad line \"$pat" "malformed: $desc" -- \
		local "$JOBS/windowed_wordcount.so" -q -p 3 -- "$T/bad.txt" "$out" 1000
	n=$(find "$out" -name 'part-*' 2>/dev/null | wc -l)
	check "malformed: $desc: no part file ($n)" test "$n" -eq 0
}
bad_case "no timestamp" "hello world" 'hello world": expected TIMESTAMP_MS'
bad_case "letters after the digits" "12ab hello" '12ab hello": expected a space or tab'
bad_case "a sign" "-5 hello" '-5 hello": expected TIMESTAMP_MS'
bad_case "19 digits" "1234567890123456789 x" '1234567890123456789 x": the timestamp has more than 18 digits'
bad_case "leading space" " 12 hello" ' 12 hello": expected TIMESTAMP_MS'
bad_case "a control byte, quoted as \\xNN" $'12\x01 x' '12\\x01 x": expected a space or tab'

# A line far beyond the bound, read after its window fired, fails the job.
# (--batch 1: the watermark of the first line leaves before the second.)
printf '100000 a\n1 b\n' >"$T/late.txt"
expect 1 "operator 'late' \\(subtask 1/1\\): late record: word 'b' at 1 ms" 'a late record fails the job' -- \
	local "$JOBS/windowed_wordcount.so" -q -p 1 --batch 1 -- "$T/late.txt" "$T/o.late" 10
n=$(find "$T/o.late" -name 'part-*' 2>/dev/null | wc -l)
check "late record: no part file ($n)" test "$n" -eq 0

expect 1 "WINDOW_MS: '0' is not a number" 'WINDOW_MS 0 is refused' -- \
	local "$JOBS/windowed_wordcount.so" -- "$T/in.txt" "$T/o.w0" 0
expect 1 "usage: windowed_wordcount.so" 'a missing OUTDIR is refused' -- \
	local "$JOBS/windowed_wordcount.so" -- "$T/in.txt"
done_testing
