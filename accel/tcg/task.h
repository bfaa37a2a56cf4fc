/*
 * Hardware task switches of the software CPU (task.c; SDM 3A chapter 7).
 */
#ifndef TCG_TASK_H
#define TCG_TASK_H

#include "accel/tcg/cpu.h"

typedef enum {
    TASK_SWITCH_JMP,      /* far JMP to a TSS or task gate: old task freed, no link */
    TASK_SWITCH_CALL,     /* far CALL: new task nested (back link, NT=1) */
    TASK_SWITCH_IRET,     /* IRET with NT=1: back to the task in the back link */
    TASK_SWITCH_GATE,     /* interrupt or exception through an IDT task gate: nested */
} TaskSwitchReason;

/*
 * Switch to the task whose TSS descriptor sel names (GDT only).  save_eip is
 * what the old task resumes at; an exception's error code (has_err) goes on
 * the new task's stack; ext is the EXT bit for error codes of faults raised
 * on the way.  Faults raise_exception_err() and do not return.
 */
/* seg.c: far-transfer checks shared with IRET (excp.c). */
/* Offsets a far transfer to the code descriptor with high dword hi may reach (L, D bits). */
uint64_t far_target_mask(TCGCPU *cpu, uint32_t hi);
void check_far_target_limit(TCGCPU *cpu, uint32_t lo, uint32_t hi, uint64_t target);
void check_new_ss(TCGCPU *cpu, uint16_t nss, unsigned new_cpl, int vec, uint32_t ext,
                  uint32_t *lo, uint32_t *hi);
void commit_new_ss(TCGCPU *cpu, uint16_t nss, uint32_t lo, uint32_t hi);

void task_switch(TCGCPU *cpu, uint16_t sel, TaskSwitchReason reason, uint64_t save_eip,
                 bool has_err, uint32_t err, uint32_t ext);

#endif
