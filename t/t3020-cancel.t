#!/usr/bin/env bash
# t3020-cancel: an unbounded job runs until SIGINT or SIGTERM; cancelling
# exits 130, says so, and commits no output. The test waits on the job's
# own output through a FIFO (no sleeps). Also: an input the job may not
# read fails with the reason (run as nobody, where root can read anything).
. "$(dirname "$0")/lib.sh"

for sig in INT TERM; do
	mkfifo "$T/fifo.$sig"
	"$WEIR" local "$TJOBS/ticker.so" -p 2 -- "$T/out.$sig" >"$T/fifo.$sig" 2>"$T/err.$sig" &
	pid=$!
	# Block until the first record reaches stdout: the job is running.
	exec 3<"$T/fifo.$sig"
	read -r first <&3
	check "SIG$sig: the unbounded job produces records ($first)" test "${first%% *}" = tick
	kill -"$sig" "$pid"
	cat <&3 >/dev/null # drain until the job closes stdout
	exec 3<&-
	rc=0
	wait "$pid" || rc=$?
	check "SIG$sig: exit status 130 (got $rc)" test "$rc" -eq 130
	check "SIG$sig: stderr says cancelled" grep -q "cancelled" "$T/err.$sig"
	n=$(find "$T/out.$sig" -type f 2>/dev/null | wc -l)
	check "SIG$sig: no part or in-progress file is left ($n)" test "$n" -eq 0
done

# A user function that never returns: the first signal cannot stop it
# cleanly, the second exits at once. (wait_gone's 120 s limit only turns
# a hang into a failure.)
mkfifo "$T/fifo.hang"
"$WEIR" local "$TJOBS/hang.so" >"$T/fifo.hang" 2>"$T/err.hang" &
pid=$!
exec 3<"$T/fifo.hang"
read -r line <&3
check "the job is inside the blocking function ($line)" test "$line" = blocked
kill -INT "$pid"
kill -TERM "$pid"
wait_gone "$pid" || kill -9 "$pid"
rc=0
wait "$pid" || rc=$?
exec 3<&-
check "a second signal ends a job stuck in user code: exit 130 (got $rc)" test "$rc" -eq 130

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	mkdir -m 1777 "$T/pub" # sticky, as /tmp: a folder above an output folder others may swap is refused
	echo secret >"$T/pub/locked.txt"
	chmod 000 "$T/pub/locked.txt"
	chmod 0755 "$T"
	rc=0
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$WEIR" local "$JOBS/wordcount.so" -- \
		"$T/pub/locked.txt" "$T/pub/out" >"$T/out" 2>"$T/err" || rc=$?
	check "an unreadable input fails with exit 1 (got $rc)" test "$rc" -eq 1
	check "naming the file and the reason" grep -q "cannot read '$T/pub/locked.txt': Permission denied" "$T/err"
	mkdir -m 0555 "$T/pub/ro"
	rc=0
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$WEIR" local "$JOBS/wordcount.so" -- \
		"$JOBS/../CMakeCache.txt" "$T/pub/ro/out" >"$T/out" 2>"$T/err" || rc=$?
	check "an output folder that cannot be created fails with exit 1 (got $rc)" test "$rc" -eq 1
	check "naming the folder and the reason" grep -q "output folder '$T/pub/ro/out': Permission denied" "$T/err"
else
	skip 'permission cases need root and setpriv' 4
fi
done_testing
