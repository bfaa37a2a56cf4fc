/*
 * Character backend core: the registry of backends, QEMU-compatible option
 * parsing (-chardev and the -serial shorthand), frontends with flow control,
 * the Ctrl-A escape commands, the mux (several frontends on one backend,
 * focus switched with Ctrl-A c), and the write path.
 *
 * Input path (main thread, big lock held by the main loop):
 *   fd readable -> read at most "room" bytes -> escape commands -> the
 *   focused frontend's queue -> receive() as far as can_receive() allows.
 * "room" is the focused frontend's can_receive() for plain backends, so a
 * device that returns 0 stops the fd from being read at all until it calls
 * char_fe_accept_input().  Backends that interpret Ctrl-A (stdio and muxes)
 * instead read into the frontend's queue while it has space (CHR_FE_QUEUE
 * bytes), so that Ctrl-A x still works while the guest is not reading its
 * serial port; the queue drains into the device as can_receive() permits.
 *
 * Output path (any thread holding the big lock): a synchronous write to the
 * fd.  EAGAIN waits in poll(); stdio and files wait as long as it takes
 * (serial output is never lost), sockets and ptys give up after a bounded
 * wait and drop what is left.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>

#include "kestrel/machine.h"
#include "chardev/char-internal.h"

#define CTRL_A 0x01

static GPtrArray *chardevs;     /* every backend, in creation order */

static const ChardevDriver *const chardev_drivers[] = {
    &chardev_driver_stdio,
    &chardev_driver_file,
    &chardev_driver_null,
    &chardev_driver_pty,
    &chardev_driver_socket,
};

/* Options that may be given as a bare word ("server") or negated ("nowait"). */
static const char *const chr_bool_opts[] = {
    "server", "wait", "nodelay", "append", "signal", "mux", "ipv4", "ipv6",
    "telnet", "websocket", "tn3270", "logappend", "abstract", "tight",
};

/* ---- small helpers shared with the drivers ---------------------------- */

GSource *chr_add_fd_watch(int fd, GIOCondition cond, GUnixFDSourceFunc fn, void *opaque)
{
    GSource *src = g_unix_fd_source_new(fd, cond);
    g_source_set_callback(src, (GSourceFunc)(void (*)(void))fn, opaque, NULL);
    g_source_attach(src, main_loop_context());
    return src;
}

GSource *chr_add_timeout(unsigned ms, GSourceFunc fn, void *opaque)
{
    GSource *src = g_timeout_source_new(ms);
    g_source_set_callback(src, fn, opaque, NULL);
    g_source_attach(src, main_loop_context());
    return src;
}

void chr_source_drop(GSource **src)
{
    if (*src) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

void chr_set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) {
        return;
    }
    fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

static void chardevs_atexit(void)
{
    chardevs_cleanup();
}

void chr_register_cleanup(void)
{
    static bool registered;
    if (!registered) {
        registered = true;
        atexit(chardevs_atexit);
    }
}

/* ---- options ---------------------------------------------------------- */

const char *chr_opt_get(const ChardevOpts *opts, const char *key)
{
    const char *val = NULL;
    /* Later occurrences win, as with QEMU's option lists. */
    for (guint i = 0; i < opts->list->len; i++) {
        ChardevOpt *o = g_ptr_array_index(opts->list, i);
        if (strcmp(o->key, key) == 0) {
            val = o->value;
        }
    }
    return val;
}

