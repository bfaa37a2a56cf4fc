/*
 * Translated-block cache: a hash on (physical PC, mode) plus per-physical-
 * page lists, so that a write to a page holding code (CPU store, DMA, a
 * loader) invalidates exactly the blocks overlapping the written bytes.
 *
 * Invalidated blocks are unlinked at once but freed only at a block
 * boundary of the vCPU thread (tb_reap), because the interpreter may be in
 * the middle of one: their ops are rewritten to OP_EXIT so that a block
 * that modified itself stops after the current instruction.
 *
 * tb_lock protects everything here; it is an engine-private lock taken
 * after the big lock when both are needed (include/kestrel/lock.h).
 */
#include "accel/tcg/tb.h"

#define TB_HASH_BITS 16
#define TB_HASH_SIZE (1u << TB_HASH_BITS)

static GMutex tb_lock;
static TranslatedBlock **tb_hash;
static GHashTable *tb_pages;            /* page number -> TranslatedBlock* head */
static TranslatedBlock *tb_dead;
unsigned long tb_free_gen;
uint32_t tb_link_epoch = 1;
static unsigned tb_live, tb_dead_count;

const char *const tcg_op_names[OP__COUNT] = {
#define TCG_OP_NAME(n) [OP_##n] = #n,
    TCG_OP_LIST(TCG_OP_NAME)
#undef TCG_OP_NAME
};

static inline unsigned tb_hash_fn(uint64_t pc, uint32_t flags)
{
    uint64_t h = (pc ^ (pc >> 17) ^ ((uint64_t)flags << 7)) * 0x9e3779b97f4a7c15ull;
    return (unsigned)(h >> (64 - TB_HASH_BITS));
}

void tb_cache_init(void)
{
    if (tb_hash)
        return;
    g_mutex_init(&tb_lock);
    tb_hash = g_new0(TranslatedBlock *, TB_HASH_SIZE);
    tb_pages = g_hash_table_new(g_int64_hash, g_int64_equal);
}

TranslatedBlock *tb_alloc(unsigned n_ops)
{
    size_t size = sizeof(TranslatedBlock) + (n_ops + 1) * sizeof(DecodedOp);
    void *p;
    if (posix_memalign(&p, 64, size))           /* tb.h: ops[] starts a cache line */
        g_error("tb_alloc: out of memory (%zu bytes)", size);
    TranslatedBlock *tb = memset(p, 0, size);
    tb->page2 = UINT64_MAX;
    return tb;
}

/* Page-list heads are stored in the hash table keyed by a heap uint64. */
static TranslatedBlock **page_head(uint64_t page, bool create)
{
    uint64_t key = page >> 12;
    TranslatedBlock **head = g_hash_table_lookup(tb_pages, &key);
    if (!head && create) {
        /* One allocation: key followed by the head pointer. */
        struct { uint64_t key; TranslatedBlock *head; } *n = g_new0(typeof(*n), 1);
        n->key = key;
        g_hash_table_insert(tb_pages, &n->key, &n->head);
        head = &n->head;
    }
    return head;
}

static void page_remove_if_empty(uint64_t page)
{
    uint64_t key = page >> 12;
    TranslatedBlock **head = g_hash_table_lookup(tb_pages, &key);
    if (head && !*head) {
        gpointer orig_key = NULL;
        if (g_hash_table_lookup_extended(tb_pages, &key, &orig_key, NULL)) {
            g_hash_table_remove(tb_pages, &key);
            g_free(orig_key);       /* the node starts with the key */
        }
    }
}

/* In page P's list a block links through page_next[0] if P is its first page. */
static inline int page_link(const TranslatedBlock *t, uint64_t page)
{
    return (t->pc_phys & ~0xfffull) == page ? 0 : 1;
}

