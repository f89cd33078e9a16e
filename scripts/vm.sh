#!/bin/bash
# The VM stage: runs the tests that touch the kernel inside qemu, on the kernels users run.
#
#   scripts/vm.sh [--build DIR] [--tests REGEX] [--keep]
#
# For each kernel in VM_KERNELS (Debian package names, or `debian12` for the kernel that
# Debian 12's linux-image-cloud-amd64 depends on; default `debian12`):
#   1. the package comes from apt (`apt-get download`, never installed on this machine) and
#      is kept, unpacked, under VM_CACHE (default ~/.cache/uringws-vm) for the next run;
#   2. an initramfs is built in DIR/vm/<kernel>/ from what the build produced: busybox, the
#      tests' executables and scripts with the shared libraries ldd names, node and the npm
#      modules, openssl, the kernel's tls and crypto modules (with their dependencies,
#      loaded at boot), all at the same paths as here;
#   3. qemu boots it (TCG; VM_ACCEL=kvm to use /dev/kvm), /init loads the modules and runs
#      the selected ctest entries one by one with their own timeouts stretched by
#      VM_SLOWDOWN (emulation), printing each one's output; then it powers off.
# The exit status is 0 only when every selected test passed in every kernel's VM. A VM that
# cannot be built or booted, or that stops before the end, fails with the reason.
#
# Environment: VM_KERNELS, VM_ACCEL (tcg|kvm), VM_CACHE, VM_MEM (MiB, default 3072),
# VM_SMP (default 2), VM_SLOWDOWN (timeout factor, default 4), VM_TESTS (as --tests),
# VM_BENCH=1 (also run tests/vm/ktls_bench.js: kTLS vs userspace TLS vs ws, after the tests).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build="$here/build"
keep=0
# The ctest entries that touch the kernel and need no browser: the unit tests of the
# network layer and TLS, and the Node.js integration tests of the server.
tests='^(test_net_(smoke|xcore|limits|metrics|udata|timer)|test_ktls|test_tls|integration_(handshake|echo|cli|pieces|wss|wss_errors|ktls|limits|hostile|conformance|churn|storm|storm_regular_fds|api))$'
tests=${VM_TESTS:-$tests}
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --tests) tests=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vm.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

kernels=${VM_KERNELS:-debian12}
accel=${VM_ACCEL:-tcg}
cache=${VM_CACHE:-${HOME:-/root}/.cache/uringws-vm}
mem=${VM_MEM:-3072}
smp=${VM_SMP:-2}
slowdown=${VM_SLOWDOWN:-4}

die() { echo "vm.sh: $*" >&2; exit 1; }

for tool in qemu-system-x86_64 busybox cpio depmod modprobe apt-get dpkg-deb ldd; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh --test installs it)"
done
case "$accel" in
tcg) accel_args=(-accel tcg -cpu max) ;;
kvm) [ -w /dev/kvm ] || die "VM_ACCEL=kvm but /dev/kvm is not usable"; accel_args=(-accel kvm -cpu host) ;;
*) die "VM_ACCEL must be tcg or kvm, not $accel" ;;
esac
[ -x "$build/uringws" ] || die "no server in $build (build first)"

# The Debian package behind a VM_KERNELS entry.
resolve() {
    case "$1" in
    debian12)
        apt-cache depends linux-image-cloud-amd64 2>/dev/null |
            awk '/Depends: linux-image-[0-9]/ { print $2; exit }' ;;
    *) echo "$1" ;;
    esac
}

