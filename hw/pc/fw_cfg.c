/*
 * QEMU firmware configuration device ("fw_cfg"): how the board hands SeaBIOS
 * its configuration (RAM layout, CPU count, ACPI/SMBIOS tables, boot order).
 *
 * Follows QEMU's docs/specs/fw_cfg.rst and the SeaBIOS contract in
 * ../shared/docs/firmware-seabios.md §4 (x86 register locations):
 *   0x510  selector, 16-bit little-endian write (an 8-bit access reads data,
 *          as QEMU's combined x86 port does)
 *   0x511  data, 8-bit reads stream the selected item
 *   0x514  DMA address, big-endian register: a 32-bit write at +0 sets the
 *          high half, a 32-bit write at +4 the low half and starts the
 *          transfer; reads return the signature "QEMU CFG"
 * Items: legacy keys (integers stored little-endian) and named files, listed
 * in the directory at key 0x19 (u32 count big-endian, then 64-byte entries
 * {be32 size, be16 select, u16 reserved, char name[56]}).
 *
 * File selectors.  The directory is always sorted by name (as QEMU keeps it)
 * and a file's selector is FW_CFG_FILE_FIRST + its position.  Adding a file
 * can therefore renumber later files; that is harmless because every file is
 * added while the board builds the machine, before any guest code (or qtest)
 * reads the directory.  Replacing a file's contents (fw_cfg_set_file on an
 * existing name) never moves selectors.
 *
 * DMA (fw_cfg.rst "DMA interface"): a 16-byte descriptor {be32 control,
 * be32 length, be64 address}; control bits error 0x01, read 0x02, skip 0x04,
 * select 0x08 (selector in bits 31:16), write 0x10.  Transfers complete
 * synchronously; control is then written back as 0 or as the error bit.
 * Every guest address (descriptor and buffer) must be guest RAM: anything
 * else (MMIO, holes, wrap-around, lengths past the end of RAM) sets the error
 * bit and is logged under -d guest_errors.
 *
 * Not modelled: the MMIO variant (ARM), writable items other than files
 * marked writable with fw_cfg_set_file_writable (QEMU 2.4+ also ignores
 * writes to the data port), and the legacy write channel (selector bit 14,
 * ignored as QEMU does).
 */
#include "kestrel/common.h"
#include "kestrel/device.h"
#include "kestrel/fw_cfg.h"
#include "kestrel/ioport.h"
#include "kestrel/log.h"
#include "kestrel/machine.h"
#include "kestrel/memory.h"

#include <string.h>

/* ---- Register table (fw_cfg.rst "Register Locations", x86) ---- */

#define FW_CFG_IO_BASE          0x510
#define FW_CFG_IO_SELECTOR      0       /* 16-bit write */
#define FW_CFG_IO_DATA          1       /* 8-bit read */
#define FW_CFG_DMA_IO_BASE      0x514
#define FW_CFG_DMA_ADDR_HIGH    0       /* 32-bit big-endian write */
#define FW_CFG_DMA_ADDR_LOW     4       /* 32-bit big-endian write: go */
#define FW_CFG_DMA_SIGNATURE    "QEMU CFG"

/* Selector bits */
#define FW_CFG_WRITE_CHANNEL    0x4000  /* ignored since QEMU 2.4 */

/* FW_CFG_ID feature bits */
#define FW_CFG_VERSION          0x01    /* traditional interface */
#define FW_CFG_VERSION_DMA      0x02

/* DMA descriptor control bits */
#define FW_CFG_DMA_CTL_ERROR    0x01
#define FW_CFG_DMA_CTL_READ     0x02
#define FW_CFG_DMA_CTL_SKIP     0x04
#define FW_CFG_DMA_CTL_SELECT   0x08
#define FW_CFG_DMA_CTL_WRITE    0x10
#define FW_CFG_DMA_DESC_SIZE    16

/* Directory entry layout */
#define FW_CFG_DIR_ENTRY_SIZE   64

/* ---- State ---- */

typedef struct FWCfgItem {
    uint16_t key;                /* legacy key, or 0 for files */
    char name[FW_CFG_MAX_FILE_NAME];
    uint8_t *data;
    size_t len;
    bool writable;               /* DMA write allowed (files only) */
} FWCfgItem;

