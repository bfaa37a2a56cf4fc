#!/bin/sh
# libFuzzer run of tests/fuzz/fuzz-qcow2.c (make check-slow): build the
# harness with clang's fuzzer + ASan + UBSan, seed it with images qemu-img
# makes (v2, v3, 512-byte clusters, compressed, snapshots, backing name) and
# fuzz for $KESTREL_FUZZ_SECONDS (default 120).  Any crash is a FAIL.
: "${BUILD:=$(pwd)/build}"
src=$(cd "$(dirname "$0")/../.." && pwd)
name=fuzz/qcow2
if [ "${KESTREL_SLOW:-0}" != 1 ]; then echo "SKIP $name: slow test (KESTREL_SLOW=1)"; exit 0; fi
command -v clang >/dev/null || { echo "SKIP $name: clang not installed"; exit 0; }
command -v qemu-img >/dev/null || { echo "SKIP $name: qemu-img not installed (seed corpus)"; exit 0; }
out=$BUILD/fuzz
mkdir -p "$out/corpus"
cd "$src" || exit 1
# block/ links liburing when configure found it (config.mak says which).
uring_libs=$(sed -n 's/^URING_LIBS := *//p' config.mak 2>/dev/null)
if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -std=gnu11 -D_GNU_SOURCE -I. -Iinclude $(pkg-config --cflags glib-2.0) \
        -o "$out/fuzz-qcow2" tests/fuzz/fuzz-qcow2.c block/*.c \
        system/opts.c system/log.c system/util.c \
        $(pkg-config --libs glib-2.0) -lz -lpthread $uring_libs 2> "$out/build.log"; then
    echo "FAIL $name: harness does not build: $(head -c 400 "$out/build.log")"
    exit 0
fi
c=$out/corpus
qemu-img create -q -f qcow2 "$c/v3" 4M
qemu-img create -q -f qcow2 -o compat=0.10 "$c/v2" 4M
qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 "$c/c512" 1M
qemu-io -f qcow2 -c 'write -P 7 0 70k' -c 'write -z 1M 64k' "$c/v3" >/dev/null 2>&1
qemu-io -f qcow2 -c 'write -P 7 0 7k' "$c/c512" >/dev/null 2>&1
head -c 200000 /dev/urandom > "$out/rnd.raw"; yes fuzz | head -c 200000 >> "$out/rnd.raw"
qemu-img convert -c -O qcow2 -o cluster_size=4096 "$out/rnd.raw" "$c/compressed"
cp "$c/v3" "$c/snap"; qemu-img snapshot -c s1 "$c/snap"
qemu-img create -q -f qcow2 -b base.img -F raw -u "$c/backing" 4M
# Inputs that once crashed the driver stay fixed.
if ! "$out/fuzz-qcow2" "$src"/tests/fuzz/regress/* > "$out/regress.log" 2>&1; then
    echo "FAIL $name: a regression input crashes again: $(grep -m1 -A3 'ERROR\|runtime error' "$out/regress.log" | head -c 600)"
    exit 0
fi
secs=${KESTREL_FUZZ_SECONDS:-120}
if "$out/fuzz-qcow2" -max_total_time="$secs" -max_len=300000 -rss_limit_mb=2048 \
        -artifact_prefix="$out/" "$c" > "$out/fuzz.log" 2>&1; then
    echo "PASS $name ($(grep -o 'cov: [0-9]*' "$out/fuzz.log" | tail -1), ${secs}s)"
else
    echo "FAIL $name: crash, artifact in $out (log $out/fuzz.log): $(grep -m1 -A3 'ERROR' "$out/fuzz.log" | head -c 600)"
fi
