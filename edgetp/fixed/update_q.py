"""Integer weight updates with stochastic rounding: plain SGD and RMS normalisation.

A gradient arrives as its factors g = sum_t D[t] X[t]^T (``network_q.gradients_q``); the rule
rounds them (:func:`quant_exps`, :func:`grad_q`: q, |q| < 2^22, format G - ed - ex) and every kind
ends in :func:`apply_update_q`: ``w <- sat(w - floor((q * M_ij + r) / 2^32))``, M_ij the move per
unit of q in Q.32 weight LSB and r one xorshift32 draw per element with q != 0 (row-major,
tensors in ``QModel.trainable_names`` order). Proofs of the bounds: docs/fixed-point.md, section 5.

- ``sgd``: Delta W = lr * g (the float rule).
- ``colnorm`` (default): Delta W_ij = lr * g_ij / sqrt(cc_j), each column (input) normalised
  by the EMA of its gradient mean square: the measured stand-in for Adam at batch 1
  (docs/fixed-point.md, section 6.3). Each tensor keeps an EMA of the mean square of every row
  (rr_i) and column (cc_j) of its gradient (decay 2^-beta_shift, started from the first nonzero
  gradient); both rules read them through one code path (:func:`rms_scales`), the other side's
  statistic replaced by the tensor's mean T2.
- ``rownorm``: Delta W_ij = lr * g_ij / sqrt(rr_i), each row (neuron) normalised instead.

The ``factored`` rule (code 0, lr * g_ij / sqrt(rr_i cc_j / T2)) is gone: its hidden layers drift at batch 1
(contract.REMOVED_KINDS says so to whoever still names it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from edgetp.errors import EdgetpError
from edgetp.fixed import contract as C
from edgetp.fixed.primitives import bitlen, isqrt, norm15, prng_seed, round_shift, sat, shl_sat, xorshift32
from edgetp.tp.config import DEFAULT_BETA_SHIFT

KINDS = C.OPT_KINDS  # their codes ETP_OPT_* are C.OPT_CODES
NORM_MODE = C.RMS_MODES  # rms_scales' ``mode``
STAT_F = C.STAT_F  # row/column mean squares: int64 Q.48 (their square roots Q.24)
STAT_MAX = np.int64(C.STAT_MAX)  # ... saturating here (RMS 128)
P_LIMIT = np.int64(C.P_LIMIT)  # bounds of the move limit (Q.16 and Q.32 weight LSB)
DQ_BITS = C.DQ_BITS  # gradient row factors are rounded to this many bits (quant_exps)
XQ_BITS = C.XQ_BITS  # ... column factors to this many, less the bits of the term count
Q_LIMIT = np.int64(C.Q_LIMIT)  # |q| < Q_LIMIT (proof: docs/fixed-point.md, 5)
M_MAX = np.int64(C.M_MAX)  # a Q.32 move multiplier (q32) saturates here: |q| M_MAX < 2^62


def lr_code(lr: float) -> tuple[int, int]:
    """(m, e) with lr ~= m * 2^-e, m in [128, 255] (8 significant bits); lr = 0 gives (0, 0)."""
    if not lr >= 0 or not math.isfinite(lr):
        raise EdgetpError(f"learning rate must be a finite number >= 0, got {lr}")
    if lr == 0:
        return 0, 0
    e = 7 - math.floor(math.log2(lr))
    m = int(math.floor(lr * 2.0**e + 0.5))
    if m > 255:
        m, e = (m + 1) // 2, e - 1
    return m, e


def check_kind(kind: str) -> str:
    """``kind`` if it is an optimizer of the integer rule, else an EdgetpError (saying why a removed one is)."""
    if kind in C.REMOVED_KINDS:
        raise EdgetpError(f"optimizer {kind!r}: {C.REMOVED_KINDS[kind]}")
    if kind not in KINDS:
        raise EdgetpError(f"integer optimizer must be one of {KINDS}, got {kind!r}")
    return kind


@dataclass
class QOpt:
    """Optimizer state: kind, learning-rate code, EMA decay shift, PRNG state and the
    normalised rules' statistics (``stats[name] = (rr, cc)``: row and column mean-square EMAs, int64 Q.48)."""

    kind: str = "colnorm"
    lr_m: int = 0
    lr_e: int = 0
    beta_shift: int = DEFAULT_BETA_SHIFT
    rng: np.ndarray = field(default_factory=lambda: np.array([prng_seed(0)], dtype=np.uint32))
    stats: dict = field(default_factory=dict)
    step: int = 0
    clip: int = -1  # normalised rules: |move| <= 2^clip * lr per element; -1: no limit

    def __post_init__(self):
        check_kind(self.kind)

    @classmethod
    def make(cls, kind: str, lr: float, seed: int = 0, beta_shift: int = DEFAULT_BETA_SHIFT, clip: int = -1) -> "QOpt":
        check_kind(kind)
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
def quant_exps(D, X):
    """(ed, ex): the shifts that bring a gradient's row factors ``D`` (T, H) to DQ_BITS and its
    column factors ``X`` (T, N) to XQ_BITS less the bits the sum of T terms needs:
    ed = max(0, bitlen(max|D|) - DQ_BITS), ex = max(0, bitlen(max|X|) + bitlen(T) - 1 - XQ_BITS).
    Then |round_shift(D, ed)| <= 2^DQ_BITS, |round_shift(X, ex)| <= 2^(XQ_BITS + 1 - bitlen(T)) and
    every element of ``grad_q`` is below Q_LIMIT = 2^(DQ_BITS + XQ_BITS + 1) (docs/fixed-point.md 5)."""
    dmax = np.int64(0)
    for t in range(D.shape[0]):
        for i in range(D.shape[1]):
            a = D[t, i]
            dmax = max(dmax, a if a >= 0 else -a)
    xmax = np.int64(0)
    for t in range(X.shape[0]):
        for j in range(X.shape[1]):
            a = np.int64(X[t, j])
            xmax = max(xmax, a if a >= 0 else -a)
    ed = max(np.int64(0), bitlen(dmax) - DQ_BITS)
    ex = max(np.int64(0), bitlen(xmax) + bitlen(np.int64(D.shape[0])) - 1 - XQ_BITS)
    return ed, ex


