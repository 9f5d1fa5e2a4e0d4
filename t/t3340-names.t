#!/usr/bin/env bash
# t3340-names: names from outside cannot forge lines. A job whose file
# name holds a newline (and other control characters) runs on a cluster:
# the JobManager's and TaskManagers' logs and `weir list` show the name
# escaped on one line, and no line starts with what followed the newline.
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
run_weir cluster start --taskmanagers 2 --slots 1
check "cluster start (rc $rc)" grep -q 'started in' "$T/out"

evil="$T/evil"$'\n'"2099-01-01T00:00:00.000Z ERROR jobmanager: FORGED"$'\t\r'"x.so"
cp "$JOBS/wordcount.so" "$evil"
printf 'a b a\n' >"$T/in.txt"
run_weir run "$evil" -p 2 -- "$T/in.txt" "$T/out1"
check "the job with a newline in its name runs (rc $rc)" test "$rc" -eq 0
run_weir list
cp "$T/out" "$T/list"
check 'weir list shows the name escaped' grep -q 'evil\\n2099-01-01T00:00:00.000Z ERROR jobmanager: FORGED\\t\\rx.so' "$T/list"
check 'and forges no line' bash -c "! grep -q '^2099' '$T/list'"
for log in "$T/run/jobmanager.log" "$T/run"/taskmanager-*.log; do
	name=${log##*/}
	check "$name: no forged line" bash -c "! grep -q '^2099-01-01' '$log'"
done
check 'the jobmanager logged the name escaped' grep -q 'evil\\n2099-01-01T00:00:00.000Z ERROR jobmanager: FORGED\\t\\rx.so' "$T/run/jobmanager.log"

run_weir cluster stop
check "cluster stop (rc $rc)" grep -q 'stopped' "$T/out"
check_logs "$T/run" 0
done_testing
