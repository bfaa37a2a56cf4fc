#!/bin/sh
# Memtest86+ (build/guests/memtest.iso: SeaBIOS -> GRUB -> linux16 memtest)
# runs one full pass over 32 MiB without an error: the status line shows
# "Pass:  1 ... Errors: 0" (make check-slow; about 3-4 minutes under QEMU
# TCG, most of it test #10 "bit fade", which waits 2 x 80 seconds).
#   guest-oracle/memtest-pass-under-qemu  the same command under QEMU + SeaBIOS;
#   slow/firmware-memtest-pass            under kestrel.
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
. "$KESTREL_GUESTS_SRC/fwboot-lib.sh"
guests=$BUILD/guests
scale=${KESTREL_TEST_TIMEOUT_SCALE:-1}

oracle=guest-oracle/memtest-pass-under-qemu
test=slow/firmware-memtest-pass
if [ "${KESTREL_SLOW:-0}" != 1 ]; then
    echo "SKIP $oracle: slow test (KESTREL_SLOW=1, make check-slow)"
    echo "SKIP $test: slow test (KESTREL_SLOW=1, make check-slow)"
    exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-fwmtpass.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! build_guest build-memtest "$guests" || [ ! -f "$guests/memtest.iso" ]; then
    echo "SKIP $oracle: $GUEST_WHY"
    echo "SKIP $test: $GUEST_WHY"
    exit 0
fi

args="-m 32 -nodefaults -display none -serial stdio -monitor none -no-reboot
      -drive file=$guests/memtest.iso,if=ide,index=2,media=cdrom,format=raw"
stop_re='Pass: +[1-9][0-9]* |Errors: *[1-9]'

# check NAME LOG
check() {
    last=$(grep -a -o -E '#[0-9]+ +\[[^]]*\]' "$2.txt" | tail -n 1)
    if grep -a -q -E 'Errors: *[1-9]' "$2.txt"; then
        echo "FAIL $1: memtest counted errors: $(grep -a -o -E 'Errors: *[0-9]+' "$2.txt" | tail -n 1) (last test: $last)"
    elif ! grep -a -q -E 'Pass: +1 +Errors: +0 ' "$2.txt"; then
        echo "FAIL $1: no completed pass (last test seen: ${last:-none}); $(fw_where "$2")"
    else
        echo "PASS $1"
    fi
}

# Both runs must fit in run-tests.sh's 900 s per program, and most of a
# pass is test #10 waiting in real time: run the oracle and kestrel side by
# side.  The QEMU run gives the reference for how long a pass takes here.
qemu=$(command -v qemu-system-x86_64)
# run-tests.sh stops a program after TEST_PROGRAM_TIMEOUT (900 s unless set):
# raise that to give a slow CPU engine more time.
limit=$(( (${TEST_PROGRAM_TIMEOUT:-900} - 60) * scale ))
if [ -z "$qemu" ]; then
    echo "SKIP $oracle: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
else
    fw_run "$tmp/qemu" "$stop_re" "$limit" "$qemu" -accel tcg $args &
    qpid=$!
fi
if guest_accels "$test"; then
    for accel in $GUEST_ACCELS; do
        fw_run "$tmp/kestrel-$accel" "$stop_re" "$limit" "$KESTREL" -accel "$accel" $args
    done
    kdone=1
fi
if [ -n "$qemu" ]; then
    wait "$qpid"
    check "$oracle" "$tmp/qemu"
fi
if [ -n "${kdone:-}" ]; then
    for accel in $GUEST_ACCELS; do
        check "$test[$accel]" "$tmp/kestrel-$accel"
    done
fi
exit 0
