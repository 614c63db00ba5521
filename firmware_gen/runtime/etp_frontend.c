/*
 * etp_frontend.c - C twin of edgetp/audio/frontend_q.py (same step names, prefix etp_fe_):
 * windowing, per-frame block exponent, the mixed-radix FFT of 240 complex points, the real
 * split, power, mel, log2; at the end of the utterance the maximum, L = ln(1 + 2^(l - max + C))
 * (C = log2 of the model's log gain, ETP_FE_LOG_OFFSET) and, per frame on demand, delta /
 * delta-delta and the model's input scaling. A model with the causal running maximum
 * (ETP_FE_RUNNING_MAX = D > 0) computes max and L per hop instead (L of frame t - A when frame t
 * comes, A = ETP_FE_RUNNING_MAX_AHEAD): only delta's look-ahead and A wait. Tables and Q-formats come from the generated
 * etp_frontend_cfg.h/.c. Rounding is etp_round_shift (round half up), as in the Python twin;
 * docs/fixed-point.md section 9.
 */
#include <stddef.h>
#include <string.h>
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

#include "etp_frontend.h"
#include "etp_primitives.h"

/* log2_q: round(log2(s) * 2^16) for s > 0 (table + linear interpolation on 22 bits). */
static int64_t etp_fe_log2_q(int64_t s)
{
    int b = etp_bitlen(s) - 1;
    int64_t m = b >= 30 ? s >> (b - 30) : s * ((int64_t)1 << (30 - b));
    int32_t idx = (int32_t)((m >> 22) & 255);
    int64_t rem = m & (((int64_t)1 << 22) - 1);
    int64_t frac = etp_fe_log2_lut[idx] + etp_round_shift((int64_t)(etp_fe_log2_lut[idx + 1] - etp_fe_log2_lut[idx]) * rem, 22);
    return (int64_t)b * 65536 + frac;
}

/* fft240_q, specialised to 240 = 4 * 4 * 3 * 5 (firmware_gen.frontend.check asserts the factors):
 * int32 values, Q.31 twiddles, every twiddle product one etp_mulhr (its high word, rounded: half
 * the turned value), each sum of such products doubled once. The stages are fft_stage5/3/4's. */
#if ETP_FE_HALF != 240 || ETP_FE_N_FACTORS != 4 || ETP_FE_FFT_TW_F != 31
#error "etp_fe_fft is specialised to 240 = 4 * 4 * 3 * 5 points and Q.31 twiddles"
#endif

/* fft_turn: y W at half scale (the four mulhr-products of y and the Q.31 twiddle W = c + i s). */
static inline void etp_fe_fft_turn(int32_t yr, int32_t yi, int32_t c, int32_t s, int32_t *zr, int32_t *zi)
{
    *zr = etp_mulhr(yr, c) - etp_mulhr(yi, s);
    *zi = etp_mulhr(yr, s) + etp_mulhr(yi, c);
}

/* fft_stage5: radix 5, the first stage (one butterfly per 5 values, no inner twiddle): W = W^48 and
 * W^2 pair q with 5 - q (A = y_q + y_(5-q), B = y_q - y_(5-q)); output m is y_0 + 2 (sum of
 * mulhr(A, cos) -+ mulhr(B, sin) over the pairs); output 0 is y_0 + A_1 + A_2. */
