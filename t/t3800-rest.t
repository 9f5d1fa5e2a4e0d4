#!/usr/bin/env bash
# t3800-rest: the JobManager's REST API (engine/cluster/rest.h) with curl
# and jq: the address in the run folder; /overview, /taskmanagers, /jobs,
# /jobs/overview and /jobs/:id agree with the cluster and a job that ran;
# JSON errors with the right status (404 for unknown paths and ids, 405 with
# Allow, 413 for a body too large, 400 for a malformed request, 401 for an
# action without the token, on loopback too), none of
# which disturbs the JobManager; a connection left half-way does not hold
# up the others and is closed after 10 s without progress; rest.port -1
# turns it off.
. "$(dirname "$0")/lib.sh"

for c in curl jq; do
	command -v $c >/dev/null || { echo "Bail out! no $c (scripts/setup-deps installs it)"; exit 255; }
done
export WEIR_RUN_DIR=$T/run
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
run_weir cluster start --taskmanagers 2 --slots 1
check "cluster starts (status $rc)" test "$rc" -eq 0
addr=$(cat "$T/run/jobmanager.rest" 2>/dev/null)
check "the API's address is in the run folder: '$addr'" grep -Eq '^127\.0\.0\.1:[0-9]+$' "$T/run/jobmanager.rest"
api=http://$addr

# jq -e without its output (TAP's stdout)
jqe() { jq -e "$@" >/dev/null; }
# get PATH: body into $T/body, status into $code
get() { code=$(curl -s -o "$T/body" -w '%{http_code}' "$@"); }

get "$api/overview"
check "GET /overview: 200 ($code)" test "$code" = 200
check "two TaskManagers, two free slots of two, no job: $(cat "$T/body")" \
	jqe '.taskmanagers == 2 and .["slots-total"] == 2 and .["slots-available"] == 2 and .["jobs-running"] == 0' "$T/body"
get "$api/taskmanagers"
check "GET /taskmanagers: both, one slot each" \
	jqe '(.taskmanagers | length) == 2 and all(.taskmanagers[]; .slotsNumber == 1 and .freeSlots == 1)' "$T/body"

printf 'a b a\nc a\n' >"$T/in.txt"
run_weir run "$JOBS/wordcount.so" -p 2 -- "$T/in.txt" "$T/counts"
check "a job runs on the cluster (status $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(cat "$T/err")"
get "$api/jobs"
check "GET /jobs: the job, FINISHED: $(cat "$T/body")" jqe '.jobs == [{"id": "1", "status": "FINISHED"}]' "$T/body"
get "$api/jobs/overview"
check "GET /jobs/overview: its name, state and times" \
	jqe '.jobs[0] | .jid == "1" and .name == "wordcount.so" and .state == "FINISHED" and .["end-time"] >= .["start-time"] and .duration >= 0' "$T/body"
get "$api/jobs/1"
check "GET /jobs/1: its vertices at parallelism 2: $(jq -c .vertices "$T/body")" \
	jqe '(.vertices | length) >= 2 and all(.vertices[]; .parallelism == 2) and .vertices[0].name == "file-source"' "$T/body"
get "$api/overview"
check "the overview counts it finished" jqe '.["jobs-finished"] == 1' "$T/body"

# errors
get "$api/no/such/thing"
check "unknown path: 404 ($code) with a JSON error" bash -c "test $code = 404 && jq -e '.errors[0] | test(\"not found\")' '$T/body' >/dev/null"
get "$api/jobs/42"
check "unknown job: 404 ($code)" bash -c "test $code = 404 && jq -e '.errors[0] == \"no job 42\"' '$T/body' >/dev/null"
code=$(curl -s -o "$T/body" -w '%{http_code}' -X PATCH "$api/jobs/1")
check "an action without the token, even on loopback: 401 ($code)" \
	bash -c "test $code = 401 && jq -e '.errors[0] | test(\"token\")' '$T/body' >/dev/null"
get "$api/jobs/1x"
check "malformed job id: 404 ($code)" test "$code" = 404
code=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' -X DELETE "$api/overview")
check "wrong method: 405 ($code), Allow: GET" bash -c "test $code = 405 && grep -qi '^Allow: GET' '$T/headers'"
head -c 200000 /dev/zero >"$T/big"
get -X POST --data-binary @"$T/big" "$api/jobs"
check "a body too large: 413 ($code)" bash -c "test $code = 413 && jq -e '.errors' '$T/body' >/dev/null"
exec 4<>"/dev/tcp/${addr%:*}/${addr#*:}"
printf 'GET /overview HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n' >&4
IFS= read -r -t 10 first <&4 || true
exec 4>&-
check "a malformed header: 400 ('${first%$'\r'}', libmicrohttpd's own answer)" bash -c "[[ '${first%$'\r'}' == 'HTTP/1.1 400'* ]]"
# a client that stops half-way through its request does not hold up others
exec 5<>"/dev/tcp/${addr%:*}/${addr#*:}"
printf 'GET /overview HTTP/1.1\r\nHost: x\r\n' >&5
get "$api/overview"
check "with a request left half-way open, another is answered ($code)" test "$code" = 200
# ... and is closed once it has made no progress for 10 s (slow loris):
# the server ends the connection (EOF), waited for at most 30 s
IFS= read -r -t 30 rest <&5
st=$?
exec 5>&-
check "a request left half-way is closed by the server (read status $st: EOF, not a timeout)" test "$st" -eq 1
# the protocol's strings are UTF-8: an argument that is not is refused by
# weir run, by name (it used to be the JobManager dropping the connection)
run_weir run "$JOBS/wordcount.so" -p 1 -- "$T/in.txt" "$T/c"$'\xe9'
check "weir run refuses an argument that is not UTF-8 (status $rc), naming it" \
	bash -c "test $rc -eq 1 && grep -q 'is not UTF-8' '$T/err'"
run_weir cluster status
check "the JobManager is unharmed: cluster status works (status $rc)" test "$rc" -eq 0
run_weir cluster stop
check "cluster stop (status $rc) removes the address" bash -c "test $rc -eq 0 && test ! -e '$T/run/jobmanager.rest'"

# rest.port -1: no API
printf 'rest.port: -1\n' >"$T/weir.yaml"
run_weir cluster start --config "$T/weir.yaml" --taskmanagers 1 --slots 1
check "rest.port -1: the cluster starts (status $rc)" test "$rc" -eq 0
check "and has no REST API" test ! -e "$T/run/jobmanager.rest"
run_weir cluster stop --config "$T/weir.yaml"
done_testing
