#!/usr/bin/env bash
# t3830-dashboard: the JobManager's web dashboard in a real browser
# (headless Chromium, driven through chromedriver's WebDriver API with curl):
# the overview lists the running job; its page draws the graph with live
# rates and a completed checkpoint, whose snapshots a click shows; the
# savepoint button takes one and the cancel button cancels the job (weir
# run sees it); the TaskManager and JobManager pages show their logs;
# weir local --rest-port serves the same page for its job. A screenshot of each page is kept in
# <build>/t/screenshots/ for a person to look at.
. "$(dirname "$0")/lib.sh"

for c in curl jq chromium chromedriver; do
	command -v $c >/dev/null || { echo "Bail out! no $c (scripts/setup-deps installs it)"; exit 255; }
done
export WEIR_RUN_DIR=$T/run
shots=$WEIR_BUILD/t/screenshots
mkdir -p "$shots"
rm -f "$shots"/t3830-*.png
cd_pid= sid= wd=
cleanup() {
	[ -n "$sid" ] && curl -s -X DELETE "$wd/session/$sid" >/dev/null 2>&1
	[ -n "$cd_pid" ] && kill "$cd_pid" 2>/dev/null && wait_gone "$cd_pid"
	"$WEIR" cluster stop >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
run_weir cluster start --taskmanagers 2 --slots 2
check "cluster starts (status $rc)" test "$rc" -eq 0
mkdir -p "$T/o"
"$WEIR" run "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 500 --checkpoint-dir "$T/ck" -- 1000000000 5000 "$T/o" \
	>"$T/run.out" 2>"$T/run.err" &
run_pid=$!
run_weir cluster dashboard
url=$(cat "$T/out")
check "weir cluster dashboard: $url" bash -c "[[ '$url' == http://127.0.0.1:*/#token=* ]]"
base=${url%%#*}

# WebDriver (chromedriver on a loopback port; it takes local connections only)
cport=$(free_port)
wd=http://127.0.0.1:$cport
chromedriver --port="$cport" >"$T/chromedriver.log" 2>&1 &
cd_pid=$!
eventually bash -c "curl -s '$wd/status' | jq -e .value.ready >/dev/null"
caps=$(jq -nc --arg dir "$T/chrome" '{capabilities: {alwaysMatch: {browserName: "chrome", "goog:chromeOptions":
	{binary: "/usr/bin/chromium", args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
	"--window-size=1400,1000", "--user-data-dir=\($dir)"]}}}}')
sid=$(curl -s -X POST -H 'Content-Type: application/json' -d "$caps" "$wd/session" | jq -r '.value.sessionId // empty')
check "a headless Chromium session" test -n "$sid"
[ -n "$sid" ] || { diag "$(tail -5 "$T/chromedriver.log")"; done_testing; exit; }

# post PATH JSON: a WebDriver command of the session; its value on stdout
post() { curl -s -X POST -H 'Content-Type: application/json' -d "$2" "$wd/session/$sid$1" | jq -c .value; }
# js EXPR: EXPR evaluated in the page (JSON)
js() { post /execute/sync "$(jq -nc --arg s "return ($1);" '{script: $s, args: []}')"; }
js_is() { [ "$(js "$1")" = "$2" ]; }   # EXPR JSON
goto() { post /url "$(jq -nc --arg u "$1" '{url: $u}')" >/dev/null; }
# click CSS: a real click on the element CSS selects
click() {
	local el
	el=$(post /element "$(jq -nc --arg v "$1" '{using: "css selector", value: $v}')" | jq -r 'to_entries[0].value')
	post "/element/$el/click" '{}' >/dev/null
}
shot() { curl -s "$wd/session/$sid/screenshot" | jq -r .value | base64 -d >"$shots/t3830-$1.png"; }

goto "$url"
eventually js_is "(document.querySelector('#jobs-table tr[data-jid=\"1\"]') || {}).textContent?.includes('RUNNING') ?? false" true
check "the overview lists job 1, RUNNING" js_is "document.querySelector('#jobs-table tr[data-jid=\"1\"]').textContent.includes('RUNNING')" true
check "and the two TaskManagers" js_is "document.querySelector('#ov-tms').textContent" '"2"'
check "the token left the address bar (kept for the tab)" js_is "location.hash" '"#/"'
shot overview

