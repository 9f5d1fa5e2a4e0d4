#!/usr/bin/env bash
# t3060-cert: `weir cert` makes a cluster CA and host certificates. The
# success path: the files, modes 0600 in a 0700 folder, and (when the
# openssl program is here) a host certificate that `openssl verify
# -CAfile` accepts for TLS server and client use, with its names. Refused
# with exit 1, naming the problem and leaving what was there alone: a
# second CA or the same host again in a folder, a folder that is a
# symbolic link, one others may write in, another user's (as root), a
# host without a CA, a CA key others may read. Bad usage exits 2.
. "$(dirname "$0")/lib.sh"

D=$T/pki

# made DESC ARGS...: weir exits 0, with nothing on stderr
made() {
	local desc=$1
	shift
	run_weir "$@"
	if [ "$rc" -eq 0 ] && [ ! -s "$T/err" ]; then
		pass "$desc"
	else
		fail "$desc"
		diag "weir $*" "exit $rc; stderr:" "$(cat "$T/err")"
	fi
}
mode() { stat -c %a "$1"; }

# ---- the success path ---------------------------------------------------------

made 'cert ca makes a CA' cert ca --dir "$D"
check "and says where ($(head -c 80 "$T/out"))" grep -q "cluster CA made in '$D'" "$T/out"
check 'the folder is 0700' test "$(mode "$D")" = 700
check 'ca.crt and ca.key are 0600' test "$(mode "$D/ca.crt") $(mode "$D/ca.key")" = '600 600'
made 'cert host makes a host certificate' cert host --dir "$D" --name tm-1.example --ip 10.0.0.5 --ip ::1
check 'and says which files go to the host' grep -q "tm-1.example.crt and tm-1.example.key go to that host" "$T/out"
check 'its files are 0600' test "$(mode "$D/tm-1.example.crt") $(mode "$D/tm-1.example.key")" = '600 600'
made 'a second host, without addresses' cert host --dir "$D" --name jm
check 'nothing else is in the folder' test "$(cd "$D" && ls | tr '\n' ' ')" = 'ca.crt ca.key jm.crt jm.key tm-1.example.crt tm-1.example.key '

mkdir "$T/loose" && chmod 0755 "$T/loose"
made 'a CA in an existing folder that others may read' cert ca --dir "$T/loose"
check 'which is made 0700' test "$(mode "$T/loose")" = 700

if command -v openssl >/dev/null 2>&1; then
	o() { openssl "$@" >"$T/ossl" 2>&1; }
	o verify -CAfile "$D/ca.crt" "$D/tm-1.example.crt"
	check "openssl verify -CAfile accepts the host certificate ($(head -n 1 "$T/ossl"))" grep -q ': OK$' "$T/ossl"
	o verify -CAfile "$D/ca.crt" -purpose sslserver "$D/jm.crt"
	check 'as a TLS server' grep -q ': OK$' "$T/ossl"
	o verify -CAfile "$D/ca.crt" -purpose sslclient "$D/jm.crt"
	check 'and as a TLS client' grep -q ': OK$' "$T/ossl"
	o verify -CAfile "$T/loose/ca.crt" "$D/jm.crt"
	check "another CA does not accept it ($(grep -m1 error "$T/ossl"))" eval '! grep -q ": OK$" "$T/ossl"'
	o x509 -in "$D/tm-1.example.crt" -noout -subject -ext subjectAltName,basicConstraints
	check 'its subject is CN = tm-1.example' grep -q 'subject=CN = tm-1.example$' "$T/ossl"
	check 'its names are DNS:tm-1.example, IP 10.0.0.5 and IP ::1' \
		grep -q 'DNS:tm-1.example, IP Address:10.0.0.5, IP Address:0:0:0:0:0:0:0:1' "$T/ossl"
	check 'it is not a CA' grep -q 'CA:FALSE' "$T/ossl"
	o x509 -in "$D/ca.crt" -noout -ext basicConstraints,keyUsage -enddate
	check 'the CA is a CA, signing certificates' eval 'grep -q "CA:TRUE" "$T/ossl" && grep -q "Certificate Sign" "$T/ossl"'
	end=$(sed -n 's/^notAfter=//p' "$T/ossl")
	years=$(( ($(date -d "$end" +%s) - $(date +%s)) / 86400 / 365 ))
	check "the CA is valid for 10 years ($end)" test "$years" -eq 9 -o "$years" -eq 10
	o pkey -in "$D/tm-1.example.key" -noout -text
	check 'the host key is EC P-256' grep -q 'NIST CURVE: P-256' "$T/ossl"
else
	skip 'no openssl program to check the certificates with' 10
fi

