"""Integer weight updates with stochastic rounding: plain SGD and RMS normalisation.

Both end in :func:`apply_update_q`: ``w <- sat(w - sround(g * m_i * n_j, s_i + s_j))`` with one
xorshift32 draw per element (row-major, tensors in ``QModel.trainable_names`` order).

- ``sgd``: Delta W = lr * g (the float rule).
- ``colnorm`` (default): Delta W_ij = lr * g_ij / sqrt(cc_j), each column (input) normalised
  by the EMA of its gradient mean square: the measured stand-in for Adam at batch 1
  (docs/fixed-point.md, section 6.3). It is the ``factored`` rule below with every row
  statistic rr_i replaced by the tensor's mean T2, so all three share one code path.
- ``rownorm``: Delta W_ij = lr * g_ij / sqrt(rr_i), each row (neuron) normalised instead.
- ``factored``: an integer Adafactor without momentum. Each tensor keeps an EMA of the mean
  square of every row (rr_i) and column (cc_j) of its gradient (decay 2^-beta_shift, started from the
  first nonzero gradient); Delta W_ij = lr * g_ij / sqrt(rr_i cc_j / mean_i rr_i). For a
  rank-1 gradient g = d x^T (batch 1) rr_i cc_j / mean rr equals g_ij^2 at every step, so the
  factored EMA stands in for Adam's per-element one at (H + N) instead of H * N memory.
  Over time it does not: rows and columns with small mean squares get the product of two
  large factors, and at batch 1 the hidden layers drift (the other speakers' accuracy
  collapses; measured in docs/fixed-point.md), which is why ``colnorm`` replaced it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from edgetp.errors import EdgetpError
from edgetp.fixed.primitives import (bitlen, isqrt, norm15, prng_seed, round_shift, sat, shl_sat, sround_shift,
                                     xorshift32)

KINDS = ("factored", "sgd", "rownorm", "colnorm")  # codes ETP_OPT_* are the indices: append only
NORM_MODE = {"factored": 0, "rownorm": 1, "colnorm": 2}   # factored_scales' ``mode``
STAT_F = 48                    # row/column mean squares: int64 Q.48 (their square roots Q.24)
STAT_MAX = np.int64(1) << 62   # ... saturating here (RMS 128)
P_LIMIT = np.int64(1) << 61    # a weight move before its final shift


def lr_code(lr: float) -> tuple[int, int]:
    """(m, e) with lr ~= m * 2^-e, m in [128, 255] (8 significant bits); lr = 0 gives (0, 0)."""
    if not lr >= 0 or not math.isfinite(lr):
        raise EdgetpError(f"learning rate must be a finite number >= 0, got {lr}")
    if lr == 0:
        return 0, 0
    e = 7 - math.floor(math.log2(lr))
    m = int(math.floor(lr * 2.0 ** e + 0.5))
    if m > 255:
        m, e = (m + 1) // 2, e - 1
    return m, e


@dataclass
class QOpt:
    """Optimizer state: kind, learning-rate code, EMA decay shift, PRNG state and the
    factored statistics (``stats[name] = (rr, cc)``: row and column mean-square EMAs, int64 Q.48)."""

    kind: str = "colnorm"
    lr_m: int = 0
    lr_e: int = 0
    beta_shift: int = 10
    rng: np.ndarray = field(default_factory=lambda: np.array([prng_seed(0)], dtype=np.uint32))
    stats: dict = field(default_factory=dict)
    step: int = 0
    clip: int = -1          # factored: |move| <= 2^clip * lr per element; -1: no limit

    def __post_init__(self):
        if self.kind not in KINDS:
            raise EdgetpError(f"integer optimizer must be one of {KINDS}, got {self.kind!r}")

    @classmethod
    def make(cls, kind: str, lr: float, seed: int = 0, beta_shift: int = 10, clip: int = -1) -> "QOpt":
        if kind not in KINDS:
            raise EdgetpError(f"integer optimizer must be one of {KINDS}, got {kind!r}")
        m, e = lr_code(lr)
        return cls(kind, m, e, beta_shift, np.array([prng_seed(seed)], dtype=np.uint32), clip=clip)

    def set_lr(self, lr: float) -> None:
        self.lr_m, self.lr_e = lr_code(lr)

    def named_arrays(self) -> list[tuple[str, np.ndarray]]:
        out = [("rng", self.rng)]
        for n in sorted(self.stats):
            out += [(f"rr_{n}", self.stats[n][0]), (f"cc_{n}", self.stats[n][1])]
        return out


@njit(cache=True)
def apply_update_q(w, g, row_m, row_s, col_m, col_s, eb, rng, wmin, wmax, bound):
    """w[i,j] = sat(w - d), d = sround_shift(p, s, r) with p = sat((g[i,j] >> eb) row_m[i] col_m[j],
    +-2^61), s = row_s[i] + col_s[j] and r the next xorshift32 draw (one per element, drawn
    whatever s is); s > 62 gives d = 0, s < 0 gives d = sat(p, +-2^20) (moves that large only
    saturate the weight). With ``bound`` >= 0 (a move limit in Q.16 weight LSB), p is first
    clamped to +-lim, lim = shl_sat(bound, s - 16, 2^61) (s >= 16) or bound >> (16 - s), so
    |p 2^-s| <= bound 2^-16. Callers keep |g >> eb| * row_m * col_m < 2^62."""
    x = np.int64(rng[0])
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            x = xorshift32(x)
            p = sat((g[i, j] >> eb) * row_m[i] * col_m[j], -P_LIMIT, P_LIMIT)
            s = row_s[i] + col_s[j]
            if bound >= 0:
                lim = shl_sat(bound, s - 16, P_LIMIT) if s >= 16 else bound >> (16 - s)
                p = sat(p, -lim, lim)
            if s > 62:
                d = np.int64(0)
            elif s >= 0:
                d = sround_shift(p, s, x)
            else:
                d = sat(p, -(1 << 20), 1 << 20)
            w[i, j] = sat(np.int64(w[i, j]) - d, wmin, wmax)
    rng[0] = x


@njit(cache=True)
def _to_stat(ms, sh):
    """A mean square of (g >> eb) into Q.STAT_F: times 2^sh (saturating) or floor-divided by 2^-sh."""
    return shl_sat(ms, sh, STAT_MAX) if sh >= 0 else ms >> (-sh)


@njit(cache=True)
def _ms_ema(g, eb, gf, rr, cc, beta_shift, first):
    """rr_i += round_shift(ms_i - rr_i, beta_shift), ms_i = the mean square of row i of ``g``
    (format Q.gf) in Q.STAT_F: _to_stat(floor(sum_j (g_ij >> eb)^2 / N), 2 eb + STAT_F - 2 gf);
    cc_j the same over columns (sums over H). ``first``: the EMAs are set to the mean squares."""
    H, N = g.shape
    col = np.zeros(N, dtype=np.int64)
    for i in range(H):
        acc = np.int64(0)
        for j in range(N):
            q = g[i, j] >> eb
            acc += q * q
            col[j] += q * q
        ms = _to_stat(acc // N, 2 * eb + STAT_F - 2 * gf)
        rr[i] = ms if first else rr[i] + round_shift(ms - rr[i], beta_shift)
    for j in range(N):
        ms = _to_stat(col[j] // H, 2 * eb + STAT_F - 2 * gf)
        cc[j] = ms if first else cc[j] + round_shift(ms - cc[j], beta_shift)


@njit(cache=True)
def factored_scales(g, gf, rr, cc, beta_shift, lr_m, mode):
    """Update the row/column mean-square EMAs ``rr``/``cc`` (Q.48) of ``g`` (Q.gf) and return
    (eb, row_m, row_s, col_m, col_s) with lr_m * sqrt(T2) / (sqrt(r_i) sqrt(c_j)) ~=
    row_m[i] col_m[j] 2^-(row_s[i] + col_s[j]), T2 = sum_i floor(rr_i / H), r_i = rr_i and
    c_j = cc_j (``mode`` 0, factored), or T2 in place of every c_j (1, rownorm: lr_m / sqrt(rr_i))
    or of every r_i (2, colnorm: lr_m / sqrt(cc_j)); all square roots by isqrt, so every
    factor is in Q.24; ``g >> eb`` keeps the squares in int64.
    The EMAs start from the first step whose gradient is not all zero. Rows or columns with
    EMA 0 get multiplier 0."""
    H, N = g.shape
    gmax = np.int64(0)
    for i in range(H):
        for j in range(N):
            gmax = max(gmax, g[i, j] if g[i, j] >= 0 else -g[i, j])
    eb = max(np.int64(0), bitlen(gmax) - (62 - bitlen(max(H, N))) // 2)
    first = True
    for i in range(H):
        if rr[i] != 0:
            first = False
    if first and gmax == 0:
        return eb, np.zeros(H, np.int64), np.zeros(H, np.int64), np.zeros(N, np.int64), np.zeros(N, np.int64)
    _ms_ema(g, eb, gf, rr, cc, beta_shift, first)
    t2 = np.int64(0)
    for i in range(H):
        t2 += rr[i] // H
    row_m = np.zeros(H, dtype=np.int64)
    row_s = np.zeros(H, dtype=np.int64)
    col_m = np.zeros(N, dtype=np.int64)
    col_s = np.zeros(N, dtype=np.int64)
    ts = isqrt(t2)
    if ts == 0:
        return eb, row_m, row_s, col_m, col_s
    tm, te = norm15(ts)
    for i in range(H):
        r = ts if mode == 2 else isqrt(rr[i])
        if r > 0:
            rm, re = norm15(r)
            am, ae = norm15(((tm << 16) // rm) * lr_m)         # lr_m * sqrt(T2) / sqrt(rr_i)
            row_m[i], row_s[i] = am, 16 - ae - te + re
    for j in range(N):
        c = ts if mode == 1 else isqrt(cc[j])
        if c > 0:
            cm, ce = norm15(c)
            col_m[j], col_s[j] = (np.int64(1) << 30) // cm, ce + 30   # 1 / sqrt(cc_j)
    return eb, row_m, row_s, col_m, col_s


def move_bound(opt: QOpt, fw: int) -> int:
    """The normalised rules' move limit 2^clip * lr (weight units) in Q.16 LSB of a Q.fw weight,
    lr_m * 2^(fw + 16 + clip - lr_e) (floor); -1 (no limit) when clip < 0."""
    if opt.clip < 0:
        return -1
    e = fw + 16 + opt.clip - opt.lr_e
    return int(shl_sat(opt.lr_m, e, P_LIMIT)) if e >= 0 else opt.lr_m >> (-e)


def update_q(qm, opt: QOpt, grads: dict, formats: dict) -> None:
    """One optimizer step over every tensor with a gradient (in ``trainable_names`` order)."""
    wmax = (1 << (qm.wbits - 1)) - 1
    for name in qm.trainable_names:
        g = grads.get(name)
        if g is None:
            continue
        w = qm.weights[name]
        H, N = w.shape
        if opt.kind == "sgd":      # Delta W_int = lr_m (g >> eb) 2^-(G + lr_e - FW - eb)
            eb = max(0, int(bitlen(np.abs(g).max())) - 54)
            apply_update_q(w, g, np.full(H, opt.lr_m, np.int64), np.full(H, formats[name] + opt.lr_e - qm.fw[name] - eb,
                           np.int64), np.ones(N, np.int64), np.zeros(N, np.int64), eb, opt.rng, -wmax - 1, wmax, -1)
            continue
        if name not in opt.stats:
            opt.stats[name] = (np.zeros(H, np.int64), np.zeros(N, np.int64))
        rr, cc = opt.stats[name]
        G = formats[name]
        eb, row_m, row_s, col_m, col_s = factored_scales(g, G, rr, cc, opt.beta_shift, opt.lr_m, NORM_MODE[opt.kind])
        # Delta W_int = lr 2^FW (g 2^-G) (sqrt(T2) 2^-24) / ((sqrt(rr_i) 2^-24) (sqrt(cc_j) 2^-24)),
        # with g >> eb:
        row_s = row_s + opt.lr_e - qm.fw[name] - eb + G - STAT_F // 2
        apply_update_q(w, g, row_m, row_s, col_m, col_s, eb, opt.rng, -wmax - 1, wmax, move_bound(opt, qm.fw[name]))
    opt.step += 1
