"""Each equation of the spec on hand-computed cases, plus structural properties."""

import math

import numpy as np
import pytest

from edgetp.errors import EdgetpError
from edgetp.tp import Optimizer, init_params, init_state, parse_net, train_sequence, infer_sequence, predict
from edgetp.tp import kernels as K
from edgetp.tp.network import forward, gradients, target_inputs, train_step
from edgetp.tp.numpy_ref import train_sequence_numpy
from edgetp.tp.propagator import PropagatorCache


def test_lif_soft_and_hard_reset():
    v = np.array([[0.0, 0.5, 1.0]])
    cur = np.array([[0.66, 0.2, -0.5]])
    vpre, s = K.lif_step(v, cur, 0.77, 0.66, False)
    np.testing.assert_allclose(vpre, [[0.66, 0.585, 0.27]])
    np.testing.assert_array_equal(s, [[1, 0, 0]])  # >= threshold spikes (0.66 exactly)
    np.testing.assert_allclose(v, [[0.0, 0.585, 0.27]], atol=1e-15)  # soft: subtract vth
    v = np.array([[1.0, 0.0]])
    vpre, s = K.lif_step(v, np.array([[0.5, 0.1]]), 0.77, 0.66, True)
    np.testing.assert_allclose(vpre, [[1.27, 0.1]])
    np.testing.assert_array_equal(v, [[0.0, 0.1]])  # hard: to zero
    v = np.array([[1.0]])
    K.lif_step(v, np.array([[0.5]]), 0.77, 0.66, False)
    np.testing.assert_allclose(v, [[1.27 - 0.66]])  # soft keeps the excess


def test_surrogate_type1():
    assert K.surrogate(np.array([0.66]), 0.66, 10.0)[0] == 10.0
    np.testing.assert_allclose(K.surrogate(np.array([1.66]), 0.66, 10.0), [10 / (1 + math.pi**2)])
    np.testing.assert_allclose(K.surrogate(np.array([0.16]), 0.66, 1.0), [1 / (1 + (math.pi / 2) ** 2)])


def test_soft_targets_with_epsilon_inside_square():
    p = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = K.soft_targets(p, p)
    d = lambda a, b: math.sqrt(sum((x - z + 1e-9) ** 2 for x, z in zip(a, b)))
    row0 = np.array([-d(p[0], p[k]) for k in range(3)])
    np.testing.assert_allclose(y[0], np.exp(row0) / np.exp(row0).sum(), rtol=1e-15)
    assert d(p[0], p[0]) == pytest.approx(math.sqrt(2) * 1e-9)  # identical rows are 1e-9*sqrt(n) apart
    np.testing.assert_allclose(y.sum(1), 1.0)


