#!/usr/bin/env bash
# t3400-checkpoints: exactly-once through checkpoints in local mode. A
# keyed job with windows (t/jobs/ckjob.c) runs with a checkpoint every 20
# ms while a failpoint fails or crashes it at one exact step of the
# protocol; after the in-process restart, or a new run with
# --from-checkpoint after a crash, its committed output must equal a
# fault-free run's, line for line: nothing lost, nothing doubled (judged by
# tally, not by eye). Damaged checkpoint files of every kind are detected
# and the previous checkpoint used; when all are damaged the job refuses to
# start. A failed fsync fails that checkpoint only; an unwritable
# checkpoint folder fails checkpoints, not the job. At-least-once mode
# loses nothing (its duplicates are counted). Randomized offsets print
# their seed.
. "$(dirname "$0")/lib.sh"

COUNT=20000 RATE=40000 # half a second a run, whatever the machine: many checkpoints
job() { "$WEIR" local "$TJOBS/ckjob.so" -q -p 2 "$@"; }

job -- $COUNT $RATE "$T/ref" 2>"$T/err" || { fail "reference run"; diag "$(cat "$T/err")"; }
ck_output "$T/ref" >"$T/want"
n=$(wc -l <"$T/want")
check "the reference run has output ($n lines)" test "$n" -gt $COUNT


# a fault-free checkpointed run
rm -rf "$T/ck"
job --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2>"$T/err"
exact "$T/o" "with checkpoints every 20 ms, the same output (rc $?)"
check 'checkpoints completed during the run' grep -q 'checkpoint 3 complete' "$T/err"
kept=$(find "$T/ck" -name _metadata | wc -l)
check "three complete checkpoints are retained ($kept)" test "$kept" -eq 3
check 'no temporary file is left' test -z "$(find "$T/ck" -name '*.tmp' -o -name '*.pending')"

# failures inside the process: the job restarts from its latest checkpoint
# (counts: per checkpoint, 2 sources pass checkpoint.barrier, 6 subtasks (and
# the short branch once each, at its end)
# snapshot and write, 4 sink subtasks pre-commit: these land on the 3rd to 5th)
for fp in checkpoint.barrier:7 checkpoint.snapshot:23 sink.precommit:17 sink.commit:9 sink.committed:6 \
	checkpoint.snapshot:23:error,recovery.restore:1; do
	spec="$fp:error"
	rm -rf "$T/ck" "$T/o"
	rc=0; WEIR_FAILPOINT=$spec job --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2>"$T/err" || rc=$?
	restarts=$(grep -c 'restart [0-9]* of' "$T/err")
	check "failpoint $spec: the job fails, restarts ($restarts) and finishes (rc $rc)" test "$rc" -eq 0 -a "$restarts" -ge 1
	exact "$T/o" "failpoint $spec: exactly once after the restart"
done
check 'a restore that fails once is tried again' grep -q 'restart 2 of' "$T/err"

