/*
 * etp_kernels.c - C twins of edgetp/fixed/kernels_q.py (see etp_kernels.h).
 */
#include "etp_kernels.h"

#include <stddef.h>
#include <string.h>
#if defined(__ARM_FEATURE_DSP) || defined(__ARM_FEATURE_SAT)
#include <arm_acle.h>
#endif

#include "etp_primitives.h"

uint16_t etp_nonzero(const etp_vec_t *x, uint16_t *idx, int16_t *val)
{
    uint16_t j, n = 0;
    if (x->bits == 8) {                       /* spikes, mostly 0: four at a time, a zero word skipped */
        const int8_t *p = (const int8_t *)x->p;
        for (j = 0; j + 3u < x->n; j = (uint16_t)(j + 4u)) {
            uint32_t w;
            uint16_t k;
            memcpy(&w, p + j, 4);
            if (w == 0u) {
                continue;
            }
            for (k = j; k < j + 4u; k++) {
                if (p[k] != 0) {
                    idx[n] = k;
                    val[n] = p[k];
                    n++;
                }
            }
        }
        for (; j < x->n; j++) {
            if (p[j] != 0) {
                idx[n] = j;
                val[n] = p[j];
                n++;
            }
        }
        return n;
    }
    for (j = 0; j < x->n; j++) {              /* int16 */
        int16_t a = ((const int16_t *)x->p)[j];
        if (a != 0) {
            idx[n] = j;
            val[n] = a;
            n++;
        }
    }
    return n;
}

/* sum of row[idx[t]] * val[t], t < n, in int64 (the nonzero inputs of etp_nonzero): one body, made for each weight
 * type: etp_w_t (the learning weights), etp_wh_t (the hidden layers: ETP_WH_BITS wide, int8 in a frozen-hidden
 * build) and int16_t (a frozen W0 stored wide: layout.wide_input). */
#define ETP_DOT_NONZERO(name, wtype)                                                           \
    static int64_t name(const wtype *row, const uint16_t *idx, const int16_t *val, uint16_t n) \
    {                                                                                          \
        int64_t acc = 0;                                                                       \
        uint16_t t;                                                                            \
        for (t = 0; t < n; t++) {                                                              \
            acc += (int64_t)row[idx[t]] * val[t];                                              \
        }                                                                                      \
        return acc;                                                                            \
    }
ETP_DOT_NONZERO(dot_nonzero, etp_w_t)
ETP_DOT_NONZERO(dot_nonzero_h, etp_wh_t)
ETP_DOT_NONZERO(dot_nonzero_w16, int16_t)

/* sum_j row[j] x[j] over all n entries of two int16 vectors (weights and inputs, or traces), in int64: two products
 * per SMLALD (ACLE __smlald) on a Cortex-M4, or the plain loop; integer sums do not depend on the
 * order, so both give dot_nonzero's value. */
static int64_t dot_dense16(const int16_t *row, const int16_t *x, uint16_t n)
{
    int64_t acc = 0;
    uint16_t j = 0;
#if defined(__ARM_FEATURE_DSP)
    for (; j + 1 < n; j += 2) {
        int16x2_t a, b;
        memcpy(&a, row + j, 4);               /* an LDR; unaligned access is allowed on the M4 */
        memcpy(&b, x + j, 4);
        acc = __smlald(a, b, acc);
    }
#endif
    for (; j < n; j++) {
        acc += (int64_t)row[j] * x[j];
    }
    return acc;
}

/* sum of row[idx[t]], t < n: dot_nonzero_h's value when every nonzero input is 1 (spikes), in 32 bits
 * (|sum| <= 65535 * 32768 < 2^31). */
static int64_t sum_at_h(const etp_wh_t *row, const uint16_t *idx, uint16_t n)
{
    int32_t acc = 0;
    uint16_t t;
    for (t = 0; t < n; t++) {
        acc += row[idx[t]];
    }
    return acc;
}

/* sum_at_h of the four rows r, r + stride, r + 2 stride, r + 3 stride into out: each spike's index is
 * loaded once for four rows (the same sums, in 32 bits: |sum| <= 65535 * 32768 < 2^31). One body for
 * the hidden layers' rows (etp_wh_t) and the readout's (etp_w_t). */
#define ETP_SUM_AT4(name, wtype)                                                                          \
    static void name(const wtype *r, uint32_t stride, const uint16_t *idx, uint16_t n, int32_t *out)      \
    {                                                                                                     \
        const wtype *r1 = r + stride, *r2 = r1 + stride, *r3 = r2 + stride;                               \
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                           \
        uint16_t t;                                                                                       \
        for (t = 0; t < n; t++) {                                                                         \
            uint16_t j = idx[t];                                                                          \
            a0 += r[j];                                                                                   \
            a1 += r1[j];                                                                                  \
            a2 += r2[j];                                                                                  \
            a3 += r3[j];                                                                                  \
        }                                                                                                 \
        out[0] = a0;                                                                                      \
        out[1] = a1;                                                                                      \
        out[2] = a2;                                                                                      \
        out[3] = a3;                                                                                      \
    }
ETP_SUM_AT4(sum_at_h4, etp_wh_t)
ETP_SUM_AT4(sum_at_w4, etp_w_t)

/* R stored transposed (r_stride != 0, frozen: layout.RCOL_ALIGN): row i's recurrent sum is
 * sum_t val[t] RT[idx[t] stride + i], RT = R + i (dot_nonzero_h's value). */
static int64_t col_dot(const etp_wh_t *RT, uint32_t stride, const uint16_t *idx, const int16_t *val, uint16_t n)
{
    int64_t acc = 0;
    uint16_t t;
    for (t = 0; t < n; t++) {
        acc += (int64_t)RT[(uint32_t)idx[t] * stride] * val[t];
    }
    return acc;
}

