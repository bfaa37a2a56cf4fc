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
guest_accels boot/firmware-bootindex-default || exit 0
guest_accels boot/firmware-bootindex || exit 0
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

for accel in $GUEST_ACCELS; do
    run default-$accel $((120 * scale)) ",bootindex=-1 -boot reboot-timeout=0"
    if grep -a -q 'Boot failed: not a bootable disk' "$tmp/default-$accel.bios" &&
       ! grep -a -q 'KESTREL-GRUB-LOADING' "$tmp/default-$accel.serial" 2>/dev/null; then
        echo "PASS boot/firmware-bootindex-default[$accel]"
    else
        echo "FAIL boot/firmware-bootindex-default[$accel]: expected SeaBIOS to try the empty first disk and fail; log: $(grep -a 'Boot' "$tmp/default-$accel.bios" | tr '\n' '|'); stderr: $(head -c 200 "$tmp/default-$accel.err")"
    fi

    run indexed-$accel $((300 * scale)) ",bootindex=1"
    if grep -a -q 'Boot failed' "$tmp/indexed-$accel.bios"; then
        echo "FAIL boot/firmware-bootindex[$accel]: SeaBIOS still tried another disk first: $(grep -a 'Boot' "$tmp/indexed-$accel.bios" | tr '\n' '|')"
    elif ! grep -a -q '^KESTREL-GRUB-DISK-OK' "$tmp/indexed-$accel.serial"; then
        echo "FAIL boot/firmware-bootindex[$accel]: GRUB/Linux from the bootindex=1 disk did not run; serial: $(tail -c 300 "$tmp/indexed-$accel.serial" | tr '\n' '|'); stderr: $(head -c 200 "$tmp/indexed-$accel.err")"
    else
        echo "PASS boot/firmware-bootindex[$accel]"
    fi
done
