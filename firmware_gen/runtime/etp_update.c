/*
 * etp_update.c - C twins of edgetp/fixed/update_q.py (see etp_update.h).
 */
#include "etp_update.h"

#include "etp_primitives.h"

/* Scratch of the update, reached through the model descriptor. */
#define SCR (&etp_net)

static uint32_t skip_draws(uint32_t x, uint16_t n)
{
    uint16_t j;
    for (j = 0; j < n; j++) {
        x = etp_xorshift32(x);
    }
    return x;
}

void etp_apply_update_q(const etp_param_t *p, const etp_grad_t *grad, int eb, const int32_t *row_m,
                        const int32_t *row_s, const int32_t *col_m, const int32_t *col_s, int64_t bound,
                        uint32_t *rng, int64_t *g)
{
    uint32_t x = *rng;
    uint16_t i, j;
    for (i = 0; i < p->rows; i++) {
        etp_w_t *w = p->w + (uint32_t)i * p->cols;
        /* a zero row or a zero multiplier moves nothing (sround_shift(0, s, r) = 0); only the draws remain */
        if (row_m[i] == 0 || !grad->row(p, i, g)) {
            x = skip_draws(x, p->cols);
            continue;
        }
        for (j = 0; j < p->cols; j++) {
            int64_t q, d;
            int s = row_s[i] + col_s[j];
            x = etp_xorshift32(x);
            q = etp_sat(etp_floor_shift(g[j], eb) * row_m[i] * col_m[j], -ETP_P_LIMIT, ETP_P_LIMIT);
            if (bound >= 0) {
                int64_t lim = s >= 16 ? etp_shl_sat(bound, s - 16, ETP_P_LIMIT) : etp_floor_shift(bound, 16 - s);
                q = etp_sat(q, -lim, lim);
            }
            if (s > 62) {
                d = 0;
            } else if (s >= 0) {
                d = etp_sround_shift(q, s, x);
            } else {
                d = etp_sat(q, -((int64_t)1 << 20), (int64_t)1 << 20);
            }
            w[j] = (etp_w_t)etp_sat((int64_t)w[j] - d, ETP_W_MIN, ETP_W_MAX);
        }
    }
    *rng = x;
}

/* _to_stat: a mean square of (g >> eb) into Q.ETP_STAT_F: times 2^sh (saturating) or floor-divided by 2^-sh. */
static int64_t to_stat(int64_t ms, int sh)
{
    return sh >= 0 ? etp_shl_sat(ms, sh, ETP_STAT_MAX) : etp_floor_shift(ms, -sh);
}

/* _ms_ema: rr_i, cc_j <- EMAs (decay 2^-beta_shift) of the mean squares of g >> eb's rows/columns
 * (g in Q.gfrac), in Q.ETP_STAT_F; first: set them to the mean squares. */
static void ms_ema(const etp_param_t *p, const etp_grad_t *grad, int eb, int beta_shift, int first,
                   int64_t *g, int64_t *colsum)
{
    int sh = 2 * eb + ETP_STAT_F - 2 * p->gfrac;
    uint16_t i, j;
    for (j = 0; j < p->cols; j++) {
        colsum[j] = 0;
    }
    for (i = 0; i < p->rows; i++) {
        int64_t acc = 0, ms;
        if (grad->row(p, i, g)) {
            for (j = 0; j < p->cols; j++) {
                int64_t q = etp_floor_shift(g[j], eb);
                acc += q * q;
                colsum[j] += q * q;
            }
        }
        ms = to_stat(acc / p->cols, sh);
        p->rr[i] = first ? ms : p->rr[i] + etp_round_shift(ms - p->rr[i], beta_shift);
    }
    for (j = 0; j < p->cols; j++) {
        int64_t ms = to_stat(colsum[j] / p->rows, sh);
        p->cc[j] = first ? ms : p->cc[j] + etp_round_shift(ms - p->cc[j], beta_shift);
    }
}

int64_t etp_move_bound(int32_t lr_m, int32_t lr_e, int32_t clip, int fw)
{
    int e = fw + 16 + clip - lr_e;
    if (clip < 0) {
        return -1;
    }
    return e >= 0 ? etp_shl_sat(lr_m, e, ETP_P_LIMIT) : etp_floor_shift(lr_m, -e);
}

int64_t etp_grad_abs_max_rows(const etp_param_t *p, int (*row)(const etp_param_t *, uint16_t, int64_t *), int64_t *g)
{
    int64_t gmax = 0;
    uint16_t i, j;
    for (i = 0; i < p->rows; i++) {
        if (row(p, i, g)) {
            for (j = 0; j < p->cols; j++) {
                int64_t a = g[j] >= 0 ? g[j] : -g[j];
                gmax = a > gmax ? a : gmax;
            }
        }
    }
    return gmax;
}

