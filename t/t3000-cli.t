#!/usr/bin/env bash
# t3000-cli: bad input to `weir local` fails with a non-zero exit and one
# line naming the problem, and leaves no output that looks complete.
. "$(dirname "$0")/lib.sh"

printf 'alpha beta\ngamma\n' >"$T/in.txt"
printf 'not an elf\n' >"$T/text.so"

expect 2 'usage: weir local' 'no command prints the usage' --
run_weir; check 'no arguments: exit 2' test "$rc" -eq 2
expect 2 "unknown command 'frobnicate'" 'unknown command is named' -- frobnicate
expect 2 "unknown option '--bogus'" 'unknown flag is named' -- local "$JOBS/wordcount.so" --bogus
expect 2 "parallelism: 'x' is not a whole number" 'malformed number is named' -- local "$JOBS/wordcount.so" --parallelism x
expect 2 "p: '0' is not a whole number from 1" 'parallelism 0 is refused' -- local "$JOBS/wordcount.so" -p 0
# numbers are checked whole and in range, each naming its flag (the ranges of
# the configuration file, docs/configuration.md)
expect 2 "'99999999999999999999999' is not a job id" 'a job id past 64 bits is refused, not clamped' -- cancel 99999999999999999999999
expect 2 "taskmanagers: '0' is not a whole number from 1 to 64" 'cluster start --taskmanagers 0 names the flag' -- cluster start --taskmanagers 0
expect 2 "slots: '0' is not a whole number from 1 to 1024" 'cluster start --slots 0 is refused, as in the file' -- cluster start --slots 0
expect 2 "port: '65536' is not a whole number from 0 to 65535" 'cluster start --port 65536 names the flag' -- cluster start --port 65536
expect 2 "wait: '2x' is not a whole number" 'cluster status --wait 2x names the flag' -- cluster status --wait 2x
expect 2 "'12abc' is not a whole number" 'trailing garbage in a number is refused' -- local "$JOBS/wordcount.so" --credits 12abc
expect 2 'needs a value' 'a flag without its value' -- local "$JOBS/wordcount.so" -p
expect 2 '12288 is not a power of two' 'segment size must be a power of two' -- local "$JOBS/wordcount.so" --segment-size 12K
expect 2 'no job given' 'local without a job' -- local -p 2
expect 2 "unexpected argument 'extra'" 'a second positional argument' -- local "$JOBS/wordcount.so" extra
expect 1 "job '$T/missing.so': No such file or directory" 'a job path that does not exist' -- local "$T/missing.so"
expect 1 'not a shared object \(no ELF header\)' 'a file that is not a shared object' -- local "$T/text.so"
expect 1 'not a regular file' 'a folder as the job' -- local "$T"
expect 1 "job '$WEIR': cannot load: .*position-independent executable" 'an executable as the job' -- local "$WEIR"
expect 1 'does not export weir_job' 'an object without weir_job' -- local "$TJOBS/nojob.so"
expect 1 'refusing to build: argument count 1' "weir_job's own error message" -- local "$TJOBS/failjob.so"
expect 1 'weir_job returned -5 without a message' 'weir_job failing silently' -- local "$TJOBS/failjob.so" -- silent
expect 1 'usage: wordcount.so -- INPUT OUTDIR' "the job's usage error" -- local "$JOBS/wordcount.so" -- "$T/in.txt"
expect 1 "file source: '$T/nope.txt': No such file or directory" 'an input that does not exist' -- \
	local "$JOBS/wordcount.so" -- "$T/nope.txt" "$T/out1"
expect 1 "file source: '/dev/null' is neither a file nor a folder" 'an input that is a device' -- \
	local "$JOBS/wordcount.so" -- /dev/null "$T/out2"
check 'failed builds create no output folder' test ! -e "$T/out1" -a ! -e "$T/out2"

