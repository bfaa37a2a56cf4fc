#!/bin/sh
# Firmware boot from a CD: SeaBIOS boots GRUB from build/guests/grub.iso
# (El Torito, tests/guests/build-grub-iso) on the IDE secondary master;
# GRUB, on COM1, loads the Debian kernel and the initramfs from the ISO 9660
# file system through INT 13h, and the guest prints KESTREL-GRUB-ISO-OK.
#   guest-oracle/grub-iso-under-qemu  the same command under QEMU + SeaBIOS;
#   boot/firmware-grub-iso            under kestrel (SeaBIOS, PIIX3 IDE, ATAPI).
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
. "$KESTREL_GUESTS_SRC/fwboot-lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}

oracle=guest-oracle/grub-iso-under-qemu
test=boot/firmware-grub-iso
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-fwgrubiso.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! build_guest build-grub-iso "$guests"; then
    echo "SKIP $oracle: $GUEST_WHY"
    echo "SKIP $test: $GUEST_WHY"
    exit 0
fi

args="-m 256 -nodefaults -display none -serial stdio -monitor none -no-reboot
      -drive file=$guests/grub.iso,if=ide,index=2,media=cdrom,format=raw"
done_re='^KESTREL-CMD-END'

# check NAME LOG: the stages in boot order, so a failure names the first one missing.
check() {
    if ! grep -a -q 'Booting from DVD/CD' "$2.bios" 2>/dev/null; then
        echo "FAIL $1: SeaBIOS did not boot from the CD; $(fw_where "$2")"
    elif ! fw_has "$2" KESTREL-GRUB-LOADING; then
        echo "FAIL $1: GRUB did not run its menu entry (no KESTREL-GRUB-LOADING); $(fw_where "$2")"
    elif ! fw_has_line "$2" KESTREL-INIT-OK; then
        echo "FAIL $1: GRUB ran but the guest's /init did not (no KESTREL-INIT-OK); $(fw_where "$2")"
    elif ! fw_has_line "$2" KESTREL-GRUB-ISO-OK; then
        echo "FAIL $1: /init ran but not the kestrel.cmd from grub.cfg (no KESTREL-GRUB-ISO-OK line); $(fw_where "$2")"
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
