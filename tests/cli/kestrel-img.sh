#!/bin/sh
# kestrel-img against Debian's qemu-img as the oracle: images made by one are
# read by the other, outputs use qemu-img's wording, check exit codes match
# (0 clean, 2 corrupt, 3 leaks, 63 no checks), errors are one clear line.
: "${KESTREL:=./kestrel}"
IMG=${KESTREL_IMG:-$(dirname "$KESTREL")/kestrel-img}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

pass() { echo "PASS kestrel-img/$1"; }
fail() { echo "FAIL kestrel-img/$1: $2"; }
skip() { echo "SKIP kestrel-img/$1: $2"; }

if [ ! -x "$IMG" ]; then
    fail binary "no kestrel-img at $IMG"
    exit 0
fi
have_qemu=1
command -v qemu-img >/dev/null 2>&1 && command -v qemu-io >/dev/null 2>&1 || have_qemu=0

# create: qemu-img's "Formatting" line, and an image qemu-img accepts
out=$("$IMG" create -f qcow2 a.qcow2 64M 2>&1)
case "$out" in
    "Formatting 'a.qcow2', fmt=qcow2 cluster_size=65536 extended_l2=off compression_type=zlib size=67108864 lazy_refcounts=off refcount_bits=16")
        pass create_message ;;
    *) fail create_message "got: $out" ;;
esac
if [ $have_qemu = 1 ]; then
    if qemu-img check -q a.qcow2 && qemu-img info a.qcow2 | grep -q 'virtual size: 64 MiB (67108864 bytes)'; then
        pass create_qcow2_qemu_accepts
    else
        fail create_qcow2_qemu_accepts "$(qemu-img check a.qcow2 2>&1 | head -5)"
    fi
else
    skip create_qcow2_qemu_accepts "qemu-utils not installed"
fi

# create raw
out=$("$IMG" create -f raw r.raw 1M)
if [ "$out" = "Formatting 'r.raw', fmt=raw size=1048576" ] && [ "$(stat -c %s r.raw)" = 1048576 ]; then
    pass create_raw
else
    fail create_raw "got '$out', size $(stat -c %s r.raw)"
fi

# backing file without -F is refused like qemu-img 7.2
if "$IMG" create -f qcow2 -b a.qcow2 ov.qcow2 >out 2>err; then
    fail create_backing_needs_format "accepted"
elif grep -q 'Backing file specified without backing format' err && grep -q 'Detected format of qcow2' err; then
    pass create_backing_needs_format
else
    fail create_backing_needs_format "$(cat err)"
fi

# preallocation=metadata: every cluster mapped, reading zeros
"$IMG" create -q -f qcow2 -o preallocation=metadata,cluster_size=4096 pre.qcow2 4M
"$IMG" create -q -f raw zero.raw 4M
if command -v qemu-img >/dev/null && qemu-img check -q pre.qcow2 &&
   qemu-img compare -q pre.qcow2 zero.raw &&
   ! qemu-img map --output=json pre.qcow2 | grep -q '"data": false'; then
    pass create_preallocation_metadata
elif command -v qemu-img >/dev/null; then
    fail create_preallocation_metadata "$(qemu-img check pre.qcow2 2>&1 | head -3; qemu-img map --output=json pre.qcow2 | head -3)"
fi

# info: human and JSON keys qemu-img prints
mkdir sub
"$IMG" create -q -f qcow2 sub/base.qcow2 16M
"$IMG" create -q -f qcow2 -b base.qcow2 -F qcow2 sub/ov.qcow2
"$IMG" info --output=json sub/ov.qcow2 > info.json
if grep -q '"backing-filename": "base.qcow2"' info.json &&
   grep -q '"full-backing-filename": "sub/base.qcow2"' info.json &&
   grep -q '"backing-filename-format": "qcow2"' info.json &&
   grep -q '"virtual-size": 16777216' info.json && grep -q '"dirty-flag": false' info.json &&
   python3 -c 'import json,sys; json.load(open("info.json"))' 2>/dev/null; then
    pass info_json
else
    fail info_json "$(cat info.json)"
fi
if "$IMG" info sub/ov.qcow2 | grep -q '^backing file: base.qcow2 (actual path: sub/base.qcow2)$'; then
    pass info_human_backing
else
    fail info_human_backing "$("$IMG" info sub/ov.qcow2)"
