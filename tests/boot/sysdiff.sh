#!/bin/sh
# System-level differential test of the software CPU: the test kernel
# tests/guests/sysdiff.S runs ~130 numbered cases (segmentation, paging, faults,
# privilege changes, v8086 mode and its extensions (VME, PVI), task switches,
# debug registers and breakpoints, NMI through the local APIC) and prints, per case, the
# architectural state it observed ("CASE NN <what>: vec=.. err=.. eip=.. ...").
# It runs under Debian's QEMU (TCG, the oracle) and under kestrel -accel tcg
# with the same arguments; the lines are compared one by one:
#   PASS sysdiff/case-NN        identical lines
#   FAIL sysdiff/case-NN: ...   different lines: both lines, the fields that
#                               differ, the case's instruction sequence (from
#                               sysdiff.S) and one-line reproduction commands
#   SKIP sysdiff/case-NN: ...   QEMU TCG deviates from the Intel SDM in this
#                               case (listed in DEVIATIONS below) and Kestrel
#                               gives the SDM result; when Kestrel does not
#                               either, the case FAILs instead
# plus sysdiff/feat (same CPUID feature line), sysdiff/guest-under-qemu (the
# kernel ran to its end under QEMU) and sysdiff/exit (kestrel reached the end
# and exited through isa-debug-exit with status 0x41).
# SKIPs everything with a reason when binutils, QEMU or the software CPU is
# missing.
: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
KESTREL_GUESTS_SRC=$src/tests/guests
. "$KESTREL_GUESTS_SRC/lib.sh"
guests=$BUILD/guests
asm=$KESTREL_GUESTS_SRC/sysdiff.S
timeout_s=$((180 * ${KESTREL_TEST_TIMEOUT_SCALE:-1}))

