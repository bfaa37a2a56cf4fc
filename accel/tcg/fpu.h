/*
 * Kestrel's own soft-float for the x87 80-bit double-extended format
 * (SDM 1 §4.2.2, §4.8, §8.2-8.5): exact results on any host, no host
 * long double and no host floating point.
 *
 * Values are an explicit 64-bit significand (integer bit 63) plus a
 * sign/exponent word with bias 16383.  Every operation rounds exactly once
 * with round_pack() using the caller's rounding control and significand
 * precision (24/53/64 bits, FCW.PC; the exponent range always stays 15
 * bits), and reports IE DE ZE OE UE PE in SFStatus.flags at the same bit
 * positions as FSW/FCW.  Tininess is detected before rounding (x87).
 * With UE/OE unmasked and bias_adjust set (arithmetic instructions) an
 * out-of-range result is delivered with its exponent re-biased by 24576
 * (SDM 1 §8.5.4, §8.5.5); stores to memory leave the destination alone.
 */
#ifndef TCG_FPU_H
#define TCG_FPU_H

#include <stdint.h>
#include <stdbool.h>

typedef struct F80 {
    uint64_t sig;           /* explicit integer bit in bit 63 */
    uint16_t se;            /* sign (bit 15) | biased exponent */
} F80;

/* Exception flags: FSW/FCW/MXCSR bit positions. */
#define FPE_IE 0x01u
#define FPE_DE 0x02u
#define FPE_ZE 0x04u
#define FPE_OE 0x08u
#define FPE_UE 0x10u
#define FPE_PE 0x20u
#define FPE_ALL 0x3fu

/* Rounding control (FCW.RC / MXCSR.RC). */
enum { RC_NEAR = 0, RC_DOWN = 1, RC_UP = 2, RC_ZERO = 3 };

typedef struct SFStatus {
    uint8_t rc;             /* RC_* */
    uint8_t prec;           /* significand bits for PC-controlled operations */
    uint8_t flags;          /* FPE_* raised by the operation */
    uint8_t masks;          /* FCW mask bits (only OE/UE matter here) */
    bool c1;                /* the last rounding increased the magnitude */
    bool bias_adjust;       /* arithmetic: deliver re-biased results when OE/UE unmasked */
} SFStatus;

/* Operand classes (also FXAM's order of questions). */
enum { FC_ZERO, FC_NORMAL, FC_DENORMAL, FC_INF, FC_QNAN, FC_SNAN, FC_UNSUPPORTED };

#define F80_EXP(a)  ((a).se & 0x7fff)
#define F80_SIGN(a) ((a).se >> 15)

static inline F80 f80_make(bool sign, uint16_t exp, uint64_t sig)
{
    F80 r = { sig, (uint16_t)((sign ? 0x8000u : 0) | exp) };
    return r;
}

extern const F80 f80_indefinite;        /* real indefinite: -QNaN C000...0 */
/* FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ (k = 0..6), rounded under s->rc. */
F80 f80_load_const(SFStatus *s, int k);

int f80_class(F80 a);
bool f80_is_nan(F80 a);

F80 f80_add(SFStatus *s, F80 a, F80 b);
F80 f80_sub(SFStatus *s, F80 a, F80 b);
F80 f80_mul(SFStatus *s, F80 a, F80 b);
F80 f80_div(SFStatus *s, F80 a, F80 b);
F80 f80_sqrt(SFStatus *s, F80 a);
F80 f80_round_int(SFStatus *s, F80 a);
F80 f80_scale(SFStatus *s, F80 a, F80 b);
void f80_xtract(SFStatus *s, F80 a, F80 *expo, F80 *sig);
/* Remainder (FPREM: truncating quotient; FPREM1: IEEE). *q gets the low 3 quotient
 * bits; *partial is set when the exponent difference is >= 64 (C2). */
F80 f80_rem(SFStatus *s, F80 a, F80 b, bool ieee, unsigned *q, bool *partial);
/* -1 less, 0 equal, 1 greater, 2 unordered; quiet: only SNaN raises IE. */
int f80_compare(SFStatus *s, F80 a, F80 b, bool quiet);

F80 f80_from_i64(int64_t v);
/* bits 16/32/64; invalid -> IE and the integer indefinite 1 << (bits-1). */
int64_t f80_to_int(SFStatus *s, F80 a, int bits, bool truncate);
F80 f80_from_f32(SFStatus *s, uint32_t v);
F80 f80_from_f64(SFStatus *s, uint64_t v);
uint32_t f80_to_f32(SFStatus *s, F80 a);
uint64_t f80_to_f64(SFStatus *s, F80 a);

/* fpu-trans.c: transcendentals (accuracy documented there). */
F80 f80_2xm1(SFStatus *s, F80 a);
F80 f80_yl2x(SFStatus *s, F80 y, F80 x);
F80 f80_yl2xp1(SFStatus *s, F80 y, F80 x);
F80 f80_atan2(SFStatus *s, F80 y, F80 x);
/* which: 0 sin, 1 cos, 2 tan, 3 sin+cos; false when |a| >= 2^63 (C2). */
bool f80_trig(SFStatus *s, F80 a, int which, F80 *r1, F80 *r2);

#endif
