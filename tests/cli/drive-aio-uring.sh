#!/bin/sh
# -drive ...,aio=io_uring as a user meets it: the machine starts with the
# image open, a ring exists in the process (an anon_inode:[io_uring] fd),
# nothing is printed, and it works with cache=none and qcow2 too; a boot
# sector reads and writes the disk through SeaBIOS and IDE;
# kestrel-img bench -i io_uring runs.  Where this build or kernel cannot do
# io_uring, the option must be refused with one "kestrel: ..." line and exit
# status 1 instead.  Machines run under -accel qtest with a null endpoint,
# the boot sector under the software CPU (-accel tcg, a second or less).
: "${KESTREL:=./kestrel}"
: "${KESTREL_IMG:=$(dirname "$KESTREL")/kestrel-img}"
tmp=$(mktemp -d)
p=
trap '[ -n "$p" ] && kill "$p" 2>/dev/null; rm -rf "$tmp"' EXIT
run="$KESTREL -accel qtest -qtest null -display none"

if [ ! -x "$KESTREL" ]; then
    echo "SKIP cli/drive-aio-uring: no kestrel binary at $KESTREL"
    exit 0
fi
head -c 4194304 /dev/zero > "$tmp/disk.img"

# Does this build/kernel take aio=io_uring at all?  (Refused: exit 1 quickly.)
$run -drive file="$tmp/disk.img",format=raw,if=none,id=d0,aio=io_uring \
    </dev/null >"$tmp/out" 2>"$tmp/err" &
p=$!
sleep 1
if ! kill -0 "$p" 2>/dev/null; then
    wait "$p"; status=$?; p=
    if [ "$status" -eq 1 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] &&
       grep -q '^kestrel: .*aio=io_uring' "$tmp/err"; then
        echo "PASS cli/drive-aio-uring-refused-cleanly"
        echo "SKIP cli/drive-aio-uring-opens: $(sed 's/^kestrel: //' "$tmp/err")"
    else
        echo "FAIL cli/drive-aio-uring-opens: exit $status: $(head -c 300 "$tmp/err")"
    fi
    exit 0
fi

# A guest disk read and write over the ring: a boot sector (assembled here)
# that reads LBA 1 through the BIOS (int 13h, SeaBIOS -> IDE -> blk_aio_*),
# writes it back to LBA 2 and prints it on COM1.
boot_rw() {
    name=$1; cache=$2
    if ! command -v as >/dev/null || ! command -v ld >/dev/null || ! command -v objcopy >/dev/null; then
        echo "SKIP cli/$name: binutils (as, ld, objcopy) not installed"
        return
    fi
    if [ ! -s "$tmp/mbr.bin" ]; then
        cat > "$tmp/mbr.S" <<'ASM'
.code16
.globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %sp
    sti
    mov %dl, drive
    mov $0x3fb, %dx
    mov $0x03, %al
    out %al, %dx
    mov drive, %dl
    mov $0x0201, %ax
    mov $0x0002, %cx
    xor %dh, %dh
    mov $0x7e00, %bx
    int $0x13
    jc fail
    mov $0x0301, %ax
    mov $0x0003, %cx
    xor %dh, %dh
    mov drive, %dl
    mov $0x7e00, %bx
    int $0x13
    jc fail
    mov $0x7e00, %si
    mov $16, %cx
1:  lodsb
    call putc
    loop 1b
    mov $'\n', %al
    call putc
halt:
    hlt
    jmp halt
fail:
    mov $'F', %al
    call putc
    jmp halt
putc:
    push %dx
    push %ax
    mov $0x3fd, %dx
2:  in %dx, %al
    test $0x20, %al
    jz 2b
    pop %ax
    mov $0x3f8, %dx
    out %al, %dx
    pop %dx
    ret
drive: .byte 0
.org 510
.byte 0x55, 0xaa
ASM
        as --32 -o "$tmp/mbr.o" "$tmp/mbr.S" &&
            ld -m elf_i386 -nostdlib -Ttext 0x7c00 -e _start -o "$tmp/mbr.elf" "$tmp/mbr.o" &&
            objcopy -O binary -j .text "$tmp/mbr.elf" "$tmp/mbr.bin" || {
            echo "FAIL cli/$name: could not assemble the boot sector"
            return
        }
    fi
    head -c 1048576 /dev/zero > "$tmp/boot.img"
    dd if="$tmp/mbr.bin" of="$tmp/boot.img" conv=notrunc 2>/dev/null
    printf 'KESTREL-URING-OK' | dd of="$tmp/boot.img" bs=1 seek=512 conv=notrunc 2>/dev/null
    : > "$tmp/serial"
    $KESTREL -accel tcg -display none -no-reboot -serial "file:$tmp/serial" \
        -drive "file=$tmp/boot.img,format=raw,if=ide,aio=io_uring,cache=$cache" \
        </dev/null >"$tmp/out" 2>"$tmp/err" &
    p=$!
    limit=$((60 * ${KESTREL_TEST_TIMEOUT_SCALE:-1} * 5))
    i=0
    while [ $i -lt $limit ] && kill -0 "$p" 2>/dev/null &&
          ! grep -q 'KESTREL-URING-OK' "$tmp/serial" && ! grep -q 'F' "$tmp/serial"; do
        sleep 0.2; i=$((i + 1))
    done
    kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; p=
    written=$(dd if="$tmp/boot.img" bs=1 skip=1024 count=16 2>/dev/null)
    if ! grep -q 'KESTREL-URING-OK' "$tmp/serial"; then
        echo "FAIL cli/$name: no marker on COM1 (serial: $(head -c 100 "$tmp/serial"), stderr: $(head -c 300 "$tmp/err"))"
    elif [ "$written" != KESTREL-URING-OK ]; then
        echo "FAIL cli/$name: the guest's write did not reach the image (LBA 2: '$written')"
    else
        echo "PASS cli/$name"
    fi
}

