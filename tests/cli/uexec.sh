#!/bin/sh
# The software CPU running real programs with no machine around it
# (build/bench/uexec): Debian's static busybox applets give byte-for-byte
# the output they give on the host CPU (gzip/gunzip, bzip2, md5/sha
# digests, sort, awk floating point, sh arithmetic), and the runner stays
# in one piece for bad input: a non-ELF file, a dynamically linked one, a
# guest passing wild pointers to system calls (-EFAULT, not a host crash),
# a guest CPU exception (one line, status 125).
: "${BUILD:=build}"
uexec=$BUILD/bench/uexec
bb=/bin/busybox
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$uexec" ]; then
    echo "FAIL uexec/built: no $uexec (make $uexec)"
    exit 0
fi
if ! "$uexec" "$bb" true 2>"$tmp/err"; then
    echo "SKIP uexec/busybox: $bb cannot run under uexec ($(head -n 1 "$tmp/err")); install busybox-static"
    exit 0
fi

# same NAME STDIN ARGS...: busybox ARGS with STDIN under uexec and natively; outputs and statuses equal.
same() {
    name=$1 in=$2
    shift 2
    "$bb" "$@" < "$in" > "$tmp/host" 2>/dev/null
    hs=$?
    timeout 60 "$uexec" "$bb" "$@" < "$in" > "$tmp/emu" 2>"$tmp/emu.err"
    es=$?
    if [ "$hs" != "$es" ] || ! cmp -s "$tmp/host" "$tmp/emu"; then
        echo "FAIL uexec/$name: status $es (host $hs), output $(wc -c < "$tmp/emu") bytes vs $(wc -c < "$tmp/host") on the host$(cmp "$tmp/host" "$tmp/emu" 2>/dev/null | head -c 120 | sed 's/^/: /'); stderr: $(head -c 200 "$tmp/emu.err")"
    else
        echo "PASS uexec/$name"
    fi
}

"$bb" seq 1 20000 | "$bb" awk '{ print ($1 * 7919) % 10007, $1 }' > "$tmp/numbers"
"$bb" gzip -c "$bb" > "$tmp/bb.gz"
"$bb" bzip2 -c < "$tmp/numbers" > "$tmp/numbers.bz2" 2>/dev/null

same gzip /dev/null gzip -c "$bb"
same gunzip "$tmp/bb.gz" gunzip -c
same md5sum /dev/null md5sum "$bb"
same sha1sum /dev/null sha1sum "$bb"
same sha256sum /dev/null sha256sum "$bb"
same sha512sum /dev/null sha512sum "$tmp/numbers"
same sort-n "$tmp/numbers" sort -n -k1,1 -k2,2
if [ -s "$tmp/numbers.bz2" ]; then
    same bunzip2 "$tmp/numbers.bz2" bunzip2 -c
fi
same awk-float /dev/null awk 'BEGIN { x = 0; for (i = 1; i <= 20000; i++) x += 1 / (i * i); printf "%.15f %.6e %d\n", x, x * 1e300 * 1e8, int(-7.5) }'
same sh-arith /dev/null sh -c 'a=1; i=0; while [ $i -lt 2000 ]; do a=$(( (a * 6364136223846793005 + 1442695040888963407) ^ (a >> 7) )); i=$((i+1)); done; echo $a $(( -7 / 2 )) $(( -7 % 2 )) $(( 1 << 63 )) $(( 9223372036854775807 + 1 ))'
same missing-file /dev/null cat /nonexistent/file

# Bad input never crashes the runner: one line and status 125.
bad() {
    name=$1 want=$2
    shift 2
    timeout 20 "$uexec" "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null
    st=$?
    if [ "$st" -ne 125 ] || [ "$(wc -l < "$tmp/err")" -ne 1 ] || ! grep -q "^uexec: .*$want" "$tmp/err"; then
        echo "FAIL uexec/$name: status $st, stderr: $(head -c 300 "$tmp/err")"
    else
        echo "PASS uexec/$name"
    fi
}
printf 'not an ELF file\n' > "$tmp/text"
bad not-elf "not an x86-64 ELF" "$tmp/text"
bad missing-program "No such file" "$tmp/nonexistent"
dyn=$(command -v ls)
if [ -n "$dyn" ] && "$bb" readelf -l "$dyn" 2>/dev/null | grep -q interpreter || file -L "$dyn" 2>/dev/null | grep -q dynamic; then
    bad dynamic "dynamically linked" "$dyn"
fi

# Hand-made programs (binutils): wild pointers get -EFAULT; an exception stops the run.
if command -v as >/dev/null && command -v ld >/dev/null; then
    cat > "$tmp/wild.s" <<'ASM'
    .globl _start
_start:
    mov $1, %eax                    /* write(1, wild, 10) */
    mov $1, %edi
    movabs $0x7ffffffff000, %rsi
    mov $10, %edx
    syscall
    mov %rax, %rbx
    xor %eax, %eax                  /* read(0, 0x400000, 1 << 40) */
    xor %edi, %edi
    mov $0x400000, %esi
    movabs $0x10000000000, %rdx
    syscall
    add %rax, %rbx                  /* both -EFAULT (-14): exit status 256 - 28 */
    mov %ebx, %edi
    mov $60, %eax
    syscall
ASM
    cat > "$tmp/ud2.s" <<'ASM'
    .globl _start
_start:
    ud2
ASM
    if as -o "$tmp/wild.o" "$tmp/wild.s" && ld -static -o "$tmp/wild" "$tmp/wild.o" &&
       as -o "$tmp/ud2.o" "$tmp/ud2.s" && ld -static -o "$tmp/ud2" "$tmp/ud2.o"; then
        timeout 20 "$uexec" "$tmp/wild" > /dev/null 2> "$tmp/err"
        st=$?
        if [ "$st" -ne 228 ]; then
            echo "FAIL uexec/wild-pointers-efault: status $st, want 228 (two -EFAULTs); stderr: $(head -c 200 "$tmp/err")"
        else
            echo "PASS uexec/wild-pointers-efault"
        fi
        bad cpu-exception "CPU exception 6" "$tmp/ud2"
    else
        echo "SKIP uexec/wild-pointers-efault: as/ld could not build the test program"
    fi
else
    echo "SKIP uexec/wild-pointers-efault: no as/ld (binutils)"
fi
