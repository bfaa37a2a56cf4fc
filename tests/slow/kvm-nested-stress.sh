#!/bin/sh
# Slow nested-KVM checks of Kestrel's KVM accelerator (make check-slow): the
# L1 guest of tests/nested/run-l1 (QEMU TCG -cpu max, kvm_amd loaded, 2 vCPUs)
# runs several kestrel -accel kvm guests; about 4 minutes on 2 cores.
#   L1 with kvm_amd.npt=0 (shadow paging):
#     nested/stress-linux-shadow   -smp 2 -m 256M Linux with the workload below
#   L1 with nested paging:
#     nested/stress-linux-smp4     -smp 4 -m 256M (more vCPUs than L1 has)
#     nested/stress-linux-mem4g    -m 4G: RAM split below/above the 4 GiB hole
#     nested/stress-multiboot-aout a.out-kludge kernel with two modules
# The Linux workload computes checksums the host computes too: one of
# `seq 1 200000` (CPU), four of them in parallel (SMP, IPIs, scheduling) and
# one of 64 MiB of zeroes copied through tmpfs (guest memory), then reboots.
# SKIP unless KESTREL_SLOW=1 or when kestrel / QEMU / the kernel package /
# kvm_amd under TCG is missing (with the reason).
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
nested=$src/tests/nested
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}
export BUILD KESTREL

names="stress-linux-shadow stress-linux-smp4 stress-linux-mem4g stress-multiboot-aout"
skip_all() {
    for n in $names; do echo "SKIP nested/$n: $*"; done
    exit 0
}
[ -n "${KESTREL_SLOW:-}" ] || skip_all "slow test (about 4 minutes): run with KESTREL_SLOW=1 (make check-slow)"
[ -x "$KESTREL" ] || skip_all "no kestrel binary at $KESTREL"
"$KESTREL" -accel help 2>&1 | grep -qw kvm || skip_all "kestrel was built without the kvm accelerator"
for g in linux-kernel initramfs multiboot-test; do
    build_guest $g "$guests" || skip_all "$GUEST_WHY"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-nested-stress.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$BUILD/nested"
printf 'hello' > "$tmp/mod-a"
printf '0123456789' > "$tmp/mod-b"

seq_sum=$(seq 1 200000 | md5sum | cut -c1-32)
zero_sum=$(head -c 67108864 /dev/zero | md5sum | cut -c1-32)
kt=$((240 * scale))

# The L1 script: run NAME KESTREL-ARGS... tags every line with NAME.
cat > "$tmp/lib" <<EOF
run() {
    name=\$1; shift
    echo "CASE-BEGIN \$name uptime=\$(cut -d' ' -f1 /proc/uptime)"
    { timeout $kt /kestrel -accel kvm "\$@" < /dev/null 2> /tmp/err; echo \$? > /tmp/st; } |
        sed "s/^/L2[\$name]: /"
    sed "s/^/KESTREL-STDERR[\$name]: /" /tmp/err
    echo "CASE-END \$name status=\$(cat /tmp/st) uptime=\$(cut -d' ' -f1 /proc/uptime)"
}
linux() {
    name=\$1 smp=\$2 mem=\$3
    run \$name -smp \$smp -m \$mem -display none -no-reboot -serial stdio -monitor none \\
        -kernel /bzImage -initrd /initramfs.cpio.gz -append "\$LINUX_CMD"
}
EOF
# Single quotes: the $(...) are for L2's shell.
cat >> "$tmp/lib" <<'EOF'
LINUX_CMD='console=ttyS0 quiet kestrel.noshell kestrel.cmd="echo NPROC=$(nproc); echo SEQ=$(seq 1 200000 | md5sum | cut -c1-32); for i in 1 2 3 4; do seq 1 200000 | md5sum > /tmp/s$i & done; wait; echo PAR=$(cat /tmp/s1 /tmp/s2 /tmp/s3 /tmp/s4 | sort -u | cut -c1-32 | tr -s [:space:] _); dd if=/dev/zero of=/tmp/z bs=1M count=64 2>/dev/null; echo ZERO=$(md5sum /tmp/z | cut -c1-32); grep MemTotal /proc/meminfo; reboot -f"'
EOF
cp "$tmp/lib" "$tmp/shadow.sh"
echo 'linux stress-linux-shadow 2 256M' >> "$tmp/shadow.sh"
cp "$tmp/lib" "$tmp/npt.sh"
cat >> "$tmp/npt.sh" <<'EOF'
linux stress-linux-smp4 4 256M
linux stress-linux-mem4g 1 4G
run stress-multiboot-aout -m 64 -display none -no-reboot -serial stdio -monitor none \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel /multiboot-aout.bin \
    -append "hello world" -initrd "/mod-a arg1,,x,/mod-b"
EOF

files="--file $KESTREL:/kestrel --file $guests/bzImage:/bzImage
       --file $guests/initramfs.cpio.gz:/initramfs.cpio.gz
       --file $guests/multiboot-aout.bin:/multiboot-aout.bin
       --file $tmp/mod-a:/mod-a --file $tmp/mod-b:/mod-b"