static bool chr_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "on", "yes", "true", "y" };
    static const char *const no[] = { "off", "no", "false", "n" };
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (g_ascii_strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (g_ascii_strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

bool chr_opt_get_bool(Chardev *chr, const ChardevOpts *opts, const char *key,
                      bool def, bool *out, GError **errp)
{
    const char *val = chr_opt_get(opts, key);
    *out = def;
    if (!val) {
        return true;
    }
    if (!chr_parse_bool(val, out)) {
        kestrel_set_error(errp, "chardev '%s': invalid value '%s' for '%s' (use on or off)",
                          chr ? chr->id : "?", val, key);
        return false;
    }
    return true;
}

static bool chr_is_bool_opt(const char *key)
{
    for (size_t i = 0; i < ARRAY_LEN(chr_bool_opts); i++) {
        if (strcmp(key, chr_bool_opts[i]) == 0) {
            return true;
        }
    }
    return false;
}

static void chr_opt_free(gpointer p)
{
    ChardevOpt *o = p;
    g_free(o->key);
    g_free(o->value);
    g_free(o);
}

static ChardevOpts *chr_opts_new(void)
{
    ChardevOpts *opts = g_new0(ChardevOpts, 1);
    opts->list = g_ptr_array_new_with_free_func(chr_opt_free);
    return opts;
}

static void chr_opts_free(ChardevOpts *opts)
{
    if (opts) {
        g_ptr_array_free(opts->list, TRUE);
        g_free(opts);
    }
}

static void chr_opts_set(ChardevOpts *opts, const char *key, const char *value)
{
    ChardevOpt *o = g_new0(ChardevOpt, 1);
    o->key = g_strdup(key);
    o->value = g_strdup(value);
    g_ptr_array_add(opts->list, o);
}

/*
 * Split "a,b=c,,d" at single commas; ",," is a literal comma inside a value
 * (QEMU's escaping, needed for paths that contain commas).
 */
static GPtrArray *chr_split_commas(const char *s)
{
    GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
    GString *cur = g_string_new(NULL);
    for (const char *p = s; ; p++) {
        if (*p == ',' && p[1] == ',') {
            g_string_append_c(cur, ',');
            p++;
        } else if (*p == ',' || *p == '\0') {
            g_ptr_array_add(parts, g_string_free(cur, FALSE));
            if (*p == '\0') {
                break;
            }
            cur = g_string_new(NULL);
        } else {
            g_string_append_c(cur, *p);
        }
    }
    return parts;
}

/* Add "key=value" / "key" / "nokey" items to opts; 'what' names the option for errors. */
static bool chr_opts_parse_items(ChardevOpts *opts, GPtrArray *parts, guint first,
                                 const char *what, GError **errp)
{
    for (guint i = first; i < parts->len; i++) {
        const char *item = g_ptr_array_index(parts, i);
        const char *eq = strchr(item, '=');
        if (*item == '\0') {
            continue;           /* "a,,b" at the start or a trailing comma */
        }
        if (eq) {
            if (eq == item) {
                kestrel_set_error(errp, "%s: option '%s' has no name", what, item);
                return false;
            }
            char *key = g_strndup(item, eq - item);
            chr_opts_set(opts, key, eq + 1);
            g_free(key);
        } else if (chr_is_bool_opt(item)) {
            chr_opts_set(opts, item, "on");
        } else if (g_str_has_prefix(item, "no") && chr_is_bool_opt(item + 2)) {
            chr_opts_set(opts, item + 2, "off");
        } else {
            kestrel_set_error(errp, "%s: option '%s' needs a value (%s=...)", what, item, item);
            return false;
        }
    }
    return true;
}

/* ---- registry --------------------------------------------------------- */

Chardev *chardev_find(const char *id)
{
    if (!chardevs || !id) {
        return NULL;
    }
    for (guint i = 0; i < chardevs->len; i++) {
        Chardev *chr = g_ptr_array_index(chardevs, i);
        if (strcmp(chr->id, id) == 0) {
            return chr;
        }
    }
    return NULL;
}

const char *chardev_id(const Chardev *chr)
{
    return chr ? chr->id : NULL;
}

bool chardev_is_stdio(const Chardev *chr)
{
    return chr && chr->is_stdio;
}

static const ChardevDriver *chr_find_driver(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(chardev_drivers); i++) {
        if (strcmp(chardev_drivers[i]->name, name) == 0) {
            return chardev_drivers[i];
        }
    }
    return NULL;
}

static bool chr_driver_has_opt(const ChardevDriver *drv, const char *key)
{
    if (strcmp(key, "id") == 0 || strcmp(key, "mux") == 0) {
        return true;
    }
    for (const char *const *k = drv->opts; k && *k; k++) {
        if (strcmp(*k, key) == 0) {
            return true;
        }
    }
    return false;
}

/* QEMU's rule for ids: a letter, then letters, digits, '-', '.', '_'. */
static bool chr_id_valid(const char *id)
{
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_') {
            return false;
        }
    }
    return true;
}

