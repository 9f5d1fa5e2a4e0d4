#!/usr/bin/env bash
# t3730-progress: weir local's progress line on a terminal (a tmux pane):
# one line redrawn in place with the records in and out, erased at the
# end before the summary; nothing of it on a pipe, nothing with -q. The
# job (t/jobs/held.c) emits its records and holds until a file exists, so
# the line's figures are final while it still runs. No sleeps: waits
# follow the pane's output through pipe-pane into a file (wait_for).
. "$(dirname "$0")/lib.sh"

command -v tmux >/dev/null || { echo "Bail out! no tmux (scripts/setup-deps installs it)"; exit 255; }
sock=$T/tmux.sock
tm() { tmux -S "$sock" -f /dev/null "$@"; }
trap 'tm kill-server 2>/dev/null; rm -rf "$T"' EXIT

# run_pane NAME ARGS...: weir local ARGS in a new pane, its output into
# $T/NAME.pane; the pane stays after the command ends
run_pane() {
	local name=$1
	shift
	tm new-session -d -s "$name" -x 200 -y 15 \
		"$WEIR local $*; echo \"exit \$?\" >$T/$name.exit; echo EXITED"
	tm set-option -t "$name" remain-on-exit on
	# carriage returns become newlines, unbuffered: wait_for reads lines
	tm pipe-pane -t "$name" -o "stdbuf -o0 tr '\\r' '\\n' >>$T/$name.pane"
}

run_pane live "$TJOBS/held.so" -p 1 -- 5000 "$T/gate"
wait_for "$T/live.pane" "out 5,000 ("
wait_for "$T/live.pane" "weir: 2 s | " # drawn again since: in place?
tm capture-pane -p -t live >"$T/screen1"
check "the line says the records in and out: $(grep -m1 'weir: ' "$T/screen1")" \
	grep -q '^weir: [0-9]* s | in 5,000 ([0-9,]*/s) | out 5,000 ([0-9,]*/s) | busy [0-9]*%, backpressured [0-9]*%' "$T/screen1"
check "one line, redrawn in place ($(grep -c '^weir: .* | in ' "$T/screen1") on the screen)" \
	test "$(grep -c '^weir: .* | in ' "$T/screen1")" -eq 1
touch "$T/gate"
wait_for "$T/live.pane" "EXITED"
tm capture-pane -p -S - -t live >"$T/screen2" # the history too: a dead pane's note may scroll it
check "the job ends well ($(cat "$T/live.exit"))" grep -qx 'exit 0' "$T/live.exit"
check "the summary follows" grep -q '^weir: job finished in' "$T/screen2"
check "and the progress line is gone, from the screen and its history" bash -c "! grep -q '| in ' '$T/screen2'"

# not on a pipe: stdout and stderr into files
touch "$T/gate2"
run_weir local "$TJOBS/held.so" -p 1 -- 5000 "$T/gate2"
check "off a terminal the job runs (status $rc)" test "$rc" -eq 0
check "and draws no line (no carriage return, no '| in')" \
	bash -c "! grep -q \$'\\r' '$T/err' && ! grep -q '| in ' '$T/err' '$T/out'"

# -q on a terminal: neither the line nor the summary
run_pane quiet -q "$TJOBS/held.so" -p 1 -- 5000 "$T/gate2"
wait_for "$T/quiet.pane" "EXITED"
tm capture-pane -p -S - -t quiet >"$T/screen3"
check "-q: the job ends well ($(cat "$T/quiet.exit"))" grep -qx 'exit 0' "$T/quiet.exit"
check "-q: no progress line, no summary" bash -c "! grep -q '^weir: ' '$T/screen3' && ! grep -q '| in ' '$T/quiet.pane'"
done_testing
