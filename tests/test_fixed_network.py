"""Integer TP over time: resets, saturation (clamp, never wrap), silent layers, target sets,
integer-only state, and the same results with numba's JIT disabled."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edgetp.errors import EdgetpError
from edgetp.fixed.network_q import (
    dense_grad,
    forward_q,
    grad_formats,
    gradients_q,
    infer_sequence_q,
    init_state_q,
    predict_q,
    state_arrays,
    target_inputs_q,
    train_sequence_q,
    train_step_q,
)
from edgetp.fixed.primitives import INT16_MAX, INT32_MAX, INT32_MIN
from edgetp.fixed.qconfig import from_float
from edgetp.fixed.quantize import quantize_inputs
from edgetp.fixed.update_q import QOpt
from edgetp.tp.config import NetConfig, init_params


def small(hidden=(12,), recurrent=True, wbits=16, n_in=10, n_out=4, seed=0):
    cfg = NetConfig(n_in, hidden, n_out, recurrent=recurrent)
    return from_float(cfg, init_params(cfg, seed), 12, wbits)


def inputs(n, T, n_in, seed=1, scale=1.5):
    return quantize_inputs(np.random.default_rng(seed).standard_normal((n, T, n_in)) * scale, 12)


@pytest.mark.parametrize(
    "hidden,recurrent,targets",
    [((12,), True, "classes"), ((12, 8), False, "classes"), ((12, 8), True, "batch"), ((9,), False, "batch")],
)
@pytest.mark.parametrize("kind", ["rownorm", "colnorm", "sgd"])
def test_state_is_integer_and_training_is_repeatable(hidden, recurrent, targets, kind):
    qm0 = small(hidden, recurrent)
    xs, ys = inputs(2, 30, 10), np.array([1, 3])
    runs = []
    for _ in range(2):
        qm, opt = qm0.copy(), QOpt.make(kind, 1e-3, seed=7)
        st = train_sequence_q(qm, xs, ys, opt, targets)
        st = train_sequence_q(qm, xs, ys, opt, targets)
        arrays = state_arrays(qm, st, opt)
        assert all(a.dtype.kind in "iu" for _, a in arrays), [(n, a.dtype) for n, a in arrays]
        runs.append(arrays)
    assert [n for n, _ in runs[0]] == [n for n, _ in runs[1]]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(*runs))
    assert any(not np.array_equal(qm.weights[n], qm0.weights[n]) for n in qm0.trainable_names)


def test_inference_from_reset_is_deterministic():
    qm = small()
    xs = inputs(3, 40, 10)
    u1 = predict_q(qm, xs)
    u2 = predict_q(qm, np.concatenate([xs, xs]))
    assert np.array_equal(np.concatenate([u1, u1]), u2)


def test_class_targets_equal_batch_targets_with_each_class_once():
    qm = small(hidden=(12, 8))
    x = inputs(4, 1, 10)[:, 0]
    labels = np.arange(4)
    out = []
    for targets in ("batch", "classes"):
        st = init_state_q(qm, 4, 4)
        for _ in range(6):
            new, aux = forward_q(qm, st, x, target_inputs_q(qm, labels, targets))
            g = gradients_q(qm, st, new, aux, labels, targets)
            st = new
        out.append(g)
    assert all(
        np.array_equal(dense_grad(out[0][k], qm.weights[k].shape), dense_grad(out[1][k], qm.weights[k].shape))
        for k in out[0]
    )


def test_zero_input_leaves_hidden_weights_unchanged():
    qm = small(hidden=(12, 8))
    before = {k: v.copy() for k, v in qm.weights.items()}
    st = train_sequence_q(qm, np.zeros((1, 50, 10), np.int16), np.array([2]), QOpt.make("rownorm", 1e-2), "classes")
    for s in st.s + st.tr:
        assert not s.any()
    for n in ("W0", "R0", "W1", "R1", "W2", "S", "S_rec"):
        assert np.array_equal(qm.weights[n], before[n]), n


def _saturating_model(sign):
    qm = small(hidden=(64,), wbits=16)
    for n in ("W0", "R0", "W1", "S", "S_rec"):
        qm.weights[n][...] = 32767 if sign > 0 or n in ("S", "S_rec") else -32768
        qm.fw[n] = 0  # weights of 32767 units: every sum runs into the int32 limits
    qm.fx = 0
    return qm


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("kind", ["rownorm", "colnorm", "sgd"])
def test_saturation_clamps_never_wraps(sign, kind):
    qm = _saturating_model(sign)
    T = 1100  # the readout passes INT32_MAX after 1024 steps of 64 spikes x 32767
    xs = np.full((1, T, 10), 32767, np.int16)
    u = infer_sequence_q(qm, xs)
    assert np.all(u == (INT32_MAX if sign > 0 else 0))  # clamped at the top, not wrapped
    opt = QOpt.make(kind, 0.5, seed=3)
    st = init_state_q(qm, 1, 4)
    tin = target_inputs_q(qm, np.array([0]), "classes")
    for t in range(T):
        prev = st
        new, aux = forward_q(qm, st, xs[:, t], tin)
        g = gradients_q(qm, st, new, aux, np.array([0]), "classes")
        for k, (D, _) in g.items():
            assert np.abs(D).max() <= 2**47, k
        st = train_step_q(qm, prev, xs[:, t], np.array([0]), opt, "classes", tin=tin)
        for v in st.v + st.vt:
            assert v.dtype == np.int32
        if t > 0 and sign > 0:
            assert st.u.min() >= prev.u.min() or prev.u.max() == INT32_MAX
    assert np.all(st.trt[0] <= INT16_MAX) and np.all(st.trt[0] >= 0)
    if sign > 0:
        assert np.all(st.s[0] == 1) and np.all(st.tr[0] > 20000)
    else:
        assert not st.s[0].any() and np.all(st.vt[0] <= INT32_MAX)
        assert st.v[0].min() == INT32_MIN  # membrane pinned at the bottom
    moved = 0
    for n in qm.trainable_names:
        w = qm.weights[n].astype(np.int64)
        assert w.min() >= -32768 and w.max() <= 32767
        moved += int(np.sum((w == -32768) | (w == 32767)))
    assert moved > 0


def test_gradient_formats_and_keys():
    qm = small(hidden=(12, 8))
    assert set(grad_formats(qm)) == set(qm.trainable_names)


_JIT_SCRIPT = """
import json, numpy as np, sys
sys.path.insert(0, {root!r})
from tests.test_fixed_network import small, inputs
from edgetp.fixed.network_q import state_arrays, train_sequence_q
from edgetp.fixed.update_q import QOpt
out = {{}}
for kind, targets, wbits in (("rownorm", "classes", 8), ("sgd", "batch", 16),
                             ("rownorm", "classes", 16), ("colnorm", "batch", 16)):
    qm = small(hidden=(6, 5), wbits=wbits, n_in=7)
    opt = QOpt.make(kind, 3e-3, seed=5)
    st = train_sequence_q(qm, inputs(2, 12, 7), np.array([2, 0]), opt, targets)
    out.update({{kind + n: a.astype(np.int64).ravel().tolist() for n, a in state_arrays(qm, st, opt)}})
