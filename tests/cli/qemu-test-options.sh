#!/bin/sh
# Options and names that CPU conformance suites written against QEMU's
# command line pass (kvm-unit-tests' x86 run line): -vnc none accepted,
# other -vnc values one clear error; the test devices listed by -device '?'
# the way x86/run greps for them; the probe line runtime.bash runs first;
# QEMU's named CPU models in -cpu help; a named model (and its -v1 name)
# accepted under the software CPU with one warning line naming what it
# leaves out.
: "${KESTREL:=./kestrel}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {
    timeout 20 "$KESTREL" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    status=$?
}

# -vnc none: accepted, and the machine builds (-accel qtest fails only at the socket).
run -vnc none -accel qtest -qtest unix:/nonexistent/qtest.sock -display none -nodefaults
if grep -qi -- "-vnc" "$tmp/err"; then
    echo "FAIL cli/vnc-none-accepted: -vnc none refused: $(head -c 300 "$tmp/err")"
elif ! grep -q "qtest" "$tmp/err"; then
    echo "FAIL cli/vnc-none-accepted: expected to get as far as the qtest socket; stderr: $(head -c 300 "$tmp/err")"
else
    echo "PASS cli/vnc-none-accepted"
fi

for v in :0 localhost:1 unix:/tmp/x.sock; do
    run -vnc "$v"
    lines=$(wc -l < "$tmp/err")
    if [ "$status" -ne 1 ] || [ "$lines" -ne 1 ] ||
       ! grep -q "^kestrel: -vnc $v: not supported yet" "$tmp/err"; then
        echo "FAIL cli/vnc-$v-refused: expected status 1 and one 'kestrel: -vnc $v: not supported yet' line, got status $status: $(head -c 300 "$tmp/err")"
    else
        echo "PASS cli/vnc-$v-refused"
    fi
done

# kvm-unit-tests' x86/run probes with -device '?' and greps for the quoted names.
run -device '?'
if [ "$status" -ne 0 ] || ! grep -qF '"pc-testdev"' "$tmp/out" ||
   ! grep -qF '"pci-testdev"' "$tmp/out" || ! grep -qF '"isa-debug-exit"' "$tmp/out"; then
    echo "FAIL cli/device-help-lists-test-devices: -device '?' status $status, expected quoted \"pc-testdev\", \"pci-testdev\", \"isa-debug-exit\": $(head -c 300 "$tmp/out") $(head -c 200 "$tmp/err")"
else
    echo "PASS cli/device-help-lists-test-devices"
fi

# kvm-unit-tests' runtime.bash (premature_failure) first runs the whole line
# with -kernel _NO_FILE_4Uhere_ and takes QEMU's "could not open kernel" as
# proof that every other option was accepted; newer x86/run adds --no-reboot.
run --no-reboot -nodefaults -vnc none -serial stdio -device pc-testdev \
    -device isa-debug-exit,iobase=0xf4,iosize=0x4 -device pci-testdev -machine accel=tcg \
    -kernel _NO_FILE_4Uhere_ -smp 1 -cpu qemu64,+x2apic
if [ "$status" -ne 1 ] ||
   ! grep _NO_FILE_4Uhere_ "$tmp/err" |
     grep -q -e "[Cc]ould not \(load\|open\) kernel" -e "error loading" -e "failed to load"; then
    echo "FAIL cli/kvm-unit-tests-probe-line: expected status 1 and a 'could not open kernel' line naming _NO_FILE_4Uhere_, got status $status: $(head -c 300 "$tmp/err")"
else
    echo "PASS cli/kvm-unit-tests-probe-line"
fi

run -cpu help
missing=
for m in qemu64 qemu32 kvm64 kvm32 core2duo Conroe Penryn Nehalem Westmere SandyBridge Haswell host max; do
    grep -q "^x86 $m " "$tmp/out" || missing="$missing $m"
done
if [ "$status" -ne 0 ] || [ -n "$missing" ]; then
    echo "FAIL cli/cpu-help-lists-qemu-models: status $status, missing:$missing"
else
    echo "PASS cli/cpu-help-lists-qemu-models"
fi

# A named model under the software CPU: accepted with no warning (the
# software CPU implements all of Nehalem since VME; a feature it lacked would
# be named on one warning line), then the machine runs (no kernel: stopped
# by the timeout).
if ! "$KESTREL" -accel help 2>&1 | grep -q -E '^ +tcg +available'; then
    echo "SKIP cli/cpu-nehalem-under-tcg: this kestrel has no software CPU"
    echo "SKIP cli/cpu-nehalem-v1-under-tcg: this kestrel has no software CPU"
else
    for m in Nehalem Nehalem-v1; do
        timeout 2 "$KESTREL" -accel tcg -display none -nodefaults -cpu "$m,+popcnt" \
            >"$tmp/out" 2>"$tmp/err" </dev/null
        status=$?
        nwarn=$(grep -c "warning: -cpu $m,+popcnt: the software CPU does not implement" "$tmp/err")
        other=$(grep -vc "warning: -cpu" "$tmp/err")
        if [ "$status" -ne 124 ]; then
            echo "FAIL cli/cpu-$(echo $m | tr A-Z a-z)-under-tcg: expected the machine to run until the timeout, got status $status: $(head -c 300 "$tmp/err")"
        elif [ "$nwarn" -ne 0 ] || [ "$other" -ne 0 ]; then
            echo "FAIL cli/cpu-$(echo $m | tr A-Z a-z)-under-tcg: expected no warning (every Nehalem feature is implemented) and nothing else: $(head -c 400 "$tmp/err")"
        elif sed -n 's/.*does not implement//p' "$tmp/err" | grep -q popcnt; then
            echo "FAIL cli/cpu-$(echo $m | tr A-Z a-z)-under-tcg: POPCNT is implemented but was dropped: $(cat "$tmp/err")"
        else
            echo "PASS cli/cpu-$(echo $m | tr A-Z a-z)-under-tcg"
        fi
    done
fi