/* col_dot's value when every previous spike is 1, in 32 bits (|sum| <= 65535 * 32768 < 2^31). */
static int32_t col_sum(const etp_wh_t *RT, uint32_t stride, const uint16_t *idx, uint16_t n)
{
    int32_t acc = 0;
    uint16_t t;
    for (t = 0; t < n; t++) {
        acc += RT[(uint32_t)idx[t] * stride];
    }
    return acc;
}

#if ETP_WH_BITS == 8
#if defined(__ARM_FEATURE_DSP)
/* One spike of cols_lanes8 (cols_sum8 on a Cortex-M4): its column's eight bytes at b + j stride (one LDRD), the
 * pairs (w0, w2), (w1, w3) of each word sign-extended and added to the packed lanes in one SXTAB16 each (what
 * SXTB16 then SADD16 compute: each 16-bit lane wraps on its own; 7 instructions a spike where those took 11). */
#define ETP_RCOL_ROUND \
    "ldrh %[a], [%[p]], #2\n\t" \
    "mla %[a], %[a], %[s], %[b]\n\t" \
    "ldrd %[w0], %[w1], [%[a]]\n\t" \
    "sxtab16 %[q0], %[q0], %[w0]\n\t" \
    "sxtab16 %[q1], %[q1], %[w0], ror #8\n\t" \
    "sxtab16 %[q2], %[q2], %[w1]\n\t" \
    "sxtab16 %[q3], %[q3], %[w1], ror #8"
#endif

#if defined(__ARM_FEATURE_DSP)
/* The spikes p..pe - 1 of cols_sum8 on a Cortex-M4 (b and stride word-aligned): the packed lane pairs
 * q[0..3] = rows (0, 2), (1, 3), (4, 6), (5, 7), from zero; returns pe. */
static inline const uint16_t *cols_lanes8(const int8_t *b, uint32_t stride, const uint16_t *p, const uint16_t *pe,
                                          uint32_t *q)
{
    uint32_t q0 = 0, q1 = 0, q2 = 0, q3 = 0, a, w0, w1;
    if (((uint32_t)(pe - p) & 1u) != 0u) {
        __asm__(ETP_RCOL_ROUND
                : [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3), [p] "+r"(p), [a] "=&r"(a),
                  [w0] "=&r"(w0), [w1] "=&r"(w1)
                : [s] "r"(stride), [b] "r"(b)
                : "memory");
    }
    while (p < pe) {                          /* two spikes a round */
        __asm__(ETP_RCOL_ROUND "\n\t" ETP_RCOL_ROUND
                : [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3), [p] "+r"(p), [a] "=&r"(a),
                  [w0] "=&r"(w0), [w1] "=&r"(w1)
                : [s] "r"(stride), [b] "r"(b)
                : "memory");
    }
    q[0] = q0;
    q[1] = q1;
    q[2] = q2;
    q[3] = q3;
    return p;
}
#endif

#if defined(__ARM_FEATURE_DSP)
/* cols_lanes8's packed lanes q (rows 0|2, 1|3, 4|6, 5|7: SXTB16's even and odd bytes) as the int32 sums
 * of rows 0..7 (the first group of spikes), or added to them (lanes_add8: the next groups). */
static inline void lanes_set8(int32_t *out, const uint32_t *q)
{
    out[0] = (int16_t)q[0];
    out[2] = (int16_t)(q[0] >> 16);
    out[1] = (int16_t)q[1];
    out[3] = (int16_t)(q[1] >> 16);
    out[4] = (int16_t)q[2];
    out[6] = (int16_t)(q[2] >> 16);
    out[5] = (int16_t)q[3];
    out[7] = (int16_t)(q[3] >> 16);
}

static inline void lanes_add8(int32_t *out, const uint32_t *q)
{
    out[0] += (int16_t)q[0];
    out[2] += (int16_t)(q[0] >> 16);
    out[1] += (int16_t)q[1];
    out[3] += (int16_t)(q[1] >> 16);
    out[4] += (int16_t)q[2];
    out[6] += (int16_t)(q[2] >> 16);
    out[5] += (int16_t)q[3];
    out[7] += (int16_t)(q[3] >> 16);
}
#endif

/* The 0/1 spikes' sums of the rows i0..i0 + 7 of an int8 transposed R (i0 + 8 <= stride) into out (n >= 1
 * spikes): each spike adds the eight contiguous bytes of its column at b = RT + i0 (+ j stride) in 16-bit
 * lanes, and the lanes go to the int32 sums every ETP_RCOL_FLUSH spikes, before they could leave int16
 * (layout.RCOL_FLUSH); the first group of spikes sets the sums. On a Cortex-M4 with b and stride
 * word-aligned the lanes are packed pairs (cols_lanes8: SXTAB16); else one int16 lane each,
 * wrapping as SXTAB16's halfword adds do. col_sum's values. */
static inline void cols_sum8(const int8_t *RT, uint32_t stride, uint32_t i0, const uint16_t *idx, uint16_t n,
                             int32_t *out)
{
    const int8_t *b = RT + i0;
    const uint16_t *p = idx, *end = idx + n, *pe;
    uint16_t k;
#if defined(__ARM_FEATURE_DSP)
    if ((((uintptr_t)b | stride) & 3u) == 0u) {
        uint32_t q[4];
        if (n <= ETP_RCOL_FLUSH) {            /* one group (real speech: always): no flush loop */
            cols_lanes8(b, stride, p, end, q);
            lanes_set8(out, q);
            return;
        }
        for (; p < end; p = pe) {
            int first = p == idx;
            pe = (uint32_t)(end - p) > ETP_RCOL_FLUSH ? p + ETP_RCOL_FLUSH : end;
            cols_lanes8(b, stride, p, pe, q);
            if (first) {
                lanes_set8(out, q);
            } else {
                lanes_add8(out, q);
            }
        }
        return;
    }
#endif
    for (; p < end; p = pe) {
        /* Sums mod 2^32, read mod 2^16 at the flush: SXTAB16's wrapping lanes, without a sign extension per
         * add (a core without packed adds, e.g. RV32IMC, pays two shifts for each). */
        uint32_t lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int first = p == idx;
        pe = (uint32_t)(end - p) > ETP_RCOL_FLUSH ? p + ETP_RCOL_FLUSH : end;
        for (; p < pe; p++) {
            const int8_t *c = b + (uint32_t)*p * stride;
            for (k = 0; k < 8u; k++) {
                lane[k] += (uint32_t)(int32_t)c[k];
            }
        }
        for (k = 0; k < 8u; k++) {
            int32_t v = (int16_t)(uint16_t)lane[k];
            out[k] = first ? v : out[k] + v;
        }
    }
}
#endif

