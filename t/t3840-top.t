#!/usr/bin/env bash
# t3840-top: the cluster in the terminal (engine/cli/top.c), in tmux panes:
#  - weir top shows the running job and its vertices with their rates,
#    redraws in place, and quits on q (the shell gets its screen back);
#    off a terminal it prints one report; bad flags are usage errors; no
#    cluster is a clear error;
#  - weir run's progress line: the job's records in and out and its last
#    checkpoint, one line redrawn in place, erased before the summary;
#    none off a terminal, none with -q.
# Waits follow the panes' output (pipe-pane into a file, wait_for) or poll
# what a pane shows (eventually): no sleeps.
. "$(dirname "$0")/lib.sh"

command -v tmux >/dev/null || { echo "Bail out! no tmux (scripts/setup-deps installs it)"; exit 255; }
export WEIR_RUN_DIR=$T/run
sock=$T/tmux.sock
tm() { tmux -S "$sock" -f /dev/null "$@"; }
trap 'tm kill-server 2>/dev/null; "$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT

run_weir top
check "weir top without a cluster: status 1 ($rc), saying so: $(head -1 "$T/err")" \
	bash -c "test $rc -eq 1 && grep -q 'weir top: ' '$T/err'"
run_weir top --interval 5
check "weir top --interval 5: a usage error (status $rc)" test "$rc" -eq 2
run_weir top --bogus
check "weir top --bogus: a usage error (status $rc)" test "$rc" -eq 2

run_weir cluster start --taskmanagers 2 --slots 2
check "cluster starts (status $rc)" test "$rc" -eq 0
mkdir -p "$T/o1" "$T/o2" "$T/o3"
"$WEIR" run "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 200 --checkpoint-dir "$T/ck" -- 1000000000 5000 "$T/o1" \
	>"$T/run1.out" 2>"$T/run1.err" &
run_pid=$!

# a pane running ARGS (weir with them, in the test's environment), its
# output into $T/NAME.pane (carriage returns as newlines)
pane() {
	local name=$1
	shift
	tm new-session -d -s "$name" -x 180 -y 30 "WEIR_RUN_DIR=$T/run $WEIR $*; echo \"exit \$?\" >$T/$name.exit; echo EXITED"
	tm set-option -t "$name" remain-on-exit on
	tm pipe-pane -t "$name" -o "stdbuf -o0 tr '\\r' '\\n' >>$T/$name.pane"
}
screen() { tm capture-pane -p -t "$1"; }
# the source vertex's OUT/S in top's screen of pane $1 is above 0
top_rates() { screen "$1" | awk '$2 == "sequence" && $5 + 0 > 0 { ok = 1 } END { exit !ok }'; }

pane top top --interval 200
eventually top_rates top
screen top >"$T/top1"
check "weir top: the job, RUNNING, with its checkpoint: $(grep '^JOB' "$T/top1")" \
	grep -Eq '^JOB 1 +ckjob\.so +RUNNING +up .* checkpoint #[0-9]+ ' "$T/top1"
check "its four vertices with parallelism, rates and shares" \
	bash -c "grep -Ec '^  [0-3] +(sequence|count|format|sequence-2) +2 ' '$T/top1' | grep -qx 4"
check "the source sends records: $(grep ' sequence ' "$T/top1")" top_rates top
check "the window's input watermark is shown: $(grep ' count ' "$T/top1")" \
	bash -c "grep -E '^  1 +count ' '$T/top1' | grep -Eq '% +[0-9]+\$'"
check "one screen, redrawn in place (one header on it)" test "$(grep -c '^weir top - cluster' "$T/top1")" -eq 1
tm send-keys -t top q
wait_for "$T/top.pane" "EXITED"
check "q quits (status $(cat "$T/top.exit"))" grep -qx 'exit 0' "$T/top.exit"
# the screen given back: after the last screen drawn, the stream leaves the
# alternate screen and shows the cursor again (what a terminal restores
# from; tmux's own rendering of it is not the test's business)
check "and gives the screen back (the alternate screen is left after the last draw)" \
	perl -e 'local $/; my $s = <STDIN>; my $draw = rindex($s, "weir top - cluster");
		my $leave = rindex($s, "\e[?1049l"); exit($draw >= 0 && $leave > $draw && index($s, "\e[?25h", $draw) > $draw ? 0 : 1)' \
	<"$T/top.pane"

run_weir top -n 2 --interval 100
check "off a terminal: reports one after another, -n of them (status $rc)" \
	bash -c "test $rc -eq 0 && test \$(grep -c '^weir top - cluster' '$T/out') -eq 2 && grep -q '^JOB 1 ' '$T/out'"

# weir run's progress line
pane run run "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 200 --checkpoint-dir "$T/ck" -- 1000000000 5000 "$T/o2"
wait_for "$T/run.pane" "| checkpoint "
wait_for "$T/run.pane" "weir run: 2 s | "   # drawn again since
screen run >"$T/run1"
check "weir run's line: records in and out, shares, the last checkpoint: $(grep -m1 '^weir run: [0-9]' "$T/run1")" \
	grep -Eq '^weir run: [0-9]+ s \| in [0-9,]+ \([0-9,]+/s\) \| out [0-9,]+ \([0-9,]+/s\) \| busy [0-9]+%, backpressured [0-9]+% \| checkpoint [0-9]+, [0-9.]+ s ago' "$T/run1"
check "one line, redrawn in place ($(grep -c '^weir run: [0-9]' "$T/run1") on the screen)" \
	test "$(grep -c '^weir run: [0-9]' "$T/run1")" -eq 1
"$WEIR" cancel 2 >/dev/null 2>&1
wait_for "$T/run.pane" "EXITED"
tm capture-pane -p -S - -t run >"$T/run2"
check "cancelled, weir run says so (status $(cat "$T/run.exit"))" \
	bash -c "grep -qx 'exit 130' '$T/run.exit' && grep -q '^weir run: job 2 (ckjob.so) canceled' '$T/run2'"
check "and the line is gone, from the screen and its history" bash -c "! grep -q '| in ' '$T/run2'"

run_weir run "$TJOBS/ckjob.so" -p 2 -- 3000 0 "$T/o3"
check "off a terminal weir run draws no line (status $rc)" \
	bash -c "test $rc -eq 0 && ! grep -q \$'\\r' '$T/err' && ! grep -q '| in ' '$T/err' '$T/out'"
mkdir -p "$T/o4"
pane quiet run -q "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 200 --checkpoint-dir "$T/ck" -- 20000 5000 "$T/o4"
wait_for "$T/quiet.pane" "EXITED"
check "-q on a terminal: the job runs (status $(cat "$T/quiet.exit")), no line" \
	bash -c "grep -qx 'exit 0' '$T/quiet.exit' && ! grep -q '| in ' '$T/quiet.pane'"

"$WEIR" cancel 1 >/dev/null 2>&1
wait "$run_pid"
done_testing
