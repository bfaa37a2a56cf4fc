/*
 * socket backend: a byte stream over TCP (host=,port=) or a Unix-domain
 * socket (path=), as a server (server=on) or a client.
 *
 * QEMU semantics:
 * - A server listens from the moment the backend is created and serves one
 *   client at a time; when that client goes away it listens again.  With
 *   wait=on (the default for servers) start-up blocks in
 *   chardevs_wait_for_clients() until the first client connects.
 * - A client connects when the backend is created, and start-up fails if it
 *   cannot.  Without reconnect (not implemented) a client that loses its
 *   peer stays disconnected.
 * - Output while nobody is connected is dropped.
 * Legacy spellings "server" and "nowait" are handled by the option parser.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "chardev/char-internal.h"

typedef struct SocketState {
    bool server;
    bool wait;
    bool nodelay;
    bool is_unix;
    char *desc;                 /* "unix:PATH" or "tcp:HOST:PORT", for messages */
    char *path;                 /* unix socket path */
    bool unlink_path;           /* we created the server socket file */
    int listen_fd;
    int conn_fd;
    GSource *listen_src;
} SocketState;

static void socket_listen_watch(Chardev *chr);

static void socket_use_conn(Chardev *chr, int fd)
{
    SocketState *s = chr->priv;
    int one = 1;

    chr_set_nonblock(fd, true);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    if (s->nodelay && !s->is_unix) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    s->conn_fd = fd;
    chr->fd_in = fd;
    chr->fd_out = fd;
    chr_source_drop(&s->listen_src);    /* one client at a time */
    chr_set_connected(chr, true);
}

static bool socket_accept(Chardev *chr)
{
    SocketState *s = chr->priv;
    int fd;
    do {
        fd = accept(s->listen_fd, NULL, NULL);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return false;
    }
    socket_use_conn(chr, fd);
    return true;
}

static gboolean socket_listen_ready(int fd, GIOCondition cond, gpointer opaque)
{
    Chardev *chr = opaque;
    SocketState *s = chr->priv;
    if (s->conn_fd < 0) {
        socket_accept(chr);
    }
    return G_SOURCE_CONTINUE;   /* socket_use_conn() already destroyed us on success */
}

static void socket_listen_watch(Chardev *chr)
{
    SocketState *s = chr->priv;
    if (s->listen_fd >= 0 && s->conn_fd < 0 && !s->listen_src) {
        s->listen_src = chr_add_fd_watch(s->listen_fd, G_IO_IN, socket_listen_ready, chr);
    }
}

static int socket_unix_addr(SocketState *s, struct sockaddr_un *sun, GError **errp,
                            const char *id)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(s->path) >= sizeof(sun->sun_path)) {
        kestrel_set_error(errp, "chardev '%s': socket path '%s' is too long (at most %zu bytes)",
                          id, s->path, sizeof(sun->sun_path) - 1);
        return -1;
    }
    strcpy(sun->sun_path, s->path);
    return 0;
}

static int socket_unix_open(Chardev *chr, SocketState *s, GError **errp)
{
    struct sockaddr_un sun;
    struct stat st;

    if (socket_unix_addr(s, &sun, errp, chr->id) < 0) {
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        kestrel_set_error(errp, "chardev '%s': socket(): %s", chr->id, g_strerror(errno));
        return -1;
    }
    if (s->server) {
        /* A stale socket from an earlier run would make bind() fail; other files are kept. */
        if (lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(s->path);
        }
        if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, 1) < 0) {
            kestrel_set_error(errp, "chardev '%s': cannot listen on %s: %s",
                              chr->id, s->desc, g_strerror(errno));
            close(fd);
            return -1;
        }
        s->unlink_path = true;
    } else if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        kestrel_set_error(errp, "chardev '%s': cannot connect to %s: %s",
                          chr->id, s->desc, g_strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int socket_tcp_open(Chardev *chr, SocketState *s, const char *host, const char *port,
                           int family, GError **errp)
{
    struct addrinfo hints, *res, *ai;
    int err, fd = -1, last_errno = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    if (s->server) {
        hints.ai_flags = AI_PASSIVE;
    }
    if (!*host) {
        host = s->server ? NULL : "localhost";  /* "tcp::PORT" serves every address */
    }
    err = getaddrinfo(host, port, &hints, &res);
    if (err) {
        kestrel_set_error(errp, "chardev '%s': cannot resolve %s: %s",
                          chr->id, s->desc, gai_strerror(err));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        int one = 1, zero = 0;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (s->server) {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (ai->ai_family == AF_INET6 && family != AF_INET6) {
                /* Dual-stack: "::" also takes IPv4 clients. */
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
            }
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1) == 0) {
                break;
            }
        } else if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        kestrel_set_error(errp, "chardev '%s': cannot %s %s: %s", chr->id,
                          s->server ? "listen on" : "connect to", s->desc,
                          g_strerror(last_errno ? last_errno : EADDRNOTAVAIL));
    }
    return fd;
}