static Chardev *chardev_create(const char *backend, const ChardevOpts *opts, GError **errp)
{
    const ChardevDriver *drv = chr_find_driver(backend);
    if (!drv) {
        kestrel_set_error(errp, "unknown chardev backend '%s' "
                          "(known: stdio, file, null, pty, socket)", backend);
        return NULL;
    }
    const char *id = chr_opt_get(opts, "id");
    if (!id || !*id) {
        kestrel_set_error(errp, "chardev %s: id= is required", backend);
        return NULL;
    }
    if (!chr_id_valid(id)) {
        kestrel_set_error(errp, "chardev '%s': invalid id (use letters, digits, '-', '.', '_', "
                          "starting with a letter)", id);
        return NULL;
    }
    for (guint i = 0; i < opts->list->len; i++) {
        ChardevOpt *o = g_ptr_array_index(opts->list, i);
        if (!chr_driver_has_opt(drv, o->key)) {
            kestrel_set_error(errp, "chardev '%s': unknown option '%s' for backend '%s'",
                              id, o->key, backend);
            return NULL;
        }
    }
    if (chardev_find(id)) {
        kestrel_set_error(errp, "chardev '%s': duplicate id", id);
        return NULL;
    }

    Chardev *chr = g_new0(Chardev, 1);
    chr->id = g_strdup(id);
    chr->drv = drv;
    chr->fd_in = -1;
    chr->fd_out = -1;
    chr->connected = true;
    chr->write_wait_ms = CHR_WRITE_WAIT_FOREVER;
    if (!chr_opt_get_bool(chr, opts, "mux", false, &chr->mux, errp) ||
        !drv->open(chr, opts, errp)) {
        g_free(chr->id);
        g_free(chr);
        return NULL;
    }
    chr->escapes = chr->mux || chr->is_stdio;

    if (!chardevs) {
        chardevs = g_ptr_array_new();
    }
    g_ptr_array_add(chardevs, chr);
    chr_register_cleanup();
    chr_update_watch(chr);
    return chr;
}

Chardev *chardev_new_from_opts(const char *str, GError **errp)
{
    GPtrArray *parts = chr_split_commas(str ? str : "");
    const char *backend = g_ptr_array_index(parts, 0);
    Chardev *chr = NULL;
    ChardevOpts *opts = chr_opts_new();

    if (!*backend || strchr(backend, '=')) {
        kestrel_set_error(errp, "-chardev '%s': the backend name must come first "
                          "(e.g. socket,id=ID,...)", str ? str : "");
        goto out;
    }
    if (!chr_opts_parse_items(opts, parts, 1, "-chardev", errp)) {
        goto out;
    }
    chr = chardev_create(backend, opts, errp);
out:
    chr_opts_free(opts);
    g_ptr_array_free(parts, TRUE);
    return chr;
}

/* "tcp:[HOST]:PORT" / "tcp:[V6ADDR]:PORT" -> host, port. */
static bool chr_split_host_port(const char *hp, char **host, char **port)
{
    const char *colon;
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');
        if (!close || close[1] != ':') {
            return false;
        }
        *host = g_strndup(hp + 1, close - hp - 1);
        colon = close + 1;
    } else {
        colon = strrchr(hp, ':');
        if (!colon) {
            return false;
        }
        *host = g_strndup(hp, colon - hp);
    }
    *port = g_strdup(colon + 1);
    if (!**port) {
        g_free(*host);
        g_free(*port);
        return false;
    }
    return true;
}