def test_contrastive_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    h, g = rng.random((3, 5)), rng.random((3, 5))
    y = K.soft_targets(rng.random((3, 4)), rng.random((3, 4)))
    dh, dg, loss = K.contrastive_grads(h, g, y)

    def E(h_, g_):
        z = h_ @ g_.T
        ls = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -(y * ls).sum() / 3

    assert loss == pytest.approx(E(h, g), rel=1e-12)
    eps = 1e-6
    for arr, grad in ((h, dh), (g, dg)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            a = arr.copy()
            a[idx] += eps
            up = E(a, g) if arr is h else E(h, a)
            a[idx] -= 2 * eps
            dn = E(a, g) if arr is h else E(h, a)
            num[idx] = (up - dn) / (2 * eps)
        np.testing.assert_allclose(grad, num, atol=1e-8)


def test_adam_matches_pytorch_formula_over_steps():
    w = np.array([0.5, -0.25])
    m = np.zeros(2)
    v = np.zeros(2)
    ref_w, ref_m, ref_v = w.copy(), m.copy(), v.copy()
    for t, g in enumerate([np.array([0.1, -2.0]), np.array([0.0, 3.0]), np.array([-1.0, 0.0])], 1):
        K.adam_update(w, g, m, v, 0.01, 0.9, 0.999, 1e-8, t)
        ref_m = 0.9 * ref_m + 0.1 * g
        ref_v = 0.999 * ref_v + 0.001 * g * g
        ref_w -= (0.01 / (1 - 0.9**t)) * ref_m / (np.sqrt(ref_v) / math.sqrt(1 - 0.999**t) + 1e-8)
        np.testing.assert_allclose(w, ref_w, rtol=1e-15)
    # the fused small-batch path is the same update
    w2 = np.array([[0.5, -0.25]])
    m2 = np.zeros((1, 2))
    v2 = np.zeros((1, 2))
    for t, g in enumerate([np.array([0.1, -2.0]), np.array([0.0, 3.0]), np.array([-1.0, 0.0])], 1):
        K.outer_update(
            w2,
            np.ones((1, 1)),
            g[None],
            np.zeros((0, 0)),
            np.zeros((0, 0)),
            1.0,
            True,
            m2,
            v2,
            0.01,
            0.9,
            0.999,
            1e-8,
            t,
            np.zeros((0, 0)),
        )
    np.testing.assert_allclose(w2[0], ref_w, rtol=1e-15)


def test_readout_delta_rule_and_label_trace():
    cfg = parse_net("3-4-2", vth=0.5)
    p = init_params(cfg, 0, np.float64)
    p.W[0][:] = 1.0  # every hidden neuron fires at step 1 on input 1
    p.W[1][:] = [[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 0.0]]
    st = init_state(cfg, 1, 1)
    new, aux = forward(p, st, np.ones((1, 3)), np.array([[0.0, 1.0]]), cfg)
    np.testing.assert_array_equal(new.s[0], np.ones((1, 4)))
    np.testing.assert_allclose(new.u, [[1.0, 0.0]])
    np.testing.assert_array_equal(new.trl, [[0.0, 1.0]])
    g = gradients(p, new, aux, np.array([1]), cfg, "batch")["W1"].dense()
    e = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum() - [0, 1]
    np.testing.assert_allclose(g, np.outer(e, np.ones(4)))
    new2, _ = forward(p, new, np.ones((1, 3)), np.array([[0.0, 1.0]]), cfg)
    np.testing.assert_allclose(new2.trl, [[0.0, 1.977]])
    np.testing.assert_allclose(new2.tr[0], new2.s[0] + 0.977 * new.tr[0])


@pytest.mark.parametrize("net", ["7-9r-5", "7-9-6-5", "7-8r-6r-5"])
def test_batch_equals_classes_when_each_class_once_in_order(net):
    cfg = parse_net(net)
    rng = np.random.default_rng(1)
    xs = rng.random((5, 15, 7)) * 2
    labels = np.arange(5)
    pa, pb = init_params(cfg, 3, np.float64), init_params(cfg, 3, np.float64)
    train_sequence(pa, xs, labels, cfg, Optimizer("adam", 1e-2), "batch")
    train_sequence(pb, xs, labels, cfg, Optimizer("adam", 1e-2), "classes")
    for a, b in zip(pa.trainable(), pb.trainable()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(pa.W[0], init_params(cfg, 3, np.float64).W[0])


def test_batch_rule_learns_nothing_in_hidden_layers_at_batch_1():
    cfg = parse_net("6-8r-3")
    p = init_params(cfg, 0, np.float64)
    W0 = p.W[0].copy()
    train_sequence(
        p, np.random.default_rng(0).random((1, 12, 6)) * 3, np.array([1]), cfg, Optimizer("sgd", 0.1), "batch"
    )
    np.testing.assert_array_equal(p.W[0], W0)
    train_sequence(
        p, np.random.default_rng(0).random((1, 12, 6)) * 3, np.array([1]), cfg, Optimizer("sgd", 0.1), "classes"
    )
    assert not np.array_equal(p.W[0], W0)


@pytest.mark.parametrize("net", ["6-8r-7r-4", "6-8-5-4", "6-9r-4"])
@pytest.mark.parametrize("targets", ["batch", "classes"])
@pytest.mark.parametrize("kind,reset", [("adam", "soft"), ("sgd", "hard"), ("adam", "hard")])
def test_numba_reference_equals_plain_numpy(net, targets, kind, reset):
    cfg = parse_net(net, reset=reset)
    p, q = init_params(cfg, 1, np.float64), init_params(cfg, 1, np.float64)
    xs = np.random.default_rng(2).normal(size=(3, 25, 6)) * 2
    y = np.array([0, 2, 3])
    state = train_sequence(p, xs, y, cfg, Optimizer(kind, 0.01), targets)
    u, _ = train_sequence_numpy(q, xs, y, cfg, kind, 0.01, targets)
    for a, b in zip(p.trainable(), q.trainable()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11)
    np.testing.assert_allclose(state.u, u, atol=1e-10)


def test_large_batch_path_equals_fused_path():
    cfg = parse_net("6-8r-4")
    xs = np.random.default_rng(3).random((12, 10, 6)) * 2
    y = np.arange(12) % 4
    a, b = init_params(cfg, 0, np.float64), init_params(cfg, 0, np.float64)
    train_sequence(a, xs, y, cfg, Optimizer("adam", 1e-2), "batch")
    import edgetp.tp.network as N

    old = N.FUSED_MAX_BATCH
    N.FUSED_MAX_BATCH = 100
    try:
        train_sequence(b, xs, y, cfg, Optimizer("adam", 1e-2), "batch")
    finally:
        N.FUSED_MAX_BATCH = old
    for u, v in zip(a.trainable(), b.trainable()):
        np.testing.assert_allclose(u, v, atol=1e-12)


def test_propagator_cache_equals_recomputation():
    cfg = parse_net("5-7r-6r-4")
    p = init_params(cfg, 4, np.float64)
    xs = np.random.default_rng(4).random((2, 30, 5)) * 2
    y = np.array([3, 1])
    for targets in ("batch", "classes"):
        a, b = p.copy(), p.copy()
        sa = sb = init_state(cfg, 2, 2 if targets == "batch" else 4)
        oa, ob = Optimizer("adam", 1e-2), Optimizer("adam", 1e-2)
        cache = PropagatorCache(p, cfg, np.float64)
        tin = target_inputs(cfg, y, targets, np.float64)
        for t in range(30):
            sa, _ = train_step(a, sa, xs[:, t], y, cfg, oa, targets, target_in=tin)
            sb, _ = train_step(b, sb, xs[:, t], y, cfg, ob, targets, target_in=tin, prop=cache)
            for l in range(2):
                np.testing.assert_array_equal(sa.st[l], sb.st[l])
                np.testing.assert_allclose(sa.trt[l], sb.trt[l], atol=1e-13)
        for u, v in zip(a.trainable(), b.trainable()):
            np.testing.assert_allclose(u, v, atol=1e-12)
    assert cache.matches(p, cfg, np.float64)
    q = p.copy()
    q.S[0, 0] += 1
    assert not cache.matches(q, cfg, np.float64)


def test_state_resets_between_samples():
    """Same input twice from reset gives the same result; a sample does not leak into the next."""
    cfg = parse_net("6-10r-4")
    p = init_params(cfg, 5, np.float64)
    xa, xb = np.random.default_rng(5).random((2, 1, 20, 6)) * 3
    u_b = infer_sequence(p, xb, cfg)
    infer_sequence(p, xa, cfg)
    np.testing.assert_array_equal(infer_sequence(p, xb, cfg), u_b)
    # step API: run A, then reset (fresh state), then B == B alone
    st = init_state(cfg, 1, 0)
    from edgetp.tp import infer_step

    for t in range(20):
        st = infer_step(p, st, xa[:, t], cfg)
    assert np.abs(st.v[0]).sum() > 0
    st = init_state(cfg, 1, 0)
    for t in range(20):
        st = infer_step(p, st, xb[:, t], cfg)
    np.testing.assert_array_equal(st.u, u_b)
    # training: two runs of the same sample from the same weights and optimizer state agree
    a, b = p.copy(), p.copy()
    train_sequence(a, xb, [2], cfg, Optimizer("adam", 1e-3), "classes")
    train_sequence(b, xa, [1], cfg, Optimizer("sgd", 0.0), "classes")  # lr 0: state only
    train_sequence(b, xb, [2], cfg, Optimizer("adam", 1e-3), "classes")
    for u, v in zip(a.trainable(), b.trainable()):
        np.testing.assert_array_equal(u, v)


def test_edge_inputs_zero_and_all_spiking():
    cfg = parse_net("4-6r-3")
    p = init_params(cfg, 0, np.float64)
    st = train_sequence(p, np.zeros((2, 10, 4)), np.array([0, 1]), cfg, Optimizer("adam", 1e-3), "classes")
    assert st.s[0].sum() == 0 and np.all(st.u == 0)  # silent layer: readout stays 0
    p.W[0][:] = 10.0
    if p.R is not None:
        p.R[0][:] = 0.0
    st = train_sequence(p, np.ones((2, 10, 4)), np.array([0, 1]), cfg, Optimizer("sgd", 1e-3), "classes")
    assert st.s[0].all()  # all spiking
    assert all(np.isfinite(w).all() for w in p.trainable())


def test_float32_close_to_float64():
    cfg = parse_net("8-12r-4")
    p64 = init_params(cfg, 0, np.float64)
    p32 = p64.astype(np.float32)
    xs = np.random.default_rng(6).random((4, 20, 8))
    u64 = infer_sequence(p64, xs, cfg)
    u32 = infer_sequence(p32, xs.astype(np.float32), cfg)
    assert u32.dtype == np.float32
    np.testing.assert_allclose(u32, u64, atol=1e-4)
    assert np.array_equal(predict(p32, xs.astype(np.float32), cfg), predict(p64, xs, cfg))


def test_bad_arguments():
    with pytest.raises(EdgetpError):
        parse_net("120-450x-36")
    with pytest.raises(EdgetpError):
        parse_net("120-450r-64-36")
    with pytest.raises(EdgetpError):
        Optimizer("lamb")
    with pytest.raises(EdgetpError):
        target_inputs(parse_net("3-4-2"), np.array([0]), "nope", np.float64)
