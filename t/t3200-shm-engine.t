#!/usr/bin/env bash
# t3200-shm-engine: the engine over shared-memory pools and channels (the
# transport between processes) gives the same results as over private
# memory, leaves nothing in /dev/shm, and a kill -9 mid-run leaves files
# that the next run removes (their owner lock died with the process).
. "$(dirname "$0")/lib.sh"

# a first run sweeps what crashed runs of other tests or users left, so
# that the counts below are this test's own
printf 'x\n' >"$T/first.txt"
run_weir local "$JOBS/wordcount.so" --shm -q -- "$T/first.txt" "$T/first"
before=$(ls /dev/shm | grep -c '^weir-local-' || true)
for t in t2000-engine t2010-backpressure t2100-windows; do
	rc=0
	WEIR_CHANNELS=shm "$WEIR_BUILD/t/$t.t" >"$T/$t.out" 2>&1 || rc=$?
	bad=$(grep -c '^not ok' "$T/$t.out" || true)
	check "$t over shared memory: exit 0, no failed check ($rc, $bad)" test "$rc" -eq 0 -a "$bad" -eq 0
	[ "$rc" -eq 0 ] && [ "$bad" -eq 0 ] || diag "$(grep -A3 '^not ok' "$T/$t.out" | head -20)"
done
after=$(ls /dev/shm | grep -c '^weir-local-' || true)
check "no /dev/shm file left ($before before, $after after)" test "$after" -eq "$before"

# kill -9 in the middle of a shared-memory run, at an exact point
printf 'a b c\nd e f\n' >"$T/in.txt"
WEIR_CHANNELS=shm WEIR_FAILPOINT=job.commit:1:kill-self run_weir local "$JOBS/wordcount.so" -p 2 -- "$T/in.txt" "$T/o1"
check "kill-self mid-run (status $rc)" test "$rc" -eq 137
left=$(ls /dev/shm | grep -c '^weir-local-' || true)
check "the killed run left its files ($left)" test "$left" -gt "$before"
WEIR_CHANNELS=shm run_weir local "$JOBS/wordcount.so" -p 2 -- "$T/in.txt" "$T/o2"
check "the next run succeeds (status $rc)" test "$rc" -eq 0
after=$(ls /dev/shm | grep -c '^weir-local-' || true)
check "and removed the dead run's files ($after left)" test "$after" -eq "$before"
# --shm --huge-pages: huge pages when /dev/shm allows them, else a warning
# that names the mount option, and the job runs all the same
run_weir local "$JOBS/wordcount.so" --shm --huge-pages -- "$T/in.txt" "$T/o3"
check "--shm --huge-pages runs (status $rc)" test "$rc" -eq 0
if grep -q ' /dev/shm .*huge=\(always\|advise\|within_size\)' /proc/self/mounts; then
	check "no fallback warning where /dev/shm allows huge pages" bash -c "! grep -q 'using normal pages' '$T/err'"
else
	check "the fallback is said: $(grep -o 'not mounted with huge=.*' "$T/err")" grep -q 'using normal pages' "$T/err"
fi
done_testing
