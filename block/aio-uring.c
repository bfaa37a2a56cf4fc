/*
 * aio=io_uring: host-file reads, writes, fdatasync and fallocate submitted to
 * a Linux io_uring (io_uring_setup(2), io_uring_enter(2); liburing), with
 * completions handed back to the main loop exactly like aio-threads.c: the
 * op's done() callback runs on the main thread, from a GSource on
 * main_loop_context(), never inside aio_uring_submit().
 *
 * One ring for the whole process, not one per BlockBackend.  Every completion
 * is delivered on the one main loop anyway, so one ring means one eventfd,
 * one GSource and one io_uring_enter() per batch however many drives there
 * are; a ring takes any fd, and its 128 entries are far more than the queue
 * depth of the devices we model (QEMU likewise has one ring per AioContext,
 * i.e. per event loop, not per drive).
 *
 * Wake-up: an eventfd registered with io_uring_register_eventfd() is
 * signalled by the kernel for every CQE posted.  The dispatcher reads the
 * eventfd first and only then reaps the CQ, so a CQE posted after the reap
 * signals it again.
 *
 * Submission may come from any thread (device code runs under the big lock
 * on vCPU threads; tools from the main thread), so the SQ, the in-flight
 * count and the wait list sit under ring_lock.  Callbacks run with ring_lock
 * dropped: they usually submit the next request.  Ops beyond the ring's size
 * wait on a list and go in as completions free entries, so the CQ (twice the
 * SQ) can never overflow.
 *
 * This file only moves ops through the kernel.  Which requests may use it
 * (raw over a host file, O_DIRECT-aligned), short transfers, write-through
 * and the fallbacks to the thread pool are block.c's business.
 */
#include "block/block-int.h"
#include "kestrel/machine.h"

#ifdef CONFIG_IO_URING

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define URING_ENTRIES 128

typedef struct UringSource {
    GSource source;
    gpointer tag;
} UringSource;

static struct io_uring ring;
static GMutex ring_lock;
static int ring_efd = -1;
static int ring_err;               /* 0 after a good setup, else -errno of the setup */
static bool ring_tried;
static unsigned ring_inflight;     /* ops holding an SQE or a CQE */
static bool ring_unsubmitted;      /* SQEs queued that io_uring_enter() has not taken */
static GQueue ring_waiting = G_QUEUE_INIT;  /* no SQE yet */
static guint retry_timer;

static void uring_prep(struct io_uring_sqe *sqe, AioUringOp *op)
{
    switch (op->opcode) {
    case AIO_URING_READV:
        io_uring_prep_readv(sqe, op->fd, op->iov, op->niov, op->offset);
        break;
    case AIO_URING_WRITEV:
        io_uring_prep_writev(sqe, op->fd, op->iov, op->niov, op->offset);
        break;
    case AIO_URING_FDATASYNC:
        io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
        break;
    case AIO_URING_FALLOCATE:
        io_uring_prep_fallocate(sqe, op->fd, op->mode, op->offset, op->len);
        break;
    default:
        io_uring_prep_nop(sqe);
        break;
    }
    io_uring_sqe_set_data(sqe, op);
}

static gboolean uring_retry(gpointer unused);

/* Give waiting ops SQEs while the ring has room, then enter the kernel.  ring_lock held. */
static void uring_flush_locked(void)
{
    static bool warned;

    while (ring_inflight < URING_ENTRIES && !g_queue_is_empty(&ring_waiting)) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        if (!sqe)
            break;
        uring_prep(sqe, g_queue_pop_head(&ring_waiting));
        ring_inflight++;
        ring_unsubmitted = true;
    }
    while (ring_unsubmitted) {
        int r = io_uring_submit(&ring);
        if (r == -EINTR)
            continue;
        if (r >= 0 && io_uring_sq_ready(&ring) == 0) {
            ring_unsubmitted = false;
            break;
        }
        if (r > 0)
            continue;               /* took some: offer the rest */
        /*
         * EAGAIN/EBUSY: kernel short of memory or CQ momentarily full.  The
         * SQEs stay in the ring (they cannot be taken back), so retry on the
         * next completion, or from a timer when nothing in flight would
         * produce one.  Anything else should not happen after a good setup:
         * say so once and keep retrying rather than lose requests.
         */
        if (r < 0 && r != -EAGAIN && r != -EBUSY && !warned) {
            warned = true;
            g_warning("block: io_uring_enter: %s (retrying)", g_strerror(-r));
        }
        if (!retry_timer) {
            GSource *t = g_timeout_source_new(1);
            g_source_set_callback(t, uring_retry, NULL, NULL);
            retry_timer = g_source_attach(t, main_loop_context());
            g_source_unref(t);
        }
        break;
    }
}

