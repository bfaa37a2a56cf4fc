/* Disassembly of guest instructions for -d in_asm (disas.c). */
#ifndef TCG_DISAS_H
#define TCG_DISAS_H

#include "kestrel/common.h"

/*
 * The instruction at bytes (len bytes available, at address ip, code size
 * 1/2/3 = 16/32/64-bit) as "mnemonic operands" in AT&T syntax; false when
 * no disassembler is built in (configure: capstone) or it cannot decode it.
 */
bool tcg_disas_insn(const uint8_t *bytes, size_t len, uint64_t ip, int code_size,
                    char *out, size_t outsz);

#endif
