#!/bin/sh
# Interrupt delivery end to end with the test kernel tests/guests/irq-test.S
# (8259 + 8254, HLT, IA32_APIC_BASE, LAPIC periodic timer, IOAPIC routing of
# IRQ0, TPR masking, TSC-deadline, INIT-SIPI-SIPI of a second CPU that prints
# and sends an IPI back), two CPUs:
#   guest-oracle/irq-test-under-qemu     Debian's QEMU (TCG): proves the guest
#                                        and these assertions right;
#   boot/irq-test-tcg                    Kestrel's software CPU;
#   boot/irq-test-kvm                    KVM with its in-kernel irqchip;
#   boot/irq-test-kvm-irqchip-off        KVM with -machine kernel-irqchip=off:
#                                        Kestrel's PIC/PIT/IOAPIC/LAPICs, the
#                                        KVM_INTERRUPT / interrupt-window path,
#                                        userspace HLT, INIT/SIPI and the MSR
#                                        filter for IA32_APIC_BASE/TSC_DEADLINE;
#   boot/irq-test-kvm-irqchip-off-smp1   the same with one CPU;
#   */irq-test-*-reboot                  QEMU, tcg and kernel-irqchip=off runs
#                                        that reset the machine through 0xcf9
#                                        after the checks (no -no-reboot): the
#                                        second boot must pass them all again,
#                                        the AP started again by INIT-SIPI-SIPI;
#   nested/irq-test-kvm-irqchip-off      kernel-irqchip=off on hardware-style
#                                        KVM: inside the nested L1 guest
#                                        (tests/nested/kestrel-in-l1: QEMU TCG
#                                        -cpu max with SVM, kvm_amd), where
#                                        the guest runs under SVM instead of
#                                        KVM's instruction emulator (~30 s);
#   nested/linux-kvm-irqchip-off         Debian's kernel + the busybox initramfs,
#                                        -smp 2, kernel-irqchip=off in the L1:
#                                        both CPUs must take LAPIC timer
#                                        interrupts, no RCU stall or oops, and
#                                        'reboot -f' must end kestrel with
#                                        status 0 (~35 s).
# KVM runs use -cpu host so TSC-deadline is advertised.  KVM variants SKIP
# without an openable /dev/kvm.  Asserts every result line on COM1 and exit
# status 33 (isa-debug-exit written with 0x10).
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}
timeout_s=$((120 * scale))
nested=$src/tests/nested
export BUILD KESTREL

names="guest-oracle/irq-test-under-qemu guest-oracle/irq-test-under-qemu-reboot
       boot/irq-test-tcg boot/irq-test-tcg-reboot boot/irq-test-kvm
       boot/irq-test-kvm-irqchip-off boot/irq-test-kvm-irqchip-off-smp1
       boot/irq-test-kvm-irqchip-off-reboot
       nested/irq-test-kvm-irqchip-off nested/linux-kvm-irqchip-off"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-irqtest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! build_guest irq-test "$guests"; then
    for n in $names; do echo "SKIP $n: $GUEST_WHY"; done
    exit 0
fi
kernel=$guests/irq-test.elf

# check NAME OUT STATUS SMP TSCDL: PASS/FAIL for one run.  TSCDL "any" also
# accepts a CPU that does not advertise TSC-deadline (QEMU's default model).
check() {
    name=$1 out=$2 status=$3 smp=$4 tscdl=$5
    tr -d '\r' < "$out" > "$out.txt"
    serial=$(tr '\n' '|' < "$out.txt" | head -c 600)
    if [ "$status" -eq 124 ]; then
        echo "FAIL $name: timed out after ${timeout_s}s; serial: $serial; stderr: $(head -c 300 "$out.err")"
        return
    fi
    if grep -q 'FAIL' "$out.txt"; then
        echo "FAIL $name: the guest reported: $(grep -m1 'FAIL' "$out.txt"); serial: $serial"
        return
    fi
    wants="IRQTEST-START|pit: ok ticks=10|hlt: ok|apicbase: 0xfee00900|lapic-timer: ok ticks=10|ioapic: ok ticks=5|tpr: ok|IRQTEST-DONE"
    if [ "$smp" = 2 ]; then
        wants="$wants|ap: hello from apic id 1|smp: ok"
    fi
    old_ifs=$IFS
    IFS='|'
    for want in $wants; do
        if ! grep -qxF -- "$want" "$out.txt"; then
            IFS=$old_ifs
            echo "FAIL $name: serial lacks the line '$want'; got: $serial; stderr: $(head -c 300 "$out.err")"
            return
        fi
    done
    IFS=$old_ifs
    if ! grep -qxF 'tsc-deadline: ok' "$out.txt" &&
       ! { [ "$tscdl" = any ] && grep -qxF 'tsc-deadline: not advertised' "$out.txt"; }; then
        echo "FAIL $name: expected 'tsc-deadline: ok'; got: $serial"
        return
    fi
    if [ "$smp" = 1 ] && grep -q '^ap: ' "$out.txt"; then
        echo "FAIL $name: an AP ran without -smp 2; serial: $serial"
        return
    fi
    if [ -n "$reboot" ]; then
        serial=$(tr '\n' '|' < "$out.txt" | head -c 1200)
        boots=$(grep -c -x 'IRQTEST-START' "$out.txt")
        smps=$(grep -c -x 'smp: ok' "$out.txt")
        aps=$(grep -c -x 'ap: hello from apic id 1' "$out.txt")
        if [ "$boots" -ne 2 ] || [ "$smps" -ne 2 ] || [ "$aps" -ne 2 ] ||
           ! grep -qxF 'reboot: ok, second boot' "$out.txt"; then
            echo "FAIL $name: expected two complete boots around the reset (IRQTEST-START x$boots, smp: ok x$smps, AP hello x$aps); serial: $serial"
            return
        fi
    fi
    if [ "$status" -ne 33 ]; then
        echo "FAIL $name: exit status $status, expected 33 (0x21, isa-debug-exit 0x10); stderr: $(head -c 300 "$out.err")"
        return
    fi
    echo "PASS $name"
}

