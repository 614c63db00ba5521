/*
 * etp_update.c - C twins of edgetp/fixed/update_q.py (see etp_update.h).
 */
#include "etp_update.h"

#include <stddef.h>
#if defined(__ARM_FEATURE_SAT)
#include <arm_acle.h>
#endif

#include "etp_primitives.h"

/* Scratch of the update, reached through the model descriptor. */
#define SCR (&etp_net)

static int64_t term_d(const etp_term_t *t, uint16_t i)
{
    return t->dbits == 32 ? (int64_t)((const int32_t *)t->d)[i] : ((const int64_t *)t->d)[i];
}

static int64_t term_x(const etp_term_t *t, uint16_t j)
{
    return t->x.bits == 8 ? (int64_t)((const int8_t *)t->x.p)[j] : (int64_t)((const int16_t *)t->x.p)[j];
}

static int64_t abs64(int64_t a)
{
    return a >= 0 ? a : -a;
}

/* The OR of |x_j| over a term's column factor: bitlen(OR) = bitlen(max), which is all quant_exps reads;
 * a loop per element width, without a compare per element (|x| < 2^15: uint32 holds it). */
static uint32_t x_or_abs(const etp_vec_t *x, uint16_t n)
{
    uint32_t acc = 0;
    uint16_t j;
    if (x->bits == 8) {
        const int8_t *v = (const int8_t *)x->p;
        for (j = 0; j < n; j++) {
            acc |= (uint32_t)(v[j] < 0 ? -v[j] : v[j]);
        }
    } else {
        const int16_t *v = (const int16_t *)x->p;
        for (j = 0; j < n; j++) {
            acc |= (uint32_t)(v[j] < 0 ? -v[j] : v[j]);
        }
    }
    return acc;
}

/* quant_exps over every term of the tensor's gradient (the maxima as ORs of the magnitudes: the same
 * bit lengths). */
static void quant_exps(const etp_param_t *p, const etp_grad_t *grad, uint16_t T, int *ed, int *ex)
{
    int64_t dmax = 0, xmax = 0;
    etp_term_t t;
    uint16_t k, i;
    for (k = 0; k < T; k++) {
        grad->term(p, k, &t);
        if (t.dbits == 32) {
            const int32_t *d = (const int32_t *)t.d;
            uint32_t acc = 0;
            for (i = 0; i < p->rows; i++) {
                acc |= d[i] < 0 ? 0u - (uint32_t)d[i] : (uint32_t)d[i];
            }
            dmax |= (int64_t)acc;
        } else {
            for (i = 0; i < p->rows; i++) {
                dmax |= abs64(term_d(&t, i));
            }
        }
        xmax |= (int64_t)x_or_abs(&t.x, p->cols);
    }
    *ed = etp_bitlen(dmax) - ETP_DQ_BITS;
    *ed = *ed > 0 ? *ed : 0;
    *ex = etp_bitlen(xmax) + etp_bitlen(T) - 1 - ETP_XQ_BITS;
    *ex = *ex > 0 ? *ex : 0;
}

/* Row i of grad_q (T > 1 terms) into q: sum_t round_shift(d_t[i], ed) round_shift(x_t, ex). The partial
 * sums are bounded by the sum of the terms' magnitudes, < ETP_Q_LIMIT: int32 holds them. */
static void q_row(const etp_param_t *p, const etp_grad_t *grad, uint16_t T, uint16_t i, int ed, int ex, int32_t *q)
{
    etp_term_t t;
    uint16_t k, j;
    for (j = 0; j < p->cols; j++) {
        q[j] = 0;
    }
    for (k = 0; k < T; k++) {
        int32_t dq;
        grad->term(p, k, &t);
        dq = (int32_t)etp_round_shift(term_d(&t, i), ed);
        if (dq == 0) {
            continue;
        }
        for (j = 0; j < p->cols; j++) {
            int32_t xq = ex == 0 ? (int32_t)term_x(&t, j) : (int32_t)etp_round_shift(term_x(&t, j), ex);
            q[j] += dq * xq;
        }
    }
}

