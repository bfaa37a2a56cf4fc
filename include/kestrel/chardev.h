/*
 * Character backends (chardev/): stdio, file, null, pty, tcp/unix sockets
 * (server and client, wait/nowait), and mux (mon:stdio) which lets several
 * frontends share one backend, switched with Ctrl-A c.
 *
 * A device (frontend) attaches to a backend and gets a CharFrontend handle.
 * Input is delivered on the main loop with the big lock held: the backend
 * calls can_receive() and then receive() with at most that many bytes.  When
 * a device that returned 0 from can_receive() has room again, it calls
 * char_fe_accept_input() so the backend resumes reading.
 */
#ifndef KESTREL_CHARDEV_H
#define KESTREL_CHARDEV_H

#include "kestrel/common.h"

typedef struct Chardev Chardev;
typedef struct CharFrontend CharFrontend;

typedef enum {
    CHR_EVENT_OPENED,       /* peer connected (sockets) or backend ready */
    CHR_EVENT_CLOSED,       /* peer went away */
    CHR_EVENT_BREAK,        /* serial break (Ctrl-A b on stdio) */
    CHR_EVENT_MUX_IN,       /* this frontend now has the mux focus */
    CHR_EVENT_MUX_OUT,
} CharEvent;

typedef struct CharFrontendOps {
    int (*can_receive)(void *opaque);
    void (*receive)(void *opaque, const uint8_t *buf, int len);
    void (*event)(void *opaque, CharEvent event);     /* may be NULL */
} CharFrontendOps;

/*
 * "-chardev BACKEND,id=ID[,opts]": stdio[,signal=on|off], file,path=P[,append=on],
 * null, pty, socket,host=H,port=P | socket,path=P [,server=on|off][,wait=on|off],
 * ringbuf... (unknown backends are an error).  mux=on makes it a mux.
 */
Chardev *chardev_new_from_opts(const char *opts, GError **errp);
/*
 * The -serial/-monitor/-debugcon shorthand: "stdio", "mon:stdio", "null",
 * "none", "pty", "file:PATH", "tcp:[HOST]:PORT[,server=on][,wait=off]",
 * "unix:PATH[,server=on,...]", "chardev:ID".  'id' names the created backend.
 * Returns NULL without error for "none".
 */
Chardev *chardev_new_from_shorthand(const char *spec, const char *id, GError **errp);
Chardev *chardev_find(const char *id);
const char *chardev_id(const Chardev *chr);
/* True if this backend is (or muxes) the terminal on stdin/stdout. */
bool chardev_is_stdio(const Chardev *chr);

/*
 * Attach a frontend.  A plain backend takes one frontend (a second attach is
 * an error); a mux takes several and gives input to the focused one.
 */
CharFrontend *chardev_attach(Chardev *chr, const CharFrontendOps *ops, void *opaque,
                             GError **errp);
void char_fe_detach(CharFrontend *fe);
/* Write all of buf, blocking briefly if the backend is slow; returns bytes written
 * (len, or less if the peer is gone: output to a closed socket is dropped). */
int char_fe_write(CharFrontend *fe, const uint8_t *buf, int len);
void char_fe_accept_input(CharFrontend *fe);
bool char_fe_connected(const CharFrontend *fe);

/* Server sockets with wait=on block start-up until a client connects. */
bool chardevs_wait_for_clients(GError **errp);
/* Restore terminal modes etc. Safe to call more than once; also runs atexit. */
void chardevs_cleanup(void);

#endif