int etp_factored_scales(const etp_param_t *p, const etp_grad_t *grad, int beta_shift, int32_t lr_m,
                        int mode, int32_t *row_m, int32_t *row_s, int32_t *col_m, int32_t *col_s, int64_t *g,
                        int64_t *colsum)
{
    int64_t gmax, t2 = 0, ts, tm;
    int eb, first = 1, te;
    uint16_t i, j;
    gmax = grad->abs_max(p, g);
    for (i = 0; i < p->rows; i++) {
        row_m[i] = 0;
        row_s[i] = 0;
        if (p->rr[i] != 0) {
            first = 0;
        }
    }
    for (j = 0; j < p->cols; j++) {
        col_m[j] = 0;
        col_s[j] = 0;
    }
    eb = etp_bitlen(gmax) - (62 - etp_bitlen(p->rows > p->cols ? p->rows : p->cols)) / 2;
    eb = eb > 0 ? eb : 0;
    if (first && gmax == 0) {
        return eb;
    }
    ms_ema(p, grad, eb, beta_shift, first, g, colsum);
    for (i = 0; i < p->rows; i++) {
        t2 += etp_div_floor(p->rr[i], p->rows);
    }
    ts = etp_isqrt(t2);
    if (ts == 0) {
        return eb;
    }
    etp_norm15(ts, &tm, &te);
    for (i = 0; i < p->rows; i++) {
        int64_t r = mode == 2 ? ts : etp_isqrt(p->rr[i]);
        if (r > 0) {
            int64_t rm, am;
            int re, ae;
            etp_norm15(r, &rm, &re);
            etp_norm15(((tm << 16) / rm) * lr_m, &am, &ae);      /* lr_m * sqrt(T2) / sqrt(rr_i) */
            row_m[i] = (int32_t)am;
            row_s[i] = 16 - ae - te + re;
        }
    }
    for (j = 0; j < p->cols; j++) {
        int64_t c = mode == 1 ? ts : etp_isqrt(p->cc[j]);
        if (c > 0) {
            int64_t cm;
            int ce;
            etp_norm15(c, &cm, &ce);
            col_m[j] = (int32_t)(((int64_t)1 << 30) / cm);                /* 1 / sqrt(cc_j) */
            col_s[j] = ce + 30;
        }
    }
    return eb;
}

/* factored_scales' mode of an optimizer kind (update_q.NORM_MODE): 0 factored, 1 rownorm, 2 colnorm */
static int norm_mode(int32_t kind)
{
    return kind == ETP_OPT_ROWNORM ? 1 : kind == ETP_OPT_COLNORM ? 2 : 0;
}

void etp_update_q(const etp_param_t *p, const etp_grad_t *grad, const int32_t *opt_cfg, uint32_t *rng)
{
    int32_t lr_m = opt_cfg[1], lr_e = opt_cfg[2];
    uint16_t i, j;
    if (opt_cfg[0] == ETP_OPT_SGD) {
        /* Delta W_int = lr_m (g >> eb) 2^-(G + lr_e - FW - eb): rows scaled by lr_m, columns by 1 */
        int eb = etp_bitlen(grad->abs_max(p, SCR->grow)) - 54;
        eb = eb > 0 ? eb : 0;
        for (i = 0; i < p->rows; i++) {
            SCR->row_m[i] = lr_m;
            SCR->row_s[i] = p->gfrac + lr_e - p->fw - eb;
        }
        for (j = 0; j < p->cols; j++) {
            SCR->col_m[j] = 1;
            SCR->col_s[j] = 0;
        }
        etp_apply_update_q(p, grad, eb, SCR->row_m, SCR->row_s, SCR->col_m, SCR->col_s, -1, rng, SCR->grow);
    } else {
        int eb = etp_factored_scales(p, grad, opt_cfg[3], lr_m, norm_mode(opt_cfg[0]), SCR->row_m, SCR->row_s, SCR->col_m,
                                     SCR->col_s, SCR->grow, SCR->colsum);
        for (i = 0; i < p->rows; i++) {
            SCR->row_s[i] += lr_e - p->fw - eb + p->gfrac - ETP_STAT_F / 2;
        }
        etp_apply_update_q(p, grad, eb, SCR->row_m, SCR->row_s, SCR->col_m, SCR->col_s,
                           etp_move_bound(lr_m, lr_e, opt_cfg[5], p->fw), rng, SCR->grow);
    }
}