@njit(cache=True)
def grad_q(D, X, ed, ex):
    """q[i,j] = sum_t round_shift(D[t,i], ed) round_shift(X[t,j], ex): the gradient sum_t D_t X_t^T
    at 2^-(ed + ex) of its scale, in int64 (|q| < Q_LIMIT: no saturation needed)."""
    T, H = D.shape
    N = X.shape[1]
    q = np.zeros((H, N), dtype=np.int64)
    xq = np.empty(N, dtype=np.int64)
    for t in range(T):
        for j in range(N):
            xq[j] = round_shift(np.int64(X[t, j]), ex)
        for i in range(H):
            dq = round_shift(D[t, i], ed)
            if dq != 0:
                for j in range(N):
                    q[i, j] += dq * xq[j]
    return q


@njit(cache=True)
def q32(m, s):
    """The multiplier m 2^-s (m >= 0) in Q.32: floor(m 2^(32 - s)), saturated to [0, M_MAX]."""
    if s <= 32:
        return shl_sat(m, 32 - s, M_MAX)
    if s - 32 > 62:
        return np.int64(0)
    return m >> (s - 32)


@njit(cache=True)
def apply_update_q(w, q, row_m, row_s, col_m, col_s, rng, wmin, wmax, lim):
    """For every element with q[i,j] != 0, in row-major order: r = the next xorshift32 draw,
    p = q[i,j] * q32(row_m[i] col_m[j], row_s[i] + col_s[j]) (a move in Q.32 weight LSB,
    |p| < 2^62), clamped to +-lim when lim >= 0, and w[i,j] = sat(w - floor((p + r) / 2^32)):
    stochastic rounding with the whole 32-bit draw (unbiased: E = p 2^-32). Elements with
    q = 0 neither move nor draw."""
    x = np.int64(rng[0])
    for i in range(q.shape[0]):
        for j in range(q.shape[1]):
            if q[i, j] == 0:
                continue
            x = xorshift32(x)
            p = q[i, j] * q32(row_m[i] * col_m[j], row_s[i] + col_s[j])
            if lim >= 0:
                p = sat(p, -lim, lim)
            w[i, j] = sat(np.int64(w[i, j]) - ((p + x) >> 32), wmin, wmax)
    rng[0] = x


