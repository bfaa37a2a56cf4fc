#!/bin/sh
# -kernel through the firmware: with -bios, the Debian kernel, initramfs and
# command line go into fw_cfg (keys 0x07-0x18; hw/pc/linuxboot_fw.c) and
# the option ROM genroms/linuxboot.bin (roms/linuxboot.S), first in the boot
# order, copies them into memory and enters the kernel's real-mode setup
# code; the guest prints KESTREL-LINUXBOOT-OK.
#   guest-oracle/linuxboot-under-qemu          QEMU with its own linuxboot_dma.bin:
#                                              proves the guest and the checks;
#   guest-oracle/linuxboot-rom-dma-under-qemu  QEMU running OUR ROM (found first
#                                              through -L), fw_cfg DMA copies;
#   guest-oracle/linuxboot-rom-pio-under-qemu  the same with fw_cfg DMA off
#                                              (-global fw_cfg_io.dma_enabled=off):
#                                              the ROM's rep insb path in big real mode;
#   boot/firmware-linuxboot                    under kestrel;
#   boot/firmware-linuxboot-refuses-multiboot  -bios with a Multiboot -kernel is
#                                              a clear error, not a hang.
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
. "$KESTREL_GUESTS_SRC/fwboot-lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}

oracles="linuxboot linuxboot-rom-dma linuxboot-rom-pio"
test=boot/firmware-linuxboot
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-fwlinuxboot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

skip_all() {
    for o in $oracles; do echo "SKIP guest-oracle/$o-under-qemu: $1"; done
    echo "SKIP $test: $1"
    exit 0
}
if ! build_guest linux-kernel "$guests" || ! build_guest initramfs "$guests"; then
    skip_all "$GUEST_WHY"
fi
bios_dir=$(fw_seabios_dir) || skip_all "no bios-256k.bin (apt-get install seabios)"

# run_one LOG TIMEOUT EMULATOR ARGS...: the common command line, then ARGS.
run_one() {
    _l=$1 _t=$2 _e=$3
    shift 3
    fw_run "$_l" '^KESTREL-CMD-END' "$_t" "$_e" "$@" -m 256 -nodefaults -display none \
        -serial stdio -monitor none -no-reboot -bios "$bios_dir/bios-256k.bin" \
        -kernel "$guests/bzImage" -initrd "$guests/initramfs.cpio.gz" \
        -append 'console=ttyS0 quiet kestrel.noshell kestrel.cmd="echo KESTREL-LINUXBOOT-OK"'
}

# check NAME LOG [BEV]: BEV = the ROM's bootstrap entry offset SeaBIOS must have called.
check() {
    if ! grep -a -q 'Booting from ROM' "$2.bios" 2>/dev/null; then
        echo "FAIL $1: SeaBIOS did not boot the linuxboot option ROM; $(fw_where "$2")"
    elif [ -n "${3:-}" ] && ! grep -a -q -i "Booting from [0-9a-f]*:$3\$" "$2.bios"; then
        echo "FAIL $1: SeaBIOS booted a ROM, but not at our BEV offset $3: $(grep -a 'Booting from [0-9a-f]*:' "$2.bios" | head -n 1)"
    elif ! fw_has_line "$2" KESTREL-INIT-OK; then
        echo "FAIL $1: the kernel did not reach /init (no KESTREL-INIT-OK); $(fw_where "$2")"
    elif ! fw_has_line "$2" KESTREL-LINUXBOOT-OK; then
        echo "FAIL $1: /init ran without the -append command (no KESTREL-LINUXBOOT-OK line); $(fw_where "$2")"
    else
        echo "PASS $1"
    fi
}

qemu=$(command -v qemu-system-x86_64)
rom=$BUILD/roms/linuxboot.bin
if [ -z "$qemu" ]; then
    for o in $oracles; do
        echo "SKIP guest-oracle/$o-under-qemu: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
    done
else
    run_one "$tmp/qemu" $((120 * scale)) "$qemu" -accel tcg
    check guest-oracle/linuxboot-under-qemu "$tmp/qemu"
    if [ ! -f "$rom" ]; then
        echo "SKIP guest-oracle/linuxboot-rom-dma-under-qemu: no $rom (make roms)"
        echo "SKIP guest-oracle/linuxboot-rom-pio-under-qemu: no $rom (make roms)"
    else
        # QEMU looks for linuxboot_dma.bin (DMA) or linuxboot.bin in -L first.
        mkdir -p "$tmp/roms"
        cp "$rom" "$tmp/roms/linuxboot_dma.bin"
        cp "$rom" "$tmp/roms/linuxboot.bin"
        # The BEV offset: word at 0x1A -> $PnP header, its word at +0x1A.
        pnp=$(od -An -tu2 -j26 -N2 "$rom" | tr -d ' ')
        bev=$(printf '%04x' "$(od -An -tu2 -j$((pnp + 26)) -N2 "$rom" | tr -d ' ')")
        run_one "$tmp/qemu-dma" $((120 * scale)) "$qemu" -accel tcg -L "$tmp/roms"
        check guest-oracle/linuxboot-rom-dma-under-qemu "$tmp/qemu-dma" "$bev"
        run_one "$tmp/qemu-pio" $((120 * scale)) "$qemu" -accel tcg -L "$tmp/roms" \
            -global fw_cfg_io.dma_enabled=off
        check guest-oracle/linuxboot-rom-pio-under-qemu "$tmp/qemu-pio" "$bev"
    fi
fi

guest_accels "$test" || exit 0
first_accel=${GUEST_ACCELS%% *}

# A Multiboot kernel cannot take this path: one clear error line, status 1.
refuse=boot/firmware-linuxboot-refuses-multiboot
if ! build_guest multiboot-test "$guests"; then
    echo "SKIP $refuse: $GUEST_WHY"
else
    timeout $((30 * scale)) "$KESTREL" -accel "$first_accel" -m 64 -nodefaults -display none \
        -serial none -monitor none -bios "$bios_dir/bios-256k.bin" \
        -kernel "$guests/multiboot-test.elf" < /dev/null > "$tmp/refuse.out" 2>&1
    st=$?
    want='only Linux bzImage kernels boot through the firmware'
    if [ $st -ne 1 ] || ! grep -q -F "$want" "$tmp/refuse.out"; then
        echo "FAIL $refuse: expected status 1 and '$want', got status $st: $(head -c 300 "$tmp/refuse.out")"
    else
        echo "PASS $refuse"
    fi
fi

for accel in $GUEST_ACCELS; do
    run_one "$tmp/kestrel-$accel" $((240 * scale)) "$KESTREL" -accel "$accel"
    check "$test[$accel]" "$tmp/kestrel-$accel"
done
