/*
 * Private interface between the i440FX host bridge (hw/pc/i440fx.c) and
 * the PIIX3 ISA bridge (hw/pc/piix3.c).
 *
 * The PIIX3 Reset Control Register sits at port 0xCF9, inside the host
 * bridge's 32-bit CONFADD register at 0xCF8-0xCFB.  The port space gives
 * one owner per port and a 4-byte access reaches a handler only if its
 * range covers all four ports, so the host bridge claims 0xCF8-0xCFB and
 * hands byte accesses at 0xCF9 to the PIIX3 through these two functions.
 */
#ifndef KESTREL_HW_PC_PIIX3_H
#define KESTREL_HW_PC_PIIX3_H

#include "kestrel/common.h"

/* Read the RCR into *value; false if no PIIX3 exists (the port then reads 0xFF). */
bool piix3_rcr_read(uint8_t *value);
/* Write the RCR (a no-op without a PIIX3). */
void piix3_rcr_write(uint8_t value);

#endif