@njit(cache=True)
def mean_stat(sq, n, sh):
    """The mean square sq / n (sq a sum of n squares of q, 0 <= sq < 2^62) in Q.STAT_F, i.e. times
    2^sh: the sum is first shifted left by a = max(0, min(sh, 62 - bitlen(sq))) bits (exactly),
    divided (floor) by n, then shifted by the rest sh - a (saturating at STAT_MAX, or floor)."""
    a = max(np.int64(0), min(np.int64(sh), 62 - bitlen(sq)))
    ms = (sq << a) // n
    rest = sh - a
    return shl_sat(ms, rest, STAT_MAX) if rest >= 0 else ms >> min(-rest, 63)  # 0 <= ms < 2^62


@njit(cache=True)
def ema_decay(c, k):
    """ema_decay: c + round_shift(-c, k), an EMA's step towards 0 (its mean square 0: a column the step's gradient
    missed, most of a readout's), for a statistic 0 <= c <= 2^62 and 1 <= k <= 31: c - floor((c + 2^(k-1) - 1) / 2^k)
    (round_shift(-c, k) = -floor((c + 2^(k-1) - 1) / 2^k)), a nonnegative sum shifted by fewer than 32 bits."""
    return c - ((c + (np.int64(1) << (k - 1)) - 1) >> k)


@njit(cache=True)
def sq_sums(q):
    """(row sums, column sums) of q[i,j]^2 (int64; |q| < 2^22 keeps a sum over 2^16 terms < 2^60)."""
    H, N = q.shape
    rows = np.zeros(H, dtype=np.int64)
    cols = np.zeros(N, dtype=np.int64)
    for i in range(H):
        for j in range(N):
            a = q[i, j] * q[i, j]
            rows[i] += a
            cols[j] += a
    return rows, cols


