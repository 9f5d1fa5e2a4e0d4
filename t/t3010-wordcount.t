#!/usr/bin/env bash
# t3010-wordcount: wordcount at parallelism 1..4, over a file and over a
# folder, with roomy and with starved buffers, against a reference computed
# here by perl: for every word with n occurrences the output holds exactly
# the lines "word\t1" .. "word\tn", and within one part file a word's
# counts rise. Random input: prints its seed; WEIR_SEED=N replays.
. "$(dirname "$0")/lib.sh"

seed=${WEIR_SEED:-$(( $(date +%s) ^ $$ ))}
echo "# seed $seed (replay with WEIR_SEED=$seed)"

# Input: words from a small vocabulary with mixed case and punctuation,
# empty lines, and a long line.
perl -e '
	srand($ARGV[0]);
	my @v = map { join "", map { ("a".."z","0".."9")[rand 36] } 1..(1 + int rand 8) } 1..700;
	my @sep = (" ", "  ", ", ", ". ", "!", "\t", "-", "\x27");
	for my $f (0..2) {
		open my $fh, ">", "$ARGV[1]/part$f.txt" or die;
		for my $l (1..3000) {
			if (rand() < 0.05) { print $fh "\n"; next }
			my $n = $l == 1500 ? 3000 : int rand 14;
			print $fh join("", map { my $w = $v[rand @v]; $w = uc $w if rand() < 0.2; $w . $sep[rand @sep] } 1..$n), "\n";
		}
		close $fh;
	}' "$seed" "$T" || { echo "Bail out! perl failed"; exit 255; }
mkdir "$T/dir" && mv "$T"/part*.txt "$T/dir/"
cat "$T/dir/part0.txt" >"$T/one.txt"

# reference: for each word, lines word\t1..n, sorted
reference() {
	perl -ne 'for (split /[^a-z0-9]+/, lc) { next unless length; $c{$_}++; print "$_\t$c{$_}\n" }' "$@" |
		LC_ALL=C sort >"$T/ref"
}

# rising: within each part file, counts of a word strictly rise by one
rising() {
	perl -ne 'BEGIN { $bad = 0 } chomp; my ($w, $n) = split /\t/; $bad++ if defined $l{$ARGV}{$w} && $n <= $l{$ARGV}{$w}; $l{$ARGV}{$w} = $n; END { exit($bad ? 1 : 0) }' "$@"
}

run_case() { # run_case DESC INPUT ARGS...
	local desc=$1 input=$2 out="$T/out.$tap_n"
	shift 2
	run_weir local "$JOBS/wordcount.so" -q "$@" -- "$input" "$out"
	if [ "$rc" -ne 0 ]; then
		fail "$desc: runs"; diag "$(cat "$T/err")"; return
	fi
	LC_ALL=C sort "$out"/part-* >"$T/got"
	if cmp -s "$T/got" "$T/ref"; then pass "$desc: output equals the reference"; else
		fail "$desc: output equals the reference"; diag "$(diff "$T/ref" "$T/got" | head -5)"; fi
	check "$desc: counts rise within each part file" rising "$out"/part-*
}

reference "$T/one.txt"
for p in 1 2 3 4; do
	run_case "one file, parallelism $p" "$T/one.txt" -p "$p"
done
run_case "one file, p=3, 4 KiB segments, 1 credit, batch 1" "$T/one.txt" -p 3 --segment-size 4096 --credits 1 --floating 0 --batch 1
reference "$T"/dir/part0.txt "$T"/dir/part1.txt "$T"/dir/part2.txt
for p in 1 2 4; do
	run_case "folder of 3 files, parallelism $p" "$T/dir" -p "$p"
done
run_case "folder, p=2 on one worker" "$T/dir" -p 2 --workers 1
done_testing
