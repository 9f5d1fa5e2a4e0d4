#!/usr/bin/env bash
# t3030-failpoints: WEIR_FAILPOINT crashes or fails a run at an exact
# point. At the job's commit: an error in the second of two part commits
# takes back the first (a failed job leaves no part file); a kill -9 at the
# first commit leaves only hidden in-progress files.
. "$(dirname "$0")/lib.sh"

printf 'one two\nthree four\nfive six\n' >"$T/in.txt"

WEIR_FAILPOINT=nonsense expect 2 "WEIR_FAILPOINT: 'nonsense' is not name:count:action" 'a malformed failpoint spec is refused' -- \
	local "$JOBS/wordcount.so" -- "$T/in.txt" "$T/o0"
WEIR_FAILPOINT=x:1:explode expect 2 'action must be abort, kill-self or error' 'an unknown action is refused' -- \
	local "$JOBS/wordcount.so" -- "$T/in.txt" "$T/o0"

export WEIR_FAILPOINT=job.commit:2:error
expect 1 "commit: failpoint job.commit" 'an error at the second commit fails the job' -- \
	local "$JOBS/wordcount.so" -p 2 -- "$T/in.txt" "$T/o1"
n=$(find "$T/o1" -type f | wc -l)
check "and takes back the first commit: no files left ($n)" test "$n" -eq 0

export WEIR_FAILPOINT=job.commit:1:kill-self
run_weir local "$JOBS/wordcount.so" -p 2 -- "$T/in.txt" "$T/o2"
check "kill-self at the first commit kills the process (status $rc)" test "$rc" -eq 137
n=$(find "$T/o2" -name 'part-*' | wc -l)
check "no part file appears ($n)" test "$n" -eq 0
unset WEIR_FAILPOINT

expect 0 'job finished' 'without failpoints the same job succeeds' -- local "$JOBS/wordcount.so" -p 2 -- "$T/in.txt" "$T/o3"
n=$(cat "$T/o3"/part-* | wc -l)
check "with all 6 lines ($n)" test "$n" -eq 6
done_testing