static gboolean uring_retry(gpointer unused)
{
    g_mutex_lock(&ring_lock);
    retry_timer = 0;
    uring_flush_locked();
    g_mutex_unlock(&ring_lock);
    return G_SOURCE_REMOVE;
}

static gboolean uring_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    GQueue done = G_QUEUE_INIT;
    struct io_uring_cqe *cqe;
    uint64_t v;

    if (read(ring_efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: an earlier dispatch already consumed the count. */
    }
    g_mutex_lock(&ring_lock);
    while (io_uring_peek_cqe(&ring, &cqe) == 0) {
        AioUringOp *op = io_uring_cqe_get_data(cqe);
        op->res = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
        ring_inflight--;
        g_queue_push_tail(&done, op);
    }
    uring_flush_locked();
    g_mutex_unlock(&ring_lock);

    AioUringOp *op;
    while ((op = g_queue_pop_head(&done)))
        op->done(op, op->res);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs uring_funcs = {
    .dispatch = uring_dispatch,
};

bool aio_uring_init(GError **errp)
{
    g_mutex_lock(&ring_lock);
    if (!ring_tried) {
        ring_tried = true;
        ring_err = io_uring_queue_init(URING_ENTRIES, &ring, 0);
        if (ring_err == 0) {
            ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (ring_efd < 0) {
                ring_err = -errno;
            } else if ((ring_err = io_uring_register_eventfd(&ring, ring_efd)) < 0) {
                close(ring_efd);
                ring_efd = -1;
            }
            if (ring_err < 0)
                io_uring_queue_exit(&ring);
        }
        if (ring_err == 0) {
            UringSource *us = (UringSource *)g_source_new(&uring_funcs, sizeof(*us));
            g_source_set_name(&us->source, "block-io-uring");
            us->tag = g_source_add_unix_fd(&us->source, ring_efd, G_IO_IN);
            g_source_attach(&us->source, main_loop_context());
            g_source_unref(&us->source);
        }
    }
    int err = ring_err;
    g_mutex_unlock(&ring_lock);
    if (err == 0)
        return true;
    /* io_uring_setup(2) ERRORS, and what a sandbox makes it return. */
    const char *why = err == -ENOSYS ? " (kernel without io_uring, or a seccomp filter)"
                    : err == -EPERM || err == -EACCES
                          ? " (kernel.io_uring_disabled or a seccomp filter)"
                    : err == -ENOMEM ? " (RLIMIT_MEMLOCK too low on older kernels?)" : "";
    kestrel_set_error(errp, "aio=io_uring: cannot set up an io_uring ring: %s%s; use aio=threads",
                      g_strerror(-err), why);
    return false;
}

void aio_uring_submit(AioUringOp *op)
{
    g_mutex_lock(&ring_lock);
    if (ring_err || !ring_tried)
        g_error("block: aio_uring_submit before a successful aio_uring_init");
    g_queue_push_tail(&ring_waiting, op);
    uring_flush_locked();
    g_mutex_unlock(&ring_lock);
}

#else /* !CONFIG_IO_URING */

bool aio_uring_init(GError **errp)
{
    kestrel_set_error(errp, "aio=io_uring: not built in (configured without liburing: "
                      "install liburing-dev and rerun ./configure); use aio=threads");
    return false;
}

void aio_uring_submit(AioUringOp *op)
{
    g_error("block: aio_uring_submit in a build without io_uring");
}

#endif
