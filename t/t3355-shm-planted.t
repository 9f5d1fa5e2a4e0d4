#!/usr/bin/env bash
# t3355-shm-planted: another local user cannot make a job fail by planting
# names in /dev/shm, and a pool that /dev/shm cannot hold is refused up
# front (issue 13).
#  - A second real user (nobody) sees the cluster's id in `ls /dev/shm` and
#    plants what the next jobs' files were named before (weir-<id>-j<J>a<A>-
#    ch<C>, -tm<K>-db), as files holding OFD owner locks and as symbolic
#    links, and tries to create in the cluster's folder: a job spread over
#    both TaskManagers runs with exact output, and the planted entries are
#    left alone. A local --shm run beside another user's weir-local-
#    folder and file runs, and leaves them alone.
#  - A cluster whose folder name is taken (a symbolic link, another user's
#    folder, a folder of ours that is not 0700) is refused, naming the path
#    and the reason, and nothing is created through the link.
#  - kill -9 of every process of a cluster: cluster stop removes its
#    pool and its folder.
#  - A TaskManager pool of 1 TiB (taskmanager.segments x segment_size) is
#    refused at cluster start, naming the bytes asked and free, exit 1,
#    with nothing left in /dev/shm; so is a weir local --shm pool of 64 TiB.
. "$(dirname "$0")/lib.sh"

export WEIR_RUN_DIR="$T/run"
planted=() # entries the other user made in /dev/shm, removed at exit
planter=    # the other user's process that holds their locks
cleanup() {
	"$WEIR" cluster stop >/dev/null 2>&1
	[ -n "$planter" ] && kill "$planter" 2>/dev/null
	local p
	for p in "${planted[@]}"; do rm -rf "/dev/shm/$p"; done
	rm -rf "$T"
}
trap cleanup EXIT

printf 'a b a\nc a b\nd\n' >"$T/in.txt"
run_weir local "$JOBS/wordcount.so" -q -p 2 -- "$T/in.txt" "$T/local"
LC_ALL=C sort "$T/local"/part-* >"$T/want"
check "the reference run in local mode (rc $rc)" test "$rc" -eq 0 -a -s "$T/want"

# --- another user plants names
if ! other_user_ok; then
	skip "no second user (needs root, setpriv and nobody)" 21
