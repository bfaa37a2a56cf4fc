#!/bin/sh
# Runs every test program and script given as arguments and counts their
# result lines:  "PASS name", "FAIL name: why", "SKIP name: why".
# A program that dies or exits non-zero without printing a FAIL line counts
# as one failure, and so does one that prints no result at all: a test
# that silently tested nothing must not look like a pass.
# Ends with the one summary line "N passed, N failed, N skipped".
#
# Guest boot tests (tests/boot/, tests/slow/) run KESTREL_TEST_JOBS at a time
# (default: the number of CPUs, at most 2): the software CPU runs a whole
# guest on one host thread, so two of them share a 2-core machine well.
# Everything else runs one at a time, first.

: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
: "${TEST_PROGRAM_TIMEOUT:=900}"
export KESTREL BUILD

log_dir="$BUILD/test-logs"
mkdir -p "$log_dir"
passed=0 failed=0 skipped=0
failures=""

# report NAME LOG STATUS: print the result lines of one finished program and count them.
report() {
    name=$1 log=$2 status=$3
    grep -a -E '^(PASS|FAIL|SKIP) ' "$log"
    p=$(grep -a -c '^PASS ' "$log")
    f=$(grep -a -c '^FAIL ' "$log")
    s=$(grep -a -c '^SKIP ' "$log")
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        if [ "$status" -eq 124 ]; then why="timed out after ${TEST_PROGRAM_TIMEOUT}s"; else why="exited with status $status"; fi
        echo "FAIL $name: $why without reporting a failure (log: $log)"
        tail -n 20 "$log" | sed 's/^/    /'
        f=1
    elif [ $((p + f + s)) -eq 0 ]; then
        echo "FAIL $name: reported no results (log: $log)"
        f=1
    fi
    if [ "$f" -gt 0 ]; then
        failures="$failures $name"
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

run_one() {
    case "$1" in
        *.sh) timeout -k 10 "$TEST_PROGRAM_TIMEOUT" sh "$1" ;;
        *) timeout -k 10 "$TEST_PROGRAM_TIMEOUT" "$1" ;;
    esac
}

guest_tests=
for t in "$@"; do
    case "$t" in
    */boot/*|*/slow/*|tests/boot/*|tests/slow/*) guest_tests="$guest_tests $t"; continue ;;
    esac
    name=$(basename "$t")
    log="$log_dir/$name.log"
    run_one "$t" > "$log" 2>&1 < /dev/null
    report "$name" "$log" $?
done

jobs=${KESTREL_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 2 ] && [ -z "${KESTREL_TEST_JOBS:-}" ] && jobs=2
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
# Each running test is "pid:name"; a finished one leaves its status in LOG.status.
running=
start_guest_test() {
    t=$1 name=$(basename "$1")
    log="$log_dir/$name.log"
    rm -f "$log.status"
    ( run_one "$t" > "$log" 2>&1 < /dev/null; echo $? > "$log.status" ) &
    running="$running $!:$name"
}
reap_finished() {
    still=
    for r in $running; do
        pid=${r%%:*} name=${r#*:}
        if kill -0 "$pid" 2>/dev/null; then
            still="$still $r"
        else
            wait "$pid" 2>/dev/null
            log="$log_dir/$name.log"
            report "$name" "$log" "$(cat "$log.status" 2>/dev/null || echo 1)"
            rm -f "$log.status"
        fi
    done
    running=$still
}
for t in $guest_tests; do
    while [ "$(echo $running | wc -w)" -ge "$jobs" ]; do
        sleep 1
        reap_finished
    done
    start_guest_test "$t"
done
while [ -n "$(echo $running)" ]; do
    sleep 1
    reap_finished
done

if [ -n "$failures" ]; then
    echo "Failing programs:$failures (logs in $log_dir)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
