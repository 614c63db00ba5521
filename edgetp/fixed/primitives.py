"""Integer arithmetic primitives of the fixed-point TP rule: every operation defined once.

Each function takes and returns integers; under numba they are int64 (``np.int64``) and
intermediates are int64. Every function maps to a few lines of C99 (``etp_<name>``):
the C twin must use the same formula, including the floor-division helper where a
value may be negative. Rounding and saturation are written in each docstring; see
docs/fixed-point.md for the formats they are used with.

Conventions
- ``floor_shift(a, k)`` = floor(a / 2^k) for any sign (Python's and numba's ``>>`` on
  signed integers; in C ``etp_floor_shift`` avoids right-shifting negatives).
- ``round_shift(a, k)`` = round-half-up of a / 2^k = floor((a + 2^(k-1)) / 2^k), the
  single rounding mode of the integer rule; ``k <= 0`` is an exact left shift.
- Saturation clamps to the limits of the storage type; nothing ever wraps.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np
from numba import njit

INT8_MAX, INT16_MAX, INT32_MAX = 127, 32767, 2147483647
INT8_MIN, INT16_MIN, INT32_MIN = -128, -32768, -2147483648
U32_MASK = 0xFFFFFFFF
Q15_ONE = 1 << 15  # probabilities, leaks and soft targets are Q0.15
EXP_ONE = 1 << 30  # exp_neg_q returns Q2.30
LOG2E_Q30 = 1549082005  # round(log2(e) * 2^30)
EXP_MAX_ARG = 24  # e^-24 * 2^30 < 0.05: arguments beyond give 0 exactly
EXP2_LUT_BITS = 8  # 2^(-i/256), i = 0..256


def _exp2_lut() -> np.ndarray:
    """round(2^30 * 2^(-i/256)) for i = 0..256, computed exactly with ``decimal``."""
    with localcontext() as ctx:
        ctx.prec = 50
        ln2 = Decimal(2).ln()
        return np.array(
            [int(((Decimal(-i) / 256 * ln2).exp() * (1 << 30)).to_integral_value(ROUND_HALF_UP)) for i in range(257)],
            dtype=np.int64,
        )


EXP2_LUT = _exp2_lut()


@njit(cache=True)
def sat(a, lo, hi):
    """Clamp ``a`` to [lo, hi]."""
    return lo if a < lo else (hi if a > hi else a)


@njit(cache=True)
def sat_bits(a, bits):
    """Saturate to a signed ``bits``-wide integer: [-2^(bits-1), 2^(bits-1) - 1]."""
    hi = (np.int64(1) << (bits - 1)) - 1
    return sat(a, -hi - 1, hi)


@njit(cache=True)
def floor_shift(a, k):
    """floor(a / 2^k) for k >= 0 (any sign of ``a``)."""
    return a >> k


@njit(cache=True)
def round_shift(a, k):
    """Round-half-up a / 2^k for k > 0; exact ``a * 2^-k`` for k <= 0 (caller keeps it in range)."""
    if k <= 0:
        return a << (-k)
    return (a + (np.int64(1) << (k - 1))) >> k


@njit(cache=True)
def mulhr(a, w):
    """round(a w / 2^32) = (a w + 2^31) >> 32 for int32 a and w: the high word of the product,
    rounded (one SMMULR on a Cortex-M4). With w = b 2^(32-k) it is round_shift(a b, k) exactly."""
    return (a * w + (np.int64(1) << 31)) >> 32


@njit(cache=True)
def qmul(a, b, k):
    """round_shift(a * b, k): product of Q-format values with the int64 product in range."""
    return round_shift(a * b, k)


@njit(cache=True)
def div_floor(a, b):
    """floor(a / b) for b > 0 (C: truncating '/' corrected for negative a)."""
    return a // b


@njit(cache=True)
def div_round(a, b):
    """Round-half-up a / b for b > 0: floor((2a + b) / 2b)."""
    return (2 * a + b) // (2 * b)


@njit(cache=True)
def isqrt(n):
    """floor(sqrt(n)) for 0 <= n < 2^62 (digit-by-digit, no multiply); n <= 0 gives 0."""
    if n <= 0:
        return np.int64(0)
    res = np.int64(0)
    bit = np.int64(1) << 62
    while bit > n:
        bit >>= 2
    while bit != 0:
        if n >= res + bit:
            n -= res + bit
            res = (res >> 1) + bit
        else:
            res >>= 1
        bit >>= 2
    return res


@njit(cache=True)
def exp_neg_q(d, f):
    """e^(-d / 2^f) in Q2.30 for d >= 0 given in Q.f (0 <= f <= 24).

    y = round_shift(d * LOG2E_Q30, f + 14) is d*log2(e) in Q.16; with y = 2^16 n + r,
    2^(-r/2^16) is read from EXP2_LUT (Q.30) at r >> 8 and linearly interpolated on
    the low 8 bits (round_shift by 8); the result is round_shift(that, n).
    Arguments with d >= EXP_MAX_ARG * 2^f return 0 (so d * LOG2E_Q30 < 2^60).
    Error: relative <= 6e-6 (the Q.16 exponent) plus 2 LSB.
    """
    if d >= (np.int64(EXP_MAX_ARG) << f):
        return np.int64(0)
    y = round_shift(d * LOG2E_Q30, f + 14)
    n = y >> 16
    r = y & 0xFFFF
    i = r >> 8
    a = EXP2_LUT[i]
    v = a - round_shift((a - EXP2_LUT[i + 1]) * (r & 0xFF), 8)
    return round_shift(v, n)


@njit(cache=True)
def softmax_q(z, f, out):
    """out[k] = softmax(z / 2^f)[k] in Q0.15 (int64 arrays; 0 <= f <= 30).

    e_k = exp_neg_q(max(z) - z_k, f) (Q.30; the maximum gives exactly 2^30, so the sum
    is >= 2^30), out_k = round-half-up(e_k * 2^15 / sum e). Outputs lie in [0, 2^15];
    their sum may differ from 2^15 by a few LSB. ``z`` may be any int64 with
    max(z) - min(z) < 2^62 (callers keep |z| < 2^61); 0 <= f <= 24.
    """
    m = z[0]
    for k in range(1, z.shape[0]):
        if z[k] > m:
            m = z[k]
    s = np.int64(0)
    for k in range(z.shape[0]):
        out[k] = exp_neg_q(m - z[k], f)
        s += out[k]
    for k in range(z.shape[0]):
        out[k] = (out[k] * 2 * Q15_ONE + s) // (2 * s)


@njit(cache=True)
def xorshift32(x):
    """Marsaglia xorshift32 (13, 17, 5) on a nonzero uint32 held in an int64."""
    x ^= (x << 13) & U32_MASK
    x ^= x >> 17
    x ^= (x << 5) & U32_MASK
    return x


def prng_seed(seed: int) -> int:
    """The PRNG state for a user seed: (seed mod 2^32) XOR 0x9E3779B9, 0 replaced by it."""
    x = (int(seed) & U32_MASK) ^ 0x9E3779B9
    return x if x else 0x9E3779B9


@njit(cache=True)
def sround_shift(a, k, r):
    """Stochastic rounding of a / 2^k with the 32-bit random ``r``: floor((a + u) / 2^k),
    u = r >> (32 - k) uniform in [0, 2^k) for 0 < k <= 32 (r << (k - 32) for 32 < k <= 62);
    unbiased: E = a / 2^k. Valid for |a| < 2^61 and k <= 62; k <= 0 is an exact left shift."""
    if k <= 0:
        return a << (-k)
    if k <= 32:
        return (a + (r >> (32 - k))) >> k
    return (a + (r << (k - 32))) >> k


@njit(cache=True)
def bitlen(x):
    """Number of bits of x >= 0 (0 for 0): the position of the highest set bit plus one."""
    n = np.int64(0)
    while x > 0:
        x >>= 1
        n += 1
    return n


@njit(cache=True)
def norm15(x):
    """(m, e) with m * 2^e = x truncated to 15 significant bits, m in [2^14, 2^15) (x > 0)."""
    e = bitlen(x) - 15
    if e >= 0:
        return x >> e, e
    return x << (-e), e


@njit(cache=True)
def shl_sat(x, k, limit):
    """min(x * 2^k, limit) for 0 <= x, k >= 0, 0 < limit < 2^63 (a left shift that saturates
    instead of wrapping; shifts of 63 or more bits are never executed)."""
    if x == 0:
        return x
    if k >= 63 or x > (limit >> k):
        return limit
    return x << k