unsigned tb_insert(TranslatedBlock *tb)
{
    unsigned newpages = 0;
    g_mutex_lock(&tb_lock);
    unsigned h = tb_hash_fn(tb->pc_phys, tb->flags);
    tb->hash_next = tb_hash[h];
    tb_hash[h] = tb;
    for (int i = 0; i < 2; i++) {
        uint64_t page = i == 0 ? tb->pc_phys & ~0xfffull : tb->page2;
        if (page == UINT64_MAX)
            continue;
        TranslatedBlock **head = page_head(page, true);
        if (!*head)
            newpages |= 1u << i;
        tb->page_next[i] = *head;
        tb->page_pprev[i] = head;
        if (*head)
            (*head)->page_pprev[page_link(*head, page)] = &tb->page_next[i];
        *head = tb;
    }
    tb_live++;
    g_mutex_unlock(&tb_lock);
    return newpages;
}

TranslatedBlock *tb_find(uint64_t pc_phys, uint32_t flags)
{
    g_mutex_lock(&tb_lock);
    TranslatedBlock *tb = tb_hash[tb_hash_fn(pc_phys, flags)];
    while (tb && !(tb->pc_phys == pc_phys && tb->flags == flags))
        tb = tb->hash_next;
    g_mutex_unlock(&tb_lock);
    return tb;
}

TranslatedBlock *tb_find_page2(uint64_t pc_phys, uint32_t flags, uint64_t page2)
{
    g_mutex_lock(&tb_lock);
    TranslatedBlock *tb = tb_hash[tb_hash_fn(pc_phys, flags)];
    while (tb && !(tb->pc_phys == pc_phys && tb->flags == flags &&
                   (tb->page2 == UINT64_MAX || tb->page2 == page2)))
        tb = tb->hash_next;
    g_mutex_unlock(&tb_lock);
    return tb;
}

bool tb_page_has_code(uint64_t paddr_page)
{
    g_mutex_lock(&tb_lock);
    TranslatedBlock **head = page_head(paddr_page & ~0xfffull, false);
    bool r = head && *head;
    g_mutex_unlock(&tb_lock);
    return r;
}

/*
 * Unlink tb from its list i (page page) through its back pointer: a page's
 * blocks die together when it is overwritten, and walking the list for each
 * of them made that quadratic.
 */
static void list_unlink(TranslatedBlock *tb, int i, uint64_t page)
{
    TranslatedBlock *next = tb->page_next[i];
    *tb->page_pprev[i] = next;
    if (next)
        next->page_pprev[page_link(next, page)] = tb->page_pprev[i];
}

/*
 * A new op-link generation (tb.h tb_link_epoch), with tb_lock held.  On
 * wrap-around every block forgets its op links, so that an old value
 * never comes back to life.
 */
static void link_epoch_bump(void)
{
    uint32_t e = tb_link_epoch + 1;
    if (unlikely(e == 0)) {
        e = 1;
        for (unsigned h = 0; h < TB_HASH_SIZE; h++)
            for (TranslatedBlock *t = tb_hash[h]; t; t = t->hash_next)
                tcg_forget_op_links(t);
        for (TranslatedBlock *t = tb_dead; t; t = t->dead_next)
            tcg_forget_op_links(t);
    }
    __atomic_store_n(&tb_link_epoch, e, __ATOMIC_RELEASE);
}

/* Every block, alive or dead, forgets its op links (cpu.h cpu_jc_flush). */
void tb_forget_all_op_links(void)
{
    if (!tb_hash)
        return;
    g_mutex_lock(&tb_lock);
    for (unsigned h = 0; h < TB_HASH_SIZE; h++)
        for (TranslatedBlock *t = tb_hash[h]; t; t = t->hash_next)
            tcg_forget_op_links(t);
    for (TranslatedBlock *t = tb_dead; t; t = t->dead_next)
        tcg_forget_op_links(t);
    g_mutex_unlock(&tb_lock);
}