fi
if [ $have_qemu = 1 ]; then
    if qemu-img info sub/ov.qcow2 | grep -q 'backing file format: qcow2'; then
        pass backing_format_extension_qemu_reads
    else
        fail backing_format_extension_qemu_reads "$(qemu-img info sub/ov.qcow2)"
    fi
fi

# check exit codes: 0 clean, 63 raw
"$IMG" check -q a.qcow2; st=$?
[ $st = 0 ] && pass check_clean || fail check_clean "exit $st"
"$IMG" check -f raw r.raw >out 2>err; st=$?
if [ $st = 63 ] && grep -q 'does not support checks' err; then pass check_raw_63; else fail check_raw_63 "exit $st: $(cat err)"; fi

if [ $have_qemu = 0 ]; then
    skip interop "qemu-utils not installed"
    exit 0
fi

# A leak made by hand: bump a free cluster's refcount (cluster 10 of a.qcow2,
# refcount block at 0x20000, 16-bit entries).
cp a.qcow2 leak.qcow2
truncate -s 1M leak.qcow2
printf '\000\001' | dd of=leak.qcow2 bs=1 seek=$((0x20000 + 20)) conv=notrunc 2>/dev/null
"$IMG" check leak.qcow2 >out 2>err; st=$?
qemu-img check leak.qcow2 >/dev/null 2>&1; qst=$?
if [ $st = 3 ] && [ $qst = 3 ] && grep -q 'Leaked cluster 10 refcount=1 reference=0' err &&
   grep -q '1 leaked clusters were found on the image' out; then
    pass check_leak_exit_3
else
    fail check_leak_exit_3 "exit $st (qemu $qst): $(cat out err)"
fi
"$IMG" check -r leaks leak.qcow2 >out 2>err; st=$?
if [ $st = 0 ] && qemu-img check -q leak.qcow2; then
    pass check_repair_leaks
else
    fail check_repair_leaks "exit $st: $(cat out err)"
fi
# A corruption: refcount of the L1 table's cluster (3) set to 0.
cp a.qcow2 bad.qcow2
printf '\000\000' | dd of=bad.qcow2 bs=1 seek=$((0x20000 + 6)) conv=notrunc 2>/dev/null
"$IMG" check bad.qcow2 >out 2>err; st=$?
if [ $st = 2 ] && grep -q 'ERROR cluster 3 refcount=0 reference=1' err; then
    pass check_corruption_exit_2
else
    fail check_corruption_exit_2 "exit $st: $(cat out err)"
fi

# -r all rebuilds the refcounts of that corrupt image
"$IMG" check -r all bad.qcow2 >out 2>err; st=$?
if [ $st = 0 ] && grep -q 'Rebuilding refcount structure' err && qemu-img check -q bad.qcow2; then
    pass check_repair_all
else
    fail check_repair_all "exit $st: $(cat out err | head -5)"
fi

# qemu-written data read by kestrel-img convert, byte for byte
qemu-img create -q -f qcow2 q.qcow2 32M
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 5M 12k' -c 'write -z 6M 64k' \
    -c 'write -P 0x77 31M 1M' q.qcow2 >/dev/null
qemu-img convert -O raw q.qcow2 q-ref.raw
if "$IMG" convert -O raw q.qcow2 q.raw && cmp -s q.raw q-ref.raw; then
    pass convert_qemu_qcow2_to_raw
else
    fail convert_qemu_qcow2_to_raw "contents differ"
fi

# kestrel-written qcow2 (plain and compressed) checked and compared by qemu-img
head -c 2M /dev/urandom > src.raw
dd if=/dev/zero bs=1M count=3 >> src.raw 2>/dev/null
yes kestrel | head -c 2000000 >> src.raw
for c in "" "-c"; do
    name=convert_raw_to_qcow2${c:+_compressed}
    if "$IMG" convert $c -O qcow2 src.raw k.qcow2 && qemu-img check -q k.qcow2 &&
       qemu-img compare -q src.raw k.qcow2; then
        pass "$name"
    else
        fail "$name" "$(qemu-img check k.qcow2 2>&1 | head -5)"
    fi
done
if qemu-img check --output=json k.qcow2 | grep -q '"compressed-clusters": [1-9]'; then
    pass convert_compressed_has_compressed_clusters
else
    fail convert_compressed_has_compressed_clusters "$(qemu-img check --output=json k.qcow2)"
fi
# Sparse: the zero middle is not allocated.
if [ "$(qemu-img map --output=json k.qcow2 | grep -c '"data": false')" -ge 1 ]; then
    pass convert_sparse
