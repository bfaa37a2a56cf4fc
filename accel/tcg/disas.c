/*
 * Disassembly for -d in_asm: capstone's x86 decoder in AT&T syntax, the
 * form QEMU users see in their logs.  Capstone is optional (configure,
 * libcapstone-dev); without it the log names Kestrel's own op kinds.
 * Only the log uses this: the CPU never depends on capstone's decoding.
 */
#include "accel/tcg/disas.h"
#include "config.h"

#ifdef CONFIG_CAPSTONE
#include <capstone/capstone.h>

/* One handle per code size, opened on first use (log lines come from one thread at a time). */
static csh cs_handle[4];
static bool cs_tried[4];

static csh disas_handle(int code_size)
{
    static const cs_mode mode[4] = { 0, CS_MODE_16, CS_MODE_32, CS_MODE_64 };
    static GMutex lock;
    csh h;
    g_mutex_lock(&lock);
    if (!cs_tried[code_size]) {
        cs_tried[code_size] = true;
        if (cs_open(CS_ARCH_X86, mode[code_size], &cs_handle[code_size]) == CS_ERR_OK)
            cs_option(cs_handle[code_size], CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT);
        else
            cs_handle[code_size] = 0;
    }
    h = cs_handle[code_size];
    g_mutex_unlock(&lock);
    return h;
}

bool tcg_disas_insn(const uint8_t *bytes, size_t len, uint64_t ip, int code_size,
                    char *out, size_t outsz)
{
    if (code_size < 1 || code_size > 3)
        return false;
    csh h = disas_handle(code_size);
    cs_insn *insn;
    if (!h || cs_disasm(h, bytes, len, ip, 1, &insn) != 1)
        return false;
    if (insn->op_str[0])
        snprintf(out, outsz, "%-8s %s", insn->mnemonic, insn->op_str);
    else
        snprintf(out, outsz, "%s", insn->mnemonic);
    cs_free(insn, 1);
    return true;
}

#else

bool tcg_disas_insn(const uint8_t *bytes, size_t len, uint64_t ip, int code_size,
                    char *out, size_t outsz)
{
    return false;
}

#endif
