#!/usr/bin/env bash
# t3320-config: the cluster's configuration file: its keys take effect,
# flags override them, and a bad file is refused naming file, line and key.
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
cat >"$T/weir.yaml" <<CONF
# a comment
taskmanagers: 2
taskmanager.slots: 3
taskmanager.segments: 64
taskmanager.segment_size: 16384
log_level: debug
CONF
run_weir cluster start --config "$T/weir.yaml" --slots 1
check "start with a configuration file (rc $rc)" grep -q 'started in' "$T/out"
run_weir cluster status
check 'taskmanagers from the file, slots from the flag (2 x 1)' grep -q '2 taskmanagers, 2 slots' "$T/out"
check 'pool sizes from the file' grep -q '(64 x 16384 bytes)' "$T/out"
check 'log level from the file' grep -q 'DEBUG' "$WEIR_RUN_DIR/jobmanager.log"
run_weir cluster stop
check "stop (rc $rc)" grep -q stopped "$T/out"
check_logs "$WEIR_RUN_DIR"

# an IPv6 loopback bind: the taskmanagers read "[::1]:port" and register
if grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
	printf 'jobmanager.bind: "::1"\ntaskmanagers: 1\n' >"$T/v6.yaml"
	run_weir cluster start --config "$T/v6.yaml"
	check "start bound to ::1 (rc $rc)" grep -q 'started in' "$T/out"
	check 'the address file holds [::1]:port' grep -q '^\[::1\]:[0-9]' "$WEIR_RUN_DIR/jobmanager.addr"
	run_weir cluster status --wait 1
	check "the taskmanager registered over IPv6 (rc $rc)" grep -q '1 taskmanagers' "$T/out"
	run_weir cluster stop
	check_logs "$WEIR_RUN_DIR"
else
	skip 'no IPv6 loopback here' 5
fi

# checkpoint and restart defaults for jobs submitted without checkpoint flags
printf 'taskmanagers: 1\ntaskmanager.slots: 2\ncheckpoint.interval_ms: 20\ncheckpoint.dir: %s\nrestart.attempts: 2\nrestart.max_delay_ms: 1000\n' "$T/ckd" >"$T/ck.yaml"
run_weir cluster start --config "$T/ck.yaml"
check "start with checkpoint defaults (rc $rc)" grep -q 'started in' "$T/out"
run_weir run "$TJOBS/ckjob.so" -p 2 -- 4000 8000 "$T/cko"
check "a job without checkpoint flags runs (rc $rc)" test "$rc" -eq 0
run_weir list
check 'and is checkpointed by the defaults' grep -Eq 'restarts 0, checkpoints [1-9][0-9]*' "$T/out"
check 'into checkpoint.dir' test -n "$(find "$T/ckd" -name _metadata)"
"$WEIR" cluster stop >/dev/null 2>&1
check_logs "$WEIR_RUN_DIR"

bad() { # bad DESC CONTENT PATTERN
	printf '%s\n' "$2" >"$T/bad.yaml"
	run_weir cluster start --config "$T/bad.yaml"
	if [ "$rc" -eq 2 ] && grep -Eq -- "$3" "$T/err"; then pass "$1"; else fail "$1"; diag "rc $rc: $(cat "$T/err")"; fi
}
bad 'an unknown key is named with its line' $'taskmanagers: 1\nslotz: 2' "bad.yaml:2: unknown key 'slotz'"
bad 'a bad number is named' 'jobmanager.port: 99999' "jobmanager.port: '99999' is not a whole number from 0 to 65535"
bad 'a segment size that is not a power of two' 'taskmanager.segment_size: 12000' 'not a power of two'
bad 'a key given twice' $'taskmanagers: 1\ntaskmanagers: 2' "'taskmanagers' is given twice"
bad 'a nested mapping' $'jobmanager:\n  port: 1' 'not mappings'
bad 'a list' 'taskmanagers: [1, 2]' 'not lists'
bad 'at-least-once and unaligned together' $'checkpoint.at_least_once: 1\ncheckpoint.unaligned: 1' \
	'checkpoint.at_least_once and checkpoint.unaligned exclude each other'
bad 'not YAML at all' $'taskmanagers: "1\n' 'bad.yaml:'
bad 'a bad log level in the file is named with its line' $'taskmanagers: 1\nlog_level: loud' "bad.yaml:2: log_level: 'loud' is not debug"
bad 'a bad checkpoint interval' 'checkpoint.interval_ms: -5' "checkpoint.interval_ms: '-5' is not a whole number"
bad 'more segments than a pool can index' 'taskmanager.segments: 16777216' "from 16 to 16777215"
bad 'no credit for channels between hosts' 'exchange.credits: 0' "exchange.credits: '0' is not a whole number from 1 to 1024"
run_weir cluster start --config "$T/missing.yaml"
check "a missing file is named (rc $rc)" grep -q "configuration '$T/missing.yaml': No such file" "$T/err"
check 'and nothing started' test ! -e "$WEIR_RUN_DIR/jobmanager.addr"
done_testing
