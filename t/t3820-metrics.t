#!/usr/bin/env bash
# t3820-metrics: what the JobManager knows of running jobs, from the
# TaskManagers' reports (engine/metrics), through its REST API bound beyond
# loopback (every request needs the token) and scraped by a real Prometheus:
#  - a finished job's figures are its records exactly (the last report);
#  - a running job shows rates, busy/backpressured/idle shares, watermarks,
#    state, per-subtask figures, a checkpoint history with per-subtask
#    sizes, and (with --latency-interval) its sinks' latency quantiles;
#  - Prometheus (started here on a loopback port, scraping with the token)
#    has weir's series with the right values;
#  - a savepoint and a cancel through the API, with the token (401
#    without, or with a wrong one), and a failure in /exceptions;
#  - a job with a slow vertex: its sources backpressured (waiting for
#    credit), their output channels filling, the slow vertex busy.
. "$(dirname "$0")/lib.sh"

for c in curl jq prometheus; do
	command -v $c >/dev/null || { echo "Bail out! no $c (scripts/setup-deps installs it)"; exit 255; }
done
export WEIR_RUN_DIR=$T/run
prom_pid=
trap '[ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null; "$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
printf 'rest.bind: 0.0.0.0\n' >"$T/weir.yaml"
run_weir cluster start --config "$T/weir.yaml" --taskmanagers 2 --slots 2
check "cluster starts with rest.bind 0.0.0.0 (status $rc)" test "$rc" -eq 0
addr=$(cat "$T/run/jobmanager.rest")
port=${addr##*:}
api=http://127.0.0.1:$port
run_weir cluster dashboard
token=$(sed -n 's|^http://.*/#token=\([0-9a-f]\{64\}\)$|\1|p' "$T/out")
check "weir cluster dashboard prints the address with the token" test -n "$token"

jqe() { jq -e "$@" >/dev/null; }
# get ARGS...: with the token; body into $T/body, status into $code
get() { code=$(curl -s -o "$T/body" -w '%{http_code}' -H "Authorization: Bearer $token" "$@"); }
# json_ok URL FILTER: the body at URL passes FILTER
json_ok() { get "$1" && [ "$code" = 200 ] && jqe "$2" "$T/body"; }

code=$(curl -s -o "$T/body" -w '%{http_code}' "$api/overview")
check "beyond loopback, a request without the token: 401 ($code), JSON" \
	bash -c "test $code = 401 && jq -e '.errors[0] | test(\"token\")' '$T/body' >/dev/null"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${token//[0-9]/a}" "$api/overview")
check "with a wrong token: 401 ($code)" test "$code" = 401
get "$api/overview"
check "with the token: 200 ($code)" test "$code" = 200

# Prometheus, scraping every second with the token
pport=$(free_port)
prom=http://127.0.0.1:$pport
cat >"$T/prom.yml" <<EOF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: weir
    authorization:
      credentials: $token
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
prometheus --config.file="$T/prom.yml" --storage.tsdb.path="$T/prom" --web.listen-address="127.0.0.1:$pport" \
	>"$T/prom.log" 2>&1 &
prom_pid=$!
eventually curl -sf -o /dev/null "$prom/-/ready"
check "prometheus is up on 127.0.0.1:$pport" curl -sf -o /dev/null "$prom/-/ready"

# 1. a job that finishes: its last report carries every record
mkdir -p "$T/o1" "$T/o2"
run_weir run "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 200 --checkpoint-dir "$T/ck" -- 3000 0 "$T/o1"
check "a job of 3000 records finishes (status $rc)" test "$rc" -eq 0
json_ok "$api/jobs/1" .
check "its source wrote 3000 records, its two keyed branches read 3000 each: $(jq -c '[.vertices[] | [.name, .metrics["read-records"], .metrics["write-records"]]]' "$T/body")" \
	jqe '.vertices[0].name == "sequence" and .vertices[0].metrics["write-records"] == 3000 and .vertices[1].metrics["read-records"] == 3000 and .vertices[2].metrics["read-records"] == 3000' "$T/body"
check "bytes went with them" jqe '.vertices[0].metrics["write-bytes"] > 0 and .vertices[1].metrics["read-bytes"] > 0' "$T/body"
check "without --latency-interval, no latency figures" jqe 'all(.vertices[].metrics; has("latency") | not)' "$T/body"

# 2. a job that runs (5000 records a second) until it is cancelled
"$WEIR" run "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 200 --checkpoint-dir "$T/ck" --latency-interval 20 \
	-- 1000000000 5000 "$T/o2" \
	>"$T/run2.out" 2>"$T/run2.err" &
run_pid=$!
eventually json_ok "$api/jobs/2" '.state == "RUNNING" and .vertices[0].metrics["write-records-per-second"] > 0 and .vertices[1].metrics["read-records-per-second"] > 0'
check "a running job: its source's rate out and the window's rate in: $(jq -c '[.vertices[] | [.name, .metrics["write-records-per-second"], .metrics["read-records-per-second"]]]' "$T/body")" \
	jqe '.vertices[0].metrics["write-records-per-second"] > 0 and .vertices[1].metrics["read-records-per-second"] > 0' "$T/body"
check "every vertex's busy, backpressured and idle shares are shares and add up to 1" \
	jqe 'all(.vertices[].metrics; .["busy-ratio"] >= 0 and .["backpressured-ratio"] >= 0 and .["idle-ratio"] >= 0 and ((.["busy-ratio"] + .["backpressured-ratio"] + .["idle-ratio"]) - 1 | fabs) < 0.001)' "$T/body"
eventually json_ok "$api/jobs/2/vertices/1/watermarks" 'all(.[]; .value | tonumber > 0)'
check "the window's subtasks have event-time watermarks: $(jq -c . "$T/body")" \
	jqe 'length == 4 and all(.[]; .value | tonumber > 0)' "$T/body"
eventually json_ok "$api/jobs/2" '.vertices[1].metrics.latency.count > 0 and .vertices[2].metrics.latency.count > 0'
check "latency markers reach the sinks (both keyed branches end in one): $(jq -c '[.vertices[] | [.name, .metrics.latency]]' "$T/body")" \
	jqe '[.vertices[1, 2].metrics.latency | .count > 0 and .p50 > 0 and .p50 <= .p95 and .p95 <= .p99 and .p99 <= .max] | all' "$T/body"
check "the source vertex, which ends in no sink, has none" jqe '.vertices[0].metrics | has("latency") | not' "$T/body"
json_ok "$api/jobs/2/vertices/1" .
check "/vertices/1: two subtasks on this host, each with its state and timers: $(jq -c '[.subtasks[] | [.subtask, .host, .metrics["state-entries"], .metrics.timers]]' "$T/body")" \
	jqe --arg h "$(hostname)" '.name == "count" and (.subtasks | length) == 2 and all(.subtasks[]; .host == $h and .metrics["state-entries"] > 0 and .metrics.timers > 0)' "$T/body"
json_ok "$api/jobs/2/vertices/1/backpressure" .
check "/backpressure: a level and a ratio per subtask: $(jq -c . "$T/body")" \
	jqe '.status == "ok" and (.subtasks | length) == 2 and all(.subtasks[]; .ratio >= 0 and .ratio <= 1 and (.["backpressure-level"] | IN("ok", "low", "high")))' "$T/body"
json_ok "$api/jobs/2/vertices/1/subtasks/metrics" .
check "/subtasks/metrics: min, max, avg and sum of the records in" \
	jqe 'any(.[]; .id == "numRecordsIn" and .sum > 0 and .min <= .avg and .avg <= .max)' "$T/body"
get "$api/jobs/2/vertices/9"
check "an unknown vertex: 404 ($code)" test "$code" = 404
eventually json_ok "$api/jobs/2/checkpoints" '.counts.completed >= 2'
check "/checkpoints: completed ones counted, the latest with its size: $(jq -c '[.counts, .latest.completed]' "$T/body")" \
	jqe '.counts.completed >= 2 and .latest.completed.status == "COMPLETED" and .latest.completed.state_size > 0 and (.history | length) >= 2' "$T/body"
cid=$(jq -r .latest.completed.id "$T/body")
json_ok "$api/jobs/2/checkpoints/details/$cid" .
check "/checkpoints/details/$cid: a snapshot per subtask (8), sizes adding up to its size" \
	jqe '(.subtasks | length) == 8 and ([.subtasks[].state_size] | add) == .state_size' "$T/body"
json_ok "$api/taskmanagers/0" .
check "/taskmanagers/0: slots, its pool's free segments, CPU load: $(jq -c . "$T/body")" \
	jqe '.slotsNumber == 2 and .pool.freeSegments <= .pool.segments and .pool.freeSegments > 0' "$T/body"
get "$api/taskmanagers/0/logs"
check "/taskmanagers/0/logs: its log's end ($code)" bash -c "test $code = 200 && grep -q 'registered with cluster' '$T/body'"
get "$api/jobmanager/logs"
check "/jobmanager/logs: the JobManager's ($code)" bash -c "test $code = 200 && grep -q 'checkpoint' '$T/body'"

# Prometheus has the series, with the values the API has
pq() { curl -s --get --data-urlencode "query=$1" "$prom/api/v1/query" | jq -r '.data.result[0].value[1] // empty'; }
pq_is() { [ "$(pq "$1")" = "$2" ]; }   # QUERY VALUE
pq_any() { [ -n "$(pq "$1")" ]; }      # QUERY: some series
eventually pq_is 'sum(weir_task_numRecordsOut{job_id="1",task_name="sequence"})' 3000
check "prometheus: the finished job's source sent 3000 records ($(pq 'sum(weir_task_numRecordsOut{job_id="1",task_name="sequence"})'))" \
	test "$(pq 'sum(weir_task_numRecordsOut{job_id="1",task_name="sequence"})')" = 3000
check "... and its window read 3000 ($(pq 'sum(weir_task_numRecordsIn{job_id="1",task_name="count"})'))" \
	test "$(pq 'sum(weir_task_numRecordsIn{job_id="1",task_name="count"})')" = 3000
eventually pq_any 'weir_task_numRecordsInPerSecond{job_name="ckjob.so",job_id="2",task_name="count",subtask_index="1",tm_id=~"[01]"} > 0'
check "the running job's rate per subtask, labelled by job, task, subtask and TaskManager" \
	test -n "$(pq 'weir_task_numRecordsInPerSecond{job_name="ckjob.so",job_id="2",task_name="count",subtask_index="1",tm_id=~"[01]"} > 0')"
check "its checkpoints ($(pq 'weir_job_numberOfCompletedCheckpoints{job_id="2"}')) and their last size" \
	test -n "$(pq 'weir_job_numberOfCompletedCheckpoints{job_id="2"} >= 2 and on() weir_job_lastCheckpointSize{job_id="2"} > 0')"
eventually pq_any 'weir_task_latency{job_id="2",task_name="count",quantile="0.99"}'
check "prometheus: each sink subtask's latency quantiles ($(pq 'max(weir_task_latency{job_id="2",quantile="0.5"})') ms at p50)" \
	pq_any 'weir_task_latency{job_id="2",task_name="count",subtask_index="1",quantile="0.99"} > 0'
check "the cluster's TaskManagers ($(pq weir_jobmanager_numRegisteredTaskManagers))" \
	pq_is weir_jobmanager_numRegisteredTaskManagers 2

# actions: the token, always
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -d "{\"target-directory\": \"$T/sp\"}" "$api/jobs/2/savepoints")
check "a savepoint without the token: 401 ($code)" test "$code" = 401
get -X POST -d '{"target-directory": "relative"}' "$api/jobs/2/savepoints"
check "a relative folder: 400 ($code)" test "$code" = 400
get -X POST -d 'not json' "$api/jobs/2/savepoints"
check "a body that is not JSON: 400 ($code)" test "$code" = 400
get -X POST -d "{\"target-directory\": \"$T/sp\"}" "$api/jobs/2/savepoints"
rid=$(jq -r '.["request-id"]' "$T/body")
check "a savepoint asked: 202 ($code), request $rid" test "$code" = 202
eventually json_ok "$api/jobs/2/savepoints/$rid" '.status.id == "COMPLETED"'
loc=$(jq -r '.operation.location // empty' "$T/body")
check "it completes in $loc, a complete checkpoint folder" test -f "$loc/_metadata"
get "$api/jobs/2/savepoints/99"
check "an unknown request id: 404 ($code)" test "$code" = 404
code=$(curl -s -o /dev/null -w '%{http_code}' -X PATCH "$api/jobs/2")
check "cancel without the token: 401 ($code), and the job runs on" \
	bash -c "test $code = 401 && kill -0 $run_pid"
get -X PATCH "$api/jobs/2"
check "cancel with the token: 202 ($code)" test "$code" = 202
rc=0
wait "$run_pid" || rc=$?
check "weir run sees its job cancelled (status $rc)" test "$rc" -eq 130
json_ok "$api/jobs/2" .
check "the job is CANCELED" jqe '.state == "CANCELED"' "$T/body"
get -X PATCH "$api/jobs/2"
check "cancelling it again: 409 ($code)" test "$code" = 409
json_ok "$api/jobs/2/exceptions" .
check "a cancel is no exception" jqe '.exceptionHistory.entries == []' "$T/body"

# a failure: the third job's sink finds the first one's files
run_weir run "$TJOBS/ckjob.so" -p 2 -- 3000 0 "$T/o1"
check "a job that fails (status $rc)" test "$rc" -ne 0
json_ok "$api/jobs/3/exceptions" .
check "/exceptions: its root cause and history: $(jq -c '.["root-exception"]' "$T/body")" \
	jqe '(.["root-exception"] | test("already holds part files")) and (.exceptionHistory.entries | length) == 1' "$T/body"

# backpressure: the records branch takes 500 us a record, the sources run
# flat out; a slot runs a subtask of each vertex, so a source's channel to
# the slow subtask of the other slot fills, and the source waits for credit
mkdir -p "$T/o4"
"$WEIR" run "$TJOBS/ckjob.so" -p 2 -- 1000000000 0 "$T/o4" 0 0 500 >"$T/run4.out" 2>"$T/run4.err" &
run_pid=$!
# both answers from one moment (shares move from second to second)
bp_seen() {
	json_ok "$api/jobs/4/vertices/0/backpressure" '([.subtasks[].ratio] | max) > 0.1 and .["backpressure-level"] != "ok"' &&
		cp "$T/body" "$T/bp" &&
		json_ok "$api/jobs/4" '.vertices[0].metrics["out-pool-usage"] > 0 and .vertices[2].metrics["busy-ratio"] > 0.5' &&
		cp "$T/body" "$T/bpjob"
}
eventually bp_seen
check "a slow vertex: its sources are backpressured ($(jq -c '[.["backpressure-level"], [.subtasks[].ratio]]' "$T/bp"))" \
	jqe '([.subtasks[].ratio] | max) > 0.1 and .["backpressure-level"] != "ok"' "$T/bp"
check "their output channels fill, the slow vertex is busy: $(jq -c '[.vertices[] | [.name, .metrics["busy-ratio"], .metrics["backpressured-ratio"], .metrics["in-pool-usage"], .metrics["out-pool-usage"]]]' "$T/bpjob")" \
	jqe '.vertices[0].metrics["out-pool-usage"] > 0 and .vertices[2].metrics["busy-ratio"] > 0.5' "$T/bpjob"
get -X PATCH "$api/jobs/4"
wait "$run_pid"

run_weir cluster status
check "the JobManager is unharmed (status $rc)" test "$rc" -eq 0
done_testing