typedef struct FWCfgBootEntry {
    int bootindex;
    unsigned seq;                /* registration order breaks ties */
    char *path;
} FWCfgBootEntry;

struct FWCfgState {
    /* Guest-visible registers */
    uint16_t cur_key;            /* selector as written (write channel bit cleared) */
    uint32_t cur_offset;         /* read position in the selected item */
    uint64_t dma_addr;           /* DMA address register (high half pending) */

    /* Contents */
    GPtrArray *legacy;           /* FWCfgItem*, any order */
    GPtrArray *files;            /* FWCfgItem*, sorted by name; selector = 0x20 + index */
    GArray *boot_entries;        /* FWCfgBootEntry */
    unsigned boot_seq;

    /* Host plumbing */
    void (*reset_hook)(void *opaque);
    void *reset_hook_opaque;
    AddressSpace *as;            /* DMA target (the machine's memory); NULL = no DMA */
    IoPortRange *io, *dma_io;
};

/* ---- Item store ---- */

static void fw_cfg_item_free(gpointer p)
{
    FWCfgItem *it = p;
    g_free(it->data);
    g_free(it);
}

static FWCfgItem *fw_cfg_legacy_find(FWCfgState *s, uint16_t key)
{
    for (guint i = 0; i < s->legacy->len; i++) {
        FWCfgItem *it = g_ptr_array_index(s->legacy, i);
        if (it->key == key)
            return it;
    }
    return NULL;
}