static void etp_fe_fft_stage5(int32_t *re, int32_t *im)
{
    const int32_t c1 = etp_fe_tw_cos[48], s1 = etp_fe_tw_sin[48], c2 = etp_fe_tw_cos[96], s2 = etp_fe_tw_sin[96];
    int32_t *xr = re, *xi = im;
    for (; xr < re + ETP_FE_HALF; xr += 5, xi += 5) {
        int32_t y0r = xr[0], y0i = xi[0];
        int32_t a1r = xr[1] + xr[4], a1i = xi[1] + xi[4], b1r = xr[1] - xr[4], b1i = xi[1] - xi[4];
        int32_t a2r = xr[2] + xr[3], a2i = xi[2] + xi[3], b2r = xr[2] - xr[3], b2i = xi[2] - xi[3];
        int32_t pr = etp_mulhr(a1r, c1) + etp_mulhr(a2r, c2), pi = etp_mulhr(a1i, c1) + etp_mulhr(a2i, c2);
        int32_t qr = etp_mulhr(b1i, s1) + etp_mulhr(b2i, s2), qi = etp_mulhr(b1r, s1) + etp_mulhr(b2r, s2);
        int32_t p2r = etp_mulhr(a1r, c2) + etp_mulhr(a2r, c1), p2i = etp_mulhr(a1i, c2) + etp_mulhr(a2i, c1);
        int32_t q2r = etp_mulhr(b1i, s2) - etp_mulhr(b2i, s1), q2i = etp_mulhr(b1r, s2) - etp_mulhr(b2r, s1);
        xr[0] = y0r + a1r + a2r;
        xi[0] = y0i + a1i + a2i;
        xr[1] = y0r + 2 * (pr - qr);
        xi[1] = y0i + 2 * (pi + qi);
        xr[4] = y0r + 2 * (pr + qr);
        xi[4] = y0i + 2 * (pi - qi);
        xr[2] = y0r + 2 * (p2r - q2r);
        xi[2] = y0i + 2 * (p2i + q2i);
        xr[3] = y0r + 2 * (p2r + q2r);
        xi[3] = y0i + 2 * (p2i - q2i);
    }
}

/* fft_stage3: radix 3 (size 5, step 16). k = 0: W_3 = W^80 pairs q = 1, 2 as radix 5 does (doubled).
 * k >= 1: each input is turned first, z_q = y_q W^(16 q k) by mulhr (half scale), then the k = 0
 * butterfly on the z (its products are quarter scale, so quadrupled). */
static void etp_fe_fft_stage3(int32_t *re, int32_t *im)
{
    enum { S = 5 };
    const int32_t c = etp_fe_tw_cos[80], s = etp_fe_tw_sin[80];
    int32_t blk, k;
    for (blk = 0; blk < ETP_FE_HALF; blk += 3 * S) {
        int32_t *xr = re + blk, *xi = im + blk;
        {
            int32_t y0r = xr[0], y0i = xi[0];
            int32_t ar = xr[S] + xr[2 * S], ai = xi[S] + xi[2 * S], br = xr[S] - xr[2 * S], bi = xi[S] - xi[2 * S];
            int32_t pr = etp_mulhr(ar, c), pi = etp_mulhr(ai, c), qr = etp_mulhr(bi, s), qi = etp_mulhr(br, s);
            xr[0] = y0r + ar;
            xi[0] = y0i + ai;
            xr[S] = y0r + 2 * (pr - qr);
            xi[S] = y0i + 2 * (pi + qi);
            xr[2 * S] = y0r + 2 * (pr + qr);
            xi[2 * S] = y0i + 2 * (pi - qi);
        }
        for (k = 1; k < S; k++) {
            int32_t y0r = xr[k], y0i = xi[k], z1r, z1i, z2r, z2i;
            etp_fe_fft_turn(xr[k + S], xi[k + S], etp_fe_tw_cos[16 * k], etp_fe_tw_sin[16 * k], &z1r, &z1i);
            etp_fe_fft_turn(xr[k + 2 * S], xi[k + 2 * S], etp_fe_tw_cos[32 * k], etp_fe_tw_sin[32 * k], &z2r, &z2i);
            int32_t ar = z1r + z2r, ai = z1i + z2i, br = z1r - z2r, bi = z1i - z2i;
            int32_t pr = etp_mulhr(ar, c), pi = etp_mulhr(ai, c), qr = etp_mulhr(bi, s), qi = etp_mulhr(br, s);
            xr[k] = y0r + 2 * ar;
            xi[k] = y0i + 2 * ai;
            xr[k + S] = y0r + 4 * (pr - qr);
            xi[k + S] = y0i + 4 * (pi + qi);
            xr[k + 2 * S] = y0r + 4 * (pr + qr);
            xi[k + 2 * S] = y0i + 4 * (pi - qi);
        }
    }
}