/* Called with tb_lock held. */
static void tb_kill(TranslatedBlock *tb)
{
    if (tb->invalid)
        return;
    tb->invalid = true;
    /*
     * Not where the lazy flags are stale (PFX_CC_STALE): those ops make
     * them exact before they can leave the block.  The interpreter
     * dispatches through op->handler (direct threading), so both change.
     */
    const void *exit_handler = tcg_op_handler(OP_EXIT);
    for (uint32_t i = 0; i <= tb->n_ops; i++) {
        if (tb->ops[i].pfx & PFX_CC_STALE)
            continue;
        tb->ops[i].idx = OP_EXIT;
        tb->ops[i].handler = exit_handler;
    }
    unsigned h = tb_hash_fn(tb->pc_phys, tb->flags);
    for (TranslatedBlock **pp = &tb_hash[h]; *pp; pp = &(*pp)->hash_next)
        if (*pp == tb) {
            *pp = tb->hash_next;
            break;
        }
    for (int i = 0; i < 2; i++) {
        uint64_t page = i == 0 ? tb->pc_phys & ~0xfffull : tb->page2;
        if (page == UINT64_MAX)
            continue;
        list_unlink(tb, i, page);
        page_remove_if_empty(page);
    }
    tb->dead_next = tb_dead;
    tb_dead = tb;
    tb_dead_count++;
    tb_live--;
    /*
     * After invalid is set (whoever reads the new epoch sees it, exec.c
     * op_link_fill), and with tb on the dead list, which a wrap-around
     * of the epoch walks.
     */
    link_epoch_bump();
}

/* Does tb cover any byte of [pa, pa+len)? */
static bool tb_overlaps(const TranslatedBlock *tb, uint64_t pa, uint64_t len)
{
    uint64_t start = tb->pc_phys;
    uint64_t first_end = (start & ~0xfffull) + 0x1000;
    uint64_t end1 = start + tb->size < first_end ? start + tb->size : first_end;
    if (pa < end1 && pa + len > start)
        return true;
    if (tb->page2 != UINT64_MAX) {
        uint64_t tail = start + tb->size - first_end;
        if (pa < tb->page2 + tail && pa + len > tb->page2)
            return true;
    }
    return false;
}

void tb_invalidate_phys_range(uint64_t pa, uint64_t len)
{
    if (!tb_hash || len == 0)
        return;
    if (len > (1ull << 32) || pa + len < pa) {
        tb_flush_all();         /* absurd ranges: cheaper (and bounded) to drop everything */
        return;
    }
    g_mutex_lock(&tb_lock);
    for (uint64_t page = pa & ~0xfffull; page < pa + len; page += 0x1000) {
        TranslatedBlock **head = page_head(page, false);
        if (!head)
            continue;
        /* Collect first: tb_kill edits the list we walk. */
        GPtrArray *victims = g_ptr_array_new();
        TranslatedBlock *t = *head;
        while (t) {
            if (tb_overlaps(t, pa, len))
                g_ptr_array_add(victims, t);
            int link = ((t->pc_phys & ~0xfffull) == page) ? 0 : 1;
            t = t->page_next[link];
        }
        for (unsigned i = 0; i < victims->len; i++)
            tb_kill(victims->pdata[i]);
        g_ptr_array_free(victims, true);
        if (page + 0x1000 < page)
            break;
    }
    g_mutex_unlock(&tb_lock);
}

void tb_flush_all(void)
{
    if (!tb_hash)
        return;
    g_mutex_lock(&tb_lock);
    for (unsigned h = 0; h < TB_HASH_SIZE; h++)
        while (tb_hash[h])
            tb_kill(tb_hash[h]);
    g_mutex_unlock(&tb_lock);
}

bool tb_reap(void)
{
    if (!tb_dead)
        return false;
    g_mutex_lock(&tb_lock);
    TranslatedBlock *t = tb_dead;
    tb_dead = NULL;
    tb_dead_count = 0;
    /* An op link made since a block was killed may lead into it: not once it is freed. */
    link_epoch_bump();
    g_mutex_unlock(&tb_lock);
    bool any = t != NULL;
    __atomic_fetch_add(&tb_free_gen, 1, __ATOMIC_RELEASE);
    while (t) {
        TranslatedBlock *n = t->dead_next;
        free(t);                                /* posix_memalign, tb_alloc */
        t = n;
    }
    return any;
}

/*
 * Freeing a block forces every CPU to drop its jump cache and links, so
 * the run loop frees in batches: a dead block costs only its memory until
 * then (lookups skip it: invalid is set and its ops are OP_EXIT).
 */
#define TB_REAP_BATCH 512

bool tb_reap_batch(void)
{
    if (__atomic_load_n(&tb_dead_count, __ATOMIC_RELAXED) < TB_REAP_BATCH)
        return false;
    return tb_reap();
}

unsigned tb_count(void)
{
    return tb_live;
}