Chardev *chardev_new_from_shorthand(const char *spec, const char *id, GError **errp)
{
    static unsigned anon_count;
    const char *orig = spec ? spec : "";
    const char *backend = NULL;
    bool mux = false;
    Chardev *chr = NULL;
    ChardevOpts *opts = chr_opts_new();
    GPtrArray *parts = NULL;
    char *gen_id = NULL;

    spec = orig;
    if (strcmp(spec, "none") == 0) {
        goto out;
    }
    if (g_str_has_prefix(spec, "mon:")) {
        mux = true;
        spec += 4;
    }
    if (g_str_has_prefix(spec, "chardev:")) {
        chr = chardev_find(spec + 8);
        if (!chr) {
            kestrel_set_error(errp, "no chardev with id '%s' (define it with -chardev ...,id=%s)",
                              spec + 8, spec + 8);
        } else if (mux && !chr->mux) {
            kestrel_set_error(errp, "chardev '%s' needs mux=on to be shared with the monitor",
                              spec + 8);
            chr = NULL;
        }
        goto out;
    }

    if (!id) {
        do {
            g_free(gen_id);
            gen_id = g_strdup_printf("chr%u", anon_count++);
        } while (chardev_find(gen_id));
        id = gen_id;
    }
    chr_opts_set(opts, "id", id);
    if (mux) {
        chr_opts_set(opts, "mux", "on");
    }

    if (strcmp(spec, "stdio") == 0 || strcmp(spec, "null") == 0 || strcmp(spec, "pty") == 0) {
        backend = spec;
        if (mux && strcmp(spec, "stdio") == 0) {
            /* QEMU: with the monitor muxed onto stdio, Ctrl-C goes to the guest. */
            chr_opts_set(opts, "signal", "off");
        }
    } else if (g_str_has_prefix(spec, "file:")) {
        /* Everything after "file:" is the path, commas included. */
        if (!spec[5]) {
            kestrel_set_error(errp, "file: needs a path (file:PATH)");
            goto out;
        }
        backend = "file";
        chr_opts_set(opts, "path", spec + 5);
    } else if (g_str_has_prefix(spec, "tcp:")) {
        char *host, *port;
        backend = "socket";
        parts = chr_split_commas(spec + 4);
        if (!chr_split_host_port(g_ptr_array_index(parts, 0), &host, &port)) {
            kestrel_set_error(errp, "expected tcp:[HOST]:PORT[,server=on][,wait=off]");
            goto out;
        }
        chr_opts_set(opts, "host", host);
        chr_opts_set(opts, "port", port);
        g_free(host);
        g_free(port);
    } else if (g_str_has_prefix(spec, "unix:")) {
        backend = "socket";
        parts = chr_split_commas(spec + 5);
        if (!*(const char *)g_ptr_array_index(parts, 0)) {
            kestrel_set_error(errp, "expected unix:PATH[,server=on][,wait=off]");
            goto out;
        }
        chr_opts_set(opts, "path", g_ptr_array_index(parts, 0));
    } else {
        kestrel_set_error(errp, "unknown character device '%s' (use stdio, mon:stdio, null, "
                          "none, pty, file:PATH, tcp:HOST:PORT, unix:PATH or chardev:ID)", spec);
        goto out;
    }
    if (parts && !chr_opts_parse_items(opts, parts, 1, backend, errp)) {
        goto out;
    }
    chr = chardev_create(backend, opts, errp);
out:
    if (parts) {
        g_ptr_array_free(parts, TRUE);
    }
    chr_opts_free(opts);
    g_free(gen_id);
    return chr;
}

/* ---- events, focus, input --------------------------------------------- */

static CharFrontend *chr_focused(Chardev *chr)
{
    return chr->nfe ? chr->fe[chr->focus] : NULL;
}

static void chr_fe_event(CharFrontend *fe, CharEvent ev)
{
    if (fe && fe->ops->event) {
        fe->ops->event(fe->opaque, ev);
    }
}