# ---- refused --------------------------------------------------------------------

cp -p "$D/ca.crt" "$D/ca.key" "$T/"
expect 1 "cluster CA: '$D/ca.key' exists \(refusing to overwrite it\)" 'a second CA in the folder is refused, naming the file' -- \
	cert ca --dir "$D"
check 'and the CA is untouched' eval 'cmp -s "$D/ca.crt" "$T/ca.crt" && cmp -s "$D/ca.key" "$T/ca.key"'
cp -p "$D/jm.crt" "$T/jm.crt"
expect 1 "host 'jm': '$D/jm.key' exists \(refusing to overwrite it\)" 'the same host again is refused' -- \
	cert host --dir "$D" --name jm
check 'and its certificate is untouched' cmp -s "$D/jm.crt" "$T/jm.crt"

mkdir "$T/real" && ln -s "$T/real" "$T/link"
expect 1 "certificate folder '$T/link' is refused: it is a symbolic link" 'a folder that is a symbolic link is refused' -- \
	cert ca --dir "$T/link"
check 'and nothing is written through it' test -z "$(ls -A "$T/real")"
ln -s "$D" "$T/pki-link"
expect 1 'is refused: it is a symbolic link' 'also for a host' -- cert host --dir "$T/pki-link" --name tm-2
check 'and nothing is written through it' test ! -e "$D/tm-2.key"

mkdir "$T/open" && chmod 0777 "$T/open"
expect 1 'lets other users write in it' 'a folder others may write in is refused' -- cert ca --dir "$T/open"
check 'and nothing is written in it' test -z "$(ls -A "$T/open")"

if [ "$(id -u)" -eq 0 ]; then
	mkdir "$T/theirs" && chown nobody "$T/theirs"
	expect 1 "it belongs to nobody" "another user's folder is refused, naming the user" -- cert ca --dir "$T/theirs"
	check 'and nothing is written in it' test -z "$(ls -A "$T/theirs")"
else
	skip 'not root: no other user to give a folder to' 2
fi

expect 1 "certificate folder '$T/none' does not exist \(make the CA first: weir cert ca --dir $T/none\)" \
	'a host without a CA folder' -- cert host --dir "$T/none" --name tm-2
mkdir -m 0700 "$T/empty"
expect 1 "CA certificate '$T/empty/ca.crt': No such file" 'a host without a CA in the folder' -- \
	cert host --dir "$T/empty" --name tm-2
check 'leaves no file' test -z "$(ls -A "$T/empty")"
chmod 0644 "$D/ca.key"
expect 1 "CA key '$D/ca.key': mode 0644 lets group or others at it \(chmod 600 it\)" 'a CA key others may read is refused' -- \
	cert host --dir "$D" --name tm-2
chmod 0600 "$D/ca.key"

# ---- bad usage ------------------------------------------------------------------

expect 2 'usage: weir cert ca' 'cert alone prints the usage' -- cert
expect 2 "unknown command 'frob'" 'an unknown cert command is named' -- cert frob
expect 2 '--dir is required' 'cert ca without --dir' -- cert ca
expect 2 '--dir needs a value' 'a flag without its value' -- cert ca --dir
expect 2 '--name is required' 'cert host without --name' -- cert host --dir "$D"
expect 2 "unknown option '--name'" 'cert ca takes no --name' -- cert ca --dir "$T/x" --name a
expect 2 "unexpected argument 'extra'" 'an argument too many' -- cert ca --dir "$T/x" extra
expect 2 '--dir given twice' 'a flag given twice' -- cert ca --dir "$T/x" --dir "$T/y"
expect 2 "--name: host name 'a/b': character 2 is not a letter" 'a host name with a slash' -- cert host --dir "$D" --name a/b
expect 2 "host name 'ca' is taken by the CA's files" "the host name 'ca'" -- cert host --dir "$D" --name ca
expect 2 "--ip: address '300.1.1.1' is not an IPv4 or IPv6 literal" 'a bad address' -- \
	cert host --dir "$D" --name tm-2 --ip 300.1.1.1
args=()
for i in $(seq 1 17); do args+=(--ip "10.0.0.$i"); done
expect 2 'more than 16 --ip' 'seventeen addresses' -- cert host --dir "$D" --name tm-2 "${args[@]}"
check 'bad usage wrote nothing' test ! -e "$T/x" -a ! -e "$D/tm-2.key" -a ! -e "$D/a"
run_weir cert --help
check 'cert --help shows both commands on stdout' eval '[ "$rc" -eq 0 ] && grep -q "^usage: weir cert ca" "$T/out" &&
	grep -q "^       weir cert host --dir D --name NAME" "$T/out"'

done_testing
