#!/bin/sh
# Run by scripts/vm.sh inside the VM, before the ciphers' crypto modules are loaded: the kernel
# has tls.ko (TCP_ULP "tls" works) but cannot load gcm, chacha20poly1305 and the rest (the
# kernel's modprobe helper points nowhere). `--ktls require` must refuse to start with one
# line naming the suites the kernel refuses; `--ktls auto` must start, say which suites stay
# in userspace TLS, and stop cleanly.
#   tests/vm/ktls_modules.sh SERVER
server=$1
fail=0
check() { # check CONDITION-STATUS WHAT
    if [ "$1" = 0 ]; then echo "ok $2"; else echo "FAIL $2"; fail=1; fi
}
grep -q '^tls ' /proc/modules
check $? "tls.ko is loaded"
grep -qE '^(gcm|chacha20poly1305) ' /proc/modules
[ $? != 0 ]
check $? "gcm and chacha20poly1305 are not loaded"

dir=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
check $? "openssl made a certificate"
base="-p 0 -b 127.0.0.1 --tls-port 0 --tls-cert $dir/cert.pem --tls-key $dir/key.pem"

# shellcheck disable=SC2086
timeout 20 "$server" $base --ktls require >"$dir/req.out" 2>"$dir/req.err"
rc=$?
cat "$dir/req.err"
[ "$rc" != 0 ] && [ "$rc" != 124 ]
check $? "--ktls require without the crypto modules: refused to start (exit $rc)"
[ "$(wc -l <"$dir/req.err")" = 1 ]
check $? "--ktls require: one line on stderr"
grep -q 'kTLS required (--ktls require) but this kernel refuses TLS_TX for TLS 1.2 AES-128-GCM (ENOENT),.*TLS 1.3 ChaCha20-Poly1305 (ENOENT)' "$dir/req.err"
check $? "--ktls require: the line names the refused suites and the error"

# shellcheck disable=SC2086
"$server" $base --ktls auto >"$dir/auto.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 100 ] && ! grep -q 'listening on' "$dir/auto.log"; do
    sleep 0.1
    i=$((i + 1))
done
grep -q 'listening on' "$dir/auto.log"
check $? "--ktls auto without the crypto modules: started"
grep -q 'kTLS: this kernel refuses TLS_TX for TLS 1.2 AES-128-GCM (ENOENT)' "$dir/auto.log"
check $? "--ktls auto: the start-up log names the suites that stay in userspace"
kill -TERM $pid
wait $pid
check $? "--ktls auto: exit 0 on SIGTERM"
grep kTLS "$dir/auto.log"
rm -rf "$dir"
exit $fail
