# Shell helpers shared by tests/boot/*.sh and bench/* (POSIX sh; source it).
# Not a test itself (it lives here, not in tests/boot/, so run-tests.sh does
# not run it).

# have_kvm: hardware KVM works here: /dev/kvm exists, we may open it, and the
# CPU shows VT-x or AMD-V.  Without vmx/svm, /dev/kvm is a paravirtual KVM
# (PVM) that emulates every guest instruction in the host kernel: Debian's
# kernel prints nothing in minutes there, so guests are not run under it
# (kestrel itself prefers the software CPU on such hosts).  On failure
# KVM_WHY says why, in one line.
have_kvm() {
    KVM_WHY=
    if [ ! -c /dev/kvm ]; then
        KVM_WHY="no /dev/kvm on this host"
    elif [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
        KVM_WHY="/dev/kvm is not readable and writable by this user"
    elif [ -r /proc/cpuinfo ] && ! grep -q -w -E 'vmx|svm' /proc/cpuinfo; then
        KVM_WHY="KVM here is software-only (no vmx/svm in /proc/cpuinfo: a paravirtual KVM such as PVM emulates every guest instruction; see kestrel -accel help)"
    fi
    [ -z "$KVM_WHY" ]
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
    KACCEL_WHY="$KVM_WHY, and this kestrel has no software CPU (-accel help: $(printf '%s' "$list" | tr '\n' ' ' | cut -c1-120))"
    return 1
}

# guest_accels TEST: the engines a real-guest test runs its guest under,
# in GUEST_ACCELS: the software CPU always (every guest must boot without
# KVM), and KVM as well where hardware KVM works.  The run under engine A is
# named TEST[A]; an engine that cannot run here gets its SKIP line now, with
# the reason.  Returns 1 when neither can run.
guest_accels() {
    GUEST_ACCELS=
    if [ ! -x "$KESTREL" ]; then
        echo "SKIP $1: no kestrel binary at $KESTREL"
        return 1
    fi
    if have_kvm; then
        GUEST_ACCELS=kvm
    else
        echo "SKIP $1[kvm]: $KVM_WHY"
    fi
    if "$KESTREL" -accel help 2>&1 | grep -q -E '^ +tcg +available'; then
        GUEST_ACCELS="${GUEST_ACCELS:+$GUEST_ACCELS }tcg"
    else
        echo "SKIP $1[tcg]: this kestrel has no software CPU (see kestrel -accel help)"
    fi
    [ -n "$GUEST_ACCELS" ]
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
