#!/usr/bin/env bash
# t3600-split-source: a source of the test's own on the connector API
# (t/jobs/splitjob.c: partitions as splits, a position per split) in
# exactly-once checkpoints: its output (every record once, windows per
# partition in event time, nothing late) is the one computed here, after
# kill -9 at checkpoint steps and a run from the latest checkpoint, at the
# same parallelism and at others (its splits go to the subtasks that own
# them now, with their positions), and with a split found while the job
# runs. Watermarks per split leave no record late where one watermark over
# the whole stream does (the partitions move through event time at
# different speeds): that is what per-split watermarks are for.
. "$(dirname "$0")/lib.sh"

NPART=3 COUNT=2000 RATE=8000

# want NPART COUNT EXTRA: every record, and the windows' counts (tumbling 50
# over event time j * (k + 1), + 100000 for the extra split); nothing late
want() {
	perl -e 'my ($np, $n, $extra) = @ARGV; my %w;
		for my $k (0 .. $np - 1 + $extra) { for my $j (0 .. $n - 1) {
			my $ts = $j * ($k + 1) + ($k == $np ? 100000 : 0);
			print "p $k $j\n"; $w{$k}{int($ts / 50) * 50}++ } }
		for my $k (keys %w) { print "w $k $_ $w{$k}{$_}\n" for keys %{$w{$k}} }' "$@" | LC_ALL=C sort
}
out() { cat "$1"/records/part-* "$1"/windows/part-* "$1"/late/part-* 2>/dev/null | LC_ALL=C sort; }
# same OUT DESC: OUT's committed output is $T/want
same() {
	out "$1" >"$T/got"
	local t
	t=$(tally "$T/want" "$T/got")
	if [ "$t" = "lost=0 dup=0 unexpected=0" ]; then pass "$2: $t"; else fail "$2: $t"; fi
}
job() { "$WEIR" local "$TJOBS/splitjob.so" -q "$@"; }

want $NPART $COUNT 0 >"$T/want"
check "the expected output ($(wc -l <"$T/want") lines)" test "$(wc -l <"$T/want")" -gt $((NPART * COUNT))

job -p 2 -- $NPART $COUNT $RATE "$T/o" 2>"$T/err"
same "$T/o" "no checkpoints, -p 2: every record once, the windows' counts, nothing late (rc $?)"

rm -rf "$T/o"
job -p 2 -- $NPART $COUNT $RATE "$T/o" 0 1 2>"$T/err"
late=$(cat "$T"/o/late/part-* 2>/dev/null | wc -l)
check "one watermark over all splits instead: records come late ($late), which per-split watermarks avoid" \
	test "$late" -gt 0

rm -rf "$T/o" "$T/ck"
job -p 2 --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $NPART $COUNT $RATE "$T/o" 2>"$T/err"
same "$T/o" "checkpoints every 20 ms: the same output (rc $?)"
check 'checkpoints completed during the run' grep -q 'checkpoint 3 complete' "$T/err"

# kill -9 at a step, then a run from the latest checkpoint at parallelism P
# (the source's two subtasks pass the barrier twice a checkpoint)
crash() {
	local fp=$1 p=$2 extra=$3 desc=$4
	rm -rf "$T/ck" "$T/o"
	rc=0; WEIR_FAILPOINT=$fp job -p 2 --checkpoint-interval 20 --checkpoint-dir "$T/ck" \
		-- $NPART $COUNT $RATE "$T/o" $extra 2>"$T/err" || rc=$?
	base=$(ls -d "$T"/ck/job-* 2>/dev/null | head -1)
	rc2=0; job -p "$p" --checkpoint-interval 20 --checkpoint-dir "$T/ck" --from-checkpoint "$base" \
		-- $NPART $COUNT $RATE "$T/o" $extra 2>"$T/err2" || rc2=$?
	if [ "$rc" -eq 0 ]; then
		skip "$desc: the job ended before the failpoint's step came (a loaded machine)" 1
		check "$desc: a run from its last checkpoint finishes (rc $rc2)" test "$rc2" -eq 0
	else
		check "$desc: the crash (rc $rc), then a run from its checkpoint finishes (rc $rc2)" \
			test "$rc" -gt 128 -a "$rc2" -eq 0
		[ "$rc2" -eq 0 ] || diag "$(tail -3 "$T/err2")"
	fi
	same "$T/o" "$desc: exactly once across the crash"
}

crash checkpoint.barrier:9:kill-self 2 "" 'kill -9 at a barrier, restored at -p 2'
crash sink.committed:8:kill-self 2 "" 'kill -9 after a commit, restored at -p 2'
crash checkpoint.barrier:9:kill-self 3 "" 'restored at -p 3 (splits move to their new owners)'
crash checkpoint.barrier:9:kill-self 1 "" 'restored at -p 1 (one subtask takes every split)'
# p1 is alone on subtask 1 and finishes at about 250 ms, subtask 0's two
# at about 500: the 21st checkpoint (about 420 ms) holds a finished split
crash checkpoint.barrier:41:kill-self 1 "" 'a split finished before the checkpoint, restored at -p 1'

want $NPART $COUNT 1 >"$T/want"
rm -rf "$T/o"
job -p 2 -- $NPART $COUNT $RATE "$T/o" 3 2>"$T/err"
same "$T/o" "a split found while the job runs: read once, from its beginning (rc $?)"
crash checkpoint.barrier:9:kill-self 3 3 'a split found while the job runs, kill -9, restored at -p 3'

done_testing