# run NAME SMP TSCDL PROGRAM ARGS...: boot the kernel, then check.
run() {
    name=$1 smp=$2 tscdl=$3
    shift 3
    out=$tmp/$(echo "$name" | tr '/' '-')
    append=
    [ "$smp" = 2 ] && append=irqtest.smp
    noreboot=-no-reboot
    reboot=
    case $name in *-reboot) reboot=1 noreboot= append="$append irqtest.reboot" ;; esac
    timeout "$timeout_s" "$@" -m 64 -smp "$smp" -nodefaults -display none $noreboot \
        -serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel "$kernel" -append "$append" < /dev/null > "$out" 2> "$out.err"
    status=$?
    why=$(not_implemented_reason "$out.err")
    if [ -n "$why" ] && ! grep -q IRQTEST-START "$out"; then
        echo "SKIP $name: $why"
        return
    fi
    check "$name" "$out" "$status" "$smp" "$tscdl"
}

qemu=$(command -v qemu-system-x86_64)
if [ -n "$qemu" ]; then
    run guest-oracle/irq-test-under-qemu 2 any "$qemu" -accel tcg
    run guest-oracle/irq-test-under-qemu-reboot 2 any "$qemu" -accel tcg
else
    for n in guest-oracle/irq-test-under-qemu guest-oracle/irq-test-under-qemu-reboot; do
        echo "SKIP $n: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
    done
fi

