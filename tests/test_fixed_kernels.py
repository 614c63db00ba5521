"""Integer kernels against the float equations they stand for, over their input ranges."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgetp.fixed.kernels_q import contrastive_grads_q, readout_error_q, soft_targets_q, surrogate_q, trace_step_q
from edgetp.fixed.primitives import INT32_MAX, INT32_MIN
from edgetp.fixed.qconfig import FV, SURR_F, gamma_bits, q15, trace_bits
from edgetp.tp import kernels as K

SET = settings(max_examples=200, deadline=None)


@SET
@given(st.lists(st.integers(INT32_MIN, INT32_MAX), min_size=1, max_size=30), st.sampled_from([1.0, 10.0, 1000.0]))
def test_surrogate_matches_float(vpre, gamma):
    vth_q = int(0.66 * 2**FV + 0.5)
    v = np.array([vpre], dtype=np.int32)
    got = surrogate_q(v, vth_q, gamma_bits(gamma))[0]
    d = (v[0].astype(np.float64) - vth_q) / 2**FV
    want = gamma / (1 + (math.pi * d) ** 2) * 2**SURR_F
    assert np.all(np.abs(got - want) <= 1 + 2e-4 * want)
    assert np.all(got >= 0) and np.all(got <= gamma_bits(gamma))


def test_trace_steady_state_and_decay():
    lam_q, ft = q15(0.977), trace_bits(0.977)
    tr = np.zeros((1, 1), np.int16)
    ones = np.ones((1, 1), np.int8)
    for _ in range(2000):
        tr = trace_step_q(tr, ones, lam_q, ft)
    lam = lam_q / 2**15
    # the fixed point of round(lam tr) + 2^ft lies within the rounding dead zone 0.5 / (1 - lam) LSB
    assert abs(int(tr[0, 0]) - 2**ft / (1 - lam)) <= 0.5 / (1 - lam) + 1
    assert abs(1 / (1 - lam) - 1 / (1 - 0.977)) < 0.02  # the leak's own rounding
    for _ in range(2000):
        tr = trace_step_q(tr, np.zeros((1, 1), np.int8), lam_q, ft)
    assert 0 < int(tr[0, 0]) <= 0.5 / (1 - lam_q / 2**15) + 1  # the documented dead zone


@SET
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(2, 8))
def test_soft_targets_and_contrastive_match_float(seed, B, K_):
    rng = np.random.default_rng(seed)
    ft = 9
    p = rng.integers(0, 12000, (K_, 7)).astype(np.int16)
    labels = rng.integers(0, K_, B)
    y = soft_targets_q(p[labels], p, ft)
    yf = K.soft_targets(p[labels] / 2.0**ft, p / 2.0**ft)
    assert np.abs(y / 2**15 - yf).max() < 2e-3
    h = rng.integers(0, 3000, (B, 5)).astype(np.int16)
    g = rng.integers(0, 3000, (K_, 5)).astype(np.int16)
    dh, dg = contrastive_grads_q(h, g, y, ft, B)
    fdh, fdg, _ = K.contrastive_grads(h / 2.0**ft, g / 2.0**ft, y / 2.0**15)
    scale = 2.0 ** (15 + ft)
    tol = 2e-3 * max(1.0, np.abs(g).max() / 2**ft, np.abs(h).max() / 2**ft) * K_
    assert np.abs(dh / scale - fdh).max() < tol and np.abs(dg / scale - fdg).max() < tol


@SET
@given(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=3, max_size=3), st.integers(0, 2))
def test_readout_error_matches_float(u, label):
    u = np.array([u], dtype=np.int32)
    fo = 10
    e = readout_error_q(u, np.array([label]), fo, 1)
    ef = K.softmax_rows(u / 2.0**fo)
    ef[0, label] -= 1
    assert np.abs(e / 2**15 - ef).max() < 2e-4