/* fft_stage4: radix 4 (size S, step 240 / 4S): W^(q (k + m S) step) = (-i)^(q m) W^(q k step), so
 * each input is turned once, z_q = y_q W^(q k step) by mulhr (half scale; k = 0: no turn), and the
 * four outputs are y_0 +- 2 z_2 +- 2 (z_1 + z_3) and y_0 -+ 2 z_2 +- 2 i (z_1 - z_3). Inlined per S:
 * the four inputs are then constant offsets of one pointer (no pointer per input to spill). */
static ETP_ALWAYS_INLINE void etp_fe_fft_stage4(int32_t *re, int32_t *im, const int32_t S)
{
    const int32_t step = ETP_FE_HALF / (4 * S);
    int32_t blk, k;
    for (blk = 0; blk < ETP_FE_HALF; blk += 4 * S) {
        int32_t *xr = re + blk, *xi = im + blk;
        {
            int32_t ar = xr[0] + xr[2 * S], ai = xi[0] + xi[2 * S], br = xr[0] - xr[2 * S], bi = xi[0] - xi[2 * S];
            int32_t cr = xr[S] + xr[3 * S], ci = xi[S] + xi[3 * S], dr = xr[S] - xr[3 * S], di = xi[S] - xi[3 * S];
            xr[0] = ar + cr;
            xi[0] = ai + ci;
            xr[2 * S] = ar - cr;
            xi[2 * S] = ai - ci;
            xr[S] = br + di;
            xi[S] = bi - dr;
            xr[3 * S] = br - di;
            xi[3 * S] = bi + dr;
        }
        for (k = 1; k < S; k++) {
            const int32_t t = k * step;
            int32_t *yr = xr + k, *yi = xi + k;
            int32_t y0r = yr[0], y0i = yi[0];
            int32_t z2r, z2i, z1r, z1i, z3r, z3i, ar, ai, br, bi, cr, ci, dr, di;
            etp_fe_fft_turn(yr[2 * S], yi[2 * S], etp_fe_tw_cos[2 * t], etp_fe_tw_sin[2 * t], &z2r, &z2i);
            ar = y0r + 2 * z2r, ai = y0i + 2 * z2i, br = y0r - 2 * z2r, bi = y0i - 2 * z2i;
            etp_fe_fft_turn(yr[S], yi[S], etp_fe_tw_cos[t], etp_fe_tw_sin[t], &z1r, &z1i);
            etp_fe_fft_turn(yr[3 * S], yi[3 * S], etp_fe_tw_cos[3 * t], etp_fe_tw_sin[3 * t], &z3r, &z3i);
            cr = z1r + z3r, ci = z1i + z3i, dr = z1r - z3r, di = z1i - z3i;
            yr[0] = ar + 2 * cr;
            yi[0] = ai + 2 * ci;
            yr[2 * S] = ar - 2 * cr;
            yi[2 * S] = ai - 2 * ci;
            yr[S] = br + 2 * di;
            yi[S] = bi - 2 * dr;
            yr[3 * S] = br - 2 * di;
            yi[3 * S] = bi + 2 * dr;
        }
    }
}

/* fft240_q: in place, input in digit-reversed order (etp_fe_perm); stages innermost radix first. */
void etp_fe_fft(int32_t *re, int32_t *im)
{
    etp_fe_fft_stage5(re, im);
    etp_fe_fft_stage3(re, im);
    etp_fe_fft_stage4(re, im, 15);
    etp_fe_fft_stage4(re, im, 60);
}

/* The frame's steps, one function each (deploy/fe_profile.py times them one by one). */

/* window, block exponent s, shift, digit-reversed load into fe->re / fe->im; returns s, or
 * ETP_FE_SILENT when every windowed sample is 0. p = x w is exact in int32 (|p| < 2^30). */
/* The windowed pair n: p = (win[2n] w[2n], win[2n+1] w[2n+1]), exact in int32; on the DSP cores one SMULBB and
 * one SMULTT of a word of samples and a word of window (unaligned LDRs are allowed there). */
static inline void etp_fe_wmul(const int16_t *win, int32_t n, int32_t *pr, int32_t *pi)
{
#if defined(__ARM_FEATURE_DSP)
    int32_t x, w;
    memcpy(&x, win + 2 * n, 4);
    memcpy(&w, etp_fe_window + 2 * n, 4);
    *pr = __smlabb(x, w, 0);                     /* SMULBB (the accumulate of 0 folds away) */
    *pi = __smlatt(x, w, 0);
#else
    *pr = (int32_t)win[2 * n] * etp_fe_window[2 * n];
    *pi = (int32_t)win[2 * n + 1] * etp_fe_window[2 * n + 1];
#endif
}