for l1 in shadow npt; do
    extra=
    [ $l1 = shadow ] && extra="--append kvm_amd.npt=0"
    # shellcheck disable=SC2086 # word lists on purpose
    "$nested/run-l1" --smp 2 --mem 2G --timeout $((900 * scale)) $extra $files \
        --file "$tmp/$l1.sh:/stress.sh" -- sh /stress.sh > "$tmp/$l1.out" 2>&1
    status=$?
    tr -d '\r' < "$tmp/$l1.out" > "$BUILD/nested/stress-$l1.log"
    if [ $status -eq 77 ]; then
        skip_all "$(grep -m1 'SKIP: ' "$tmp/$l1.out" | sed 's/.*SKIP: //')"
    fi
done

# check_linux NAME NPROC MIN_KB MAX_KB
check_linux() {
    n=$1 want_cpus=$2 min_kb=$3 max_kb=$4
    log=$(grep -l "CASE-BEGIN $n " "$BUILD"/nested/stress-*.log | head -n 1)
    [ -n "$log" ] || { echo "FAIL nested/$n: the case never started (logs $BUILD/nested/stress-*.log)"; return; }
    sed -n "s/^L2\[$n\]: //p" "$log" > "$tmp/$n.serial"
    st=$(sed -n "s/^CASE-END $n status=\([0-9]*\).*/\1/p" "$log")
    errs=$(sed -n "s/^KESTREL-STDERR\[$n\]: //p" "$log" | head -n 8 | tr '\n' '|')
    tail_txt=$(tail -n 10 "$tmp/$n.serial" | tr '\n' '|' | cut -c1-500)
    kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' "$tmp/$n.serial")
    l2bad=$(grep -m1 -E 'BUG:|Oops|Kernel panic|Call Trace|general protection' "$tmp/$n.serial")
    bad=
    if [ -z "$st" ]; then bad="kestrel never finished (L1 hung or timed out)"
    elif ! grep -qx "NPROC=$want_cpus" "$tmp/$n.serial"; then bad="expected NPROC=$want_cpus"
    elif ! grep -qx "SEQ=$seq_sum" "$tmp/$n.serial"; then bad="seq checksum wrong or missing (want $seq_sum)"
    elif ! grep -qx "PAR=${seq_sum}_\{0,1\}" "$tmp/$n.serial"; then bad="parallel checksums differ or missing (want $seq_sum)"
    elif ! grep -qx "ZERO=$zero_sum" "$tmp/$n.serial"; then bad="64 MiB zero checksum wrong or missing (want $zero_sum)"
    elif [ -z "$kb" ] || [ "$kb" -lt "$min_kb" ] || [ "$kb" -gt "$max_kb" ]; then bad="MemTotal '${kb:-missing}' kB outside $min_kb..$max_kb"
    elif [ -n "$l2bad" ]; then bad="L2 kernel complained: $l2bad"
    elif [ "$st" != 0 ]; then bad="exit status $st, expected 0 (reboot -f with -no-reboot)"
    fi
    t0=$(sed -n "s/^CASE-BEGIN $n uptime=//p" "$log")
    t1=$(sed -n "s/^CASE-END $n status=[0-9]* uptime=//p" "$log")
    secs=$(awk -v a="${t0:-0}" -v b="${t1:-0}" 'BEGIN { printf "%.0f", b - a }')
    if [ -n "$bad" ]; then
        echo "FAIL nested/$n: $bad; last lines: $tail_txt; stderr: $errs (log $log)"
    else
        echo "PASS nested/$n (${secs}s in L1)"
    fi
}
check_linux stress-linux-shadow 2 180000 262144
check_linux stress-linux-smp4 4 180000 262144
check_linux stress-linux-mem4g 1 3800000 4194304

n=stress-multiboot-aout
log=$BUILD/nested/stress-npt.log
sed -n "s/^L2\[$n\]: //p" "$log" > "$tmp/$n.serial"
st=$(sed -n "s/^CASE-END $n status=\([0-9]*\).*/\1/p" "$log")
bad=
for want in KESTREL-MB-OK "cmdline=/multiboot-aout.bin hello world" mods=2 \
            "mod0=/mod-a arg1,x size=5" "mod1=/mod-b size=10" bss=zero; do
    grep -qxF -- "$want" "$tmp/$n.serial" || { bad="serial lacks '$want'"; break; }
done
[ -z "$bad" ] && [ "$st" != 65 ] && bad="exit status '${st:-none}', expected 65"
if [ -n "$bad" ]; then
    echo "FAIL nested/$n: $bad; serial: $(tr '\n' '|' < "$tmp/$n.serial" | cut -c1-300) (log $log)"
else
    echo "PASS nested/$n"
fi
# L1's own kernel must not have complained while kestrel used KVM.
l1bad=$(grep -h -v -E '^(L2\[|KESTREL-STDERR)' "$BUILD"/nested/stress-*.log |
        grep -m1 -E 'WARNING:|BUG:|Oops|Call Trace|general protection')
[ -n "$l1bad" ] && echo "FAIL nested/stress-l1-kernel: L1 (KVM) complained: $l1bad"
exit 0
