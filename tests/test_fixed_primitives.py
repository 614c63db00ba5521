"""Integer primitives against straightforward big-integer / exact-rational formulations,
over their full input ranges and at the saturation limits (hypothesis)."""

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetp.fixed import primitives as P

I64 = st.integers(-(2**62), 2**62)
I32 = st.integers(P.INT32_MIN, P.INT32_MAX)
U32 = st.integers(1, 2**32 - 1)
SET = settings(max_examples=300, deadline=None)


def _round_half_up(fr: Fraction) -> int:
    return math.floor(fr + Fraction(1, 2))


@SET
@given(I64, st.sampled_from([8, 16, 32]))
def test_sat_bits_is_clamp(a, bits):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert P.sat_bits(a, bits) == min(max(a, lo), hi)


@SET
@given(I64, st.integers(0, 62))
def test_floor_and_round_shift(a, k):
    assert P.floor_shift(a, k) == math.floor(Fraction(a, 2**k))
    want = _round_half_up(Fraction(a, 2**k)) if k > 0 else a
    assert P.round_shift(a, k) == want


@SET
@given(st.integers(-(2**40), 2**40), st.integers(-16, 0))
def test_round_shift_left(a, k):
    assert P.round_shift(a, k) == a * 2 ** (-k)


@SET
@given(I32, I32, st.integers(1, 40))
def test_qmul(a, b, k):
    assert P.qmul(a, b, k) == _round_half_up(Fraction(a * b, 2**k))


@SET
@given(st.integers(-(2**60), 2**60), st.integers(1, 2**31))
def test_divisions(a, b):
    assert P.div_floor(a, b) == math.floor(Fraction(a, b))
    assert P.div_round(a, b) == _round_half_up(Fraction(a, b))


@SET
@given(st.integers(0, 2**62 - 1))
def test_isqrt(n):
    assert P.isqrt(n) == math.isqrt(n)


def test_isqrt_limits():
    for n in [0, 1, 2, 3, 4, 2**62 - 1, (2**31 - 1) ** 2, (2**31) ** 2 - 1]:
        assert P.isqrt(n) == math.isqrt(n)
    assert P.isqrt(-5) == 0


def _exact_exp_q30(d, f):
    with localcontext() as ctx:
        ctx.prec = 40
        return float((-(Decimal(d) / (1 << f))).exp() * (1 << 30))


@SET
@given(st.integers(0, 2**30), st.integers(0, 24))
def test_exp_neg_q_close_to_exact(d, f):
    got = P.exp_neg_q(d, f)
    assert 0 <= got <= P.EXP_ONE
    exact = _exact_exp_q30(d, f) if d < (P.EXP_MAX_ARG << f) else 0.0
    # error budget: the Q.16 exponent (relative 2^-17 ln 2 + LOG2E's 2^-31), the linear
    # interpolation (relative (ln 2 / 256)^2 / 8) and the final roundings (2 LSB)
    assert abs(got - exact) <= 2 + 6.5e-6 * exact


def test_exp_lut_and_monotone():
    assert P.EXP2_LUT[0] == 1 << 30 and P.EXP2_LUT[256] == 1 << 29
    vals = [P.exp_neg_q(d, 8) for d in range(0, P.EXP_MAX_ARG << 8, 7)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))
    assert P.exp_neg_q(P.EXP_MAX_ARG << 8, 8) == 0


@SET
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=40), st.integers(0, 24))
def test_softmax_q(z, f):
    z = np.array(z, dtype=np.int64)
    out = np.empty_like(z)
    P.softmax_q(z, f, out)
    assert out.min() >= 0 and out.max() <= P.Q15_ONE
    assert abs(int(out.sum()) - P.Q15_ONE) <= len(z)
    m = max(int(v) for v in z)
    e = np.array([_exact_exp_q30(m - int(v), f) if m - int(v) < (P.EXP_MAX_ARG << f) else 0 for v in z])
    assert np.all(np.abs(out - e / e.sum() * P.Q15_ONE) <= 2)
    assert out[int(np.argmax(z))] == out.max()


def test_xorshift32_known_sequence():
    # Marsaglia (2003), "Xorshift RNGs": y = 2463534242 under (13, 17, 5)
    x, seq = 2463534242, []
    for _ in range(3):
        x = P.xorshift32(x)
        seq.append(x)
    assert seq == [723471715, 2497366906, 2064144800]


@SET
@given(U32)
def test_xorshift32_matches_bigint(x):
    m = 2**32 - 1
    y = x ^ ((x << 13) & m)
    y ^= y >> 17
    y ^= (y << 5) & m
    assert P.xorshift32(x) == y and 0 < y <= m


def test_prng_seed_nonzero():
    assert P.prng_seed(0x9E3779B9) == 0x9E3779B9
    assert all(0 < P.prng_seed(s) < 2**32 for s in [0, 1, -1, 2**40])


@SET
@given(st.integers(-(2**55), 2**55), st.integers(0, 40), st.integers(0, 2**32 - 1))
def test_sround_shift_formula(a, k, r):
    if k == 0:
        assert P.sround_shift(a, k, r) == a
        return
    u = r >> (32 - k) if k <= 32 else r << (k - 32)
    assert P.sround_shift(a, k, r) == math.floor(Fraction(a + u, 2**k))


@SET
@given(st.integers(-(2**40), 2**40), st.integers(1, 10))
def test_sround_shift_is_unbiased(a, k):
    # every offset u in [0, 2^k) once: the mean is exactly a / 2^k (Hermite's identity)
    total = sum(P.sround_shift(a, k, u << (32 - k)) for u in range(2**k))
    assert total == a


@SET
@given(st.integers(1, 2**62))
def test_bitlen_norm15(x):
    assert P.bitlen(x) == x.bit_length()
    m, e = P.norm15(x)
    assert 2**14 <= m < 2**15
    assert (m * 2**e == x) if e <= 0 else (m == x >> e)


@SET
@given(st.integers(0, 2**62), st.integers(0, 62))
def test_shl_sat(x, k):
    assert P.shl_sat(x, k, 2**62) == min(x * 2**k, 2**62)