else
	run_weir cluster start --taskmanagers 2 --slots 2
	check "cluster start (rc $rc)" grep -q 'started in' "$T/out"
	id=$(cat "$WEIR_RUN_DIR/cluster.id")
	chmod o+x "$T"
	mkfifo -m 0666 "$T/ready" "$T/gate"
	as_other ls /dev/shm >"$T/seen" 2>&1
	check "the other user sees the cluster's id in ls /dev/shm" grep -qx "weir-$id" "$T/seen"
	names=()
	for j in 1 2; do
		for a in 0 1; do
			for c in 0 1 2 3 4 5 6 7; do names+=("weir-$id-j${j}a$a-ch$c"); done
			names+=("weir-$id-j${j}a$a-tm0-db" "weir-$id-j${j}a$a-tm1-db")
		done
	done
	links=("weir-$id-j1a0-ch0" "weir-$id-j1a0-tm1-db") # the others are files with a held lock
	planted=("${names[@]}")
	# the planter: creates the files and takes their owner lock (F_OFD_SETLK,
	# 37, on byte 0, as weir's owners do), turns two into links to the
	# cluster's pool, tries its folder, says so, and holds on until the gate
	as_other perl -e 'use Fcntl; my ($ready, $gate, $dir, $nl, @n) = @ARGV; my @l = splice @n, 0, $nl; my @h;
		for my $n (@n) { next if grep { $_ eq $n } @l;
			sysopen(my $f, "/dev/shm/$n", O_RDWR | O_CREAT, 0666) or die "$n: $!"; truncate $f, 4096;
			my $fl = pack("s s x4 q q i x4", F_WRLCK, 0, 0, 1, 0);
			fcntl($f, 37, $fl) or die "lock $n: $!"; push @h, $f }
		symlink "/dev/shm/$dir/tm0-pool", "/dev/shm/$_" or die "$_: $!" for @l;
		my $in = sysopen(my $x, "/dev/shm/$dir/j1a0-ch0", O_RDWR | O_CREAT, 0666) ? "created" : "refused: $!";
		my $md = mkdir("/dev/shm/$dir/j1a0") ? "created" : "refused: $!";
		open my $r, ">", $ready or die; print $r "planted ", scalar @h, " locked; in the folder: $in; mkdir: $md\n";
		close $r; open my $g, "<", $gate or die; <$g>' \
		"$T/ready" "$T/gate" "weir-$id" "${#links[@]}" "${links[@]}" "${names[@]}" 2>"$T/planter.err" &
	planter=$!
	timeout 60 cat "$T/ready" >"$T/said"
	check "the other user planted and locked the names: $(cat "$T/said")" \
		grep -q "^planted $((${#names[@]} - ${#links[@]})) locked" "$T/said"
	check "but cannot create in the cluster's folder" \
		grep -q "in the folder: refused: Permission denied; mkdir: refused: Permission denied" "$T/said"
	for mode in packed spread; do
		flag=
		[ "$mode" = spread ] && flag=--spread
		rm -rf "$T/cl"
		run_weir run "$JOBS/wordcount.so" -p 2 $flag -- "$T/in.txt" "$T/cl"
		check "a job $mode over the taskmanagers runs (rc $rc)" test "$rc" -eq 0
		[ "$rc" -eq 0 ] || diag "$(cat "$T/err")"
		LC_ALL=C sort "$T/cl"/part-* >"$T/got" 2>/dev/null
		check "with exact output" cmp -s "$T/want" "$T/got"
	done
	left=0
	for n in "${names[@]}"; do
		if [ -L "/dev/shm/$n" ] || [ "$(stat -c %U "/dev/shm/$n" 2>/dev/null)" = nobody ]; then
			left=$((left + 1))
		fi
	done
	check "the planted entries are left alone ($left of ${#names[@]})" test "$left" -eq "${#names[@]}"
	check "and nothing was written through the links (the pool is still a pool of ours)" \
		test "$(stat -c '%U %F' "/dev/shm/weir-$id/tm0-pool")" = "root regular file"

	# another user's weir-local- folder and file: a local run sweeps past them
	mkdir -m 0777 "/dev/shm/weir-local-1-00000000" && chown nobody "/dev/shm/weir-local-1-00000000"
	as_other touch "/dev/shm/weir-local-1-00000000/pool" "/dev/shm/weir-local-2-pool"
	planted+=("weir-local-1-00000000" "weir-local-2-pool")
	run_weir local "$JOBS/wordcount.so" -q --shm -p 2 -- "$T/in.txt" "$T/lshm"
	LC_ALL=C sort "$T/lshm"/part-* >"$T/got" 2>/dev/null
	check "a local --shm run beside another user's weir-local- files runs right (rc $rc)" \
		cmp -s "$T/want" "$T/got"
	check "and leaves them alone" test -e "/dev/shm/weir-local-1-00000000/pool" -a -e "/dev/shm/weir-local-2-pool"
	timeout 10 sh -c "echo done >'$T/gate'"
	wait "$planter"
	planter=

	# the cluster's folder name taken before its first TaskManager makes it
	# (a cluster id is random per start, so this is a run folder of our own
	# making: a copy of the secret, an id chosen here)
	mkdir -m 0700 "$T/fake"
	cp "$WEIR_RUN_DIR/secret" "$T/fake/secret"
	fid=cf$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	printf '%s' "$fid" >"$T/fake/cluster.id"
	mkdir -m 0777 "$T/evil" && chown nobody "$T/evil"
	as_other ln -s "$T/evil" "/dev/shm/weir-$fid"
	planted+=("weir-$fid")
	expect 1 "shared memory folder '/dev/shm/weir-$fid' is a symbolic link: refusing to use it" \
		'a symbolic link at the folder name is refused, naming it' -- taskmanager --id 7 --slots 1 --run-dir "$T/fake"
	check "and nothing is created through it" test -z "$(ls -A "$T/evil")"
	rm -f "/dev/shm/weir-$fid"
	as_other mkdir -m 0700 "/dev/shm/weir-$fid"
	expect 1 "shared memory folder '/dev/shm/weir-$fid' belongs to uid [0-9]+, not to this user \(uid 0\): refusing" \
		"another user's folder at the name is refused, naming the owner" -- taskmanager --id 7 --slots 1 --run-dir "$T/fake"
	check "and left alone" test "$(stat -c %U "/dev/shm/weir-$fid")" = nobody
	rm -rf "/dev/shm/weir-$fid"
	mkdir -m 0755 "/dev/shm/weir-$fid"
	expect 1 "shared memory folder '/dev/shm/weir-$fid' has mode 0755, not 0700: refusing" \
		"a folder of ours that others may read is refused" -- taskmanager --id 7 --slots 1 --run-dir "$T/fake"
	rmdir "/dev/shm/weir-$fid"

	run_weir cluster stop
	check "cluster stop (rc $rc)" grep -q stopped "$T/out"
	check "leaves nothing of the cluster in /dev/shm (its folder: $(shm_left "weir-$id/") entries)" \
		test ! -e "/dev/shm/weir-$id"
	check_logs "$WEIR_RUN_DIR"
