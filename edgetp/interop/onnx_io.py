"""ONNX export and import of the inference network (docs/interop.md).

Export writes one of two graph forms (opset ``OPSET``, dtype = the model's weights):

- ``step`` (default): one time step with explicit state. Inputs ``x`` (batch, N0),
  ``v{l}`` (batch, H_l), ``s{l}`` (recurrent nets only) and ``u`` (batch, O); outputs
  ``<name>_out`` for every state input, in the same order; ``u_out`` is the readout.
  Start from zeros and feed each ``*_out`` back as the next step's input.
- ``scan``: the same step as the body of a ``Scan`` over ``xs`` (batch, T, N0); the
  initial states are inputs as above, the outputs are the final states ``<name>_out``
  and ``us`` (batch, T, O), the readout after every step.

Both compute exactly the float reference's ops in the same order (``MatMul`` with the
transposed weights, ``alpha*v + current``, ``GreaterOrEqual``, reset by ``Where`` (hard)
or ``v - vth*s`` (soft), ``beta*u + W_out s``). The model's metadata and the arrays
inference does not use (``S``, ``S_rec``, ``norm_scale``) travel in ``metadata_props``
(``edgetp.model`` as JSON, the arrays as base64 ``.npy``), never as graph initializers.
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import numpy as np

from edgetp import __version__, safeload
from edgetp.errors import EdgetpError
from edgetp.interop.common import META_KEY, build_model, carried_arrays, model_meta
from edgetp.interop.onnx_graph import Evaluator, Lin, analyse
from edgetp.model import Model

try:
    import onnx
    from onnx import helper, numpy_helper
except ImportError:  # pragma: no cover - depends on the environment
    raise EdgetpError("ONNX interop needs the optional extra: pip install 'edgetp[interop]'") from None

OPSET = 17
FORMS = ("step", "scan")


def state_names(cfg) -> list[str]:
    return (
        [f"v{l}" for l in range(cfg.layers)] + ([f"s{l}" for l in range(cfg.layers)] if cfg.recurrent else []) + ["u"]
    )


def _step_nodes(cfg, x: str, pre: str, elem: int) -> list:
    """One time step: reads ``x`` and ``pre+state``, writes ``pre+state+'_out'`` (type ``elem``)."""
    mk, nodes, inp = helper.make_node, [], x
    for l in range(cfg.layers):
        p = f"{pre}l{l}_"
        nodes.append(mk("MatMul", [inp, f"W{l}T"], [p + "ff"], name=p + "ff"))
        cur = p + "ff"
        if cfg.recurrent:
            nodes += [
                mk("MatMul", [f"{pre}s{l}", f"R{l}T"], [p + "rec"], name=p + "rec"),
                mk("Add", [p + "ff", p + "rec"], [p + "cur"], name=p + "cur"),
            ]
            cur = p + "cur"
        s_out, v_out = f"{pre}s{l}_out" if cfg.recurrent else p + "spikes", f"{pre}v{l}_out"
        nodes += [
            mk("Mul", ["alpha", f"{pre}v{l}"], [p + "leak"], name=p + "leak"),
            mk("Add", [p + "leak", cur], [p + "vpre"], name=p + "vpre"),
            mk("GreaterOrEqual", [p + "vpre", "vth"], [p + "fire"], name=p + "fire"),
            mk("Cast", [p + "fire"], [s_out], name=p + "spikes", to=elem),
        ]
        if cfg.reset == "hard":
            nodes.append(mk("Where", [p + "fire", "zero", p + "vpre"], [v_out], name=p + "reset"))
        else:
            nodes += [
                mk("Mul", [s_out, "vth"], [p + "drop"], name=p + "drop"),
                mk("Sub", [p + "vpre", p + "drop"], [v_out], name=p + "reset"),
            ]
        inp = s_out
    return nodes + [
        mk("MatMul", [inp, f"W{cfg.layers}T"], [pre + "ro_in"], name=pre + "ro_in"),
        mk("Mul", ["beta", pre + "u"], [pre + "ro_leak"], name=pre + "ro_leak"),
        mk("Add", [pre + "ro_leak", pre + "ro_in"], [pre + "u_out"], name=pre + "readout"),
    ]


_DT = {np.dtype(np.float32): onnx.TensorProto.FLOAT, np.dtype(np.float64): onnx.TensorProto.DOUBLE}


def _encode(a: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def to_onnx(model: Model, form: str = "step") -> "onnx.ModelProto":
    """The model's inference network as an ONNX ModelProto (checked with onnx.checker)."""
    if form not in FORMS:
        raise EdgetpError(f"ONNX form must be one of {FORMS}, got {form!r}")
    cfg, p = model.cfg, model.params
    dtype = np.result_type(*p.W)
    if dtype not in _DT:
        raise EdgetpError(f"cannot export {dtype} weights to ONNX (float32/float64 only)")
    t, info = _DT[dtype], helper.make_tensor_value_info
    init = [numpy_helper.from_array(np.ascontiguousarray(w.T, dtype), f"W{i}T") for i, w in enumerate(p.W)]
    init += [numpy_helper.from_array(np.ascontiguousarray(r.T, dtype), f"R{i}T") for i, r in enumerate(p.R or [])]
    init += [
        numpy_helper.from_array(np.array(v, dtype), n)
        for n, v in (("alpha", cfg.leak_m), ("vth", cfg.vth), ("beta", cfg.leak_out), ("zero", 0.0))
    ]
    width = dict(zip(state_names(cfg), [*cfg.hidden, *(cfg.hidden if cfg.recurrent else ()), cfg.n_out]))
    states = [info(n, t, ["batch", w]) for n, w in width.items()]
    finals = [info(n + "_out", t, ["batch", w]) for n, w in width.items()]
    if form == "step":
        nodes, inputs, outputs = _step_nodes(cfg, "x", "", t), [info("x", t, ["batch", cfg.n_in])] + states, finals
    else:
        body = helper.make_graph(
            _step_nodes(cfg, "b_x", "b_", t) + [helper.make_node("Identity", ["b_u_out"], ["b_u_t"], name="b_u_t")],
            "step",
            [info("b_" + n, t, ["batch", w]) for n, w in width.items()] + [info("b_x", t, ["batch", cfg.n_in])],
            [info(f"b_{n}_out", t, ["batch", w]) for n, w in width.items()] + [info("b_u_t", t, ["batch", cfg.n_out])],
        )
        nodes = [
            helper.make_node(
                "Scan",
                list(width) + ["xs"],
                [n + "_out" for n in width] + ["us"],
                name="scan",
                body=body,
                num_scan_inputs=1,
                scan_input_axes=[1],
                scan_output_axes=[1],
            )
        ]
        inputs = [info("xs", t, ["batch", "T", cfg.n_in])] + states
        outputs = finals + [info("us", t, ["batch", "T", cfg.n_out])]
    graph = helper.make_graph(
        nodes, f"edgetp_{cfg.net_string()}_{form}", inputs, outputs, init, doc_string=__doc__.split("\n\n")[1]
    )
    m = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgetp", producer_version=__version__
    )
    meta = {META_KEY: json.dumps(model_meta(model, form=form, opset=OPSET))}
    meta.update({f"edgetp.{k}": _encode(a) for k, a in carried_arrays(model).items()})
    helper.set_model_props(m, meta)
    onnx.checker.check_model(m, full_check=True)
    return m


