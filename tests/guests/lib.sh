# Shell helpers shared by tests/boot/*.sh and bench/* (POSIX sh; source it).
# Not a test itself (it lives here, not in tests/boot/, so run-tests.sh does
# not run it).

# have_kvm: /dev/kvm exists and we may open it.
have_kvm() {
    [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]
}

# kestrel_pick_accel: sets KACCEL to kvm (if usable) or tcg (if the kestrel
# binary lists it under -accel help); else returns 1 with KACCEL_WHY set.
kestrel_pick_accel() {
    KACCEL= KACCEL_WHY=
    if have_kvm; then
        KACCEL=kvm
        return 0
    fi
    list=$("$KESTREL" -accel help 2>&1)
    if printf '%s\n' "$list" | grep -qw tcg; then
        KACCEL=tcg
        return 0
    fi
    KACCEL_WHY="no /dev/kvm, and this kestrel has no software CPU (-accel help: $(printf '%s' "$list" | tr '\n' ' ' | cut -c1-120))"
    return 1
}

# not_implemented_reason FILE: the first line of FILE saying something is not
# implemented (how kestrel refuses what it cannot do yet), or nothing.
not_implemented_reason() {
    grep -i -m1 -E 'not (implemented|built in|supported)|unimplemented|cannot run guest code' "$1" 2>/dev/null
}

# now_ns: wall clock in nanoseconds (GNU date).
now_ns() {
    date +%s%N
}

# median: of the numbers on stdin, one per line.
median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1;
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# build_guest NAME DIR: run tests/guests/NAME DIR quietly; on exit 77 sets
# GUEST_WHY to its reason line and returns 77.
build_guest() {
    _log=$(mktemp "${TMPDIR:-/tmp}/kestrel-guest.XXXXXX")
    "$KESTREL_GUESTS_SRC/$1" "$2" > "$_log" 2>&1
    _s=$?
    GUEST_WHY=$(grep -m1 'SKIP' "$_log" | sed 's/.*SKIP: //')
    [ $_s -ne 0 ] && [ -z "$GUEST_WHY" ] && GUEST_WHY="$1 failed: $(tail -n 3 "$_log" | tr '\n' ' ')"
    rm -f "$_log"
    return $_s
}

# run_to_marker LOG MARKER TIMEOUT CMD...: run CMD (stdin /dev/null, stdout
# saved in LOG, stderr in LOG.err) and print the seconds from launch until
# MARKER first appears on its stdout (nothing if it never does).  Waits for
# CMD to end; CMD's exit status (124 = timed out) is left in LOG.status
# (callers usually run this in $(...), so a variable would not survive).
run_to_marker() {
    _log=$1 _marker=$2 _tmo=$3
    shift 3
    _t0=$(now_ns)
    _t1=$( { timeout "$_tmo" "$@" < /dev/null 2> "$_log.err"; echo "$?" > "$_log.status"; } |
           tee "$_log" |
           { while IFS= read -r _l; do
                 case $_l in *"$_marker"*) now_ns; break ;; esac
             done
             cat > /dev/null; } )
    [ -n "$_t1" ] && awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
    return 0
}
