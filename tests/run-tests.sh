#!/bin/sh
# Runs every test program and script given as arguments and counts their
# result lines:  "PASS name", "FAIL name: why", "SKIP name: why".
# A program that dies or exits non-zero without printing a FAIL line counts
# as one failure, and so does one that prints no result at all: a test
# that silently tested nothing must not look like a pass.
# Ends with the one summary line "N passed, N failed, N skipped".

: "${KESTREL:=$(pwd)/kestrel}"
: "${BUILD:=$(pwd)/build}"
: "${TEST_PROGRAM_TIMEOUT:=900}"
export KESTREL BUILD

log_dir="$BUILD/test-logs"
mkdir -p "$log_dir"
passed=0 failed=0 skipped=0
failures=""

for t in "$@"; do
    name=$(basename "$t")
    log="$log_dir/$name.log"
    case "$t" in
        *.sh) cmd="sh $t" ;;
        *) cmd="$t" ;;
    esac
    timeout -k 10 "$TEST_PROGRAM_TIMEOUT" $cmd > "$log" 2>&1 < /dev/null
    status=$?
    grep -E '^(PASS|FAIL|SKIP) ' "$log"
    p=$(grep -c '^PASS ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    s=$(grep -c '^SKIP ' "$log")
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
done

if [ -n "$failures" ]; then
    echo "Failing programs:$failures (logs in $log_dir)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