/* Index of the file called name, or (as ~insert position) where it would go. */
static gssize fw_cfg_file_index(FWCfgState *s, const char *name, guint *insert_at)
{
    guint lo = 0, hi = s->files->len;
    while (lo < hi) {
        guint mid = (lo + hi) / 2;
        FWCfgItem *it = g_ptr_array_index(s->files, mid);
        int c = strcmp(name, it->name);
        if (c == 0)
            return mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (insert_at)
        *insert_at = lo;
    return -1;
}

/* Rebuild the directory item at key 0x19 from the sorted file list. */
static void fw_cfg_update_dir(FWCfgState *s)
{
    size_t len = 4 + (size_t)s->files->len * FW_CFG_DIR_ENTRY_SIZE;
    uint8_t *dir = g_malloc0(len);

    dir[0] = s->files->len >> 24;
    dir[1] = s->files->len >> 16;
    dir[2] = s->files->len >> 8;
    dir[3] = s->files->len;
    for (guint i = 0; i < s->files->len; i++) {
        FWCfgItem *it = g_ptr_array_index(s->files, i);
        uint8_t *e = dir + 4 + (size_t)i * FW_CFG_DIR_ENTRY_SIZE;
        uint32_t size = it->len > UINT32_MAX ? UINT32_MAX : (uint32_t)it->len;
        uint16_t sel = FW_CFG_FILE_FIRST + i;
        e[0] = size >> 24; e[1] = size >> 16; e[2] = size >> 8; e[3] = size;
        e[4] = sel >> 8; e[5] = sel;
        memcpy(e + 8, it->name, strlen(it->name));     /* NUL-padded by g_malloc0 */
    }

    FWCfgItem *d = fw_cfg_legacy_find(s, FW_CFG_FILE_DIR);
    if (!d) {
        d = g_new0(FWCfgItem, 1);
        d->key = FW_CFG_FILE_DIR;
        g_ptr_array_add(s->legacy, d);
    }
    g_free(d->data);
    d->data = dir;
    d->len = len;
}

/* Data and length of the item a selector names; an unknown selector is empty. */
static const FWCfgItem *fw_cfg_item_for_key(FWCfgState *s, uint16_t key)
{
    if (key >= FW_CFG_FILE_FIRST && key < FW_CFG_ARCH_LOCAL) {
        guint idx = key - FW_CFG_FILE_FIRST;
        return idx < s->files->len ? g_ptr_array_index(s->files, idx) : NULL;
    }
    return fw_cfg_legacy_find(s, key);
}

FWCfgState *machine_fw_cfg(Machine *m)
{
    return m ? m->fw_cfg : NULL;
}

void fw_cfg_add_bytes(FWCfgState *s, uint16_t key, const void *data, size_t len)
{
    if (!s)
        return;
    key &= ~FW_CFG_WRITE_CHANNEL;
    if (key == FW_CFG_FILE_DIR || (key >= FW_CFG_FILE_FIRST && key < FW_CFG_ARCH_LOCAL)) {
        error_report("fw_cfg: key 0x%x is reserved for the file directory", key);
        return;
    }
    FWCfgItem *it = fw_cfg_legacy_find(s, key);
    if (!it) {
        it = g_new0(FWCfgItem, 1);
        it->key = key;
        g_ptr_array_add(s->legacy, it);
    }
    g_free(it->data);
    it->data = len ? g_memdup2(data, len) : NULL;
    it->len = len;
}

void fw_cfg_add_i16(FWCfgState *s, uint16_t key, uint16_t value)
{
    uint8_t b[2];
    st16_le(b, value);
    fw_cfg_add_bytes(s, key, b, sizeof(b));
}

void fw_cfg_add_i32(FWCfgState *s, uint16_t key, uint32_t value)
{
    uint8_t b[4];
    st32_le(b, value);
    fw_cfg_add_bytes(s, key, b, sizeof(b));
}

void fw_cfg_add_i64(FWCfgState *s, uint16_t key, uint64_t value)
{
    uint8_t b[8];
    st64_le(b, value);
    fw_cfg_add_bytes(s, key, b, sizeof(b));
}

void fw_cfg_add_string(FWCfgState *s, uint16_t key, const char *value)
{
    fw_cfg_add_bytes(s, key, value, strlen(value) + 1);
}

static bool fw_cfg_name_ok(const char *name, GError **errp)
{
    if (!name || !*name) {
        kestrel_set_error(errp, "fw_cfg: empty file name");
        return false;
    }
    if (strlen(name) >= FW_CFG_MAX_FILE_NAME) {
        kestrel_set_error(errp, "fw_cfg: file name '%s' is longer than %d characters",
                          name, FW_CFG_MAX_FILE_NAME - 1);
        return false;
    }
    return true;
}

bool fw_cfg_add_file(FWCfgState *s, const char *name, const void *data, size_t len,
                     GError **errp)
{
    guint pos = 0;

    if (!s) {
        kestrel_set_error(errp, "fw_cfg: no fw_cfg device on this machine");
        return false;
    }
    if (!fw_cfg_name_ok(name, errp))
        return false;
    if (fw_cfg_file_index(s, name, &pos) >= 0) {
        kestrel_set_error(errp, "fw_cfg: duplicate file name '%s'", name);
        return false;
    }
    if (FW_CFG_FILE_FIRST + s->files->len >= FW_CFG_ARCH_LOCAL) {
        kestrel_set_error(errp, "fw_cfg: too many files (adding '%s')", name);
        return false;
    }
    FWCfgItem *it = g_new0(FWCfgItem, 1);
    g_strlcpy(it->name, name, sizeof(it->name));
    it->data = len ? g_memdup2(data, len) : NULL;
    it->len = len;
    g_ptr_array_insert(s->files, (gint)pos, it);
    fw_cfg_update_dir(s);
    return true;
}

void fw_cfg_set_file(FWCfgState *s, const char *name, const void *data, size_t len)
{
    GError *err = NULL;

    if (!s)
        return;
    gssize idx = fw_cfg_file_index(s, name, NULL);
    if (idx < 0) {
        if (!fw_cfg_add_file(s, name, data, len, &err)) {
            error_report("%s", err->message);
            g_error_free(err);
        }
        return;
    }
    FWCfgItem *it = g_ptr_array_index(s->files, idx);
    g_free(it->data);
    it->data = len ? g_memdup2(data, len) : NULL;
    it->len = len;
    fw_cfg_update_dir(s);          /* the size changed; selectors did not */
}

const uint8_t *fw_cfg_get_file(FWCfgState *s, const char *name, size_t *len)
{
    if (!s)
        return NULL;
    gssize idx = fw_cfg_file_index(s, name, NULL);
    if (idx < 0)
        return NULL;
    FWCfgItem *it = g_ptr_array_index(s->files, idx);
    if (len)
        *len = it->len;
    /* An empty file still exists: hand back a non-NULL pointer. */
    return it->data ? it->data : (const uint8_t *)"";
}

bool fw_cfg_set_file_writable(FWCfgState *s, const char *name, bool writable)
{
    if (!s)
        return false;
    gssize idx = fw_cfg_file_index(s, name, NULL);
    if (idx < 0)
        return false;
    ((FWCfgItem *)g_ptr_array_index(s->files, idx))->writable = writable;
    return true;
}

/* ---- Boot order ---- */

void fw_cfg_bootorder_add(FWCfgState *s, int bootindex, const char *of_path)
{
    if (!s || bootindex < 0 || !of_path || !*of_path)
        return;
    FWCfgBootEntry e = { bootindex, s->boot_seq++, g_strdup(of_path) };
    g_array_append_val(s->boot_entries, e);
}

static gint fw_cfg_boot_cmp(gconstpointer a, gconstpointer b)
{
    const FWCfgBootEntry *x = a, *y = b;
    if (x->bootindex != y->bootindex)
        return x->bootindex < y->bootindex ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

char *fw_cfg_bootorder_text(FWCfgState *s, bool halt)
{
    GString *out = g_string_new(NULL);

    if (s) {
        g_array_sort(s->boot_entries, fw_cfg_boot_cmp);
        for (guint i = 0; i < s->boot_entries->len; i++) {
            FWCfgBootEntry *e = &g_array_index(s->boot_entries, FWCfgBootEntry, i);
            g_string_append_printf(out, "%s\n", e->path);
        }
    }
    if (halt)
        g_string_append(out, "HALT\n");
    return g_string_free(out, FALSE);
}

/* ---- Traditional interface ---- */

static void fw_cfg_select(FWCfgState *s, uint16_t key)
{
    s->cur_key = key & ~FW_CFG_WRITE_CHANNEL;
    s->cur_offset = 0;
}

static uint8_t fw_cfg_read_byte(FWCfgState *s)
{
    const FWCfgItem *it = fw_cfg_item_for_key(s, s->cur_key);
    /* fw_cfg.rst: reading past the end of an item (or an absent one) gives 0. */
    if (!it || s->cur_offset >= it->len)
        return 0;
    return it->data[s->cur_offset++];
}

static uint32_t fw_cfg_io_read(void *opaque, uint16_t offset, unsigned size)
{
    FWCfgState *s = opaque;

    if (size != 1) {
        /* QEMU accepts only byte reads on the combined port. */
        LOG(LOG_GUEST_ERROR, "fw_cfg: %u-byte read of port 0x%x ignored\n", size,
            FW_CFG_IO_BASE + offset);
        return 0;
    }
    return fw_cfg_read_byte(s);
}

static void fw_cfg_io_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    FWCfgState *s = opaque;

    if (offset == FW_CFG_IO_SELECTOR && size == 2) {
        fw_cfg_select(s, (uint16_t)value);
        return;
    }
    /* Byte writes are data-port writes, ignored since QEMU 2.4 (fw_cfg.rst). */
    LOG(LOG_GUEST_ERROR, "fw_cfg: %u-byte write 0x%x to port 0x%x ignored\n", size, value,
        FW_CFG_IO_BASE + offset);
}

static const IoPortOps fw_cfg_io_ops = {
    .read = fw_cfg_io_read,
    .write = fw_cfg_io_write,
    .max_access = 2,
};

/* ---- DMA interface ---- */

/*
 * Is [addr, addr+len) entirely guest RAM (writable RAM if for_write)?
 * The rule for every DMA address, checked once where it enters.
 */
static bool fw_cfg_dma_range_ok(FWCfgState *s, uint64_t addr, uint64_t len, bool for_write)
{
    if (len == 0)
        return true;
    if (addr + len < addr)
        return false;
    while (len > 0) {
        const FlatRange *fr = address_space_lookup(s->as, addr);
        if (!fr || !fr->host || (for_write && fr->readonly))
            return false;
        uint64_t n = MIN(len, fr->size - (addr - fr->start));
        addr += n;
        len -= n;
    }
    return true;
}

/* Fill guest RAM with zeros in bounded chunks (reads past an item's end). */
static void fw_cfg_dma_zero(FWCfgState *s, uint64_t addr, uint64_t len)
{
    static const uint8_t zeros[4096];
    while (len > 0) {
        uint64_t n = MIN(len, (uint64_t)sizeof(zeros));
        address_space_write(s->as, addr, zeros, n);
        addr += n;
        len -= n;
    }
}

static void fw_cfg_dma_set_control(FWCfgState *s, uint64_t desc, uint32_t control)
{
    uint8_t b[4] = { control >> 24, control >> 16, control >> 8, control };
    address_space_write(s->as, desc, b, 4);
}

/* One descriptor: returns the control value to write back. */
static uint32_t fw_cfg_dma_run(FWCfgState *s, uint32_t control, uint32_t length,
                               uint64_t addr)
{
    if (control & FW_CFG_DMA_CTL_SELECT)
        fw_cfg_select(s, control >> 16);

    bool read = control & FW_CFG_DMA_CTL_READ;
    bool write = !read && (control & FW_CFG_DMA_CTL_WRITE);
    bool skip = !read && !write && (control & FW_CFG_DMA_CTL_SKIP);
    if (!read && !write && !skip)
        return 0;                              /* select only */

    FWCfgItem *it = (FWCfgItem *)fw_cfg_item_for_key(s, s->cur_key);
    uint64_t avail = it && s->cur_offset < it->len ? it->len - s->cur_offset : 0;
    uint64_t n = MIN((uint64_t)length, avail);  /* bytes that come from the item */

    if (read) {
        if (!fw_cfg_dma_range_ok(s, addr, length, true)) {
            LOG(LOG_GUEST_ERROR, "fw_cfg: DMA read to 0x%" G_GINT64_MODIFIER "x+0x%x is "
                "not guest RAM\n", addr, length);
            return FW_CFG_DMA_CTL_ERROR;
        }
        if (n)
            address_space_write(s->as, addr, it->data + s->cur_offset, n);
        fw_cfg_dma_zero(s, addr + n, length - n);
    } else if (write) {
        /* Only writable files, and never past their end (QEMU's rule). */
        if (!it || !it->writable || length > avail) {
            LOG(LOG_GUEST_ERROR, "fw_cfg: DMA write of 0x%x bytes to key 0x%x refused\n",
                length, s->cur_key);
            return FW_CFG_DMA_CTL_ERROR;
        }
        if (!fw_cfg_dma_range_ok(s, addr, length, false)) {
            LOG(LOG_GUEST_ERROR, "fw_cfg: DMA write from 0x%" G_GINT64_MODIFIER "x+0x%x "
                "is not guest RAM\n", addr, length);
            return FW_CFG_DMA_CTL_ERROR;
        }
        address_space_read(s->as, addr, it->data + s->cur_offset, length);
    }
    s->cur_offset += (uint32_t)n;
    return 0;
}

static void fw_cfg_dma_transfer(FWCfgState *s)
{
    uint64_t desc = s->dma_addr;
    uint8_t d[FW_CFG_DMA_DESC_SIZE];

    s->dma_addr = 0;                 /* the next transfer starts with a fresh address */
    if (!s->as)
        return;
    if (!fw_cfg_dma_range_ok(s, desc, FW_CFG_DMA_DESC_SIZE, true)) {
        /* Nowhere to report the error: log and drop it. */
        LOG(LOG_GUEST_ERROR, "fw_cfg: DMA descriptor at 0x%" G_GINT64_MODIFIER "x is not "
            "guest RAM\n", desc);
        return;
    }
    address_space_read(s->as, desc, d, sizeof(d));
    uint32_t control = (uint32_t)d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3];
    uint32_t length = (uint32_t)d[4] << 24 | d[5] << 16 | d[6] << 8 | d[7];
    uint64_t addr = 0;
    for (int i = 8; i < 16; i++)
        addr = addr << 8 | d[i];
    fw_cfg_dma_set_control(s, desc, fw_cfg_dma_run(s, control, length, addr));
}

