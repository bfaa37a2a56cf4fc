#!/bin/sh
# Malformed command lines: exactly one "kestrel: ..." line on stderr, nothing
# on stdout, exit status 1, and no machine started.  Queries ("help") exit 0.
: "${KESTREL:=./kestrel}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
kernel="$tmp/kernel"
printf 'not a kernel' > "$kernel"

# expect_error NAME PATTERN ARGS...
expect_error() {
    name=$1; pattern=$2; shift 2
    timeout 20 "$KESTREL" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    status=$?
    lines=$(wc -l < "$tmp/err")
    if [ "$status" -ne 1 ]; then
        echo "FAIL cli/$name: expected exit status 1, got $status (stderr: $(head -c 300 "$tmp/err"))"
    elif [ "$lines" -ne 1 ]; then
        echo "FAIL cli/$name: expected one error line, got $lines: $(head -c 300 "$tmp/err")"
    elif ! grep -q '^kestrel: ' "$tmp/err"; then
        echo "FAIL cli/$name: error line lacks the 'kestrel: ' prefix: $(cat "$tmp/err")"
    elif ! grep -qi -- "$pattern" "$tmp/err"; then
        echo "FAIL cli/$name: error does not mention '$pattern': $(cat "$tmp/err")"
    elif [ -s "$tmp/out" ]; then
        echo "FAIL cli/$name: printed on stdout: $(head -c 200 "$tmp/out")"
    else
        echo "PASS cli/$name"
    fi
}

# expect_query NAME PATTERN ARGS...: exit 0 and PATTERN on stdout
expect_query() {
    name=$1; pattern=$2; shift 2
    timeout 20 "$KESTREL" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    status=$?
    if [ "$status" -ne 0 ]; then
        echo "FAIL cli/$name: expected exit status 0, got $status ($(head -c 300 "$tmp/err"))"
    elif ! grep -q -- "$pattern" "$tmp/out"; then
        echo "FAIL cli/$name: stdout lacks '$pattern': $(head -c 300 "$tmp/out")"
    else
        echo "PASS cli/$name"
    fi
}

expect_error unknown-option "invalid option" -frobnicate
expect_error unknown-double-dash-option "invalid option" --frobnicate
expect_error missing-argument "requires an argument" -m
expect_error bad-memory-size "-m" -m lots
expect_error memory-size-zero "between" -m 0
expect_error memory-unknown-key "unknown option 'colour'" -m 1G,colour=red
expect_error smp-zero "between 1 and" -smp 0
expect_error smp-junk "-smp" -smp two
expect_error smp-too-many "between 1 and" -smp 1000
expect_error unknown-machine "unsupported machine" -M q35
expect_error machine-bad-irqchip "kernel-irqchip" -machine pc,kernel-irqchip=maybe
expect_error unknown-accel "no such accelerator" -accel warp -kernel "$kernel"
expect_error unknown-device "unknown device type" -device no-such-device
expect_error device-bad-property "unknown property" -accel qtest -qtest unix:/nonexistent -device isa-debug-exit,colour=red
expect_error device-bad-value "expects a uint" -accel qtest -qtest unix:/nonexistent -device isa-debug-exit,iobase=zz
expect_error device-missing-chardev "chardev 'nope' not found" -accel qtest -qtest unix:/nonexistent -device isa-serial,chardev=nope
expect_error missing-kernel "No such file" -kernel "$tmp/does-not-exist"
expect_error initrd-without-kernel "without -kernel" -initrd "$kernel"
expect_error bad-log-category "unknown log category" -d frobs
expect_error bad-serial-backend "serial" -serial warp:drive -kernel "$kernel"
expect_error bad-chardev-backend "chardev" -chardev warp,id=x -kernel "$kernel"
expect_error too-many-serials "at most 4" -serial null -serial null -serial null -serial null -serial null
expect_error not-yet-netdev "not implemented yet" -netdev user,id=n0
expect_error drive-missing-file "No such file" -drive file="$tmp/nope.img",format=raw
expect_error hda-missing-file "No such file" -hda "$tmp/nope.img"
expect_error drive-bad-format "unknown image format" -drive file="$kernel",format=vmdk
expect_error drive-bad-interface "if=scsi" -drive file="$kernel",format=raw,if=scsi
expect_error drive-bad-media "media=tape" -drive file="$kernel",format=raw,media=tape
expect_error drive-bad-index "out of range" -drive file="$kernel",format=raw,index=4
expect_error drive-unknown-key "unknown option 'colour'" -drive file="$kernel",format=raw,colour=red
expect_error drive-index-twice "exists" -hda "$kernel" -drive file="$kernel",format=raw,index=0
expect_error drive-no-file "file= is required" -drive if=ide,format=raw
chmod 0444 "$kernel"
if [ "$(id -u)" -ne 0 ]; then
    expect_error drive-readonly-file-rw "ermission" -drive file="$kernel",format=raw
else
    echo "SKIP cli/drive-readonly-file-rw: running as root, which may write a 0444 file"
fi
expect_error bad-bios "No such file" -bios "$tmp/no-bios.bin"
expect_error ide-hd-without-drive "drive= is required" -accel qtest -qtest unix:/nonexistent -device ide-hd
expect_error ide-hd-unknown-drive "no -drive with that id" -accel qtest -qtest unix:/nonexistent -device ide-hd,drive=nope
expect_error ide-hd-bad-bus "no such bus" -accel qtest -qtest unix:/nonexistent -drive if=none,id=d,file="$kernel",format=raw,readonly=on -device ide-hd,drive=d,bus=ide.7
expect_error drive-used-twice "already in use" -accel qtest -qtest unix:/nonexistent -drive if=none,id=d,file="$kernel",format=raw,readonly=on -device ide-hd,drive=d -device ide-cd,drive=d
expect_error bad-boot-order "boot" -accel qtest -qtest unix:/nonexistent -boot order=xyz
expect_error bare-argument "unexpected argument" disk.img
expect_error bad-global "DRIVER.PROPERTY=VALUE" -global nodot
expect_error qtest-accel-without-endpoint "needs -qtest" -accel qtest
expect_error unknown-display "not available" -display gtk

expect_query help "usage: kestrel" -help
expect_query version "Kestrel emulator version" -version
expect_query device-help "isa-serial" -device help
expect_query device-prop-help "iobase" -device isa-debug-exit,help
expect_query log-help "guest_errors" -d help
expect_query machine-help "i440FX" -machine help
expect_query accel-help "kvm" -accel help
expect_error unknown-cpu-feature "nosuch" -cpu kestrel64,+nosuch
expect_error unknown-cpu-model "model" -cpu pentium9000
expect_query cpu-help "kestrel64" -cpu help
