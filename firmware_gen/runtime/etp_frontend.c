/*
 * etp_frontend.c - C twin of edgetp/audio/frontend_q.py (same step names, prefix etp_fe_):
 * windowing, per-frame block exponent, the mixed-radix FFT of 240 complex points, the real
 * split, power, mel, log2; at the end of the utterance the maximum, L = ln(1 + 2^(l - max + C))
 * (C = log2 of the model's log gain, ETP_FE_LOG_OFFSET) and, per frame on demand, delta /
 * delta-delta and the model's input scaling. Tables and Q-formats come from the generated
 * etp_frontend_cfg.h/.c. Rounding is etp_round_shift (round half up), as in the Python twin;
 * docs/fixed-point.md section 9.
 */
#include <stddef.h>
#include <string.h>

#include "etp_frontend.h"
#include "etp_primitives.h"

/* bitlen64: bits of a non-negative value (0 for 0). */
static int etp_fe_bitlen(uint64_t x)
{
    int n = 0;
    if (x >> 32) { n += 32; x >>= 32; }
    if (x >> 16) { n += 16; x >>= 16; }
    if (x >> 8) { n += 8; x >>= 8; }
    if (x >> 4) { n += 4; x >>= 4; }
    if (x >> 2) { n += 2; x >>= 2; }
    if (x >> 1) { n += 1; x >>= 1; }
    return n + (int)x;
}

/* log2_q: round(log2(s) * 2^16) for s > 0 (table + linear interpolation on 22 bits). */
static int64_t etp_fe_log2_q(int64_t s)
{
    int b = etp_fe_bitlen((uint64_t)s) - 1;
    int64_t m = b >= 30 ? s >> (b - 30) : s * ((int64_t)1 << (30 - b));
    int32_t idx = (int32_t)((m >> 22) & 255);
    int64_t rem = m & (((int64_t)1 << 22) - 1);
    int64_t frac = etp_fe_log2_lut[idx] + etp_round_shift((int64_t)(etp_fe_log2_lut[idx + 1] - etp_fe_log2_lut[idx]) * rem, 22);
    return (int64_t)b * 65536 + frac;
}

/* fft240_q: in-place mixed-radix DIT FFT of ETP_FE_HALF complex values already in
 * digit-reversed order; out[k + m size] = round_shift(sum_q W^(q (k + m size) step) Y_q[k], 30). */
void etp_fe_fft(int32_t *re, int32_t *im)
{
    const int32_t *tc = etp_fe_tw_cos, *ts = etp_fe_tw_sin;
    int32_t size = 1;
    int fi;
    for (fi = ETP_FE_N_FACTORS - 1; fi >= 0; fi--) {
        int32_t r = etp_fe_factors[fi], nw = size * r, step = ETP_FE_HALF / nw, blk, k, m, q;
        for (blk = 0; blk < ETP_FE_HALF; blk += nw) {
            for (k = 0; k < size; k++) {
                int32_t yr[ETP_FE_MAX_RADIX], yi[ETP_FE_MAX_RADIX], nyi[ETP_FE_MAX_RADIX];
                for (q = 0; q < r; q++) {
                    yr[q] = re[blk + q * size + k];
                    yi[q] = im[blk + q * size + k];
                    nyi[q] = -yi[q];                  /* |yi| < 2^29: no overflow */
                }
                for (m = 0; m < r; m++) {
                    int32_t j = k + m * size, dt = (j * step) % ETP_FE_HALF, t = dt;
                    /* q = 0: W^0 = 2^30 exactly (tw_cos[0] = 2^30, tw_sin[0] = 0) */
                    int64_t ar = (int64_t)yr[0] * ((int64_t)1 << ETP_FE_TW_F);
                    int64_t ai = (int64_t)yi[0] * ((int64_t)1 << ETP_FE_TW_F);
                    for (q = 1; q < r; q++) {
                        int32_t c = tc[t], sn = ts[t];
                        ar += (int64_t)yr[q] * c;
                        ar += (int64_t)nyi[q] * sn;
                        ai += (int64_t)yr[q] * sn;
                        ai += (int64_t)yi[q] * c;
                        t += dt;
                        if (t >= ETP_FE_HALF) t -= ETP_FE_HALF;
                    }
                    re[blk + j] = (int32_t)etp_round_shift(ar, ETP_FE_TW_F);
                    im[blk + j] = (int32_t)etp_round_shift(ai, ETP_FE_TW_F);
                }
            }
        }
        size = nw;
    }
}

