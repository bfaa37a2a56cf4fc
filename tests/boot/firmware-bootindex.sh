#!/bin/sh
# bootindex= on -device ide-hd reaches SeaBIOS's boot order: an empty disk on
# the primary master and the GRUB disk (tests/guests/build-grub-disk) on the
# secondary master, both as -drive if=none + -device ide-hd.
#   boot/firmware-bootindex-default  no bootindex: SeaBIOS tries the first
#                                    hard disk (the empty one) and fails
#   boot/firmware-bootindex          bootindex=1 on the GRUB disk: GRUB runs
#                                    and Linux reaches its command
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-bootindex.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! build_guest build-grub-disk "$guests"; then
    echo "SKIP boot/firmware-bootindex-default: $GUEST_WHY"
    echo "SKIP boot/firmware-bootindex: $GUEST_WHY"
    exit 0
fi
if [ ! -x "$KESTREL" ]; then
    echo "SKIP boot/firmware-bootindex-default: no kestrel binary at $KESTREL"
    echo "SKIP boot/firmware-bootindex: no kestrel binary at $KESTREL"
    exit 0
fi
if have_kvm; then accel=kvm; elif kestrel_pick_accel; then accel=$KACCEL; else
    echo "SKIP boot/firmware-bootindex-default: $KACCEL_WHY"
    echo "SKIP boot/firmware-bootindex: $KACCEL_WHY"
    exit 0
fi
head -c 1048576 /dev/zero > "$tmp/empty.img"

# run NAME LIMIT BOOTINDEX-OPTION
run() {
    : > "$tmp/$1.bios"
    timeout "$2" "$KESTREL" -accel "$accel" -m 256 -nodefaults -display none -monitor none \
        -serial file:"$tmp/$1.serial" -no-reboot \
        -chardev file,id=dbg,path="$tmp/$1.bios" -device isa-debugcon,iobase=0x402,chardev=dbg \
        -drive if=none,id=empty,file="$tmp/empty.img",format=raw \
        -device ide-hd,drive=empty,bus=ide.0,unit=0 \
        -drive if=none,id=grub,file="$guests/grub-disk.img",format=raw,snapshot=on \
        -device ide-hd,drive=grub,bus=ide.1,unit=0$3 </dev/null >"$tmp/$1.out" 2>"$tmp/$1.err"
}

run default $((120 * scale)) ",bootindex=-1 -boot reboot-timeout=0"
if grep -a -q 'Boot failed: not a bootable disk' "$tmp/default.bios" &&
   ! grep -a -q 'KESTREL-GRUB-LOADING' "$tmp/default.serial" 2>/dev/null; then
    echo "PASS boot/firmware-bootindex-default"
else
    echo "FAIL boot/firmware-bootindex-default: expected SeaBIOS to try the empty first disk and fail; log: $(grep -a 'Boot' "$tmp/default.bios" | tr '\n' '|'); stderr: $(head -c 200 "$tmp/default.err")"
fi

run indexed $((300 * scale)) ",bootindex=1"
if grep -a -q 'Boot failed' "$tmp/indexed.bios"; then
    echo "FAIL boot/firmware-bootindex: SeaBIOS still tried another disk first: $(grep -a 'Boot' "$tmp/indexed.bios" | tr '\n' '|')"
elif ! grep -a -q '^KESTREL-GRUB-DISK-OK' "$tmp/indexed.serial"; then
    echo "FAIL boot/firmware-bootindex: GRUB/Linux from the bootindex=1 disk did not run; serial: $(tail -c 300 "$tmp/indexed.serial" | tr '\n' '|'); stderr: $(head -c 200 "$tmp/indexed.err")"
else
    echo "PASS boot/firmware-bootindex"
fi
