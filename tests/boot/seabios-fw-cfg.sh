#!/bin/sh
# Debian's SeaBIOS (bios-256k.bin) on an empty machine takes its
# configuration from fw_cfg (firmware-seabios.md §4-§6).  Its log on the
# debug port 0x402 must show, in order of POST:
#   fw_cfg found with DMA, the RAM size from etc/e820, the PM base moved to
#   0x600 (etc/table-loader present), one CPU, the SMBIOS tables copied, the
#   FADT found through our RSDP and the DSDT parsed, and finally
#   "No bootable device" (nothing to boot).
#   boot/seabios-fw-cfg   under kestrel (KVM if usable, else the software CPU)
: "${KESTREL:=$(pwd)/kestrel}"
test=boot/seabios-fw-cfg
bios=/usr/share/seabios/bios-256k.bin
timeout_s=$((90 * ${KESTREL_TEST_TIMEOUT_SCALE:-1}))

if [ ! -r "$bios" ]; then
    echo "SKIP $test: $bios not installed (Debian package seabios)"
    exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-seabios.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log=$tmp/seabios.log

"$KESTREL" -display none -nodefaults -m 256 \
    -chardev "file,id=dbg,path=$log" -device isa-debugcon,iobase=0x402,chardev=dbg \
    > "$tmp/out" 2>&1 &
pid=$!
i=0
while [ $i -lt "$timeout_s" ] && kill -0 $pid 2>/dev/null; do
    grep -q 'No bootable device' "$log" 2>/dev/null && break
    sleep 1
    i=$((i + 1))
done
kill $pid 2>/dev/null
wait $pid 2>/dev/null

if [ ! -s "$log" ]; then
    echo "FAIL $test: no SeaBIOS output on port 0x402; kestrel said: $(head -c 300 "$tmp/out")"
    exit 0
fi
tr -d '\r' < "$log" > "$log.txt"
missing=""
for want in 'Found QEMU fw_cfg' 'QEMU fw_cfg DMA interface supported' \
            'qemu/e820: addr 0x0000000000000000 len 0x0000000010000000 \[RAM\]' \
            'Moving pm_base to 0x600' 'Found 1 cpu(s) max supported 1 cpu(s)' \
            'Copying SMBIOS' 'table(50434146)=' 'ACPI: parse DSDT' 'No bootable device'; do
    grep -q "$want" "$log.txt" || missing="$missing '$want'"
done
if [ -n "$missing" ]; then
    echo "FAIL $test: SeaBIOS log lacks$missing; last lines: $(tail -n 8 "$log.txt" | tr '\n' '|' | cut -c1-500)"
    exit 0
fi
echo "PASS $test"