# Unpacks the kernel package into the cache once; prints the unpacked root.
fetch_kernel() {
    local pkg=$1 dir="$cache/$1"
    if [ ! -f "$dir/.done" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        (cd "$dir" && apt-get download "$pkg" >/dev/null 2>&1) ||
            { apt-get update >/dev/null 2>&1 || true
              (cd "$dir" && apt-get download "$pkg" >/dev/null 2>&1); } ||
            die "apt-get download $pkg failed"
        dpkg-deb -x "$dir"/*.deb "$dir/root" || die "dpkg-deb -x of $pkg failed"
        rm -f "$dir"/*.deb
        local kver
        kver=$(ls "$dir/root/lib/modules")
        depmod -b "$dir/root" "$kver" || die "depmod for $pkg failed"
        touch "$dir/.done"
    fi
    echo "$dir/root"
}

# Copies files into the initramfs tree at the same path, with the libraries they load.
stage() {
    local root=$1; shift
    local f
    for f in "$@"; do
        [ -e "$f" ] || continue
        mkdir -p "$root$(dirname "$f")"
        cp -aL "$f" "$root$f" 2>/dev/null || cp -a "$f" "$root$f"
        [ "$(head -c 4 "$f" | tr -d '\177')" = ELF ] || continue
        { ldd "$f" 2>/dev/null || true; } | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' |
            while read -r lib; do
                [ -e "$root$lib" ] && continue
                mkdir -p "$root$(dirname "$lib")"
                cp -L "$lib" "$root$lib"
            done
    done
}

# The selected tests as a runner for /init: name, timeout, working directory, command.
runner() {
    (cd "$build" && ctest --show-only=json-v1) | /usr/bin/python3 -c '
import json, re, shlex, sys
pat, slow = re.compile(sys.argv[1]), float(sys.argv[2])
# Under emulation a 200-client room per suite takes four minutes; 40 clients exercise the
# same paths (every suite in kTLS, hand-offs, broadcast) in under one.
vm_args = {"integration_wss": ["--clients", "40"]}
for t in json.load(sys.stdin)["tests"]:
    if not pat.search(t["name"]) or not t.get("command"):
        continue
    p = {x["name"]: x["value"] for x in t.get("properties", [])}
    cwd = p.get("WORKING_DIRECTORY", "/")
    tmo = int(float(p.get("TIMEOUT", 300)) * slow)
    print("run_test %s %d %s %s" % (t["name"], tmo, shlex.quote(cwd),
                                  " ".join(shlex.quote(a) for a in t["command"] + vm_args.get(t["name"], []))))
' "$tests" "$slowdown"
}

# Files the selected tests run: their commands' absolute paths, plus what they use.
test_files() {
    grep -o "/[^ ']*" "$1" | sort -u | while read -r f; do
        [ -f "$f" ] && echo "$f"
    done
}

# Copies modules $5... of the unpacked kernel, with what they depend on and in loading order,
# and lists them in $4 (skipping those an earlier list has).
stage_modules() {
    local kroot=$1 kver=$2 root=$3 list=$4
    shift 4
    : >"$root/$list"
    local m line ko
    for m in "$@"; do
        modprobe -d "$kroot" -S "$kver" --show-depends "$m" 2>/dev/null |
            while read -r line; do
                case "$line" in insmod*) ;; *) continue ;; esac
                ko=$(echo "$line" | awk '{ print $2 }')
                ko=${ko#"$kroot"}
                cat "$root"/modules.* 2>/dev/null | grep -qx "$ko" && continue
                mkdir -p "$root$(dirname "$ko")"
                cp "$kroot$ko" "$root$ko"
                echo "$ko" >>"$root/$list"
            done
    done
    [ -s "$root/$list" ] || die "no modules for $list in $kver"
}

build_initramfs() {
    local kroot=$1 kver=$2 out=$3
    local root="$out/root"
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,etc,root}
    cp "$(command -v busybox)" "$root/bin/busybox"
    runner >"$out/tests.sh"
    [ -s "$out/tests.sh" ] || die "no ctest entry matches $tests"
    cp "$out/tests.sh" "$root/tests.sh"
    # Executables and scripts, the server, and what the Node.js tests load.
    mapfile -t files < <(test_files "$out/tests.sh")
    stage "$root" "${files[@]}" "$build/uringws" "$(command -v openssl)" "$(command -v node)" \
        "$(command -v setarch)"
    local d
    for d in "$here/tests/integration" "$here/tests/vm" "$here/net/pages"; do
        mkdir -p "$root$d"
        cp -a "$d/." "$root$d/"
    done
    mkdir -p "$root/usr/lib/ssl"
    cp -aL /usr/lib/ssl/openssl.cnf "$root/usr/lib/ssl/" 2>/dev/null || true
    # Kernel modules, dependencies first: tls (modules.tls), then the AEADs kTLS uses, in two
    # steps: AES-GCM (modules.aes) after tests/vm/ktls_modules.sh checked the server without
    # any, ChaCha20-Poly1305 (modules.chacha) after ktls.js --userspace chacha20 ran a room
    # in which the kernel takes some suites and not others.
    stage_modules "$kroot" "$kver" "$root" modules.tls tls
    stage_modules "$kroot" "$kver" "$root" modules.aes gcm ccm aesni_intel ghash_clmulni_intel
    stage_modules "$kroot" "$kver" "$root" modules.chacha chacha20poly1305 chacha_x86_64 poly1305_x86_64
    if [ "${VM_BENCH:-0}" = 1 ]; then
        stage "$root" "$build/bench/fanout/fanout"
        echo "run_test vm_ktls_bench 900 /tmp $(command -v node) $here/tests/vm/ktls_bench.js --server $build/uringws --fanout $build/bench/fanout/fanout" >>"$root/tests.sh"
    fi
    echo "run_test vm_ktls_modules 120 /tmp $here/tests/vm/ktls_modules.sh $build/uringws" >"$root/first.sh"
    echo "run_test vm_ktls_mixed $((180 * slowdown)) /tmp $(command -v node) $here/tests/integration/ktls.js --server $build/uringws --userspace chacha20" >"$root/mixed.sh"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/shm /dev/pts
mount -t tmpfs tmpfs /dev/shm
# /tmp stays on the initramfs's own (writable) root: a tmpfs mounted over it would hide a
# checkout that lives under /tmp, staged at its own path.
ip link set lo up
load() {
    for ko in $(cat "$1"); do
        insmod "$ko" 2>/dev/null || echo "VM: insmod $ko failed"
    done
}
ulimit -n 20000
pass=0
fail=0
run_test() {
    name=$1 tmo=$2 dir=$3
    shift 3
    echo "VM-TEST-START $name"
    start=$(date +%s)
    mkdir -p "$dir"
    (cd "$dir" && exec timeout "$tmo" "$@") </dev/null 2>&1
    rc=$?
    echo "VM-TEST-END $name rc=$rc $(($(date +%s) - start))s"
    if [ "$rc" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
}
load /modules.tls
helper=$(cat /proc/sys/kernel/modprobe)
echo /nonexistent >/proc/sys/kernel/modprobe # nothing loads on demand
. /first.sh
load /modules.aes
. /mixed.sh
echo "$helper" >/proc/sys/kernel/modprobe
load /modules.chacha
echo "VM: kernel $(uname -r), $(nproc) cpus, modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
. /tests.sh
echo "VM-DONE pass=$pass fail=$fail"
[ -r /proc/net/tls_stat ] && grep -E 'TlsCurr|TlsTx|TlsRx' /proc/net/tls_stat | tr -s ' \t' ' ' | tr '\n' ' ' && echo
poweroff -f
EOF
    chmod +x "$root/init"
    (cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) >"$out/initrd.cpio"
}

status=0
for entry in $kernels; do
    pkg=$(resolve "$entry")
    [ -n "$pkg" ] || die "cannot resolve the kernel package for $entry (apt-cache has no linux-image-cloud-amd64)"
    kroot=$(fetch_kernel "$pkg")
    kver=$(ls "$kroot/lib/modules")
    out="$build/vm/$kver"
    mkdir -p "$out"
    echo "vm.sh: $entry: $pkg ($kver), building the initramfs"
    build_initramfs "$kroot" "$kver" "$out"
    echo "vm.sh: $entry: booting $kver ($accel, $smp cpus, $mem MiB), $(wc -l <"$out/root/tests.sh") tests; log $out/console.log"
    # The whole run's limit: every test's own, plus boot and module loading.
    limit=$(awk '{ s += $3 } END { print s + 240 }' "$out/root/first.sh" "$out/root/mixed.sh" "$out/root/tests.sh")
    set +e
    timeout "$limit" qemu-system-x86_64 "${accel_args[@]}" -smp "$smp" -m "$mem" -nographic \
        -no-reboot -nic none -kernel "$kroot/boot/vmlinuz-$kver" -initrd "$out/initrd.cpio" \
        -append "console=ttyS0 quiet panic=-1 rdinit=/init" </dev/null >"$out/console.log" 2>&1
    qrc=$?
    set -e
    tr -d '\r' <"$out/console.log" >"$out/console.txt"
    cat "$out/console.txt"
    if ! grep -q '^VM-DONE' "$out/console.txt"; then
        echo "vm.sh: $entry: the VM did not finish (qemu exit $qrc, limit ${limit}s): see above" >&2
        status=1
    else
        failed=$(grep '^VM-TEST-END' "$out/console.txt" | { grep -v ' rc=0 ' || true; } | awk '{ print $2 }' | tr '\n' ' ')
        summary=$(grep '^VM-DONE' "$out/console.txt")
        echo "vm.sh: $entry ($kver): $summary${failed:+; failed: $failed}"
        [ -z "$failed" ] || status=1
        ran=$(grep -c '^VM-TEST-END' "$out/console.txt")
        [ "$ran" = "$(($(wc -l <"$out/root/tests.sh") + 2))" ] || { echo "vm.sh: $entry: only $ran tests ran" >&2; status=1; }
    fi
    [ "$keep" = 1 ] || rm -rf "$out/root" "$out/initrd.cpio"
done
exit $status
