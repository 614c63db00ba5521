"""ONNX export (step and Scan forms) checked with onnxruntime, import of edgetp's own and
of foreign graphs, and the errors for files edgetp cannot read."""

import numpy as np
import pytest

from conftest import require, require_module  # noqa: E402

onnx = require_module("onnx")
require("onnxruntime", module_level=True)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgetp.errors import EdgetpError  # noqa: E402
from edgetp.interop.common import reference_readout  # noqa: E402
from edgetp.interop.onnx_io import OPSET, export_onnx, import_onnx, onnx_readout  # noqa: E402
from edgetp.model import Model, load_model, save_model  # noqa: E402
from edgetp.tp.config import NetConfig, init_params  # noqa: E402
from edgetp.tp.network import Optimizer, train_sequence  # noqa: E402

NETS = [(rec, reset, hidden) for rec in (False, True) for reset in ("soft", "hard") for hidden in ((16,), (16, 8))]


def make_model(tmp_path, dtype=np.float32, **net):
    cfg = NetConfig(12, net.pop("hidden", (16,)), 5, vth=0.5, **net)
    save_model(Model(cfg, init_params(cfg, seed=3, dtype=dtype), list("abcde")), tmp_path / "m.npz")
    return load_model(tmp_path / "m.npz")


def utterances(n_in, dtype=np.float32, batch=3, steps=40):
    return np.random.default_rng(7).normal(0.0, 1.2, size=(batch, steps, n_in)).astype(dtype)


@pytest.mark.parametrize("rec,reset,hidden", NETS)
def test_step_export_matches_reference_and_round_trips(tmp_path, rec, reset, hidden):
    model = make_model(tmp_path, recurrent=rec, reset=reset, hidden=hidden)
    path = export_onnx(model, tmp_path / "m.onnx")
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    assert m.opset_import[0].version == OPSET
    xs = utterances(12)
    ref = reference_readout(model, xs)
    assert ref.std() > 0.1  # the network does something
    assert np.abs(onnx_readout(path, xs) - ref).max() <= 1e-5  # every step, float32 vs float32
    back = import_onnx(path)
    save_model(back, tmp_path / "back.npz")
    assert load_model(tmp_path / "back.npz").hash() == model.hash()  # lossless, S/S_rec included


@pytest.mark.parametrize("rec,reset,hidden", NETS[::3])
def test_scan_export_matches_reference(tmp_path, rec, reset, hidden):
    model = make_model(tmp_path, recurrent=rec, reset=reset, hidden=hidden, leak_out=0.9)
    path = export_onnx(model, tmp_path / "m.onnx", form="scan")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    xs = utterances(12)
    assert np.abs(onnx_readout(path, xs) - reference_readout(model, xs)).max() <= 1e-5
    assert import_onnx(path).hash() == model.hash()


def test_float64_model_exports_as_double(tmp_path):
    model = make_model(tmp_path, dtype=np.float64, recurrent=True)
    path = export_onnx(model, tmp_path / "m.onnx")
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.elem_type == TensorProto.DOUBLE
    xs = utterances(12, np.float64)
    assert np.abs(onnx_readout(path, xs) - reference_readout(model, xs)).max() <= 1e-12


mk = helper.make_node
FIRE = {  # spellings of the spike test, all producing "fire"
    ">": [mk("Greater", ["mem_pre", "th"], ["fire"], name="/lif1/Greater")],
    "<": [mk("Less", ["th", "mem_pre"], ["fire"], name="/lif1/Less")],
    ">=0": [mk("Sub", ["mem_pre", "th"], ["d"]), mk("GreaterOrEqual", ["d", "zero"], ["fire"], name="/lif1/GE")],
}
RESET = {  # spellings of the reset, all producing "mem1_out" from "mem_pre", "fire", "spk1_out"
    "v*(1-s)": ("hard", [mk("Sub", ["one", "spk1_out"], ["keep"]), mk("Mul", ["keep", "mem_pre"], ["mem1_out"])]),
    "where": ("hard", [mk("Where", ["fire", "zero", "mem_pre"], ["mem1_out"])]),
    "not-where": ("hard", [mk("Not", ["fire"], ["quiet"]), mk("Where", ["quiet", "mem_pre", "zero"], ["mem1_out"])]),
    "v-v*s": ("hard", [mk("Mul", ["mem_pre", "spk1_out"], ["vs"]), mk("Sub", ["mem_pre", "vs"], ["mem1_out"])]),
    "v-vth*s": ("soft", [mk("Mul", ["spk1_out", "th"], ["vs"]), mk("Sub", ["mem_pre", "vs"], ["mem1_out"])]),
    "where-soft": (
        "soft",
        [mk("Sub", ["mem_pre", "th"], ["vm"]), mk("Where", ["fire", "vm", "mem_pre"], ["mem1_out"])],
    ),
}