/* The 0/1 spikes' sums of the rows i..i + 7 of a transposed R that are below n, into out. */
static inline void rec_cols8(const etp_wh_t *RT, uint32_t stride, uint16_t i, uint16_t n, const uint16_t *idx, uint16_t nr,
                      int32_t *out)
{
    uint16_t k;
#if ETP_WH_BITS == 8
    if (i + 8u <= n) {
        cols_sum8((const int8_t *)(const void *)RT, stride, i, idx, nr, out);
        return;
    }
#endif
    for (k = 0; k < 8u && i + k < n; k++) {
        out[k] = col_sum(RT + i + k, stride, idx, nr);
    }
}

/* The int16 inputs in the order dot_dense8 reads them: in each group of four (x0, x2, x1, x3), the
 * pairs SXTB16 makes of four int8 weights (w0, w2) and (w1, w3); the last n % 4 as they are. */
static void pair_inputs8(const int16_t *x, uint16_t n, int16_t *out)
{
    uint32_t j = 0;
    for (; j + 3u < n; j += 4u) {
        out[j] = x[j];
        out[j + 1u] = x[j + 2u];
        out[j + 2u] = x[j + 1u];
        out[j + 3u] = x[j + 3u];
    }
    for (; j < n; j++) {
        out[j] = x[j];
    }
}

/* sum_j row[j] x[j] over all n entries of int8 weights and int16 inputs given in pair_inputs8's order
 * (xp), in int64: four products per two SMLALD on a Cortex-M4 (SXTB16 splits four weights into
 * (w0, w2) and (w1, w3)), or the same products in plain C; the same integer sum as dot_nonzero_h. */
static int64_t dot_dense8(const int8_t *row, const int16_t *xp, uint16_t n)
{
    int64_t acc = 0;
    uint32_t j = 0;
#if defined(__ARM_FEATURE_DSP)
    for (; j + 3u < n; j += 4u) {
        uint32_t w;
        int16x2_t a, b;
        memcpy(&w, row + j, 4);               /* an LDR; unaligned access is allowed on the M4 */
        memcpy(&a, xp + j, 4);                /* (x0, x2) */
        memcpy(&b, xp + j + 2u, 4);           /* (x1, x3) */
        acc = __smlald(__sxtb16((int8x4_t)w), a, acc);
        acc = __smlald(__sxtb16((int8x4_t)((w >> 8) | (w << 24))), b, acc);
    }
#else
    for (; j + 3u < n; j += 4u) {
        acc += (int64_t)row[j] * xp[j] + (int64_t)row[j + 2u] * xp[j + 1u] + (int64_t)row[j + 1u] * xp[j + 2u] +
               (int64_t)row[j + 3u] * xp[j + 3u];
    }
#endif
    for (; j < n; j++) {
        acc += (int64_t)row[j] * xp[j];
    }
    return acc;
}

#if defined(__ARM_FEATURE_DSP)
/* SXTB16 of w rotated right by 8 bits, in one instruction (GCC does not fold __ror into __sxtb16):
 * the odd bytes (w1, w3) sign-extended. */
static inline int16x2_t sxtb16_ror8(uint32_t w)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}
#endif

/* The eighths of nonzero int16 inputs from which etp_lif_step_q takes the dense rows instead of the nonzero list
 * (about 7 instructions a nonzero input on a Cortex-M4, 11 on an RV32): with SMLAD (~1 instruction a product)
 * from an eighth; without it, a wide W0's 32-bit products (~3.5) from a quarter, 64-bit products from three
 * quarters. Real speech has many frames of digital silence, where the deltas are exactly 0: of 15 150 frames of
 * real development clips, 42 % are less than three quarters nonzero, 6 % between an eighth and a quarter. */
#if defined(__ARM_FEATURE_DSP)
#define ETP_DENSE_E8(w16) 1u
#else
#define ETP_DENSE_E8(w16) ((w16) ? 2u : 6u)
#endif

/* An int8 x int16 product is at most 2^7 2^15 = 2^22 in magnitude: up to this many of them sum
 * exactly in an int32 (SMLAD's 32-bit accumulator never wraps). */
#define ETP_DOT8_N32 ((uint32_t)(INT32_MAX / ((int32_t)1 << 22)))

/* Four inputs (two pairs, from x) of dot_dense8_x4's four rows (at p, p + s, q and q + s), stepping x, p
 * and q: its loop's round is this twice in one asm block (one text, the same instructions as written out). */
