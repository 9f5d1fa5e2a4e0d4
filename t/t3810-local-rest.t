#!/usr/bin/env bash
# t3810-local-rest: weir local --rest-port: while the job runs, its REST
# API answers with the job and its vertices, whose record counts are the
# job's (t/jobs/held.c emits 5000 records and holds, its sink says when it
# has them all: no sleeps); a job with checkpoints shows its history; the
# dashboard's files are served; errors as JSON; the port closes with the
# job; a port that is taken fails the run with a message naming it.
. "$(dirname "$0")/lib.sh"

for c in curl jq; do
	command -v $c >/dev/null || { echo "Bail out! no $c (scripts/setup-deps installs it)"; exit 255; }
done
jqe() { jq -e "$@" >/dev/null; }
get() { code=$(curl -s -o "$T/body" -w '%{http_code}' "$@"); }

"$WEIR" local "$TJOBS/held.so" -p 1 --rest-port 0 -- 5000 "$T/gate" "$T/ready" >"$T/out" 2>"$T/err" &
pid=$!
api=$(local_api "$T/err")
check "the address is said on stderr: '$api'" test -n "$api"
wait_for "$T/ready" "ready"
get "$api/jobs"
check "GET /jobs: the one job, running ($code)" jqe '.jobs == [{"id": "local", "status": "RUNNING"}]' "$T/body"
get "$api/jobs/local"
check "GET /jobs/local: the source wrote 5000 records, the sink read 5000: $(jq -c '[.vertices[] | [.name, .metrics["read-records"], .metrics["write-records"]]]' "$T/body")" \
	jqe '.vertices[0].name == "held" and .vertices[0].metrics["write-records"] == 5000 and .vertices[-1].name == "taken" and .vertices[-1].metrics["read-records"] == 5000' "$T/body"
check "its ratios are shares (0 to 1)" \
	jqe 'all(.vertices[].metrics; .["busy-ratio"] >= 0 and .["busy-ratio"] <= 1 and .["backpressured-ratio"] >= 0 and .["backpressured-ratio"] <= 1)' "$T/body"
get "$api/jobs/7"
check "another job: 404 ($code)" bash -c "test $code = 404 && jq -e '.errors' '$T/body' >/dev/null"
get -X POST "$api/jobs/local"
check "POST: 405 ($code)" test "$code" = 405
touch "$T/gate"
rc=0
wait "$pid" || rc=$?
check "the job ends well (status $rc)" test "$rc" -eq 0
check "and its API with it" bash -c "! curl -s -o /dev/null '$api/jobs'"

# a job with checkpoints: its history through the same API, and the
# dashboard's files (the page reads these paths)
mkdir -p "$T/o"
"$WEIR" local "$TJOBS/ckjob.so" -p 2 --rest-port 0 --checkpoint-interval 100 --checkpoint-dir "$T/ck" \
	-- 1000000000 5000 "$T/o" >"$T/out3" 2>"$T/err3" &
pid3=$!
api3=$(local_api "$T/err3")
ck_done() { get "$api3/jobs/local/checkpoints" && [ "$code" = 200 ] && jqe '.counts.completed >= 1' "$T/body"; }
eventually ck_done
check "/jobs/local/checkpoints: completed ones, newest first: $(jq -c '[.counts, .history[0].status]' "$T/body")" \
	jqe '.counts.completed >= 1 and (.history | map(select(.status == "COMPLETED")) | length) >= 1' "$T/body"
cid=$(jq -r '[.history[] | select(.status == "COMPLETED")][0].id' "$T/body")
get "$api3/jobs/local/checkpoints/details/$cid"
check "its details: a snapshot per subtask (8)" jqe '(.subtasks | length) == 8' "$T/body"
get "$api3/jobs/local"
check "the job's graph has its edges: $(jq -c '[.plan.edges[] | [.source, .target, .ship_strategy]]' "$T/body")" \
	jqe '(.plan.edges | length) == 2 and all(.plan.edges[]; .ship_strategy == "HASH")' "$T/body"
code=$(curl -s -o "$T/page" -w '%{http_code} %{content_type}' "$api3/")
check "/ is the dashboard's page ($code)" bash -c "[[ '$code' == '200 text/html'* ]] && grep -q 'web/app.js' '$T/page'"
code=$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "$api3/web/app.js")
check "and its script ($code)" bash -c "[[ '$code' == '200 text/javascript'* ]]"
get -X PATCH "$api3/jobs/local"
check "weir local's API does not act: PATCH is 405 ($code)" test "$code" = 405
kill -INT "$pid3"
rc=0
wait "$pid3" || rc=$?
check "the job, interrupted, ends as cancelled (status $rc)" test "$rc" -eq 130

# a port that is taken: the run fails, naming it
port=${api##*:}
"$WEIR" local "$TJOBS/held.so" -p 1 --rest-port 0 -- 5 "$T/gate2" "$T/ready2" >"$T/out2" 2>"$T/err2" &
pid2=$!
port2=$(local_api "$T/err2")
port2=${port2##*:}
run_weir local "$TJOBS/held.so" -p 1 --rest-port "$port2" -- 5 "$T/gate2"
check "a taken port fails the run (status $rc)" test "$rc" -eq 1
check "naming the API and the port: $(tail -1 "$T/err")" grep -q "REST API (--rest-port).*127.0.0.1:$port2" "$T/err"
touch "$T/gate2"
wait "$pid2"
run_weir local "$TJOBS/held.so" --rest-port 70000 -- 5 "$T/gate2"
check "--rest-port 70000: a usage error (status $rc)" test "$rc" -eq 2
done_testing
