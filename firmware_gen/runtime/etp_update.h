/*
 * etp_update.h - C twins of edgetp/fixed/update_q.py: integer weight updates with
 * stochastic rounding (plain SGD and the RMS-normalised rules colnorm, rownorm).
 *
 * A tensor's gradient reaches the optimizer as its factors, g = sum_t d_t x_t^T (one term
 * per data row and, from hidden layer 1 on, per target row; network_q.gradients_q), read
 * through a callback: the device never holds the dense gradient. The rule first rounds
 * the factors (quant_exps, grad_q: q = sum_t round_shift(d_t, ed) round_shift(x_t, ex)^T,
 * |q| < ETP_Q_LIMIT). With one term (every tensor of a one-hidden-layer net, the readout
 * and hidden layer 0 of any net) q is rank 1, so the row and column sums of q^2 are
 * products of two sums and the update visits only the elements whose row and column
 * factors are both nonzero (the others have q = 0: they neither move nor draw).
 * Every value, and the order of the xorshift32 draws (one per element with q != 0,
 * row-major, tensors in QModel.trainable_names order), is the Python twin's.
 */
#ifndef ETP_UPDATE_H
#define ETP_UPDATE_H

#include <stdint.h>

#include "etp_internal.h"
#include "etp_kernels.h"

/* One term d x^T of a gradient: d has p->rows entries of int32 (dbits 32) or int64 (64), x p->cols. */
typedef struct {
    const void *d;
    uint8_t dbits;
    etp_vec_t x;
} etp_term_t;

/* Where the optimizer reads a tensor's gradient (format p->gfrac): count(p) terms, term(p, t, out). */
typedef struct {
    uint16_t (*count)(const etp_param_t *p);
    void (*term)(const etp_param_t *p, uint16_t t, etp_term_t *out);
} etp_grad_t;

/* mean_stat: sq / n (a sum of n squares, 0 <= sq < 2^62) in Q.ETP_STAT_F, i.e. times 2^sh: sq is
 * shifted left by a = max(0, min(sh, 62 - bitlen(sq))), floor-divided by n, then shifted by sh - a
 * (saturating at ETP_STAT_MAX, or floor). */
int64_t etp_mean_stat(int64_t sq, uint16_t n, int sh);

/* ema_decay: c + round_shift(-c, k), an EMA's step towards 0 (its mean square 0: a column the step's gradient
 * missed, most of a readout's), for a statistic 0 <= c <= 2^62 and 1 <= k <= 31: c - floor((c + 2^(k-1) - 1) / 2^k)
 * (round_shift(-c, k) = -floor((c + 2^(k-1) - 1) / 2^k)), a nonnegative sum shifted by fewer than 32 bits. */
int64_t etp_ema_decay(int64_t c, int k);

/* q32: m 2^-s (m >= 0) as a Q.32 multiplier: floor(m 2^(32 - s)) saturated to [0, ETP_M_MAX]. */
int64_t etp_q32(int64_t m, int s);

/* rms_scales: update p's row/column mean-square EMAs (Q.ETP_STAT_F) from the sums of q^2 (rowsq, colsq)
 * and write the multipliers row_m/col_m and shifts row_s/col_s (mode 1 rownorm: every column uses
 * T2; 2 colnorm: every row uses T2). sh = 2e + ETP_STAT_F - 2 p->gfrac. act (n_act increasing column
 * indices, or NULL: all): the columns whose col_m/col_s the caller reads, the only ones written (every EMA
 * is updated; a column whose sum of q^2 is 0 decays in 32-bit shifts, etp_ema_decay). */
void etp_rms_scales(const etp_param_t *p, const int64_t *rowsq, const int64_t *colsq, int sh, int beta_shift,
                    int32_t lr_m, int mode, const uint16_t *act, uint16_t n_act, int32_t *row_m, int32_t *row_s,
                    int32_t *col_m, int32_t *col_s);

/* move_bound: the normalised rules' move limit 2^clip lr in Q.16 LSB of a Q.fw weight,
 * floor(lr_m 2^(fw + 16 + clip - lr_e)) (saturating at ETP_P_LIMIT); -1 (no limit) when clip < 0. */
int64_t etp_move_bound(int32_t lr_m, int32_t lr_e, int32_t clip, int fw);

/* update_q for one tensor, with opt_cfg's fields (ETP_CFG_*). */
void etp_update_q(const etp_param_t *p, const etp_grad_t *grad, const int32_t *opt_cfg, uint32_t *rng);

#endif /* ETP_UPDATE_H */
