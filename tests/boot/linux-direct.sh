#!/bin/sh
# Direct Linux boot: Debian's kernel + the busybox initramfs (tests/guests/),
# -smp 2 -m 1G, the guest prints its CPU count and memory and reboots
# (-no-reboot turns that into exit status 0).
#   guest-oracle/linux-initramfs-under-qemu  the same guest under QEMU TCG,
#                                             proving the initramfs and checks;
#   boot/linux-direct                         under kestrel: KVM where /dev/kvm
#                                             is usable, else the software CPU
#                                             (about a minute on 2 cores).
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-linuxtest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

oracle=guest-oracle/linux-initramfs-under-qemu
test=boot/linux-direct
if ! build_guest linux-kernel "$guests" || ! build_guest initramfs "$guests"; then
    echo "SKIP $oracle: $GUEST_WHY"
    echo "SKIP $test: $GUEST_WHY"
    exit 0
fi

# The single quotes keep $(...) for the guest's shell.
cmd='console=ttyS0 quiet kestrel.noshell kestrel.cmd="echo NPROC=$(nproc); echo CPUINFO=$(grep -c ^processor /proc/cpuinfo); grep MemTotal /proc/meminfo; reboot -f"'

# check NAME OUT STATUS
check() {
    name=$1 out=$2 status=$3
    tr -d '\r' < "$out" > "$out.txt"
    tail_txt=$(tail -n 15 "$out.txt" | tr '\n' '|' | cut -c1-600)
    if ! grep -q '^KESTREL-INIT-OK' "$out.txt"; then
        echo "FAIL $name: no KESTREL-INIT-OK on the serial console (status $status); last lines: $tail_txt; stderr: $(head -c 300 "$out.err")"
        return
    fi
    if ! grep -qx 'NPROC=2' "$out.txt" || ! grep -qx 'CPUINFO=2' "$out.txt"; then
        echo "FAIL $name: expected 2 CPUs (nproc and /proc/cpuinfo); got: $(grep -E '^(NPROC|CPUINFO)=' "$out.txt" | tr '\n' ' ')"
        return
    fi
    kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' "$out.txt")
    # 1 GiB minus what the kernel keeps for itself: expect 850-1048 MiB.
    if [ -z "$kb" ] || [ "$kb" -lt 870400 ] || [ "$kb" -gt 1048576 ]; then
        echo "FAIL $name: MemTotal '${kb:-missing}' kB is not about 1 GiB"
        return
    fi
    if [ "$status" -ne 0 ]; then
        echo "FAIL $name: 'reboot -f' with -no-reboot should exit 0, got status $status; stderr: $(head -c 300 "$out.err")"
        return
    fi
    echo "PASS $name"
}

qemu=$(command -v qemu-system-x86_64)
if [ -z "$qemu" ]; then
    echo "SKIP $oracle: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
else
    timeout $((180 * scale)) "$qemu" -accel tcg -smp 2 -m 1G -nodefaults -display none \
        -no-reboot -serial stdio -monitor none \
        -kernel "$guests/bzImage" -initrd "$guests/initramfs.cpio.gz" -append "$cmd" \
        < /dev/null > "$tmp/qemu" 2> "$tmp/qemu.err"
    check "$oracle" "$tmp/qemu" $?
fi

if [ ! -x "$KESTREL" ]; then
    echo "SKIP $test: no kestrel binary at $KESTREL"
    exit 0
fi
if have_kvm; then
    accel=kvm
    limit=$((120 * scale))
elif kestrel_pick_accel; then
    accel=$KACCEL
    limit=$((600 * scale))
else
    echo "SKIP $test: $KACCEL_WHY"
    exit 0
fi
timeout "$limit" "$KESTREL" -accel "$accel" -smp 2 -m 1G -display none -no-reboot \
    -serial stdio -monitor none \
    -kernel "$guests/bzImage" -initrd "$guests/initramfs.cpio.gz" -append "$cmd" \
    < /dev/null > "$tmp/kestrel" 2> "$tmp/kestrel.err"
status=$?
why=$(not_implemented_reason "$tmp/kestrel.err")
if [ -n "$why" ] && ! grep -q KESTREL-INIT-OK "$tmp/kestrel"; then
    echo "SKIP $test: -accel $accel: $why"
    exit 0
fi
check "$test" "$tmp/kestrel" "$status"