/* Two passes over the window: the block exponent from the products in order, then the products again, shifted,
 * in digit-reversed order (a product is one instruction; storing and re-reading them cost more). */
int32_t etp_fe_load(etp_fe_work_t *fe, const int16_t *win)
{
    int32_t mx = 0, s, i, pr, pi;
    for (i = 0; i < ETP_FE_HALF; i++) {
        etp_fe_wmul(win, i, &pr, &pi);
        mx |= (pr < 0 ? -pr : pr) | (pi < 0 ? -pi : pi);     /* same bit length as the maximum */
    }
    if (mx == 0) return ETP_FE_SILENT;
    s = etp_bitlen(mx) - ETP_FE_FRAME_BITS;
    if (s > 0) {
        /* round_shift(p, s) = floor((p + 2^(s-1)) / 2^s); + 2^30 makes the shifted value non-negative
         * (|p| < 2^30, s <= 10), and 2^30 >> s is exact, so the shift is defined C on any target */
        const int32_t bias = (1 << (s - 1)) + (1 << 30), unbias = (1 << 30) >> s;
        for (i = 0; i < ETP_FE_HALF; i++) {
            etp_fe_wmul(win, etp_fe_perm[i], &pr, &pi);
            fe->re[i] = ((pr + bias) >> s) - unbias;
            fe->im[i] = ((pi + bias) >> s) - unbias;
        }
    } else {
        const int32_t up = 1 << -s;                  /* exact: |p| < 2^FRAME_BITS */
        for (i = 0; i < ETP_FE_HALF; i++) {
            etp_fe_wmul(win, etp_fe_perm[i], &pr, &pi);
            fe->re[i] = pr * up;
            fe->im[i] = pi * up;
        }
    }
    return s;
}

#define ETP_FE_MUL(a, b) ((int64_t)(a) * (b))

/* round_shift(a, TW_F) for |result| < 2^30: biased to a non-negative value, so the shift is an
 * arithmetic one on any C implementation and takes no sign branch. */
static inline int32_t etp_fe_rs30(int64_t a)
{
    return (int32_t)((a + ((int64_t)1 << (ETP_FE_TW_F - 1)) + ((int64_t)1 << (ETP_FE_TW_F + 30))) >> ETP_FE_TW_F)
           - (1 << 30);
}

/* the real-FFT split and power: 2X[k] = A + round_shift(-i W_480^k B, 30), P[k] = |2X[k]|^2.
 * |2X| <= 2 * 480 * 2^20 < 2^30 (+ roundings), so its parts are int32 and P one SMULL + SMLAL. */
void etp_fe_power(etp_fe_work_t *fe)
{
    int32_t k;
    for (k = 0; k < ETP_FE_N_BINS; k++) {
        int32_t km = k == 0 ? 0 : ETP_FE_HALF - k;
        int32_t a_r = fe->re[k] + fe->re[km], a_i = fe->im[k] - fe->im[km];
        int32_t b_r = fe->re[k] - fe->re[km], b_i = fe->im[k] + fe->im[km];
        int32_t xr = a_r + etp_fe_rs30(ETP_FE_MUL(etp_fe_rt_cos[k], b_i) + ETP_FE_MUL(etp_fe_rt_sin[k], b_r));
        int32_t xi = a_i + etp_fe_rs30(ETP_FE_MUL(etp_fe_rt_sin[k], b_i) - ETP_FE_MUL(etp_fe_rt_cos[k], b_r));
        fe->power[k] = ETP_FE_MUL(xr, xr) + ETP_FE_MUL(xi, xi);
    }
}

