#!/usr/bin/env bash
# t3040-symbols: libweir.so exports the public API (include/weir/*.h) and
# weir_cli_main, nothing else, so that a job may name its own functions
# and globals as it likes. t/jobs/clash.c defines keyed_get, keyed_put,
# snap_put, weir_kv_get and weir_failpoints_armed, names of engine
# internals, doing other things; run with `weir local`, its output must be
# exactly the one computed here, with its own functions called as often as
# it says, while the engine's keyed state (and, with checkpoints, its
# snapshots) runs on the engine's functions of the same names.
. "$(dirname "$0")/lib.sh"

lib=$WEIR_BUILD/lib/libweir.so
src=$here/..

# ---- what libweir.so exports ------------------------------------------------

# the functions the header declares (comments removed): weir_<name>(
perl -0777 -ne 's{/\*.*?\*/}{}gs; s{//[^\n]*}{}g; print "$1\n" while /\b(weir_\w+)\s*\(/g' \
	"$src"/include/weir/*.h | LC_ALL=C sort -u >"$T/declared"
n=$(wc -l <"$T/declared")
check "the header declares the API ($n functions, weir_emit and weir_job among them)" \
	eval '[ "$n" -ge 50 ] && grep -qx weir_emit "$T/declared" && grep -qx weir_job "$T/declared"'

# what may be exported: those and weir_cli_main (and the symbols some
# linkers define in every shared object)
{ cat "$T/declared"; printf '%s\n' weir_cli_main _init _fini _edata _end __bss_start; } | LC_ALL=C sort -u >"$T/allowed"
if nm -D --defined-only "$lib" >"$T/nm" 2>"$T/nm.err"; then
	awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' "$T/nm" | LC_ALL=C sort -u >"$T/exported"
	pass "nm -D lists libweir.so's dynamic symbols ($(wc -l <"$T/exported"))"
else
	fail "nm -D lists libweir.so's dynamic symbols"
	diag "$(cat "$T/nm.err")"
	: >"$T/exported"
fi
LC_ALL=C comm -23 "$T/exported" "$T/allowed" >"$T/extra"
if [ -s "$T/exported" ] && [ ! -s "$T/extra" ]; then
	pass 'every exported symbol is declared in weir/*.h or is weir_cli_main'
else
	fail 'every exported symbol is declared in weir/*.h or is weir_cli_main'
	diag "exported but not public:" "$(cat "$T/extra")"
fi
grep -vx weir_job "$T/declared" | LC_ALL=C comm -23 - "$T/exported" >"$T/missing"
if [ ! -s "$T/missing" ]; then
	pass 'every function of weir/*.h (but the job'"'"'s weir_job) is exported'
else
	fail 'every function of weir/*.h (but the job'"'"'s weir_job) is exported'
	diag "declared but not exported:" "$(cat "$T/missing")"
fi
check 'weir_cli_main is exported' grep -qx weir_cli_main "$T/exported"

# the job's names are the engine's too (else this test would prove little),
# and none of them is exported
for name in keyed_get keyed_put snap_put weir_kv_get weir_failpoints_armed; do
	if grep -rqE "^[a-z].*[ *]$name(\(| = |;)" "$src/engine" "$src/base"; then
		pass "$name is a name in the engine"
	else
		fail "$name is a name in the engine"
	fi
	check "$name is not exported" eval '! grep -qx "$name" "$T/exported"'
done

# ---- a job with those names ---------------------------------------------------

count=20000 keys=37 modulus=1000
# the output, computed independently: per key its count and sum of values
# (n*n + 7) mod 1000, then the job's own call counts
perl -e 'my ($n, $k, $m) = @ARGV; my (@c, @s); my $sum = 0;
	for my $i (0 .. $n - 1) { my $v = ($i * $i + 7) % $m; $c[$i % $k]++; $s[$i % $k] += $v; $sum += $v }
	my @used = grep { $c[$_] } 0 .. $k - 1;
	print "key $_ count $c[$_] sum $s[$_]\n" for @used;
	print "calls keyed_get=$n weir_kv_get=$n snap_put=$n snap_sum=$sum modulus=$m\n";
	print "calls keyed_put=", scalar(@used), "\n"' "$count" "$keys" "$modulus" | LC_ALL=C sort >"$T/want"

run_clash() { # run_clash DESC [RATE] -- WEIR LOCAL OPTIONS...
	local desc=$1 rate=$2 out="$T/out.$tap_n"
	shift 3
	run_weir local "$TJOBS/clash.so" "$@" -- "$count" "$keys" "$out" $rate
	if [ "$rc" -ne 0 ]; then
		fail "$desc: runs"
		diag "$(cat "$T/err")"
		return
	fi
	if grep -Eq 'AddressSanitizer|runtime error|LeakSanitizer' "$T/err"; then
		fail "$desc: no sanitizer report"
		diag "$(cat "$T/err")"
	fi
	LC_ALL=C sort "$out"/part-* >"$T/got"
	if cmp -s "$T/want" "$T/got"; then
		pass "$desc: output exact, the job's functions called as often as it says"
	else
		fail "$desc: output exact, the job's functions called as often as it says"
		diag "$(diff "$T/want" "$T/got" | head -8)"
	fi
}

run_clash 'parallelism 1' '' -- -q -p 1
run_clash 'parallelism 3' '' -- -q -p 3
run_clash 'parallelism 4 on shared-memory channels' '' -- -q -p 4 --shm
# with checkpoints the engine's snap_put writes every keyed snapshot (at
# least each subtask's last one); the rate spreads the run over several
# checkpoint intervals
run_clash 'parallelism 2, checkpoints every 50 ms' 40000 -- -p 2 --checkpoint-interval 50 --checkpoint-dir "$T/ck"
diag "$(grep -c 'checkpoint [0-9]* complete' "$T/err") checkpoints completed"
done_testing
