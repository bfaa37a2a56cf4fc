# Shell helpers for the firmware-boot tests (tests/boot/firmware-*.sh,
# tests/slow/firmware-memtest-pass.sh); POSIX sh, source it after lib.sh.
# Not a test itself (it is not under tests/boot/).
#
# Each test runs the same command line twice: Debian's qemu-system-x86_64
# with SeaBIOS (the oracle: proves the guest image and the assertions) and
# kestrel.  Both get SeaBIOS's debug log (port 0x402) in a file through
#     -chardev file,id=fwdbg,path=LOG.bios -device isa-debugcon,iobase=0x402,chardev=fwdbg
# so a failure can say how far the firmware got.

# fw_seabios_dir: where Debian's seabios package put bios-256k.bin, or nothing.
fw_seabios_dir() {
    for d in ${SEABIOS_DIR:-} /usr/share/seabios /usr/share/qemu; do
        [ -f "$d/bios-256k.bin" ] && { echo "$d"; return 0; }
    done
    return 1
}

# fw_run LOG REGEX TIMEOUT CMD...: run CMD (stdin /dev/null, stdout in LOG,
# stderr in LOG.err, SeaBIOS log in LOG.bios).  Stops CMD (by its pid) one
# second after an extended regular expression REGEX matches a line of LOG
# (carriage returns removed), or after TIMEOUT seconds; an empty REGEX waits
# for CMD to end by itself.  Also stops when SeaBIOS logs "No bootable
# device".  CMD's exit status goes to LOG.status ("timeout" if we had to stop
# it after TIMEOUT, "stopped" if REGEX stopped it, "no-boot-device").
fw_run() {
    _log=$1 _re=$2 _tmo=$3
    shift 3
    : > "$_log"
    "$@" -chardev "file,id=fwdbg,path=$_log.bios" -device isa-debugcon,iobase=0x402,chardev=fwdbg \
        < /dev/null > "$_log" 2> "$_log.err" &
    _pid=$!
    _end=$(( $(date +%s) + _tmo ))
    _why=
    while kill -0 "$_pid" 2>/dev/null; do
        # Only the recent output: a memtest screen log grows by megabytes.
        if [ -n "$_re" ] && tail -c 262144 "$_log" | tr -d '\r' | grep -a -q -E "$_re"; then
            sleep 1
            _why=stopped
            break
        fi
        # SeaBIOS gave up: it would only wait and reboot from here.
        if grep -a -q 'No bootable device' "$_log.bios" 2>/dev/null; then
            sleep 1
            _why=no-boot-device
            break
        fi
        if [ "$(date +%s)" -ge "$_end" ]; then
            _why=timeout
            break
        fi
        sleep 1
    done
    if [ -n "$_why" ]; then
        kill "$_pid" 2>/dev/null
        wait "$_pid" 2>/dev/null
        echo "$_why" > "$_log.status"
    else
        wait "$_pid"
        echo "$?" > "$_log.status"
    fi
    tr -d '\r' < "$_log" > "$_log.txt"
}

# fw_has LOG TEXT: the serial output contains TEXT (fixed string, anywhere).
fw_has() {
    grep -a -q -F -- "$2" "$1.txt"
}

# fw_has_line LOG LINE: the serial output has LINE as a whole line.
fw_has_line() {
    grep -a -q -x -F -- "$2" "$1.txt"
}

# fw_where LOG: one line saying how far the run got, for FAIL messages:
# exit status, the last SeaBIOS log lines, the last serial lines (escape
# sequences removed), the first stderr line.
fw_where() {
    _st=$(cat "$1.status" 2>/dev/null)
    _bios=$(tail -n 4 "$1.bios" 2>/dev/null | tr -d '\r' | tr '\n' '|' | cut -c1-300)
    _ser=$(sed 's/\x1b\[[0-9;?]*[A-Za-z]/ /g' "$1.txt" 2>/dev/null | tr -s ' ' |
           grep -a -v '^ *$' | tail -n 6 | tr '\n' '|' | cut -c1-400)
    _err=$(head -n 2 "$1.err" 2>/dev/null | tr '\n' ' ' | cut -c1-200)
    echo "status ${_st:-?}; SeaBIOS log: ${_bios:-(empty)}; serial: ${_ser:-(empty)}; stderr: ${_err:-(empty)}"
}

