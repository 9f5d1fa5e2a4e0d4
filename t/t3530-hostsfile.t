#!/usr/bin/env bash
# t3530-hostsfile: weir cluster start from a hosts file (docs/operations.md,
# "A cluster across hosts"), on the test bed (scripts/netbed: network
# namespaces as hosts) with t/tools/netns-launcher as the launcher (it
# maps a host to its namespace and runs the command line there, as ssh
# would run it on that host). Checked:
#  - bad hosts files (a missing key, a bad address, an unknown key, ...)
#    and bad launcher keys are refused before anything starts: exit 2, the
#    file and line named (these run anywhere);
#  - start on host 0 from a file listing hosts 0, 1 and 2: one TaskManager
#    here under the supervisor, two launched on hosts 1 and 2; status shows
#    those two "(another host)" with their slots; the secret is on no
#    command line and left in no file there;
#  - wordcount across the three gives local mode's output;
#  - stop: the remote TaskManagers stop on the JobManager's word, the
#    launcher finds none left, and no weir process of the test is left;
#  - a file without a TaskManager on the JobManager's host (no supervisor);
#    the JobManager killed: start refuses while its remote TaskManagers
#    may run, and stop stops them through the launcher, naming them;
#  - a launcher that fails for one host, a weir missing there, a host the
#    launcher cannot reach, a launcher that hangs, a TaskManager that cannot
#    start there: start exits 1 naming the host and quoting the launcher's
#    stderr, and nothing is left running, here or there;
#  - the bed removed leaves no namespace.
# The namespace part is skipped, saying why, where namespaces cannot be
# made (not root, no iproute2).
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
NB=$here/../scripts/netbed
LAUNCHER=$here/tools/netns-launcher
weir_exe=$(readlink -f "$WEIR")

# ours: the pids of weir processes of this test (their command line names $T)
ours() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$weir_exe" ] || continue
		tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$T/" && echo "${p#/proc/}"
	done
	return 0
}
none_left() { # none_left DESC: no weir process of the test runs (a zombie counts as gone)
	local left
	left=$(ours)
	[ -n "$left" ] && wait_gone $left && left=
	if [ -z "$left" ]; then pass "$1"; else fail "$1"; diag "still running: $left"; fi
}

# ---- bad hosts files and keys: refused before anything starts (no namespaces needed) ----
bad_hosts() { # bad_hosts DESC PATTERN CONTENT [ARGS...]
	local desc=$1 pat=$2
	printf '%b' "$3" >"$T/bad.yaml"
	shift 3
	expect 2 "$pat" "bad hosts file: $desc" -- cluster start --run-dir "$T/badrun" --hosts "$T/bad.yaml" "$@"
}
hdr='jobmanager: 10.1.2.3\ntaskmanagers:\n'
bad_hosts 'no jobmanager' "bad.yaml: no 'jobmanager'" 'taskmanagers:\n  - address: 10.1.2.4\n'
bad_hosts 'no taskmanagers' "bad.yaml: no 'taskmanagers'" 'jobmanager: 10.1.2.3\n'
bad_hosts 'a taskmanager without address' "bad.yaml:3: a taskmanager without 'address'" "$hdr  - slots: 2\n"
bad_hosts 'a bad jobmanager address' "bad.yaml:1: jobmanager: '10.1.2.300' is not an IPv4 or IPv6 address" \
	'jobmanager: 10.1.2.300\ntaskmanagers:\n  - address: 10.1.2.4\n'
bad_hosts 'a host name as address' "bad.yaml:4: address: 'worker1' is not an IPv4 or IPv6 address \\(a host name goes in 'host'\\)" \
	"$hdr  - address: 10.1.2.4\n  - address: worker1\n"
bad_hosts 'a wildcard jobmanager' "bad.yaml:1: jobmanager: '0.0.0.0' is a wildcard" \
	'jobmanager: 0.0.0.0\ntaskmanagers:\n  - address: 10.1.2.4\n'
bad_hosts 'an unknown key in a taskmanager' "bad.yaml:4: unknown key 'slotz' in a taskmanager" \
	"$hdr  - address: 10.1.2.4\n    slotz: 2\n"
bad_hosts 'an unknown key at the top' "bad.yaml:4: unknown key 'workers'" "$hdr  - address: 10.1.2.4\nworkers: 2\n"
bad_hosts 'slots out of range' "bad.yaml:4: slots: '0' is not a whole number from 1 to 1024" \
	"$hdr  - address: 10.1.2.4\n    slots: 0\n"
bad_hosts 'a host that looks like an option' "bad.yaml:4: host: '-oProxyCommand=x' starts with '-'" \
	"$hdr  - address: 10.1.2.4\n    host: -oProxyCommand=x\n"