/* mel energies (the bands' nonzero spans) and their log2, Q.LOG_F with the frame's 2 s. */
void etp_fe_mel_log(etp_fe_work_t *fe, int32_t s, int16_t *logmel)
{
    int32_t b, off = 0;
    for (b = 0; b < ETP_FE_MELS; b++) {
        /* unsigned: the power (< 2^61) and the weights are non-negative, so round_shift is one add and
         * shift and each product one UMLAL + MLA; the sum < 2^59 */
        uint64_t acc = 0;
        int32_t j, st = etp_fe_mel_start[b], n = etp_fe_mel_len[b];
        const int64_t *pw = fe->power + st;
        const int32_t *w = etp_fe_mel_w + off;
        for (j = 0; j < n; j++)
            acc += (((uint64_t)pw[j] + ((uint64_t)1 << (ETP_FE_P_SHIFT - 1))) >> ETP_FE_P_SHIFT) * (uint32_t)w[j];
        off += n;
        fe->mel[b] = (int64_t)acc;
        if (acc == 0) {
            logmel[b] = ETP_FE_LOG_ZERO;
        } else {
            int64_t v = etp_round_shift(etp_fe_log2_q(acc) + (int64_t)(2 * s) * 65536, 16 - ETP_FE_LOG_F);
            logmel[b] = (int16_t)etp_sat(v, ETP_FE_LOG_ZERO + 1, 32767);
        }
    }
}

int32_t etp_fe_frame(etp_fe_work_t *fe, const int16_t *win, int16_t *logmel)
{
    int32_t s = etp_fe_load(fe, win), k, b;
    if (s == ETP_FE_SILENT) {
        for (k = 0; k < ETP_FE_N_BINS; k++) fe->power[k] = 0;
        for (b = 0; b < ETP_FE_MELS; b++) {
            fe->mel[b] = 0;
            logmel[b] = ETP_FE_LOG_ZERO;
        }
        return 0;
    }
    etp_fe_fft(fe->re, fe->im);
    etp_fe_power(fe);
    etp_fe_mel_log(fe, s, logmel);
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
    fe->lmax = ETP_FE_LOG_ZERO;
}

#if ETP_FE_RUNNING_MAX
/* running_max_q: the causal maximum falls D (Q.LOG_F) per frame, floored at LOG_ZERO (no L changes:
 * a sounding band is above it; the state cannot run away on an endless stream), then rises to this
 * frame's peak */
int32_t etp_fe_running_max(const int16_t *logmel, int32_t m)
{
    int32_t b;
    m -= ETP_FE_RUNNING_MAX;
    if (m < ETP_FE_LOG_ZERO) m = ETP_FE_LOG_ZERO;
    for (b = 0; b < ETP_FE_MELS; b++)
        if (logmel[b] > m) m = logmel[b];
    return m;
}

/* ahead_m: past the last frame the maximum goes on falling as over silence (read_ahead's end) */
int32_t etp_fe_ahead_m(int32_t m_last, int32_t k)
{
    int32_t m = m_last - k * ETP_FE_RUNNING_MAX;     /* |k D| <= 201 * 255: no overflow */
    return m < ETP_FE_LOG_ZERO ? ETP_FE_LOG_ZERO : m;
}
#endif

/* The window is full: its frame, the maximum (or the running maximum and the L it makes final), then the
 * window moves on by a hop. */
static void etp_fe_window_full(etp_fe_t *fe)
{
    uint16_t t = fe->frames;
    int32_t m = fe->lmax;
    fe->shift = etp_fe_frame(&fe->work, fe->win, fe->lm[t]);
#if ETP_FE_RUNNING_MAX
    m = etp_fe_running_max(fe->lm[t], m);
#else
    int32_t b;
    for (b = 0; b < ETP_FE_MELS; b++)          /* the maximum, kept as frames come */
        if (fe->lm[t][b] > m) m = fe->lm[t][b];
#endif
    fe->lmax = m;
    fe->frames++;
    if (fe->hook) fe->hook(fe->hook_ctx, fe, t);
#if ETP_FE_RUNNING_MAX
    if (t + 1u > ETP_FE_RUNNING_MAX_AHEAD) {   /* m[t] normalises frame t - A: its L is final now */
        etp_fe_l_row(fe->lm[t - ETP_FE_RUNNING_MAX_AHEAD], m);
        fe->l_rows = (uint16_t)(t - ETP_FE_RUNNING_MAX_AHEAD + 1);
    }
#endif
    memmove(fe->win, fe->win + ETP_FE_HOP, (ETP_FE_N_FFT - ETP_FE_HOP) * sizeof fe->win[0]);
    fe->fill = ETP_FE_N_FFT - ETP_FE_HOP;
}

