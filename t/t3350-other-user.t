#!/usr/bin/env bash
# t3350-other-user: another local user (nobody, through setpriv) attacks
# the owner's run folder and checkpoint folders the ways docs/operations.md
# "Security" lists: a link or a folder of theirs planted where the run
# folder will be is refused, naming it; their weir commands on the owner's
# cluster say it is not theirs and exit 1 (not "no cluster running", 0);
# links and folders planted where a job's checkpoints will go are never
# used (the job takes a name of its own beside them, its output exact),
# and nothing of what they point to is written or removed; checkpoint
# files are 0600 in 0700 folders, unreadable to the other user.
. "$(dirname "$0")/lib.sh"

if ! other_user_ok; then
	skip "needs root, setpriv and the user nobody to act as a second local user" 1
	done_testing
	exit
fi
chmod 0711 "$T" # the other user may pass through, not list
S="$T/shared"   # a folder every user may write in, as /tmp (sticky)
mkdir "$S" && chmod 1777 "$S"
export WEIR_RUN_DIR="$S/run"
trap '"$WEIR" cluster stop >/dev/null 2>&1; rm -rf "$T"' EXIT
COUNT=30000 RATE=15000

# ---- the run folder
as_other mkdir "$S/elsewhere"
as_other ln -s "$S/elsewhere" "$S/run"
run_weir cluster start --taskmanagers 2 --slots 2
check "a link planted at the run folder is refused, naming it (rc $rc)" \
	eval "[ $rc -eq 1 ] && grep -q \"run folder '$S/run' is refused: it is a symbolic link\" '$T/err'"
check "nothing was written where it points" test -z "$(ls -A "$S/elsewhere")"
as_other rm "$S/run"
as_other mkdir -m 0700 "$S/run"
run_weir cluster start --taskmanagers 2 --slots 2
check "a folder another user made first is refused, naming its owner (rc $rc)" \
	eval "[ $rc -eq 1 ] && grep -q \"run folder '$S/run' is refused: it belongs to nobody (uid 65534), not to you\" '$T/err'"
as_other rmdir "$S/run"
mkdir -m 0777 "$S/run" && chmod 0777 "$S/run"
run_weir cluster start --taskmanagers 2 --slots 2
check "our own folder that others may write in is refused (rc $rc)" \
	eval "[ $rc -eq 1 ] && grep -q \"run folder '$S/run' is refused: its mode 0777 lets other users write in it\" '$T/err'"
chmod 0755 "$S/run"
run_weir cluster start --taskmanagers 2 --slots 2
check "our own folder, closed to writers: the cluster starts (rc $rc)" grep -q 'started in' "$T/out"
check "and the folder is made private" test "$(stat -c %a "$S/run")" = 700

# ---- the other user's commands on the owner's cluster
for cmd in "cluster stop" "cluster status" "list" "cancel 1"; do
	rc=0
	as_other "$WEIR" $cmd >"$T/out" 2>"$T/err" || rc=$?
	check "another user's weir $cmd: refused, saying the cluster is not theirs (rc $rc)" \
		eval "[ $rc -eq 1 ] && grep -q \"run folder '$S/run' belongs to root (uid 0), not to you\" '$T/err'"
done
run_weir cluster status
check "the cluster still runs (rc $rc)" grep -q 'taskmanager' "$T/out"

# ---- checkpoint folders: the other user knows the cluster id (it names
# the cluster's shared memory) and the next job ids, and plants a link to
# another of the owner's checkpoint folders at job 1's name and a folder
# of their own at job 2's
id=$(cat "$S/run/cluster.id")
mkdir "$S/ck" && chmod 1777 "$S/ck"
mkdir -p "$T/victim/chk-1" && echo keep >"$T/victim/chk-1/_metadata"
as_other ln -s "$T/victim" "$S/ck/$id-job1"
as_other mkdir -m 0777 "$S/ck/$id-job2"
as_other touch "$S/ck/$id-job2/theirs"
"$WEIR" local "$TJOBS/ckjob.so" -q -p 2 -- $COUNT $RATE "$T/ref" 2 2>"$T/err" || { fail "reference run"; diag "$(cat "$T/err")"; }
ck_output "$T/ref" >"$T/want"
for j in 1 2; do
	rm -rf "$T/o"
	run_weir run "$TJOBS/ckjob.so" -p 2 --checkpoint-interval 20 --checkpoint-retain 1 --checkpoint-dir "$S/ck" \
		-- $COUNT $RATE "$T/o" 2
	check "job $j runs beside what was planted at its checkpoint folder (rc $rc)" test "$rc" -eq 0
	[ "$rc" -eq 0 ] || diag "$(cat "$T/err")" "$(tail -5 "$S/run/jobmanager.log")"
	exact "$T/o" "job $j: its output"
	check "job $j: the planted name was refused, and another taken" \
		grep -q "WARN .*checkpoint folder '$S/ck/$id-job$j' is refused: .*; using '$S/ck/$id-job$j-[0-9a-f]\{8\}' instead" \
		"$S/run/jobmanager.log"
	ls -d "$S/ck/$id-job$j"-*/chk-* >/dev/null 2>&1
	check "job $j: its checkpoints are in the folder it took" test $? -eq 0
done
check "nothing was written into or removed from the folder the link points to" \
	test "$(cd "$T/victim" && find . | sort | tr '\n' ' ')" = ". ./chk-1 ./chk-1/_metadata "
check "the other user's folder holds only their file" test "$(ls -A "$S/ck/$id-job2")" = theirs

# ---- checkpoint files are the owner's alone
bad=$(find "$S/ck"/*-job1-* \( -type f ! -perm 0600 \) -o \( -type d ! -perm 0700 \) | wc -l)
files=$(find "$S/ck"/*-job1-* -type f | wc -l)
check "checkpoint files are 0600 and their folders 0700 ($bad of $files files and folders are not)" \
	test "$files" -gt 0 -a "$bad" -eq 0
snap=$(find "$S/ck"/*-job1-* -type f -name '*.snap' | head -1)
rc=0
as_other cat "$snap" >/dev/null 2>"$T/err" || rc=$?
check "the other user cannot read a snapshot (rc $rc)" \
	eval "[ $rc -ne 0 ] && [ -n '$snap' ] && grep -q 'Permission denied' '$T/err'"

run_weir cluster stop
check "cluster stop (rc $rc)" grep -q 'stopped' "$T/out"
check_logs "$S/run" 0
done_testing