# a failed fsync (or write) of a snapshot fails that checkpoint, never completes it
rm -rf "$T/ck" "$T/o"
rc=0; WEIR_FAILPOINT=checkpoint.write:15:error job --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2>"$T/err" || rc=$?
n=$(grep -o 'checkpoint [0-9]* aborted: fsync' "$T/err" | head -1)
check "a snapshot whose fsync fails aborts its checkpoint ($n)" test -n "$n"
id=${n#checkpoint }; id=${id%% *}
check "checkpoint ${id:-?} never completes" bash -c "! grep -q 'checkpoint ${id:-x} complete' '$T/err' && [ ! -e '$T/ck/'*'/chk-${id:-x}/_metadata' ]"
check 'the next one completes' grep -q "checkpoint $((${id:-0} + 1)) complete" "$T/err"
exact "$T/o" "an aborted checkpoint changes nothing in the output (rc $rc)"

# a checkpoint complete on disk but never announced stays usable, and its
# output is published with the next one's
rm -rf "$T/ck" "$T/o"
rc=0; WEIR_FAILPOINT=checkpoint.complete:3:error job --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2>"$T/err" || rc=$?
check 'a checkpoint complete but not announced is said so' grep -q 'checkpoint 3 complete but not announced' "$T/err"
exact "$T/o" "and the output is still exact (rc $rc)"
# retention waits for an announcement: with one checkpoint retained, the
# unannounced 3 does not remove 2 (a restore may need it if 3 is damaged);
# the crash comes as checkpoint 4's metadata is written, before its rename
rm -rf "$T/ck" "$T/o"
rc=0; WEIR_FAILPOINT=checkpoint.complete:3:error,checkpoint.metadata:4:kill-self \
	job --checkpoint-interval 20 --checkpoint-retain 1 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2>"$T/err" || rc=$?
if [ "$rc" -eq 0 ]; then
	skip "the job ended before checkpoint 4 (a loaded machine)" 1
else
	kept=$(cd "$T"/ck/job-* && ls -d chk-*/_metadata 2>/dev/null | tr '\n' ' ')
	check "no retention after an unannounced checkpoint: 2 and 3 kept (rc $rc: $kept)" test "$kept" = "chk-2/_metadata chk-3/_metadata "
fi

# checkpoints that time out (1 ms) while subtasks align them: the aborted
# alignment releases its inputs, and nothing is lost or doubled
rm -rf "$T/ck" "$T/o"
rc=0; job --checkpoint-interval 5 --checkpoint-timeout 1 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2>"$T/err" || rc=$?
n=$(grep -c 'aborted: timed out' "$T/err")
check "checkpoints time out ($n)" test "$n" -gt 0
exact "$T/o" "aborted alignments lose and repeat nothing (rc $rc)"

# a checkpoint folder that cannot be made is refused before the job
# starts, naming it (checkpoint/store.h: weir_ckpt_prepare)
: >"$T/notadir"
rc=0; job --checkpoint-interval 20 --checkpoint-dir "$T/notadir" -- $COUNT $RATE "$T/o2" 2>"$T/err" || rc=$?
check "a checkpoint folder that cannot be made: refused (rc $rc), naming it" \
	eval "[ $rc -ne 0 ] && grep -q \"checkpoint folder '$T/notadir/job-[^']*': Not a directory\" '$T/err'"
# storage that fails while the job runs fails checkpoints, not the job;
# the reason is logged once (t1080 checks the backoff between them)
rm -rf "$T/ck" "$T/o2"
rc=0; WEIR_FAILPOINT=checkpoint.write:1+:error job --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o2" 2>"$T/err" || rc=$?
check "storage that keeps failing: checkpoints fail, naming the file" grep -q "checkpoint 1 aborted: .*fsync '$T/ck/job-" "$T/err"
exact "$T/o2" "and the job still finishes with its whole output (rc $rc)"
n=$(grep -c "aborted: .*failpoint checkpoint.write\|aborted: .*fsync '" "$T/err")
more=$(grep -c "more checkpoints aborted (2 to [0-9]*): .*fsync '$T/ck/job-" "$T/err")
check "the same reason is logged once ($n), the repeats in one line at the end ($more)" test "$n" -eq 1 -a "$more" -eq 1

# crashes: kill -9 (or abort) at each step, then a new run from the latest checkpoint
for fp in checkpoint.barrier:7:kill-self checkpoint.snapshot:23:abort checkpoint.write:25:kill-self \
	checkpoint.metadata:4:kill-self checkpoint.complete:4:kill-self sink.precommit:17:kill-self \
	sink.commit:9:kill-self sink.committed:6:kill-self; do
	rm -rf "$T/ck" "$T/o"
	rc=0; WEIR_FAILPOINT=$fp job --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2>"$T/err" || rc=$?
	base=$(ls -d "$T"/ck/job-* 2>/dev/null | head -1)
	rc2=0; job --checkpoint-interval 20 --checkpoint-dir "$T/ck" --from-checkpoint "$base" -- $COUNT $RATE "$T/o" 2>"$T/err2" || rc2=$?
	if [ "$rc" -eq 0 ]; then
		# the failpoint counts checkpoint steps, the run lasts half a second:
		# on a loaded machine it may end before the step comes (no crash to test)
		skip "$fp: the job ended before the failpoint's step came (a loaded machine)" 1
		check "$fp: a run from its last checkpoint finishes (rc $rc2)" test "$rc2" -eq 0
	else
		check "$fp: the crash (rc $rc), then a run from its checkpoint finishes (rc $rc2)" test "$rc" -gt 128 -a "$rc2" -eq 0
	fi
	exact "$T/o" "$fp: exactly once across the crash"
	left=$(find "$T/o" -name '.part-*' | wc -l)
	check "$fp: no pending or in-progress file is left ($left)" test "$left" -eq 0
done

# big keyed state: 25000 keys a subtask in value state (ckjob's KEYS
# branch), so that a copy-on-write snapshot spans many worker steps while
# records keep changing the state; a failure restarts in the process, a
# crash resumes from the checkpoint. Each key comes 4 times: a count lost
# or repeated by a snapshot shows as a missing or doubled "c KEY N" line.
BCOUNT=200000 BRATE=400000 KEYS=50000
cp "$T/want" "$T/want-small"
job -- $BCOUNT $BRATE "$T/bref" 0 $KEYS 2>"$T/err" || { fail "big-state reference run"; diag "$(cat "$T/err")"; }
ck_output "$T/bref" >"$T/want"
n=$(grep -c '^c ' "$T/want")
check "the big-state run counts every record ($n)" test "$n" -eq $BCOUNT
for fp in checkpoint.snapshot:30:error sink.commit:12:kill-self; do
	rm -rf "$T/ck" "$T/o"
	rc=0; WEIR_FAILPOINT=$fp job --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $BCOUNT $BRATE "$T/o" 0 $KEYS 2>"$T/err" || rc=$?
	if [ "${fp##*:}" = kill-self ]; then
		base=$(ls -d "$T"/ck/job-* 2>/dev/null | head -1)
		rc=0; job --checkpoint-interval 20 --checkpoint-dir "$T/ck" --from-checkpoint "$base" -- $BCOUNT $BRATE "$T/o" 0 $KEYS 2>"$T/err" || rc=$?
	fi
	check "big state, $fp: restored from checkpoint $(grep -o 'restoring checkpoint [0-9]*' "$T/err" | tail -1 | grep -o '[0-9]*$') (rc $rc)" \
		bash -c "[ $rc -eq 0 ] && grep -q 'restoring checkpoint [1-9]' '$T/err'"
	exact "$T/o" "big state, $fp: every count exactly once"
done
cp "$T/want-small" "$T/want"

# unaligned checkpoints, under backpressure (ckjob's records branch takes
# 100 us a record, slower than the sources): barriers overtake the records
# in flight, which go into the checkpoint and are replayed after a restore
SLOW=100
uj() { job --unaligned --checkpoint-interval 20 --checkpoint-dir "$T/ck" "$@" -- $COUNT $RATE "$T/o" 0 0 $SLOW; }
rm -rf "$T/ck" "$T/o"
rc=0; uj 2>"$T/err" || rc=$?
exact "$T/o" "unaligned under backpressure: the same output (rc $rc)"
n=$(grep -c 'complete (.*, [1-9][0-9]* bytes in flight)' "$T/err")
check "unaligned checkpoints hold in-flight data ($n of $(grep -c 'complete (' "$T/err"))" test "$n" -gt 0
for fp in checkpoint.snapshot:25:error sink.commit:6:kill-self sink.precommit:16:kill-self; do
	rm -rf "$T/ck" "$T/o"
	rc=0; WEIR_FAILPOINT=$fp uj 2>"$T/err" || rc=$?
	if [ "${fp##*:}" = kill-self ]; then
		base=$(ls -d "$T"/ck/job-* 2>/dev/null | head -1)
		rc=0; uj --from-checkpoint "$base" 2>"$T/err" || rc=$?
	fi
	check "unaligned, $fp: restored (rc $rc)" bash -c "[ $rc -eq 0 ] && grep -q 'restoring checkpoint [1-9]' '$T/err'"
	exact "$T/o" "unaligned, $fp: exactly once"
done
check 'a restore replayed in-flight data' grep -q 'bytes of in-flight data to replay' "$T/err"
# a damaged byte in the in-flight data of a snapshot: detected, the one
# before used. A crash once checkpoint 4 is complete on disk; the file
# with the most in-flight data of it is found from its end:
# [u64 n][n bytes in flight][24-byte footer]
rm -rf "$T/ck" "$T/o"
WEIR_FAILPOINT=checkpoint.complete:4:kill-self uj 2>"$T/err"
base=$(ls -d "$T"/ck/job-* | head -1)
newest=$(ls "$base" | sed -n 's/^chk-//p' | sort -n | tail -1)
best= bestn=0
for f in "$base/chk-$newest"/*.snap; do
	n=$(perl -e 'open my $h, "<", $ARGV[0] or die; local $/; my $d = <$h>; my $end = length($d) - 24;
		for (my $k = 0; $k + 8 <= $end; $k += 8) { if (unpack("Q<", substr($d, $end - $k - 8, 8)) == $k) { print $k; exit } }
		print 0' "$f")
	if [ "$n" -gt "$bestn" ]; then best=$f bestn=$n; fi
done
check "checkpoint $newest holds in-flight data ($bestn bytes in $(basename "${best:-none}"))" test "$bestn" -gt 0
if [ -n "$best" ]; then
	size=$(stat -c %s "$best")
	seed=${WEIR_SEED:-$(( $(date +%s) ^ $$ ))}
	echo "# seed $seed (replay with WEIR_SEED=$seed)"
	off=$(( size - 24 - 1 - seed % bestn ))
	perl -e 'open my $h, "+<", $ARGV[0] or die; seek $h, $ARGV[1], 0; read $h, my $c, 1; seek $h, $ARGV[1], 0;
		print $h chr(ord($c) ^ 0x10)' "$best" "$off"
fi
rc=0; uj --from-checkpoint "$base" 2>"$T/err" || rc=$?
check "a flipped bit in the in-flight data (offset ${off:-?}): detected and skipped" grep -q "checkpoint $newest in .* is damaged, skipped: " "$T/err"
check 'the previous checkpoint is restored' grep -q "restoring checkpoint $((newest - 1))" "$T/err"
exact "$T/o" "in-flight data damaged: exactly once from the previous checkpoint (rc $rc)"

# damaged checkpoints: crash once the 7th is complete on disk (before it is
# announced, so retention has not run: 4 are there)
rm -rf "$T/ck" "$T/o"
WEIR_FAILPOINT=checkpoint.complete:7:kill-self job --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2>"$T/err"
base=$(ls -d "$T"/ck/job-* | head -1)
newest=$(ls "$base" | sed -n 's/^chk-//p' | sort -n | tail -1)
check "at least three checkpoints retained after the crash (newest $newest; retention runs once one is announced)" test "$(ls "$base" | grep -c chk-)" -ge 3
cp -a "$base" "$T/pristine-ck"; cp -a "$T/o" "$T/pristine-o"
seed=${WEIR_SEED:-$(( $(date +%s) ^ $$ ))}
echo "# seed $seed (replay with WEIR_SEED=$seed)"
RANDOM=$seed
big=$(ls -S "$base/chk-$newest" | grep snap | head -1) # the largest: keyed state and timers
for kind in "_metadata:flip" "v0-s0.snap:flip" "$big:flip" "_metadata:truncate" "$big:truncate"; do
	file=${kind%%:*} how=${kind##*:}
	rm -rf "$base" "$T/o"; cp -a "$T/pristine-ck" "$base"; cp -a "$T/pristine-o" "$T/o"
	f="$base/chk-$newest/$file"
	size=$(stat -c %s "$f")
	off=$(( (RANDOM * 32768 + RANDOM) % size ))
	if [ "$how" = flip ]; then
		perl -e 'open my $h, "+<", $ARGV[0] or die; seek $h, $ARGV[1], 0; read $h, my $c, 1; seek $h, $ARGV[1], 0;
			print $h chr(ord($c) ^ (1 << ($ARGV[2] % 8)))' "$f" "$off" "$RANDOM"
	else
		truncate -s "$off" "$f"
	fi
	rc=0; job --checkpoint-interval 20 --checkpoint-dir "$T/ck2" --from-checkpoint "$base" -- $COUNT $RATE "$T/o" 2>"$T/err" || rc=$?
	check "$how $file at $off: detected and skipped (rc $rc)" grep -q "checkpoint $newest in .* is damaged, skipped: " "$T/err"
	check "$how $file: the previous checkpoint is restored" grep -q "restoring checkpoint $((newest - 1))" "$T/err"
	exact "$T/o" "$how $file: exactly once from the previous checkpoint"
done
# output already published by the newest checkpoint, which is then found
# damaged: the older one restored takes those parts back and writes them again
rm -rf "$T/ck" "$T/o"
WEIR_FAILPOINT=sink.committed:20:kill-self job --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2>"$T/err"
base=$(ls -d "$T"/ck/job-* | head -1)
# the newest checkpoint whose parts the crash had published: a newer one
# may have completed before the sinks were told of this one (notification
# is asynchronous); such a newer one is taken away, as if the crash had come
# before its metadata, so that this one is the newest
newest=$(find "$T/o" -name 'part-*-*' | sed -n 's/.*part-[0-9]*-\([0-9]*\)$/\1/p' | sort -n | tail -1)
for d in "$base"/chk-*; do [ "${d##*chk-}" -gt "${newest:-0}" ] && rm -rf "$d"; done
pub=$(find "$T/o" -name "part-*-$newest" | wc -l)
check "the crash came after checkpoint $newest published parts ($pub)" test -d "$base/chk-$newest" -a "$pub" -gt 0
printf 'x' | dd of="$base/chk-$newest/_metadata" bs=1 seek=20 conv=notrunc status=none
prev=$(ls "$base" | sed -n 's/^chk-//p' | sort -n | awk -v n="${newest:-0}" '$1 < n' | tail -1)
if [ -z "$prev" ]; then # retention took the older ones while notification lagged: nothing older to restore
	skip "no checkpoint older than $newest retained (notification lagged more than the retained count)" 2
else
	rc=0; job --checkpoint-interval 20 --checkpoint-dir "$T/ck2" --from-checkpoint "$base" -- $COUNT $RATE "$T/o" 2>"$T/err" || rc=$?
	check "checkpoint $newest is skipped, $prev restored (rc $rc)" grep -q "restoring checkpoint $prev" "$T/err"
	exact "$T/o" "the parts checkpoint $newest had published are replaced: exactly once"
fi
# every retained checkpoint damaged: refuse to start, listing why
rm -rf "$T/ck"; mkdir -p "$T/ck"; base="$T/ck/job-damaged"
rm -rf "$base" "$T/o"; cp -a "$T/pristine-ck" "$base"; cp -a "$T/pristine-o" "$T/o"
for d in "$base"/chk-*; do printf 'x' | dd of="$d/v0-s0.snap" bs=1 seek=40 conv=notrunc status=none; done
before=$(find "$T/o" -type f | LC_ALL=C sort | xargs cat | cksum)
expect 1 'refusing to start: every complete checkpoint in .* is damaged: chk-[0-9]+: v0-s0.snap: checksum mismatch.*; chk-.*; chk-' \
	'all retained checkpoints damaged: the job refuses to start and lists each' -- \
	local "$TJOBS/ckjob.so" -q -p 2 --from-checkpoint "$base" -- $COUNT $RATE "$T/o"
after=$(find "$T/o" -type f | LC_ALL=C sort | xargs cat | cksum)
check "and leaves the output folder as it was" test "$before" = "$after"

# at-least-once: a failure may repeat records, never lose one
rm -rf "$T/ck" "$T/o"
rc=0; WEIR_FAILPOINT=checkpoint.snapshot:23:error job --at-least-once --checkpoint-interval 20 --checkpoint-dir "$T/ck" -- $COUNT $RATE "$T/o" 2>"$T/err" || rc=$?
cat "$T"/o/records/part-* | LC_ALL=C sort >"$T/got"
grep '^r ' "$T/want" >"$T/want-r"
t=$(tally "$T/want-r" "$T/got")
check "at-least-once across a restart (rc $rc): no record lost ($t)" bash -c "[ $rc -eq 0 ] && [[ '$t' == lost=0\ *unexpected=0 ]]"
diag "at-least-once duplicates: ${t#* }"

# bad input
expect 2 "--checkpoint-interval: 'soon' is not a whole number" 'a bad interval is refused' -- \
	local "$TJOBS/ckjob.so" --checkpoint-interval soon -- 1 1 "$T/x"
expect 2 "--unaligned and --at-least-once exclude each other" 'unaligned and at-least-once together are refused' -- \
	local "$TJOBS/ckjob.so" --unaligned --at-least-once --checkpoint-interval 20 -- 1 1 "$T/x"
expect 1 "no complete checkpoint in '$T/nothing'" 'restoring from a folder without checkpoints is refused' -- \
	local "$TJOBS/ckjob.so" --from-checkpoint "$T/nothing" -- 1 1 "$T/x"
expect 1 "source 'ticker' cannot be checkpointed" 'a source that keeps its own position is refused with checkpoints' -- \
	local "$TJOBS/fifo_ticker.so" --checkpoint-interval 20 --checkpoint-dir "$T/ck3" -- "$T/nofifo" "$T/x"
check 'and not restarted: the refusal would repeat' bash -c "! grep -q restart '$T/err'"
done_testing
