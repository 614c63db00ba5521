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

static int64_t vec_at(const etp_vec_t *x, uint16_t j)
{
    return x->bits == 8 ? ((const int8_t *)x->p)[j] : ((const int16_t *)x->p)[j];
}

uint16_t etp_nonzero(const etp_vec_t *x, uint16_t *idx, int16_t *val)
{
    uint16_t j, n = 0;
    for (j = 0; j < x->n; j++) {
        int64_t a = vec_at(x, j);
        if (a != 0) {
            idx[n] = j;
            val[n] = (int16_t)a;
            n++;
        }
    }
    return n;
}

/* sum of row[idx[t]] * val[t], t < n, in int64 (the nonzero inputs of etp_nonzero): one body, made for each weight
 * type: etp_w_t (the learning weights) and etp_wh_t (the hidden layers: ETP_WH_BITS wide, int8 in a frozen-hidden
 * build). */
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
 * loaded once for four rows (the same sums, in 32 bits as sum_at_h's). */
static void sum_at_h4(const etp_wh_t *r, uint32_t stride, const uint16_t *idx, uint16_t n, int32_t *out)
{
    const etp_wh_t *r1 = r + stride, *r2 = r1 + stride, *r3 = r2 + stride;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint16_t t;
    for (t = 0; t < n; t++) {
        uint16_t j = idx[t];
        a0 += r[j];
        a1 += r1[j];
        a2 += r2[j];
        a3 += r3[j];
    }
    out[0] = a0;
    out[1] = a1;
    out[2] = a2;
    out[3] = a3;
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

/* An int8 x int16 product is at most 2^7 2^15 = 2^22 in magnitude: up to this many of them sum
 * exactly in an int32 (SMLAD's 32-bit accumulator never wraps). */
#define ETP_DOT8_N32 ((uint32_t)(INT32_MAX / ((int32_t)1 << 22)))

/* dot_dense8 of two rows r0, r1 against the same paired inputs xp (d0, d1): each input pair is
 * loaded once for both rows, and with n <= ETP_DOT8_N32 the sums run in 32 bits (SMLAD, eight
 * inputs a round). The same integer sums as dot_dense8. */
static void dot_dense8_x2(const int8_t *r0, const int8_t *r1, const int16_t *xp, uint16_t n, int64_t *d0,
                          int64_t *d1)
{
#if defined(__ARM_FEATURE_DSP)
    if (n <= ETP_DOT8_N32) {
        int32_t a0 = 0, a1 = 0;
        uint32_t j = 0;
        for (; j + 7u < n; j += 8u) {
            uint32_t w0, w1, v0, v1;
            int16x2_t a, b, c, d;
            memcpy(&w0, r0 + j, 4);
            memcpy(&v0, r0 + j + 4u, 4);
            memcpy(&w1, r1 + j, 4);
            memcpy(&v1, r1 + j + 4u, 4);
            memcpy(&a, xp + j, 4);            /* (x0, x2) */
            memcpy(&b, xp + j + 2u, 4);       /* (x1, x3) */
            memcpy(&c, xp + j + 4u, 4);
            memcpy(&d, xp + j + 6u, 4);
            a0 = __smlad(__sxtb16((int8x4_t)w0), a, a0);
            a1 = __smlad(__sxtb16((int8x4_t)w1), a, a1);
            a0 = __smlad(sxtb16_ror8(w0), b, a0);
            a1 = __smlad(sxtb16_ror8(w1), b, a1);
            a0 = __smlad(__sxtb16((int8x4_t)v0), c, a0);
            a1 = __smlad(__sxtb16((int8x4_t)v1), c, a1);
            a0 = __smlad(sxtb16_ror8(v0), d, a0);
            a1 = __smlad(sxtb16_ror8(v1), d, a1);
        }
        for (; j + 3u < n; j += 4u) {
            uint32_t w0, w1;
            int16x2_t a, b;
            memcpy(&w0, r0 + j, 4);
            memcpy(&w1, r1 + j, 4);
            memcpy(&a, xp + j, 4);
            memcpy(&b, xp + j + 2u, 4);
            a0 = __smlad(__sxtb16((int8x4_t)w0), a, a0);
            a1 = __smlad(__sxtb16((int8x4_t)w1), a, a1);
            a0 = __smlad(sxtb16_ror8(w0), b, a0);
            a1 = __smlad(sxtb16_ror8(w1), b, a1);
        }
        for (; j < n; j++) {
            a0 += (int32_t)r0[j] * xp[j];
            a1 += (int32_t)r1[j] * xp[j];
        }
        *d0 = a0;
        *d1 = a1;
        return;
    }
#endif
    *d0 = dot_dense8(r0, xp, n);
    *d1 = dot_dense8(r1, xp, n);
}

void etp_lif_step_q(int32_t *v, int8_t *s, int32_t *vpre, uint16_t n,
                    const etp_vec_t *x, const etp_wh_t *W, int sh_x, const int8_t *sh_x_row,
                    const etp_vec_t *s_prev, const etp_wh_t *R, int sh_r,
                    int32_t alpha_q, int32_t vth_q, int hard,
                    uint16_t *idx_x, int16_t *val_x, uint16_t *idx_r, int16_t *val_r)
{
    uint16_t nx = etp_nonzero(x, idx_x, val_x);
    uint16_t nr = R != NULL ? etp_nonzero(s_prev, idx_r, val_r) : 0;
    uint16_t i;
    int32_t rec[4] = {0, 0, 0, 0}; /* spike sums of four recurrent rows (sum_at_h4) */
    int64_t next = 0;             /* dense int8 rows: the odd row's sum, computed with the even one's */
    int ones = 1;                 /* previous spikes are 0/1 (unless a host wrote others): sums of weights */
    for (i = 0; i < nr; i++) {
        ones &= val_r[i] == 1;
    }
    /* mostly nonzero int16 inputs (features): a dense dot product is cheaper than the index list */
    int dense = x->bits == 16 && 4u * nx >= 3u * x->n;
#if !ETP_ROW_SHIFTS
    (void)sh_x_row;               /* one shift per tensor: the per-row table is not compiled in */
#endif
    if (dense && ETP_WH_BITS == 8) {
        pair_inputs8((const int16_t *)x->p, x->n, val_x);   /* the dense path does not read the nonzero list */
    }
    for (i = 0; i < n; i++) {
        const etp_wh_t *wr = W + (uint32_t)i * x->n;
        int64_t dot;
        if (!dense) {
            dot = dot_nonzero_h(wr, idx_x, val_x, nx);
        } else if (ETP_WH_BITS == 16) {
            dot = dot_dense16((const int16_t *)(const void *)wr, (const int16_t *)x->p, x->n);
        } else if ((i & 1u) == 0u && i + 1u < n) {   /* rows i, i + 1 together; row i + 1's sum waits in next */
            dot_dense8_x2((const int8_t *)(const void *)wr, (const int8_t *)(const void *)(wr + x->n), val_x, x->n,
                          &dot, &next);
        } else if ((i & 1u) != 0u) {
            dot = next;
        } else {
            dot = dot_dense8((const int8_t *)(const void *)wr, val_x, x->n);
        }
#if ETP_ROW_SHIFTS
        int64_t cur = etp_round_shift(dot, sh_x_row != NULL ? sh_x_row[i] : sh_x);
#else
        int64_t cur = etp_round_shift(dot, sh_x);
#endif
        int64_t vp;
        if (R != NULL && nr != 0u) {  /* no spikes: the sum and its rounding are 0 */
            const etp_wh_t *rr = R + (uint32_t)i * n;
            int64_t rs;
            if (!ones) {
                rs = dot_nonzero_h(rr, idx_r, val_r, nr);
            } else if (i >= (n & ~3u)) {        /* the last n % 4 rows */
                rs = sum_at_h(rr, idx_r, nr);
            } else {
                if ((i & 3u) == 0u) {           /* rows i..i + 3 at once; the next three read rec */
                    sum_at_h4(rr, n, idx_r, nr, rec);
                }
                rs = rec[i & 3u];
            }
            cur += etp_round_shift(rs, sh_r);
        }
        vp = etp_sat(etp_round_shift((int64_t)alpha_q * v[i], 15) + cur, INT32_MIN, INT32_MAX);
        if (vpre != NULL) {
            vpre[i] = (int32_t)vp;
        }
        if (vp >= vth_q) {
            s[i] = 1;
            v[i] = hard ? 0 : (int32_t)(vp - vth_q);
        } else {
            s[i] = 0;
            v[i] = (int32_t)vp;
        }
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
    ns = etp_nonzero(&sv, idx, val);
    for (k = 0; k < n_out; k++) {
        int64_t acc = dot_nonzero(W + (uint32_t)k * h, idx, val, ns);
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
