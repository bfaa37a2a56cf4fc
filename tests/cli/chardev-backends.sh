#!/bin/sh
# Character backends seen from the command line: Ctrl-A escapes on stdio
# (raw terminal mode, restored afterwards), bad -chardev/-serial specs,
# socket servers with wait=on, and the pty announcement.  The machine runs
# under -accel qtest with a null qtest endpoint, so no guest is needed.
: "${KESTREL:=./kestrel}"
tmp=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
run="$KESTREL -accel qtest -qtest null"

if [ ! -x "$KESTREL" ]; then
    echo "SKIP cli/chardev: no kestrel binary at $KESTREL"
    exit 0
fi

# ---- Ctrl-A x and Ctrl-A h on a piped stdio ----
(sleep 0.5; printf '\001h'; sleep 0.3; printf '\001x') |
    timeout 20 $run -nographic >"$tmp/out" 2>"$tmp/err"
status=$?
if [ "$status" -ne 0 ]; then
    echo "FAIL cli/chardev-ctrl-a-x: exit status $status, want 0 ($(head -c 300 "$tmp/err"))"
elif ! grep -q 'terminated' "$tmp/out"; then
    echo "FAIL cli/chardev-ctrl-a-x: no 'terminated' on stdout: $(head -c 300 "$tmp/out")"
else
    echo "PASS cli/chardev-ctrl-a-x"
fi
if grep -q 'C-a x' "$tmp/out" && grep -q 'C-a c' "$tmp/out"; then
    echo "PASS cli/chardev-ctrl-a-h"
else
    echo "FAIL cli/chardev-ctrl-a-h: no escape help on stdout: $(head -c 300 "$tmp/out")"
fi

# ---- a real terminal: raw mode (else Ctrl-A x would wait for Enter), restored after ----
if ! command -v script >/dev/null 2>&1 || ! command -v stty >/dev/null 2>&1; then
    echo "SKIP cli/chardev-tty-raw-and-restored: script(1) or stty(1) missing"
else
    cat >"$tmp/tty.sh" <<EOF
stty -g >"$tmp/before"
$run -nographic >"$tmp/tty-out" 2>&1
echo "\$?" >"$tmp/tty-status"
stty -g >"$tmp/after"
EOF
    (sleep 1; printf '\001x'; sleep 3) |
        timeout 20 script -qec "sh $tmp/tty.sh" /dev/null >/dev/null 2>&1
    if [ ! -s "$tmp/before" ]; then
        echo "SKIP cli/chardev-tty-raw-and-restored: script(1) gave no terminal here"
    elif [ "$(cat "$tmp/tty-status" 2>/dev/null)" != 0 ]; then
        echo "FAIL cli/chardev-tty-raw-and-restored: Ctrl-A x on a terminal did not exit 0" \
             "(status '$(cat "$tmp/tty-status" 2>/dev/null)': $(head -c 200 "$tmp/tty-out"))"
    elif ! cmp -s "$tmp/before" "$tmp/after"; then
        echo "FAIL cli/chardev-tty-raw-and-restored: terminal modes changed:" \
             "$(cat "$tmp/before") -> $(cat "$tmp/after")"
    else
        echo "PASS cli/chardev-tty-raw-and-restored"
    fi

    # A fatal signal (nobody else handles SIGSEGV) still restores the modes.
    cat >"$tmp/tty2.sh" <<EOF
stty -g >"$tmp/before2"
$run -serial stdio -display none </dev/tty >/dev/null 2>&1 &
sleep 1
stty -g >"$tmp/during2"
kill -SEGV \$!
wait
stty -g >"$tmp/after2"
EOF
    sleep 5 | timeout 20 script -qec "sh $tmp/tty2.sh" /dev/null >/dev/null 2>&1
    if [ ! -s "$tmp/before2" ] || [ ! -s "$tmp/after2" ]; then
        echo "SKIP cli/chardev-tty-restored-on-crash: script(1) gave no terminal here"
    elif cmp -s "$tmp/before2" "$tmp/during2"; then
        echo "FAIL cli/chardev-tty-restored-on-crash: terminal was not in raw mode while running"
    elif ! cmp -s "$tmp/before2" "$tmp/after2"; then
        echo "FAIL cli/chardev-tty-restored-on-crash: modes not restored after SIGSEGV"
    else
        echo "PASS cli/chardev-tty-restored-on-crash"
    fi
