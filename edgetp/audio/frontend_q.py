"""The integer twin of the paper's frontend: 16 kHz int16 PCM -> 101 x [40 log-mel, 40 Δ, 40 ΔΔ].

Only integer arithmetic (numba-compiled, identical with ``NUMBA_DISABLE_JIT=1``); the C
twin ``etp_frontend.c`` (firmware_gen/runtime) must reproduce every intermediate bit for
bit. docs/fixed-point.md §9 documents each Q-format and rounding; in short, per frame::

    p[n]   = pcm[n] * WINDOW_Q[n]                   int32 (Q.15 window, exact)
    s      = bitlen(max |p|) - FRAME_BITS            per-frame block exponent
    y[n]   = round_shift(p[n], s)   (s <= 0: p << -s)   |y| <= 2^20
    Z      = FFT_240(y[2n] + i y[2n+1])              mixed radix 4*4*3*5, Q2.30 twiddles,
                                                     one round_shift(., 30) per output and stage
    2X[k]  = A + round_shift(-i W_480^k B, 30)       the real-FFT split (A, B from Z[k], Z[240-k])
    P[k]   = re^2 + im^2                             int64, k = 0 .. N_BINS-1 (the bins the mel bands use)
    S[b]   = sum_k MEL_Q[b, k] * round_shift(P[k], P_SHIFT)     int64 (weights Q.15 of the largest)
    l[b]   = round_shift(log2(S[b]) + 2 s, in Q.16 -> Q.LOG_F)   int16, LOG_ZERO when S[b] = 0

and per utterance (the whole-utterance part: the maximum and Δ's look-ahead)::

    m      = max l                                    (all LOG_ZERO: every L = 0)
    e      = l - m + C,   C = round(log2(g) * 2^8)    the model's log gain g as an offset (Q.8, like l)
    L      = ln(1 + 2^e) = ln(1 + g S / max S)        int16 Q.L_F(g): G_LUT = ln(1 + 2^-d) (step 1/32,
                                                      linear interpolation) at d = |e|, + e ln 2 when e > 0
    F      = [L << (18 - L_F), round_shift(D1 . L, 6 + L_F), round_shift(D2 . L, 6 + L_F)]   int32 Q.FEAT_F (18)
    x      = sat(round_shift(F * NORM_M[j], NORM_S[j]))                     the model's input (int16 Q.fx)

``g`` is the model's ``frontend["log_gain"]`` (1, the paper's log1p(S / max S), unless the
model records another; ``edgetp.kws.data.recompress``); L's Q-format is the finest that holds
ln(1 + g) in an int16 (Q.15 for g = 1, so g = 1 is the paper's frontend bit for bit; Q.12 for
g = 1000). ``l`` is scale-free in the input (S / max S is), so the float pipeline's peak
normalisation is not needed; the per-frame exponent ``s`` keeps quiet frames at full
precision. Frames are centred like librosa's: frame t covers samples 160 t - 240 ..
160 t + 239 of the 16000-sample utterance (zeros outside). Everything is a function of
one frame's 480 samples except ``m`` (needs every frame) and Δ/ΔΔ (four frames of
look-ahead, and ``m``), so a device computes ``l`` per 10 ms hop and keeps 101 x 40 int16
(8 080 B) of them until the utterance ends.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache

import numpy as np
from numba import njit

from edgetp.audio import frontend as F
from edgetp.errors import EdgetpError
from edgetp.fixed.primitives import round_shift

N_SAMPLES, HOP, N_FFT, N_MELS, N_FRAMES = F.N_SAMPLES, F.HOP, F.N_FFT, F.N_MELS, F.N_FRAMES
N_FEATURES = F.N_FEATURES
HALF = N_FFT // 2                 # 240: the complex FFT's length, and the centring pad
WIN_F = 15                        # window Q.15
FRAME_BITS = 20                   # a frame is shifted so that max |y| < 2^FRAME_BITS
FFT_FACTORS = (4, 4, 3, 5)        # 240 = 4 * 4 * 3 * 5, outermost split first
TW_F = 30                         # FFT twiddles Q2.30
P_SHIFT = 20                      # power -> mel: P >> 20 (< 2^40) times weights < 2^15
MEL_F = 15                        # mel weights: Q.15 of the largest weight (a common factor cancels in S / max S)
LOG_F = 8                         # log2 of the mel energy: int16 Q.8
LOG_LUT_BITS = 8                  # log2(1 + i/256), i = 0..256, Q.16
LOG_LUT_F = 16
LOG_ZERO = -32768                 # l of an all-zero mel band
G_F = 15                          # G_LUT Q.15
L_F_MAX = 15                      # L = log1p(g S / max S) int16 Q.l_frac(g) <= 15 (15 for g = 1)
G_STEP_BITS = 5                   # G_LUT: ln(1 + 2^-d) at d = i / 32
G_RANGE = 17                      # d >= 17 (2^-17 < 1 LSB of Q.15 after ln 2): ln(1 + 2^-d) = 0
G_SHIFT = 8 - G_STEP_BITS         # LOG_F - G_STEP_BITS: Q.8 log-mel units per G_LUT step (2^3)
L_ACC_F = 34                      # L before its one rounding: Q.34 (G_LUT's interpolation Q.18 << 16)
G_ACC_SHIFT = L_ACC_F - G_F - G_SHIFT                # 16: the interpolated G_LUT value -> Q.L_ACC_F
LOG_GAIN_MAX = 1 << 16            # the log gains the frontend takes: 1 <= g <= 2^16
DELTA_F = 24                      # Δ / ΔΔ coefficients Q.24
FEAT_F = 18                       # features int32 Q.18 (L, Δ, ΔΔ)
NORM_M_BITS = 15                  # NORM_M[j] in [2^14, 2^15)


def _decimal_round(x: Decimal) -> int:
    return int(x.to_integral_value(ROUND_HALF_UP))


def _window_q() -> np.ndarray:
    w = np.round(F.WINDOW * (1 << WIN_F))
    return np.clip(w, 0, (1 << WIN_F) - 1).astype(np.int64)


def _twiddles(n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """W_n^t = cos(2 pi t / n) - i sin(2 pi t / n), t < count, Q.TW_F (cos, -sin)."""
    t = np.arange(count)
    c = np.round(np.cos(2 * np.pi * t / n) * (1 << TW_F)).astype(np.int64)
    s = np.round(-np.sin(2 * np.pi * t / n) * (1 << TW_F)).astype(np.int64)
    return c, s


def _fft_perm() -> np.ndarray:
    """Input index of each position before the first stage (mixed-radix digit reversal)."""
    perm = np.zeros(HALF, dtype=np.int64)

    def build(start, offset, stride, factors, n):
        if not factors:
            perm[start] = offset
            return
        r, sub = factors[0], n // factors[0]
        for q in range(r):
            build(start + q * sub, offset + q * stride, stride * r, factors[1:], sub)

    build(0, 0, 1, FFT_FACTORS, HALF)
    return perm


def _mel_q():
    """(MEL_Q flat weights, band start bin, band length, N_BINS): the nonzero part of each band."""
    m = F.MEL / F.MEL.max()
    starts, lens, vals = [], [], []
    for b in range(N_MELS):
        nz = np.flatnonzero(F.MEL[b] > 0)
        lo, hi = int(nz[0]), int(nz[-1]) + 1
        starts.append(lo)
        lens.append(hi - lo)
        vals.extend(np.round(m[b, lo:hi] * (1 << MEL_F)).astype(np.int64))
    return (np.array(vals, np.int64), np.array(starts, np.int64), np.array(lens, np.int64),
            int(max(s + n for s, n in zip(starts, lens))))


def _log2_lut() -> np.ndarray:
    with localcontext() as ctx:
        ctx.prec = 40
        ln2 = Decimal(2).ln()
        return np.array([_decimal_round((1 + Decimal(i) / 256).ln() / ln2 * (1 << LOG_LUT_F))
                         for i in range(257)], dtype=np.int64)


def _g_lut() -> np.ndarray:
    """round(ln(1 + 2^(-i/32)) * 2^15), i = 0 .. 32 * G_RANGE."""
    with localcontext() as ctx:
        ctx.prec = 40
        ln2 = Decimal(2).ln()
        n = G_RANGE << G_STEP_BITS
        return np.array([_decimal_round((1 + (-(Decimal(i) / (1 << G_STEP_BITS)) * ln2).exp()).ln() * (1 << G_F))
                         for i in range(n + 1)], dtype=np.int64)


def _ln2_q() -> int:
    """round(ln 2 * 2^(L_ACC_F - LOG_F)): e (Q.LOG_F) * LN2_Q is e ln 2 in Q.L_ACC_F."""
    with localcontext() as ctx:
        ctx.prec = 40
        return _decimal_round(Decimal(2).ln() * (1 << (L_ACC_F - LOG_F)))


def delta_start(t: int) -> int:
    """First frame of the 9 that Δ/ΔΔ of frame t read (mode "interp" fits the edges)."""
    w = F.DELTA_WIDTH
    return min(max(t - w // 2, 0), N_FRAMES - w)


def delta_row(t: int) -> int:
    """Which of the 9 coefficient rows frame t uses: t (< 4), 4 (interior), t - 92 (> 96)."""
    h = F.DELTA_WIDTH // 2
    return t if t < h else (h + t - (N_FRAMES - 1 - h) if t > N_FRAMES - 1 - h else h)


def _delta_q():
    w = F.DELTA_WIDTH
    out = []
    for D in (F.DELTA1, F.DELTA2):
        rows = np.zeros((w, w), dtype=np.int64)
        for t in range(N_FRAMES):
            st = delta_start(t)
            col = D[:, t]
            if np.any(np.abs(np.delete(col, range(st, st + w))) > 1e-12):
                raise AssertionError("the Δ operator is not banded as delta_start says")
            q = np.round(col[st:st + w] * (1 << DELTA_F)).astype(np.int64)
            r = delta_row(t)
            if rows[r].any() and not np.array_equal(rows[r], q):
                raise AssertionError(f"Δ row {r} differs between frames")
            rows[r] = q
        out.append(rows)
    return out[0], out[1]


WINDOW_Q = _window_q()
TW_COS, TW_SIN = _twiddles(HALF, HALF)
RT_COS_ALL, RT_SIN_ALL = _twiddles(N_FFT, HALF)
FFT_PERM = _fft_perm()
MEL_Q, MEL_START, MEL_LEN, N_BINS = _mel_q()
RT_COS, RT_SIN = RT_COS_ALL[:N_BINS].copy(), RT_SIN_ALL[:N_BINS].copy()
LOG2_LUT = _log2_lut()
G_LUT = _g_lut()
LN2_Q = _ln2_q()
DELTA1_Q, DELTA2_Q = _delta_q()
DELTA_START = np.array([delta_start(t) for t in range(N_FRAMES)], np.int64)
DELTA_ROW = np.array([delta_row(t) for t in range(N_FRAMES)], np.int64)
FACTORS = np.array(FFT_FACTORS, np.int64)


# ----------------------------------------------------------------------------- one frame
@njit(cache=True)
def bitlen64(x):
    """Bits of a non-negative integer (0 for 0)."""
    n = 0
    while x > 0:
        x >>= 1
        n += 1
    return n


@njit(cache=True)
def fft240_q(re, im, perm, factors, twc, tws):
    """In-place mixed-radix DIT FFT of 240 complex int64 values (inputs |.| <= 2^20 after
    the frame shift). Each stage computes out[k + m size] = round_shift(sum_q
    W_new^(q (k + m size)) Y_q[k], 30) with one rounding per output."""
    n = re.shape[0]
    tr = np.empty(n, np.int64)
    ti = np.empty(n, np.int64)
    for i in range(n):
        tr[i] = re[perm[i]]
        ti[i] = im[perm[i]]
    yr = np.empty(8, np.int64)
    yi = np.empty(8, np.int64)
    size = 1
    for fi in range(factors.shape[0] - 1, -1, -1):
        r = factors[fi]
        new = size * r
        step = n // new
        for blk in range(0, n, new):
            for k in range(size):
                for q in range(r):
                    yr[q] = tr[blk + q * size + k]
                    yi[q] = ti[blk + q * size + k]
                for m in range(r):
                    j = k + m * size
                    ar = np.int64(0)
                    ai = np.int64(0)
                    for q in range(r):
                        t = (q * j * step) % n
                        ar += yr[q] * twc[t] - yi[q] * tws[t]
                        ai += yr[q] * tws[t] + yi[q] * twc[t]
                    tr[blk + k + m * size] = round_shift(ar, TW_F)
                    ti[blk + k + m * size] = round_shift(ai, TW_F)
        size = new
    for i in range(n):
        re[i] = tr[i]
        im[i] = ti[i]


@njit(cache=True)
def log2_q(s, lut):
    """round(log2(s) * 2^16) for s > 0: integer part from the bit length, fraction from a
    257-entry Q.16 table with linear interpolation on the 22 bits below the index."""
    b = bitlen64(s) - 1
    if b >= 30:
        m = s >> (b - 30)
    else:
        m = s << (30 - b)
    idx = (m >> 22) & 255
    rem = m & ((1 << 22) - 1)
    frac = lut[idx] + round_shift((lut[idx + 1] - lut[idx]) * rem, 22)
    return (b << 16) + frac


@njit(cache=True)
def frame_q(win, window, perm, factors, twc, tws, rtc, rts, mel_q, mel_start, mel_len, log_lut,
            power, mel, logmel):
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
    s = bitlen64(mx) - FRAME_BITS
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
def _frames(pcm, window, perm, factors, twc, tws, rtc, rts, mel_q, mel_start, mel_len, log_lut,
            shifts, power, mel, logmel):
    n_fft = window.shape[0]
    half = n_fft // 2
    hop = HOP
    win = np.empty(n_fft, np.int64)
    for t in range(shifts.shape[0]):
        for i in range(n_fft):
            src = t * hop - half + i
            win[i] = pcm[src] if 0 <= src < pcm.shape[0] else 0
        shifts[t] = frame_q(win, window, perm, factors, twc, tws, rtc, rts, mel_q, mel_start, mel_len, log_lut,
                            power[t], mel[t], logmel[t])


@njit(cache=True)
def logmel_to_l(logmel, g_lut, offset, l_frac, out):
    """L = ln(1 + 2^e), e = l - max l + offset (Q.8; offset = log2 of the model's log gain), in
    Q.l_frac for every frame and band (0 where l is LOG_ZERO): ln(1 + 2^-|e|) from G_LUT
    (interpolated), plus e ln 2 when e > 0, summed in Q.L_ACC_F and rounded once."""
    m = np.int64(LOG_ZERO)
    for t in range(logmel.shape[0]):
        for b in range(logmel.shape[1]):
            if logmel[t, b] > m:
                m = logmel[t, b]
    lim = (g_lut.shape[0] - 1) << G_SHIFT      # G_RANGE in Q.8
    one = 1 << G_SHIFT
    for t in range(logmel.shape[0]):
        for b in range(logmel.shape[1]):
            v = logmel[t, b]
            if v == LOG_ZERO:
                out[t, b] = 0
                continue
            e = v - m + offset
            d = -e if e < 0 else e
            g = np.int64(0)                     # ln(1 + 2^-d), Q.(G_F + G_SHIFT)
            if d < lim:
                i = d >> G_SHIFT
                f = d & (one - 1)
                g = g_lut[i] * (one - f) + g_lut[i + 1] * f
            if e <= 0:                          # = round_shift(g << G_ACC_SHIFT, L_ACC_F - l_frac)
                out[t, b] = round_shift(g, G_F + G_SHIFT - l_frac)
            else:
                out[t, b] = round_shift((g << G_ACC_SHIFT) + e * LN2_Q, L_ACC_F - l_frac)
    return m


@njit(cache=True)
def features_from_l(L, d1, d2, dstart, drow, l_frac, out):
    """F[t] = [L << (18 - l_frac), round_shift(D1 . L, 6 + l_frac), round_shift(D2 . L, 6 + l_frac)]
    Q.18 int32 (L in Q.l_frac, D1 and D2 Q.24)."""
    T, B = L.shape
    shift = DELTA_F + l_frac - FEAT_F
    w = d1.shape[1]
    for t in range(T):
        st = dstart[t]
        r = drow[t]
        for b in range(B):
            a1 = np.int64(0)
            a2 = np.int64(0)
            for j in range(w):
                a1 += d1[r, j] * L[st + j, b]
                a2 += d2[r, j] * L[st + j, b]
            out[t, b] = L[t, b] << (FEAT_F - l_frac)
            out[t, B + b] = round_shift(a1, shift)
            out[t, 2 * B + b] = round_shift(a2, shift)


@njit(cache=True)
def normalise_q(feats, norm_m, norm_s, lo, hi, out):
    """x[t, j] = sat(round_shift(F[t, j] * NORM_M[j], NORM_S[j]), lo, hi)."""
    for t in range(feats.shape[0]):
        for j in range(feats.shape[1]):
            v = round_shift(feats[t, j] * norm_m[j], norm_s[j])
            out[t, j] = lo if v < lo else (hi if v > hi else v)


# ----------------------------------------------------------------------------- the log gain
def check_log_gain(gain) -> float:
    """The model's log gain g as a float, or an EdgetpError if the integer frontend cannot take it."""
    try:
        g = float(gain)
    except (TypeError, ValueError):
        raise EdgetpError(f"the integer frontend's log gain must be a number, got {gain!r}") from None
    if not (math.isfinite(g) and 1.0 <= g <= LOG_GAIN_MAX):
        raise EdgetpError(f"the integer frontend takes a log gain 1 <= g <= {LOG_GAIN_MAX}, got {gain}")
    return g


def log_offset(gain) -> int:
    """C = round(log2(g) * 2^LOG_F): the log gain as an offset of the log-mel (Q.LOG_F).
    Its rounding (<= 2^-9 in log2) scales g by at most 2^(1/512) (0.14 %)."""
    return int(math.floor(math.log2(check_log_gain(gain)) * (1 << LOG_F) + 0.5))


def l_frac(gain) -> int:
    """L's Q-format for log gain g: the finest (<= L_F_MAX) in which L = ln(1 + g) (the
    largest, at e = C), computed with the integer step itself, fits an int16 with 8 LSB to spare."""
    return _l_frac(check_log_gain(gain))


@lru_cache(maxsize=None)
def _l_frac(gain: float) -> int:
    c = log_offset(gain)
    one = np.zeros((1, 1), np.int64)
    for f in range(L_F_MAX, -1, -1):
        out = np.zeros((1, 1), np.int64)
        logmel_to_l(one, G_LUT, c, f, out)
        if out[0, 0] <= 32767 - 8:
            return f
    raise EdgetpError(f"no int16 Q-format holds ln(1 + {gain:g})")


# ----------------------------------------------------------------------------- API
@dataclass(frozen=True)
class InputNorm:
    """The model's input stage in integers: its log gain g (L = ln(1 + g S / max S), the twin of
    ``edgetp.kws.data.recompress``), then x = sat(round_shift(F * m[j], s[j])), the twin of
    ``quantize_inputs(F_float / norm_scale, fx, xbits)``."""

    m: np.ndarray        # (120,) int64, in [2^14, 2^15)
    s: np.ndarray        # (120,) int64, >= 1
    fx: int
    xbits: int
    log_gain: float = 1.0

    @property
    def log_offset(self) -> int:
        """C = round(log2(g) * 2^LOG_F), the offset added to l - max l."""
        return log_offset(self.log_gain)

    @property
    def l_frac(self) -> int:
        """L's Q-format (15 for g = 1)."""
        return l_frac(self.log_gain)

    @classmethod
    def from_scale(cls, scale, fx: int, xbits: int = 16, log_gain: float = 1.0) -> "InputNorm":
        scale = np.ones(N_FEATURES) if scale is None else np.asarray(scale, dtype=np.float64)
        if scale.shape != (N_FEATURES,) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise EdgetpError(f"the input normalisation must be {N_FEATURES} positive divisors")
        ms, ss = [], []
        for d in scale:
            ratio = 2.0 ** (fx - FEAT_F) / float(d)          # x_q = F_q * ratio
            s = NORM_M_BITS - 1 - math.floor(math.log2(ratio))
            m = int(round(ratio * 2.0 ** s))
            if m >= 1 << NORM_M_BITS:
                m, s = m >> 1, s - 1
            if not 1 <= s <= 62:
                raise EdgetpError(f"input divisor {d:g} with fx {fx} is out of the integer frontend's range")
            ms.append(m)
            ss.append(s)
        return cls(np.array(ms, np.int64), np.array(ss, np.int64), int(fx), int(xbits), check_log_gain(log_gain))

    @classmethod
    def for_model(cls, model, qm) -> "InputNorm":
        """The input stage of ``model`` (edgetp.model.Model) quantized as ``qm`` (QModel)."""
        if (model.frontend or {}).get("per_utterance"):
            raise EdgetpError("the model normalises each utterance by its own std; the integer frontend "
                              "implements fixed per-feature divisors (norm_scale) only")
        if (model.frontend or {}).get("running_max_decay") is not None:
            raise EdgetpError("the model normalises by a causal running maximum (frontend running_max_decay); the "
                              "integer frontend implements the utterance's maximum only")
        return cls.from_scale(model.norm_scale, qm.fx, qm.xbits, (model.frontend or {}).get("log_gain", 1.0))

    @property
    def limits(self) -> tuple[int, int]:
        hi = (1 << (self.xbits - 1)) - 1
        return -hi - 1, hi


def pcm16(wave, sr: int = F.SR) -> np.ndarray:
    """int16 samples of exactly 16000, centred like the float pipeline (zeros before:
    (16000 - n) // 2; longer inputs centre-cropped). int16 input is used as is; other
    input is resampled to 16 kHz (float) and rounded to int16 (clipped)."""
    x = np.asarray(wave)
    if x.ndim != 1:
        raise EdgetpError(f"expected a mono 1-D wave, got shape {x.shape}")
    if x.dtype != np.int16 or sr != F.SR:
        if np.issubdtype(x.dtype, np.integer):
            x = x.astype(np.float64) / float(2 ** (8 * x.dtype.itemsize - 1))
        x = np.asarray(x, np.float64)
        if sr != F.SR:
            from edgetp.audio.wav import resample
            x = resample(x, sr, F.SR).astype(np.float64)
        x = pcm16_samples(x)
    n = x.size
    if n >= N_SAMPLES:
        st = (n - N_SAMPLES) // 2
        return np.ascontiguousarray(x[st:st + N_SAMPLES])
    before = (N_SAMPLES - n) // 2
    return np.pad(x, (before, N_SAMPLES - n - before)).astype(np.int16)


def load_pcm16(path) -> np.ndarray:
    """A WAV file as int16 samples at 16 kHz, checked by ``edgetp.audio.wav.probe``: 16-bit PCM
    at 16 kHz is read as stored; anything else is loaded as float at 16 kHz (resampled) and
    rounded to int16 (clipped), as a 16-bit microphone would have delivered it."""
    from edgetp.audio import wav

    info = wav.probe(path)
    if info.sr == F.SR and info.bits == 16 and not info.is_float:
        import soundfile as sf

        try:
            y, _sr = sf.read(str(path), dtype="int16", always_2d=False)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise wav.WavError(path, "unreadable", f"unreadable WAV ({exc})") from None
        return np.ascontiguousarray(y, dtype=np.int16)
    return pcm16_samples(wav.load_16k(path, info=info))


def pcm16_samples(x) -> np.ndarray:
    """Float samples in [-1, 1] -> int16 (round half up of x * 32768, clipped)."""
    return np.clip(np.floor(np.asarray(x, np.float64) * 32768.0 + 0.5), -32768, 32767).astype(np.int16)


@dataclass
class Intermediates:
    """Every intermediate of one utterance (what verify-c --frontend compares)."""

    shift: np.ndarray      # (101,) frame exponents
    power: np.ndarray      # (101, N_BINS) int64
    mel: np.ndarray        # (101, 40) int64
    logmel: np.ndarray     # (101, 40) Q.8 (int16 range)
    lmax: int
    L: np.ndarray          # (101, 40) Q.l_frac(log gain) (Q.15 for gain 1)
    feats: np.ndarray      # (101, 120) Q.18 int32
    x: np.ndarray | None   # (101, 120) model input (int16/int8), when a norm is given


def frames_q(pcm: np.ndarray):
    """(shift, power, mel, logmel) of the 101 frames of 16000 int16 samples."""
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.shape != (N_SAMPLES,):
        raise EdgetpError(f"the integer frontend takes {N_SAMPLES} int16 samples (use pcm16), got "
                          f"{pcm.dtype} {pcm.shape}")
    shifts = np.zeros(N_FRAMES, np.int64)
    power = np.zeros((N_FRAMES, N_BINS), np.int64)
    mel = np.zeros((N_FRAMES, N_MELS), np.int64)
    logmel = np.zeros((N_FRAMES, N_MELS), np.int64)
    _frames(pcm.astype(np.int64), WINDOW_Q, FFT_PERM, FACTORS, TW_COS, TW_SIN, RT_COS, RT_SIN, MEL_Q, MEL_START,
            MEL_LEN, LOG2_LUT, shifts, power, mel, logmel)
    return shifts, power, mel, logmel


def utterance_q(pcm: np.ndarray, norm: InputNorm | None = None, log_gain: float | None = None) -> Intermediates:
    """Every intermediate of one utterance (16000 int16 samples). The log gain is ``norm``'s
    (the model's); without ``norm``, ``log_gain`` (default 1, the paper's features)."""
    if norm is not None and log_gain is not None and check_log_gain(log_gain) != norm.log_gain:
        raise EdgetpError(f"log gain {log_gain:g} differs from the input stage's {norm.log_gain:g}")
    gain = norm.log_gain if norm is not None else (1.0 if log_gain is None else log_gain)
    lf = l_frac(gain)
    shifts, power, mel, logmel = frames_q(pcm)
    L = np.zeros((N_FRAMES, N_MELS), np.int64)
    lmax = logmel_to_l(logmel, G_LUT, log_offset(gain), lf, L)
    feats = np.zeros((N_FRAMES, N_FEATURES), np.int64)
    features_from_l(L, DELTA1_Q, DELTA2_Q, DELTA_START, DELTA_ROW, lf, feats)
    x = None
    if norm is not None:
        x = np.zeros((N_FRAMES, N_FEATURES), np.int64)
        lo, hi = norm.limits
        normalise_q(feats, norm.m, norm.s, lo, hi, x)
        x = x.astype(np.int8 if norm.xbits == 8 else np.int16)
    return Intermediates(shifts, power, mel, logmel.astype(np.int16), int(lmax), L.astype(np.int16),
                         feats.astype(np.int32), x)


def features_q(wave, sr: int = F.SR, log_gain: float = 1.0) -> np.ndarray:
    """The integer features dequantised to the float pipeline's scale: (101, 120) float32
    comparable with ``edgetp.audio.frontend.features`` (log gain 1) or
    ``edgetp.kws.data.recompress(features, log_gain)``."""
    it = utterance_q(pcm16(wave, sr), log_gain=log_gain)
    return (it.feats.astype(np.float64) / (1 << FEAT_F)).astype(np.float32)


def model_input_q(wave, norm: InputNorm, sr: int = F.SR) -> np.ndarray:
    """What the device feeds its network: (101, 120) int16 (or int8) in Q.fx."""
    return utterance_q(pcm16(wave, sr), norm).x


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - got)^2); inf when equal, nan if ref is all zero or a value is not finite."""
    ref = np.asarray(ref, np.float64)
    got = np.asarray(got, np.float64)
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(got))):
        return float("nan")
    sig = float(np.sum(ref ** 2))
    err = float(np.sum((ref - got) ** 2))
    if sig == 0:
        return float("nan")
    return float("inf") if err == 0 else 10.0 * math.log10(sig / err)


BLOCKS = {"mel": slice(0, N_MELS), "delta": slice(N_MELS, 2 * N_MELS), "delta2": slice(2 * N_MELS, 3 * N_MELS)}


def block_snr(ref: np.ndarray, got: np.ndarray) -> dict:
    """SNR in dB of each block (log-mel, Δ, ΔΔ) of (…, 120) features."""
    return {k: snr_db(ref[..., s], got[..., s]) for k, s in BLOCKS.items()}
