#!/usr/bin/env bash
# t3370-truncate: an input file that changes while the file source reads
# it (issue 13). The test job (t/jobs/trunc_gate.c) pauses after its
# source has read the first buffer of a 4 MiB file and says so through a
# FIFO; the test then truncates the file (or replaces it, or appends to
# it) and opens the gate. Truncated or replaced: weir local exits
# non-zero naming the file, and so does the same job on a cluster (weir
# run fails, weir list shows it failed with that reason). Appended: the
# job reads what is there (docs/api.md) and exits 0. A restore from a
# checkpoint whose position is past the end of the file (truncated since)
# is refused, naming the file. No sleeps.
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
mkfifo "$T/fifo" "$T/gate"
lines=200000
make_input() { perl -e 'printf "line %06d\n", $_ for 1 .. $ARGV[0]' "$lines" >"$T/in.txt"; }

# gated CHANGE -- WEIR ARGS: run weir with the job in the background, wait
# until it says it runs, apply CHANGE to the input, open the gate, wait for
# weir; status in $rc, stderr in $T/err. (The FIFOs are opened both ways, so
# a job that died early fails the test after 120 s instead of hanging it.)
gated() {
	local change=$1
	shift 2
	rm -rf "$T/out.d"
	make_input
	"$WEIR" "$@" >"$T/out" 2>"$T/err" &
	local pid=$! line=
	exec 4<>"$T/fifo" 5<>"$T/gate"
	read -r -t 120 -u 4 line || diag "the job did not say it runs: $(cat "$T/err")"
	$change
	echo go >&5
	rc=0
	wait "$pid" || rc=$?
	exec 4<&- 5>&-
}
truncate_it() { truncate -s 1000 "$T/in.txt"; }
replace_it() { printf 'other\n' >"$T/other.txt"; mv "$T/other.txt" "$T/in.txt"; }
append_it() { printf 'appended %d\n' 1 2 3 >>"$T/in.txt"; }
job=("$TJOBS/trunc_gate.so" -p 1 -- "$T/in.txt" "$T/fifo" "$T/gate" "$T/out.d")

gated truncate_it -- local -q "${job[@]}"
check "weir local: a file truncated while read fails the job (rc $rc)" test "$rc" -ne 0
check 'naming the file and what changed' grep -q "'$T/in.txt' shrank while it was read: 1000 bytes, it had $((lines * 12))" "$T/err"
n=$(cat "$T"/out.d/part-* 2>/dev/null | wc -l)
check "and commits no output ($n lines)" test "$n" -eq 0
grep -q . "$T/err" && diag "$(head -3 "$T/err")"

gated replace_it -- local -q "${job[@]}"
check "weir local: a file replaced while read fails the job (rc $rc)" test "$rc" -ne 0
check 'naming the file' grep -q "'$T/in.txt' was replaced while it was read" "$T/err"

gated append_it -- local -q "${job[@]}"
check "weir local: a file appended to while read is fine (rc $rc)" test "$rc" -eq 0
n=$(cat "$T"/out.d/part-* 2>/dev/null | wc -l)
check "its last subtask reads what is there at the end ($n lines)" test "$n" -eq $((lines + 3))


# a restore whose recorded position is past the file's end: the job (on a
# 12 MB file) dies right after its second checkpoint, which its source
# took after the gate opened, after some lines and (at 20 ms) long before
# the end of the file; the file is truncated, the restore is refused
# naming it. (The first checkpoint may have come before the first record.)
untouched() { :; }
make_input() { perl -e 'printf "line %07d\n", $_ for 1 .. 1000000' >"$T/in.txt"; }
WEIR_FAILPOINT=checkpoint.complete:2:kill-self gated untouched -- local -q --checkpoint-interval 20 \
	--checkpoint-dir "$T/ck" "${job[@]}"
make_input() { perl -e 'printf "line %06d\n", $_ for 1 .. $ARGV[0]' "$lines" >"$T/in.txt"; }
base=$(ls -d "$T"/ck/job-* 2>/dev/null | head -1)
check "a run killed after its second checkpoint (rc $rc) left it in '${base#"$T"/}'" test -n "$base" -a "$rc" -ne 0
truncate -s 10 "$T/in.txt"
printf 'go\n' >"$T/gate.txt" # not gated this time: the map reads its line at once
job2=("$TJOBS/trunc_gate.so" -p 1 -- "$T/in.txt" /dev/null "$T/gate.txt" "$T/out.d")
run_weir local -q --checkpoint-interval 20 --checkpoint-dir "$T/ck" --from-checkpoint "$base" "${job2[@]}"
check "a restore past the end of the truncated file fails (rc $rc)" test "$rc" -ne 0
check 'naming the file and the position' grep -q "'$T/in.txt' is 10 bytes, shorter than the checkpoint's position" "$T/err"
grep -q . "$T/err" && diag "$(grep -v INFO "$T/err" | head -3)"

run_weir cluster start --taskmanagers 1 --slots 2
check "cluster start (rc $rc)" grep -q 'started in' "$T/out"
gated truncate_it -- run "${job[@]}"
check "weir run: a file truncated while read fails the job (rc $rc)" test "$rc" -eq 1
check 'naming the file' grep -q "'$T/in.txt' shrank while it was read" "$T/err"
grep -q . "$T/err" && diag "$(head -3 "$T/err")"
run_weir list
check 'weir list shows it failed with that reason' grep -q "failed.*'$T/in.txt' shrank while it was read" "$T/out"
gated replace_it -- run "${job[@]}"
check "weir run: a file replaced while read fails the job (rc $rc)" test "$rc" -eq 1
check 'naming the file' grep -q "'$T/in.txt' was replaced while it was read" "$T/err"
run_weir cluster stop
check_logs "$WEIR_RUN_DIR"
done_testing