#define ETP_DOT8_X4_ROUND \
    "ldr %[xa], [%[x]], #4\n\t" \
    "ldr %[xb], [%[x]], #4\n\t" \
    "ldr %[w], [%[p], %[s]]\n\t" \
    "sxtb16 %[t], %[w]\n\t" \
    "smlad %[a1], %[t], %[xa], %[a1]\n\t" \
    "sxtb16 %[w], %[w], ror #8\n\t" \
    "smlad %[a1], %[w], %[xb], %[a1]\n\t" \
    "ldr %[w], [%[p]], #4\n\t" \
    "sxtb16 %[t], %[w]\n\t" \
    "smlad %[a0], %[t], %[xa], %[a0]\n\t" \
    "sxtb16 %[w], %[w], ror #8\n\t" \
    "smlad %[a0], %[w], %[xb], %[a0]\n\t" \
    "ldr %[w], [%[q], %[s]]\n\t" \
    "sxtb16 %[t], %[w]\n\t" \
    "smlad %[a3], %[t], %[xa], %[a3]\n\t" \
    "sxtb16 %[w], %[w], ror #8\n\t" \
    "smlad %[a3], %[w], %[xb], %[a3]\n\t" \
    "ldr %[w], [%[q]], #4\n\t" \
    "sxtb16 %[t], %[w]\n\t" \
    "smlad %[a2], %[t], %[xa], %[a2]\n\t" \
    "sxtb16 %[w], %[w], ror #8\n\t" \
    "smlad %[a2], %[w], %[xb], %[a2]"

/* dot_dense8 of the four rows r0, r0 + stride, r0 + 2 stride, r0 + 3 stride against the same paired
 * inputs xp, into d[0..3]: each input pair is loaded once for four rows, and with n <= ETP_DOT8_N32
 * the sums run in 32 bits (SMLAD). The same integer sums as dot_dense8. */
static void dot_dense8_x4(const int8_t *r0, uint32_t stride, const int16_t *xp, uint16_t n, int64_t *d)
{
    const int8_t *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
#if defined(__ARM_FEATURE_DSP)
    if (n <= ETP_DOT8_N32) {
        const int8_t *p = r0, *q = r2;
        const int16_t *x = xp, *xe = xp + (n & ~7u);
        uint32_t j = n & ~7u;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        /* Eight inputs of the four rows a round, in registers: rows 0 and 1 at p and p + stride, rows 2
         * and 3 at q and q + stride (the post-indexed loads step p and q), the four sums, both input
         * pairs and two temporaries (GCC spills the same loop written with intrinsics). Per row and
         * four inputs: SXTB16 (w0, w2) times (x0, x2) and SXTB16 ROR #8 (w1, w3) times (x1, x3), each
         * an SMLAD. */
        while (x < xe) {
            uint32_t w, t, xa, xb;
            __asm__(ETP_DOT8_X4_ROUND "\n\t" ETP_DOT8_X4_ROUND
                    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p] "+r"(p), [q] "+r"(q),
                      [x] "+r"(x), [w] "=&r"(w), [t] "=&r"(t), [xa] "=&r"(xa), [xb] "=&r"(xb)
                    : [s] "r"(stride)
                    : "memory");
        }
        for (; j + 3u < n; j += 4u) {         /* a last group of four, in pair_inputs8's order */
            uint32_t w0, w1, w2, w3;
            int16x2_t a, b;
            memcpy(&a, xp + j, 4);
            memcpy(&b, xp + j + 2u, 4);
            memcpy(&w0, r0 + j, 4);
            memcpy(&w1, r1 + j, 4);
            memcpy(&w2, r2 + j, 4);
            memcpy(&w3, r3 + j, 4);
            a0 = __smlad(sxtb16_ror8(w0), b, __smlad(__sxtb16((int8x4_t)w0), a, a0));
            a1 = __smlad(sxtb16_ror8(w1), b, __smlad(__sxtb16((int8x4_t)w1), a, a1));
            a2 = __smlad(sxtb16_ror8(w2), b, __smlad(__sxtb16((int8x4_t)w2), a, a2));
            a3 = __smlad(sxtb16_ror8(w3), b, __smlad(__sxtb16((int8x4_t)w3), a, a3));
        }
        for (; j < n; j++) {                  /* the last n % 4, in their own order */
            a0 += (int32_t)r0[j] * xp[j];
            a1 += (int32_t)r1[j] * xp[j];
            a2 += (int32_t)r2[j] * xp[j];
            a3 += (int32_t)r3[j] * xp[j];
        }
        d[0] = a0;
        d[1] = a1;
        d[2] = a2;
        d[3] = a3;
        return;
    }
#endif
    d[0] = dot_dense8(r0, xp, n);
    d[1] = dot_dense8(r1, xp, n);
    d[2] = dot_dense8(r2, xp, n);
    d[3] = dot_dense8(r3, xp, n);
}

#if defined(__ARM_FEATURE_DSP)
/* Four inputs of dot_dense16_x2's two rows, stepping x, p and q: the input pairs (x0, x1), (x2, x3) in one LDRD,
 * each row's weight pairs (w0, w1), (w2, w3) in one LDRD, two SMLAD a row (a word of each is one operand pair). */
#define ETP_DOT16_X2_ROUND \
    "ldrd %[xa], %[xb], [%[x]], #8\n\t" \
    "ldrd %[w0], %[w1], [%[p]], #8\n\t" \
    "smlad %[a0], %[w0], %[xa], %[a0]\n\t" \
    "smlad %[a0], %[w1], %[xb], %[a0]\n\t" \
    "ldrd %[w0], %[w1], [%[q]], #8\n\t" \
    "smlad %[a1], %[w0], %[xa], %[a1]\n\t" \
    "smlad %[a1], %[w1], %[xb], %[a1]"
#define ETP_DOT16_X2_OPERANDS \
    : [a0] "+r"(a0), [a1] "+r"(a1), [p] "+r"(p), [q] "+r"(q), [x] "+r"(xs), [xa] "=&r"(xa), [xb] "=&r"(xb), \
      [w0] "=&r"(w0), [w1] "=&r"(w1) \
    : \
    : "memory"
#endif

