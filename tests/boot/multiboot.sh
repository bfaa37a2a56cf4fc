#!/bin/sh
# Boot the Multiboot-1 test kernel (tests/guests/multiboot-test.S), ELF and
# a.out-kludge builds, with a command line and two modules:
#   guest-oracle/multiboot-*-under-qemu  the same guest under QEMU, proving the
#                                         guest and these assertions right;
#   boot/multiboot-*                      under kestrel (KVM if /dev/kvm, else
#                                         the software CPU; SKIP if neither can run).
# Asserts the marker and info fields on COM1 and exit status 0x41
# (isa-debug-exit at 0xf4 written with 0x20).
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
guests=$BUILD/guests
timeout_s=$((60 * ${KESTREL_TEST_TIMEOUT_SCALE:-1}))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-mbtest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

names="elf aout"
if ! build_guest multiboot-test "$guests"; then
    for n in $names; do
        echo "SKIP guest-oracle/multiboot-$n-under-qemu: $GUEST_WHY"
        echo "SKIP boot/multiboot-$n: $GUEST_WHY"
    done
    exit 0
fi
printf 'hello' > "$tmp/mod-a"
printf '0123456789' > "$tmp/mod-b"
modules="$tmp/mod-a arg1,,x,$tmp/mod-b"

image() {
    case $1 in
    elf) echo "$guests/multiboot-test.elf" ;;
    aout) echo "$guests/multiboot-aout.bin" ;;
    esac
}

# check NAME OUTFILE STATUS KERNEL LOADER: print PASS/FAIL for one run.
check() {
    name=$1 out=$2 status=$3 kernel=$4 loader=$5
    tr -d '\r' < "$out" > "$out.txt"
    for want in "KESTREL-MB-OK" "cmdline=$kernel hello world" "mods=2" \
                "mod0=$tmp/mod-a arg1,x size=5" "mod1=$tmp/mod-b size=10" \
                "loader=$loader" "bss=zero"; do
        if ! grep -qxF -- "$want" "$out.txt"; then
            echo "FAIL $name: serial lacks the line '$want'; got: $(head -c 400 "$out.txt" | tr '\n' '|'); stderr: $(head -c 300 "$out.err")"
            return
        fi
    done
    if ! grep -q '^mem_lower=[0-9]* mem_upper=[0-9]*$' "$out.txt" ||
       ! grep -q '^mmap_entries=[1-9]' "$out.txt"; then
        echo "FAIL $name: no memory info lines; got: $(tr '\n' '|' < "$out.txt" | head -c 400)"
        return
    fi
    if [ "$status" -ne 65 ]; then
        echo "FAIL $name: exit status $status, expected 65 (0x41, isa-debug-exit 0x20); stderr: $(head -c 300 "$out.err")"
        return
    fi
    echo "PASS $name"
}

# QEMU as the oracle for the guest itself.
qemu=$(command -v qemu-system-x86_64)
for n in $names; do
    name=guest-oracle/multiboot-$n-under-qemu
    if [ -z "$qemu" ]; then
        echo "SKIP $name: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
        continue
    fi
    k=$(image $n)
    timeout "$timeout_s" "$qemu" -accel tcg -m 64 -nodefaults -display none -no-reboot \
        -serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel "$k" -append "hello world" -initrd "$modules" \
        < /dev/null > "$tmp/q-$n" 2> "$tmp/q-$n.err"
    check "$name" "$tmp/q-$n" $? "$k" qemu
done

# Kestrel.
if [ ! -x "$KESTREL" ]; then
    for n in $names; do echo "SKIP boot/multiboot-$n: no kestrel binary at $KESTREL"; done
    exit 0
fi
# Both engines: the software CPU always; KVM wherever /dev/kvm opens, even a
# software-only KVM (PVM), since this kernel is small enough to finish there.
accels=
if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    accels=kvm
else
    for n in $names; do echo "SKIP boot/multiboot-$n[kvm]: no usable /dev/kvm on this host"; done
fi
if "$KESTREL" -accel help 2>&1 | grep -q -E '^ +tcg +available'; then
    accels="$accels tcg"
else
    for n in $names; do echo "SKIP boot/multiboot-$n[tcg]: this kestrel has no software CPU"; done
fi
for accel in $accels; do
for n in $names; do
    name="boot/multiboot-$n[$accel]"
    k=$(image $n)
    timeout "$timeout_s" "$KESTREL" -accel "$accel" -m 64 -display none -no-reboot \
        -serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel "$k" -append "hello world" -initrd "$modules" \
        < /dev/null > "$tmp/k-$n" 2> "$tmp/k-$n.err"
    status=$?
    why=$(not_implemented_reason "$tmp/k-$n.err")
    if [ -n "$why" ] && ! grep -q KESTREL-MB-OK "$tmp/k-$n"; then
        echo "SKIP $name: $why"
        continue
    fi
    if [ "$status" -eq 124 ]; then
        echo "FAIL $name: timed out after ${timeout_s}s; serial: $(tr -d '\r' < "$tmp/k-$n" | tr '\n' '|' | head -c 300); stderr: $(head -c 300 "$tmp/k-$n.err")"
        continue
    fi
    check "$name" "$tmp/k-$n" "$status" "$k" kestrel
done
done
