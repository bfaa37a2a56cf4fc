#!/bin/sh
# QEMU's test devices with kvm-unit-tests' command-line shape.  The kernel
# (tests/guests/testdev-test.S) checks pc-testdev (latch, flush, iomem, IRQ
# line), finds pci-testdev through config space and walks its test table
# through both BARs, reads the -initrd file as its Multiboot module and
# CPUID for -cpu qemu64,+popcnt, then exits through isa-debug-exit with
# v = 0 when all passed: exit status (v << 1) | 1 = 1.
#   guest-oracle/testdev-under-qemu   the same command line under QEMU (TCG)
#   boot/testdev-kvm-unit-tests-shape under kestrel, the exact shape
#   boot/testdev-display-none-combo   -display none -m 256 -smp 1 variant
#   boot/testdev-global-props         isa-debug-exit's port set with -global
#   boot/testdev-firmware-bars        PCI BARs arrive assigned and decoding,
#                                     as under QEMU (SeaBIOS assigns them there)
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
guests=$BUILD/guests
timeout_s=$((60 * ${KESTREL_TEST_TIMEOUT_SCALE:-1}))
kestrel_tests="boot/testdev-kvm-unit-tests-shape boot/testdev-display-none-combo boot/testdev-global-props boot/testdev-firmware-bars"
all="guest-oracle/testdev-under-qemu $kestrel_tests"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-tdtest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! build_guest testdev-test "$guests"; then
    for n in $all; do echo "SKIP $n: $GUEST_WHY"; done
    exit 0
fi
kernel=$guests/testdev-test.elf
printf 'KESTREL-TESTDEV-MODULE' > "$tmp/module"
checks="magic latch flush iomem pci-find pci-bars pci-mmio pci-portio module cpuid irq-line"

# check NAME OUT STATUS: every check line "ok", the counts QEMU gives, status 1.
check() {
    name=$1 out=$2 status=$3
    tr -d '\r' < "$out" > "$out.txt"
    if [ "$status" -eq 124 ]; then
        echo "FAIL $name: timed out after ${timeout_s}s; serial: $(tr '\n' '|' < "$out.txt" | head -c 400); stderr: $(head -c 300 "$out.err")"
        return 1
    fi
    for c in $checks; do
        if ! grep -qxF "ok $c" "$out.txt"; then
            echo "FAIL $name: no 'ok $c' line; serial: $(tr '\n' '|' < "$out.txt" | head -c 600); stderr: $(head -c 300 "$out.err")"
            return 1
        fi
    done
    for t in mmio-no-eventfd:16 mmio-wildcard-eventfd:0 mmio-datamatch-eventfd:0 \
             portio-no-eventfd:16 portio-wildcard-eventfd:0 portio-datamatch-eventfd:0; do
        if ! grep -qxF "pci-testdev ${t%%:*} count=${t#*:}" "$out.txt"; then
            echo "FAIL $name: expected 'pci-testdev ${t%%:*} count=${t#*:}'; serial: $(tr '\n' '|' < "$out.txt" | head -c 600)"
            return 1
        fi
    done
    if ! grep -qxF "TESTDEV-DONE fails=0" "$out.txt" || [ "$status" -ne 1 ]; then
        echo "FAIL $name: exit status $status, expected 1 (isa-debug-exit with v=0); serial: $(tr '\n' '|' < "$out.txt" | head -c 600); stderr: $(head -c 300 "$out.err")"
        return 1
    fi
    echo "PASS $name"
}

# kvm-unit-tests' x86 run line (scripts/arch-run.bash, x86/run), software CPU.
shape() {
    echo -nodefaults -vnc none -serial stdio -device pc-testdev \
        -device isa-debug-exit,iobase=0xf4,iosize=0x4 -device pci-testdev \
        -machine accel=tcg -kernel "$kernel" -initrd "$tmp/module" -smp 1 \
        -cpu qemu64,+popcnt
}

qemu=$(command -v qemu-system-x86_64)
if [ -z "$qemu" ]; then
    echo "SKIP guest-oracle/testdev-under-qemu: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
else
    # shellcheck disable=SC2046
    timeout "$timeout_s" "$qemu" $(shape) < /dev/null > "$tmp/q" 2> "$tmp/q.err"
    check guest-oracle/testdev-under-qemu "$tmp/q" $?
fi

if [ ! -x "$KESTREL" ]; then
    for n in $kestrel_tests; do
        echo "SKIP $n: no kestrel binary at $KESTREL"
    done
    exit 0
fi
if ! "$KESTREL" -accel help 2>&1 | grep -q -E '^ +tcg +available'; then
    for n in $kestrel_tests; do
        echo "SKIP $n: this kestrel has no software CPU (the command line says accel=tcg)"
    done
    exit 0
fi

# shellcheck disable=SC2046
timeout "$timeout_s" "$KESTREL" $(shape) < /dev/null > "$tmp/k" 2> "$tmp/k.err"
check boot/testdev-kvm-unit-tests-shape "$tmp/k" $?

# shellcheck disable=SC2046
timeout "$timeout_s" "$KESTREL" $(shape) -display none -m 256 -smp 1 -machine accel=tcg \
    < /dev/null > "$tmp/k2" 2> "$tmp/k2.err"
check boot/testdev-display-none-combo "$tmp/k2" $?

# The same with the debug-exit port given by -global and -machine pc,accel=tcg.
timeout "$timeout_s" "$KESTREL" -nodefaults -vnc none -serial stdio -device pc-testdev \
    -global isa-debug-exit.iobase=0xf4 -global isa-debug-exit.iosize=0x4 \
    -device isa-debug-exit -device pci-testdev -machine pc,accel=tcg -kernel "$kernel" \
    -initrd "$tmp/module" -smp 1 -cpu qemu64,+popcnt < /dev/null > "$tmp/k3" 2> "$tmp/k3.err"
check boot/testdev-global-props "$tmp/k3" $?

# kvm-unit-tests uses pci-testdev's BARs where the firmware put them; under
# QEMU SeaBIOS has assigned them before the Multiboot kernel runs.
if grep -qxF "bars=firmware" "$tmp/k.txt" 2>/dev/null; then
    echo "PASS boot/testdev-firmware-bars"
elif grep -qxF "bars=kernel" "$tmp/k.txt" 2>/dev/null; then
    echo "FAIL boot/testdev-firmware-bars: pci-testdev's BARs were unassigned at entry (direct boot should assign them as SeaBIOS does, hw/pc/pci_bar_assign.c); kvm-unit-tests' pci-testdev test needs them"
else
    echo "FAIL boot/testdev-firmware-bars: the kernel printed neither bars=firmware nor bars=kernel"
fi