/* sum_j r[j] x[j] of the two int16 rows r0 and r1 that hold int8 values (a wide W0: layout.wide_input) against
 * the int16 inputs x, into d[0..1]. With n <= ETP_DOT8_N32 the int8 x int16 products sum exactly in 32 bits: on a
 * Cortex-M4 with r0, r1 and x word-aligned each word of weights or inputs is one SMLAD operand pair, sixteen
 * inputs a round; elsewhere one 32-bit multiply-add a product (a core without DSP extensions pays several
 * instructions for each 64-bit one); longer rows take dot_dense16. The same integer sums as dot_dense8. */
static void dot_dense16_x2(const int16_t *r0, const int16_t *r1, const int16_t *x, uint16_t n, int64_t *d)
{
#if defined(__ARM_FEATURE_DSP)
    if ((((uintptr_t)r0 | (uintptr_t)r1 | (uintptr_t)x) & 3u) == 0u && n <= ETP_DOT8_N32) {
        const int16_t *p = r0, *q = r1, *xs = x, *x16 = x + (n & ~15u), *x4 = x + (n & ~3u);
        int32_t a0 = 0, a1 = 0;
        uint32_t xa, xb, w0, w1;
        while (xs < x16) {
            __asm__(ETP_DOT16_X2_ROUND "\n\t" ETP_DOT16_X2_ROUND "\n\t" ETP_DOT16_X2_ROUND "\n\t" ETP_DOT16_X2_ROUND
                    ETP_DOT16_X2_OPERANDS);
        }
        while (xs < x4) {
            __asm__(ETP_DOT16_X2_ROUND ETP_DOT16_X2_OPERANDS);
        }
        if ((n & 3u) != 0u) {                 /* the last n % 4 (none for kws-mcu's 120 features: no call) */
            a0 += (int32_t)dot_dense16(p, xs, (uint16_t)(n & 3u));   /* the row's whole sum fits 32 bits (n <= N32) */
            a1 += (int32_t)dot_dense16(q, xs, (uint16_t)(n & 3u));
        }
        d[0] = a0;
        d[1] = a1;
        return;
    }
#endif
    if (n <= ETP_DOT8_N32) {
        int32_t a0 = 0, a1 = 0;
        uint16_t j;
        for (j = 0; j < n; j++) {
            a0 += (int32_t)r0[j] * x[j];
            a1 += (int32_t)r1[j] * x[j];
        }
        d[0] = a0;
        d[1] = a1;
        return;
    }
    d[0] = dot_dense16(r0, x, n);
    d[1] = dot_dense16(r1, x, n);
}

/* etp_round_shift(a, k), in 32 bits where that is exact: 0 < k <= 30 and |a| < 2^30 (a + 2^(k-1) fits an
 * int32), the floor through a nonnegative offset (no right shift of a negative value); else the int64 twin. */
static inline int64_t round_shift_fast(int64_t a, int k)
{
    if ((uint32_t)(k - 1) < 30u && (uint64_t)(a + 0x40000000) < 0x80000000u) {
        uint32_t t = (uint32_t)((int32_t)a + (1 << (k - 1))) + 0x80000000u;
        return (int32_t)(t >> k) - (int32_t)(0x80000000u >> k);
    }
    return etp_round_shift(a, k);
}

/* etp_round_shift(a, 15) for |a| < 2^62 (the leak alpha_q v): the floor through a nonnegative offset. */
static inline int64_t leak15(int64_t a)
{
    return (int64_t)(((uint64_t)a + ((uint64_t)1 << 14) + ((uint64_t)1 << 63)) >> 15) - ((int64_t)1 << 48);
}

/* lif_step_q's end of one neuron from its saturated sum p: vpre (if kept), spike and reset. */
static inline void lif_fire(int32_t *v, int8_t *s, int32_t *vpre, int32_t p, int32_t vth_q, int hard)
{
    if (vpre != NULL) {
        *vpre = p;
    }
    *s = (int8_t)(p >= vth_q);
    *v = p < vth_q ? p : hard ? 0 : (int32_t)((uint32_t)p - (uint32_t)vth_q);
}

/* One neuron's end of lif_step_q from vp = leak + cur: saturation, then lif_fire. */
static inline void lif_neuron(int32_t *v, int8_t *s, int32_t *vpre, int64_t vp, int32_t vth_q, int hard)
{
    lif_fire(v, s, vpre, (int32_t)etp_sat(vp, INT32_MIN, INT32_MAX), vth_q, hard);
}

/* An int8 x int16 product is at most 2^22 in magnitude: up to this many of them sum to less than 2^30
 * (etp_round_shift32's range). */
#define ETP_DOT8_N30 ((uint32_t)((1L << 30) / (1L << 22) - 1))

/* sat(a + b) to int32: QADD on a core with the DSP extension. */
static inline int32_t sat_add32(int32_t a, int32_t b)
{
#if defined(__ARM_FEATURE_DSP)
    return __qadd(a, b);
#else
    return (int32_t)etp_sat((int64_t)a + b, INT32_MIN, INT32_MAX);
#endif
}

/* etp_round_shift(a, k) of a recurrent sum: 0 < k <= 30 and |a| < 2^30, or k <= 0 and |a 2^-k| < 2^30
 * (lif_dense8's caller checks the bound). */
static inline int32_t rec_shift32(int32_t a, int k)
{
    return k > 0 ? etp_round_shift32(a, k) : a * (int32_t)((uint32_t)1 << -k);
}

/* What lif_rows4 reads besides a group's sums: the same for every group of a step. */
typedef struct {
    int32_t *v, *vpre;
    int8_t *s;
    int sh_x, sh_r, hard;
    int32_t alpha_q, vth_q;
} lif_end_t;

/* lif_dense8's 32-bit sum of one row (its shift sh in [0, 30], the leak within int32): |cur| < 2^30 + 2^30 and
 * one saturating add. */
static inline int32_t lif_p32(int64_t d, int32_t rc, int sh, int sh_r, int32_t alpha_q, int32_t v)
{
    int32_t cur = (sh == 0 ? (int32_t)d : etp_round_shift32((int32_t)d, sh)) + rec_shift32(rc, sh_r);
    return sat_add32((int32_t)leak15((int64_t)alpha_q * v), cur);
}