# Cases where QEMU TCG (checked with Debian's 7.2) does not do what the Intel
# SDM specifies.  NN|part of the case's name|fields the SDM result has|why.
# A case is judged against the SDM fields only while QEMU's line lacks them.
DEVIATIONS='10|mov es:0x1000|vec=0d err=00000000|QEMU TCG does not check data-segment limits on accesses (SDM 3A 5.3: #GP(0))
11|dword read at es:0xffe|vec=0d err=00000000|QEMU TCG does not check data-segment limits on accesses (SDM 3A 5.3: #GP(0))
12|read es:0x800|vec=0d err=00000000|QEMU TCG ignores expand-down limits (SDM 3A 5.3: offsets up to the limit are invalid, #GP(0))
14|read-only data; write|vec=0d err=00000000|QEMU TCG does not check segment types on writes (SDM 3A 5.5: write to a read-only data segment, #GP(0))
15|execute-only; read|vec=0d err=00000000|QEMU TCG does not check segment types on reads (SDM 3A 5.5: read of an execute-only segment, #GP(0))
30|esp=0x1002; push|vec=0c err=00000000 esp=00001002|QEMU TCG does not check stack-segment limits (SDM 3A 5.3: #SS(0))
35|misaligned dword read|vec=11 err=00000000|QEMU TCG does not implement alignment checking (SDM 3A 6.15, interrupt 17: #AC(0) at CPL3 with CR0.AM and EFLAGS.AC)
54|bit 63 with EFER.NXE=0|vec=0e err=00000009|QEMU TCG leaves the P bit out of reserved-bit #PF error codes (SDM 3A 4.7: RSVD=1 implies P=1)
55|bit 13 set (reserved)|vec=0e err=00000009|QEMU TCG leaves the P bit out of reserved-bit #PF error codes (SDM 3A 4.7: RSVD=1 implies P=1)
71|ljmp (code descriptor A=0)|ecx=0000009b|QEMU TCG does not set the accessed bit when loading CS (SDM 3A 3.4.5.1: set on every segment register load)
75|ud2 with its gate not present|vec=0b err=00000033|QEMU TCG never sets EXT in error codes (SDM 3A 6.13: EXT=1 for a fault while delivering an earlier exception)
88|lcall to code limit 0xfff|vec=0d err=00000000|QEMU TCG reports a far CALL past the CS limit as #GP(selector) (SDM 2A CALL: #GP(0))
89|jmp *eax (eax=0x20)|vec=0d err=00000000 eip=00000000|QEMU TCG does not check the CS limit on near jumps (SDM 2A JMP: #GP(0))
90|run off the end of the segment|vec=0d err=00000000 eip=00000004|QEMU TCG does not check the CS limit on instruction fetch (SDM 3A 5.3: #GP(0))
91|RF in the pushed EFLAGS|vec=06 efl=00010046|QEMU TCG pushes RF=0 for faults (SDM 3A 17.3.1.1: RF=1 in the image pushed for any fault other than an instruction breakpoint)
106|mov dr0 (general detect)|vec=01 dr6=ffff2ff0|QEMU TCG does not implement DR7.GD (SDM 3A 17.2.4: a MOV DR with GD=1 is a #DB fault with DR6.BD)
111|TF and a data breakpoint|efl=00000146 dr6=ffff4ff1|QEMU TCG delivers the single-step trap as a second #DB, at the first instruction of the handler (SDM 3A 17.2.3: with BS set the other DR6 status bits may be set too, one #DB after the instruction reports both)
112|rep movsb hits a write breakpoint|efl=00010046|QEMU TCG pushes RF=0 for a data breakpoint in a REP string before its last iteration (SDM 3A 17.3.1.1: RF=1 for a trap from any iteration but the last)
116|single step per iteration|efl=00010146 ecx=00000002|QEMU TCG pushes RF=0 for a single-step trap in a REP string before its last iteration (SDM 3A 17.3.1.1: RF=1 for a trap from any iteration but the last)
118|redirection bit clear (method 6)|vec=0d eip=00000024 efl=00030002 esp=00006ff0 ebx=00003302 ecx=0000001e edx=00000700|QEMU 7.2 TCG does not implement the virtual-8086 mode extensions (it accepts CR4.VME and ignores it): SDM 3A 20.3.3.5 and Table 20-2 redirect INT n through the IVT at linear 0 when its bitmap bit is clear (the 8086 handler pops IP 001e, CS 0700 and FLAGS with IOPL=3 and IF=VIF; VIF and TF are cleared); QEMU raises #GP(0)
120|redirection bit clear (method 5)|vec=0d eip=00000024 efl=000b3002 esp=00006ff0 ebx=00003002 ecx=0000001e edx=00000700|QEMU 7.2 TCG does not implement the virtual-8086 mode extensions (it accepts CR4.VME and ignores it): SDM 3A 20.3.3.4 (method 5) redirects INT n through the IVT at linear 0 with the FLAGS pushed as they are and IF cleared; QEMU uses the IDT
123|cli; pushf; sti; pushf|vec=0d eip=0000002b efl=000b0002 ebx=00003002 ecx=00003202|QEMU 7.2 TCG does not implement the virtual-8086 mode extensions (it accepts CR4.VME and ignores it): with VME and IOPL<3 CLI and STI clear and set VIF and PUSHF pushes VIF as IF and IOPL as 3 (SDM 2A CLI, 2B STI and PUSHF); QEMU raises #GP(0) at the CLI
126|popf of 0|vec=0d eip=00000036 efl=00130002 esp=00006ff0|QEMU 7.2 TCG does not implement the virtual-8086 mode extensions (it accepts CR4.VME and ignores it): with VME and IOPL<3 a 16-bit POPF of an image with IF=0 and TF=0 runs even with VIP=1 and loads VIF from IF (SDM 2B POPF); QEMU raises #GP(0)
128|iret to FLAGS 0x0201|vec=0d eip=00000048 efl=000b0003 esp=00006ff0 ebx=00004325|QEMU 7.2 TCG does not implement the virtual-8086 mode extensions (it accepts CR4.VME and ignores it): with VME and IOPL<3 a 16-bit IRET returns and loads VIF from the popped IF (the return from a method 6 redirection, SDM 3A 20.3.3.5; AMD APM vol. 3 IRET); QEMU raises #GP(0)
129|ring3 PVI IOPL0 VIF=1: cli; pushf; sti; pushf|vec=0d efl=00090002 ebx=00000002 ecx=00080002|QEMU 7.2 TCG does not implement protected-mode virtual interrupts (it accepts CR4.PVI and ignores it): with CR4.PVI at CPL 3 and IOPL<3 CLI and STI clear and set VIF (SDM 3A 20.4); QEMU raises #GP(0) at the CLI
130|ring3 PVI IOPL0 VIP=1: sti|vec=0d efl=00110002|QEMU 7.2 TCG does not load VIF and VIP in an IRET from CPL 0 to CPL 3 (SDM 2A IRET: at CPL 0 a 32-bit IRET loads them) and does not implement PVI: with VIP=1 the STI must fault (SDM 2B STI) with VIP still set'

# Deviation cases whose SDM behaviour kestrel does not implement yet (issue 4):
# reported as SKIP with the reason while kestrel lacks the SDM result, so they
# stay visible; once implemented they are checked like the others.
# NN|what is missing.
KESTREL_TODO=''

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-sysdiff.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! build_guest build-sysdiff "$guests"; then
    echo "SKIP sysdiff: $GUEST_WHY"
    exit 0
fi
kernel=$guests/sysdiff.elf
qemu=$(command -v qemu-system-x86_64)
if [ -z "$qemu" ]; then
    echo "SKIP sysdiff: qemu-system-x86_64 not installed (apt-get install qemu-system-x86), no oracle"
    exit 0
fi
if [ ! -x "$KESTREL" ]; then
    echo "SKIP sysdiff: no kestrel binary at $KESTREL"
    exit 0
fi
if ! "$KESTREL" -accel help 2>&1 | grep -q -E '^ +tcg +available'; then
    echo "SKIP sysdiff: this kestrel has no software CPU (see kestrel -accel help)"
    exit 0
fi

# The same arguments for both: qemu64 is a CPU model both define (PSE, PAE, NX).
args="-accel tcg -cpu qemu64 -m 64 -nodefaults -display none -no-reboot -serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel $kernel"

# shellcheck disable=SC2086
timeout "$timeout_s" "$qemu" $args < /dev/null 2> "$tmp/q.err" | tr -d '\r' > "$tmp/q.out"
# shellcheck disable=SC2086
timeout "$timeout_s" "$KESTREL" $args < /dev/null 2> "$tmp/k.err" > "$tmp/k.raw"
kstatus=$?
tr -d '\r' < "$tmp/k.raw" > "$tmp/k.out"

if grep -qx SYSDIFF-DONE "$tmp/q.out"; then
    echo "PASS sysdiff/guest-under-qemu"
else
    echo "FAIL sysdiff/guest-under-qemu: the test kernel did not reach its end under QEMU; last lines: $(tail -n 3 "$tmp/q.out" | tr '\n' '|' | head -c 600); stderr: $(head -c 300 "$tmp/q.err")"
fi

qf=$(grep -a '^FEAT' "$tmp/q.out") kf=$(grep -a '^FEAT' "$tmp/k.out")
if [ -n "$kf" ] && [ "$qf" = "$kf" ]; then
    echo "PASS sysdiff/feat"
else
    echo "FAIL sysdiff/feat: CPUID features differ with -cpu qemu64: qemu '$qf' kestrel '$kf'"
fi

# case_line FILE NN: the result line of case NN ("" if none or cut short).
case_line() {
    grep -a -m1 -E "^CASE $2 .*: (vec=|skipped \()" "$1"
}
# has_fields LINE FIELDS: every space-separated FIELD is a word of LINE.
has_fields() {
    for f in $2; do
        case " $1 " in *" $f "*) ;; *) return 1 ;; esac
    done
    return 0
}
# diff_fields A B: the name=value fields of A whose value differs in B.
diff_fields() {
    printf 'vec=%s\nvec=%s\n' "${1#*: vec=}" "${2#*: vec=}" | awk '
        NR == 1 { for (i = 1; i <= NF; i++) { split($i, kv, "="); a[kv[1]] = kv[2]; order[i] = kv[1] } n = NF }
        NR == 2 { for (i = 1; i <= NF; i++) { split($i, kv, "="); b[kv[1]] = kv[2] } }
        END { out = ""; for (i = 1; i <= n; i++) { k = order[i]; if (a[k] != b[k]) out = out " " k; seen[k] = 1 }
              for (k in b) if (!(k in seen)) out = out " " k
              print substr(out, 2) }'
}
# sequence NN: the source of case NN's function (the NN-th CASE of the table).
sequence() {
    fn=$(grep -E '^ +CASE c_' "$asm" | sed -n "${1#0}p" | sed -E 's/^ +CASE ([a-z0-9_]+),.*/\1/')
    [ -n "$fn" ] || return
    echo "    sequence (tests/guests/sysdiff.S, $fn):"
    # From its label to a blank line, a comment line or the next case.
    awk -v fn="$fn:" '$1 == fn { on = 1; print "      " $0; next }
        on && (/^$/ || /^\/\*/ || /^c_[a-z0-9_]*:/) { exit }
        on { print "      " $0; if (++n >= 30) exit }' "$asm"
}
# repro NN / oracle NN: one-line commands printing case NN's line under kestrel / QEMU.
repro() {
    echo "$KESTREL $args | grep -a 'CASE $1 '"
}
oracle() {
    echo "    oracle: $qemu $args | grep -a 'CASE $1 '"
}

# rf_as_qemu Q K: K with RF (EFLAGS bit 16) cleared in its efl= field when K
# reports a fault (table 6-1 vectors) whose frame differs from Q's only in
# RF.  QEMU TCG pushes RF=0 for faults; the SDM says 1 (§17.3.1.1), and case
# 91 (DEVIATIONS) holds kestrel to the SDM, so the others need not trip on it.
rf_as_qemu() {
    _kv=$(printf '%s' "$2" | sed -n 's/.* vec=\([0-9a-f]*\) .*/\1/p')
    _qe=$(printf '%s' "$1" | sed -n 's/.* efl=\([0-9a-f]*\) .*/\1/p')
    _ke=$(printf '%s' "$2" | sed -n 's/.* efl=\([0-9a-f]*\) .*/\1/p')
    case $_kv in
    00|05|06|07|0a|0b|0c|0d|0e|10|11|13)
        if [ -n "$_qe" ] && [ -n "$_ke" ] && [ $((0x$_ke)) -eq $((0x$_qe | 0x10000)) ] &&
           [ $((0x$_qe & 0x10000)) -eq 0 ]; then
            printf '%s' "$2" | sed "s/ efl=$_ke / efl=$_qe /"
            return
        fi ;;
    esac
    printf '%s' "$2"
}

n=$(grep -c -E '^ +CASE c_' "$asm")
i=1
kstopped=
while [ "$i" -le "$n" ]; do
    nn=$(printf '%02d' "$i")
    i=$((i + 1))
    name=sysdiff/case-$nn
    q=$(case_line "$tmp/q.out" "$nn")
    k=$(case_line "$tmp/k.out" "$nn")
    if [ -z "$q" ]; then
        echo "SKIP $name: QEMU printed no result for this case (the oracle stopped: $(tail -n 1 "$tmp/q.out" | head -c 200))"
        continue
    fi
    if [ -z "$k" ] && [ -n "$kstopped" ]; then
        echo "SKIP $name: kestrel stopped at case $kstopped (reported there)"
        continue
    fi
    if [ -z "$k" ]; then
        kstopped=$nn
        echo "FAIL $name: qemu '$q' kestrel printed no result (kestrel status $kstatus; last serial line '$(tail -n 1 "$tmp/k.out" | head -c 200)'; stderr: $(head -c 300 "$tmp/k.err" | tr '\n' ' ')); reproduce: $(repro "$nn")"
        sequence "$nn"
        oracle "$nn"
        continue
    fi
    case $q in
    *"skipped (cpu lacks"*)
        if [ "$q" = "$k" ]; then
            echo "SKIP $name: the qemu64 CPU model lacks a feature this case needs"
            continue
        fi ;;
    esac
    dev=$(printf '%s\n' "$DEVIATIONS" | grep "^$nn|")
    if [ -n "$dev" ]; then
        dname=$(echo "$dev" | cut -d'|' -f2) dsdm=$(echo "$dev" | cut -d'|' -f3) dwhy=$(echo "$dev" | cut -d'|' -f4)
        case $q in
        *"$dname"*) ;;
        *) echo "FAIL $name: tests/boot/sysdiff.sh DEVIATIONS is out of date: case $nn is '${q%%: vec=*}', expected a name with '$dname'"
           continue ;;
        esac
        if ! has_fields "$q" "$dsdm"; then
            todo=$(printf '%s\n' "$KESTREL_TODO" | grep "^$nn|" | cut -d'|' -f2)
            if has_fields "$k" "$dsdm"; then
                echo "SKIP $name: QEMU TCG deviates from the SDM here ($dwhy); kestrel gives the SDM result '$dsdm'"
            elif [ -n "$todo" ]; then
                echo "SKIP $name: QEMU TCG deviates from the SDM here ($dwhy), and $todo yet (issue 4)"
            else
                echo "FAIL $name: QEMU TCG deviates from the SDM here ($dwhy), and kestrel lacks the SDM result '$dsdm' too: qemu '$q' kestrel '$k'; reproduce: $(repro "$nn")"
                sequence "$nn"
                oracle "$nn"
            fi
            continue
        fi
    fi
    k=$(rf_as_qemu "$q" "$k")
    if [ "$q" = "$k" ]; then
        echo "PASS $name"
    else
        echo "FAIL $name: qemu '$q' kestrel '$k' (differs in: $(diff_fields "$q" "$k")); reproduce: $(repro "$nn")"
        sequence "$nn"
        oracle "$nn"
    fi
done

if grep -qx SYSDIFF-DONE "$tmp/k.out" && [ "$kstatus" -eq 65 ]; then
    echo "PASS sysdiff/exit"
else
    echo "FAIL sysdiff/exit: kestrel status $kstatus (expected 65: isa-debug-exit 0x20 after SYSDIFF-DONE); last serial line '$(tail -n 1 "$tmp/k.out" | head -c 300)'; stderr: $(head -c 300 "$tmp/k.err" | tr '\n' ' ')"
fi