def export_onnx(model: Model, path, form: str = "step") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(to_onnx(model, form), str(path))
    return path


def _attrs(node) -> dict:
    out = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    out = {k: numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v for k, v in out.items()}
    if node.op_type == "Constant":
        keys = ("value", "value_float", "value_floats", "value_int", "value_ints")
        vals = [np.asarray(out[k]) for k in keys if k in out]
        if not vals:
            raise EdgetpError("Constant without a numeric value")
        out["value"] = vals[0]
    if node.op_type == "Cast":
        out["to"] = helper.tensor_dtype_to_np_dtype(out["to"])
    return out


def _tensors(m: "onnx.ModelProto"):
    """Every TensorProto of the model: initializers and node attributes, subgraphs included (no recursion)."""
    graphs = [m.graph]
    while graphs:
        g = graphs.pop()
        yield from g.initializer
        for node in g.node:
            for a in node.attribute:
                yield from ([a.t] if a.HasField("t") else []) + list(a.tensors)
                graphs += ([a.g] if a.HasField("g") else []) + list(a.graphs)


def check_tensors(m: "onnx.ModelProto", limit: int) -> None:
    """Refuse external data, and tensors whose declared shape exceeds the load limit or
    disagrees with the data they hold, before numpy_helper allocates anything."""
    total = 0
    for t in _tensors(m):
        name = t.name or "(unnamed)"
        if t.data_location == onnx.TensorProto.EXTERNAL or t.external_data:
            raise EdgetpError(
                f"tensor {name!r} keeps its data in an external file; only self-contained models are read"
            )
        if any(d < 0 for d in t.dims):
            raise EdgetpError(f"tensor {name!r} has negative dimensions {list(t.dims)}")
        n = math.prod(t.dims)
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type))
        if t.HasField("raw_data"):
            held = len(t.raw_data) / dtype.itemsize
        else:
            held = len(getattr(t, helper.tensor_dtype_to_field(t.data_type))) / (2 if dtype.kind == "c" else 1)
        if held != n:
            raise EdgetpError(f"tensor {name!r} declares {n} elements ({list(t.dims)}) but holds {held:g}")
        total += n * dtype.itemsize
        if total > limit:
            raise EdgetpError(
                f"its tensors declare more than the load limit ({limit} bytes; {safeload.LIMIT_ENV} raises it)"
            )