/* The end of lif_dense8's rows i .. i + 3 when each row's shift (sh4[k], or the tensor's) lies in [0, 30] and the
 * leak fits 32 bits. A function of its own (not inlined): inside lif_dense8 the dot products hold the registers
 * and the end of a row re-reads its invariants from the stack (2.7 k instructions a step of kws-mcu). */
static ETP_NOINLINE void lif_rows4(const lif_end_t *c, uint16_t i, const int64_t *d, const int32_t *rc,
                                   const int8_t *sh4)
{
    int32_t *v = c->v + i, *vpre = c->vpre != NULL ? c->vpre + i : NULL;
    int8_t *s = c->s + i;
    uint16_t k;
    for (k = 0; k < 4u; k++) {
        int32_t p = lif_p32(d[k], rc[k], sh4 != NULL ? sh4[k] : c->sh_x, c->sh_r, c->alpha_q, v[k]);
        lif_fire(v + k, s + k, vpre != NULL ? vpre + k : NULL, p, c->vth_q, c->hard);
    }
}

/* etp_lif_step_q's rows for dense int16 inputs (m <= ETP_DOT8_N30 of them), int8 rows W with the inputs paired
 * in xp (pair_inputs8), or int16 rows W16 holding int8 values (a wide W0) with xp the inputs as they are, and,
 * when nr != 0, 0/1 previous spikes at idx_r whose shifted sums stay below 2^30 (rec_shift32): four rows
 * at a time (dot_dense8_x4 or dot_dense16_x2 twice, sum_at_h4), each row's sums below 2^30, so that with a row shift in [0, 30]
 * and -2^15 < alpha_q <= 2^15 the row runs in 32 bits (etp_round_shift32, one saturating add); other rows
 * take etp_round_shift and the 64-bit sum. The same values as the general loop. */
static void lif_dense8(int32_t *v, int8_t *s, int32_t *vpre, uint16_t n, const int8_t *W, const int16_t *W16,
                       uint16_t m, const int16_t *xp, int sh_x, const int8_t *sh_x_row, const etp_wh_t *R, uint32_t r_stride,
                       const uint16_t *idx_r, uint16_t nr, int sh_r, int32_t alpha_q, int32_t vth_q, int hard)
{
    int64_t d[4];
    int32_t rec[4] = {0, 0, 0, 0};   /* no spikes: 0, and so is its shift */
    int32_t rec8[8];                 /* transposed R: the sums of rows i & ~7 .. + 7 (rec_cols8) */
    const int32_t *rc = rec;         /* this group's four sums */
    uint16_t i, k, g;
    /* round_shift(alpha_q v, 15) lies in [-2^31, 2^31) for every int32 v */
    int leak32 = alpha_q > -32768 && alpha_q <= 32768;
    const lif_end_t end = {v, vpre, s, sh_x, sh_r, hard, alpha_q, vth_q};
#if !ETP_ROW_SHIFTS
    (void)sh_x_row;
#endif
    for (i = 0; i < n; i = (uint16_t)(i + g)) {
        g = n - i < 4 ? (uint16_t)(n - i) : 4u;
        if (g == 4u) {
            if (W16 != NULL) {
                const int16_t *r = W16 + (uint32_t)i * m;
                dot_dense16_x2(r, r + m, xp, m, d);
                dot_dense16_x2(r + 2u * m, r + 3u * m, xp, m, d + 2);
            } else {
                dot_dense8_x4(W + (uint32_t)i * m, m, xp, m, d);
            }
            if (nr != 0u && r_stride == 0u) {
                sum_at_h4(R + (uint32_t)i * n, n, idx_r, nr, rec);
            }
        } else {
            for (k = 0; k < g; k++) {           /* the last n % 4 rows */
                d[k] = W16 != NULL ? dot_dense16(W16 + (uint32_t)(i + k) * m, xp, m)
                                   : dot_dense8(W + (uint32_t)(i + k) * m, xp, m);
                rec[k] = nr != 0u && r_stride == 0u ? (int32_t)sum_at_h(R + (uint32_t)(i + k) * n, idx_r, nr) : 0;
            }
        }
        if (nr != 0u && r_stride != 0u) {       /* groups start at multiples of four */
            if ((i & 7u) == 0u) {
                rec_cols8(R, r_stride, i, n, idx_r, nr, rec8);
            }
            rc = rec8 + (i & 7u);
        }
#if ETP_ROW_SHIFTS
        const int8_t *sh4 = sh_x_row != NULL ? sh_x_row + i : NULL;
#else
        const int8_t *sh4 = NULL;
#endif
        /* every shift of the group in [0, 30] (an OR of them <= 30 is sufficient; a negative one fails it) */
        if (g == 4u && leak32
            && (sh4 != NULL ? ((uint32_t)sh4[0] | (uint32_t)sh4[1] | (uint32_t)sh4[2] | (uint32_t)sh4[3]) <= 30u
                            : (uint32_t)sh_x <= 30u)) {
            lif_rows4(&end, i, d, rc, sh4);
            continue;
        }
        for (k = 0; k < g; k++) {
            uint16_t r = (uint16_t)(i + k);
#if ETP_ROW_SHIFTS
            int sh = sh_x_row != NULL ? sh_x_row[r] : sh_x;
#else
            int sh = sh_x;
#endif
            int32_t p;
            if ((uint32_t)sh <= 30u && leak32) {
                p = lif_p32(d[k], rc[k], sh, sh_r, alpha_q, v[r]);
            } else {
                p = (int32_t)etp_sat(leak15((int64_t)alpha_q * v[r]) + etp_round_shift(d[k], sh)
                                         + rec_shift32(rc[k], sh_r),
                                     INT32_MIN, INT32_MAX);
            }
            lif_fire(v + r, s + r, vpre != NULL ? vpre + r : NULL, p, vth_q, hard);
        }
    }
}