bad_hosts "a launcher for the jobmanager's host" "bad.yaml:4: launcher: this taskmanager is on the jobmanager's host" \
	"$hdr  - address: 10.1.2.3\n    launcher: ssh\n"
bad_hosts 'a key given twice' "bad.yaml:5: 'slots' is given twice" "$hdr  - address: 10.1.2.4\n    slots: 1\n    slots: 2\n"
bad_hosts 'an empty list' 'bad.yaml:2: taskmanagers: the list is empty' 'jobmanager: 10.1.2.3\ntaskmanagers: []\n'
bad_hosts 'a list of plain values' 'bad.yaml:3: a taskmanager must be a mapping' "$hdr  - 10.1.2.4\n"
bad_hosts 'with --taskmanagers' "lists the taskmanagers: --taskmanagers does not apply" "$hdr  - address: 10.1.2.4\n" \
	--taskmanagers 2
printf 'cluster.launch_timeout_ms: 10\n' >"$T/badkey.yaml"
expect 2 "badkey.yaml:1: cluster.launch_timeout_ms: '10' is not a whole number from 1000 to 600000" \
	'a launch timeout out of range' -- cluster start --run-dir "$T/badrun" --config "$T/badkey.yaml"
printf 'cluster.launcher: "  "\n' >"$T/badkey.yaml"
expect 2 "badkey.yaml:1: cluster.launcher: '  ' has control characters or only blanks" 'a blank launcher' -- \
	cluster start --run-dir "$T/badrun" --config "$T/badkey.yaml"
check 'no bad file made the run folder' test ! -e "$T/badrun"
none_left 'no bad file started a process'

# ---- the bed ----
bed=wh$(($$ % 1000000))
if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1 || ! "$NB" up "$bed" 3 2>"$T/err"; then
	"$NB" down "$bed" >/dev/null 2>&1 || true
	skip "cannot make network namespaces here ($(head -1 "$T/err" 2>/dev/null || echo 'not root or no ip'))" 1
	done_testing
	exit
