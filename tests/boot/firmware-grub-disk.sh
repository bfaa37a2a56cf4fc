#!/bin/sh
# Firmware boot from a hard disk: SeaBIOS loads the MBR of
# build/guests/grub-disk.img (tests/guests/build-grub-disk: GRUB boot.img +
# core.img, one FAT16 partition) from the IDE primary master; GRUB, on COM1,
# loads the Debian kernel and the initramfs from the FAT partition through
# INT 13h, and the guest prints KESTREL-GRUB-DISK-OK.
#   guest-oracle/grub-disk-under-qemu  the same command under QEMU + SeaBIOS;
#   boot/firmware-grub-disk            under kestrel (SeaBIOS, PIIX3 IDE, ATA).
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
. "$KESTREL_GUESTS_SRC/fwboot-lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}

oracle=guest-oracle/grub-disk-under-qemu
test=boot/firmware-grub-disk
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-fwgrubdisk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! build_guest build-grub-disk "$guests"; then
    echo "SKIP $oracle: $GUEST_WHY"
    echo "SKIP $test: $GUEST_WHY"
    exit 0
fi

# snapshot=on: writes go to a temporary overlay, the built image stays pristine.
args="-m 256 -nodefaults -display none -serial stdio -monitor none -no-reboot
      -drive file=$guests/grub-disk.img,if=ide,index=0,media=disk,format=raw,snapshot=on"
done_re='^KESTREL-CMD-END'

# check NAME LOG: the stages in boot order, so a failure names the first one missing.
check() {
    if ! grep -a -q 'Booting from Hard Disk' "$2.bios" 2>/dev/null; then
        echo "FAIL $1: SeaBIOS did not boot from the hard disk; $(fw_where "$2")"
    elif ! fw_has "$2" KESTREL-GRUB-LOADING; then
        echo "FAIL $1: GRUB did not run its menu entry (no KESTREL-GRUB-LOADING); $(fw_where "$2")"
    elif ! fw_has_line "$2" KESTREL-INIT-OK; then
        echo "FAIL $1: GRUB ran but the guest's /init did not (no KESTREL-INIT-OK); $(fw_where "$2")"
    elif ! fw_has_line "$2" KESTREL-GRUB-DISK-OK; then
        echo "FAIL $1: /init ran but not the kestrel.cmd from grub.cfg (no KESTREL-GRUB-DISK-OK line); $(fw_where "$2")"
    else
        echo "PASS $1"
    fi
}

qemu=$(command -v qemu-system-x86_64)
if [ -z "$qemu" ]; then
    echo "SKIP $oracle: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
else
    fw_run "$tmp/qemu" "$done_re" $((120 * scale)) "$qemu" -accel tcg $args
    check "$oracle" "$tmp/qemu"
fi

guest_accels "$test" || exit 0
for accel in $GUEST_ACCELS; do
    fw_run "$tmp/kestrel-$accel" "$done_re" $((240 * scale)) "$KESTREL" -accel "$accel" $args
    check "$test[$accel]" "$tmp/kestrel-$accel"
done
