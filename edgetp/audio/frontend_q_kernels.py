"""The integer frontend's kernels (numba; identical with ``NUMBA_DISABLE_JIT=1``): one frame's
window, FFT, power, mel and log2; L from the log-mel; Δ / ΔΔ; the model's input scaling.
Each has a C twin of the same name in firmware_gen/runtime/etp_frontend.c (prefix etp_fe_).
The tables they take are frontend_q_tables'."""

from __future__ import annotations

import numpy as np
from numba import njit

from edgetp.audio.frontend_q_tables import (
    DELTA_F,
    FEAT_F,
    FRAME_BITS,
    G_ACC_SHIFT,
    G_F,
    G_SHIFT,
    HOP,
    L_ACC_F,
    LN2_Q,
    LOG_F,
    LOG_LUT_F,
    LOG_ZERO,
    P_SHIFT,
    TW_F,
)
from edgetp.fixed.primitives import bitlen, mulhr, round_shift


@njit(cache=True)
def fft_turn(yr, yi, c, s):
    """y W at half scale: the four mulhr-products of y and the Q.31 twiddle W = c + i s (mulhr of a Q.31
    value is half the product, so the stages double each sum of them)."""
    return mulhr(yr, c) - mulhr(yi, s), mulhr(yr, s) + mulhr(yi, c)


@njit(cache=True)
def fft_stage5(re, im, twc, tws):
    """Radix 5, the first stage (one butterfly per 5 values, no inner twiddle): W = W_240^48 and W^2
    pair q with 5 - q, A = y_q + y_(5-q), B = y_q - y_(5-q); output m is y_0 + 2 (sum of mulhr(A, cos)
    -+ mulhr(B, sin) over the pairs); output 0 is y_0 + A_1 + A_2."""
    c1, s1, c2, s2 = twc[48], tws[48], twc[96], tws[96]
    for b in range(0, re.shape[0], 5):
        y0r, y0i = re[b], im[b]
        a1r, a1i, b1r, b1i = re[b + 1] + re[b + 4], im[b + 1] + im[b + 4], re[b + 1] - re[b + 4], im[b + 1] - im[b + 4]
        a2r, a2i, b2r, b2i = re[b + 2] + re[b + 3], im[b + 2] + im[b + 3], re[b + 2] - re[b + 3], im[b + 2] - im[b + 3]
        pr = mulhr(a1r, c1) + mulhr(a2r, c2)
        pi = mulhr(a1i, c1) + mulhr(a2i, c2)
        qr = mulhr(b1i, s1) + mulhr(b2i, s2)
        qi = mulhr(b1r, s1) + mulhr(b2r, s2)
        p2r = mulhr(a1r, c2) + mulhr(a2r, c1)
        p2i = mulhr(a1i, c2) + mulhr(a2i, c1)
        q2r = mulhr(b1i, s2) - mulhr(b2i, s1)
        q2i = mulhr(b1r, s2) - mulhr(b2r, s1)
        re[b], im[b] = y0r + a1r + a2r, y0i + a1i + a2i
        re[b + 1], im[b + 1] = y0r + 2 * (pr - qr), y0i + 2 * (pi + qi)
        re[b + 4], im[b + 4] = y0r + 2 * (pr + qr), y0i + 2 * (pi - qi)
        re[b + 2], im[b + 2] = y0r + 2 * (p2r - q2r), y0i + 2 * (p2i + q2i)
        re[b + 3], im[b + 3] = y0r + 2 * (p2r + q2r), y0i + 2 * (p2i - q2i)


@njit(cache=True)
def fft_stage3(re, im, twc, tws):
    """Radix 3 (size 5, step 16). k = 0: W_3 = W_240^80 pairs q = 1, 2 as radix 5 does (doubled).
    k >= 1: each input is turned first, z_q = mulhr-product of y_q and W^(16 q k) (half scale), then
    the k = 0 butterfly on the z (its products are quarter scale, so quadrupled)."""
    c, s = twc[80], tws[80]
    for blk in range(0, re.shape[0], 15):
        for k in range(5):
            j0, j1, j2 = blk + k, blk + k + 5, blk + k + 10
            y0r, y0i = re[j0], im[j0]
            if k == 0:
                ar, ai, br, bi = re[j1] + re[j2], im[j1] + im[j2], re[j1] - re[j2], im[j1] - im[j2]
                pr, pi, qr, qi = mulhr(ar, c), mulhr(ai, c), mulhr(bi, s), mulhr(br, s)
                re[j0], im[j0] = y0r + ar, y0i + ai
                re[j1], im[j1] = y0r + 2 * (pr - qr), y0i + 2 * (pi + qi)
                re[j2], im[j2] = y0r + 2 * (pr + qr), y0i + 2 * (pi - qi)
            else:
                z1r, z1i = fft_turn(re[j1], im[j1], twc[16 * k], tws[16 * k])
                z2r, z2i = fft_turn(re[j2], im[j2], twc[32 * k], tws[32 * k])
                ar, ai, br, bi = z1r + z2r, z1i + z2i, z1r - z2r, z1i - z2i
                pr, pi, qr, qi = mulhr(ar, c), mulhr(ai, c), mulhr(bi, s), mulhr(br, s)
                re[j0], im[j0] = y0r + 2 * ar, y0i + 2 * ai
                re[j1], im[j1] = y0r + 4 * (pr - qr), y0i + 4 * (pi + qi)
                re[j2], im[j2] = y0r + 4 * (pr + qr), y0i + 4 * (pi - qi)