# the overview redraws itself every second: a row found may be replaced
# before the click lands (a stale element), so click until the page opens
open_job() { click '#jobs-table tr[data-jid="1"]'; js_is "location.hash" '"#/jobs/1"'; }
eventually open_job
eventually js_is "location.hash === '#/jobs/1' && document.querySelectorAll('#graph .vertex').length === 4 && Number(document.querySelector('#graph .vertex[data-vid=\"0\"]').dataset.outRate) > 0 && Number(document.querySelector('#graph .vertex[data-vid=\"1\"]').dataset.inRate) > 0" true
check "clicking it opens its page: a graph of 4 vertices, the source sending and the window taking records: $(js "[...document.querySelectorAll('#graph .vertex')].map(v => [v.dataset.vid, v.dataset.inRate, v.dataset.outRate])")" \
	js_is "document.querySelectorAll('#graph .vertex').length === 4 && Number(document.querySelector('#graph .vertex[data-vid=\"0\"]').dataset.outRate) > 0" true
check "edges drawn between them (with their partitioning)" js_is "document.querySelectorAll('#graph .ship').length >= 2 && document.querySelector('#graph .ship').textContent === 'HASH'" true
eventually js_is "Number(document.querySelector('#ck-completed').textContent) >= 1" true
check "a completed checkpoint: $(js "document.querySelector('#ck-completed').textContent")" \
	js_is "Number(document.querySelector('#ck-completed').textContent) >= 1 && document.querySelector('#ck-table').textContent.includes('COMPLETED')" true
shot job
# a checkpoint of the history, clicked: its snapshots, one per subtask
open_ck() { click '#ck-table tr[data-status="COMPLETED"]'; js_is "document.querySelectorAll('#ck-subtasks tr').length > 1" true; }
eventually open_ck
check "clicking a checkpoint shows each subtask's snapshot ($(js "document.querySelectorAll('#ck-subtasks tr').length - 1") rows)" \
	js_is "document.querySelectorAll('#ck-subtasks tr').length - 1" 8
js "document.querySelector('#ck-detail').scrollIntoView()" >/dev/null
shot checkpoint

# the savepoint button, into a folder typed into its field
el=$(post /element '{"using": "css selector", "value": "#sp-dir"}' | jq -r 'to_entries[0].value')
post "/element/$el/clear" '{}' >/dev/null
post "/element/$el/value" "$(jq -nc --arg t "$T/sp" '{text: $t}')" >/dev/null
click '#savepoint-btn'
eventually js_is "document.querySelector('#status').textContent.startsWith('savepoint in ')" true
spdir=$(js "document.querySelector('#status').textContent" | jq -r . | sed 's/^savepoint in //')
check "the savepoint button takes one: $spdir" test -f "$spdir/_metadata"
shot savepoint

click '#cancel-btn'
post /alert/accept '{}' >/dev/null   # "Cancel job 1?"
eventually js_is "document.querySelector('#job-state').dataset.state" '"CANCELED"'
check "the cancel button cancels it: the page says CANCELED" js_is "document.querySelector('#job-state').dataset.state" '"CANCELED"'
rc=0
wait "$run_pid" || rc=$?
check "weir run sees its job cancelled (status $rc)" test "$rc" -eq 130
check "the buttons are off for a job that ended" js_is "document.querySelector('#cancel-btn').disabled" true
shot cancelled

goto "$base#/taskmanagers/0"
eventually js_is "(document.querySelector('#tm-log') || {}).textContent?.includes('registered with cluster') ?? false" true
check "a TaskManager's page shows its log" js_is "document.querySelector('#tm-log').textContent.includes('registered with cluster')" true
shot taskmanager
goto "$base#/jobmanager"
eventually js_is "(document.querySelector('#jm-log') || {}).textContent?.includes('cancel (REST API)') ?? false" true
check "the JobManager's log says the cancel came through the REST API" \
	js_is "document.querySelector('#jm-log').textContent.includes('cancel (REST API)')" true
shot jobmanager
# weir local --rest-port serves the same dashboard for its one job
mkdir -p "$T/lo"
"$WEIR" local "$TJOBS/ckjob.so" -p 2 --rest-port 0 --checkpoint-interval 100 --checkpoint-dir "$T/lck" \
	-- 1000000000 5000 "$T/lo" >"$T/local.out" 2>"$T/local.err" &
lpid=$!
lapi=$(local_api "$T/local.err")
goto "$lapi/#/jobs/local"
eventually js_is "document.querySelectorAll('#graph .vertex').length === 4 && Number(document.querySelector('#ck-completed').textContent) >= 1" true
check "weir local's dashboard: its job's graph and checkpoints" \
	js_is "document.querySelectorAll('#graph .vertex').length === 4 && document.querySelectorAll('#graph .ship').length === 2" true
check "and no buttons (its API reads only)" js_is "document.querySelector('#cancel-btn').hidden" true
shot local
kill -INT "$lpid"
wait "$lpid" || true
check "a screenshot of each page is kept: $(cd "$shots" && ls t3830-*.png | tr '\n' ' ')" \
	test "$(ls "$shots"/t3830-*.png | wc -l)" -eq 8
done_testing
