#!/bin/sh
# Firmware boot under Kestrel's KVM accelerator, run for real on a machine
# without /dev/kvm (see kvm-nested-multiboot.sh for how the nested L1 works):
#   kestrel -accel kvm -bios /bios-256k.bin -fda /floppy.img -m 64 ...
# Debian's SeaBIOS runs from the flash mapping (a read-only memslot), shadows
# itself through PAM (memslots come and go), drives the floppy controller
# with ISA DMA and boots our boot sector (tests/guests/floppy-boot.S), which
# prints KESTREL-FLOPPY-OK and the sector it read through INT 13h on COM1 and
# exits with status 67 through isa-debug-exit.
#   nested/kestrel-kvm-firmware-floppy-npt   kvm_amd with nested paging
# and Linux through the firmware (-bios with -kernel: our linuxboot ROM),
# -smp 2, ACPI tables from the table-loader, 'poweroff -f' (ACPI S5 through
# the PIIX4 PM, SCI on the in-kernel IOAPIC) ending kestrel with status 0:
#   nested/kestrel-kvm-firmware-linux-npt
# SKIP with the reason when kestrel has no kvm accelerator, or QEMU / the
# kernel package / kvm_amd under TCG cannot be had here.
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
nested=$src/tests/nested
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}
bios=/usr/share/seabios/bios-256k.bin
export BUILD KESTREL

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-nested-fw.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=kestrel-kvm-firmware-floppy-npt
n2=kestrel-kvm-firmware-linux-npt

skip() { echo "SKIP nested/$n: $*"; echo "SKIP nested/$n2: $*"; exit 0; }

[ -x "$KESTREL" ] || skip "no kestrel binary at $KESTREL"
accels=$("$KESTREL" -accel help 2>&1)
printf '%s\n' "$accels" | grep -qw kvm || skip "kestrel was built without the kvm accelerator"
[ -f "$bios" ] || skip "$bios missing (apt-get install seabios)"
build_guest build-floppy "$BUILD/guests" || skip "$GUEST_WHY"
mkdir -p "$BUILD/nested"

"$nested/kestrel-in-l1" --timeout $((300 * scale)) --kestrel-timeout $((90 * scale)) \
    --put "$BUILD/guests/floppy.img:/floppy.img" --put "$bios:/bios-256k.bin" -- \
    -bios /bios-256k.bin -m 64 -nodefaults -display none -no-reboot -serial stdio \
    -monitor none -drive file=/floppy.img,if=floppy,format=raw,snapshot=on \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 ${KESTREL_NESTED_ARGS:-} \
    > "$tmp/out" 2>&1
status=$?
tr -d '\r' < "$tmp/out" > "$tmp/out.txt"
log=$BUILD/nested/$n.log
cp "$tmp/out.txt" "$log"
[ "$status" -eq 77 ] && skip "$(grep -m1 'SKIP: ' "$tmp/out.txt" | sed 's/.*SKIP: //')"
kstatus=$(sed -n 's/^KESTREL-STATUS=//p' "$tmp/out.txt")
sed -n 's/^L2: //p' "$tmp/out.txt" > "$tmp/serial"
errs=$(sed -n 's/^KESTREL-STDERR: //p' "$tmp/out.txt" | head -n 12 | tr '\n' '|')
secs=$(sed -n 's/^run-l1: QEMU ran \([0-9]*\)s.*/\1/p' "$tmp/out.txt")
if [ -z "$kstatus" ]; then
    echo "FAIL nested/$n: kestrel never finished in L1 (status $status; log $log): $(tail -n 6 "$tmp/out.txt" | tr '\n' '|')"
elif ! grep -q 'KESTREL-FLOPPY-OK' "$tmp/serial" || ! grep -q 'KESTREL-FLOPPY-SECTOR2-OK' "$tmp/serial"; then
    echo "FAIL nested/$n: the boot sector's lines are missing on COM1 (kestrel status $kstatus); serial: $(head -c 300 "$tmp/serial" | tr '\n' '|'); stderr: $errs (log $log)"
elif [ "$kstatus" != 67 ]; then
    echo "FAIL nested/$n: kestrel exit status $kstatus, expected 67 (isa-debug-exit 0x21); stderr: $errs (log $log)"
else
    echo "PASS nested/$n (L1 boot + SeaBIOS + floppy in ${secs}s)"
fi

# ---- Linux through SeaBIOS + linuxboot, -smp 2, ACPI poweroff ----
build_guest linux-kernel "$BUILD/guests" && build_guest initramfs "$BUILD/guests" || {
    echo "SKIP nested/$n2: $GUEST_WHY"; exit 0; }
cmd='console=ttyS0 quiet kestrel.noshell kestrel.cmd="echo NPROC=$(nproc); echo ACPI=$(ls /sys/firmware/acpi/tables/APIC)"'
"$nested/kestrel-in-l1" --timeout $((600 * scale)) --kestrel-timeout $((300 * scale)) --smp 2 \
    --put "$BUILD/guests/bzImage:/bzImage" --put "$BUILD/guests/initramfs.cpio.gz:/initramfs.cpio.gz" \
    --put "$bios:/bios-256k.bin" -- \
    -bios /bios-256k.bin -smp 2 -m 512 -nodefaults -display none -serial stdio -monitor none \
    -kernel /bzImage -initrd /initramfs.cpio.gz -append "$cmd" ${KESTREL_NESTED_ARGS:-} \
    > "$tmp/out2" 2>&1
status=$?
tr -d '\r' < "$tmp/out2" > "$tmp/out2.txt"
log=$BUILD/nested/$n2.log
cp "$tmp/out2.txt" "$log"
[ "$status" -eq 77 ] && { echo "SKIP nested/$n2: $(grep -m1 'SKIP: ' "$tmp/out2.txt" | sed 's/.*SKIP: //')"; exit 0; }
kstatus=$(sed -n 's/^KESTREL-STATUS=//p' "$tmp/out2.txt")
sed -n 's/^L2: //p' "$tmp/out2.txt" > "$tmp/serial2"
errs=$(sed -n 's/^KESTREL-STDERR: //p' "$tmp/out2.txt" | head -n 12 | tr '\n' '|')
secs=$(sed -n 's/^run-l1: QEMU ran \([0-9]*\)s.*/\1/p' "$tmp/out2.txt")
tail_txt=$(tail -n 10 "$tmp/serial2" | tr '\n' '|' | cut -c1-500)
if [ -z "$kstatus" ]; then
    echo "FAIL nested/$n2: kestrel never finished in L1 (status $status; log $log): $(tail -n 6 "$tmp/out2.txt" | tr '\n' '|')"
elif ! grep -q '^KESTREL-INIT-OK' "$tmp/serial2"; then
    echo "FAIL nested/$n2: Linux did not reach /init through the firmware (kestrel status $kstatus); last lines: $tail_txt; stderr: $errs (log $log)"
elif ! grep -qx 'NPROC=2' "$tmp/serial2"; then
    echo "FAIL nested/$n2: expected 2 CPUs, got: $(grep '^NPROC=' "$tmp/serial2")"
elif ! grep -qx 'ACPI=/sys/firmware/acpi/tables/APIC' "$tmp/serial2"; then
    echo "FAIL nested/$n2: no ACPI MADT in the guest"
elif [ "$kstatus" != 0 ]; then
    echo "FAIL nested/$n2: 'poweroff -f' (ACPI S5) should end kestrel with status 0, got $kstatus; last lines: $tail_txt (log $log)"
else
    echo "PASS nested/$n2 (L1 boot + SeaBIOS + Linux in ${secs}s)"
fi