void etp_lif_step_q(int32_t *v, int8_t *s, int32_t *vpre, uint16_t n,
                    const etp_vec_t *x, const etp_wh_t *W, int w16, int sh_x, const int8_t *sh_x_row,
                    const etp_vec_t *s_prev, const etp_wh_t *R, uint32_t r_stride, int sh_r,
                    int32_t alpha_q, int32_t vth_q, int hard,
                    uint16_t *idx_x, int16_t *val_x, uint16_t *idx_r, int16_t *val_r)
{
    uint16_t nx = etp_nonzero(x, idx_x, val_x);
    uint16_t nr = R != NULL ? etp_nonzero(s_prev, idx_r, val_r) : 0;
    uint16_t i;
    int32_t rec[4] = {0, 0, 0, 0}; /* spike sums of four recurrent rows (sum_at_h4) */
    int32_t rec8[8];               /* transposed R: spike sums of eight rows (rec_cols8) */
    int64_t dq[4] = {0, 0, 0, 0};  /* dense int8 rows: the sums of four rows (dot_dense8_x4) */
    int ones = 1;                 /* previous spikes are 0/1 (unless a host wrote others): sums of weights */
    for (i = 0; i < nr; i++) {
        ones &= val_r[i] == 1;
    }
    /* int16 inputs (features) with enough nonzeros: a dense dot product is cheaper than the index list */
    int dense = x->bits == 16 && 8u * nx >= ETP_DENSE_E8(w16) * x->n;
#if !ETP_ROW_SHIFTS
    (void)sh_x_row;               /* one shift per tensor: the per-row table is not compiled in */
#endif
    const int16_t *W16 = w16 ? (const int16_t *)(const void *)W : NULL;
    if (dense && (ETP_WH_BITS == 8 || w16)) {
        const int16_t *xp = val_x;   /* the dense path does not read the nonzero list */
        if (!w16) {
            pair_inputs8((const int16_t *)x->p, x->n, val_x);
        } else if (((uintptr_t)x->p & 3u) == 0u) {
            xp = (const int16_t *)x->p;
        } else {                    /* on a word boundary for dot_dense16_x2 (val_x: layout.ALIGN4_SCRATCH) */
            memcpy(val_x, x->p, (size_t)x->n * 2u);
        }
        /* the recurrent sums' shifted values below 2^30: |sum| <= nr 2^7 (int8 rows, 0/1 spikes) */
        int rec32 = nr == 0u || (ones && ((uint32_t)(sh_r - 1) < 30u ||
                                          (sh_r <= 0 && sh_r > -23 && ((uint64_t)nr << (7 - sh_r)) < (1u << 30))));
        if (x->n <= ETP_DOT8_N30 && rec32) {
            lif_dense8(v, s, vpre, n, W16 != NULL ? NULL : (const int8_t *)(const void *)W, W16, x->n, xp, sh_x, sh_x_row,
                       R, r_stride, idx_r, nr, sh_r, alpha_q, vth_q, hard);
            return;
        }
    }
    for (i = 0; i < n; i++) {
        const etp_wh_t *wr = W + (uint32_t)i * x->n;
        int64_t dot, cur;
        if (W16 != NULL) {
            const int16_t *w = W16 + (uint32_t)i * x->n;
            dot = dense ? dot_dense16(w, (const int16_t *)x->p, x->n) : dot_nonzero_w16(w, idx_x, val_x, nx);
        } else if (!dense) {
            dot = dot_nonzero_h(wr, idx_x, val_x, nx);
        } else if (ETP_WH_BITS == 16) {
            dot = dot_dense16((const int16_t *)(const void *)wr, (const int16_t *)x->p, x->n);
        } else if (i >= (n & ~3u)) {            /* the last n % 4 rows */
            dot = dot_dense8((const int8_t *)(const void *)wr, val_x, x->n);
        } else {
            if ((i & 3u) == 0u) {               /* rows i..i + 3 at once; the next three read dq */
                dot_dense8_x4((const int8_t *)(const void *)wr, x->n, val_x, x->n, dq);
            }
            dot = dq[i & 3u];
        }
#if ETP_ROW_SHIFTS
        cur = round_shift_fast(dot, sh_x_row != NULL ? sh_x_row[i] : sh_x);
#else
        cur = round_shift_fast(dot, sh_x);
#endif
        if (R != NULL && nr != 0u) {  /* no spikes: the sum and its rounding are 0 */
            const etp_wh_t *rr = R + (uint32_t)i * n;
            int64_t rs;
            if (r_stride != 0u) {               /* transposed: row i is column offset i */
                if (!ones) {
                    rs = col_dot(R + i, r_stride, idx_r, val_r, nr);
                } else {
                    if ((i & 7u) == 0u) {       /* rows i..i + 7 at once; the next seven read rec8 */
                        rec_cols8(R, r_stride, i, n, idx_r, nr, rec8);
                    }
                    rs = rec8[i & 7u];
                }
            } else if (!ones) {
                rs = dot_nonzero_h(rr, idx_r, val_r, nr);
            } else if (i >= (n & ~3u)) {        /* the last n % 4 rows */
                rs = sum_at_h(rr, idx_r, nr);
            } else {
                if ((i & 3u) == 0u) {           /* rows i..i + 3 at once; the next three read rec */
                    sum_at_h4(rr, n, idx_r, nr, rec);
                }
                rs = rec[i & 3u];
            }
            cur += round_shift_fast(rs, sh_r);
        }
        lif_neuron(v + i, s + i, vpre != NULL ? vpre + i : NULL, leak15((int64_t)alpha_q * v[i]) + cur, vth_q, hard);
    }
}

