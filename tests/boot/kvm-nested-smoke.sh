#!/bin/sh
# Nested KVM without /dev/kvm on this machine: Debian's QEMU in software mode
# (TCG, -cpu max: SVM + NPT) boots Debian's kernel as L1, which loads kvm and
# kvm_amd and runs tests/nested/kvm-smoke (static) against its /dev/kvm.
#   nested/kvm-smoke-npt     kvm_amd with nested paging (default)
#   nested/kvm-smoke-shadow  kvm_amd.npt=0 (shadow page tables)
# PASS when the smoke guest's port writes, MMIO exit, port read and HLT were
# all seen (KVM-SMOKE-OK, status 0).  This proves the harness that
# kvm-nested-multiboot.sh runs Kestrel's KVM accelerator in.
# SKIP (with the reason) when QEMU, the kernel package, a static libc or a
# working kvm_amd under TCG is not to be had here.
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
nested=$src/tests/nested
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}
export BUILD

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-nested-smoke.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
names="kvm-smoke-npt kvm-smoke-shadow"

skip_all() {
    for n in $names; do echo "SKIP nested/$n: $*"; done
    exit 0
}

command -v gcc >/dev/null 2>&1 || skip_all "gcc not installed"
mkdir -p "$BUILD/nested"
if ! gcc -static -O2 -o "$BUILD/nested/kvm-smoke" "$nested/kvm-smoke.c" > "$tmp/cc" 2>&1; then
    skip_all "cannot build a static kvm-smoke (libc6-dev with libc.a needed): $(head -n 1 "$tmp/cc")"
fi

for n in $names; do
    case $n in
    kvm-smoke-npt) extra= ;;
    kvm-smoke-shadow) extra=kvm_amd.npt=0 ;;
    esac
    "$nested/run-l1" --timeout $((240 * scale)) ${extra:+--append "$extra"} \
        --file "$BUILD/nested/kvm-smoke:/kvm-smoke" -- /kvm-smoke > "$tmp/$n" 2>&1
    status=$?
    tr -d '\r' < "$tmp/$n" > "$tmp/$n.txt"
    secs=$(sed -n 's/^run-l1: QEMU ran \([0-9]*\)s.*/\1/p' "$tmp/$n.txt")
    if [ "$status" -eq 77 ]; then
        skip_all "$(grep -m1 'SKIP: ' "$tmp/$n.txt" | sed 's/.*SKIP: //')"
    fi
    if [ "$n" = kvm-smoke-shadow ] && ! grep -q '^NESTED-KVM-PARAM kvm_amd.npt=N' "$tmp/$n.txt"; then
        echo "FAIL nested/$n: kvm_amd.npt=0 did not take effect: $(grep '^NESTED-KVM-PARAM' "$tmp/$n.txt" | tr '\n' ' ')"
        continue
    fi
    if [ "$status" -eq 0 ] && grep -q '^KVM-SMOKE-OK' "$tmp/$n.txt"; then
        echo "PASS nested/$n (L1 boot + smoke in ${secs}s)"
    else
        echo "FAIL nested/$n: status $status; $(grep -m1 -E 'KVM-SMOKE-FAIL|run-l1: timed out|NESTED-INSMOD .* failed' "$tmp/$n.txt") last lines: $(tail -n 8 "$tmp/$n.txt" | tr '\n' '|')"
    fi
done