else
    fail convert_sparse "$(qemu-img map --output=json k.qcow2)"
fi
# qemu's compressed image back to raw
qemu-img convert -c -O qcow2 src.raw qc.qcow2
if "$IMG" convert -O raw qc.qcow2 qc.raw && qemu-img compare -q -f raw -F raw qc.raw src.raw; then
    pass convert_qemu_compressed_to_raw
else
    fail convert_qemu_compressed_to_raw "contents differ"
fi
# Backing chain flattened by convert
"$IMG" create -q -f qcow2 -b ../src.raw -F raw sub/top.qcow2
qemu-io -f qcow2 -c 'write -P 0x42 100k 5000' sub/top.qcow2 >/dev/null
qemu-img convert -O raw sub/top.qcow2 top-ref.raw
if "$IMG" convert -O raw sub/top.qcow2 top.raw && cmp -s top.raw top-ref.raw; then
    pass convert_backing_chain
else
    fail convert_backing_chain "contents differ"
fi

# map: same extents as qemu-img (JSON and human), including through a chain
qemu-img create -q -f qcow2 -b q.qcow2 -F qcow2 ovq.qcow2
qemu-io -f qcow2 -c 'write -P 1 128k 64k' ovq.qcow2 >/dev/null
for f in q.qcow2 ovq.qcow2 src.raw k.qcow2; do
    if [ "$("$IMG" map --output=json $f)" = "$(qemu-img map --output=json $f)" ] &&
       [ "$("$IMG" map $f 2>&1)" = "$(qemu-img map $f 2>&1)" -o $f = k.qcow2 ]; then
        pass "map_$f"
    else
        "$IMG" map --output=json $f > map1; qemu-img map --output=json $f > map2
        fail "map_$f" "$(diff map1 map2 | head -5)"
    fi
done

# compare: exit 0 identical, 1 with the first differing sector
"$IMG" compare q.qcow2 q-ref.raw >out; st=$?
[ $st = 0 ] && grep -q 'Images are identical.' out && pass compare_identical || fail compare_identical "exit $st: $(cat out)"
"$IMG" compare q.qcow2 a.qcow2 >out; st=$?
[ $st = 1 ] && grep -q 'Content mismatch at offset 0!' out && pass compare_differ || fail compare_differ "exit $st: $(cat out)"

# resize: grow a qcow2 past its L1 table; shrink needs --shrink
qemu-img create -q -f qcow2 -o cluster_size=512 s512.qcow2 1M
qemu-io -f qcow2 -c 'write -P 9 0 1M' s512.qcow2 >/dev/null
if "$IMG" resize s512.qcow2 +100M >out && grep -q 'Image resized.' out && qemu-img check -q s512.qcow2 &&
   qemu-img info s512.qcow2 | grep -q '(105906176 bytes)' &&
   qemu-io -f qcow2 -c 'read -P 9 0 1M' s512.qcow2 | grep -q 'read 1048576/1048576'; then
    pass resize_grow_qcow2
else
    fail resize_grow_qcow2 "$(cat out; qemu-img check s512.qcow2 2>&1 | head -3)"
fi
"$IMG" resize s512.qcow2 1M >out 2>err; st=$?
[ $st = 1 ] && grep -q -- '--shrink' err && pass resize_shrink_needs_flag || fail resize_shrink_needs_flag "exit $st"

# rebase: unsafe rewrites the name; safe keeps the guest-visible contents
cp ovq.qcow2 ov2.qcow2
if "$IMG" rebase -u -b q-ref.raw -F raw ov2.qcow2 && qemu-img check -q ov2.qcow2 &&
   qemu-img info ov2.qcow2 | grep -q '^backing file: q-ref.raw$' &&
   qemu-img info ov2.qcow2 | grep -q '^backing file format: raw$'; then
    pass rebase_unsafe
else
    fail rebase_unsafe "$(qemu-img info ov2.qcow2)"
fi
cp ovq.qcow2 ov3.qcow2
qemu-img create -q -f qcow2 empty.qcow2 32M
if "$IMG" rebase -b empty.qcow2 -F qcow2 ov3.qcow2 && qemu-img compare -q ov3.qcow2 ovq.qcow2 &&
   qemu-img check -q ov3.qcow2; then
    pass rebase_safe
else
    fail rebase_safe "contents or check differ"
fi