# opens NAME DRIVE-OPTS: the machine stays up, holds an io_uring fd, prints nothing.
opens() {
    name=$1; opts=$2
    if [ -z "$p" ]; then
        $run -drive "$opts" </dev/null >"$tmp/out" 2>"$tmp/err" &
        p=$!
        sleep 1
    fi
    if ! kill -0 "$p" 2>/dev/null; then
        wait "$p"
        echo "FAIL cli/$name: exited early: $(head -c 300 "$tmp/err")"
    elif ! ls -l /proc/$p/fd 2>/dev/null | grep -q 'io_uring'; then
        echo "FAIL cli/$name: no io_uring fd in the process"
    elif ! ls -l /proc/$p/fd 2>/dev/null | grep -q "$tmp/"; then
        echo "FAIL cli/$name: image not open"
    elif [ -s "$tmp/err" ] || [ -s "$tmp/out" ]; then
        echo "FAIL cli/$name: printed: $(head -c 300 "$tmp/err" "$tmp/out")"
    else
        echo "PASS cli/$name"
    fi
    kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; p=
}

opens drive-aio-uring-opens "file=$tmp/disk.img,format=raw,if=none,id=d0,aio=io_uring"
boot_rw drive-aio-uring-guest-read-write writeback
boot_rw drive-aio-uring-guest-read-write-cache-none none
opens drive-aio-uring-cache-none "file=$tmp/disk.img,format=raw,if=none,id=d0,aio=io_uring,cache=none"
if [ -x "$KESTREL_IMG" ]; then
    "$KESTREL_IMG" create -q -f qcow2 "$tmp/disk.qcow2" 4M >/dev/null 2>&1 ||
        "$KESTREL_IMG" create -f qcow2 "$tmp/disk.qcow2" 4M >/dev/null 2>&1
    opens drive-aio-uring-qcow2 "file=$tmp/disk.qcow2,format=qcow2,if=none,id=d0,aio=io_uring"
    for mode in writeback none; do
        out=$(timeout 60 "$KESTREL_IMG" bench -w -f raw -c 2000 -d 16 -t $mode -i io_uring \
              "$tmp/disk.img" 2>&1)
        if echo "$out" | grep -q '^Run completed in'; then
            echo "PASS cli/img-bench-aio-uring-$mode"
        else
            echo "FAIL cli/img-bench-aio-uring-$mode: $(echo "$out" | head -c 300)"
        fi
    done
else
    echo "SKIP cli/drive-aio-uring-qcow2: no kestrel-img at $KESTREL_IMG"
fi