/* floor(a / n) for 0 <= a < 2^63, 0 < n < 2^16, by three 32-bit divisions (the high word, then two
 * 16-bit digits; exact: a Cortex-M4 has no 64-bit divide). */
static int64_t div64_16(int64_t a, uint16_t n)
{
    uint64_t u = (uint64_t)a;
    uint32_t hi = (uint32_t)(u >> 32), lo = (uint32_t)u, q1, q2, q3, r;
    q1 = hi / n;                              /* each partial dividend is below n 2^16 <= 2^32 */
    r = hi - q1 * n;
    q2 = ((r << 16) | (lo >> 16)) / n;
    r = ((r << 16) | (lo >> 16)) - q2 * n;
    q3 = ((r << 16) | (lo & 0xFFFFu)) / n;
    return (int64_t)(((uint64_t)q1 << 32) | ((uint64_t)q2 << 16)) + q3;
}

int64_t etp_mean_stat(int64_t sq, uint16_t n, int sh)
{
    int a = 62 - etp_bitlen(sq), rest;
    int64_t ms;
    a = a < sh ? a : sh;
    a = a > 0 ? a : 0;
    ms = div64_16(sq << a, n);                /* sq << a < 2^62, both >= 0 */
    rest = sh - a;
    return rest >= 0 ? etp_shl_sat(ms, rest, ETP_STAT_MAX) : etp_floor_shift(ms, -rest);
}

/* norm15(isqrt(n)) for n > 0, from the top bits of n only: isqrt(n) has r = ceil(bitlen(n) / 2) bits,
 * so e = r - 15 and, for e > 0, floor(isqrt(n) / 2^e) = floor(sqrt(n / 4^e)) = isqrt(n >> 2e) with
 * n >> 2e < 2^30 (floor(sqrt(floor(x))) = floor(sqrt(x))); for e <= 0, n < 2^30 already. Returns 0
 * (m, e untouched) when n <= 0, where isqrt(n) = 0. */
static inline int isqrt_norm15(int64_t n, int64_t *m, int *e)
{
    int b = etp_bitlen(n);
    if (n <= 0) {
        return 0;
    }
    *e = (b + 1) / 2 - 15;
    /* e > 0: n >> 2e has b - 2e = 29 or 30 bits, the range of etp_isqrt30 */
    *m = *e > 0 ? (int64_t)etp_isqrt30((uint32_t)(n >> (2 * *e))) : etp_isqrt(n) << -*e;
    return 1;
}

int64_t etp_q32(int64_t m, int s)
{
    if (s <= 32) {
        return etp_shl_sat(m, 32 - s, ETP_M_MAX);
    }
    return s - 32 > 62 ? 0 : etp_floor_shift(m, s - 32);
}

int64_t etp_ema_decay(int64_t c, int k)
{
    uint64_t v = (uint64_t)c + (((uint32_t)1 << (k - 1)) - 1u);   /* < 2^63 */
    uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
    return c - (int64_t)(((uint64_t)(hi >> k) << 32) | ((lo >> k) | (hi << (32 - k))));
}