void etp_trace_step_q(int16_t *tr, const int8_t *s, uint16_t n, int32_t lam_q, int ft)
{
    uint16_t i;
    /* in 32 bits: |lam_q tr| < 2^15 2^15 and 0 <= ft <= 15, so every term fits; floor(a / 2^15)
     * through a nonnegative offset (no right shift of a negative value) */
    for (i = 0; i < n; i++) {
        int32_t a = (int32_t)(((uint32_t)(lam_q * tr[i] + (1 << 14)) + 0x80000000u) >> 15) - (1 << 16) +
                    s[i] * (1 << ft);
#if defined(__ARM_FEATURE_SAT)
        tr[i] = (int16_t)__ssat(a, 16);                 /* SSAT: the same clamp in one instruction */
#else
        tr[i] = (int16_t)(a < INT16_MIN ? INT16_MIN : (a > INT16_MAX ? INT16_MAX : a));
#endif
    }
}

void etp_readout_step_q(int32_t *u, const int8_t *s, const etp_w_t *W, uint16_t n_out, uint16_t h,
                        int32_t beta_q, uint16_t *idx, int16_t *val)
{
    etp_vec_t sv;
    uint16_t k, ns;
    sv.p = s;
    sv.n = h;
    sv.bits = 8;
    int32_t sums[4] = {0, 0, 0, 0};
    int ones = 1;                 /* 0/1 spikes (unless a host wrote others): sums of weights, four rows per index */
    ns = etp_nonzero(&sv, idx, val);
    for (k = 0; k < ns; k++) {
        ones &= val[k] == 1;
    }
    for (k = 0; k < n_out; k++) {
        int64_t acc;
        if (ones && k < (n_out & ~3u)) {
            if ((k & 3u) == 0u) {             /* rows k..k + 3 at once; the next three read sums */
                sum_at_w4(W + (uint32_t)k * h, h, idx, ns, sums);
            }
            acc = sums[k & 3u];
        } else {
            acc = dot_nonzero(W + (uint32_t)k * h, idx, val, ns);
        }
        u[k] = (int32_t)etp_sat(etp_round_shift((int64_t)beta_q * u[k], 15) + acc, INT32_MIN, INT32_MAX);
    }
}

int64_t etp_surrogate_q(int32_t vpre, int32_t vth_q, int64_t gamma_q)
{
    int64_t d = (int64_t)vpre - vth_q, pd, den;
    d = d < 0 ? -d : d;
    d = d < ETP_SURR_D_MAX ? d : ETP_SURR_D_MAX;
    pd = etp_round_shift(ETP_PI_Q16 * d, 16);
    den = ((int64_t)1 << 24) + pd * pd;
    return (gamma_q * ((int64_t)1 << 24) + (den >> 1)) / den;     /* all >= 0: '/' is floor */
}

void etp_soft_targets_q(const int16_t *p_row, const int16_t *p_cols, uint16_t K, uint16_t P, int ft,
                        int64_t *negd, int64_t *sm, int32_t *y)
{
    uint16_t k, j;
    for (k = 0; k < K; k++) {
        int64_t acc = 0;
        const int16_t *col = p_cols + (uint32_t)k * P;
        for (j = 0; j < P; j++) {
            int64_t q = (int64_t)p_row[j] - col[j];
            acc += q * q;
        }
        negd[k] = -etp_isqrt(acc);
    }
    etp_softmax_q(negd, K, ft, sm);
    for (k = 0; k < K; k++) {
        y[k] = (int32_t)sm[k];
    }
}

int64_t etp_delta_q(int64_t d, int64_t sig, int shift)
{
    return etp_sat(etp_round_shift(d * sig, shift), -ETP_DELTA_LIMIT, ETP_DELTA_LIMIT);
}

void etp_contrastive_grads_q(const int16_t *h, const int16_t *g, const int32_t *y, uint16_t K, uint16_t H,
                             int ft, int64_t bdiv, const int32_t *vpre, const int32_t *vpre_t, int32_t vth_q,
                             int64_t *z, int64_t *p, int32_t *dz, int64_t *delta, int64_t *delta_t)
{
    uint16_t k, i;
    for (k = 0; k < K; k++) {
        z[k] = dot_dense16(g + (uint32_t)k * H, h, H);   /* sum_i h[i] g[k, i] */
    }
    etp_softmax_q(z, K, 2 * ft, p);
    for (k = 0; k < K; k++) {
        dz[k] = (int32_t)etp_div_round(p[k] - y[k], bdiv);
    }
    for (i = 0; i < H; i++) {
        int64_t dh = 0;
        for (k = 0; k < K; k++) {
            dh += (int64_t)dz[k] * g[(uint32_t)k * H + i];
        }
        delta[i] = etp_delta_q(dh, etp_surrogate_q(vpre[i], vth_q, ETP_GAMMA_Q), ETP_DELTA_SHIFT);
    }
    if (delta_t != NULL) {
        for (k = 0; k < K; k++) {
            for (i = 0; i < H; i++) {
                uint32_t ki = (uint32_t)k * H + i;
                delta_t[ki] = etp_delta_q((int64_t)dz[k] * h[i], etp_surrogate_q(vpre_t[ki], vth_q, ETP_GAMMA_Q),
                                          ETP_DELTA_SHIFT);
            }
        }
    }
}

void etp_readout_error_q(const int32_t *u, uint16_t n_out, uint16_t label, int fo, int64_t bdiv,
                         int64_t *z, int64_t *p, int32_t *e)
{
    uint16_t k;
    for (k = 0; k < n_out; k++) {
        z[k] = u[k];
    }
    etp_softmax_q(z, n_out, fo, p);
    for (k = 0; k < n_out; k++) {
        e[k] = (int32_t)etp_div_round(p[k] - (k == label ? ETP_Q15_ONE : 0), bdiv);
    }
}