void chr_set_connected(Chardev *chr, bool connected)
{
    if (chr->connected == connected) {
        return;
    }
    chr->connected = connected;
    chr->out_stalled = false;
    chr->got_escape = false;
    for (int i = 0; i < chr->nfe; i++) {
        chr_fe_event(chr->fe[i], connected ? CHR_EVENT_OPENED : CHR_EVENT_CLOSED);
    }
    chr_update_watch(chr);
}

static void chr_set_focus(Chardev *chr, int focus)
{
    if (chr->nfe == 0) {
        return;
    }
    chr_fe_event(chr->fe[chr->focus], CHR_EVENT_MUX_OUT);
    chr->focus = focus;
    chr_fe_event(chr->fe[chr->focus], CHR_EVENT_MUX_IN);
}

static bool chr_has_fe(const Chardev *chr, const CharFrontend *fe)
{
    for (int i = 0; i < chr->nfe; i++) {
        if (chr->fe[i] == fe) {
            return true;
        }
    }
    return false;
}

/* Hand queued input to the device as far as can_receive() allows. */
static void chr_fe_flush(CharFrontend *fe)
{
    Chardev *chr = fe->chr;
    while (fe->queue_len > 0) {
        int n = fe->ops->can_receive ? fe->ops->can_receive(fe->opaque) : fe->queue_len;
        if (n <= 0) {
            break;
        }
        if (n > fe->queue_len) {
            n = fe->queue_len;
        }
        uint8_t tmp[CHR_FE_QUEUE];
        memcpy(tmp, fe->queue, n);
        fe->queue_len -= n;
        memmove(fe->queue, fe->queue + n, fe->queue_len);
        fe->ops->receive(fe->opaque, tmp, n);
        if (!chr_has_fe(chr, fe)) {
            return;             /* the device detached from inside receive() */
        }
    }
}

static void chr_flush_all(Chardev *chr)
{
    for (int i = 0; i < chr->nfe; i++) {
        chr_fe_flush(chr->fe[i]);
    }
}

/* How many bytes the next read may take without overrunning anyone. */
static int chr_input_room(Chardev *chr)
{
    CharFrontend *fe = chr_focused(chr);
    if (chr->escapes) {
        return fe ? CHR_FE_QUEUE - fe->queue_len : CHR_FE_QUEUE;
    }
    if (!fe || fe->queue_len > 0) {
        return 0;
    }
    int n = fe->ops->can_receive ? fe->ops->can_receive(fe->opaque) : CHR_FE_QUEUE;
    return n < 0 ? 0 : n > CHR_FE_QUEUE ? CHR_FE_QUEUE : n;
}

void chr_write_raw(Chardev *chr, const char *msg)
{
    if (chr->connected && chr->fd_out >= 0) {
        chr_write_fd(chr, chr->fd_out, (const uint8_t *)msg, strlen(msg));
    }
}

static void chr_escape_help(Chardev *chr)
{
    chr_write_raw(chr,
        "\r\n"
        "C-a h    print this help\r\n"
        "C-a x    exit emulator\r\n"
        "C-a b    send break\r\n"
        "C-a c    switch between console and monitor\r\n"
        "C-a C-a  send C-a\r\n");
}

static void chr_escape_command(Chardev *chr, uint8_t c)
{
    switch (c) {
    case 'h':
    case 'H':
    case '?':
        chr_escape_help(chr);
        break;
    case 'x':
    case 'X':
        chr_write_raw(chr, "\r\nkestrel: terminated\r\n");
        machine_request_exit(0);
        break;
    case 'b':
    case 'B':
        chr_fe_event(chr_focused(chr), CHR_EVENT_BREAK);
        break;
    case 'c':
    case 'C':
        if (chr->mux && chr->nfe > 0) {
            chr_set_focus(chr, (chr->focus + 1) % chr->nfe);
        }
        break;
    default:
        break;                  /* unknown commands are swallowed */
    }
}