void etp_rms_scales(const etp_param_t *p, const int64_t *rowsq, const int64_t *colsq, int sh, int beta_shift,
                    int32_t lr_m, int mode, const uint16_t *act, uint16_t n_act, int32_t *row_m, int32_t *row_s,
                    int32_t *col_m, int32_t *col_s)
{
    int64_t t2 = 0, tm = 0;
    int first = 1, zero = 1, te = 0, ok, decay;
    uint16_t i, j, k;
    for (i = 0; i < p->rows; i++) {
        row_m[i] = 0;
        row_s[i] = 0;
        first &= p->rr[i] == 0;
        zero &= rowsq[i] == 0;
    }
    if (first && zero) {
        for (j = 0; j < p->cols; j++) {
            col_m[j] = 0;
            col_s[j] = 0;
        }
        return;
    }
    for (i = 0; i < p->rows; i++) {
        int64_t ms = rowsq[i] == 0 ? 0 : etp_mean_stat(rowsq[i], p->cols, sh);   /* mean_stat(0) = 0 */
        p->rr[i] = first ? ms : p->rr[i] + etp_round_shift(ms - p->rr[i], beta_shift);
    }
    for (i = 0; i < p->rows; i++) {
        t2 += div64_16(p->rr[i], p->rows);      /* rr >= 0 */
    }
    ok = isqrt_norm15(t2, &tm, &te);             /* norm15(isqrt(T2)); isqrt(T2) = 0: no move */
    for (i = 0; ok && i < p->rows; i++) {
        int64_t rm, am;
        int re, ae;
        if (mode == ETP_MODE_COLNORM && i > 0) {      /* every row has r = T2: row 0's values */
            row_m[i] = row_m[0];
            row_s[i] = row_s[0];
            continue;
        }
        if (mode == ETP_MODE_COLNORM ? (rm = tm, re = te, 1) : isqrt_norm15(p->rr[i], &rm, &re)) {
            /* lr_m sqrt(T2) / sqrt(rr_i); tm, rm < 2^15 */
            etp_norm15((int64_t)(((uint32_t)tm << 16) / (uint32_t)rm) * lr_m, &am, &ae);
            row_m[i] = (int32_t)am;
            row_s[i] = 16 - ae - te + re;
        }
    }
    /* the columns' EMAs; a column not read has a sum of q^2 of 0: its EMA decays */
    decay = !first && beta_shift >= 1 && beta_shift <= 31;   /* etp_ema_decay's range */
    for (j = 0; j < p->cols; j++) {
        int64_t c = p->cc[j], sq = colsq[j];
        if (sq == 0) {
            c = first ? 0 : (decay ? etp_ema_decay(c, beta_shift) : c + etp_round_shift(-c, beta_shift));
        } else {
            int64_t ms = etp_mean_stat(sq, p->rows, sh);
            c = first ? ms : c + etp_round_shift(ms - c, beta_shift);
        }
        p->cc[j] = c;
    }
    /* the scales of the columns read (T2 is the rows' alone) */
    for (k = 0; k < (act != NULL ? n_act : p->cols); k++) {
        int64_t cm;
        int ce;
        j = act != NULL ? act[k] : k;
        col_m[j] = 0;
        col_s[j] = 0;
        if (ok && (mode == ETP_MODE_ROWNORM ? (cm = tm, ce = te, 1) : isqrt_norm15(p->cc[j], &cm, &ce))) {
            col_m[j] = (int32_t)((1u << 30) / (uint32_t)cm);              /* 1 / sqrt(cc_j); cm < 2^15 */
            col_s[j] = ce + 30;
        }
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

/* floor((p + r) / 2^32) for |p| < 2^62: shifted through an unsigned offset, so no right shift of a
 * negative value. */
static int32_t sround32(int64_t p, uint32_t r)
{
    uint64_t u = (uint64_t)(p + (int64_t)r) + ((uint64_t)1 << 63);
    return (int32_t)((int64_t)(u >> 32) - ((int64_t)1 << 31));
}

static etp_w_t move(etp_w_t w, int32_t d)
{
    int32_t v = (int32_t)w - d;
#if defined(__ARM_FEATURE_SAT)
    return (etp_w_t)__ssat(v, ETP_W_BITS);      /* SSAT: the same clamp to [ETP_W_MIN, ETP_W_MAX] */
#else
    return (etp_w_t)(v < ETP_W_MIN ? ETP_W_MIN : (v > ETP_W_MAX ? ETP_W_MAX : v));
#endif
}

/* apply_update_q. One term: q[i,j] = dq[i] xq[j]; else the rows are rebuilt by q_row. mcol: the
 * Q.32 multipliers when every row has the same (row_m, row_s) (colnorm, sgd), else NULL. */
static void apply(const etp_param_t *p, const etp_grad_t *grad, uint16_t T, int ed, int ex, const int32_t *row_m,
                  const int32_t *row_s, const int32_t *col_m, const int32_t *col_s, int64_t *mcol, int64_t lim,
                  uint16_t n, uint32_t *rng)
{
    uint32_t x = *rng;
    uint16_t i, j;
    if (T == 1 && mcol != NULL) {
        /* the elements with q != 0 are rows with dq != 0 times columns with xq != 0: the n columns of
         * sq_sums' list, their factors and multipliers gathered in place (idx[t] >= t) */
        int32_t *xq = SCR->xq;
        const uint16_t *idx = SCR->nz_idx_a;
        uint16_t t;
        int narrow = 1;          /* every multiplier below 2^31: a 32 x 32-bit product (SMULL), the same value */
        for (t = 0; t < n; t++) {
            j = idx[t];
            xq[t] = xq[j];
            mcol[t] = mcol[j];
            narrow &= mcol[t] <= INT32_MAX;
        }
        for (i = 0; i < p->rows; i++) {
            int32_t a = SCR->dq[i];
            etp_w_t *w = p->w + (uint32_t)i * p->cols;
            if (a == 0) {
                continue;
            }
            if (lim < 0 && narrow) {
                for (t = 0; t < n; t++) {
                    x = etp_xorshift32(x);
                    w[idx[t]] = move(w[idx[t]], sround32((int64_t)(a * xq[t]) * (int32_t)mcol[t], x));
                }
            } else if (lim < 0) {
                for (t = 0; t < n; t++) {
                    x = etp_xorshift32(x);
                    w[idx[t]] = move(w[idx[t]], sround32((int64_t)(a * xq[t]) * mcol[t], x));
                }
            } else {
                for (t = 0; t < n; t++) {
                    x = etp_xorshift32(x);
                    w[idx[t]] = move(w[idx[t]], sround32(etp_sat((int64_t)(a * xq[t]) * mcol[t], -lim, lim), x));
                }
            }
        }
        *rng = x;
        return;
    }
    for (i = 0; i < p->rows; i++) {
        etp_w_t *w = p->w + (uint32_t)i * p->cols;
        int32_t *q = SCR->qrow;
        if (T == 1) {
            if (SCR->dq[i] == 0) {
                continue;
            }
            for (j = 0; j < p->cols; j++) {
                q[j] = SCR->dq[i] * SCR->xq[j];
            }
        } else {
            q_row(p, grad, T, i, ed, ex, q);
        }
        for (j = 0; j < p->cols; j++) {
            int64_t m, v;
            if (q[j] == 0) {
                continue;
            }
            x = etp_xorshift32(x);
            m = mcol != NULL ? mcol[j] : etp_q32((int64_t)row_m[i] * col_m[j], row_s[i] + col_s[j]);
            v = (int64_t)q[j] * m;
            if (lim >= 0) {
                v = etp_sat(v, -lim, lim);
            }
            w[j] = move(w[j], sround32(v, x));
        }
    }
    *rng = x;
}

/* The sums of q^2 over rows (rowsq) and columns (colsq). One term: dq_i^2 sum_j xq_j^2 and
 * xq_j^2 sum_i dq_i^2 (exact: each < 2^58), and the columns with xq != 0 (the only ones the update reads)
 * listed in increasing order in SCR->nz_idx_a; returns their number (0 for T > 1). Also leaves dq/xq (one
 * term) in the scratch. */
static uint16_t sq_sums(const etp_param_t *p, const etp_grad_t *grad, uint16_t T, int ed, int ex, int64_t *rowsq,
                        int64_t *colsq)
{
    uint16_t i, j;
    if (T == 1) {
        etp_term_t t;
        int64_t D = 0, X = 0;
        int32_t *xq = SCR->xq;
        uint16_t *act = SCR->nz_idx_a, n = 0;
        grad->term(p, 0, &t);
        for (i = 0; i < p->rows; i++) {
            int32_t a = (int32_t)etp_round_shift(term_d(&t, i), ed);
            SCR->dq[i] = a;
            D += (int64_t)a * a;
        }
        /* the column factors in 32 bits (|x| <= 2^15, ex <= 6): the same values as round_shift */
        if (t.x.bits == 8) {
            const int8_t *v = (const int8_t *)t.x.p;
            for (j = 0; j < p->cols; j++) {
                xq[j] = ex == 0 ? v[j] : etp_round_shift32(v[j], ex);
            }
        } else {
            const int16_t *v = (const int16_t *)t.x.p;
            for (j = 0; j < p->cols; j++) {
                xq[j] = ex == 0 ? v[j] : etp_round_shift32(v[j], ex);
            }
        }
        for (j = 0; j < p->cols; j++) {
            int32_t v2 = xq[j] * xq[j];               /* xq^2 < 2^30 */
            colsq[j] = (int64_t)v2 * D;
            if (v2 != 0) {
                act[n++] = j;
                X += v2;
            }
        }
        for (i = 0; i < p->rows; i++) {
            rowsq[i] = (int64_t)SCR->dq[i] * SCR->dq[i] * X;
        }
        return n;
    }
    for (j = 0; j < p->cols; j++) {
        colsq[j] = 0;
    }
    for (i = 0; i < p->rows; i++) {
        int64_t acc = 0;
        q_row(p, grad, T, i, ed, ex, SCR->qrow);
        for (j = 0; j < p->cols; j++) {
            int64_t a = (int64_t)SCR->qrow[j] * SCR->qrow[j];
            acc += a;
            colsq[j] += a;
        }
        rowsq[i] = acc;
    }
    return 0;
}

/* norm_mode: rms_scales' mode of an optimizer kind (update_q.NORM_MODE). */
static int norm_mode(int32_t kind)
{
    return kind == ETP_OPT_ROWNORM ? ETP_MODE_ROWNORM : ETP_MODE_COLNORM;
}

void etp_update_q(const etp_param_t *p, const etp_grad_t *grad, const int32_t *opt_cfg, uint32_t *rng)
{
    int32_t lr_m = opt_cfg[ETP_CFG_LR_M], lr_e = opt_cfg[ETP_CFG_LR_E];
    uint16_t T = grad->count(p), i, j, n, k;
    int ed, ex, e, uniform = 1;
    int64_t lim = -1, bound;
    const uint16_t *act;
    quant_exps(p, grad, T, &ed, &ex);
    e = ed + ex;
    n = sq_sums(p, grad, T, ed, ex, SCR->rowsq, SCR->colsq);
    act = T == 1 ? SCR->nz_idx_a : NULL;   /* one term: only the n columns with xq != 0 are read */
    if (opt_cfg[ETP_CFG_KIND] == ETP_OPT_SGD) {
        /* Delta W_int = lr_m q 2^-(G - e + lr_e - FW) */
        for (i = 0; i < p->rows; i++) {
            SCR->row_m[i] = lr_m;
            SCR->row_s[i] = p->gfrac - e + lr_e - p->fw;
        }
        for (j = 0; j < p->cols; j++) {
            SCR->col_m[j] = 1;
            SCR->col_s[j] = 0;
        }
    } else {
        /* one term: an element moves only where its column factor xq is nonzero (apply), so the
         * other columns' multipliers are not computed */
        etp_rms_scales(p, SCR->rowsq, SCR->colsq, 2 * e + ETP_STAT_F - 2 * p->gfrac, opt_cfg[ETP_CFG_BETA_SHIFT],
                       lr_m, norm_mode(opt_cfg[ETP_CFG_KIND]), act, n, SCR->row_m, SCR->row_s, SCR->col_m,
                       SCR->col_s);
        for (i = 0; i < p->rows; i++) {
            SCR->row_s[i] += lr_e - p->fw - e + p->gfrac - ETP_STAT_F / 2;
        }
        bound = etp_move_bound(lr_m, lr_e, opt_cfg[ETP_CFG_CLIP], p->fw);
        lim = bound >= 0 ? etp_shl_sat(bound, 16, ETP_P_LIMIT) : -1;
    }
    for (i = 1; i < p->rows; i++) {
        uniform &= SCR->row_m[i] == SCR->row_m[0] && SCR->row_s[i] == SCR->row_s[0];
    }
    if (uniform) {
        for (k = 0; k < (act != NULL ? n : p->cols); k++) {   /* one term: only the columns apply reads */
            j = act != NULL ? act[k] : k;
            SCR->mcol[j] = etp_q32((int64_t)SCR->row_m[0] * SCR->col_m[j], SCR->row_s[0] + SCR->col_s[j]);
        }
    }
    apply(p, grad, T, ed, ex, SCR->row_m, SCR->row_s, SCR->col_m, SCR->col_s, uniform ? SCR->mcol : NULL, lim, n,
          rng);
}