@njit(cache=True)
def fft_stage4(re, im, twc, tws, size):
    """Radix 4 (size S, step 240 / 4S): W^(q (k + m S) step) = (-i)^(q m) W^(q k step), so each input
    is turned once, z_q = mulhr-product of y_q and W^(q k step) (half scale; k = 0: no turn), and the
    four outputs are y_0 +- 2 z_2 +- 2 (z_1 + z_3) and y_0 -+ 2 z_2 +- 2 i (z_1 - z_3)."""
    step = re.shape[0] // (4 * size)
    for blk in range(0, re.shape[0], 4 * size):
        for k in range(size):
            j0, j1, j2, j3 = blk + k, blk + k + size, blk + k + 2 * size, blk + k + 3 * size
            y0r, y0i = re[j0], im[j0]
            if k == 0:
                ar, ai, br, bi = y0r + re[j2], y0i + im[j2], y0r - re[j2], y0i - im[j2]
                cr, ci, dr, di = re[j1] + re[j3], im[j1] + im[j3], re[j1] - re[j3], im[j1] - im[j3]
                re[j0], im[j0] = ar + cr, ai + ci
                re[j2], im[j2] = ar - cr, ai - ci
                re[j1], im[j1] = br + di, bi - dr
                re[j3], im[j3] = br - di, bi + dr
            else:
                t = k * step
                z1r, z1i = fft_turn(re[j1], im[j1], twc[t], tws[t])
                z2r, z2i = fft_turn(re[j2], im[j2], twc[2 * t], tws[2 * t])
                z3r, z3i = fft_turn(re[j3], im[j3], twc[3 * t], tws[3 * t])
                ar, ai, br, bi = y0r + 2 * z2r, y0i + 2 * z2i, y0r - 2 * z2r, y0i - 2 * z2i
                cr, ci, dr, di = z1r + z3r, z1i + z3i, z1r - z3r, z1i - z3i
                re[j0], im[j0] = ar + 2 * cr, ai + 2 * ci
                re[j2], im[j2] = ar - 2 * cr, ai - 2 * ci
                re[j1], im[j1] = br + 2 * di, bi - 2 * dr
                re[j3], im[j3] = br - 2 * di, bi + 2 * dr


@njit(cache=True)
def fft240_q(re, im, perm, factors, twc, tws):
    """In-place mixed-radix DIT FFT of 240 complex values (inputs |.| <= 2^20 after the frame
    shift), radices 5, 3, 4, 4 innermost first on the digit-reversed input (perm), twiddles
    Q.31. Every twiddle product is one mulhr (SMMULR on a Cortex-M4): int32 throughout."""
    if factors.shape[0] != 4 or factors[0] != 4 or factors[1] != 4 or factors[2] != 3 or factors[3] != 5:
        raise ValueError("fft240_q is specialised to 240 = 4 * 4 * 3 * 5 points")
    n = re.shape[0]
    tr = np.empty(n, np.int64)
    ti = np.empty(n, np.int64)
    for i in range(n):
        tr[i] = re[perm[i]]
        ti[i] = im[perm[i]]
    fft_stage5(tr, ti, twc, tws)
    fft_stage3(tr, ti, twc, tws)
    fft_stage4(tr, ti, twc, tws, 15)
    fft_stage4(tr, ti, twc, tws, 60)
    for i in range(n):
        re[i] = tr[i]
        im[i] = ti[i]


@njit(cache=True)
def log2_q(s, lut):
    """round(log2(s) * 2^16) for s > 0: integer part from the bit length, fraction from a
    257-entry Q.16 table with linear interpolation on the 22 bits below the index."""
    b = bitlen(s) - 1
    if b >= 30:
        m = s >> (b - 30)
    else:
        m = s << (30 - b)
    idx = (m >> 22) & 255
    rem = m & ((1 << 22) - 1)
    frac = lut[idx] + round_shift((lut[idx + 1] - lut[idx]) * rem, 22)
    return (b << 16) + frac


