#!/bin/sh
# -drive and its shorthands as a user meets them: images are opened (and
# locked) before the machine starts, a second Kestrel cannot open an image
# that is open read-write (OFD locks, as QEMU), locking=off overrides,
# read-only opens share, and -snapshot leaves the image untouched.  The
# machine runs under -accel qtest with a null endpoint: no guest needed.
: "${KESTREL:=./kestrel}"
tmp=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
run="$KESTREL -accel qtest -qtest null -display none"

if [ ! -x "$KESTREL" ]; then
    echo "SKIP cli/drive: no kestrel binary at $KESTREL"
    exit 0
fi
head -c 1048576 /dev/zero > "$tmp/disk.img"

# start_holder ARGS...: a Kestrel that keeps the image open until killed.
start_holder() {
    $run "$@" </dev/null >"$tmp/holder.out" 2>"$tmp/holder.err" &
    holder=$!
    pids="$pids $holder"
    # Wait until it has the image open (the lock is taken at open).
    for _ in $(seq 50); do
        ls -l /proc/$holder/fd 2>/dev/null | grep -q "$tmp/disk.img" && return 0
        sleep 0.1
    done
    return 1
}
stop_holder() { kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; }

if start_holder -drive file="$tmp/disk.img",format=raw,if=none,id=d0; then
    timeout 20 $run -drive file="$tmp/disk.img",format=raw,if=none,id=d0 </dev/null \
        >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ "$status" -eq 1 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -qi 'lock' "$tmp/err"; then
        echo "PASS cli/drive-second-writer-refused"
    else
        echo "FAIL cli/drive-second-writer-refused: status $status, stderr: $(head -c 300 "$tmp/err")"
    fi
    timeout 20 $run -drive file="$tmp/disk.img",format=raw,if=none,id=d0,locking=off \
        </dev/null >"$tmp/out" 2>"$tmp/err" &
    p=$!
    sleep 1
    if kill -0 "$p" 2>/dev/null; then
        echo "PASS cli/drive-locking-off-overrides"
    else
        wait "$p"
        echo "FAIL cli/drive-locking-off-overrides: exited early: $(head -c 300 "$tmp/err")"
    fi
    kill "$p" 2>/dev/null; wait "$p" 2>/dev/null
    stop_holder
else
    echo "FAIL cli/drive-second-writer-refused: first Kestrel did not start: $(head -c 300 "$tmp/holder.err")"
fi

# Two read-only users share the image.
if start_holder -drive file="$tmp/disk.img",format=raw,if=none,id=d0,readonly=on; then
    timeout 20 $run -drive file="$tmp/disk.img",format=raw,if=none,id=d0,readonly=on \
        </dev/null >"$tmp/out" 2>"$tmp/err" &
    p=$!
    sleep 1
    if kill -0 "$p" 2>/dev/null; then
        echo "PASS cli/drive-readers-share"
    else
        wait "$p"
        echo "FAIL cli/drive-readers-share: second reader exited: $(head -c 300 "$tmp/err")"
    fi
    kill "$p" 2>/dev/null; wait "$p" 2>/dev/null
    stop_holder
else
    echo "FAIL cli/drive-readers-share: first Kestrel did not start: $(head -c 300 "$tmp/holder.err")"
fi

# -snapshot: the image is opened read-only underneath a temporary overlay, so a
# second -snapshot user may run at the same time and the file never changes.
sum=$(md5sum < "$tmp/disk.img")
if start_holder -snapshot -drive file="$tmp/disk.img",format=raw,if=none,id=d0; then
    timeout 20 $run -snapshot -drive file="$tmp/disk.img",format=raw,if=none,id=d0 \
        </dev/null >"$tmp/out" 2>"$tmp/err" &
    p=$!
    sleep 1
    if kill -0 "$p" 2>/dev/null; then
        echo "PASS cli/drive-snapshot-shares-base"
    else
        wait "$p"
        echo "FAIL cli/drive-snapshot-shares-base: second -snapshot user exited: $(head -c 300 "$tmp/err")"
    fi
    kill "$p" 2>/dev/null; wait "$p" 2>/dev/null
    stop_holder
    [ "$(md5sum < "$tmp/disk.img")" = "$sum" ] && echo "PASS cli/drive-snapshot-base-untouched" ||
        echo "FAIL cli/drive-snapshot-base-untouched: image changed"
else
    echo "FAIL cli/drive-snapshot-shares-base: first Kestrel did not start: $(head -c 300 "$tmp/holder.err")"
fi