static uint32_t fw_cfg_dma_io_read(void *opaque, uint16_t offset, unsigned size)
{
    static const char sig[] = FW_CFG_DMA_SIGNATURE;
    uint32_t v = 0;

    /* A big-endian register holding "QEMU CFG": byte n of the port range is sig[n]. */
    for (unsigned i = 0; i < size && offset + i < 8; i++)
        v |= (uint32_t)(uint8_t)sig[offset + i] << (8 * i);
    return v;
}

static void fw_cfg_dma_io_write(void *opaque, uint16_t offset, uint32_t value, unsigned size)
{
    FWCfgState *s = opaque;
    /* The register is big-endian: the port's little-endian value is byte-swapped. */
    uint32_t be = GUINT32_SWAP_LE_BE(value);

    if (size != 4 || (offset != FW_CFG_DMA_ADDR_HIGH && offset != FW_CFG_DMA_ADDR_LOW)) {
        LOG(LOG_GUEST_ERROR, "fw_cfg: %u-byte DMA register write at +%u ignored\n", size,
            offset);
        return;
    }
    if (offset == FW_CFG_DMA_ADDR_HIGH) {
        s->dma_addr = (uint64_t)be << 32;
    } else {
        s->dma_addr |= be;
        fw_cfg_dma_transfer(s);
    }
}