@njit(cache=True)
def frame_q(win, window, perm, factors, twc, tws, rtc, rts, mel_q, mel_start, mel_len, log_lut, power, mel, logmel):
    """One frame (480 int16 samples) -> power[N_BINS] (int64), mel[40] (int64), logmel[40]
    (Q.8, int16 range); returns the frame shift s."""
    n2 = win.shape[0]
    half = n2 // 2
    p = np.empty(n2, np.int64)
    mx = np.int64(0)
    for i in range(n2):
        p[i] = win[i] * window[i]
        a = p[i] if p[i] >= 0 else -p[i]
        if a > mx:
            mx = a
    nb = power.shape[0]
    if mx == 0:
        for k in range(nb):
            power[k] = 0
        for b in range(mel.shape[0]):
            mel[b] = 0
            logmel[b] = LOG_ZERO
        return 0
    s = bitlen(mx) - FRAME_BITS
    re = np.empty(half, np.int64)
    im = np.empty(half, np.int64)
    for i in range(half):
        if s > 0:
            re[i] = round_shift(p[2 * i], s)
            im[i] = round_shift(p[2 * i + 1], s)
        else:
            re[i] = p[2 * i] << (-s)
            im[i] = p[2 * i + 1] << (-s)
    fft240_q(re, im, perm, factors, twc, tws)
    for k in range(nb):
        km = (half - k) % half
        a_r = re[k] + re[km]
        a_i = im[k] - im[km]
        b_r = re[k] - re[km]
        b_i = im[k] + im[km]
        xr = a_r + round_shift(rtc[k] * b_i + rts[k] * b_r, TW_F)
        xi = a_i + round_shift(rts[k] * b_i - rtc[k] * b_r, TW_F)
        power[k] = xr * xr + xi * xi
    off = 0
    for b in range(mel.shape[0]):
        acc = np.int64(0)
        for j in range(mel_len[b]):
            acc += mel_q[off + j] * round_shift(power[mel_start[b] + j], P_SHIFT)
        off += mel_len[b]
        mel[b] = acc
        if acc == 0:
            logmel[b] = LOG_ZERO
        else:
            v = round_shift(log2_q(acc, log_lut) + ((2 * s) << LOG_LUT_F), LOG_LUT_F - LOG_F)
            logmel[b] = -32767 if v < -32767 else (32767 if v > 32767 else v)
    return s


@njit(cache=True)
def all_frames_q(
    pcm, window, perm, factors, twc, tws, rtc, rts, mel_q, mel_start, mel_len, log_lut, shifts, power, mel, logmel
):
    n_fft = window.shape[0]
    half = n_fft // 2
    hop = HOP
    win = np.empty(n_fft, np.int64)
    for t in range(shifts.shape[0]):
        for i in range(n_fft):
            src = t * hop - half + i
            win[i] = pcm[src] if 0 <= src < pcm.shape[0] else 0
        shifts[t] = frame_q(
            win,
            window,
            perm,
            factors,
            twc,
            tws,
            rtc,
            rts,
            mel_q,
            mel_start,
            mel_len,
            log_lut,
            power[t],
            mel[t],
            logmel[t],
        )


@njit(cache=True)
def l_frame(logmel, m, g_lut, offset, l_frac, out):
    """L = ln(1 + 2^e), e = l - m + offset (Q.8; m the normaliser, offset = log2 of the model's log
    gain), in Q.l_frac for one frame's bands (0 where l is LOG_ZERO): ln(1 + 2^-|e|) from G_LUT
    (interpolated), plus e ln 2 when e > 0, summed in Q.L_ACC_F and rounded once."""
    lim = (g_lut.shape[0] - 1) << G_SHIFT  # G_RANGE in Q.8
    one = 1 << G_SHIFT
    for b in range(logmel.shape[0]):
        v = logmel[b]
        if v == LOG_ZERO:
            out[b] = 0
            continue
        e = v - m + offset
        d = -e if e < 0 else e
        g = np.int64(0)  # ln(1 + 2^-d), Q.(G_F + G_SHIFT)
        if d < lim:
            i = d >> G_SHIFT
            f = d & (one - 1)
            g = g_lut[i] * (one - f) + g_lut[i + 1] * f
        if e <= 0:  # = round_shift(g << G_ACC_SHIFT, L_ACC_F - l_frac)
            out[b] = round_shift(g, G_F + G_SHIFT - l_frac)
        else:
            out[b] = round_shift((g << G_ACC_SHIFT) + e * LN2_Q, L_ACC_F - l_frac)