def read_onnx(path) -> "onnx.ModelProto":
    """Read an ONNX file, bounded: its size and every tensor's declared size under the load limit
    (edgetp.safeload), no external data; any decoding error is one EdgetpError."""
    limit = safeload.load_limit()
    try:
        size = Path(path).stat().st_size
        if size > limit:
            raise EdgetpError(f"{size} bytes, more than the load limit ({limit} bytes; {safeload.LIMIT_ENV} raises it)")
        m = onnx.load(str(path), load_external_data=False)
        check_tensors(m, limit)
        onnx.checker.check_model(m)
    except FileNotFoundError:
        raise EdgetpError(f"{path}: no such file") from None
    except EdgetpError as exc:
        raise EdgetpError(f"{path}: not a valid ONNX model ({exc})") from None
    except Exception as exc:  # protobuf DecodeError, ValidationError, RecursionError, MemoryError, ...
        why = f"{exc.__class__.__name__}: {' '.join(str(exc).split())[:200]}"
        raise EdgetpError(f"{path}: not a valid ONNX model ({why})") from None
    return m


def _evaluate(graph, consts: dict, names: list, x: str, outputs: list):
    ev = Evaluator({**consts, **{n: Lin({("in", n): 1.0}) for n in names}}).run(graph, _attrs)
    return analyse(ev, x, outputs)


def recognise(m: "onnx.ModelProto"):
    """``(found, io, form)`` for a step graph or a graph that is one Scan over such a step.

    io = {"x": data input, "readout": output with u, "states": {state input: its output}}.
    """
    g = m.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    inputs = [i.name for i in g.input if i.name not in consts]
    scans = [n for n in g.node if n.op_type == "Scan"]
    if not scans:
        if not inputs:
            raise EdgetpError("the graph has no inputs")
        return (*_evaluate(g, consts, inputs, inputs[0], [o.name for o in g.output]), "step")
    scan = scans[0]
    at = {a.name: helper.get_attribute_value(a) for a in scan.attribute}
    if (
        len(g.node) != 1
        or at.get("num_scan_inputs") != 1
        or list(at.get("scan_input_axes", [0])) != [1]
        or list(at.get("scan_output_axes", [0])) != [1]
    ):
        raise EdgetpError(
            f"node {scan.name!r} (Scan): only one Scan over one input (batch, T, N) along axis 1 is supported"
        )
    body_in, body_out = [i.name for i in at["body"].input], [o.name for o in at["body"].output]
    n = len(body_in) - 1
    found, io_ = _evaluate(at["body"], consts, body_in, body_in[-1], body_out)
    if len(body_out) <= n or body_out[n] not in io_["readouts"]:
        raise EdgetpError(f"node {scan.name!r} (Scan): the first scan output must be the readout")
    outer_in, outer_out = dict(zip(body_in, scan.input)), dict(zip(body_out, scan.output))
    return (
        found,
        {
            "x": scan.input[-1],
            "readout": scan.output[n],
            "states": {outer_in[i]: outer_out[o] for i, o in io_["states"].items()},
        },
        "scan",
    )


def import_onnx(path, **opts) -> Model:
    """An edgetp Model from an ONNX file (edgetp's own export or any graph of that shape).

    ``opts`` go to :func:`edgetp.interop.common.build_model` (labels, seed, leak_t, gamma).
    """
    m = read_onnx(path)
    with safeload.guarded(path, "not a network edgetp can import"):
        found, _, _ = recognise(m)
    props = {p.key: p.value for p in m.metadata_props}
    with safeload.guarded(path, "corrupt edgetp metadata"):
        meta = safeload.parse_json(props.get(META_KEY, "{}"), f"metadata {META_KEY!r}")
        arrays = {
            k[len("edgetp.") :]: safeload.npy_from_bytes(base64.b64decode(v, validate=True), f"metadata {k!r}")
            for k, v in props.items()
            if k.startswith("edgetp.") and k != META_KEY
        }
    with safeload.guarded(path, "not a network edgetp can import"):
        return build_model(found, meta, arrays, Path(path).name, **opts)


def onnx_readout(path_or_model, xs: np.ndarray) -> np.ndarray:
    """Run an ONNX file over ``xs`` (B, T, N0) from zero state with onnxruntime; u per step (B, T, O)."""
    import onnxruntime as ort

    m = path_or_model if isinstance(path_or_model, onnx.ModelProto) else read_onnx(path_or_model)
    _, io_, form = recognise(m)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    shapes = {i.name: i.type.tensor_type.shape.dim[-1].dim_value for i in m.graph.input}
    dtype = helper.tensor_dtype_to_np_dtype(m.graph.input[0].type.tensor_type.elem_type)
    xs = np.asarray(xs, dtype)
    feed = {n: np.zeros((xs.shape[0], shapes[n]), dtype) for n in io_["states"]}
    if form == "scan":
        return sess.run([io_["readout"]], {**feed, io_["x"]: xs})[0]
    us = []
    for t in range(xs.shape[1]):
        res = dict(zip([o.name for o in m.graph.output], sess.run(None, {**feed, io_["x"]: xs[:, t]})))
        feed = {i: res[o] for i, o in io_["states"].items()}
        us.append(res[io_["readout"]])
    return np.stack(us, axis=1)
