#!/bin/sh
# Differential test of Kestrel's accelerators: tests/nested/probe.S prints
# only values that come from Kestrel's device model and guest RAM (port and
# MMIO reads of each size, string port I/O, RAM checksum, end of RAM, ...),
# then triple-faults.  Its debug-console line must be byte-identical under
#   kestrel -accel tcg            on this host, and
#   kestrel -accel kvm -smp 2     inside the nested L1 guest (tests/nested/run-l1)
# and both runs must exit 0 (triple fault with -no-reboot), saying on stderr
# that a triple fault ended them.
#   nested/kvm-vs-tcg-probe
# SKIP with the reason when kestrel lacks either accelerator, binutils is
# missing, or QEMU / the kernel package / kvm_amd under TCG cannot be had.
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
nested=$src/tests/nested
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}
export BUILD KESTREL
name=nested/kvm-vs-tcg-probe

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-nested-probe.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

[ -x "$KESTREL" ] || { echo "SKIP $name: no kestrel binary at $KESTREL"; exit 0; }
accels=$("$KESTREL" -accel help 2>&1)
for a in kvm tcg; do
    printf '%s\n' "$accels" | grep -qw $a ||
        { echo "SKIP $name: kestrel was built without the $a accelerator"; exit 0; }
done
for tool in as ld; do
    command -v $tool >/dev/null 2>&1 ||
        { echo "SKIP $name: $tool not found (apt-get install binutils)"; exit 0; }
done
mkdir -p "$BUILD/nested"
probe=$BUILD/nested/probe.elf
# -N: one segment starting at 0x100000 (no ELF header page below 1 MiB).
if ! as --32 -o "$tmp/probe.o" "$nested/probe.S" 2> "$tmp/as.err" ||
   ! ld -m elf_i386 -N -Ttext=0x100000 -o "$probe" "$tmp/probe.o" 2> "$tmp/ld.err"; then
    echo "FAIL $name: cannot build probe.S: $(cat "$tmp/as.err" "$tmp/ld.err" | head -n 3 | tr '\n' ' ')"
    exit 0
fi
args="-m 64 -display none -no-reboot -serial none -debugcon stdio -monitor none -kernel"

# shellcheck disable=SC2086 # args is a word list
timeout $((60 * scale)) "$KESTREL" -accel tcg $args "$probe" < /dev/null > "$tmp/tcg" 2> "$tmp/tcg.err"
tcg_status=$?
if [ "$tcg_status" -ne 0 ] || ! grep -q '^A rep-outsb-ok io=.* past=[0-9A-F]*$' "$tmp/tcg"; then
    echo "FAIL $name: -accel tcg on the host: status $tcg_status, output '$(head -c 300 "$tmp/tcg")', stderr: $(head -c 300 "$tmp/tcg.err")"
    exit 0
fi
# -no-reboot after a triple fault says so on stderr (QEMU is silent there).
if ! grep -q '^kestrel: guest triple fault on CPU 0: exiting because of -no-reboot$' "$tmp/tcg.err"; then
    echo "FAIL $name: -accel tcg: no triple-fault line on stderr after -no-reboot; stderr: $(head -c 300 "$tmp/tcg.err")"
    exit 0
fi

# shellcheck disable=SC2086
"$nested/kestrel-in-l1" --timeout $((300 * scale)) --kestrel-timeout $((60 * scale)) --smp 2 \
    --put "$probe:/probe.elf" -- -smp 2 $args /probe.elf > "$tmp/l1" 2>&1
status=$?
tr -d '\r' < "$tmp/l1" > "$BUILD/nested/kvm-vs-tcg-probe.log"
log=$BUILD/nested/kvm-vs-tcg-probe.log
if [ "$status" -eq 77 ]; then
    echo "SKIP $name: $(grep -m1 'SKIP: ' "$log" | sed 's/.*SKIP: //')"
    exit 0
fi
sed -n 's/^L2: //p' "$log" > "$tmp/kvm"
kstatus=$(sed -n 's/^KESTREL-STATUS=//p' "$log")
errs=$(sed -n 's/^KESTREL-STDERR: //p' "$log" | head -n 8 | tr '\n' '|')
if [ -z "$kstatus" ]; then
    echo "FAIL $name: kestrel never finished in L1 (status $status; log $log)"
elif ! cmp -s "$tmp/tcg" "$tmp/kvm"; then
    echo "FAIL $name: -accel kvm printed '$(tr '\n' '|' < "$tmp/kvm" | head -c 300)' but -accel tcg '$(tr '\n' '|' < "$tmp/tcg")'; kvm status $kstatus; stderr: $errs (log $log)"
elif [ "$kstatus" != 0 ]; then
    echo "FAIL $name: -accel kvm exit status $kstatus after the triple fault, expected 0 (-no-reboot); stderr: $errs"
else
    echo "PASS $name"
fi
