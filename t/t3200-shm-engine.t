#!/usr/bin/env bash
# t3200-shm-engine: the engine over shared-memory pools and channels (the
# transport between processes) gives the same results as over private
# memory, leaves nothing in /dev/shm, and a kill -9 mid-run leaves files
# that the next run removes (their owner lock died with the process).
. "$(dirname "$0")/lib.sh"

# Shared-memory files are in a private folder weir-local-<pid>-<random>/:
# each check looks at the folders and files of the process it ran (other
# tests may run alongside).
mine() { shm_left "weir-local-$1-"; }
for t in t2000-engine t2010-backpressure t2100-windows; do
	rc=0
	WEIR_CHANNELS=shm "$WEIR_BUILD/t/$t.t" >"$T/$t.out" 2>&1 &
	pid=$!
	wait "$pid" || rc=$?
	bad=$(grep -c '^not ok' "$T/$t.out" || true)
	check "$t over shared memory: exit 0, no failed check ($rc, $bad)" test "$rc" -eq 0 -a "$bad" -eq 0
	[ "$rc" -eq 0 ] && [ "$bad" -eq 0 ] || diag "$(grep -A3 '^not ok' "$T/$t.out" | head -20)"
	check "$t leaves no /dev/shm file ($(mine $pid))" test "$(mine $pid)" -eq 0
done

# kill -9 in the middle of a shared-memory run, at an exact point
printf 'a b c\nd e f\n' >"$T/in.txt"
rc=0
WEIR_CHANNELS=shm WEIR_FAILPOINT=job.commit:1:kill-self "$WEIR" local "$JOBS/wordcount.so" -p 2 -- "$T/in.txt" "$T/o1" \
	>"$T/out" 2>"$T/err" &
killed=$!
wait "$killed" || rc=$?
check "kill-self mid-run (status $rc)" test "$rc" -eq 137
check "the killed run left its files ($(mine $killed))" test "$(mine $killed)" -gt 0
WEIR_CHANNELS=shm run_weir local "$JOBS/wordcount.so" -p 2 -- "$T/in.txt" "$T/o2"
check "the next run succeeds (status $rc)" test "$rc" -eq 0
check "and removed the dead run's files ($(mine $killed) left)" test "$(mine $killed)" -eq 0

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
