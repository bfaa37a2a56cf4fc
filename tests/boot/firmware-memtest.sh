#!/bin/sh
# Memtest86+ (Debian's memtest86+ package) through the firmware, two ways:
#   memtest-iso        SeaBIOS boots GRUB from build/guests/memtest.iso, which
#                      starts memtest86+x64.bin with linux16 (16-bit entry);
#   memtest-linuxboot  -bios + -kernel memtest86+x64.bin: our linuxboot ROM.
# With console=ttyS0,115200 memtest draws its screen on COM1.  Passes when
# the banner is up and test #0 ("Address test, walking ones") has started,
# with no error counted (a full pass takes minutes: tests/slow/firmware-memtest-pass.sh).
#   guest-oracle/memtest-*-under-qemu  the same command under QEMU + SeaBIOS;
#   boot/firmware-memtest-*            under kestrel.
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
. "$KESTREL_GUESTS_SRC/fwboot-lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}
names="memtest-iso memtest-linuxboot"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-fwmemtest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

build_guest build-memtest "$guests"
why=$GUEST_WHY
[ -f "$guests/memtest86+x64.bin" ] || {
    for n in $names; do
        echo "SKIP guest-oracle/$n-under-qemu: $why"
        echo "SKIP boot/firmware-$n: $why"
    done
    exit 0
}
bios_dir=$(fw_seabios_dir)

# run_one NAME LOG TIMEOUT EMULATOR ACCEL; 1 if NAME cannot run here (SKIP printed).
run_one() {
    case $1 in
    memtest-iso)
        [ -f "$guests/memtest.iso" ] || { echo "SKIP $6: ${why:-no memtest.iso}"; return 1; }
        set -- "$@" -drive "file=$guests/memtest.iso,if=ide,index=2,media=cdrom,format=raw" ;;
    memtest-linuxboot)
        [ -n "$bios_dir" ] || { echo "SKIP $6: no bios-256k.bin (apt-get install seabios)"; return 1; }
        set -- "$@" -bios "$bios_dir/bios-256k.bin" -kernel "$guests/memtest86+x64.bin" \
            -append console=ttyS0,115200 ;;
    esac
    _l=$2 _t=$3 _e=$4 _a=$5
    shift 6
    fw_run "$_l" 'Address test, walking ones|Errors: *[1-9]' "$_t" "$_e" -accel "$_a" -m 64 \
        -nodefaults -display none -serial stdio -monitor none -no-reboot "$@"
    return 0
}

# check NAME LOG
check() {
    if ! fw_has "$2" 'Memtest86+ v'; then
        echo "FAIL $1: no Memtest86+ banner on the serial console; $(fw_where "$2")"
    elif grep -a -q -E 'Errors: *[1-9]' "$2.txt"; then
        echo "FAIL $1: memtest counted errors: $(grep -a -o -E 'Errors: *[0-9]+' "$2.txt" | tail -n 1)"
    elif ! fw_has "$2" 'Address test, walking ones'; then
        echo "FAIL $1: memtest came up but test #0 never started; $(fw_where "$2")"
    else
        echo "PASS $1"
    fi
}

qemu=$(command -v qemu-system-x86_64)
for n in $names; do
    if [ -z "$qemu" ]; then
        echo "SKIP guest-oracle/$n-under-qemu: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
    elif run_one $n "$tmp/qemu-$n" $((60 * scale)) "$qemu" tcg "guest-oracle/$n-under-qemu"; then
        check "guest-oracle/$n-under-qemu" "$tmp/qemu-$n"
    fi
done

for n in $names; do
    guest_accels "boot/firmware-$n" || continue
    for accel in $GUEST_ACCELS; do
        if run_one $n "$tmp/kestrel-$n-$accel" $((180 * scale)) "$KESTREL" "$accel" \
                "boot/firmware-$n[$accel]"; then
            check "boot/firmware-$n[$accel]" "$tmp/kestrel-$n-$accel"
        fi
    done
done