if [ ! -x "$KESTREL" ]; then
    for n in $names; do
        case $n in guest-oracle/*) ;; *) echo "SKIP $n: no kestrel binary at $KESTREL" ;; esac
    done
    exit 0
fi
if "$KESTREL" -accel help 2>&1 | grep -qw tcg; then
    run boot/irq-test-tcg 2 ok "$KESTREL" -accel tcg
    run boot/irq-test-tcg-reboot 2 ok "$KESTREL" -accel tcg
else
    echo "SKIP boot/irq-test-tcg: this kestrel has no software CPU"
    echo "SKIP boot/irq-test-tcg-reboot: this kestrel has no software CPU"
fi
# Not have_kvm (lib.sh): that one also wants VT-x/AMD-V for real guests, while
# this kernel takes well under a second even under a software-only KVM (PVM).
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    run boot/irq-test-kvm 2 ok "$KESTREL" -accel kvm -cpu host
    run boot/irq-test-kvm-irqchip-off 2 ok "$KESTREL" -accel kvm -cpu host \
        -machine kernel-irqchip=off
    run boot/irq-test-kvm-irqchip-off-smp1 1 ok "$KESTREL" -accel kvm -cpu host \
        -machine kernel-irqchip=off
    run boot/irq-test-kvm-irqchip-off-reboot 2 ok "$KESTREL" -accel kvm -cpu host \
        -machine kernel-irqchip=off
else
    for n in boot/irq-test-kvm boot/irq-test-kvm-irqchip-off boot/irq-test-kvm-irqchip-off-smp1 \
             boot/irq-test-kvm-irqchip-off-reboot; do
        echo "SKIP $n: no /dev/kvm, or not readable and writable by this user"
    done
fi

# The same kernel-irqchip=off run one level down, under kvm_amd in the L1.
name=nested/irq-test-kvm-irqchip-off
reboot=
out=$tmp/nested
if ! "$KESTREL" -accel help 2>&1 | grep -qw kvm; then
    echo "SKIP $name: kestrel was built without the kvm accelerator"
    echo "SKIP nested/linux-kvm-irqchip-off: kestrel was built without the kvm accelerator"
    exit 0
fi
mkdir -p "$BUILD/nested"
"$nested/kestrel-in-l1" --timeout $((600 * scale)) --kestrel-timeout "$timeout_s" --smp 2 \
    --put "$kernel:/irq-test.elf" -- \
    -machine kernel-irqchip=off -cpu host -smp 2 -m 64 -nodefaults -display none \
    -no-reboot -serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -kernel /irq-test.elf -append irqtest.smp > "$out.l1" 2>&1
status=$?
tr -d '\r' < "$out.l1" > "$BUILD/nested/irq-test-kvm-irqchip-off.log"
if [ "$status" -eq 77 ]; then
    why=$(grep -m1 'SKIP: ' "$out.l1" | sed 's/.*SKIP: //')
    echo "SKIP $name: $why"
    echo "SKIP nested/linux-kvm-irqchip-off: $why"
    exit 0
fi
tr -d '\r' < "$out.l1" | sed -n 's/^L2: //p' > "$out"
tr -d '\r' < "$out.l1" | sed -n 's/^KESTREL-STDERR: //p' > "$out.err"
kstatus=$(tr -d '\r' < "$out.l1" | sed -n 's/^KESTREL-STATUS=//p')
if [ -z "$kstatus" ]; then
    echo "FAIL $name: kestrel never finished in L1 (status $status; log $BUILD/nested/irq-test-kvm-irqchip-off.log): $(tail -n 6 "$out.l1" | tr '\n' '|')"
else
    case $kstatus in 137|143) kstatus=124 ;; esac   # killed by --kestrel-timeout: a hang
    check "$name" "$out" "$kstatus" 2 ok
fi

# Linux with the userspace interrupt controllers on KVM, two CPUs.
name=nested/linux-kvm-irqchip-off
if ! build_guest linux-kernel "$guests" || ! build_guest initramfs "$guests"; then
    echo "SKIP $name: $GUEST_WHY"
    exit 0
fi
log=$BUILD/nested/linux-kvm-irqchip-off.log
# kestrel.cmd may not contain double quotes (tests/guests/initramfs-init).
cmd='console=ttyS0 kestrel.cmd="echo NPROC=$(nproc); cat /proc/interrupts; reboot -f"'
"$nested/kestrel-in-l1" --timeout $((600 * scale)) --kestrel-timeout $((240 * scale)) --smp 2 \
    --put "$guests/bzImage:/bzImage" --put "$guests/initramfs.cpio.gz:/initramfs.cpio.gz" -- \
    -machine kernel-irqchip=off -smp 2 -m 1G -display none -no-reboot -serial stdio \
    -monitor none -kernel /bzImage -initrd /initramfs.cpio.gz -append "$cmd" > "$tmp/linux.l1" 2>&1
status=$?
tr -d '\r' < "$tmp/linux.l1" > "$log"
if [ "$status" -eq 77 ]; then
    echo "SKIP $name: $(grep -m1 'SKIP: ' "$log" | sed 's/.*SKIP: //')"
    exit 0
fi
sed -n 's/^L2: //p' "$log" > "$tmp/linux"
kstatus=$(sed -n 's/^KESTREL-STATUS=//p' "$log")
tail_txt=$(tail -n 12 "$tmp/linux" | tr '\n' '|' | cut -c1-600)
# LOC: local APIC timer interrupts per CPU (arch/x86/kernel/irq.c).
loc=$(sed -n 's/^ *LOC: *\([0-9]*\) *\([0-9]*\) .*/\1 \2/p' "$tmp/linux")
if [ -z "$kstatus" ]; then
    echo "FAIL $name: kestrel never finished in L1 (status $status; log $log): $(tail -n 6 "$log" | tr '\n' '|')"
elif ! grep -q '^KESTREL-INIT-OK' "$tmp/linux"; then
    echo "FAIL $name: no KESTREL-INIT-OK (kestrel status $kstatus); last lines: $tail_txt (log $log)"
elif ! grep -qx 'NPROC=2' "$tmp/linux"; then
    echo "FAIL $name: expected NPROC=2; last lines: $tail_txt (log $log)"
elif [ -z "$loc" ] || [ "${loc% *}" -eq 0 ] || [ "${loc#* }" -eq 0 ]; then
    echo "FAIL $name: both CPUs should take LAPIC timer interrupts; LOC counts '${loc:-missing}' (log $log)"
elif grep -q -E 'rcu.*detected stalls|BUG:|Oops|Kernel panic|WARNING:' "$tmp/linux"; then
    echo "FAIL $name: the guest kernel complained: $(grep -m1 -E 'rcu.*detected stalls|BUG:|Oops|Kernel panic|WARNING:' "$tmp/linux") (log $log)"
elif [ "$kstatus" != 0 ]; then
    why="kestrel exit status $kstatus, expected 0 ('reboot -f' with -no-reboot)"
    case $kstatus in 124|137|143) why="kestrel was killed after $((240 * scale))s inside L1 (guest hung)" ;; esac
    echo "FAIL $name: $why; last lines: $tail_txt (log $log)"
else
    echo "PASS $name (LOC per CPU: $loc)"
fi
