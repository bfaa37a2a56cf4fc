/*
 * ISA DMA: the two cascaded 8237A controllers of the PC (hw/pc/i8237.c),
 * seen from an ISA device that uses a DMA channel (the floppy controller on
 * channel 2, a sound card, ...).
 *
 * The model follows the hardware handshake:
 *   1. The device registers itself as the owner of a channel once
 *      (isa_dma_register_channel) with a transfer handler.
 *   2. When it has data to move it raises its DREQ line
 *      (isa_dma_hold_DREQ) and lowers it when done (isa_dma_release_DREQ).
 *   3. Whenever DREQ is held, the channel is unmasked and its controller is
 *      enabled, the DMA engine calls the transfer handler.  This happens
 *      synchronously: from inside isa_dma_hold_DREQ, or from the guest's
 *      port write that unmasks the channel / enables the controller.  The
 *      handler is called once per such event, never in a loop, so a handler
 *      that cannot make progress simply returns.
 *   4. Inside the handler (or at any other time) the device moves bytes with
 *      isa_dma_write_memory (device -> memory, the 8237 "write transfer") or
 *      isa_dma_read_memory (memory -> device, "read transfer").  They work
 *      at the channel's current address and count, in the direction the
 *      guest programmed (increment/decrement), honour auto-initialisation,
 *      and stop right after the terminal count: they return the number of
 *      bytes moved and set *tc when the terminal count was reached (the
 *      8237's EOP# pulse, which for the floppy controller is "TC").
 *
 * Channels 0-3 are 8-bit (byte address + page register, wrapping inside a
 * 64 KiB page); channels 5-7 are 16-bit (word address, page bits 7:1,
 * wrapping inside a 128 KiB block; lengths are rounded down to whole words).
 * Channel 4 is the cascade from the first controller and cannot be used.
 *
 * Memory is reached only through the machine's address space
 * (address_space_read/write), so a channel programmed past the end of RAM
 * reads 0xff and drops writes, exactly like an unassigned bus cycle.
 * A transfer whose mode disagrees with the call (a "read transfer" channel
 * given isa_dma_write_memory) advances the channel without touching memory
 * and is logged under -d guest_errors; a "verify" channel always just
 * counts.
 *
 * All functions must be called with the big lock held (device context).
 * When no 8237 exists (unit tests, machines without ISA DMA) every call is
 * a harmless no-op returning 0 / false.
 */
#ifndef KESTREL_ISA_DMA_H
#define KESTREL_ISA_DMA_H

#include "kestrel/common.h"

#define ISA_DMA_CHANNELS 8

/* Called by the DMA engine while the device holds DREQ on an unmasked channel. */
typedef void (*IsaDmaTransferHandler)(void *opaque, int channel);

/* Transfer type field of the channel's mode register (8237A "Mode Register" bits 3:2). */
typedef enum {
    ISA_DMA_VERIFY = 0,     /* count only, no memory cycles */
    ISA_DMA_WRITE = 1,      /* device -> memory */
    ISA_DMA_READ = 2,       /* memory -> device */
    ISA_DMA_ILLEGAL = 3,
} IsaDmaTransferType;

/*
 * Become the device on a channel (0-3, 5-7).  False if no DMA controller
 * exists, the channel is invalid (4 = cascade) or already taken.
 */
bool isa_dma_register_channel(int channel, IsaDmaTransferHandler handler, void *opaque);
void isa_dma_unregister_channel(int channel);

/* The device's DREQ line for the channel. */
void isa_dma_hold_DREQ(int channel);
void isa_dma_release_DREQ(int channel);

/* What the guest programmed: transfer type of the channel's mode register. */
IsaDmaTransferType isa_dma_transfer_type(int channel);
/* Bytes left before the terminal count (count register + 1, in bytes); 0 if none. */
uint32_t isa_dma_bytes_left(int channel);

/*
 * Move up to len bytes between buf and guest memory at the channel's current
 * address; returns the bytes moved (< len only at the terminal count, or 0
 * when the channel is masked or the controller disabled).  *tc (may be NULL)
 * is set to whether the terminal count was reached during this call.
 */
size_t isa_dma_write_memory(int channel, const void *buf, size_t len, bool *tc);
size_t isa_dma_read_memory(int channel, void *buf, size_t len, bool *tc);

#endif
