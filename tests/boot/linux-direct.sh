#!/bin/sh
# Direct Linux boot: Debian's kernel + the busybox initramfs (tests/guests/),
# -smp 2 -m 1G, -serial stdio.  The guest prints its CPU count and memory and
# starts its shell; then a command is typed on the emulator's stdin (the
# user's terminal): the shell must run it (TYPED-42 is computed, so the tty's
# echo of the typed line does not count) and its 'reboot -f' must end the
# process with status 0 (-no-reboot).  Linux must run with PAT: no firmware
# programs the MTRRs, so the machine leaves them as SeaBIOS would.
#   guest-oracle/linux-initramfs-under-qemu  the same guest under QEMU TCG,
#                                             proving the initramfs and checks;
#   boot/linux-direct                         under kestrel: KVM where /dev/kvm
#                                             is usable, else the software CPU
#                                             (about a minute on 2 cores).
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-linuxtest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

oracle=guest-oracle/linux-initramfs-under-qemu
test=boot/linux-direct
if ! build_guest linux-kernel "$guests" || ! build_guest initramfs "$guests"; then
    echo "SKIP $oracle: $GUEST_WHY"
    echo "SKIP $test: $GUEST_WHY"
    exit 0
fi

# The single quotes keep $(...) for the guest's shell.
cmd='console=ttyS0 quiet kestrel.cmd="echo NPROC=$(nproc); echo CPUINFO=$(grep -c ^processor /proc/cpuinfo); echo PAT-CPUS=$(grep -cw pat /proc/cpuinfo); dmesg | grep x86/PA[T]:; grep MemTotal /proc/meminfo"'
typed='echo TYPED-$((6*7)); reboot -f\n'

# run_typed OUT TIMEOUT CMD...: run CMD with stdout in OUT, stderr in OUT.err;
# once the init marker is in OUT, type $typed on CMD's stdin (earlier input
# would be flushed when the guest's serial driver opens the port).  The pipe
# stays open so the emulator never sees end-of-file.  Returns CMD's status.
run_typed() {
    _out=$1 _tmo=$2
    shift 2
    rm -f "$_out.in"
    mkfifo "$_out.in"
    : > "$_out"
    ( i=0
      until grep -q KESTREL-INIT-OK "$_out" 2>/dev/null || [ $i -ge "$_tmo" ]; do
          sleep 1; i=$((i + 1))
      done
      sleep 3
      printf "$typed"
      sleep "$_tmo" ) > "$_out.in" &
    _typist=$!
    timeout "$_tmo" "$@" < "$_out.in" > "$_out" 2> "$_out.err"
    _s=$?
    kill "$_typist" 2>/dev/null
    wait "$_typist" 2>/dev/null
    return $_s
}

# check NAME OUT STATUS
check() {
    name=$1 out=$2 status=$3
    tr -d '\r' < "$out" > "$out.txt"
    tail_txt=$(tail -n 15 "$out.txt" | tr '\n' '|' | cut -c1-600)
    if ! grep -q '^KESTREL-INIT-OK' "$out.txt"; then
        echo "FAIL $name: no KESTREL-INIT-OK on the serial console (status $status); last lines: $tail_txt; stderr: $(head -c 300 "$out.err")"
        return
    fi
    if ! grep -qx 'NPROC=2' "$out.txt" || ! grep -qx 'CPUINFO=2' "$out.txt"; then
        echo "FAIL $name: expected 2 CPUs (nproc and /proc/cpuinfo); got: $(grep -E '^(NPROC|CPUINFO)=' "$out.txt" | tr '\n' ' ')"
        return
    fi
    # Linux clears the pat flag on family-6 CPUs below model 15 (erratum AN7).
    if ! grep -qx 'PAT-CPUS=2' "$out.txt"; then
        echo "FAIL $name: expected the pat flag on both CPUs in /proc/cpuinfo; got: $(grep '^PAT-CPUS=' "$out.txt")"
        return
    fi
    # Linux sets up PAT only when the MTRRs are enabled: with no firmware to
    # program them, the machine's reset must leave them as SeaBIOS would
    # (else the log says "x86/PAT: MTRRs disabled, skipping PAT
    # initialization too.").  Its PAT layout then has WC in entry 1.
    if grep -q 'x86/PAT: MTRRs disabled' "$out.txt" ||
       ! grep -qF 'x86/PAT: Configuration [0-7]: WB  WC  UC- UC  WB  WP  UC- WT' "$out.txt"; then
        echo "FAIL $name: Linux runs without PAT (expected 'x86/PAT: Configuration [0-7]: WB  WC  UC- UC  WB  WP  UC- WT'); got: $(grep 'x86/PAT:' "$out.txt" | head -n 2 | tr '\n' '|')"
        return
    fi
    kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' "$out.txt")
    # 1 GiB minus what the kernel keeps for itself: expect 850-1048 MiB.
    if [ -z "$kb" ] || [ "$kb" -lt 870400 ] || [ "$kb" -gt 1048576 ]; then
        echo "FAIL $name: MemTotal '${kb:-missing}' kB is not about 1 GiB"
        return
    fi
    if ! grep -qx 'TYPED-42' "$out.txt"; then
        echo "FAIL $name: the command typed on the terminal did not run in the guest's shell (no TYPED-42); last lines: $tail_txt"
        return
    fi
    if [ "$status" -ne 0 ]; then
        echo "FAIL $name: 'reboot -f' with -no-reboot should exit 0, got status $status; stderr: $(head -c 300 "$out.err")"
        return
    fi
    echo "PASS $name"
}

qemu=$(command -v qemu-system-x86_64)
if [ -z "$qemu" ]; then
    echo "SKIP $oracle: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
else
    run_typed "$tmp/qemu" $((180 * scale)) "$qemu" -accel tcg -smp 2 -m 1G -nodefaults \
        -display none -no-reboot -serial stdio -monitor none \
        -kernel "$guests/bzImage" -initrd "$guests/initramfs.cpio.gz" -append "$cmd"
    check "$oracle" "$tmp/qemu" $?
fi

guest_accels "$test" || exit 0
for accel in $GUEST_ACCELS; do
    case $accel in kvm) limit=$((120 * scale)) ;; *) limit=$((600 * scale)) ;; esac
    run_typed "$tmp/kestrel-$accel" "$limit" "$KESTREL" -accel "$accel" -smp 2 -m 1G \
        -display none -no-reboot -serial stdio -monitor none \
        -kernel "$guests/bzImage" -initrd "$guests/initramfs.cpio.gz" -append "$cmd"
    status=$?
    why=$(not_implemented_reason "$tmp/kestrel-$accel.err")
    if [ -n "$why" ] && ! grep -q KESTREL-INIT-OK "$tmp/kestrel-$accel"; then
        echo "SKIP $test[$accel]: $why"
        continue
    fi
    check "$test[$accel]" "$tmp/kestrel-$accel" "$status"
done
