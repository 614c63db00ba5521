"""Quantizer, integer-vs-float agreement and the CLI-facing entry points of the integer rule."""

import numpy as np
import pytest

from edgetp.errors import EdgetpError
from edgetp.fixed.bench import bench_fixed
from edgetp.fixed.finetune import evaluate_fixed, finetune_fixed
from edgetp.tp.schedule import epoch_lrs
from edgetp.fixed.network_q import forward_q, gradients_q, init_state_q, target_inputs_q
from edgetp.fixed.qconfig import FV, from_float, quantize_array, trace_bits
from edgetp.fixed.quantize import format_report, input_bits, quantize_inputs, quantize_model
from edgetp.fixed.update_q import QOpt, lr_code
from edgetp.model import Model
from edgetp.tp.config import NetConfig, init_params
from edgetp.tp.network import forward, gradients, init_state, predict, target_inputs


def _model(hidden=(24,), recurrent=True, n_in=16, n_out=5, seed=0):
    cfg = NetConfig(n_in, hidden, n_out, recurrent=recurrent)
    return Model(cfg, init_params(cfg, seed), [f"c{i}" for i in range(n_out)])


def _features(n=60, T=30, n_in=16, seed=2):
    return (np.random.default_rng(seed).standard_normal((n, T, n_in)) * 1.2).astype(np.float32)


def test_formats_from_calibration():
    x = _features()
    assert input_bits(x, 100.0, 16) == int(np.floor(np.log2(32767 / np.abs(x).max())))
    assert trace_bits(0.977) == 9  # 2^9 / (1 - 0.977) = 22261 < 32767 < 2^10 / 0.023
    q = quantize_array(np.array([0.5, -0.5, 10.0, -10.0, 1 / 3]), 7, 8)
    assert q.tolist() == [64, -64, 127, -128, 43]
    xq = quantize_inputs(np.array([[[1e9, -1e9, 0.25]]]), 4, 8)
    assert xq.tolist() == [[[127, -128, 4]]]


@pytest.mark.parametrize("wbits,min_agree", [(16, 0.95), (8, 0.8)])
def test_quantized_inference_agrees_with_float(wbits, min_agree):
    m = _model()
    x = _features()
    labels = predict(m.params, x, m.cfg)
    qm = quantize_model(m, x, labels, wbits=wbits)
    rep = qm.report
    assert rep["float_accuracy"] == 1.0 and rep["agreement"] >= min_agree
    assert abs(rep["int_accuracy"] - rep["agreement"]) < 1e-12
    assert set(rep["weights"]) == {"W0", "W1", "R0", "S", "S_rec"}
    assert "agree" in format_report(rep)
    assert evaluate_fixed(qm, x, labels) == rep["int_accuracy"]


def test_first_step_matches_float_within_quantization_error():
    m = _model(hidden=(24, 12))
    qm = from_float(m.cfg, m.params, 12, 16)
    x = _features(4, 3)
    xq = quantize_inputs(x, 12)
    labels = np.arange(4)
    fst = init_state(m.cfg, 4, 5, np.float64)
    qst = init_state_q(qm, 4, 5)
    p64 = m.params.astype(np.float64)
    for t in range(3):
        fnew, faux = forward(
            p64, fst, x[:, t].astype(np.float64), target_inputs(m.cfg, labels, "classes", np.float64), m.cfg
        )
        qnew, qaux = forward_q(qm, qst, xq[:, t], target_inputs_q(qm, labels, "classes"))
        assert np.mean([np.array_equal(a, b) for a, b in zip(fnew.s, qnew.s)]) == 1.0
        assert np.abs(qaux["vpre"][0] / 2**FV - faux["vpre"][0]).max() < 1e-2
        fg = gradients(p64, fnew, faux, labels, m.cfg, "classes")
        qg = gradients_q(qm, qst, qnew, qaux, labels, "classes")
        fst, qst = fnew, qnew
    from edgetp.fixed.network_q import dense_grad, grad_formats

    G = grad_formats(qm)
    for name, terms in qg.items():
        g = dense_grad(terms, qm.weights[name].shape)
        ref = fg[name].dense()
        scale = max(np.abs(ref).max(), 1e-6)
        assert np.abs(g / 2.0 ** G[name] - ref).max() <= 0.02 * scale, name