expect 1 "file sink: '$T/in.txt' exists and is not a folder" 'an output folder that is a file' -- \
	local "$JOBS/wordcount.so" -- "$T/in.txt" "$T/in.txt"
expect 1 "output folder '$T/in.txt/sub': Not a directory" 'an output folder below a file' -- \
	local "$JOBS/wordcount.so" -- "$T/in.txt" "$T/in.txt/sub"
mkdir -p "$T/used" && echo old >"$T/used/part-0"
expect 1 'already holds part files' 'an output folder with part files from before' -- \
	local "$JOBS/wordcount.so" -- "$T/in.txt" "$T/used"
check 'and the old part file is untouched' test "$(cat "$T/used/part-0")" = old

# A user function failing mid-run: the job fails naming the operator, and
# the output folder holds nothing that looks complete.
{ for i in $(seq 1 20000); do echo "line $i"; done; echo poison; for i in $(seq 1 20000); do echo "more $i"; done; } >"$T/poison.txt"
expect 1 "operator 'check' \(subtask [0-9]/2\): found poison" 'a failing user function names operator and subtask' -- \
	local "$TJOBS/userfail.so" -p 2 -- "$T/poison.txt" "$T/pout"
left=$(find "$T/pout" -type f 2>/dev/null | wc -l)
check "no part file or in-progress file is left behind ($left files)" test "$left" -eq 0

# The same job without poison succeeds and commits its parts.
grep -v poison "$T/poison.txt" >"$T/clean.txt"
expect 0 'job finished' 'the same job on clean input succeeds' -- local "$TJOBS/userfail.so" -p 2 -- "$T/clean.txt" "$T/cout"
lines=$(cat "$T/cout"/part-* | wc -l)
check "its parts hold all 40000 lines ($lines)" test "$lines" -eq 40000
hidden=$(find "$T/cout" -name '.*inprogress' | wc -l)
check 'no in-progress files remain after commit' test "$hidden" -eq 0

run_weir version; check 'weir version exits 0' test "$rc" -eq 0
run_weir help; check 'weir help prints the usage on stdout' grep -q 'weir local JOB.so' "$T/out"
cp "$T/out" "$T/help"

# Every subcommand's --help (and -h): its own usage on stdout, starting
# "usage: weir CMD", no other command's, nothing on stderr, exit 0.
# help_case FLAG NAME SYNOPSES ARGS...: NAME is the command as its usage
# line names it, SYNOPSES how many commands the usage shows.
help_case() {
	local flag=$1 name=$2 n=$3 first others
	shift 3
	run_weir "$@" "$flag"
	first=$(head -n 1 "$T/out")
	others=$(grep -c '^       weir ' "$T/out")
	if [ "$rc" -eq 0 ] && [ ! -s "$T/err" ] && { [ "$first" = "usage: weir $name" ] || [ "${first#"usage: weir $name "}" != "$first" ]; } &&
		[ "$(grep -c '^usage: ' "$T/out")" -eq 1 ] && [ "$others" -eq $((n - 1)) ]; then
		pass "weir $* $flag: its usage on stdout, exit 0"
	else
		fail "weir $* $flag: its usage on stdout, exit 0"
		diag "exit $rc; stdout:" "$(cat "$T/out")" "stderr:" "$(cat "$T/err")"
	fi
}
for flag in --help -h; do
	for cmd in local run list cancel savepoint stop top jobmanager; do
		help_case "$flag" "$cmd" 1 "$cmd"
	done
	help_case "$flag" taskmanager 2 taskmanager # in the local cluster, and from another host
	help_case "$flag" version 1 version
	help_case "$flag" help 1 help
	help_case "$flag" 'cluster start' 6 cluster
	for sub in start status stop dashboard join leave; do
		help_case "$flag" "cluster $sub" 1 cluster "$sub"
	done
	help_case "$flag" 'cert ca' 2 cert
	for sub in ca host; do
		help_case "$flag" "cert $sub" 1 cert "$sub"
	done
