#!/usr/bin/env bash
# t3720-nexmark: the Nexmark generator (bench/nexmark.h) and queries
# (bench/nexmark_job.c). The generator's java.util.Random gives Java's
# values for known seeds, and its events come in the proportion 1:3:46.
# The queries run on a small input at -p 1 and 2 and are compared with
# references computed here by perl from the generator's events as text
# (weir-bench-nexmark dump): q1, q2, q3, q5, q7, q8 and q11 line by line, q0/q1/q2 by
# checksum against the plain loops, q12 (wall-clock windows) by its total.
. "$(dirname "$0")/lib.sh"

JOB=$JOBS/nexmark.so
NX=$WEIR_BUILD/bin/weir-bench-nexmark
N=60000 EPS=1000 # 60 s of event time

# java.util.Random: values Java prints for these seeds
"$NX" random 0 >"$T/r0"
check "Random(0).nextInt() = -1155484576" test "$(sed -n 1p "$T/r0")" = -1155484576
check "Random(0).nextInt(10) = 0" test "$(sed -n 2p "$T/r0")" = 0
check "Random(0).nextLong() = -4962768465676381896" test "$(sed -n 3p "$T/r0")" = -4962768465676381896
check "Random(0).nextDouble() = 0.730967787376657" test "$(sed -n 4p "$T/r0")" = 0.730967787376657
check "Random(42).nextInt() = -1170105035" test "$("$NX" random 42 | sed -n 1p)" = -1170105035

"$NX" dump $N $EPS >"$T/events"
check "people, auctions, bids 1:3:46" \
	test "$(cut -c1 "$T/events" | sort | uniq -c | awk '{ printf "%s%s ", $2, $1 }')" = "A3600 B55200 P1200 "

# job OUTPUT: the lines of every sink subtask, sorted
run_q() { "$WEIR" local "$JOB" -q -p "$1" -- "$2" $N 0 $EPS "$3" 2>"$T/err"; }
xsum() { # the job's count lines folded: "N HEX"
	perl -ne '($n, $x) = ($n + $1, ($x // 0) ^ hex $2) if /^nexmark results (\d+) checksum ([0-9a-f]+)/;
		END { printf "%d %016x\n", $n, $x }'
}
for q in q0 q1 q2; do
	want=$("$NX" $q $N $EPS | xsum)
	for p in 1 2; do
		check "$q -p $p: results and checksum as the plain loop's ($want)" test "$(run_q $p $q count | xsum)" = "$want"
	done
done

perl -ne 'print "$1 $2 ", int($3 * 908 / 1000), " $4\n" if /^B (\d+) (\d+) (\d+) (\d+)/' "$T/events" | LC_ALL=C sort >"$T/want.q1"
perl -ne 'print "$1 $3\n" if /^B (\d+) (\d+) (\d+)/ && $1 % 123 == 0' "$T/events" | LC_ALL=C sort >"$T/want.q2"
# q5: per window [s, s + 10 s) sliding by 2 s, the auctions with the most bids
perl -ne '
	next unless /^B (\d+) \d+ \d+ (\d+)/; my ($a, $ts) = ($1, $2);
	use integer;
	my $last = $ts - $ts % 2000;
	for (my $s = $last; $s > $ts - 10000; $s -= 2000) { $c{$s}{$a}++ }
	END { for my $s (keys %c) { my $m = 0; $m < $_ and $m = $_ for values %{$c{$s}};
		$c{$s}{$_} == $m and print "$_ $m $s ", $s + 10000, "\n" for keys %{$c{$s}} } }' "$T/events" |
	LC_ALL=C sort >"$T/want.q5"
# q11: sessions per bidder, gap 10 s: a bid 10 s or more after the last one starts a new one
perl -ne '
	next unless /^B \d+ (\d+) \d+ (\d+)/; push @{$b{$1}}, $2;
	END { for my $k (keys %b) { my @t = sort { $a <=> $b } @{$b{$k}}; my ($s, $l, $n) = ($t[0], $t[0], 0);
		for my $t (@t) { if ($t >= $l + 10000) { print "$k $n $s ", $l + 10000, "\n"; ($s, $n) = ($t, 0) } $l = $t; $n++ }
		print "$k $n $s ", $l + 10000, "\n" } }' "$T/events" | LC_ALL=C sort >"$T/want.q11"