static const IoPortOps fw_cfg_dma_io_ops = {
    .read = fw_cfg_dma_io_read,
    .write = fw_cfg_dma_io_write,
    .max_access = 4,
};

/* ---- Device ---- */

static void fw_cfg_reset(void *opaque)
{
    FWCfgState *s = opaque;
    fw_cfg_select(s, FW_CFG_SIGNATURE);
    s->dma_addr = 0;
    if (s->reset_hook)
        s->reset_hook(s->reset_hook_opaque);
}

void fw_cfg_set_reset_hook(FWCfgState *s, void (*fn)(void *opaque), void *opaque)
{
    if (!s)
        return;
    s->reset_hook = fn;
    s->reset_hook_opaque = opaque;
}

static void fw_cfg_boot_entry_clear(gpointer p)
{
    g_free(((FWCfgBootEntry *)p)->path);
}

FWCfgState *fw_cfg_new(AddressSpace *dma_as)
{
    FWCfgState *s = g_new0(FWCfgState, 1);
    s->legacy = g_ptr_array_new_with_free_func(fw_cfg_item_free);
    s->files = g_ptr_array_new_with_free_func(fw_cfg_item_free);
    s->boot_entries = g_array_new(FALSE, TRUE, sizeof(FWCfgBootEntry));
    g_array_set_clear_func(s->boot_entries, fw_cfg_boot_entry_clear);
    s->as = dma_as;

    fw_cfg_add_bytes(s, FW_CFG_SIGNATURE, "QEMU", 4);
    fw_cfg_add_i32(s, FW_CFG_ID, dma_as ? FW_CFG_VERSION | FW_CFG_VERSION_DMA : FW_CFG_VERSION);
    fw_cfg_update_dir(s);
    fw_cfg_reset(s);
    return s;
}