/* n samples (pcm NULL: zeros) into the window, as many at a time as it has room for. */
static void etp_fe_take(etp_fe_t *fe, const int16_t *pcm, uint32_t n)
{
    while (n > 0u) {
        uint32_t k = (uint32_t)(ETP_FE_N_FFT - fe->fill);
        if (k > n) k = n;
        if (pcm != NULL) {
            memcpy(fe->win + fe->fill, pcm, k * sizeof fe->win[0]);
            pcm += k;
        } else {
            memset(fe->win + fe->fill, 0, k * sizeof fe->win[0]);
        }
        fe->fill = (uint16_t)(fe->fill + k);
        n -= k;
        if (fe->fill == ETP_FE_N_FFT) etp_fe_window_full(fe);
    }
}

etp_status_t etp_fe_push(etp_fe_t *fe, const int16_t *pcm, uint32_t n)
{
    if (fe->done || n > ETP_FE_SAMPLES - fe->samples || (pcm == NULL && n > 0)) return ETP_EBADARG;
    etp_fe_take(fe, pcm, n);
    fe->samples += n;
    return ETP_OK;
}

etp_status_t etp_fe_pad_frame(etp_fe_t *fe)
{
    if (fe->done || fe->frames >= ETP_FE_FRAMES) return ETP_EBADARG;
    fe->samples = ETP_FE_SAMPLES;                  /* the rest of the utterance is zeros */
    etp_fe_take(fe, NULL, (uint32_t)(ETP_FE_N_FFT - fe->fill));   /* exactly up to the next frame */
    return ETP_OK;
}

etp_status_t etp_fe_finish(etp_fe_t *fe)
{
    if (fe->done) return ETP_EBADARG;
    while (fe->frames < ETP_FE_FRAMES) etp_fe_pad_frame(fe);
#if ETP_FE_RUNNING_MAX
    for (; fe->l_rows < ETP_FE_FRAMES; fe->l_rows++)   /* the last A frames: the maximum carried on */
        etp_fe_l_row(fe->lm[fe->l_rows], etp_fe_ahead_m(fe->lmax, fe->l_rows + ETP_FE_RUNNING_MAX_AHEAD - (ETP_FE_FRAMES - 1)));
#endif
    fe->samples = ETP_FE_SAMPLES;
    fe->done = 1;
    return ETP_OK;
}

/* l_frame: L = ln(1 + 2^e), e = l - m + C, of one frame's bands in place (m the normaliser). */
void etp_fe_l_row(int16_t *row, int32_t m)
{
    int32_t b;
    for (b = 0; b < ETP_FE_MELS; b++) {
        int32_t v = row[b], e, d, g = 0;           /* g = ln(1 + 2^-|e|), Q.(G_F + G_SHIFT) < 2^18 */
        if (v == ETP_FE_LOG_ZERO) {
            row[b] = 0;
            continue;
        }
        e = v - m + ETP_FE_LOG_OFFSET;
        d = e < 0 ? -e : e;
        if (d < ETP_FE_G_LIMIT) {
            int32_t i = d >> ETP_FE_G_SHIFT, f = d & ((1 << ETP_FE_G_SHIFT) - 1);
            g = etp_fe_g_lut[i] * ((1 << ETP_FE_G_SHIFT) - f) + etp_fe_g_lut[i + 1] * f;
        }
        if (e <= 0)                                /* = round_shift(g << G_ACC_SHIFT, L_ACC_F - L_F) */
            row[b] = (int16_t)etp_round_shift(g, ETP_FE_G_F + ETP_FE_G_SHIFT - ETP_FE_L_F);
        else                                       /* ln(1 + 2^e) = e ln 2 + ln(1 + 2^-e) */
            row[b] = (int16_t)etp_round_shift((int64_t)g * ((int64_t)1 << ETP_FE_G_ACC_SHIFT)
                                              + (int64_t)e * ETP_FE_LN2_Q, ETP_FE_L_ACC_F - ETP_FE_L_F);
    }
}