# q3: auctions of category 10 whose seller lives in OR, ID or CA, with the seller
perl -ne '
	if (/^P (\d+) \d+ (.*) \d+$/) { my ($id, @f) = ($1, split /\|/, $2); $p{$id} = "$f[0]|$f[3]|$f[4]" if $f[4] =~ /^(OR|ID|CA)$/ }
	push @a, [$1, $2] if /^A (\d+) \d+ (\d+) 10 /;
	END { exists $p{$_->[1]} and print "$_->[0] $_->[1] $p{$_->[1]}\n" for @a }' "$T/events" | LC_ALL=C sort >"$T/want.q3"
# q7: per 10 s window, the bids with its highest price
perl -ne '
	next unless /^B (\d+) (\d+) (\d+) (\d+)/; use integer; my $w = $4 / 10000;
	if (!defined $m{$w} || $3 > $m{$w}) { $m{$w} = $3; $b{$w} = [] }
	push @{$b{$w}}, "$1 $2 $3 $4 0" if $3 == $m{$w};
	END { print "$_\n" for map { @{$b{$_}} } keys %b }' "$T/events" | LC_ALL=C sort >"$T/want.q7"
# q8: people with an auction of theirs in the 10 s window they registered in
perl -ne '
	use integer;
	if (/^P (\d+) (\d+) ([^|]*)\|/) { $p{$1} = [$3, $2 - $2 % 10000] }
	$s{"$2 " . ($1 - $1 % 10000)} = 1 if /^A \d+ (\d+) (\d+) /;
	END { $s{"$_ $p{$_}[1]"} and print "$_ $p{$_}[0] $p{$_}[1]\n" for keys %p }' "$T/events" | LC_ALL=C sort >"$T/want.q8"
# q4: per category, the auctions with a winning bid (the highest within [opening, expiry),
# at least the reserve), the sum of those prices and its average in whole cents
perl -ne '
	$au{$1} = [$2, $3, $4, $5] if /^A (\d+) (\d+) \d+ (\d+) \d+ (\d+) (\d+) /; # [opening, category, reserve, expiry]
	push @b, [$1, $2, $3] if /^B (\d+) \d+ (\d+) (\d+)/;
	END {
		for (@b) { my ($id, $p, $t) = @$_; my $a = $au{$id} or next;
			next if $t < $a->[0] || $t >= $a->[3] || $p < $a->[2]; $w{$id} = $p if !defined $w{$id} || $p > $w{$id} }
		for (keys %w) { my $c = $au{$_}[1]; $n{$c}++; $s{$c} += $w{$_} }
		use integer; print "$_ $n{$_} $s{$_} ", $s{$_} / $n{$_}, "\n" for keys %n }' "$T/events" | LC_ALL=C sort >"$T/want.q4"
for p in 1 2; do
	# updates: the last line of each category holds
	run_q $p q4 print | perl -ane '$l{$F[0]} = $_; END { print values %l }' | LC_ALL=C sort >"$T/got"
	check "q4 -p $p: each category's final count, sum and average as the reference" cmp -s "$T/want.q4" "$T/got"
done
check "the reference for q4 has the 5 categories" test "$(wc -l <"$T/want.q4")" -eq 5
for q in q1 q2 q3 q5 q7 q8 q11; do
	check "the reference for $q is not empty" test -s "$T/want.$q"
	for p in 1 2; do
		run_q $p $q print | LC_ALL=C sort >"$T/got"
		check "$q -p $p: every result as the reference ($(wc -l <"$T/got") lines)" cmp -s "$T/want.$q" "$T/got"
	done
done
check "q12: the per-bidder counts of its wall-clock windows add up to every bid" \
	test "$(run_q 2 q12 print | awk '{ s += $2 } END { print s }')" = 55200

"$WEIR" local "$JOB" -q -- q6 10 0 1 count >"$T/out" 2>"$T/err"
check "an unknown query: exit 1 ($?)" test $? -eq 1
check "  the usage named" grep -q "usage: nexmark.so -- q0|q1|q2|q3|q4|q5|q7|q8|q11|q12 COUNT" "$T/err"
"$NX" q0 10 0 >"$T/out" 2>"$T/err"
check "the tool refuses an event rate of 0 ($?)" grep -q "usage: weir-bench-nexmark" "$T/err"

done_testing