done
run_weir local "$JOBS/wordcount.so" -p 2 --help
check 'weir local --help after other options: the usage, exit 0' grep -q '^usage: weir local' "$T/out"
run_weir local --help -- "$T/in.txt"
check 'weir local --help before the job arguments: the usage, exit 0' test "$rc" -eq 0

# weir help CMD prints what weir CMD --help does; weir help holds every
# command's usage lines (one text each: they cannot drift apart)
for cmd in local run list cancel savepoint stop top version 'cluster start' 'cluster status' 'cluster stop' \
	'cluster dashboard' 'cluster join' 'cluster leave' 'cert ca' 'cert host'; do
	run_weir $cmd --help
	cp "$T/out" "$T/cmdhelp"
	run_weir help $cmd
	check "weir help $cmd prints the same as weir $cmd --help" cmp -s "$T/out" "$T/cmdhelp"
	sed -n '1,/^$/p' "$T/cmdhelp" | sed '/^$/d; s/^usage: /       /' >"$T/lines"
	check "weir help shows the usage of weir $cmd" perl -e 'local $/; open my $h, "<", $ARGV[0] or die;
		my $help = <$h>; open my $l, "<", $ARGV[1] or die; my $lines = <$l>; $help =~ s/^usage: /       /;
		exit(index($help, $lines) >= 0 ? 0 : 1)' "$T/help" "$T/lines"
done
expect 2 "unknown command 'frobnicate'" 'weir help of an unknown command' -- help frobnicate

# an unknown option is still refused, named, with nothing on stdout
for cmd in local run list cancel savepoint stop top jobmanager taskmanager version 'cluster start' 'cluster status' \
	'cluster stop' 'cluster dashboard' 'cluster join' 'cluster leave' 'cert ca' 'cert host'; do
	expect 2 "option '--bogus'" "weir $cmd --bogus names the option" -- $cmd --bogus
	check "weir $cmd --bogus prints nothing on stdout" test ! -s "$T/out"
done
expect 2 "unknown command 'frob'" 'an unknown cluster command is named, also with --help' -- cluster frob --help
# the commands a launcher runs on another host (t3530 runs them there)
expect 2 '--run-dir D is required' 'cluster join needs its own --run-dir' -- cluster join -- --slots 2
expect 2 '--run-dir D is required' 'cluster leave needs its own --run-dir' -- cluster leave
expect 2 "timeout: '10' is not a whole number from 1000 to 600000" 'cluster join --timeout out of range' -- \
	cluster join --run-dir "$T/j" --timeout 10 -- --slots 2
expect 2 "secret-file is join's to give" 'cluster join refuses a --secret-file to pass on' -- \
	cluster join --run-dir "$T/j" -- --secret-file /etc/passwd
expect 1 'no cluster secret on stdin' 'cluster join without the secret on stdin' -- cluster join --run-dir "$T/j" -- --slots 2 </dev/null
check 'and it starts nothing' test ! -e "$T/j/taskmanager.pid"
expect 2 "hosts file '$T/none.yaml': No such file or directory" 'cluster start --hosts of a missing file' -- \
	cluster start --run-dir "$T/run" --hosts "$T/none.yaml"
expect 2 "unexpected argument '2'" 'weir cancel refuses a second job id' -- cancel 1 2
expect 2 '--run-dir needs a value' 'a flag without its value is named' -- list --run-dir
# the stdout sink: parallel subtasks buffer their lines, and no line is
# ever broken or mixed with another subtask's
run_weir local "$TJOBS/stdoutjob.so" -q -p 2 -- 50000
LC_ALL=C sort "$T/out" >"$T/got"
perl -e 'for (0..49999) { print "line $_ ", "x" x ($_ % 300), "\n" }' | LC_ALL=C sort >"$T/want"
check "stdout from 2 subtasks: every line whole, once (rc $rc)" cmp -s "$T/want" "$T/got"
done_testing
