#!/bin/sh
# Firmware boot from a floppy: SeaBIOS loads our own boot sector
# (tests/guests/floppy-boot.S, image tests/guests/build-floppy) which prints
# KESTREL-FLOPPY-OK through INT 10h and INT 14h, reads sector 2 with INT 13h
# and prints the KESTREL-FLOPPY-SECTOR2-OK stored there, then writes 0x21 to
# isa-debug-exit (exit status 0x43 = 67).
#   guest-oracle/floppy-under-qemu  the same command under QEMU + SeaBIOS;
#   boot/firmware-floppy            under kestrel (SeaBIOS, FDC, DMA, IRQ 6).
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
. "$KESTREL_GUESTS_SRC/fwboot-lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}

oracle=guest-oracle/floppy-under-qemu
test=boot/firmware-floppy
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-fwfloppy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! build_guest build-floppy "$guests"; then
    echo "SKIP $oracle: $GUEST_WHY"
    echo "SKIP $test: $GUEST_WHY"
    exit 0
fi

# snapshot=on: writes go to a temporary overlay, the built image stays pristine.
args="-m 64 -nodefaults -display none -serial stdio -monitor none -no-reboot
      -drive file=$guests/floppy.img,if=floppy,format=raw,snapshot=on
      -device isa-debug-exit,iobase=0xf4,iosize=0x04"

# check NAME LOG
check() {
    if ! fw_has "$2" KESTREL-FLOPPY-OK; then
        echo "FAIL $1: the boot sector did not run (no KESTREL-FLOPPY-OK); $(fw_where "$2")"
    elif fw_has "$2" KESTREL-FLOPPY-READ-FAIL; then
        echo "FAIL $1: INT 13h could not read sector 2: $(grep -a -o 'KESTREL-FLOPPY-READ-FAIL ah=..' "$2.txt" | head -n 1); $(fw_where "$2")"
    elif ! fw_has "$2" KESTREL-FLOPPY-SECTOR2-OK; then
        echo "FAIL $1: no KESTREL-FLOPPY-SECTOR2-OK from the INT 13h read; $(fw_where "$2")"
    elif [ "$(cat "$2.status")" != 67 ]; then
        echo "FAIL $1: exit status $(cat "$2.status"), expected 67 (isa-debug-exit 0x21); $(fw_where "$2")"
    else
        echo "PASS $1"
    fi
}

qemu=$(command -v qemu-system-x86_64)
if [ -z "$qemu" ]; then
    echo "SKIP $oracle: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
else
    fw_run "$tmp/qemu" "" $((60 * scale)) "$qemu" -accel tcg $args
    check "$oracle" "$tmp/qemu"
fi

guest_accels "$test" || exit 0
for accel in $GUEST_ACCELS; do
    fw_run "$tmp/kestrel-$accel" "" $((90 * scale)) "$KESTREL" -accel "$accel" $args
    check "$test[$accel]" "$tmp/kestrel-$accel"
done