fi
export WEIR_RUN_DIR="$T/run" WEIR_NETBED=$bed
cleanup() {
	"$NB" exec "$bed" 0 "$WEIR" cluster stop >/dev/null 2>&1
	for p in $(ours); do kill -9 "$p" 2>/dev/null; done
	"$NB" down "$bed"
	[ -n "${WEIR_KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT
a0=$("$NB" addr "$bed" 0) a1=$("$NB" addr "$bed" 1) a2=$("$NB" addr "$bed" 2)
run_weir0() { rc=0; "$NB" exec "$bed" 0 "$WEIR" "$@" >"$T/out" 2>"$T/err" || rc=$?; }

printf 'cluster.launcher: %s\n' "$LAUNCHER" >"$T/cluster.yaml"
cat >"$T/hosts.yaml" <<EOF
# host 0 runs the JobManager and one TaskManager; hosts 1 and 2 one each
jobmanager: $a0
taskmanagers:
  - address: $a0
    slots: 1
  - address: $a1
    slots: 2
  - address: $a2
    host: h2            # the launcher's name for it
    slots: 2
EOF
run_weir0 cluster start --config "$T/cluster.yaml" --hosts "$T/hosts.yaml" --slot-wait 60000
check "cluster start from the hosts file (rc $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(cat "$T/err")"
check 'its summary: the local taskmanager 0 and one on each other host, with their files' \
	test "$(grep -c '^  taskmanager 0 .* 1 slots' "$T/out")" -eq 1 -a \
	"$(grep -cE "^  taskmanager 6[45] +2 slots +pid [0-9]+ +on host ($a1 \(.*hosts.yaml:6\)|h2 \(.*hosts.yaml:8\)) +log $T/run/remote-[12]/taskmanager.log there" "$T/out")" -eq 2
[ -z "${WEIR_VERBOSE:-}" ] || diag "$(cat "$T/out")"
run_weir0 cluster status
cp "$T/out" "$T/status"
check 'status: three taskmanagers, those of hosts 1 and 2 on another host with 2 slots each' \
	test "$(grep -c '^  taskmanager ' "$T/status")" -eq 3 -a \
	"$(grep -cE "2 slots .* data ($a1|$a2):[0-9]+  on host .* \(another host\)$" "$T/status")" -eq 2
check "status: taskmanager 0 is this host's, 1 slot" grep -qE "^  taskmanager 0 .* 1 slots .* data $a0:[0-9]+$" "$T/status"
check 'status: the supervisor runs' grep -qE '^  supervisor +pid [0-9]+' "$T/status"
pids=$(sed -n 's/^  taskmanager [0-9]* *pid \([0-9]*\) .*/\1/p' "$T/status")
# (the pattern from the file: no command line here holds the secret either)
check 'the secret is on no command line' bash -c "! grep -qFf '$T/run/secret' /proc/[0-9]*/cmdline 2>/dev/null"
check 'and in no file of the remote run folders (join removed it)' \
	bash -c "! grep -rqFf '$T/run/secret' '$T/run/remote-1' '$T/run/remote-2'"
check 'the remote run folders are 0700' test "$(stat -c %a "$T/run/remote-1") $(stat -c %a "$T/run/remote-2")" = '700 700'

# ---- a job across the hosts gives local mode's output ----
perl -e 'srand(7); my @v = map { join "", map { ("a".."z")[rand 26] } 1..(1 + int rand 6) } 1..300;
	for (1..6000) { print join(" ", map { $v[rand @v] } 1..(1 + int rand 8)), "\n" }' >"$T/words.txt"
run_weir local "$JOBS/wordcount.so" -q -p 5 -- "$T/words.txt" "$T/local"
LC_ALL=C sort "$T/local"/part-* >"$T/want"
run_weir0 run "$JOBS/wordcount.so" -p 5 --spread -- "$T/words.txt" "$T/cl"
check "wordcount -p 5 --spread runs across the three hosts (rc $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || diag "$(cat "$T/err")"
LC_ALL=C sort "$T/cl"/part-* >"$T/got" 2>/dev/null
check 'with local mode output' cmp -s "$T/want" "$T/got"
check 'hosts 1 and 2 exchanged data over TCP' \
	grep -q 'exchange: data connection with taskmanager 6[45] (.*) ready' "$T/run/remote-1/taskmanager.log" "$T/run/remote-2/taskmanager.log"

# ---- stop ----
run_weir0 cluster stop
check "cluster stop (rc $rc)" test "$rc" -eq 0
check 'it told the taskmanagers of the other hosts' grep -q '1 taskmanagers here and 2 on other hosts' "$T/out"
check 'the launcher found none left there' grep -q 'checked 2 other hosts through the launcher: no taskmanager left running' "$T/out"
check 'every taskmanager exited' wait_gone $pids
none_left 'no weir process of the test is left'
check 'the record of the remote taskmanagers is gone' test ! -e "$T/run/remote-taskmanagers"
check 'the remote taskmanagers stopped on the jobmanager'"'"'s word' \
	grep -q 'the jobmanager says stop' "$T/run/remote-1/taskmanager.log" "$T/run/remote-2/taskmanager.log"
check 'no sanitizer report or crash in any log' \
	bash -c "! grep -qE 'Sanitizer|runtime error|killed by signal' '$T'/run/*.log '$T'/run/remote-*/*.log"

# ---- no taskmanager on the jobmanager's host; the jobmanager dies: stop finds them through the launcher ----
grep -v "address: $a0\|slots: 1" "$T/hosts.yaml" >"$T/hosts-remote.yaml"
run_weir0 cluster start --config "$T/cluster.yaml" --hosts "$T/hosts-remote.yaml"
check "a cluster of two remote taskmanagers only (rc $rc)" test "$rc" -eq 0 -a "$(grep -c '^  taskmanager ' "$T/out")" -eq 2
check 'no supervisor started' bash -c "! grep -q supervisor '$T/out'"
run_weir0 cluster status
check 'status says why no supervisor runs' grep -q 'supervisor: none (no taskmanager of the cluster on this host)' "$T/out"
pids=$(sed -n 's/^  taskmanager [0-9]* *pid \([0-9]*\) .*/\1/p' "$T/out")
jm=$(cat "$T/run/jobmanager.pid")
kill -9 "$jm"
wait_gone "$jm"
wait_for "$T/run/remote-1/taskmanager.log" 'lost the jobmanager' || fail 'the taskmanager on host 1 saw the jobmanager go'
run_weir0 cluster start --config "$T/cluster.yaml" --hosts "$T/hosts-remote.yaml"
check "start refuses while they may still run (rc $rc)" test "$rc" -eq 1
check '... saying to stop first' grep -q 'lists taskmanagers on other hosts of a cluster that was not stopped: run weir cluster stop first' "$T/err"
check '... and the remote taskmanagers still run' bash -c "kill -0 $(echo $pids)"
run_weir0 cluster stop
check "cluster stop without a jobmanager (rc $rc)" test "$rc" -eq 0
check 'stops the two it finds through the launcher, naming them' \
	test "$(grep -c 'taskmanager pid [0-9]* had not stopped: stopped it (SIGTERM)' "$T/out")" -eq 2
check 'they are gone' wait_gone $pids
none_left 'no weir process of the test is left'
[ -z "${WEIR_VERBOSE:-}" ] || diag "$(cat "$T/out" "$T/err")"

# ---- launchers that fail: exit 1 naming the host, nothing left running ----
cat >"$T/unreachable" <<'EOF'
#!/bin/sh
echo "ssh: connect to host $1 port 22: No route to host" >&2
exit 255
EOF
chmod +x "$T/unreachable"
sed "s|host: h2 .*|launcher: $T/unreachable|" "$T/hosts.yaml" >"$T/hosts-bad.yaml"
run_weir0 cluster start --config "$T/cluster.yaml" --hosts "$T/hosts-bad.yaml"
check "a launcher that fails for host 2: exit 1 (rc $rc)" test "$rc" -eq 1
check 'the host and its entry named, with the launcher and its status' \
	grep -qF "taskmanager on host $a2 ($T/hosts-bad.yaml:8): the launcher '$T/unreachable' exited with status 255:" "$T/err"
check "and the launcher's stderr quoted" grep -qF "  ssh: connect to host $a2 port 22: No route to host" "$T/err"
check 'what started was stopped (the taskmanager of host 1 too)' \
	grep -q 'stopped: the jobmanager, 1 taskmanagers here and 1 on other hosts' "$T/out"
none_left 'nothing left running after the failed start'
check 'no record left behind' test ! -e "$T/run/remote-taskmanagers"
[ "$rc" -eq 1 ] || diag "$(cat "$T/out" "$T/err")"

printf 'cluster.launcher: %s\ncluster.remote_weir: /nonexistent/weir\n' "$LAUNCHER" >"$T/noweir.yaml"
run_weir0 cluster start --config "$T/noweir.yaml" --hosts "$T/hosts.yaml"
check "no weir at cluster.remote_weir: exit 1 (rc $rc)" test "$rc" -eq 1
check 'both hosts named, with the shell'"'"'s word from there' \
	test "$(grep -c '/nonexistent/weir: not found' "$T/err")" -eq 2 -a "$(grep -c 'exited with status 127' "$T/err")" -eq 2
none_left 'nothing left running'

sed "s|host: h2 .*|host: h9|" "$T/hosts.yaml" >"$T/hosts-h9.yaml"
run_weir0 cluster start --config "$T/cluster.yaml" --hosts "$T/hosts-h9.yaml"
check "a host the launcher cannot reach: exit 1 (rc $rc)" test "$rc" -eq 1
check 'named, with the launcher'"'"'s reason' grep -q "no such host on bed '$bed'" "$T/err"
none_left 'nothing left running'

# a launcher that hangs (ssh to a host that drops packets): killed after cluster.launch_timeout_ms + 5 s
printf '#!/bin/sh\necho $$ >"%s/hang.pid"\necho "connecting to $1 ..." >&2\nexec sleep 1000\n' "$T" >"$T/hang"
chmod +x "$T/hang"
sed "s|host: h2 .*|launcher: $T/hang|" "$T/hosts.yaml" >"$T/hosts-hang.yaml"
printf 'cluster.launcher: %s\ncluster.launch_timeout_ms: 1000\n' "$LAUNCHER" >"$T/hang.yaml"
run_weir0 cluster start --config "$T/hang.yaml" --hosts "$T/hosts-hang.yaml"
check "a launcher that hangs: exit 1 (rc $rc)" test "$rc" -eq 1
check 'named, killed after 6000 ms, its stderr quoted' \
	grep -qF "taskmanager on host $a2 ($T/hosts-hang.yaml:8): the launcher '$T/hang' did not finish within 6000 ms: killed" "$T/err"
check 'and the launcher is gone (killed and reaped)' bash -c "! kill -0 $(cat "$T/hang.pid" 2>/dev/null || echo 1) 2>/dev/null"
none_left 'nothing left running'

# a TaskManager that cannot start there (an address not of its host): join says why, from its log
cat >"$T/hosts-addr.yaml" <<EOF
jobmanager: $a0
taskmanagers:
  - address: 10.254.254.254
    host: h1
EOF
run_weir0 cluster start --config "$T/cluster.yaml" --hosts "$T/hosts-addr.yaml"
check "a taskmanager that cannot listen on its address: exit 1 (rc $rc)" test "$rc" -eq 1
check "weir cluster join quotes its log" grep -q 'bind: Cannot assign requested address' "$T/err"
none_left 'nothing left running'
[ -z "${WEIR_VERBOSE:-}" ] || diag "$(cat "$T/out" "$T/err")"

# ---- the bed goes ----
"$NB" down "$bed"
check 'no namespace of the bed is left' bash -c "! ip netns list | grep -q '^$bed-'"
check 'nor its bridge' bash -c "! ip link show '$bed-br' >/dev/null 2>&1"
done_testing