static void chr_input(Chardev *chr, const uint8_t *buf, int len)
{
    for (int i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (chr->escapes) {
            if (chr->got_escape) {
                chr->got_escape = false;
                if (c != CTRL_A) {
                    chr_escape_command(chr, c);
                    continue;
                }
            } else if (c == CTRL_A) {
                chr->got_escape = true;
                continue;
            }
        }
        CharFrontend *fe = chr_focused(chr);
        if (fe && fe->queue_len < CHR_FE_QUEUE) {
            fe->queue[fe->queue_len++] = c;
        }
        /* Without a frontend (or after a focus change into a full queue) input is dropped. */
    }
    chr_flush_all(chr);
}

static gboolean chr_fd_readable(int fd, GIOCondition cond, gpointer opaque)
{
    Chardev *chr = opaque;
    uint8_t buf[CHR_FE_QUEUE];

    chr_flush_all(chr);
    int room = chr_input_room(chr);
    if (room <= 0 || fd != chr->fd_in) {
        chr_update_watch(chr);
        return G_SOURCE_CONTINUE;
    }
    ssize_t n = chr->drv->read ? chr->drv->read(chr, buf, room) : read(fd, buf, room);
    if (n > 0) {
        chr_input(chr, buf, n);
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        chr_source_drop(&chr->in_src);
        if (chr->drv->input_eof) {
            chr->drv->input_eof(chr);
        } else {
            chr->fd_in = -1;
        }
        return G_SOURCE_REMOVE;
    }
    chr_update_watch(chr);
    return G_SOURCE_CONTINUE;
}

/* Main thread only: watch fd_in exactly while input can be taken. */
void chr_update_watch(Chardev *chr)
{
    bool want = chr->fd_in >= 0 && chr->connected && chr_input_room(chr) > 0;

    if (chr->in_src && (!want || chr->in_src_fd != chr->fd_in)) {
        chr_source_drop(&chr->in_src);
    }
    if (want && !chr->in_src) {
        chr->in_src = chr_add_fd_watch(chr->fd_in, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                       chr_fd_readable, chr);
        chr->in_src_fd = chr->fd_in;
    }
}

static gboolean chr_kick(gpointer opaque)
{
    Chardev *chr = opaque;
    g_source_unref(chr->kick_src);
    chr->kick_src = NULL;
    chr_flush_all(chr);
    chr_update_watch(chr);
    return G_SOURCE_REMOVE;
}

/* ---- frontend API ----------------------------------------------------- */

CharFrontend *chardev_attach(Chardev *chr, const CharFrontendOps *ops, void *opaque,
                             GError **errp)
{
    if (!chr) {
        kestrel_set_error(errp, "no chardev to attach to");
        return NULL;
    }
    if (!ops || !ops->receive) {
        kestrel_set_error(errp, "chardev '%s': frontend has no receive handler", chr->id);
        return NULL;
    }
    if (!chr->mux && chr->nfe >= 1) {
        kestrel_set_error(errp, "chardev '%s' is already in use by another device "
                          "(give it mux=on to share it)", chr->id);
        return NULL;
    }
    if (chr->nfe >= CHR_MUX_MAX) {
        kestrel_set_error(errp, "chardev '%s': too many frontends on one mux (at most %d)",
                          chr->id, CHR_MUX_MAX);
        return NULL;
    }
    CharFrontend *fe = g_new0(CharFrontend, 1);
    fe->chr = chr;
    fe->ops = ops;
    fe->opaque = opaque;
    chr->fe[chr->nfe++] = fe;

    if (chr->connected) {
        chr_fe_event(fe, CHR_EVENT_OPENED);
    }
    /* The newest frontend takes the focus, as with QEMU's mux. */
    if (chr->mux) {
        if (chr->nfe > 1) {
            chr_fe_event(chr->fe[chr->focus], CHR_EVENT_MUX_OUT);
        }
        chr->focus = chr->nfe - 1;
        chr_fe_event(fe, CHR_EVENT_MUX_IN);
    } else {
        chr->focus = 0;
    }
    chr_update_watch(chr);
    return fe;
}

