#!/bin/sh
# Debian's SeaBIOS (bios-256k.bin) as the firmware of Kestrel's i440FX PC:
# no -kernel, -smp 2, an empty 1 MiB IDE disk, an empty CD-ROM drive and an
# empty floppy image, SeaBIOS's log on port 0x402.  The log must show that it
# found every part of the board it looks for (QEMU detection through the
# i440FX subsystem IDs, fw_cfg with DMA, the e820 table, PIIX4 PM timer,
# both CPUs, the ACPI tables from the table-loader, the IDE disk and CD-ROM,
# (not yet: "PS2 keyboard initialized" - no PS/2 keyboard is attached to the
# 8042 until the input issue),
# COM1) and then try the boot order c, a, d and stop at
# "No bootable device".
#   guest-oracle/seabios-log-under-qemu  the same command under QEMU proves the
#                                         expected lines;
#   boot/firmware-seabios                under kestrel.
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-seabios.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
oracle=guest-oracle/seabios-log-under-qemu
test=boot/firmware-seabios

head -c 1048576 /dev/zero > "$tmp/hd.img"
head -c 1474560 /dev/zero > "$tmp/fd.img"

# Lines (grep -E) SeaBIOS 1.16 logs on a complete board [firmware-seabios.md].
# Under KVM SeaBIOS finds the KVM CPUID signature and times itself with
# kvmclock instead of the PM timer (as it does under QEMU's KVM).
expect='SeaBIOS \(version 1\.16
Running on QEMU \(i440fx\)
Found QEMU fw_cfg
QEMU fw_cfg DMA interface supported
qemu/e820: addr 0x0000000000000000 len 0x0000000010000000 \[RAM\]
Moving pm_base to 0x600
PCI: init bdf=00:00\.0 id=8086:1237
PCI: init bdf=00:01\.0 id=8086:7000
PCI: init bdf=00:01\.1 id=8086:7010
PCI: init bdf=00:01\.3 id=8086:7113
(Using pmtimer, ioport 0x608|CPU Mhz=[0-9]+ \(kvmclock\))
Found 2 cpu\(s\) max supported 2 cpu\(s\)
ACPI: parse DSDT at
ATA controller 1 at 1f0/3f4/0 \(irq 14 dev 9\)
ATA controller 2 at 170/374/0 \(irq 15 dev 9\)
Found 1 serial ports
DVD/CD \[ata1-0: .*ATAPI
ata0-0: .*Hard-Disk \(1 MiBytes\)
Booting from Hard Disk
Booting from Floppy
Booting from DVD/CD
No bootable device'

# run NAME LIMIT EMULATOR ARGS...: run until the log says "No bootable device".
run() {
    name=$1 limit=$2
    shift 2
    : > "$tmp/sb.log"
    "$@" -smp 2 -m 256 -display none -serial null -monitor none \
        -chardev file,id=dbg,path="$tmp/sb.log" -device isa-debugcon,iobase=0x402,chardev=dbg \
        -drive file="$tmp/hd.img",format=raw,if=ide,index=0 -drive if=ide,index=2,media=cdrom \
        -drive file="$tmp/fd.img",format=raw,if=floppy -boot order=cad \
        </dev/null >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    i=0
    while [ $i -lt "$limit" ] && kill -0 $pid 2>/dev/null && ! grep -q 'No bootable device' "$tmp/sb.log"; do
        sleep 1; i=$((i + 1))
    done
    kill $pid 2>/dev/null; wait $pid 2>/dev/null
    missing=$(echo "$expect" | while read -r re; do
        grep -Eq -- "$re" "$tmp/sb.log" || printf '%s; ' "$re"
    done)
    if [ -n "$missing" ]; then
        echo "FAIL $name: SeaBIOS log lacks: $missing log tail: $(tail -n 8 "$tmp/sb.log" | tr '\n' '|' | cut -c1-500) stderr: $(head -c 200 "$tmp/err")"
    else
        echo "PASS $name"
    fi
}

qemu=$(command -v qemu-system-x86_64)
if [ -z "$qemu" ]; then
    echo "SKIP $oracle: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
else
    run "$oracle" $((120 * scale)) "$qemu" -accel tcg -M pc -nodefaults
fi
guest_accels "$test" || exit 0
for accel in $GUEST_ACCELS; do
    run "$test[$accel]" $((240 * scale)) "$KESTREL" -accel "$accel" -nodefaults
done