int32_t etp_fe_frame(etp_fe_t *fe, const int16_t *win, int16_t *logmel)
{
    int32_t mx = 0, s, i, k, b, off = 0;
    for (i = 0; i < ETP_FE_N_FFT; i++) {
        int32_t p = (int32_t)win[i] * etp_fe_window[i];
        int32_t a = p < 0 ? -p : p;
        if (a > mx) mx = a;
    }
    if (mx == 0) {
        for (k = 0; k < ETP_FE_N_BINS; k++) fe->power[k] = 0;
        for (b = 0; b < ETP_FE_MELS; b++) {
            fe->mel[b] = 0;
            logmel[b] = ETP_FE_LOG_ZERO;
        }
        return 0;
    }
    s = etp_fe_bitlen((uint64_t)mx) - ETP_FE_FRAME_BITS;
    for (i = 0; i < ETP_FE_HALF; i++) {           /* load in digit-reversed order */
        int32_t n = etp_fe_perm[i];
        int64_t pr = (int64_t)win[2 * n] * etp_fe_window[2 * n];
        int64_t pi = (int64_t)win[2 * n + 1] * etp_fe_window[2 * n + 1];
        fe->re[i] = (int32_t)etp_round_shift(pr, s);   /* s <= 0: exact left shift */
        fe->im[i] = (int32_t)etp_round_shift(pi, s);
    }
    etp_fe_fft(fe->re, fe->im);
    for (k = 0; k < ETP_FE_N_BINS; k++) {
        int32_t km = k == 0 ? 0 : ETP_FE_HALF - k;
        int64_t a_r = (int64_t)fe->re[k] + fe->re[km], a_i = (int64_t)fe->im[k] - fe->im[km];
        int64_t b_r = (int64_t)fe->re[k] - fe->re[km], b_i = (int64_t)fe->im[k] + fe->im[km];
        int64_t xr = a_r + etp_round_shift(etp_fe_rt_cos[k] * b_i + etp_fe_rt_sin[k] * b_r, ETP_FE_TW_F);
        int64_t xi = a_i + etp_round_shift(etp_fe_rt_sin[k] * b_i - etp_fe_rt_cos[k] * b_r, ETP_FE_TW_F);
        fe->power[k] = xr * xr + xi * xi;
    }
    for (b = 0; b < ETP_FE_MELS; b++) {
        int64_t acc = 0;
        int32_t j, st = etp_fe_mel_start[b], n = etp_fe_mel_len[b];
        for (j = 0; j < n; j++) acc += etp_fe_mel_w[off + j] * etp_round_shift(fe->power[st + j], ETP_FE_P_SHIFT);
        off += n;
        fe->mel[b] = acc;
        if (acc == 0) {
            logmel[b] = ETP_FE_LOG_ZERO;
        } else {
            int64_t v = etp_round_shift(etp_fe_log2_q(acc) + (int64_t)(2 * s) * 65536, 16 - ETP_FE_LOG_F);
            logmel[b] = (int16_t)etp_sat(v, ETP_FE_LOG_ZERO + 1, 32767);
        }
    }
    return s;
}

void etp_fe_reset(etp_fe_t *fe)
{
    etp_fe_hook_t hook = fe->hook;
    void *ctx = fe->hook_ctx;
    memset(fe, 0, sizeof *fe);
    fe->hook = hook;
    fe->hook_ctx = ctx;
    fe->fill = ETP_FE_HALF;                        /* the centring pad: 240 zeros */
}

static void etp_fe_take(etp_fe_t *fe, int16_t v)
{
    fe->win[fe->fill++] = v;
    if (fe->fill == ETP_FE_N_FFT) {
        uint16_t t = fe->frames;
        fe->shift = etp_fe_frame(fe, fe->win, fe->lm[t]);
        fe->frames++;
        if (fe->hook) fe->hook(fe->hook_ctx, fe, t);
        memmove(fe->win, fe->win + ETP_FE_HOP, (ETP_FE_N_FFT - ETP_FE_HOP) * sizeof fe->win[0]);
        fe->fill = ETP_FE_N_FFT - ETP_FE_HOP;
    }
}

etp_status_t etp_fe_push(etp_fe_t *fe, const int16_t *pcm, uint32_t n)
{
    uint32_t i;
    if (fe->done || n > ETP_FE_SAMPLES - fe->samples || (pcm == NULL && n > 0)) return ETP_EBADARG;
    for (i = 0; i < n; i++) etp_fe_take(fe, pcm[i]);
    fe->samples += n;
    return ETP_OK;
}