print(json.dumps(out))
"""


def test_jit_and_pure_python_agree():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = _JIT_SCRIPT.format(root=root)
    outs = []
    for disable in ("0", "1"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=disable)
        r = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, cwd=root
        )
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("clip", [0, 1, 3])
@pytest.mark.parametrize("kind", ["rownorm", "colnorm"])
def test_move_limit(clip, kind):
    qm = small(hidden=(12,), wbits=16)
    opt = QOpt.make(kind, 3e-3, seed=2, clip=clip)
    xs, ys = inputs(1, 40, 10), np.array([1])
    st = init_state_q(qm, 1, 4)
    tin = target_inputs_q(qm, ys, "classes")
    for t in range(40):
        before = {n: qm.weights[n].astype(np.int64) for n in qm.trainable_names}
        st = train_step_q(qm, st, xs[:, t], ys, opt, "classes", tin=tin)
        for n in qm.trainable_names:
            limit = 2**clip * 3e-3 * 2 ** qm.fw[n] * (1 + 1 / 128)  # lr code rounds to 8 bits
            assert np.abs(qm.weights[n] - before[n]).max() <= np.floor(limit) + 1, (t, n)


def test_rownorm_moves_each_row_by_lr_over_its_rms():
    """One rownorm step from fresh statistics: Delta W_ij = lr g_ij / sqrt(mean_j g_ij^2) (in
    weight units), up to the 8-bit lr code, the isqrt truncations and stochastic rounding; a
    row whose gradient is zero does not move. The EMA then follows the mean squares."""
    from edgetp.fixed.update_q import update_q

    rng = np.random.default_rng(4)
    qm = small(hidden=(12,), wbits=16)
    name, G, lr = "W0", 20, 2e-3
    w0 = qm.weights[name].astype(np.int64)
    g = (rng.standard_normal(w0.shape) * rng.choice([1e2, 1e4, 1e6], (w0.shape[0], 1))).astype(np.int64)
    g[3] = 0
    opt = QOpt.make("rownorm", lr, seed=1)
    update_q(qm, opt, {name: g}, {name: G})
    moved = w0 - qm.weights[name].astype(np.int64)
    # the rule sees the gradient at 11 + 10 bits of its largest factor (update_q.grad_q)
    from edgetp.fixed.update_q import as_terms, grad_q, quant_exps

    D, X = as_terms(g)
    ed, ex = quant_exps(D, X)
    gf = grad_q(D, X, ed, ex) / 2.0 ** (G - ed - ex)
    assert np.abs(gf - g / 2.0**G).max() <= 2.0 ** (ed - G)
    rms = np.sqrt(np.mean(gf**2, axis=1, keepdims=True))
    want = np.divide(lr * gf, rms, out=np.zeros_like(gf), where=rms > 0) * 2.0 ** qm.fw[name]
    assert not moved[3].any()
    assert np.all(np.abs(moved - want) <= 1 + 0.02 * np.abs(want))
    assert abs(np.mean(moved - want)) < 0.1  # stochastic rounding: unbiased on average
    # row-only: rows with gradients 100x apart move by the same amount
    big = np.argmax(np.abs(g).max(axis=1))
    assert np.abs(moved[big]).max() < 4 * np.abs(want).max() + 2


def test_the_removed_factored_rule_is_refused_saying_why():
    """Code 0 (factored) is gone: naming it anywhere (the rule, a device export, a fine-tuning run) is an
    EdgetpError that says so, and the code is not reused."""
    from edgetp.fixed.contract import OPT_CFG_RANGES, OPT_CODES
    from edgetp.fixed.device import DeviceConfig
    from edgetp.fixed.finetune import finetune_fixed

    for make in (
        lambda: QOpt.make("factored", 1e-3),
        lambda: QOpt("factored"),
        lambda: DeviceConfig(optimizer="factored"),
        lambda: finetune_fixed(small(), inputs(1, 3, 10), np.array([1]), optimizer="factored"),
    ):
        with pytest.raises(EdgetpError, match="factored.*removed"):
            make()
    assert 0 not in OPT_CODES.values() and OPT_CFG_RANGES["kind"][0] == 1


@pytest.mark.parametrize("kind", ["rownorm", "colnorm"])
def test_float_twin_moves_like_the_integer_rule(kind):
    """The float reference's rownorm/colnorm (edgetp.tp.network.Optimizer) and the integer
    rule take the same steps on the same gradients (to the integer rounding)."""
    from edgetp.fixed.update_q import update_q
    from edgetp.tp.network import Grad, Optimizer

    rng = np.random.default_rng(8)
    qm = small(hidden=(12,), wbits=16)
    name, G, lr, fw = "W0", 24, 1e-3, qm.fw["W0"]
    opt_q, opt_f = QOpt.make(kind, lr, seed=3), Optimizer(kind, lr)
    w_f = qm.weights[name].astype(np.float64) / 2**fw
    for _ in range(30):
        g = (rng.standard_normal(qm.weights[name].shape) * rng.choice([1e3, 1e5], qm.weights[name].shape[1])).astype(
            np.int64
        )
        update_q(qm, opt_q, {name: g}, {name: G})
        d = g / 2.0**G
        opt_f.apply([w_f], [Grad([(d.T.copy(), np.eye(d.shape[1]))])])
    # the two drift apart only by the accumulated rounding (lr code, isqrt, stochastic rounding)
    diff = np.abs(qm.weights[name] / 2**fw - w_f)
    assert diff.max() < 30 * lr * 0.05 + 8 / 2**fw, diff.max()


@pytest.mark.parametrize("k", [2, 3])
def test_update_every_learns_on_t_mod_k_and_runs_the_same_forward(k):
    """train_sequence_q(update_every=k) is: at step t (from 0), train_step_q when t % k == 0, else
    forward_q of both streams; the weights move on those steps only; the float twin the same."""
    from edgetp.errors import EdgetpError
    from edgetp.fixed.finetune import finetune_fixed
    from edgetp.tp.network import Optimizer, init_state, target_inputs, forward, train_sequence, train_step

    qm, xs, labels = small(hidden=(12, 8)), inputs(2, 7, 10), np.array([1, 3])
    a, b = qm.copy(), qm.copy()
    oa, ob = QOpt.make("colnorm", 1e-2, seed=3), QOpt.make("colnorm", 1e-2, seed=3)
    sa = train_sequence_q(a, xs, labels, oa, "classes", update_every=k)
    tin = target_inputs_q(qm, labels, "classes")
    sb = init_state_q(qm, 2, tin.shape[0])
    moves = []
    for t in range(7):
        w0 = {n: b.weights[n].copy() for n in b.trainable_names}
        x = np.ascontiguousarray(xs[:, t])
        sb = train_step_q(b, sb, x, labels, ob, "classes", "all", tin) if t % k == 0 else forward_q(b, sb, x, tin)[0]
        moves.append(any(not np.array_equal(w0[n], b.weights[n]) for n in w0))
    assert not any(m for t, m in enumerate(moves) if t % k) and any(moves)
    assert oa.step == ob.step == len(range(0, 7, k)) and sa.t == 7
    assert all(np.array_equal(x, y) for (_n, x), (_m, y) in zip(state_arrays(a, sa, oa), state_arrays(b, sb, ob)))
    # the float twin: the same steps learn (Optimizer.step counts updates), the state advances on every step
    cfg = qm.cfg
    p = init_params(cfg, 0).astype(np.float64)
    xf = np.random.default_rng(1).standard_normal((2, 7, 10))
    fo = Optimizer("colnorm", 1e-2)
    sf = train_sequence(p, xf, labels, cfg, fo, "classes", update_every=k)
    assert fo.step == len(range(0, 7, k)) and sf.t == 7
    st = init_state(cfg, 2, cfg.n_out)
    st, g = train_step(
        p,
        st,
        xf[:, 0],
        labels,
        cfg,
        fo,
        "classes",
        target_in=target_inputs(cfg, labels, "classes", xf.dtype),
        record=True,
        update_every=k,
    )
    assert g and fo.step == len(range(0, 7, k)) + 1
    w = [x.copy() for x in p.trainable()]
    st2, g = train_step(p, st, xf[:, 1], labels, cfg, fo, "classes", record=True, update_every=k)  # t = 1: no update
    assert g == {} and all(np.array_equal(x, y) for x, y in zip(w, p.trainable()))
    fw = forward(p, st, xf[:, 1], target_inputs(cfg, labels, "classes", xf.dtype), cfg)[0]
    assert all(np.array_equal(x, y) for x, y in zip(fw.v + fw.tr + fw.vt, st2.v + st2.tr + st2.vt))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(EdgetpError, match="update every"):
            train_sequence_q(qm.copy(), xs, labels, QOpt.make("colnorm", 1e-2), update_every=bad)
        with pytest.raises(EdgetpError, match="update every"):
            train_sequence(p, xf, labels, cfg, fo, "classes", update_every=bad)
    with pytest.raises(EdgetpError, match="update every"):
        finetune_fixed(qm, xs, labels, epochs=1, update_every=0)