static void *fw_cfg_create(Machine *m, const DeviceProps *props, GError **errp)
{
    if (m && m->fw_cfg) {
        kestrel_set_error(errp, "fw_cfg: the machine already has one");
        return NULL;
    }
    FWCfgState *s = fw_cfg_new(m ? m->as : NULL);
    s->io = ioport_register(FW_CFG_IO_BASE, 2, &fw_cfg_io_ops, s, "fw_cfg", errp);
    if (!s->io)
        goto fail;
    if (s->as) {
        s->dma_io = ioport_register(FW_CFG_DMA_IO_BASE, 8, &fw_cfg_dma_io_ops, s,
                                    "fw_cfg-dma", errp);
        if (!s->dma_io) {
            ioport_unregister(s->io);
            goto fail;
        }
    }
    if (m)
        m->fw_cfg = s;
    return s;

fail:
    g_ptr_array_free(s->legacy, TRUE);
    g_ptr_array_free(s->files, TRUE);
    g_array_free(s->boot_entries, TRUE);
    g_free(s);
    return NULL;
}

static const PropDef fw_cfg_props[] = {
    { NULL }
};

static const DeviceType fw_cfg_type = {
    .name = "fw_cfg",
    .desc = "QEMU firmware configuration interface (ports 0x510-0x51b)",
    .bus = "sys",
    .user_creatable = false,
    .props = fw_cfg_props,
    .create = fw_cfg_create,
    .reset = fw_cfg_reset,
};

DEVICE_TYPE_REGISTER(fw_cfg_type)
