#!/bin/sh
# Linux on Kestrel's IDE (PIIX3 IDE + ata_piix, bus-master DMA): Debian's
# kernel and the busybox initramfs (modules ata_piix, sd_mod, sr_mod) boot
# directly with
#   -hda  a 256 MiB image of random bytes   -> /dev/sda, read whole, md5 must
#                                               match the host's md5 of the file
#   -hdb  a 1 MiB zeroed image               -> /dev/sdb, the guest writes a
#                                               marker at sector 100 that must
#                                               land in the file
#   -cdrom a 4 MiB file of random bytes      -> /dev/sr0 (ATAPI), read whole,
#                                               md5 must match
#   guest-oracle/ide-linux-under-qemu  the same guest and images under QEMU TCG;
#   boot/ide-linux                     under kestrel (KVM if usable, else tcg).
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-idetest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

oracle=guest-oracle/ide-linux-under-qemu
test=boot/ide-linux
if ! build_guest linux-kernel "$guests" || ! build_guest initramfs "$guests"; then
    echo "SKIP $oracle: $GUEST_WHY"
    echo "SKIP $test: $GUEST_WHY"
    exit 0
fi
if ! zcat "$guests/initramfs.cpio.gz" | cpio -t 2>/dev/null | grep -q 'ata_piix.ko$'; then
    echo "SKIP $oracle: the initramfs has no ata_piix module (install kmod and rebuild the guests)"
    echo "SKIP $test: the initramfs has no ata_piix module (install kmod and rebuild the guests)"
    exit 0
fi

head -c $((256 << 20)) /dev/urandom > "$tmp/disk.img"
head -c $((4 << 20)) /dev/urandom > "$tmp/cd.iso"
want_sda=$(md5sum < "$tmp/disk.img" | cut -d' ' -f1)
want_sr0=$(md5sum < "$tmp/cd.iso" | cut -d' ' -f1)

# The single quotes keep $(...) for the guest's shell.
# SCSI probing is asynchronous (sda is not always -hda): wait for the three
# devices, then tell the disks apart by size.
cmd='console=ttyS0 quiet kestrel.noshell kestrel.modules=ata_piix,sd_mod,sr_mod kestrel.cmd="for i in $(seq 60); do [ -b /dev/sdb ] && [ -b /dev/sr0 ] && break; sleep 1; done; for d in sda sdb; do [ $(cat /sys/block/$d/size) = 524288 ] && big=$d; [ $(cat /sys/block/$d/size) = 2048 ] && small=$d; done; echo SDA=$(dd if=/dev/$big bs=1M 2>/dev/null | md5sum); echo SR0=$(dd if=/dev/sr0 bs=2048 2>/dev/null | md5sum); echo KESTREL-WRITTEN | dd of=/dev/$small bs=512 seek=100 conv=fsync 2>/dev/null; sync; echo WROTE; reboot -f"'

# run NAME EMULATOR-AND-ARGS...: boots with fresh images, checks everything.
run() {
    name=$1 limit=$2
    shift 2
    head -c $((1 << 20)) /dev/zero > "$tmp/write.img"
    timeout "$limit" "$@" -m 512 -display none -no-reboot -serial stdio -monitor none \
        -drive file="$tmp/disk.img",format=raw,if=ide,index=0 \
        -drive file="$tmp/write.img",format=raw,if=ide,index=1 \
        -drive file="$tmp/cd.iso",format=raw,if=ide,index=2,media=cdrom \
        -kernel "$guests/bzImage" -initrd "$guests/initramfs.cpio.gz" -append "$cmd" \
        </dev/null >"$tmp/out" 2>"$tmp/err"
    status=$?
    tr -d '\r' < "$tmp/out" > "$tmp/out.txt"
    last=$(tail -n 12 "$tmp/out.txt" | tr '\n' '|' | cut -c1-700)
    got_sda=$(sed -n 's/^SDA=\([0-9a-f]*\).*/\1/p' "$tmp/out.txt")
    got_sr0=$(sed -n 's/^SR0=\([0-9a-f]*\).*/\1/p' "$tmp/out.txt")
    if ! grep -q '^KESTREL-INIT-OK' "$tmp/out.txt"; then
        echo "FAIL $name: no KESTREL-INIT-OK (status $status); last lines: $last; stderr: $(head -c 300 "$tmp/err")"
    elif grep -q KESTREL-MODPROBE-FAILED "$tmp/out.txt"; then
        echo "FAIL $name: a module did not load: $(grep KESTREL-MODPROBE-FAILED "$tmp/out.txt" | tr '\n' ' ')"
    elif [ "$got_sda" != "$want_sda" ]; then
        echo "FAIL $name: md5 of /dev/sda in the guest '${got_sda:-none}' != host md5 of the image $want_sda; last lines: $last"
    elif [ "$got_sr0" != "$want_sr0" ]; then
        echo "FAIL $name: md5 of /dev/sr0 in the guest '${got_sr0:-none}' != host md5 of the CD image $want_sr0; last lines: $last"
    elif [ "$(dd if="$tmp/write.img" bs=512 skip=100 count=1 2>/dev/null | head -c 15)" != "KESTREL-WRITTEN" ]; then
        echo "FAIL $name: the guest's write to /dev/sdb sector 100 is not in the image file; last lines: $last"
    elif [ "$status" -ne 0 ]; then
        echo "FAIL $name: 'reboot -f' with -no-reboot should exit 0, got $status; stderr: $(head -c 300 "$tmp/err")"
    else
        echo "PASS $name"
    fi
}

qemu=$(command -v qemu-system-x86_64)
if [ -z "$qemu" ]; then
    echo "SKIP $oracle: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
else
    run "$oracle" $((240 * scale)) "$qemu" -accel tcg -M pc -nodefaults
fi

guest_accels "$test" || exit 0
for accel in $GUEST_ACCELS; do
    case $accel in kvm) limit=$((180 * scale)) ;; *) limit=$((600 * scale)) ;; esac
    run "$test[$accel]" "$limit" "$KESTREL" -accel "$accel"
done
