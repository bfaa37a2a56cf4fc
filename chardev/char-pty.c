/*
 * pty backend: a pseudo-terminal whose slave side (/dev/pts/N) a user opens
 * with screen, minicom or socat.  The path is announced on stderr the way
 * QEMU does it: "char device redirected to /dev/pts/N (label ID)".
 *
 * We close our copy of the slave right away, so the master reports POLLHUP
 * (and read() fails with EIO) whenever no one has the slave open.  While
 * nobody is connected guest output is dropped rather than piling up in the
 * kernel buffer, and a 1-second timer polls for someone to open the slave.
 * The slave is set to raw mode before we let go of it, so the guest's bytes
 * pass through untranslated.
 */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <string.h>
#include <termios.h>
#include <fcntl.h>
#include <unistd.h>

#include "chardev/char-internal.h"

#define PTY_POLL_MS 1000

typedef struct PtyState {
    char *path;
    int master;
    GSource *timer;
} PtyState;

static bool pty_slave_open(PtyState *s)
{
    struct pollfd p = { .fd = s->master, .events = POLLIN };
    return poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP);
}

static gboolean pty_poll_timer(gpointer opaque)
{
    Chardev *chr = opaque;
    PtyState *s = chr->priv;

    if (!pty_slave_open(s)) {
        return G_SOURCE_CONTINUE;
    }
    g_source_unref(s->timer);
    s->timer = NULL;
    chr_set_connected(chr, true);
    return G_SOURCE_REMOVE;
}

static void pty_start_polling(Chardev *chr)
{
    PtyState *s = chr->priv;
    if (!s->timer) {
        s->timer = chr_add_timeout(PTY_POLL_MS, pty_poll_timer, chr);
    }
}

static bool pty_open(Chardev *chr, const ChardevOpts *opts, GError **errp)
{
    int master, slave;
    struct termios t;

    if (openpty(&master, &slave, NULL, NULL, NULL) != 0) {
        kestrel_set_error(errp, "chardev '%s': cannot create a pty: %s",
                          chr->id, g_strerror(errno));
        return false;
    }
    const char *name = ptsname(master);
    if (!name) {
        kestrel_set_error(errp, "chardev '%s': cannot name the pty: %s",
                          chr->id, g_strerror(errno));
        close(master);
        close(slave);
        return false;
    }
    if (tcgetattr(slave, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(slave, TCSANOW, &t);
    }
    close(slave);
    fcntl(master, F_SETFD, FD_CLOEXEC);
    chr_set_nonblock(master, true);

    PtyState *s = g_new0(PtyState, 1);
    s->path = g_strdup(name);
    s->master = master;
    chr->priv = s;
    chr->fd_in = master;
    chr->fd_out = master;
    chr->write_wait_ms = 1000;      /* a stuck reader must not stall the guest for long */
    chr->connected = pty_slave_open(s);
    if (!chr->connected) {
        pty_start_polling(chr);
    }
    fprintf(stderr, "char device redirected to %s (label %s)\n", s->path, chr->id);
    return true;
}

static void pty_input_eof(Chardev *chr)
{
    /* EIO: the last holder of the slave closed it. */
    chr_set_connected(chr, false);
    pty_start_polling(chr);
}

const ChardevDriver chardev_driver_pty = {
    .name = "pty",
    .open = pty_open,
    .input_eof = pty_input_eof,
};
