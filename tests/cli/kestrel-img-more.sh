#!/bin/sh
# kestrel-img commit -b, convert -B/-F/-n/--target-is-zero and check -r all
# on malformed L1/L2 entries, with Debian's qemu-img/qemu-io as the oracle:
# the same operation done by qemu-img gives the same disk contents, and
# images kestrel-img repaired pass qemu-img check.  Malformed images are made
# here by patching a qemu-made image with python3 (no fetched images).
: "${KESTREL:=./kestrel}"
IMG=${KESTREL_IMG:-$(dirname "$KESTREL")/kestrel-img}
case "$IMG" in /*) ;; *) IMG=$(pwd)/$IMG ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

pass() { echo "PASS kestrel-img-more/$1"; }
fail() { echo "FAIL kestrel-img-more/$1: $2"; }
skip() { echo "SKIP kestrel-img-more/$1: $2"; }

if [ ! -x "$IMG" ]; then
    fail binary "no kestrel-img at $IMG"
    exit 0
fi
if ! command -v qemu-img >/dev/null 2>&1 || ! command -v qemu-io >/dev/null 2>&1 ||
   ! command -v python3 >/dev/null 2>&1; then
    skip all "qemu-img, qemu-io and python3 are the oracle and the image patcher; one is missing"
    exit 0
fi

qio() { qemu-io "$@" >/dev/null 2>&1; }
# reads_pattern IMAGE BYTE OFFSET LENGTH: does the image read back that byte there?
reads_pattern() {
    out=$(qemu-io -r -c "read -P $2 $3 $4" "$1" 2>&1) &&
        ! printf '%s\n' "$out" | grep -q 'Pattern verification failed' &&
        printf '%s\n' "$out" | grep -q "^read $4/$4 bytes"
}

# ---- commit -b ----
# base: 1 at [0,1M); mid: 2 at [512K,1.5M), zeros at [3M,3M+64K); top: 3 at [1M,+64K), 4 at [3M,+4K)
mkdir chain && cd chain
qemu-img create -q -f qcow2 base.qcow2 4M && qio -c 'write -P 1 0 1M' base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 &&
    qio -c 'write -P 2 512k 1M' -c 'write -z 3M 64k' mid.qcow2
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 &&
    qio -c 'write -P 3 1M 64k' -c 'write -P 4 3M 4k' top.qcow2
qemu-img convert -O raw top.qcow2 ../top-before.raw
qemu-img convert -O raw base.qcow2 ../base-before.raw
cd ..
for d in q k; do mkdir $d && cp chain/*.qcow2 $d/; done
(cd q && qemu-img commit -q -b base.qcow2 top.qcow2)
(cd k && "$IMG" commit -b base.qcow2 top.qcow2 >../out 2>../err); st=$?
if [ $st = 0 ] && grep -q 'Image committed.' out &&
   qemu-img compare -q -f qcow2 -F raw k/base.qcow2 top-before.raw &&
   qemu-img compare -q k/base.qcow2 q/base.qcow2 && qemu-img check -q k/base.qcow2; then
    pass commit_base_takes_all_layers_above
else
    fail commit_base_takes_all_layers_above "exit $st: $(cat out err) $(qemu-img compare k/base.qcow2 q/base.qcow2 2>&1)"
fi
# -b implies -d: the top keeps its clusters and still reads the same
if qemu-img compare -q -f qcow2 -F raw k/top.qcow2 top-before.raw &&
   [ "$(qemu-img map --output=json k/top.qcow2 | grep -c '"depth": 0')" = \
     "$(qemu-img map --output=json q/top.qcow2 | grep -c '"depth": 0')" ] &&
   [ "$(qemu-img map --output=json k/top.qcow2 | grep -c '"depth": 0')" -gt 0 ]; then
    pass commit_base_keeps_top
else
    fail commit_base_keeps_top "$(qemu-img map k/top.qcow2 2>&1)"
fi
# the intermediate layer is left alone
if cmp -s k/mid.qcow2 chain/mid.qcow2; then
    pass commit_base_leaves_intermediate
else
    fail commit_base_leaves_intermediate "mid.qcow2 was modified"
fi

# commit -b naming the immediate backing file, by its path, matches qemu-img
rm -rf q2 k2 && mkdir q2 k2 && cp chain/*.qcow2 q2/ && cp chain/*.qcow2 k2/
(cd q2 && qemu-img commit -q -b "$tmp/q2/mid.qcow2" top.qcow2)
(cd k2 && "$IMG" commit -q -b "$tmp/k2/mid.qcow2" top.qcow2); st=$?
if [ $st = 0 ] && qemu-img compare -q k2/mid.qcow2 q2/mid.qcow2 && cmp -s k2/base.qcow2 chain/base.qcow2 &&
   qemu-img check -q k2/mid.qcow2; then
    pass commit_base_immediate_by_path
else
    fail commit_base_immediate_by_path "exit $st: $(qemu-img compare k2/mid.qcow2 q2/mid.qcow2 2>&1)"
fi

# the committed-into image has a backing file of its own and bigger clusters than the top:
# a 4K write into its 64K cluster must keep the other 60K from its backing file
for b in "" "-b mid.qcow2"; do
    rm -rf sc && mkdir sc && cd sc
    qemu-img create -q -f qcow2 base.qcow2 4M && qio -c 'write -P 1 0 4M' base.qcow2
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
    qemu-img create -q -f qcow2 -o cluster_size=4k -b mid.qcow2 -F qcow2 top.qcow2
    qio -c 'write -P 9 68k 4k' top.qcow2
    qemu-img convert -O raw top.qcow2 exp.raw
    "$IMG" commit -q $b top.qcow2; st=$?
    if [ $st = 0 ] && qemu-img compare -q -F raw mid.qcow2 exp.raw && qemu-img check -q mid.qcow2; then
        pass "commit${b:+_b}_partial_cluster_keeps_backing_data"
    else
        fail "commit${b:+_b}_partial_cluster_keeps_backing_data" "exit $st: $(qemu-img compare -F raw mid.qcow2 exp.raw 2>&1)"
    fi
    cd ..
done

# a base outside the chain: qemu-img's message and exit status, nothing written
(cd k2 && "$IMG" commit -b nothere.qcow2 top.qcow2 >../out 2>../err); st=$?
(cd q2 && qemu-img commit -b nothere.qcow2 top.qcow2 >/dev/null 2>../qerr); qst=$?
if [ $st = $qst ] && [ $st != 0 ] &&
   grep -q "Did not find 'nothere.qcow2' in the backing chain of 'top.qcow2'" err; then
    pass commit_base_not_in_chain
else
    fail commit_base_not_in_chain "exit $st (qemu $qst): $(cat err)"
fi

# ---- convert -B / -n / --target-is-zero ----
qemu-img create -q -f qcow2 b.qcow2 4M && qio -c 'write -P 1 0 2M' b.qcow2
qemu-img create -q -f qcow2 -b b.qcow2 -F qcow2 src.qcow2
# zeros over base data, new data, a write equal to what the base holds, data past the base's data
qio -c 'write -z 0 64k' -c 'write -P 2 1M 64k' -c 'write -P 1 128k 64k' -c 'write -P 5 3M 4k' src.qcow2
qemu-img convert -O raw src.qcow2 src.raw
# the clusters of out.qcow2's own layer, as "start:length:zero"
own() { qemu-img map --output=json "$1" | python3 -c '
import json, sys
print(" ".join("%d:%d:%s" % (e["start"], e["length"], e["zero"]) for e in json.load(sys.stdin) if e["depth"] == 0 and e["present"]))'; }
want="0:65536:True 1048576:65536:False 3145728:65536:False"

"$IMG" convert -O qcow2 -B b.qcow2 -F qcow2 src.qcow2 out.qcow2 2>err; st=$?
got=$(own out.qcow2)
if [ $st = 0 ] && qemu-img compare -q src.qcow2 out.qcow2 && qemu-img check -q out.qcow2 &&
   qemu-img info out.qcow2 | grep -qx 'backing file: b.qcow2' &&
   qemu-img info out.qcow2 | grep -qx 'backing file format: qcow2' && [ "$got" = "$want" ]; then
    pass convert_backing_writes_only_differing_clusters
else
    fail convert_backing_writes_only_differing_clusters "exit $st, own clusters '$got' want '$want' $(cat err)"
fi
# qemu-img allocates at least what we do (it also copies the cluster equal to the base)
qemu-img convert -O qcow2 -B b.qcow2 -F qcow2 src.qcow2 qout.qcow2
if [ "$(own qout.qcow2 | wc -w)" -ge "$(echo $want | wc -w)" ] && qemu-img compare -q qout.qcow2 out.qcow2; then
    pass convert_backing_same_image_as_qemu
else
    fail convert_backing_same_image_as_qemu "qemu: $(own qout.qcow2)"
fi
# a flat source (everything allocated) still only stores the differences
"$IMG" convert -q -O qcow2 -B b.qcow2 -F qcow2 -f raw src.raw out2.qcow2; st=$?
got=$(own out2.qcow2)
if [ $st = 0 ] && qemu-img compare -q -F raw out2.qcow2 src.raw && [ "$got" = "$want" ]; then
    pass convert_backing_from_flat_source
else
    fail convert_backing_from_flat_source "exit $st, own clusters '$got'"
fi
# -o backing_file=... is the same as -B
"$IMG" convert -O qcow2 -o backing_file=b.qcow2,backing_fmt=qcow2 src.qcow2 out3.qcow2; st=$?
if [ $st = 0 ] && [ "$(own out3.qcow2)" = "$want" ] && qemu-img compare -q src.qcow2 out3.qcow2; then
    pass convert_backing_via_o
else
    fail convert_backing_via_o "exit $st, own clusters '$(own out3.qcow2)'"
fi
"$IMG" convert -O qcow2 -B b.qcow2 src.qcow2 nofmt.qcow2 >out 2>err; st=$?
qemu-img convert -O qcow2 -B b.qcow2 src.qcow2 qnofmt.qcow2 >/dev/null 2>&1; qst=$?
if [ $st = 1 ] && [ $qst = 1 ] && grep -q 'Use of backing file requires explicit backing format' err &&
   [ ! -e nofmt.qcow2 ]; then
    pass convert_backing_needs_format
else
    fail convert_backing_needs_format "exit $st (qemu $qst): $(cat err)"
fi

# -n into an existing raw image full of junk: the first 4M become the source, the rest stays
head -c 8M /dev/urandom > junk.raw && cp junk.raw junk-orig.raw
"$IMG" convert -n -O raw src.qcow2 junk.raw 2>err; st=$?
if [ $st = 0 ] && cmp -s -n 4194304 junk.raw src.raw &&
   cmp -s -i 4194304 junk.raw junk-orig.raw && [ "$(stat -c %s junk.raw)" = 8388608 ]; then
    pass convert_n_into_existing_raw
else
    fail convert_n_into_existing_raw "exit $st $(cat err)"
fi
# -n into a qcow2 that holds other data: zeros of the source must overwrite it
qemu-img create -q -f qcow2 full.qcow2 4M && qio -c 'write -P 9 0 4M' full.qcow2
"$IMG" convert -n -O qcow2 src.qcow2 full.qcow2 2>err; st=$?
if [ $st = 0 ] && qemu-img compare -q src.qcow2 full.qcow2 && qemu-img check -q full.qcow2; then
    pass convert_n_into_existing_qcow2
else
    fail convert_n_into_existing_qcow2 "exit $st: $(qemu-img compare src.qcow2 full.qcow2 2>&1) $(cat err)"
fi
# --target-is-zero: zero blocks are not written at all
qemu-img create -q -f qcow2 z.qcow2 4M
"$IMG" convert -n --target-is-zero -O qcow2 src.qcow2 z.qcow2 2>err; st=$?
# src.raw is data in [64K,2M) and [3M,+4K): 31 + 1 clusters of 64K
alloc=$(qemu-img map --output=json z.qcow2 | python3 -c '
import json, sys
print(sum(e["length"] for e in json.load(sys.stdin) if e["data"]) // 65536)')
if [ $st = 0 ] && qemu-img compare -q src.qcow2 z.qcow2 && [ "$alloc" = 32 ]; then
    pass convert_n_target_is_zero
else
    fail convert_n_target_is_zero "exit $st, $alloc data clusters (want 32) $(cat err)"
fi
"$IMG" convert --target-is-zero -O raw src.qcow2 tz.raw >out 2>err; st=$?
if [ $st = 1 ] && grep -q -- '--target-is-zero requires use of -n flag' err && [ ! -e tz.raw ]; then
    pass convert_target_is_zero_needs_n
else
    fail convert_target_is_zero_needs_n "exit $st: $(cat err)"
fi
qemu-img create -q -f raw small.raw 1M && cp small.raw small-orig.raw
"$IMG" convert -n -O raw src.qcow2 small.raw >out 2>err; st=$?
qemu-img convert -n -O raw src.qcow2 small-orig.raw >/dev/null 2>&1; qst=$?
if [ $st = 1 ] && [ $qst = 1 ] && grep -q 'output file is smaller than input file' err &&
   [ "$(stat -c %s small.raw)" = 1048576 ]; then
    pass convert_n_target_too_small
else
    fail convert_n_target_too_small "exit $st (qemu $qst): $(cat err)"
fi

# ---- measure: same output and exit status as qemu-img measure ----
truncate -s 10M sparse.raw
dd if=/dev/urandom of=sparse.raw bs=64k count=3 seek=5 conv=notrunc 2>/dev/null
for args in "-O qcow2 --size 1G" "-O qcow2 src.qcow2" "-O raw src.qcow2" "-O qcow2 out.qcow2" \
            "--output=json -O qcow2 -o cluster_size=4k --size 100M" "--output=json -O qcow2 src.qcow2" \
            "-O qcow2 -o refcount_bits=1,cluster_size=512 --size 10M" "-O qcow2 sparse.raw" \
            "-O qcow2 -o compat=0.10 src.qcow2" "-O qcow2 -o preallocation=full src.qcow2" \
            "-O qcow2 -o cluster_size=2M --size 5T" "-O raw --size 1000" "--size 1G" \
            "-O qcow2 -o refcount_bits=64,cluster_size=4k junk.raw" "-O qcow2 --size 1G src.qcow2" \
            "-O qcow2" "-O qcow2 -o refcount_bits=3 --size 1M"; do
    qemu-img measure $args 2>&1 | sed 's/^qemu-img: //' > q.out
    qemu-img measure $args >/dev/null 2>&1; qst=$?
    "$IMG" measure $args 2>&1 | sed 's/^kestrel-img: //' > k.out
    "$IMG" measure $args >/dev/null 2>&1; st=$?
    name=measure_$(echo "$args" | tr -c 'a-zA-Z0-9\n' _)
    if [ $st = $qst ] && cmp -s q.out k.out; then
        pass "$name"
    else
        fail "$name" "exit $st (qemu $qst): got '$(cat k.out)' want '$(cat q.out)'"
    fi
done

# ---- amend -o compat= / lazy_refcounts= ----
# an overlay whose zero clusters hide the base's data: compat=0.10 must keep them reading zeros
qemu-img create -q -f qcow2 abase.qcow2 4M && qio -c 'write -P 7 0 4M' abase.qcow2
qemu-img create -q -f qcow2 -b abase.qcow2 -F qcow2 am.qcow2
qio -c 'write -P 1 0 64k' -c 'write -z 64k 64k' -c 'write -z 1M 4k' -c 'write -P 2 2M 64k' am.qcow2
qio -c 'write -z 2M 64k' am.qcow2
qemu-img convert -O raw am.qcow2 am.raw
cp am.qcow2 amq.qcow2 && qemu-img amend -o compat=0.10 amq.qcow2
cp am.qcow2 amk.qcow2
"$IMG" amend -o compat=0.10 amk.qcow2 2>err; st=$?
if [ $st = 0 ] && qemu-img info amk.qcow2 | grep -q '^    compat: 0.10' &&
   qemu-img info amk.qcow2 | grep -qx 'backing file: abase.qcow2' && qemu-img check -q amk.qcow2 &&
   qemu-img compare -q -F raw amk.qcow2 am.raw && qemu-img compare -q amk.qcow2 amq.qcow2; then
    pass amend_downgrade_keeps_zero_clusters_over_backing
else
    fail amend_downgrade_keeps_zero_clusters_over_backing "exit $st: $(cat err) $(qemu-img compare -F raw amk.qcow2 am.raw 2>&1)"
fi
# and back up, with lazy refcounts
"$IMG" amend -o compat=1.1,lazy_refcounts=on amk.qcow2 2>err; st=$?
if [ $st = 0 ] && qemu-img info amk.qcow2 | grep -q '^    compat: 1.1' &&
   qemu-img info amk.qcow2 | grep -q '^    lazy refcounts: true' && qemu-img check -q amk.qcow2 &&
   qemu-img compare -q -F raw amk.qcow2 am.raw && qemu-img info amk.qcow2 | grep -qx 'backing file format: qcow2'; then
    pass amend_upgrade_with_lazy_refcounts
else
    fail amend_upgrade_with_lazy_refcounts "exit $st: $(cat err) $(qemu-img info amk.qcow2 | tail -7)"
fi
"$IMG" amend -o lazy_refcounts=off amk.qcow2; st=$?
if [ $st = 0 ] && qemu-img info amk.qcow2 | grep -q '^    lazy refcounts: false' && qemu-img check -q amk.qcow2; then
    pass amend_lazy_refcounts_off
else
    fail amend_lazy_refcounts_off "exit $st"
fi
# no backing file: zero clusters may simply become unallocated
qemu-img create -q -f qcow2 nb.qcow2 4M
qio -c 'write -P 3 0 128k' -c 'write -z 64k 64k' -c 'write -P 4 1M 64k' nb.qcow2
qio -c 'write -z 1M 64k' nb.qcow2
qemu-img convert -O raw nb.qcow2 nb.raw
"$IMG" amend -o compat=v2 nb.qcow2; st=$?
if [ $st = 0 ] && qemu-img info nb.qcow2 | grep -q '^    compat: 0.10' && qemu-img check -q nb.qcow2 &&
   qemu-img compare -q -F raw nb.qcow2 nb.raw; then
    pass amend_downgrade_without_backing
else
    fail amend_downgrade_without_backing "exit $st"
fi
# a compat=0.10 image made by qemu-img, upgraded by us, read by qemu
qemu-img create -q -f qcow2 -o compat=0.10 old.qcow2 4M && qio -c 'write -P 5 512k 128k' old.qcow2
qemu-img convert -O raw old.qcow2 old.raw
"$IMG" amend -o compat=1.1 old.qcow2; st=$?
if [ $st = 0 ] && qemu-img info old.qcow2 | grep -q '^    compat: 1.1' && qemu-img check -q old.qcow2 &&
   qemu-img compare -q -F raw old.qcow2 old.raw && qio -c 'write -z 512k 64k' old.qcow2 &&
   qemu-img check -q old.qcow2; then
    pass amend_upgrade_qemu_v2_image
else
    fail amend_upgrade_qemu_v2_image "exit $st"
fi
# refcount_bits: every width, with a snapshot sharing clusters (refcount 2)
qemu-img create -q -f qcow2 rw.qcow2 4M
qio -c 'write -P 1 0 64k' -c 'write -P 2 1M 128k' rw.qcow2
qemu-img snapshot -c s1 rw.qcow2 && qio -c 'write -P 3 1M 64k' rw.qcow2
qemu-img convert -O raw rw.qcow2 rw.raw && qemu-img convert -l s1 -O raw rw.qcow2 rw-s1.raw
for b in 8 64 2 16 4 32; do
    "$IMG" amend -o refcount_bits=$b rw.qcow2 2>err; st=$?
    qemu-img convert -l s1 -O raw rw.qcow2 got-s1.raw
    if [ $st = 0 ] && qemu-img info rw.qcow2 | grep -q "^    refcount bits: $b\$" && qemu-img check -q rw.qcow2 &&
       qemu-img compare -q -F raw rw.qcow2 rw.raw && cmp -s got-s1.raw rw-s1.raw; then
        pass "amend_refcount_bits_$b"
    else
        fail "amend_refcount_bits_$b" "exit $st: $(cat err) $(qemu-img check rw.qcow2 2>&1 | head -3)"
    fi
done
# 32-bit refcounts cannot go to compat=0.10 alone; with refcount_bits=16 they can
for args in "-o compat=0.10" "-o refcount_bits=1"; do
    cp rw.qcow2 rwq.qcow2 && cp rw.qcow2 rw-before.qcow2
    qemu-img amend $args rwq.qcow2 2>&1 | sed 's/^qemu-img: //' > q.out
    qemu-img amend $args rwq.qcow2 >/dev/null 2>&1; qst=$?
    "$IMG" amend $args rw.qcow2 2>&1 | sed 's/^kestrel-img: //' > k.out
    "$IMG" amend $args rw.qcow2 >/dev/null 2>&1; st=$?
    name=amend_refuses_32bit_$(echo "$args" | tr -c 'a-zA-Z0-9\n' _)
    if [ $st = $qst ] && [ $st != 0 ] && cmp -s q.out k.out && cmp -s rw.qcow2 rw-before.qcow2; then
        pass "$name"
    else
        fail "$name" "exit $st (qemu $qst): got '$(cat k.out)' want '$(cat q.out)'"
    fi
done
"$IMG" amend -o compat=0.10,refcount_bits=16 rw.qcow2 2>err; st=$?
if [ $st = 0 ] && qemu-img info rw.qcow2 | grep -q '^    compat: 0.10' &&
   qemu-img info rw.qcow2 | grep -q '^    refcount bits: 16$' && qemu-img check -q rw.qcow2 &&
   qemu-img compare -q -F raw rw.qcow2 rw.raw; then
    pass amend_downgrade_from_32bit_refcounts
else
    fail amend_downgrade_from_32bit_refcounts "exit $st: $(cat err) $(qemu-img check rw.qcow2 2>&1 | head -3)"
fi

# size= grows the disk, like qemu-img amend
cp am.qcow2 amg.qcow2 && cp am.qcow2 amgq.qcow2
"$IMG" amend -o size=8M amg.qcow2; st=$?
qemu-img amend -o size=8M amgq.qcow2
if [ $st = 0 ] && qemu-img info amg.qcow2 | grep -q '^virtual size: 8 MiB (8388608 bytes)' &&
   qemu-img check -q amg.qcow2 && qemu-img compare -q amg.qcow2 amgq.qcow2; then
    pass amend_size_grows
else
    fail amend_size_grows "exit $st: $(qemu-img info amg.qcow2 | grep virtual)"
fi

# refusals: qemu-img's message and exit status
cp am.qcow2 amr.qcow2
for args in "-o compat=0.10,lazy_refcounts=on" "-o cluster_size=4k" "-o compat=1.0" "-o foo=1" \
            "-o backing_file=x" "-f raw -o compat=0.10" "-o size=3000" ""; do
    cp amr.qcow2 amr-q.qcow2
    qemu-img amend $args amr-q.qcow2 2>&1 | sed 's/^qemu-img: //' | grep -v '^Try ' > q.out
    qemu-img amend $args amr-q.qcow2 >/dev/null 2>&1; qst=$?
    "$IMG" amend $args amr.qcow2 2>&1 | sed 's/^kestrel-img: //' > k.out
    "$IMG" amend $args amr.qcow2 >/dev/null 2>&1; st=$?
    name=amend_refuses_$(echo "${args:-nothing}" | tr -c 'a-zA-Z0-9\n' _)
    if [ $st = $qst ] && [ $st != 0 ] && cmp -s q.out k.out && cmp -s amr.qcow2 am.qcow2; then
        pass "$name"
    else
        fail "$name" "exit $st (qemu $qst): got '$(cat k.out)' want '$(cat q.out)'"
    fi
done

# ---- check -r all on malformed L1/L2 entries ----
# Guest clusters (64K) 0, 1, 2, 16 hold 0x11, 0x22, 0x33, 0x44; L1 has one entry.
qemu-img create -q -f qcow2 good.qcow2 4M
qio -c 'write -P 0x11 0 64k' -c 'write -P 0x22 64k 64k' -c 'write -P 0x33 128k 64k' -c 'write -P 0x44 1M 64k' good.qcow2
# the same data, compressed (for the compressed-entry case)
qemu-img convert -O raw good.qcow2 good.raw && qemu-img convert -c -O qcow2 good.raw goodc.qcow2
cat > corrupt.py <<'EOF'
import struct, sys
fn, kind = sys.argv[1], sys.argv[2]
f = bytearray(open(fn, 'rb').read())
cs = 1 << struct.unpack('>I', f[20:24])[0]
l1off = struct.unpack('>Q', f[40:48])[0]
rt = struct.unpack('>Q', f[48:56])[0]
l1e = struct.unpack('>Q', f[l1off:l1off + 8])[0]
l2 = l1e & 0x00fffffffffffe00
def q(o): return struct.unpack('>Q', f[o:o + 8])[0]
def setq(o, v): f[o:o + 8] = struct.pack('>Q', v)
COPIED = 1 << 63
if kind == 'l2_misaligned':   setq(l2 + 8 * 1, q(l2 + 8 * 1) + 0x200)
elif kind == 'l2_past_eof':   setq(l2 + 8 * 2, COPIED | 0x10000000)
elif kind == 'l2_on_reftable': setq(l2 + 8 * 16, COPIED | rt)
elif kind == 'l2_on_l1':      setq(l2 + 8 * 16, COPIED | l1off)
elif kind == 'l2_on_l2':      setq(l2 + 8 * 16, COPIED | l2)
elif kind == 'l2_on_refblock': setq(l2 + 8 * 16, COPIED | (q(rt) & ~(cs - 1)))
elif kind == 'l2_zero_misaligned': setq(l2 + 8 * 16, (q(l2 + 8 * 16) & 0x00fffffffffffe00) + 0x200 | 1)
elif kind == 'l2_compressed_past_eof':
    # compressed entry: host offset in the low 62 - (cluster_bits - 8) bits
    mask = (1 << (62 - (cs.bit_length() - 1 - 8))) - 1
    setq(l2 + 8 * 2, (q(l2 + 8 * 2) & ~mask) | 0x10000000)
elif kind == 'l1_misaligned': setq(l1off, l1e + 0x200)
elif kind == 'l1_past_eof':   setq(l1off, COPIED | 0x10000000)
elif kind == 'l1_on_reftable': setq(l1off, COPIED | rt)
else: sys.exit('unknown kind ' + kind)
open(fn, 'wb').write(f)
EOF
# kind, then the guest clusters that lose their data (the rest must read back unchanged)
for t in "l2_misaligned 1" "l2_past_eof 2" "l2_on_reftable 16" "l2_on_l1 16" "l2_on_l2 16" \
         "l2_on_refblock 16" "l2_zero_misaligned 16" "l2_compressed_past_eof 2" "l1_misaligned 0 1 2 16" \
         "l1_past_eof 0 1 2 16" "l1_on_reftable 0 1 2 16"; do
    set -- $t
    kind=$1; shift
    lost=" $* "
    case $kind in *compressed*) cp goodc.qcow2 "$kind.qcow2" ;; *) cp good.qcow2 "$kind.qcow2" ;; esac
    python3 corrupt.py "$kind.qcow2" "$kind"
    cp "$kind.qcow2" "$kind-q.qcow2"
    qemu-img check "$kind-q.qcow2" >/dev/null 2>&1; qst=$?
    "$IMG" check "$kind.qcow2" >out 2>err; st=$?
    # detection: both call it corrupt (exit 2) and kestrel-img names the bad entry
    if [ $st = 2 ] && [ $qst = 2 ] && grep -q '^ERROR .*L[12] entry corrupted' err; then
        pass "check_detects_$kind"
    else
        fail "check_detects_$kind" "exit $st (qemu $qst): $(head -3 err)"
    fi
    "$IMG" check -r all "$kind.qcow2" >out 2>err; st=$?
    qemu-img check "$kind.qcow2" >qout 2>&1; qst=$?
    bad=
    for c in 0 1 2 16; do
        case $c in 0) p=0x11 ;; 1) p=0x22 ;; 2) p=0x33 ;; 16) p=0x44 ;; esac
        case "$lost" in *" $c "*) p=0 ;; esac
        reads_pattern "$kind.qcow2" $p $((c * 65536)) 65536 || bad="$bad cluster$c"
    done
    if [ $st = 0 ] && [ $qst = 0 ] && grep -q 'No errors were found on the image.' qout &&
       grep -q 'Double checking the fixed image now' out && [ -z "$bad" ]; then
        pass "check_repair_all_$kind"
    else
        fail "check_repair_all_$kind" "exit $st, qemu-img check exit $qst: $(head -3 qout) data:$bad"
    fi
done

# an L2 table shared with a snapshot: repaired once, both views check clean
cp good.qcow2 snap.qcow2
qemu-img snapshot -c s1 snap.qcow2
python3 corrupt.py snap.qcow2 l2_on_reftable
"$IMG" check -r all snap.qcow2 >out 2>err; st=$?
qemu-img check snap.qcow2 >qout 2>&1; qst=$?
if [ $st = 0 ] && [ $qst = 0 ] && reads_pattern snap.qcow2 0x22 64k 65536 &&
   reads_pattern snap.qcow2 0 1M 65536 &&
   qemu-img snapshot -l snap.qcow2 | grep -q s1; then
    pass check_repair_all_shared_with_snapshot
else
    fail check_repair_all_shared_with_snapshot "exit $st, qemu exit $qst: $(head -3 qout) $(head -3 err)"
fi

# a clean image is left byte for byte alone by -r all
cp good.qcow2 clean.qcow2
"$IMG" check -r all clean.qcow2 >out 2>err; st=$?
if [ $st = 0 ] && cmp -s clean.qcow2 good.qcow2 && grep -q 'No errors were found' out; then
    pass check_repair_all_clean_image_untouched
else
    fail check_repair_all_clean_image_untouched "exit $st: $(cat out err)"
fi
exit 0