fi

# --- kill -9 of every process of a cluster: stop removes its folder
run_weir cluster start --taskmanagers 1 --slots 1
check "cluster start (rc $rc)" grep -q 'started in' "$T/out"
id=$(cat "$WEIR_RUN_DIR/cluster.id")
sup=$(cat "$WEIR_RUN_DIR/supervisor.pid")
jm=$(cat "$WEIR_RUN_DIR/jobmanager.pid")
tm0=$(sed -n 's/.*taskmanager 0 *[0-9]* slots *pid \([0-9]*\).*/\1/p' "$T/out")
kill -9 "$sup" "$jm" "$tm0"
wait_gone "$sup" "$jm" "$tm0"
check "killed, the cluster leaves its folder, pool and the jobmanager's file ($(shm_left "weir-$id") entries)" \
	test "$(shm_left "weir-$id")" -eq 3
run_weir cluster stop
# (under prove -j, another test's cluster start may sweep this dead cluster's
# files first: every start sweeps the dead clusters of its user, so then
# stop finds nothing left to remove; either way none may be left)
check "stop removes the dead pool and file (or a concurrent start swept them)" \
	bash -c "grep -q 'removed 2 stale shared-memory files' '$T/out' || [ \$(find /dev/shm -maxdepth 2 -path '/dev/shm/weir-$id*' | wc -l) -eq 0 ]"
check "and the folder" test ! -e "/dev/shm/weir-$id"
check_logs "$WEIR_RUN_DIR" 0

# --- a pool larger than /dev/shm can hold
free=$(df -B1 --output=avail /dev/shm | tail -n 1 | tr -d ' ')
printf 'taskmanagers: 1\ntaskmanager.slots: 1\ntaskmanager.segments: 16777215\ntaskmanager.segment_size: 65536\n' \
	>"$T/huge.yaml"
# 16777215 x 65536 + the header and free list: 1 TiB and a bit
expect 1 "pool of 16777215 segments of 65536 bytes \(taskmanager.segments x taskmanager.segment_size\): shared memory '/dev/shm/weir-c[0-9a-f]+/tm0-pool': 1099578675200 bytes \([0-9.]+ MiB\) asked, but /dev/shm has [0-9]+ bytes \([0-9.]+ MiB\) free" \
	"a 1 TiB pool is refused at cluster start, naming the bytes asked and free (/dev/shm has $free)" -- \
	cluster start --config "$T/huge.yaml"
id=$(cat "$WEIR_RUN_DIR/cluster.id")
check "nothing of that cluster is left in /dev/shm ($(shm_left "weir-$id"))" test "$(shm_left "weir-$id")" -eq 0
check "nor its jobmanager" bash -c "! pgrep -f 'weir [j]obmanager --run-dir $WEIR_RUN_DIR' >/dev/null"
run_weir cluster status
check "cluster status says no cluster runs (rc $rc)" test "$rc" -ne 0
expect 1 "segment pool: shared memory '/dev/shm/weir-local-[0-9]+-[0-9a-f]+/pool': [0-9]+ bytes \([0-9.]+ MiB\) asked, but /dev/shm has [0-9]+ bytes" \
	'a weir local --shm pool of 64 TiB is refused, naming the bytes' -- \
	local "$JOBS/wordcount.so" --shm --segment-size 64M --floating 1048576 -- "$T/in.txt" "$T/lbig"
folder=$(sed -n "s|.*'/dev/shm/\(weir-local-[0-9]*-[0-9a-f]*\)/pool'.*|\1|p" "$T/err")
check "and leaves nothing in /dev/shm (${folder:-?})" test -n "$folder" -a ! -e "/dev/shm/${folder:-x}"
done_testing