etp_status_t etp_fe_finish(etp_fe_t *fe)
{
    int32_t t, b, m = ETP_FE_LOG_ZERO;
    if (fe->done) return ETP_EBADARG;
    while (fe->frames < ETP_FE_FRAMES) etp_fe_take(fe, 0);
    fe->samples = ETP_FE_SAMPLES;
    for (t = 0; t < ETP_FE_FRAMES; t++)
        for (b = 0; b < ETP_FE_MELS; b++)
            if (fe->lm[t][b] > m) m = fe->lm[t][b];
    fe->lmax = m;
    for (t = 0; t < ETP_FE_FRAMES; t++) {
        for (b = 0; b < ETP_FE_MELS; b++) {        /* L = ln(1 + 2^e), e = l - m + C, in place */
            int32_t v = fe->lm[t][b], e, d;
            int64_t g = 0;                         /* ln(1 + 2^-|e|), Q.(G_F + G_SHIFT) */
            if (v == ETP_FE_LOG_ZERO) {
                fe->lm[t][b] = 0;
                continue;
            }
            e = v - m + ETP_FE_LOG_OFFSET;
            d = e < 0 ? -e : e;
            if (d < ETP_FE_G_LIMIT) {
                int32_t i = d >> ETP_FE_G_SHIFT, f = d & ((1 << ETP_FE_G_SHIFT) - 1);
                g = (int64_t)etp_fe_g_lut[i] * ((1 << ETP_FE_G_SHIFT) - f) + (int64_t)etp_fe_g_lut[i + 1] * f;
            }
            if (e <= 0)                            /* = round_shift(g << G_ACC_SHIFT, L_ACC_F - L_F) */
                fe->lm[t][b] = (int16_t)etp_round_shift(g, ETP_FE_G_F + ETP_FE_G_SHIFT - ETP_FE_L_F);
            else                                   /* ln(1 + 2^e) = e ln 2 + ln(1 + 2^-e) */
                fe->lm[t][b] = (int16_t)etp_round_shift(g * ((int64_t)1 << ETP_FE_G_ACC_SHIFT)
                                                        + (int64_t)e * ETP_FE_LN2_Q, ETP_FE_L_ACC_F - ETP_FE_L_F);
        }
    }
    fe->done = 1;
    return ETP_OK;
}

etp_status_t etp_fe_features(const etp_fe_t *fe, uint16_t t, int32_t feats[ETP_FE_FEATURES])
{
    int32_t b, j, st, r;
    if (!fe->done || t >= ETP_FE_FRAMES || feats == NULL) return ETP_EBADARG;
    st = etp_fe_delta_start[t];
    r = etp_fe_delta_row[t];
    for (b = 0; b < ETP_FE_MELS; b++) {
        int64_t a1 = 0, a2 = 0;
        for (j = 0; j < ETP_FE_DELTA_WIDTH; j++) {
            a1 += (int64_t)etp_fe_delta1[r][j] * fe->lm[st + j][b];
            a2 += (int64_t)etp_fe_delta2[r][j] * fe->lm[st + j][b];
        }
        feats[b] = (int32_t)fe->lm[t][b] * (1 << (ETP_FE_FEAT_F - ETP_FE_L_F));
        feats[ETP_FE_MELS + b] = (int32_t)etp_round_shift(a1, ETP_FE_DELTA_SHIFT);
        feats[2 * ETP_FE_MELS + b] = (int32_t)etp_round_shift(a2, ETP_FE_DELTA_SHIFT);
    }
    return ETP_OK;
}

etp_status_t etp_fe_input(const etp_fe_t *fe, uint16_t t, etp_x_t x[ETP_FE_FEATURES])
{
    int32_t f[ETP_FE_FEATURES], j;
    const int64_t hi = ((int64_t)1 << (ETP_X_BITS - 1)) - 1;
    if (x == NULL || etp_fe_features(fe, t, f) != ETP_OK) return ETP_EBADARG;
    for (j = 0; j < ETP_FE_FEATURES; j++)
        x[j] = (etp_x_t)etp_sat(etp_round_shift((int64_t)f[j] * etp_fe_norm_m[j], etp_fe_norm_s[j]), -hi - 1, hi);
    return ETP_OK;
}