# commit: top's data lands in the base, the top becomes empty
cp q.qcow2 cbase.qcow2
qemu-img create -q -f qcow2 -b cbase.qcow2 -F qcow2 ctop.qcow2
qemu-io -f qcow2 -c 'write -P 0x66 100k 200k' -c 'write -z 1M 64k' ctop.qcow2 >/dev/null
qemu-img convert -O raw ctop.qcow2 cexp.raw
if "$IMG" commit ctop.qcow2 >out && grep -q 'Image committed.' out &&
   qemu-img compare -q cbase.qcow2 cexp.raw && qemu-img compare -q ctop.qcow2 cexp.raw &&
   qemu-img check -q cbase.qcow2 && qemu-img check -q ctop.qcow2 &&
   ! qemu-img map --output=json ctop.qcow2 | grep -q '"depth": 0'; then
    pass commit
else
    fail commit "$(cat out)"
fi
"$IMG" commit q.qcow2 >out 2>err; st=$?
[ $st = 1 ] && grep -q 'Image does not have a backing file' err && pass commit_without_backing || fail commit_without_backing "exit $st: $(cat err)"

# snapshot -l reads qemu's snapshot table the way qemu-img prints it
cp q.qcow2 sn.qcow2
qemu-img snapshot -c snap1 sn.qcow2
qemu-img snapshot -c second sn.qcow2
if [ "$("$IMG" snapshot -l sn.qcow2)" = "$(qemu-img snapshot -l sn.qcow2)" ] && "$IMG" check -q sn.qcow2; then
    pass snapshot_list
else
    fail snapshot_list "$("$IMG" snapshot -l sn.qcow2)"
fi

# snapshot -c/-a/-d: qemu-img sees the same snapshots and contents
qemu-img create -q -f qcow2 -o cluster_size=4096 s.qcow2 8M
qemu-io -f qcow2 -c 'write -P 1 0 300k' -c 'write -P 2 4M 64k' s.qcow2 >/dev/null
qemu-img convert -O raw s.qcow2 s1.raw
ok=1
"$IMG" snapshot -c first s.qcow2 && qemu-img check -q s.qcow2 || ok=0
qemu-img snapshot -l s.qcow2 | grep -q ' first ' || ok=0
qemu-io -f qcow2 -c 'write -P 3 100k 200k' s.qcow2 >/dev/null
qemu-img convert -O raw s.qcow2 s2.raw
"$IMG" snapshot -c second s.qcow2 && qemu-img check -q s.qcow2 || ok=0
"$IMG" snapshot -c second s.qcow2 2>err && ok=0
grep -q 'already exists' err || ok=0
"$IMG" snapshot -a first s.qcow2 && qemu-img compare -q s.qcow2 s1.raw && qemu-img check -q s.qcow2 || ok=0
qemu-img snapshot -a second s.qcow2 && qemu-img compare -q s.qcow2 s2.raw || ok=0
"$IMG" snapshot -d first s.qcow2 && qemu-img check -q s.qcow2 && qemu-img compare -q s.qcow2 s2.raw || ok=0
[ "$(qemu-img snapshot -l s.qcow2 | grep -c second)" = 1 ] && ! qemu-img snapshot -l s.qcow2 | grep -q first || ok=0
"$IMG" snapshot -d 2 s.qcow2 && qemu-img check -q s.qcow2 && [ -z "$(qemu-img snapshot -l s.qcow2)" ] || ok=0
[ $ok = 1 ] && pass snapshot_create_apply_delete || fail snapshot_create_apply_delete "$(qemu-img check s.qcow2 2>&1 | head -5; qemu-img snapshot -l s.qcow2)"

# Locking: kestrel-img refuses an image qemu-io holds open for writing.
mkfifo hold
( qemu-io -f qcow2 a.qcow2 < hold >/dev/null 2>&1 & )
exec 3>hold
sleep 0.5
"$IMG" check a.qcow2 >out 2>err; st=$?
exec 3>&-
if [ $st = 1 ] && grep -q 'Failed to get shared "write" lock' err; then
    pass lock_against_qemu
else
    fail lock_against_qemu "exit $st: $(cat out err)"
fi

# Errors: one line, exit 1
"$IMG" info nonexistent.qcow2 >out 2>err; st=$?
if [ $st = 1 ] && [ "$(wc -l < err)" = 1 ] && grep -q "nonexistent.qcow2" err; then
    pass error_missing_file
else
    fail error_missing_file "exit $st: $(cat err)"
fi
