#!/usr/bin/env bash
# t3710-idle: the workers' idle strategies (--idle sleep|busy|yield|backoff,
# sched/worker.h). Each one runs a paced job (its workers idle between
# batches) to the same results as the plain loop, and ends; a cancelled
# job whose workers never sleep (busy) stops. On the cluster the
# configuration file's worker.idle and worker.spin_us are every job's,
# weir run --idle a job's own (the TaskManager's log line says which), as
# is weir run --debloat-us (buffer debloating, io/record.h). Bad
# names are refused, named, with exit 2 (or a failed cluster start).
. "$(dirname "$0")/lib.sh"

JOB=$JOBS/ysb.so
want=$("$WEIR_BUILD/bin/weir-bench-ysb" 60000 4000 | cut -d' ' -f1-5)
for m in sleep busy yield backoff; do
	# 60000 events at 200000/s: 0.3 s with the workers idle most of it
	"$WEIR" local "$JOB" -q -p 2 --idle $m --spin-us 20 -- 60000 200000 4000 stats >"$T/out" 2>"$T/err"
	check "--idle $m: the job's results as the plain loop's" test "$(cut -d' ' -f1-5 "$T/out")" = "$want"
done

"$WEIR" local "$JOB" -q --idle spin -- 10 0 1 stats >"$T/out" 2>"$T/err"
check "--idle spin: exit 2 ($?)" test $? -eq 2
check "  named" grep -q "weir: --idle: 'spin' is not sleep, busy, yield or backoff" "$T/err"
"$WEIR" local "$JOB" -q --spin-us -1 -- 10 0 1 stats >"$T/out" 2>"$T/err"
check "--spin-us -1: exit 2 ($?)" test $? -eq 2

export WEIR_RUN_DIR="$T/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
printf 'worker.idle: busy\nworker.spin_us: 7\n' >"$T/conf.yaml"
"$WEIR" cluster start --config "$T/conf.yaml" --taskmanagers 1 --slots 2 >/dev/null 2>"$T/err" ||
	{ fail "cluster start"; diag "$(cat "$T/err")"; }
"$WEIR" run "$JOB" -p 2 -- 60000 0 4000 stats >"$T/out" 2>"$T/err"
# the sink's stdout is the TaskManager's log
check "the cluster's worker.idle: busy: the job's results" \
	test "$(grep -h '^ysb' "$T/run/taskmanager-0.log" | cut -d' ' -f1-5)" = "$want"
check "  its workers were busy, spinning 7 us (the TaskManager says)" \
	grep -qE "job 1 \(ysb.so\): [0-9]+ of [0-9]+ subtasks here \(workers idle: busy, spin 7 us\)" "$T/run/taskmanager-0.log"
"$WEIR" run "$JOB" -p 2 --idle yield -- 60000 0 4000 stats >"$T/out" 2>"$T/err"
check "weir run --idle yield: the job's own" \
	grep -qE "job 2 \(ysb.so\): [0-9]+ of [0-9]+ subtasks here \(workers idle: yield, spin 50 us\)" "$T/run/taskmanager-0.log"
"$WEIR" run "$JOB" -p 2 --debloat-us 30 -- 600000 0 4000 stats >"$T/out" 2>"$T/err"
check "weir run --debloat-us 30: the TaskManager debloats the job's buffers" \
	grep -qE "job 3 \(ysb.so\): [0-9]+ of [0-9]+ subtasks here \(workers idle: busy, spin 7 us\), buffer debloating to 30 us" \
	"$T/run/taskmanager-0.log"
check "  and its results are the plain loop's" \
	test "$(grep -h '^ysb' "$T/run/taskmanager-0.log" | tail -1 | cut -d' ' -f1-5)" = \
	"$("$WEIR_BUILD/bin/weir-bench-ysb" 600000 4000 | cut -d' ' -f1-5)"
"$WEIR" run "$JOB" --debloat-us -5 -- 1 0 1 stats >"$T/out" 2>"$T/err"
check "weir run --debloat-us -5: exit 2 ($?)" test $? -eq 2
# a job that never ends, with busy workers: the cancel stops it
id=$("$WEIR" run "$JOB" -p 2 --detached --idle busy -- 1000000000000 1000 wall stats 2>"$T/err")
timeout 60 tail -n +1 -F "$T/run/taskmanager-0.log" 2>/dev/null | grep -q -m1 "job $id (ysb.so): .* subtasks here"
"$WEIR" cancel "$id" >"$T/out" 2>&1
check "busy workers: the cancel stops the job" \
	sh -c "timeout 60 tail -n +1 -F '$T/run/jobmanager.log' 2>/dev/null | grep -q -m1 'job $id (ysb.so) canceled'"
"$WEIR" run "$JOB" --idle never -- 1 0 1 stats >"$T/out" 2>"$T/err"
check "weir run --idle never: exit 2 ($?)" test $? -eq 2
"$WEIR" cluster stop >/dev/null 2>&1
check_logs "$T/run"

printf 'worker.idle: lazy\n' >"$T/bad.yaml"
"$WEIR" cluster start --config "$T/bad.yaml" --run-dir "$T/run2" >"$T/out" 2>"$T/err"
check "worker.idle: lazy: the cluster does not start ($?)" test $? -ne 0
check "  named" grep -q "worker.idle: 'lazy' is not sleep, busy, yield or backoff" "$T/err"

done_testing