def foreign_graph(W, R, Wout, alpha=0.8, vth=0.6, fire=">", reset="v*(1-s)"):
    """One recurrent layer written the way a PyTorch export spells it: Gemm, Constant
    nodes, other names, a pure-integrator readout, no metadata."""
    c = lambda name, v: helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(v, np.float32)))
    nodes = [
        c("a", alpha),
        c("th", vth),
        c("one", 1.0),
        c("zero", 0.0),
        mk("Gemm", ["input", "fc1.weight"], ["i1"], transB=1, name="/fc1/Gemm"),
        mk("MatMul", ["spk1", "rec_t"], ["i2"], name="/rec/MatMul"),
        mk("Mul", ["mem1", "a"], ["m1"]),
        mk("Add", ["i1", "m1"], ["m2"]),
        mk("Add", ["m2", "i2"], ["mem_pre"]),
        *FIRE[fire],
        mk("Cast", ["fire"], ["spk1_out"], to=TensorProto.FLOAT),
        *RESET[reset][1],
        mk("Gemm", ["spk1_out", "fc2.weight"], ["o"], transB=1, name="/fc2/Gemm"),
        mk("Add", ["acc", "o"], ["acc_out"]),
    ]
    inits = [
        numpy_helper.from_array(W, "fc1.weight"),
        numpy_helper.from_array(np.ascontiguousarray(R.T), "rec_t"),
        numpy_helper.from_array(Wout, "fc2.weight"),
    ]
    info = lambda n, w: helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", w])
    h, o = W.shape[0], Wout.shape[0]
    g = helper.make_graph(
        nodes,
        "torch_like",
        [info("input", W.shape[1]), info("mem1", h), info("spk1", h), info("acc", o)],
        [info("acc_out", o), info("mem1_out", h), info("spk1_out", h)],
        inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])


def foreign_weights(n_in=12, h=16, o=5):
    rng = np.random.default_rng(11)
    return [rng.uniform(-0.4, 0.4, s).astype(np.float32) for s in ((h, n_in), (h, h), (o, h))]


@pytest.mark.parametrize(
    "fire,reset",
    [(">", "v*(1-s)"), ("<", "where"), (">=0", "not-where"), (">", "v-v*s"), (">=0", "v-vth*s"), ("<", "where-soft")],
)
def test_foreign_graph_spellings_import(tmp_path, fire, reset):
    W, R, Wout = foreign_weights()
    path = tmp_path / "torch.onnx"
    onnx.save(foreign_graph(W, R, Wout, fire=fire, reset=reset), str(path))
    model = import_onnx(path)
    assert (model.cfg.reset, model.cfg.leak_m, model.cfg.vth) == (RESET[reset][0], 0.8, 0.6)
    xs = utterances(12)
    assert np.abs(onnx_readout(path, xs) - reference_readout(model, xs)).max() <= 1e-5


def test_foreign_graph_imports_and_is_ready_for_tp(tmp_path):
    W, R, Wout = foreign_weights()
    path = tmp_path / "torch.onnx"
    onnx.save(foreign_graph(W, R, Wout), str(path))
    model = import_onnx(path, seed=5)
    cfg = model.cfg
    assert (cfg.net_string(), cfg.reset, cfg.leak_m, cfg.vth, cfg.leak_out) == ("12-16r-5", "hard", 0.8, 0.6, 1.0)
    assert np.array_equal(model.params.W[0], W) and np.array_equal(model.params.R[0], R)
    notes = " ".join(model.recipe["imported"]["notes"])
    assert "initialised like a linear layer" in notes and "v > vth" in notes
    fresh = init_params(cfg, seed=5)
    assert np.array_equal(model.params.S, fresh.S) and np.array_equal(model.params.S_rec, fresh.S_rec)
    xs = utterances(12)
    assert np.abs(onnx_readout(path, xs) - reference_readout(model, xs)).max() <= 1e-5
    save_model(model, tmp_path / "m.npz")
    tuned = load_model(tmp_path / "m.npz")
    train_sequence(tuned.params, xs[:2, :5], np.array([0, 3]), cfg, Optimizer("sgd", 1e-3))
    assert not np.array_equal(tuned.params.W[0], W)


def test_unsupported_op_names_node_and_op(tmp_path):
    W, R, Wout = foreign_weights()
    m = foreign_graph(W, R, Wout)
    relu = helper.make_node("Relu", ["i1"], ["i1r"], name="/act/Relu")
    m.graph.node.insert(5, relu)
    onnx.save(m, str(tmp_path / "relu.onnx"))
    with pytest.raises(EdgetpError, match=r"node '/act/Relu': op Relu is not supported"):
        import_onnx(tmp_path / "relu.onnx")


@pytest.mark.parametrize("where", ["gemm", "add", "add-uniform"])
def test_bias_is_a_clear_error(tmp_path, where):
    W, R, Wout = foreign_weights()
    m = foreign_graph(W, R, Wout)
    b = np.full(16, 0.1, np.float32)
    if where == "gemm":
        m.graph.node[4].input.append("b")
    else:
        b[0] += where == "add"
        m.graph.node[4].output[0] = "i1_nb"
        m.graph.node.insert(5, helper.make_node("Add", ["i1_nb", "b"], ["i1"], name="/fc1/bias"))
    m.graph.initializer.append(numpy_helper.from_array(b, "b"))
    onnx.save(m, str(tmp_path / "net.onnx"))
    with pytest.raises(EdgetpError, match=r"node '.*' \(\w+\): a constant term .* \(a bias\); edgetp has no biases"):
        import_onnx(tmp_path / "net.onnx")


def test_wrong_shapes_are_clear_errors(tmp_path):
    W, R, Wout = foreign_weights()
    onnx.save(foreign_graph(W, R, np.ones((5, 15), np.float32)), str(tmp_path / "shape.onnx"))
    with pytest.raises(EdgetpError, match=r"W1 has shape \(5, 15\), expected \(5, 16\)"):
        import_onnx(tmp_path / "shape.onnx")


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not protobuf")
    with pytest.raises(EdgetpError, match="not a valid ONNX model"):
        import_onnx(bad)
    with pytest.raises(EdgetpError, match="no such file"):
        import_onnx(tmp_path / "none.onnx")
    m = helper.make_model(
        helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"], name="r")],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        )
    )
    onnx.save(m, str(tmp_path / "relu.onnx"))
    with pytest.raises(EdgetpError, match="op Relu is not supported"):
        import_onnx(tmp_path / "relu.onnx")
