/*
 * aio=threads: a small pool of worker threads running blocking driver calls
 * (QEMU's thread-pool model), with completions handed back to the main loop.
 *
 * Workers push finished jobs on a mutex-protected queue and signal an eventfd;
 * a GSource on main_loop_context() watching that eventfd runs the completion
 * callbacks on the main thread, where the big lock is held (lock.h).  The
 * eventfd is a hint: the dispatcher drains the whole queue on every wakeup.
 *
 * aio=io_uring (aio-uring.c) delivers its completions the same way, from its
 * own eventfd source on the same main context; with it, this pool still runs
 * what the ring cannot (qcow2, bounced O_DIRECT requests; see block.c).
 */
#include "block/block-int.h"
#include "kestrel/machine.h"

#include <sys/eventfd.h>
#include <unistd.h>

#define AIO_THREADS_MAX 16

typedef struct CompletionSource {
    GSource source;
    gpointer tag;
} CompletionSource;

static GThreadPool *pool;
static GMutex done_lock;
static GQueue done_queue = G_QUEUE_INIT;
static int done_efd = -1;
static GOnce init_once = G_ONCE_INIT;

static gboolean completion_dispatch(GSource *src, GSourceFunc cb, gpointer data)
{
    uint64_t v;

    if (read(done_efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: a previous dispatch already consumed the count. */
    }
    for (;;) {
        g_mutex_lock(&done_lock);
        BlockAioJob *job = g_queue_pop_head(&done_queue);
        g_mutex_unlock(&done_lock);
        if (!job)
            break;
        job->done(job->opaque, job->ret);
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs completion_funcs = {
    .dispatch = completion_dispatch,
};

static void worker(gpointer data, gpointer user)
{
    BlockAioJob *job = data;
    uint64_t one = 1;

    job->ret = job->run(job);
    g_mutex_lock(&done_lock);
    g_queue_push_tail(&done_queue, job);
    g_mutex_unlock(&done_lock);
    if (write(done_efd, &one, sizeof(one)) < 0) {
        /* Counter saturated: the main loop is already woken. */
    }
}

static gpointer aio_threads_init(gpointer unused)
{
    CompletionSource *cs;

    done_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (done_efd < 0)
        g_error("block: eventfd: %s", g_strerror(errno));
    pool = g_thread_pool_new(worker, NULL, AIO_THREADS_MAX, FALSE, NULL);
    cs = (CompletionSource *)g_source_new(&completion_funcs, sizeof(*cs));
    g_source_set_name(&cs->source, "block-completions");
    cs->tag = g_source_add_unix_fd(&cs->source, done_efd, G_IO_IN);
    g_source_attach(&cs->source, main_loop_context());
    g_source_unref(&cs->source);
    return NULL;
}

void aio_threads_submit(BlockAioJob *job)
{
    g_once(&init_once, aio_threads_init, NULL);
    g_thread_pool_push(pool, job, NULL);
}
