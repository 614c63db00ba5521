"""The integer frontend's constants and tables (edgetp/audio/frontend_q.py is the pipeline).

Every Q-format, shift and table the kernels (``frontend_q_kernels``) and the C twin read is
declared here once; ``firmware_gen.frontend`` generates them into ``etp_frontend_cfg.h/.c``.
docs/fixed-point.md §9 explains each.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np

from edgetp.audio import frontend as F

N_SAMPLES, HOP, N_FFT, N_MELS, N_FRAMES = F.N_SAMPLES, F.HOP, F.N_FFT, F.N_MELS, F.N_FRAMES
N_FEATURES = F.N_FEATURES
HALF = N_FFT // 2  # 240: the complex FFT's length, and the centring pad
WIN_F = 15  # window Q.15
FRAME_BITS = 20  # a frame is shifted so that max |y| < 2^FRAME_BITS
FFT_FACTORS = (4, 4, 3, 5)  # 240 = 4 * 4 * 3 * 5, outermost split first
TW_F = 30  # the real-FFT split twiddles Q2.30
FFT_TW_F = 31  # FFT twiddles Q.31 (1.0 saturates to 2^31 - 1), the high word of a product its half
P_SHIFT = 20  # power -> mel: P >> 20 (< 2^40) times weights < 2^15
MEL_F = 15  # mel weights: Q.15 of the largest weight (a common factor cancels in S / max S)
LOG_F = 8  # log2 of the mel energy: int16 Q.8
LOG_LUT_BITS = 8  # log2(1 + i/256), i = 0..256, Q.16
LOG_LUT_F = 16
LOG_ZERO = -32768  # l of an all-zero mel band
G_F = 15  # G_LUT Q.15
L_F_MAX = 15  # L = log1p(g S / max S) int16 Q.l_frac(g) <= 15 (15 for g = 1)
G_STEP_BITS = 5  # G_LUT: ln(1 + 2^-d) at d = i / 32
G_RANGE = 17  # d >= 17 (2^-17 < 1 LSB of Q.15 after ln 2): ln(1 + 2^-d) = 0
G_SHIFT = 8 - G_STEP_BITS  # LOG_F - G_STEP_BITS: Q.8 log-mel units per G_LUT step (2^3)
L_ACC_F = 34  # L before its one rounding: Q.34 (G_LUT's interpolation Q.18 << 16)
G_ACC_SHIFT = L_ACC_F - G_F - G_SHIFT  # 16: the interpolated G_LUT value -> Q.L_ACC_F
LOG_GAIN_MAX = 1 << 16  # the log gains the frontend takes: 1 <= g <= 2^16
DELTA_F = 24  # Δ / ΔΔ coefficients Q.24
FEAT_F = 18  # features int32 Q.18 (L, Δ, ΔΔ)
NORM_M_BITS = 15  # NORM_M[j] in [2^14, 2^15)
DECAY_MAX = 255  # the running maximum's decay D (Q.LOG_F per frame): 1 <= D <= DECAY_MAX


def _decimal_round(x: Decimal) -> int:
    return int(x.to_integral_value(ROUND_HALF_UP))


def _window_q() -> np.ndarray:
    w = np.round(F.WINDOW * (1 << WIN_F))
    return np.clip(w, 0, (1 << WIN_F) - 1).astype(np.int64)


def _twiddles(n: int, count: int, f: int = TW_F) -> tuple[np.ndarray, np.ndarray]:
    """W_n^t = cos(2 pi t / n) - i sin(2 pi t / n), t < count, Q.f (cos, -sin), within int32."""
    t = np.arange(count)
    lim = (-(1 << 31), (1 << 31) - 1)
    c = np.clip(np.round(np.cos(2 * np.pi * t / n) * (1 << f)), *lim).astype(np.int64)
    s = np.clip(np.round(-np.sin(2 * np.pi * t / n) * (1 << f)), *lim).astype(np.int64)
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
    return (
        np.array(vals, np.int64),
        np.array(starts, np.int64),
        np.array(lens, np.int64),
        int(max(s + n for s, n in zip(starts, lens))),
    )


def _log2_lut() -> np.ndarray:
    with localcontext() as ctx:
        ctx.prec = 40
        ln2 = Decimal(2).ln()
        return np.array(
            [_decimal_round((1 + Decimal(i) / 256).ln() / ln2 * (1 << LOG_LUT_F)) for i in range(257)], dtype=np.int64
        )


def _g_lut() -> np.ndarray:
    """round(ln(1 + 2^(-i/32)) * 2^15), i = 0 .. 32 * G_RANGE."""
    with localcontext() as ctx:
        ctx.prec = 40
        ln2 = Decimal(2).ln()
        n = G_RANGE << G_STEP_BITS
        return np.array(
            [
                _decimal_round((1 + (-(Decimal(i) / (1 << G_STEP_BITS)) * ln2).exp()).ln() * (1 << G_F))
                for i in range(n + 1)
            ],
            dtype=np.int64,
        )


def _ln2_q() -> int:
    """round(ln 2 * 2^(L_ACC_F - LOG_F)): e (Q.LOG_F) * LN2_Q is e ln 2 in Q.L_ACC_F."""
    with localcontext() as ctx:
        ctx.prec = 40
        return _decimal_round(Decimal(2).ln() * (1 << (L_ACC_F - LOG_F)))


def delta_start(t: int, n: int = N_FRAMES) -> int:
    """First frame of the 9 that Δ/ΔΔ of frame t of n read (mode "interp" fits the edges)."""
    w = F.DELTA_WIDTH
    return min(max(t - w // 2, 0), n - w)


def delta_row(t: int, n: int = N_FRAMES) -> int:
    """Which of the 9 coefficient rows frame t of n uses: t (< 4), 4 (interior), t - (n - 9) (the last 4)."""
    h = F.DELTA_WIDTH // 2
    return t if t < h else (h + t - (n - 1 - h) if t > n - 1 - h else h)


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
            q = np.round(col[st : st + w] * (1 << DELTA_F)).astype(np.int64)
            r = delta_row(t)
            if rows[r].any() and not np.array_equal(rows[r], q):
                raise AssertionError(f"Δ row {r} differs between frames")
            rows[r] = q
        out.append(rows)
    return out[0], out[1]


WINDOW_Q = _window_q()
TW_COS, TW_SIN = _twiddles(HALF, HALF, FFT_TW_F)
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
# the tables frame_q and all_frames_q read, in their parameters' order (window .. log_lut)
FRAME_TABLES = (WINDOW_Q, FFT_PERM, FACTORS, TW_COS, TW_SIN, RT_COS, RT_SIN, MEL_Q, MEL_START, MEL_LEN, LOG2_LUT)

# what frontend_q re-exports (its public names before the split)
__all__ = [
    "N_SAMPLES",
    "HOP",
    "N_FFT",
    "N_MELS",
    "N_FRAMES",
    "N_FEATURES",
    "HALF",
    "WIN_F",
    "FRAME_BITS",
    "FFT_FACTORS",
    "TW_F",
    "FFT_TW_F",
    "P_SHIFT",
    "MEL_F",
    "LOG_F",
    "LOG_LUT_BITS",
    "LOG_LUT_F",
    "LOG_ZERO",
    "G_F",
    "L_F_MAX",
    "G_STEP_BITS",
    "G_RANGE",
    "G_SHIFT",
    "L_ACC_F",
    "G_ACC_SHIFT",
    "LOG_GAIN_MAX",
    "DELTA_F",
    "FEAT_F",
    "NORM_M_BITS",
    "DECAY_MAX",
    "WINDOW_Q",
    "TW_COS",
    "TW_SIN",
    "RT_COS_ALL",
    "RT_SIN_ALL",
    "FFT_PERM",
    "MEL_Q",
    "MEL_START",
    "MEL_LEN",
    "N_BINS",
    "RT_COS",
    "RT_SIN",
    "LOG2_LUT",
    "G_LUT",
    "LN2_Q",
    "DELTA1_Q",
    "DELTA2_Q",
    "DELTA_START",
    "DELTA_ROW",
    "FACTORS",
    "delta_start",
    "delta_row",
]
