#!/bin/sh
# The software CPU's random-code test (tests/unit/test-tcg-fuzz.c) at length
# and under AddressSanitizer + UndefinedBehaviorSanitizer (make check-slow):
# the unit test in make check runs 150 seeds per CPU mode in the normal build,
# where a stray host read or write past guest memory need not crash.  Here the
# whole core is rebuilt with the sanitizers into $BUILD/asan and each mode
# runs $KESTREL_TCG_FUZZ_SEEDS seeds (default 500).  Any sanitizer report,
# crash, hang or difference between two runs of a seed is a FAIL.
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
name=slow/tcg-fuzz
if [ "${KESTREL_SLOW:-0}" != 1 ]; then echo "SKIP $name: slow test (KESTREL_SLOW=1)"; exit 0; fi
cd "$src" || exit 1
out=$BUILD/asan
mkdir -p "$out"
cflags=$(sed -n 's/^CFLAGS := *//p' config.mak)
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if ! make -s BUILD="$out" CFLAGS="$cflags $san" LDFLAGS="$san" \
        "$out/tests/unit/test-tcg-fuzz" > "$out/build.log" 2>&1; then
    echo "FAIL $name: sanitizer build failed: $(tail -c 400 "$out/build.log")"
    exit 0
fi
seeds=${KESTREL_TCG_FUZZ_SEEDS:-500}
# The test's own lines (PASS/FAIL per mode) are the result; a sanitizer
# report fails its case, since the case's child process exits non-zero.
# Each mode is one test case, whose time limit (120 s) is scaled: the
# sanitizers make the CPU several times slower.
ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    KESTREL_TEST_TIMEOUT_SCALE=$((seeds / 25 + 1)) KESTREL_TCG_FUZZ_SEEDS=$seeds "$out/tests/unit/test-tcg-fuzz" 2> "$out/tcg-fuzz.err" |
    sed "s|^PASS tcg-fuzz/|PASS $name/asan-$seeds-seeds/|; s|^FAIL tcg-fuzz/|FAIL $name/|"
if grep -q "ERROR: AddressSanitizer\|runtime error" "$out/tcg-fuzz.err"; then
    echo "FAIL $name/sanitizers: $(grep -m1 -A4 'ERROR: AddressSanitizer\|runtime error' "$out/tcg-fuzz.err" | head -c 800)"
fi
