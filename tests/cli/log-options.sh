#!/bin/sh
# -d and -D as QEMU users use them, under the software CPU: the system-level
# test kernel (tests/guests/sysdiff.S: faults, software interrupts, a few
# hundred blocks) run with -d in_asm,int,exec,cpu_reset,guest_errors,unimp
# -D FILE writes each kind of line to FILE and none to stderr; in_asm is
# AT&T disassembly (capstone) when configure found it; -d help lists the
# categories; an unknown category is one error line and status 1.
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-log.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$KESTREL" -d help > "$tmp/help" 2>&1
missing=
for c in guest_errors unimp int in_asm exec cpu_reset cpu ioport mmu; do
    grep -q "^  $c " "$tmp/help" || missing="$missing $c"
done
if [ -n "$missing" ]; then
    echo "FAIL cli/log-help: -d help does not list:$missing"
else
    echo "PASS cli/log-help"
fi

"$KESTREL" -d int,bogus -kernel /nonexistent > "$tmp/out" 2> "$tmp/err"
st=$?
if [ "$st" -ne 1 ] || [ "$(wc -l < "$tmp/err")" -ne 1 ] || ! grep -q bogus "$tmp/err"; then
    echo "FAIL cli/log-unknown-category: status $st, stderr: $(head -c 300 "$tmp/err")"
else
    echo "PASS cli/log-unknown-category"
fi

if ! "$KESTREL" -accel help 2>&1 | grep -qw tcg; then
    echo "SKIP cli/log-categories: this kestrel has no software CPU"
    exit 0
fi
if ! build_guest build-sysdiff "$BUILD/guests"; then
    echo "SKIP cli/log-categories: $GUEST_WHY"
    exit 0
fi
timeout 120 "$KESTREL" -accel tcg -cpu qemu64 -m 64 -nodefaults -display none -no-reboot \
    -serial file:"$tmp/serial" -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -kernel "$BUILD/guests/sysdiff.elf" \
    -d in_asm,int,exec,cpu_reset,guest_errors,unimp -D "$tmp/log" < /dev/null > "$tmp/out" 2> "$tmp/err"
st=$?
log=$tmp/log
why=
[ "$st" -eq 65 ] || why="$why; exit status $st (want 65 from isa-debug-exit)"
[ -s "$log" ] || why="$why; -D file empty or missing"
grep -q '^----------------$' "$log" && grep -q '^IN: $' "$log" || why="$why; no 'IN:' block headers (in_asm)"
grep -Eq '^0x[0-9a-f]{8,16}:  [0-9a-f]{2}( [0-9a-f]{2})* +[a-z]' "$log" || why="$why; no in_asm instruction lines"
if grep -q '^CONFIG_CAPSTONE := yes' "$src/config.mak" 2>/dev/null; then
    # AT&T syntax with operands, e.g. "outb     %al, $0x40" and "hlt".
    grep -Eq '^0x[0-9a-f]+:  .* outb +%al, \$0x' "$log" || why="$why; no capstone disassembly (outb %al, \$0x..) in in_asm"
fi
grep -Eq '^tcg: cpu0 exception 0xd err=0x[0-9a-f]+ at' "$log" || why="$why; no #GP exception line (int)"
grep -Eq '^tcg: cpu0 exception 0xe err=0x[0-9a-f]+ .*cr2=0x' "$log" || why="$why; no #PF exception line with CR2 (int)"
grep -q '^Trace 0: ' "$log" || why="$why; no 'Trace' lines (exec)"
grep -q '^CPU#0 reset' "$log" || why="$why; no 'CPU#0 reset' (cpu_reset)"
grep -Eq 'tcg: cpu0 (exception|interrupt|software)' "$tmp/err" && why="$why; log lines on stderr despite -D"
if [ -n "$why" ]; then
    echo "FAIL cli/log-categories: ${why#; }; stderr: $(head -c 200 "$tmp/err")"
else
    echo "PASS cli/log-categories"
fi