def test_lr_codes_and_schedule():
    for lr in [1e-5, 1e-4, 3e-4, 1e-3, 0.5]:
        m, e = lr_code(lr)
        assert 128 <= m <= 255 and abs(m * 2.0**-e / lr - 1) < 1 / 256
    assert lr_code(0) == (0, 0)
    with pytest.raises(EdgetpError):
        lr_code(float("nan"))
    lrs = epoch_lrs(1e-4, 3)
    assert lrs[0] == 1e-4 and lrs[0] > lrs[1] > lrs[2] > 0.25e-4
    assert epoch_lrs(1e-4, 3, schedule="constant") == [1e-4] * 3


def test_finetune_fixed_learns_and_leaves_model_alone():
    m = _model(n_out=3)
    x = _features(12, 25)
    y = np.arange(12) % 3
    x[:, :, :3] += 2.0 * np.eye(3, dtype=np.float32)[y][:, None, :]  # class-dependent inputs
    qm0 = quantize_model(m, x, wbits=16)
    w0 = {k: v.copy() for k, v in qm0.weights.items()}
    qm = finetune_fixed(qm0, x, y, epochs=3, lr=3e-3, seed=1)
    assert all(np.array_equal(qm0.weights[k], w0[k]) for k in w0)
    assert any(not np.array_equal(qm.weights[k], w0[k]) for k in qm.trainable_names)
    assert evaluate_fixed(qm, x, y) >= evaluate_fixed(qm0, x, y)
    again = finetune_fixed(qm0, x, y, epochs=3, lr=3e-3, seed=1)
    assert all(np.array_equal(qm.weights[k], again.weights[k]) for k in w0)
    sgd = finetune_fixed(m, x, y, epochs=1, lr=1e-3, optimizer="sgd", targets="batch", batch=3, wbits=8)
    assert sgd.wbits == 8 and sgd.weights["W0"].dtype == np.int8
    with pytest.raises(EdgetpError):
        finetune_fixed(m, x, y, optimizer="adam")


def test_bench_fixed_reports_rate():
    r = bench_fixed(NetConfig(16, (8,), 3), steps=10, repeats=2)
    assert r["samples_per_s"] > 0 and len(r["times_s"]) == 2 and r["net"] == "16-8r-3"


def _train_both(k_float: int, k_int: int):
    """Float (colnorm, float64) and integer rule on the same 4 sequences of 9 steps; returns
    (float optimizer steps, integer optimizer steps, {name: ||dW_int - dW_float|| / ||dW_float||})."""
    from edgetp.fixed.network_q import train_sequence_q
    from edgetp.tp.config import trainable_names
    from edgetp.tp.network import Optimizer, train_sequence

    m = _model(hidden=(24,))
    x = _features(4, 9).astype(np.float64)
    labels = np.arange(4)
    qm = from_float(m.cfg, m.params, 12, 16)
    p64 = m.params.astype(np.float64)
    w0f = [w.copy() for w in p64.trainable()]
    w0q = {n: qm.weights[n].astype(np.int64) for n in qm.trainable_names}
    fo, qo = Optimizer("colnorm", 1e-4), QOpt.make("colnorm", 1e-4, seed=0)
    train_sequence(p64, x, labels, m.cfg, fo, "classes", update_every=k_float)
    train_sequence_q(qm, quantize_inputs(x, 12), labels, qo, "classes", update_every=k_int)
    rel = {}
    for n, a, w in zip(trainable_names(m.cfg), w0f, p64.trainable()):
        df = w - a
        dq = (qm.weights[n].astype(np.int64) - w0q[n]) / 2.0 ** qm.fw[n]
        assert np.isfinite(df).all() and np.abs(df).max() > 0, n
        rel[n] = float(np.linalg.norm(dq - df) / np.linalg.norm(df))
    return fo.step, qo.step, rel


@pytest.mark.parametrize("k", [1, 2])
def test_update_every_float_and_integer_learn_alike(k):
    """update_every k means the same in both twins: the same number of updates (steps t % k == 0),
    and weight changes within 10 % of each other (measured: <= 6 % at k = 1 and k = 2)."""
    fs, qs, rel = _train_both(k, k)
    assert fs == qs == len(range(0, 9, k))
    assert max(rel.values()) < 0.1, rel
    _, _, off = _train_both(3 - k, k)  # the bound tells k = 1 from k = 2 apart
    assert max(off.values()) > 0.3, off
