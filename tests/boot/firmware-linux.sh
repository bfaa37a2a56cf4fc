#!/bin/sh
# Linux through the firmware: SeaBIOS (-bios) loads Debian's kernel and the
# busybox initramfs with our linuxboot option ROM (-kernel/-initrd/-append go
# through fw_cfg), -smp 4, ACPI from our tables.  The guest must see 4 CPUs;
# on its first boot it marks the disk and runs 'reboot -f', which must reset
# the machine (no -no-reboot) so the firmware boots Linux again; the second
# boot sees the mark and runs 'poweroff -f', whose ACPI S5 write must end the
# process with status 0.  Linux must keep PAT (it clears it on family-6
# CPUs below model 15, erratum AN7), so its log shows a PAT configuration
# with WC; SeaBIOS enables the MTRRs, without which Linux skips PAT setup.
#   guest-oracle/firmware-linux-under-qemu  the same under QEMU TCG;
#   boot/firmware-linux                     under kestrel.
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}
bios=/usr/share/seabios/bios-256k.bin

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-fwlinux.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
oracle=guest-oracle/firmware-linux-under-qemu
test=boot/firmware-linux
if ! build_guest linux-kernel "$guests" || ! build_guest initramfs "$guests"; then
    echo "SKIP $oracle: $GUEST_WHY"
    echo "SKIP $test: $GUEST_WHY"
    exit 0
fi
if [ ! -f "$bios" ]; then
    echo "SKIP $oracle: $bios missing (apt-get install seabios)"
    echo "SKIP $test: $bios missing (apt-get install seabios)"
    exit 0
fi

# No double quotes inside kestrel.cmd: the initramfs's /init cuts at the next one.
cmd='console=ttyS0 quiet kestrel.noshell kestrel.modules=ata_piix,sd_mod kestrel.cmd="for i in $(seq 60); do [ -b /dev/sda ] && break; sleep 1; done; echo CPUS=$(nproc); echo ACPI-MADT=$(ls /sys/firmware/acpi/tables/APIC); echo PAT-CPUS=$(grep -cw pat /proc/cpuinfo); dmesg | grep x86/PA[T]:; case $(dd if=/dev/sda bs=4 count=1 2>/dev/null) in BOOT) echo SECOND-BOOT; poweroff -f;; *) echo -n BOOT | dd of=/dev/sda conv=fsync 2>/dev/null; echo FIRST-BOOT; reboot -f;; esac"'

run() {
    name=$1 limit=$2
    shift 2
    head -c 1048576 /dev/zero > "$tmp/mark.img"
    timeout "$limit" "$@" -bios "$bios" -smp 4 -m 512 -display none -serial stdio -monitor none \
        -drive file="$tmp/mark.img",format=raw,if=ide,index=0 \
        -kernel "$guests/bzImage" -initrd "$guests/initramfs.cpio.gz" -append "$cmd" \
        </dev/null >"$tmp/out" 2>"$tmp/err"
    status=$?
    tr -d '\r' < "$tmp/out" > "$tmp/out.txt"
    last=$(tail -n 10 "$tmp/out.txt" | tr '\n' '|' | cut -c1-600)
    if ! grep -q '^FIRST-BOOT' "$tmp/out.txt"; then
        echo "FAIL $name: the first boot did not finish (status $status); last lines: $last; stderr: $(head -c 300 "$tmp/err")"
    elif [ "$(grep -c '^CPUS=4$' "$tmp/out.txt")" -lt 1 ]; then
        echo "FAIL $name: Linux did not see 4 CPUs: $(grep '^CPUS=' "$tmp/out.txt" | tr '\n' ' ')"
    elif ! grep -q '^ACPI-MADT=/sys/firmware/acpi/tables/APIC' "$tmp/out.txt"; then
        echo "FAIL $name: no ACPI MADT in /sys/firmware/acpi/tables"
    elif [ "$(grep -c '^PAT-CPUS=4$' "$tmp/out.txt")" -lt 1 ] ||
         ! grep -q 'x86/PAT: Configuration \[0-7\]: WB  WC ' "$tmp/out.txt"; then
        echo "FAIL $name: Linux runs without PAT (expected the pat flag on 4 CPUs and a PAT configuration with WC); got: $(grep -e '^PAT-CPUS=' -e 'x86/PAT:' "$tmp/out.txt" | head -n 4 | tr '\n' '|')"
    elif ! grep -q '^SECOND-BOOT' "$tmp/out.txt"; then
        echo "FAIL $name: 'reboot -f' did not boot Linux again (status $status); last lines: $last"
    elif [ "$(grep -c '^CPUS=4$' "$tmp/out.txt")" -ne 2 ]; then
        echo "FAIL $name: the second boot did not see 4 CPUs: $(grep '^CPUS=' "$tmp/out.txt" | tr '\n' ' ')"
    elif [ "$status" -ne 0 ]; then
        echo "FAIL $name: 'poweroff -f' (ACPI S5) should exit with status 0, got $status; stderr: $(head -c 300 "$tmp/err")"
    else
        echo "PASS $name"
    fi
}

qemu=$(command -v qemu-system-x86_64)
if [ -z "$qemu" ]; then
    echo "SKIP $oracle: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
else
    run "$oracle" $((300 * scale)) "$qemu" -accel tcg -M pc -nodefaults
fi
guest_accels "$test" || exit 0
for accel in $GUEST_ACCELS; do
    case $accel in kvm) limit=$((300 * scale)) ;; *) limit=$((900 * scale)) ;; esac
    run "$test[$accel]" "$limit" "$KESTREL" -accel "$accel" -nodefaults
done
