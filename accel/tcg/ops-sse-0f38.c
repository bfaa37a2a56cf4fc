/*
 * The 0F 38 opcode map (SDM 2D A.3): placeholder until its instructions land.
 */
#include "accel/tcg/ops.h"

int helper_sse_0f38(TCGCPU *cpu, const DecodedOp *op)
{
    sse_unimp(cpu, op);
}