void char_fe_detach(CharFrontend *fe)
{
    if (!fe) {
        return;
    }
    Chardev *chr = fe->chr;
    int idx = 0;
    while (idx < chr->nfe && chr->fe[idx] != fe) {
        idx++;
    }
    if (idx < chr->nfe) {
        bool had_focus = idx == chr->focus;
        memmove(&chr->fe[idx], &chr->fe[idx + 1], (chr->nfe - idx - 1) * sizeof(chr->fe[0]));
        chr->fe[--chr->nfe] = NULL;
        if (chr->focus > idx || chr->focus >= chr->nfe) {
            chr->focus = chr->focus > 0 ? chr->focus - 1 : 0;
        }
        if (had_focus && chr->mux && chr->nfe > 0) {
            chr_fe_event(chr->fe[chr->focus], CHR_EVENT_MUX_IN);
        }
    }
    g_free(fe);
    chr_update_watch(chr);
}

int chr_write_fd(Chardev *chr, int fd, const uint8_t *buf, int len)
{
    int done = 0;
    gint64 wait_start = 0;

    while (done < len) {
        ssize_t n;
        if (chr->out_is_socket) {
            n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
        } else {
            n = write(fd, buf + done, len - done);
        }
        if (n > 0) {
            done += n;
            wait_start = 0;
            chr->out_stalled = false;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A stalled reader gets one bounded wait, not one per byte. */
            if (chr->out_stalled) {
                break;
            }
            gint64 now = g_get_monotonic_time();
            if (!wait_start) {
                wait_start = now;
            } else if (chr->write_wait_ms != CHR_WRITE_WAIT_FOREVER &&
                       now - wait_start >= (gint64)chr->write_wait_ms * 1000) {
                chr->out_stalled = true;
                break;
            }
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            if (poll(&p, 1, 20) > 0 && !(p.revents & POLLOUT) &&
                (p.revents & (POLLERR | POLLHUP | POLLNVAL))) {
                break;
            }
            continue;
        }
        break;                  /* peer gone (EPIPE, ECONNRESET, EIO) or no progress */
    }
    return done;
}

int char_fe_write(CharFrontend *fe, const uint8_t *buf, int len)
{
    if (!fe || len <= 0) {
        return 0;
    }
    Chardev *chr = fe->chr;
    if (!chr->connected) {
        return 0;               /* nobody there: output is dropped */
    }
    if (chr->fd_out < 0) {
        return len;             /* null backend */
    }
    return chr_write_fd(chr, chr->fd_out, buf, len);
}

void char_fe_accept_input(CharFrontend *fe)
{
    if (!fe) {
        return;
    }
    Chardev *chr = fe->chr;
    /*
     * May run in a vCPU thread (under the big lock): only queue the work for
     * the main loop, which flushes the queue and re-arms the fd watch.
     */
    if (!chr->kick_src) {
        chr->kick_src = g_idle_source_new();
        /* Default priority: a busy loop of timers must not starve input forever. */
        g_source_set_priority(chr->kick_src, G_PRIORITY_DEFAULT);
        g_source_set_callback(chr->kick_src, chr_kick, chr, NULL);
        g_source_attach(chr->kick_src, main_loop_context());
    }
}

bool char_fe_connected(const CharFrontend *fe)
{
    return fe && fe->chr->connected;
}

/* ---- start-up and exit ------------------------------------------------ */

bool chardevs_wait_for_clients(GError **errp)
{
    if (!chardevs) {
        return true;
    }
    for (guint i = 0; i < chardevs->len; i++) {
        Chardev *chr = g_ptr_array_index(chardevs, i);
        if (chr->drv->wait_for_client && !chr->drv->wait_for_client(chr, errp)) {
            return false;
        }
    }
    return true;
}

void chardevs_cleanup(void)
{
    if (!chardevs) {
        return;
    }
    for (guint i = 0; i < chardevs->len; i++) {
        Chardev *chr = g_ptr_array_index(chardevs, i);
        if (chr->drv->cleanup) {
            chr->drv->cleanup(chr);
        }
    }
}
