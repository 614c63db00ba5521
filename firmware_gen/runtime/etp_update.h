/*
 * etp_update.h - C twins of edgetp/fixed/update_q.py: integer weight updates with
 * stochastic rounding (plain SGD and the factored RMS normalisation).
 *
 * The Python twin receives each tensor's whole int64 gradient; a microcontroller
 * cannot hold it, so the C twin asks for it one row at a time through a callback and
 * recomputes a row whenever it needs it again (the gradient is a sum of a few outer
 * products, cheap to recompute). Every value, and the order of the xorshift32 draws
 * (one per element, row-major, tensors in QModel.trainable_names order), is the
 * Python twin's.
 */
#ifndef ETP_UPDATE_H
#define ETP_UPDATE_H

#include <stdint.h>

#include "etp_internal.h"

/* Where the optimizer reads a tensor's raw int64 gradient (format p->gfrac):
 * row(p, i, g): fill g[0 .. cols-1] with row i and return 1, or return 0 if that row is
 *               all zero (g is then left as it was);
 * abs_max(p, g): max |g| over the whole tensor (g: scratch of cols entries). */
typedef struct {
    int (*row)(const etp_param_t *p, uint16_t i, int64_t *g);
    int64_t (*abs_max)(const etp_param_t *p, int64_t *g);
} etp_grad_t;

/* max |g| by reading every row through grad->row (an abs_max for any gradient). */
int64_t etp_grad_abs_max_rows(const etp_param_t *p, int (*row)(const etp_param_t *, uint16_t, int64_t *), int64_t *g);

/* apply_update_q: w[i,j] = sat(w - d), d = sround_shift(p, s, r), p = sat((g[i,j] >> eb) row_m[i] col_m[j],
 * +-ETP_P_LIMIT), s = row_s[i] + col_s[j], r = the next xorshift32 draw (one per element whatever s is);
 * s > 62 gives d = 0, s < 0 gives d = sat(p, +-2^20). bound >= 0 (a move limit in Q.16 weight LSB)
 * first clamps p to +-lim, lim = shl_sat(bound, s - 16, ETP_P_LIMIT) (s >= 16) or bound >> (16 - s). */
void etp_apply_update_q(const etp_param_t *p, const etp_grad_t *grad, int eb, const int32_t *row_m,
                        const int32_t *row_s, const int32_t *col_m, const int32_t *col_s, int64_t bound,
                        uint32_t *rng, int64_t *g);

/* move_bound: the normalised rules' move limit 2^clip lr in Q.16 LSB of a Q.fw weight,
 * floor(lr_m 2^(fw + 16 + clip - lr_e)) (saturating at ETP_P_LIMIT); -1 (no limit) when clip < 0. */
int64_t etp_move_bound(int32_t lr_m, int32_t lr_e, int32_t clip, int fw);

/* factored_scales (with _ms_ema; g's format is p->gfrac): update p's row/column mean-square EMAs (Q.ETP_STAT_F) and write the
 * multipliers row_m/col_m and shifts row_s/col_s (mode 0 factored; 1 rownorm: every column uses T2; 2 colnorm:
 * every row uses T2); returns eb. */
int etp_factored_scales(const etp_param_t *p, const etp_grad_t *grad, int beta_shift, int32_t lr_m,
                        int mode, int32_t *row_m, int32_t *row_s, int32_t *col_m, int32_t *col_s, int64_t *g,
                        int64_t *colsum);

/* update_q for one tensor: opt_cfg = {kind, lr_m, lr_e, beta_shift, train_all}. */
void etp_update_q(const etp_param_t *p, const etp_grad_t *grad, const int32_t *opt_cfg, uint32_t *rng);

#endif /* ETP_UPDATE_H */