/* The utterance's maximum: L in place for frames l_rows .. n - 1 (Python: logmel_to_l), on demand,
 * a few rows per network step, not all 101 x 40 in the frame that finishes. With the running
 * maximum every row is L already (l_rows == frames). */
static void etp_fe_l_upto(etp_fe_t *fe, int32_t n)
{
    int32_t t;
    for (t = fe->l_rows; t < n; t++) etp_fe_l_row(fe->lm[t], fe->lmax);
    if (n > fe->l_rows) fe->l_rows = (uint16_t)n;
}

etp_status_t etp_fe_l(etp_fe_t *fe, uint16_t n)
{
    if (!fe->done || n > ETP_FE_FRAMES) return ETP_EBADARG;
    etp_fe_l_upto(fe, n);
    return ETP_OK;
}

void etp_fe_delta(const int16_t *const rows[ETP_FE_DELTA_WIDTH], int32_t r, const int16_t *lrow,
                  int32_t feats[ETP_FE_FEATURES])
{
    int32_t b, j;
    for (b = 0; b < ETP_FE_MELS; b++) {
        int64_t a1 = 0, a2 = 0;
        for (j = 0; j < ETP_FE_DELTA_WIDTH; j++) {
            a1 += (int64_t)etp_fe_delta1[r][j] * rows[j][b];
            a2 += (int64_t)etp_fe_delta2[r][j] * rows[j][b];
        }
        feats[b] = (int32_t)lrow[b] * (1 << (ETP_FE_FEAT_F - ETP_FE_L_F));
        feats[ETP_FE_MELS + b] = (int32_t)etp_round_shift(a1, ETP_FE_DELTA_SHIFT);
        feats[2 * ETP_FE_MELS + b] = (int32_t)etp_round_shift(a2, ETP_FE_DELTA_SHIFT);
    }
}

etp_status_t etp_fe_features(etp_fe_t *fe, uint16_t t, int32_t feats[ETP_FE_FEATURES])
{
    int32_t j, st;
    const int16_t *rows[ETP_FE_DELTA_WIDTH];
    if (!fe->done || t >= ETP_FE_FRAMES || feats == NULL) return ETP_EBADARG;
    st = etp_fe_delta_start[t];
    etp_fe_l_upto(fe, st + ETP_FE_DELTA_WIDTH);    /* the frames delta reads (t among them) */
    for (j = 0; j < ETP_FE_DELTA_WIDTH; j++) rows[j] = fe->lm[st + j];
    etp_fe_delta(rows, etp_fe_delta_row[t], fe->lm[t], feats);
    return ETP_OK;
}

void etp_fe_scale(const int32_t feats[ETP_FE_FEATURES], etp_x_t x[ETP_FE_FEATURES])
{
    int32_t j;
    const int32_t hi = (int32_t)(((uint32_t)1 << (ETP_X_BITS - 1)) - 1u);
    for (j = 0; j < ETP_FE_FEATURES; j++) {
        int32_t s = etp_fe_norm_s[j], v;
        if (s >= 16 && s <= 32) {
            /* m < 2^15, so m 2^(32 - s) < 2^31 and round_shift(F m, s) = mulhr(F, m 2^(32 - s)) exactly
             * (one SMMULR where the int64 product and its rounding shift take a dozen instructions) */
            v = etp_mulhr(feats[j], (int32_t)((uint32_t)etp_fe_norm_m[j] << (32 - s)));
        } else {
            v = (int32_t)etp_sat(etp_round_shift((int64_t)feats[j] * etp_fe_norm_m[j], s), INT32_MIN, INT32_MAX);
        }
        x[j] = (etp_x_t)(v < -hi - 1 ? -hi - 1 : (v > hi ? hi : v));
    }
}

etp_status_t etp_fe_input(etp_fe_t *fe, uint16_t t, etp_x_t x[ETP_FE_FEATURES])
{
    int32_t f[ETP_FE_FEATURES];
    if (x == NULL || etp_fe_features(fe, t, f) != ETP_OK) return ETP_EBADARG;
    etp_fe_scale(f, x);
    return ETP_OK;
}
