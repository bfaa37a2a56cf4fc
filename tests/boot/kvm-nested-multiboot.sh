#!/bin/sh
# Kestrel's KVM accelerator run for real on a machine without /dev/kvm:
# Debian's QEMU in software mode (TCG, -cpu max: SVM + NPT) boots Debian's
# kernel as L1 (tests/nested/run-l1), L1 loads kvm + kvm_amd, and the host's
# ./kestrel (with the exact shared libraries ldd names) runs inside it
# (tests/nested/kestrel-in-l1):
#   kestrel -accel kvm -m 64 -kernel /multiboot-test.elf -append "hello world"
#           -device isa-debug-exit,iobase=0xf4,iosize=0x04 -serial stdio ...
#   nested/kestrel-kvm-multiboot-npt     kvm_amd with nested paging
#   nested/kestrel-kvm-multiboot-shadow  kvm_amd.npt=0 (shadow paging)
# Asserts the Multiboot test kernel's lines on COM1 (KESTREL-MB-OK, its
# command line, zeroed bss) and exit status 65 (0x41: isa-debug-exit 0x20).
# SKIP with the reason when kestrel has no kvm accelerator, or QEMU / the
# kernel package / kvm_amd under TCG cannot be had here.
# KESTREL_NESTED_ARGS adds kestrel options (e.g. "-d guest_errors").
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
nested=$src/tests/nested
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}
export BUILD KESTREL

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-nested-mb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
names="kestrel-kvm-multiboot-npt kestrel-kvm-multiboot-shadow"

skip_all() {
    for n in $names; do echo "SKIP nested/$n: $*"; done
    exit 0
}

[ -x "$KESTREL" ] || skip_all "no kestrel binary at $KESTREL"
accels=$("$KESTREL" -accel help 2>&1)
printf '%s\n' "$accels" | grep -qw kvm ||
    skip_all "kestrel was built without the kvm accelerator (-accel help: $(printf '%s' "$accels" | tr '\n' ' ' | cut -c1-100))"
build_guest multiboot-test "$BUILD/guests" || skip_all "$GUEST_WHY"
mkdir -p "$BUILD/nested"

for n in $names; do
    case $n in
    *-npt) extra= ;;
    *-shadow) extra=kvm_amd.npt=0 ;;
    esac
    # shellcheck disable=SC2086 # KESTREL_NESTED_ARGS is a word list
    "$nested/kestrel-in-l1" --timeout $((300 * scale)) --kestrel-timeout $((60 * scale)) \
        ${extra:+--append "$extra"} \
        --put "$BUILD/guests/multiboot-test.elf:/multiboot-test.elf" -- \
        -m 64 -display none -no-reboot -serial stdio -monitor none \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel /multiboot-test.elf -append "hello world" ${KESTREL_NESTED_ARGS:-} \
        > "$tmp/$n" 2>&1
    status=$?
    tr -d '\r' < "$tmp/$n" > "$tmp/$n.txt"
    log=$BUILD/nested/$n.log
    cp "$tmp/$n.txt" "$log"
    [ "$status" -eq 77 ] && skip_all "$(grep -m1 'SKIP: ' "$tmp/$n.txt" | sed 's/.*SKIP: //')"
    kstatus=$(sed -n 's/^KESTREL-STATUS=//p' "$tmp/$n.txt")
    sed -n 's/^L2: //p' "$tmp/$n.txt" > "$tmp/$n.serial"
    errs=$(sed -n 's/^KESTREL-STDERR: //p' "$tmp/$n.txt" | head -n 12 | tr '\n' '|')
    secs=$(sed -n 's/^run-l1: QEMU ran \([0-9]*\)s.*/\1/p' "$tmp/$n.txt")
    if [ -z "$kstatus" ]; then
        echo "FAIL nested/$n: kestrel never finished in L1 (status $status; log $log): $(tail -n 6 "$tmp/$n.txt" | tr '\n' '|')"
        continue
    fi
    why=$(sed -n 's/^KESTREL-STDERR: //p' "$tmp/$n.txt" > "$tmp/$n.err"; not_implemented_reason "$tmp/$n.err")
    if [ -n "$why" ] && ! grep -q KESTREL-MB-OK "$tmp/$n.serial"; then
        echo "SKIP nested/$n: $why"
        continue
    fi
    bad=
    for want in "KESTREL-MB-OK" "cmdline=/multiboot-test.elf hello world" "bss=zero"; do
        grep -qxF -- "$want" "$tmp/$n.serial" || { bad="serial lacks the line '$want'"; break; }
    done
    if [ -z "$bad" ] && [ "$kstatus" != 65 ]; then
        bad="kestrel exit status $kstatus, expected 65 (0x41, isa-debug-exit 0x20)"
        [ "$kstatus" = 143 ] && bad="kestrel was killed after $((60 * scale))s inside L1 (guest hung)"
    fi
    if [ -n "$bad" ]; then
        echo "FAIL nested/$n: $bad; serial: $(head -c 300 "$tmp/$n.serial" | tr '\n' '|'); stderr: $errs (log $log)"
    else
        echo "PASS nested/$n (L1 boot + kestrel in ${secs}s)"
    fi
done
