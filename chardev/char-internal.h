/*
 * Private interface between the chardev core (chardev/char.c) and the
 * backend drivers (char-stdio.c, char-file.c, char-pty.c, char-socket.c).
 * Nothing outside chardev/ includes this; devices use include/kestrel/chardev.h.
 *
 * The core owns: the registry of backends, option parsing, frontends and
 * their small input queues, flow control, the Ctrl-A escape handling and mux
 * focus, the fd read watch on the main loop, and the blocking write helper.
 * A driver owns: opening its fds, and what happens on end of input
 * (stdio stops reading, a socket server goes back to listening, ...).
 */
#ifndef KESTREL_CHARDEV_INTERNAL_H
#define KESTREL_CHARDEV_INTERNAL_H

#include <glib-unix.h>
#include <sys/types.h>

#include "kestrel/chardev.h"

/* Parsed "key=value" options of one -chardev. */
typedef struct ChardevOpt {
    char *key;
    char *value;
} ChardevOpt;

typedef struct ChardevOpts {
    GPtrArray *list;            /* of ChardevOpt*, in command-line order */
} ChardevOpts;

const char *chr_opt_get(const ChardevOpts *opts, const char *key);
/* on/off, yes/no, true/false, y/n; a missing key gives 'def'. */
bool chr_opt_get_bool(Chardev *chr, const ChardevOpts *opts, const char *key,
                      bool def, bool *out, GError **errp);

typedef struct ChardevDriver {
    const char *name;
    /* Option keys this backend accepts besides id= and mux=. */
    const char *const *opts;
    /* Open fds and set chr->fd_in/fd_out/connected; false with errp on failure. */
    bool (*open)(Chardev *chr, const ChardevOpts *opts, GError **errp);
    /* Optional: read from fd_in (default read(2)); same return convention. */
    ssize_t (*read)(Chardev *chr, uint8_t *buf, size_t len);
    /* Optional: read returned 0 or a hard error.  Default: stop reading. */
    void (*input_eof)(Chardev *chr);
    /* Optional: server sockets with wait=on block here until a client comes. */
    bool (*wait_for_client)(Chardev *chr, GError **errp);
    /* Optional: process exit; only async-signal-safe-ish work (restore modes, unlink). */
    void (*cleanup)(Chardev *chr);
} ChardevDriver;

#define CHR_MUX_MAX   8         /* frontends on one mux */
#define CHR_FE_QUEUE  1024      /* bytes a frontend may have pending */

struct CharFrontend {
    Chardev *chr;
    const CharFrontendOps *ops;
    void *opaque;
    uint8_t queue[CHR_FE_QUEUE]; /* input read but not yet taken by the device */
    int queue_len;
};

/* How long a write may wait for a slow fd before dropping output. */
#define CHR_WRITE_WAIT_FOREVER (-1)

struct Chardev {
    char *id;
    const ChardevDriver *drv;
    void *priv;                 /* driver state */

    int fd_in;                  /* -1: no input (file, null, disconnected socket) */
    int fd_out;                 /* -1: output dropped */
    bool out_is_socket;         /* use send(MSG_NOSIGNAL) */
    int write_wait_ms;          /* per write, without progress; or CHR_WRITE_WAIT_FOREVER */
    bool out_stalled;           /* last write timed out: don't wait again until one drains */
    bool connected;             /* peer present (sockets, pty); always true otherwise */
    bool is_stdio;

    bool escapes;               /* Ctrl-A commands are interpreted (stdio, mux) */
    bool got_escape;
    bool mux;

    GSource *in_src;            /* fd_in watch; present only while input can be taken */
    int in_src_fd;              /* the fd in_src watches */
    GSource *kick_src;          /* deferred char_fe_accept_input */

    CharFrontend *fe[CHR_MUX_MAX];
    int nfe;
    int focus;                  /* index into fe[], valid when nfe > 0 */
};

/* Driver -> core. */
void chr_set_connected(Chardev *chr, bool connected);
void chr_update_watch(Chardev *chr);
/* Write to an fd with the chardev's wait policy; returns bytes written. */
int chr_write_fd(Chardev *chr, int fd, const uint8_t *buf, int len);
/* Print a message on the backend's own output (escape help etc.). */
void chr_write_raw(Chardev *chr, const char *msg);
/* Bind an fd watch / timer to the main loop context. */
GSource *chr_add_fd_watch(int fd, GIOCondition cond, GUnixFDSourceFunc fn, void *opaque);
GSource *chr_add_timeout(unsigned ms, GSourceFunc fn, void *opaque);
void chr_source_drop(GSource **src);
void chr_set_nonblock(int fd, bool on);
void chr_register_cleanup(void);

extern const ChardevDriver chardev_driver_stdio;
extern const ChardevDriver chardev_driver_file;
extern const ChardevDriver chardev_driver_null;
extern const ChardevDriver chardev_driver_pty;
extern const ChardevDriver chardev_driver_socket;

#endif