static bool socket_open(Chardev *chr, const ChardevOpts *opts, GError **errp)
{
    const char *path = chr_opt_get(opts, "path");
    const char *host = chr_opt_get(opts, "host");
    const char *port = chr_opt_get(opts, "port");
    bool ipv4, ipv6;
    SocketState st = { .listen_fd = -1, .conn_fd = -1 };
    int fd;

    if (!chr_opt_get_bool(chr, opts, "server", false, &st.server, errp) ||
        !chr_opt_get_bool(chr, opts, "wait", st.server, &st.wait, errp) ||
        !chr_opt_get_bool(chr, opts, "nodelay", false, &st.nodelay, errp) ||
        !chr_opt_get_bool(chr, opts, "ipv4", false, &ipv4, errp) ||
        !chr_opt_get_bool(chr, opts, "ipv6", false, &ipv6, errp)) {
        return false;
    }
    if (path && (host || port)) {
        kestrel_set_error(errp, "chardev '%s': give either path= (unix) or host=,port= (tcp), "
                          "not both", chr->id);
        return false;
    }
    if (path) {
        if (!*path) {
            kestrel_set_error(errp, "chardev '%s': path= is empty", chr->id);
            return false;
        }
        st.is_unix = true;
        st.path = g_strdup(path);
        st.desc = g_strdup_printf("unix:%s", path);
        fd = socket_unix_open(chr, &st, errp);
    } else {
        if (!port || !*port) {
            kestrel_set_error(errp, "chardev '%s': socket needs path=PATH or port=PORT", chr->id);
            return false;
        }
        if (!host) {
            host = "";
        }
        int family = ipv4 && !ipv6 ? AF_INET : ipv6 && !ipv4 ? AF_INET6 : AF_UNSPEC;
        st.desc = g_strdup_printf(strchr(host, ':') ? "tcp:[%s]:%s" : "tcp:%s:%s", host, port);
        fd = socket_tcp_open(chr, &st, host, port, family, errp);
    }
    if (fd < 0) {
        g_free(st.path);
        g_free(st.desc);
        return false;
    }

    SocketState *s = g_new(SocketState, 1);
    *s = st;
    chr->priv = s;
    chr->out_is_socket = true;
    chr->write_wait_ms = 1000;  /* a peer that stops reading loses output, the guest goes on */
    if (s->server) {
        s->listen_fd = fd;
        chr_set_nonblock(fd, true);
        chr->connected = false;
        if (!s->is_unix) {
            /* Report the real port when port=0 asked the kernel to pick one. */
            struct sockaddr_storage ss;
            socklen_t len = sizeof(ss);
            char hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
            if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
                getnameinfo((struct sockaddr *)&ss, len, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
                            NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
                g_free(s->desc);
                s->desc = g_strdup_printf(strchr(hbuf, ':') ? "tcp:[%s]:%s" : "tcp:%s:%s",
                                          hbuf, pbuf);
            }
        }
        socket_listen_watch(chr);
    } else {
        chr->connected = false;
        socket_use_conn(chr, fd);
    }
    return true;
}

static void socket_input_eof(Chardev *chr)
{
    SocketState *s = chr->priv;

    if (s->conn_fd >= 0) {
        close(s->conn_fd);
        s->conn_fd = -1;
    }
    chr->fd_in = -1;
    chr->fd_out = -1;
    chr_set_connected(chr, false);
    socket_listen_watch(chr);   /* a server takes the next client */
}

static bool socket_wait_for_client(Chardev *chr, GError **errp)
{
    SocketState *s = chr->priv;

    if (!s->server || !s->wait || s->conn_fd >= 0) {
        return true;
    }
    s->wait = false;            /* only start-up waits */
    fprintf(stderr, "kestrel: waiting for connection on: %s,server=on\n", s->desc);
    for (;;) {
        struct pollfd p = { .fd = s->listen_fd, .events = POLLIN };
        int r = poll(&p, 1, -1);
        if (r < 0 && errno != EINTR) {
            kestrel_set_error(errp, "chardev '%s': waiting for a client on %s: %s",
                              chr->id, s->desc, g_strerror(errno));
            return false;
        }
        if (r > 0 && socket_accept(chr)) {
            return true;
        }
        if (r > 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED &&
            errno != EINTR) {
            kestrel_set_error(errp, "chardev '%s': accepting a client on %s: %s",
                              chr->id, s->desc, g_strerror(errno));
            return false;
        }
    }
}

static void socket_cleanup(Chardev *chr)
{
    SocketState *s = chr->priv;
    if (s->unlink_path) {
        unlink(s->path);
        s->unlink_path = false;
    }
}

static const char *const socket_opts[] = {
    "path", "host", "port", "server", "wait", "nodelay", "ipv4", "ipv6", NULL
};

const ChardevDriver chardev_driver_socket = {
    .name = "socket",
    .opts = socket_opts,
    .open = socket_open,
    .input_eof = socket_input_eof,
    .wait_for_client = socket_wait_for_client,
    .cleanup = socket_cleanup,
};
