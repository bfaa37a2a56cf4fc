/*
 * stdio backend: guest output to stdout, input from stdin.
 *
 * When stdin is a terminal it is put in raw mode (no echo, no line editing,
 * no CR->NL or flow-control translation on input; output processing stays on)
 * so that the guest sees every key.  signal=on (the default for -chardev
 * stdio and -serial stdio) keeps ISIG so Ctrl-C still stops the emulator;
 * mon:stdio turns it off, as QEMU does, and Ctrl-C goes to the guest.
 * The saved terminal modes come back at exit (atexit -> chardevs_cleanup)
 * and on fatal signals (a handler that restores them and re-raises).
 *
 * stdin is left blocking: it is only read after poll() says it is readable,
 * and making it non-blocking would also affect stdout when both are the same
 * terminal, and the user's shell after we exit.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <fcntl.h>
#include <unistd.h>

#include "chardev/char-internal.h"

static Chardev *stdio_owner;            /* only one chardev may own the terminal */
static struct termios stdio_saved_modes;
static volatile sig_atomic_t stdio_modes_changed;

static const int stdio_fatal_signals[] = {
    SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE,
    SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
};

static void stdio_restore_modes(void)
{
    if (stdio_modes_changed) {
        tcsetattr(STDIN_FILENO, TCSANOW, &stdio_saved_modes);
        stdio_modes_changed = 0;
    }
}

/* Runs in signal context: tcsetattr() and raise() are async-signal-safe. */
static void stdio_fatal_signal(int sig)
{
    int saved_errno = errno;
    stdio_restore_modes();
    /* SA_RESETHAND put the default action back; SA_NODEFER lets it fire now. */
    raise(sig);
    errno = saved_errno;
}

/*
 * Install the restore-and-die handler only where nobody else handles the
 * signal: a handler installed by main (say, a graceful exit on SIGTERM) exits
 * through atexit, which restores the terminal anyway.
 */
static void stdio_install_signal_handlers(void)
{
    static bool installed;
    if (installed) {
        return;
    }
    installed = true;
    for (size_t i = 0; i < ARRAY_LEN(stdio_fatal_signals); i++) {
        struct sigaction old, act;
        int sig = stdio_fatal_signals[i];
        if (sigaction(sig, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
            old.sa_handler != SIG_DFL) {
            continue;
        }
        memset(&act, 0, sizeof(act));
        act.sa_handler = stdio_fatal_signal;
        act.sa_flags = SA_RESETHAND | SA_NODEFER;
        sigemptyset(&act.sa_mask);
        sigaction(sig, &act, NULL);
    }
}

static void stdio_set_raw(bool allow_signals)
{
    struct termios t;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &stdio_saved_modes) != 0) {
        return;
    }
    /* A background job changing the terminal would be stopped by SIGTTOU. */
    if (tcgetpgrp(STDIN_FILENO) != getpgrp()) {
        return;
    }
    t = stdio_saved_modes;
    t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag |= OPOST;
    t.c_lflag &= ~(ECHO | ECHONL | ICANON | IEXTEN);
    if (!allow_signals) {
        t.c_lflag &= ~ISIG;
    }
    t.c_cflag &= ~(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;

    chr_register_cleanup();
    stdio_install_signal_handlers();
    stdio_modes_changed = 1;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) != 0) {
        stdio_modes_changed = 0;
    }
}

static bool stdio_open(Chardev *chr, const ChardevOpts *opts, GError **errp)
{
    bool allow_signals;

    if (stdio_owner) {
        kestrel_set_error(errp, "chardev '%s': stdio is already used by chardev '%s' "
                          "(share it with mux=on or mon:stdio)", chr->id, stdio_owner->id);
        return false;
    }
    if (!chr_opt_get_bool(chr, opts, "signal", true, &allow_signals, errp)) {
        return false;
    }
    chr->is_stdio = true;
    chr->fd_out = fcntl(STDOUT_FILENO, F_GETFL) >= 0 ? STDOUT_FILENO : -1;
    chr->fd_in = fcntl(STDIN_FILENO, F_GETFL) >= 0 ? STDIN_FILENO : -1;
    chr->write_wait_ms = CHR_WRITE_WAIT_FOREVER;    /* never lose console output */
    if (chr->fd_in >= 0) {
        stdio_set_raw(allow_signals);
    }
    stdio_owner = chr;
    return true;
}

static void stdio_input_eof(Chardev *chr)
{
    /* stdin closed (or /dev/null): stop reading, keep writing. */
    chr->fd_in = -1;
}

static void stdio_cleanup(Chardev *chr)
{
    stdio_restore_modes();
}

static const char *const stdio_opts[] = { "signal", NULL };

const ChardevDriver chardev_driver_stdio = {
    .name = "stdio",
    .opts = stdio_opts,
    .open = stdio_open,
    .input_eof = stdio_input_eof,
    .cleanup = stdio_cleanup,
};