fi

# ---- bad specs: one line naming the culprit, exit 1 ----
expect_error() {
    name=$1; pattern=$2; shift 2
    timeout 20 $run "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    status=$?
    if [ "$status" -ne 1 ]; then
        echo "FAIL cli/$name: expected exit status 1, got $status ($(head -c 300 "$tmp/err"))"
    elif [ "$(wc -l < "$tmp/err")" -ne 1 ]; then
        echo "FAIL cli/$name: expected one error line: $(head -c 300 "$tmp/err")"
    elif ! grep -q -- "$pattern" "$tmp/err"; then
        echo "FAIL cli/$name: error does not mention '$pattern': $(cat "$tmp/err")"
    else
        echo "PASS cli/$name"
    fi
}
expect_error chardev-unknown-backend "'ringbuf'" -chardev ringbuf,id=r
expect_error chardev-unknown-option "'frob'" -chardev null,id=n,frob=1
expect_error chardev-missing-id "id=" -chardev null
expect_error chardev-bad-bool "'maybe'" -chardev socket,id=s,path="$tmp/s",server=maybe
expect_error chardev-connect-refused "cannot connect" -chardev socket,id=s,path="$tmp/nobody"
expect_error serial-tcp-no-port "tcp:" -serial tcp:localhost
expect_error serial-unknown-chardev "'nope'" -serial chardev:nope
expect_error serial-two-stdio "stdio is already used" -serial stdio -serial stdio

# ---- wait=on: start-up blocks until a client connects ----
if ! command -v socat >/dev/null 2>&1; then
    echo "SKIP cli/chardev-socket-wait: socat missing"
else
    $run -display none -serial "mon:unix:$tmp/con,server=on" >"$tmp/w-out" 2>"$tmp/w-err" &
    kpid=$!
    pids="$pids $kpid"
    i=0
    while [ $i -lt 100 ] && ! grep -q 'waiting for connection' "$tmp/w-err"; do
        sleep 0.1; i=$((i + 1))
    done
    if ! grep -q "waiting for connection on: unix:$tmp/con" "$tmp/w-err"; then
        echo "FAIL cli/chardev-socket-wait: no 'waiting for connection' notice: $(head -c 300 "$tmp/w-err")"
    else
        # Ctrl-A h then Ctrl-A x over the socket (a mux interprets escapes).
        (printf '\001h'; sleep 0.5; printf '\001x'; sleep 1) |
            timeout 10 socat - "UNIX-CONNECT:$tmp/con" >"$tmp/w-sock" 2>/dev/null
        wait "$kpid"
        status=$?
        if [ "$status" -ne 0 ]; then
            echo "FAIL cli/chardev-socket-wait: exit status $status after Ctrl-A x ($(head -c 300 "$tmp/w-err"))"
        elif ! grep -q 'C-a x' "$tmp/w-sock"; then
            echo "FAIL cli/chardev-socket-wait: no help over the socket: $(head -c 300 "$tmp/w-sock")"
        elif [ -e "$tmp/con" ]; then
            echo "FAIL cli/chardev-socket-wait: socket file left behind"
        else
            echo "PASS cli/chardev-socket-wait"
        fi
    fi
fi

# ---- pty: announced like QEMU ----
$run -display none -serial pty >/dev/null 2>"$tmp/p-err" &
kpid=$!
pids="$pids $kpid"
i=0
while [ $i -lt 100 ] && ! grep -q 'redirected' "$tmp/p-err"; do sleep 0.1; i=$((i + 1)); done
kill "$kpid" 2>/dev/null
wait "$kpid" 2>/dev/null
if grep -q '^char device redirected to /dev/pts/[0-9]* (label serial0)$' "$tmp/p-err"; then
    echo "PASS cli/chardev-pty-announce"
elif grep -q 'cannot create a pty' "$tmp/p-err"; then
    echo "SKIP cli/chardev-pty-announce: no ptys here"
else
    echo "FAIL cli/chardev-pty-announce: $(head -c 300 "$tmp/p-err")"
fi
exit 0
