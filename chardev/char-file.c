/*
 * file and null backends.
 *
 * file,path=P[,append=on]: guest output goes to P, created if needed and
 * truncated unless append=on.  There is no input.  Writes block until done,
 * so nothing the guest prints is lost.
 * null: output is discarded, there is never input.
 */
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "chardev/char-internal.h"

static bool file_open(Chardev *chr, const ChardevOpts *opts, GError **errp)
{
    const char *path = chr_opt_get(opts, "path");
    bool append;

    if (!path || !*path) {
        kestrel_set_error(errp, "chardev '%s': file needs path=FILE", chr->id);
        return false;
    }
    if (!chr_opt_get_bool(chr, opts, "append", false, &append, errp)) {
        return false;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
    if (fd < 0) {
        kestrel_set_error(errp, "chardev '%s': cannot open '%s': %s",
                          chr->id, path, g_strerror(errno));
        return false;
    }
    chr->fd_out = fd;
    chr->write_wait_ms = CHR_WRITE_WAIT_FOREVER;
    return true;
}

static const char *const file_opts[] = { "path", "append", NULL };

const ChardevDriver chardev_driver_file = {
    .name = "file",
    .opts = file_opts,
    .open = file_open,
};

static bool null_open(Chardev *chr, const ChardevOpts *opts, GError **errp)
{
    return true;                /* fd_out < 0 and connected: writes succeed and vanish */
}

const ChardevDriver chardev_driver_null = {
    .name = "null",
    .open = null_open,
};