@njit(cache=True)
def rms_scales(rowsq, colsq, sh, rr, cc, beta_shift, lr_m, mode):
    """The normalised rules' statistics and scales from the row/column sums of q^2 (``sq_sums``;
    ``sh`` = 2e + STAT_F - 2G brings a mean square of q, format G - e, to Q.STAT_F).

    Updates the EMAs rr_i += round_shift(ms_i - rr_i, beta_shift), ms_i = mean_stat(rowsq_i, N, sh)
    (cc_j the same over columns; the first step whose gradient is not all zero sets them), and returns
    (row_m, row_s, col_m, col_s) with lr_m sqrt(T2) / (sqrt(r_i) sqrt(c_j)) ~= row_m[i] col_m[j]
    2^-(row_s[i] + col_s[j]), T2 = sum_i floor(rr_i / H); ``mode`` (NORM_MODE) 2 colnorm: r_i = T2
    (lr_m / sqrt(cc_j)); 1 rownorm: c_j = T2 (lr_m / sqrt(rr_i)). Square roots by isqrt
    (every factor in Q.24); rows or columns whose root is 0 get multiplier 0."""
    H, N = rowsq.shape[0], colsq.shape[0]
    row_m = np.zeros(H, dtype=np.int64)
    row_s = np.zeros(H, dtype=np.int64)
    col_m = np.zeros(N, dtype=np.int64)
    col_s = np.zeros(N, dtype=np.int64)
    first = True
    zero = True
    for i in range(H):
        if rr[i] != 0:
            first = False
        if rowsq[i] != 0:
            zero = False
    if first and zero:
        return row_m, row_s, col_m, col_s
    for i in range(H):
        ms = mean_stat(rowsq[i], N, sh)
        rr[i] = ms if first else rr[i] + round_shift(ms - rr[i], beta_shift)
    decay = not first and 1 <= beta_shift <= 31  # ema_decay's range
    for j in range(N):
        if colsq[j] == 0 and decay:
            cc[j] = ema_decay(cc[j], beta_shift)  # = cc_j + round_shift(mean_stat(0) - cc_j, beta_shift)
        else:
            ms = mean_stat(colsq[j], H, sh)
            cc[j] = ms if first else cc[j] + round_shift(ms - cc[j], beta_shift)
    t2 = np.int64(0)
    for i in range(H):
        t2 += rr[i] // H
    ts = isqrt(t2)
    if ts == 0:
        return row_m, row_s, col_m, col_s
    tm, te = norm15(ts)
    for i in range(H):
        r = ts if mode == 2 else isqrt(rr[i])
        if r > 0:
            rm, re = norm15(r)
            am, ae = norm15(((tm << 16) // rm) * lr_m)  # lr_m * sqrt(T2) / sqrt(rr_i)
            row_m[i], row_s[i] = am, 16 - ae - te + re
    for j in range(N):
        c = ts if mode == 1 else isqrt(cc[j])
        if c > 0:
            cm, ce = norm15(c)
            col_m[j], col_s[j] = (np.int64(1) << 30) // cm, ce + 30  # 1 / sqrt(cc_j)
    return row_m, row_s, col_m, col_s


def move_bound(opt: QOpt, fw: int) -> int:
    """The normalised rules' move limit 2^clip * lr (weight units) in Q.16 LSB of a Q.fw weight,
    lr_m * 2^(fw + 16 + clip - lr_e) (floor); -1 (no limit) when clip < 0."""
    if opt.clip < 0:
        return -1
    e = fw + 16 + opt.clip - opt.lr_e
    return int(shl_sat(opt.lr_m, e, P_LIMIT)) if e >= 0 else opt.lr_m >> (-e)


def as_terms(g):
    """A tensor's gradient as (D, X) int64 factors, g = sum_t D[t] X[t]^T: a (D, X) pair as given,
    or a dense (H, N) array as its N columns (D = g^T, X = the identity)."""
    if isinstance(g, tuple):
        D, X = g
        return np.ascontiguousarray(D, dtype=np.int64), np.ascontiguousarray(X, dtype=np.int64)
    g = np.asarray(g, dtype=np.int64)
    return np.ascontiguousarray(g.T), np.eye(g.shape[1], dtype=np.int64)


def update_q(qm, opt: QOpt, grads: dict, formats: dict) -> None:
    """One optimizer step over every tensor with a gradient (in ``trainable_names`` order).

    A gradient is given by its factors (``as_terms``); it enters the rule as q = grad_q(D, X, ed, ex)
    in format G - e, e = ed + ex (G = ``formats[name]``). Delta W_int = lr 2^FW (q 2^-(G-e)) / scale."""
    wmax = (1 << (qm.wbits - 1)) - 1
    for name in qm.trainable_names:
        g = grads.get(name)
        if g is None:
            continue
        w = qm.weights[name]
        H, N = w.shape
        D, X = as_terms(g)
        ed, ex = quant_exps(D, X)
        q = grad_q(D, X, ed, ex)
        e, G, fw = int(ed + ex), formats[name], qm.fw[name]
        if opt.kind == "sgd":  # Delta W_int = lr_m q 2^-(G - e + lr_e - FW)
            apply_update_q(
                w,
                q,
                np.full(H, opt.lr_m, np.int64),
                np.full(H, G - e + opt.lr_e - fw, np.int64),
                np.ones(N, np.int64),
                np.zeros(N, np.int64),
                opt.rng,
                -wmax - 1,
                wmax,
                -1,
            )
            continue
        if name not in opt.stats:
            opt.stats[name] = (np.zeros(H, np.int64), np.zeros(N, np.int64))
        rr, cc = opt.stats[name]
        rowsq, colsq = sq_sums(q)
        row_m, row_s, col_m, col_s = rms_scales(
            rowsq, colsq, 2 * e + STAT_F - 2 * G, rr, cc, opt.beta_shift, opt.lr_m, NORM_MODE[opt.kind]
        )
        # Delta W_int = lr 2^FW (q 2^-(G-e)) (sqrt(T2) 2^-24) / ((sqrt(rr_i) 2^-24) (sqrt(cc_j) 2^-24))
        row_s = row_s + opt.lr_e - fw - e + G - STAT_F // 2
        bound = move_bound(opt, fw)
        apply_update_q(
            w,
            q,
            row_m,
            row_s,
            col_m,
            col_s,
            opt.rng,
            -wmax - 1,
            wmax,
            int(shl_sat(bound, 16, P_LIMIT)) if bound >= 0 else -1,
        )
    opt.step += 1
