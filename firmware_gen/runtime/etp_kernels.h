/*
 * etp_kernels.h - C twins of edgetp/fixed/kernels_q.py, for one row (batch 1).
 *
 * Each kernel computes one row b of its Python twin (same name, prefix etp_) with the
 * same integer formula; docstrings and formats: edgetp/fixed/kernels_q.py and
 * docs/fixed-point.md. Integer sums do not depend on their order, so loops may skip
 * zero inputs (the Python twin does the same through _nonzero).
 */
#ifndef ETP_KERNELS_H
#define ETP_KERNELS_H

#include <stdint.h>

#include "etp_internal.h"

/* An input vector: n elements of int8 (bits 8: spikes, one-hot, int8 features) or int16. */
typedef struct {
    const void *p;
    uint16_t n;
    uint8_t bits;
} etp_vec_t;

/* _nonzero: indices and values of x's nonzero entries; returns their count. */
uint16_t etp_nonzero(const etp_vec_t *x, uint16_t *idx, int16_t *val);

/* lif_step_q, one row: cur = round_shift(W x, sh_x) (+ round_shift(R s_prev, sh_r) when R),
 * vpre = sat32(round_shift(alpha_q v, 15) + cur), s = vpre >= vth_q, v = 0 (hard) or
 * vpre - vth_q (soft) where s, else vpre. v and s are updated in place (s may be s_prev's
 * memory: s_prev is read first); vpre may be NULL (not kept). idx/val: scratch of x->n
 * and s_prev->n entries. sh_x_row (ETP_ROW_SHIFTS builds; else ignored): one shift per row
 * replacing sh_x (row scales, QModel.in_shifts), or NULL. r_stride: 0, R row-major (n, n); else R is stored
 * transposed, the column of previous spike j (row i's weight at i) at R + j r_stride (the same sums).
 * w16: W is (n, x->n) int16 holding int8 values, rows word-aligned (layout.wide_input), not etp_wh_t. */
void etp_lif_step_q(int32_t *v, int8_t *s, int32_t *vpre, uint16_t n,
                    const etp_vec_t *x, const etp_wh_t *W, int w16, int sh_x, const int8_t *sh_x_row,
                    const etp_vec_t *s_prev, const etp_wh_t *R, uint32_t r_stride, int sh_r,
                    int32_t alpha_q, int32_t vth_q, int hard,
                    uint16_t *idx_x, int16_t *val_x, uint16_t *idx_r, int16_t *val_r);

/* trace_step_q, one row: tr = sat16(round_shift(lam_q tr, 15) + s 2^ft), in place. */
void etp_trace_step_q(int16_t *tr, const int8_t *s, uint16_t n, int32_t lam_q, int ft);

/* readout_step_q, one row: u = sat32(round_shift(beta_q u, 15) + W s), in place; W (n_out, h). */
void etp_readout_step_q(int32_t *u, const int8_t *s, const etp_w_t *W, uint16_t n_out, uint16_t h,
                        int32_t beta_q, uint16_t *idx, int16_t *val);

/* surrogate_q, one element: sigma'(vpre) = gamma / (1 + (pi (vpre - vth))^2) in Q.ETP_SURR_F:
 * d = min(|vpre - vth_q|, ETP_SURR_D_MAX), pd = round_shift(ETP_PI_Q16 d, 16), den = 2^24 + pd^2,
 * sigma' = floor((gamma_q 2^24 + floor(den / 2)) / den). */
int64_t etp_surrogate_q(int32_t vpre, int32_t vth_q, int64_t gamma_q);

/* soft_targets_q, one row: y[k] = softmax_k(-isqrt(sum_j (p_row[j] - p_cols[k, j])^2)) in Q0.15,
 * p_cols (K, P) in Q.ft. negd, sm: scratch of K entries; y: out (K). */
void etp_soft_targets_q(const int16_t *p_row, const int16_t *p_cols, uint16_t K, uint16_t P, int ft,
                        int64_t *negd, int64_t *sm, int32_t *y);

/* contrastive_grads_q, surrogate_q and delta_q fused for one data row:
 *   Z[k] = sum_i h[i] g[k, i];  dz = div_round(softmax_q(Z, 2 ft) - y, bdiv)       (Q0.15)
 *   delta[i]      = delta_q((sum_k dz[k] g[k, i]), sigma'(vpre[i]), ETP_DELTA_SHIFT)
 *   delta_t[k, i] = delta_q(dz[k] h[i], sigma'(vpre_t[k, i]), ETP_DELTA_SHIFT)
 * (dh and dg of the Python twin are never stored). delta_t may be NULL (layer 0: not
 * needed). y: soft targets (K); z, p: scratch (K); dz: out (K). */
void etp_contrastive_grads_q(const int16_t *h, const int16_t *g, const int32_t *y, uint16_t K, uint16_t H,
                             int ft, int64_t bdiv, const int32_t *vpre, const int32_t *vpre_t, int32_t vth_q,
                             int64_t *z, int64_t *p, int32_t *dz, int64_t *delta, int64_t *delta_t);

/* delta_q, one element: sat(round_shift(d * sig, shift), +-ETP_DELTA_LIMIT). */
int64_t etp_delta_q(int64_t d, int64_t sig, int shift);

/* readout_error_q, one row: e[k] = div_round(softmax_q(u, fo)[k] - 2^15 [k == label], bdiv). */
void etp_readout_error_q(const int32_t *u, uint16_t n_out, uint16_t label, int fo, int64_t bdiv,
                         int64_t *z, int64_t *p, int32_t *e);

#endif /* ETP_KERNELS_H */