@njit(cache=True)
def logmel_to_l(logmel, g_lut, offset, l_frac, out):
    """L of every frame normalised by the utterance's maximum m = max l (LOG_ZERO if every band is);
    returns m."""
    m = np.int64(LOG_ZERO)
    for t in range(logmel.shape[0]):
        for b in range(logmel.shape[1]):
            if logmel[t, b] > m:
                m = logmel[t, b]
    for t in range(logmel.shape[0]):
        l_frame(logmel[t], m, g_lut, offset, l_frac, out[t])
    return m


@njit(cache=True)
def running_max_q(logmel, m, decay):
    """The causal normaliser after one frame: max(max_b l[b], m - decay), Q.8 like l, where ``decay``
    is the model's D (the float's D / 256 of an octave, exactly). It never goes below LOG_ZERO: a band
    that is not LOG_ZERO is >= LOG_ZERO + 1, so the floor changes no L and the state cannot wrap on an
    endless stream; LOG_ZERO bands are below every such m, so they never raise it."""
    m = m - decay
    if m < LOG_ZERO:
        m = LOG_ZERO
    for b in range(logmel.shape[0]):
        if logmel[b] > m:
            m = logmel[b]
    return m


@njit(cache=True)
def logmel_to_l_running(logmel, g_lut, offset, l_frac, decay, out, m_out):
    """L of every frame normalised by the running maximum (m_out[t], from LOG_ZERO before frame 0);
    returns the last m."""
    m = np.int64(LOG_ZERO)
    for t in range(logmel.shape[0]):
        m = running_max_q(logmel[t], m, decay)
        m_out[t] = m
        l_frame(logmel[t], m, g_lut, offset, l_frac, out[t])
    return m


@njit(cache=True)
def ahead_m(m_last, k, decay):
    """The running maximum k >= 1 frames past the last frame, as frames of silence (every band LOG_ZERO)
    would carry it: max(m_last - k decay, LOG_ZERO), what ``running_max_q`` gives after k such frames."""
    m = m_last - k * decay
    if m < LOG_ZERO:
        m = LOG_ZERO
    return m


@njit(cache=True)
def read_ahead_q(m, decay, ahead, out):
    """The twin of the float ``read_ahead``: out[t] = m[t + ahead] (m the running maximum after each
    frame), past the last frame ``ahead_m`` (floored at LOG_ZERO, as the running maximum is)."""
    n = m.shape[0]
    for t in range(n):
        j = t + ahead
        out[t] = m[j] if j < n else ahead_m(m[n - 1], j - n + 1, decay)


@njit(cache=True)
def logmel_to_l_ahead(logmel, g_lut, offset, l_frac, decay, ahead, out, m_out):
    """L of every frame normalised by the running maximum read ``ahead`` frames later (``read_ahead_q``;
    m_out: the running maximum after each frame); returns the last m."""
    n = logmel.shape[0]
    m = np.int64(LOG_ZERO)
    for t in range(n):
        m = running_max_q(logmel[t], m, decay)
        m_out[t] = m
    ma = np.zeros(n, np.int64)
    read_ahead_q(m_out, decay, ahead, ma)
    for t in range(n):
        l_frame(logmel[t], ma[t], g_lut, offset, l_frac, out[t])
    return m


@njit(cache=True)
def delta_frame(L, st, r, t, d1, d2, l_frac, out):
    """F of frame t (row t of L), reading rows st .. st + 8 of L with coefficient row r:
    [L << (18 - l_frac), round_shift(D1 . L, 6 + l_frac), round_shift(D2 . L, 6 + l_frac)]
    Q.18 int32 (L in Q.l_frac, D1 and D2 Q.24)."""
    B = L.shape[1]
    shift = DELTA_F + l_frac - FEAT_F
    w = d1.shape[1]
    for b in range(B):
        a1 = np.int64(0)
        a2 = np.int64(0)
        for j in range(w):
            a1 += d1[r, j] * L[st + j, b]
            a2 += d2[r, j] * L[st + j, b]
        out[b] = L[t, b] << (FEAT_F - l_frac)
        out[B + b] = round_shift(a1, shift)
        out[2 * B + b] = round_shift(a2, shift)


@njit(cache=True)
def features_from_l(L, d1, d2, dstart, drow, l_frac, out):
    """F of every frame t of the utterance (rows dstart[t] .., coefficient row drow[t])."""
    for t in range(L.shape[0]):
        delta_frame(L, dstart[t], drow[t], t, d1, d2, l_frac, out[t])


@njit(cache=True)
def normalise_q(feats, norm_m, norm_s, lo, hi, out):
    """x[t, j] = sat(round_shift(F[t, j] * NORM_M[j], NORM_S[j]), lo, hi)."""
    for t in range(feats.shape[0]):
        for j in range(feats.shape[1]):
            v = round_shift(feats[t, j] * norm_m[j], norm_s[j])
            out[t, j] = lo if v < lo else (hi if v > hi else v)
