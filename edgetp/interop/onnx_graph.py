"""Recognise an edgetp-shaped spiking network in one time step of an ONNX graph.

The graph is evaluated symbolically: constants fold with NumPy, every other tensor is a
linear form ``Lin`` = {source: coefficient} over the graph's inputs and the spikes made
inside the graph (``y = sum_src src @ M`` for a matrix coefficient, ``c * src`` for a
scalar). A comparison of a form with a constant threshold makes a spike; a reset
(``Where(s, 0, v)``, ``v * (1 - s)``, ``v - s * vth``) is recognised from the form it
leaves. Which op spellings are understood is listed in ``SUPPORTED``; any other op is an
error naming the node. ``analyse`` then reads the layers, the readout and the state
pairs (membrane input -> output) off the forms of the graph's outputs.
"""

from __future__ import annotations

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.interop.common import Found, recurrent_weights, tidy, uniform

SUPPORTED = (
    "Identity",
    "Dropout",
    "Constant",
    "Cast",
    "Transpose",
    "Reshape",
    "Neg",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "MatMul",
    "Gemm",
    "GreaterOrEqual",
    "Greater",
    "LessOrEqual",
    "Less",
    "Not",
    "Where",
)
ONE = ("one",)


class Lin(dict):
    """A linear form; keys ("in", name) | ("spk", k) | ("rst", k) | ("prod", k) | ONE."""

    def scaled(self, c):
        return Lin({k: v * c for k, v in self.items()})

    def plus(self, other):
        out = Lin(self)
        for k, v in other.items():
            out[k] = out[k] + v if k in out else v
        cancel = lambda k: k == ONE or (k in self and k in other)  # a zero weight matrix stays a term
        return Lin({k: v for k, v in out.items() if np.any(v != 0) or not cancel(k)})

    def same(self, other):
        def close(a, b):
            shaped = np.shape(a) == np.shape(b) or np.size(a) == np.size(b) == 1
            return shaped and np.allclose(a, b, rtol=1e-6, atol=0)

        return self.keys() == other.keys() and all(close(self[k], other[k]) for k in self)


def _lin(v):
    if isinstance(v, Lin):
        return v
    if isinstance(v, np.ndarray):
        return Lin({ONE: v}).plus(Lin())
    raise EdgetpError("a comparison result is used as a number without Cast")


def _scalar(c, what):
    c = np.asarray(c)
    if c.size == 0 or not np.all(c == c.flat[0]):
        raise EdgetpError(f"{what} must be one value for all neurons")
    return c.dtype.type(c.flat[0])


BIAS = "a constant term added to a current or membrane (a bias); edgetp has no biases"


def _no_bias(*forms):
    if any(isinstance(f, Lin) and ONE in f for f in forms):
        raise EdgetpError(BIAS)


class Evaluator:
    """Walks the nodes of one graph; ``spikes[k] = (pre-activation Lin, vth, node name, strict >)``."""

    def __init__(self, env: dict):
        self.env, self.spikes = dict(env), []

    def run(self, graph, attrs):
        for node in graph.node:
            if node.op_type not in SUPPORTED:
                raise EdgetpError(
                    f"node {node.name or node.output[0]!r}: op {node.op_type} is not supported "
                    f"(edgetp reads {', '.join(SUPPORTED)} and a top-level Scan)"
                )
            missing = [i for i in node.input if i and i not in self.env]
            if missing:
                raise EdgetpError(
                    f"node {node.name or node.output[0]!r}: input {missing[0]!r} is not computed by "
                    "the graph (or is a second output, which edgetp does not read)"
                )
            args = [self.env[i] if i else None for i in node.input]
            try:
                self.env[node.output[0]] = self.op(node.op_type, args, attrs(node), node.name or node.output[0])
            except EdgetpError as exc:
                raise EdgetpError(f"node {node.name or node.output[0]!r} ({node.op_type}): {exc}") from None
            except (ValueError, TypeError, IndexError) as exc:
                where = f"node {node.name or node.output[0]!r} ({node.op_type})"
                raise EdgetpError(f"{where}: wrong shapes ({exc})") from None
        return self

    def op(self, op, a, at, name):
        const = all(isinstance(x, np.ndarray) for x in a if x is not None)
        if op not in ("Identity", "Dropout", "Cast", "Not", "Where") and any(isinstance(x, tuple) for x in a):
            raise EdgetpError("a comparison result is used as a number without Cast")
        if op in ("Identity", "Dropout"):
            return a[0]
        if op == "Constant":
            return at["value"]
        if op == "Cast":
            if isinstance(a[0], tuple):  # a spike (bool) becomes 0/1
                _, k, neg = a[0]
                return Lin({ONE: 1.0, ("spk", k): -1.0}) if neg else Lin({("spk", k): 1.0})
            return a[0].astype(at["to"]) if const else a[0]
        if op in ("Transpose", "Reshape") and const:
            return np.transpose(a[0], at.get("perm")) if op == "Transpose" else a[0].reshape(a[1])
        if const and op in ("Neg", "Add", "Sub", "Mul", "Div", "MatMul"):
            f = {
                "Neg": np.negative,
                "Add": np.add,
                "Sub": np.subtract,
                "Mul": np.multiply,
                "Div": np.divide,
                "MatMul": np.matmul,
            }[op]
            return f(*a)
        if op == "Neg":
            return a[0].scaled(-1.0)
        if op in ("Add", "Sub"):
            return _lin(a[0]).plus(_lin(a[1]).scaled(1.0 if op == "Add" else -1.0))
        if op == "Div" and isinstance(a[1], np.ndarray):
            return a[0].scaled(1.0 / _scalar(a[1], "divisor"))
        if op == "Mul":
            x, y = a
            if isinstance(y, np.ndarray) or isinstance(x, np.ndarray):
                x, y = (x, y) if isinstance(y, np.ndarray) else (y, x)
                return x.scaled(_scalar(y, "factor"))
            return self.product(x, y)
        if op in ("MatMul", "Gemm") and isinstance(a[0], Lin) and isinstance(a[1], np.ndarray):
            m = a[1].T if at.get("transB") else a[1]
            _no_bias(a[0], _lin(a[2]) if len(a) > 2 and a[2] is not None else None)
            if at.get("transA") or m.ndim != 2:
                raise EdgetpError("only x @ M with a constant 2-D M (or Gemm with transA=0) is supported")
            return Lin({k: (v @ m if np.ndim(v) else v * m) for k, v in a[0].items()}).scaled(at.get("alpha", 1.0))
        if op in ("GreaterOrEqual", "Greater", "LessOrEqual", "Less"):
            pre, th = (a[0], a[1]) if op.startswith("Greater") else (a[1], a[0])
            if not (isinstance(pre, Lin) and isinstance(th, np.ndarray)):
                raise EdgetpError("a spike must compare a membrane with a constant threshold")
            vth = _scalar(th, "threshold")
            if ONE in pre:  # (v - vth) >= 0; a per-neuron constant is a bias
                c = np.asarray(pre[ONE])
                if not np.all(c == c.flat[0]):
                    raise EdgetpError(BIAS)
                vth, pre = vth - c.dtype.type(c.flat[0]), Lin({k: v for k, v in pre.items() if k != ONE})
            self.spikes.append((pre, float(vth), name, op in ("Greater", "Less")))
            return ("bool", len(self.spikes) - 1, False)
        if op == "Not" and isinstance(a[0], tuple):
            return (a[0][0], a[0][1], not a[0][2])
        if op == "Where" and isinstance(a[0], tuple):
            _, k, neg = a[0]
            yes, no = (_lin(a[2]), _lin(a[1])) if neg else (_lin(a[1]), _lin(a[2]))
            d = yes.plus(no.scaled(-1.0))
            if not d:
                return no
            if d.keys() == {ONE}:  # Where(s, v + c, v) = v + c*s
                return no.plus(Lin({("spk", k): float(_scalar(d.get(ONE, 0.0), "reset step"))}))
            if not yes and no.same(self.spikes[k][0]):
                return Lin({("rst", k): 1.0})
            _no_bias(yes, no)
        kinds = {Lin: "signal", np.ndarray: "constant", tuple: "comparison"}
        raise EdgetpError(
            "this use of the op is not supported (operands: "
            + ", ".join(kinds.get(type(x), "?") for x in a if x is not None)
            + ")"
        )

    def product(self, x, y):
        """v * (1 - s) is a hard reset; v * s is kept so that v - v*s is one too."""
        for p, q in ((x, y), (y, x)):
            for k, (pre, *_rest) in enumerate(self.spikes):
                if p.same(pre) and q.same(Lin({ONE: 1.0, ("spk", k): -1.0})):
                    return Lin({("rst", k): 1.0})
                if p.same(pre) and q.same(Lin({("spk", k): 1.0})):
                    return Lin({("prod", k): 1.0})
        _no_bias(*(f for f in (x, y) if not any(k[0] == "spk" for k in f)))  # (1 - s) has a constant, fine
        raise EdgetpError("product of two signals that is not a reset v*(1-s)")

    def reset_of(self, form: Lin):
        """("hard"|"soft", k) when ``form`` is the membrane of spike k after its reset."""
        for k, (pre, vth, *_rest) in enumerate(self.spikes):
            if form.same(Lin({("rst", k): 1.0})) or form.same(pre.plus(Lin({("prod", k): -1.0}))):
                return "hard", k
            rest = form.plus(pre.scaled(-1.0))
            if rest.keys() == {("spk", k)} and np.isclose(rest[("spk", k)], -vth, rtol=1e-6):
                return "soft", k
        return None


def analyse(ev: Evaluator, x: str, outputs: list[str]) -> tuple[Found, dict]:
    """Layers, readout and state pairs of an evaluated step graph with data input ``x``.

    Returns ``(found, io)``, io = {"x", "readout", "readouts" (all outputs holding u), "states": {input: output}}.
    """
    layers, pairs = {}, {}
    for k, (pre, vth, name, _strict) in enumerate(ev.spikes):
        lay = {"name": name, "vth": vth, "alpha": 0.0, "v": None, "rec": None, "src": None, "W": None, "R": None}
        for key, c in pre.items():
            if key[0] == "in" and np.ndim(c) == 0 and key[1] != x:
                lay["alpha"], lay["v"] = float(c), key[1]
            elif key in (("in", x),) or key[0] == "spk":
                if lay["src"] is not None:
                    raise EdgetpError(f"spike node {name!r}: more than one feed-forward input")
                lay["src"], lay["W"] = (-1 if key[0] == "in" else key[1]), np.asarray(c).T
            elif key[0] == "in":
                lay["rec"], lay["R"] = key[1], np.asarray(c).T
            else:
                raise EdgetpError(f"spike node {name!r}: its membrane has a bias or an unsupported term {key}")
        if lay["W"] is None or lay["W"].ndim != 2:
            raise EdgetpError(f"spike node {name!r}: no weight matrix feeds this layer")
        layers[k] = lay
    order, src = [], -1
    while nxt := [k for k, lay in layers.items() if lay["src"] == src]:
        if len(nxt) > 1:
            raise EdgetpError("the network branches: " + ", ".join(layers[k]["name"] for k in nxt))
        order.append(src := nxt[0])
    if not order or len(order) != len(layers):
        raise EdgetpError(
            "no chain of spiking layers from the input"
            if not order
            else "spiking layers not on the chain from the input: "
            + ", ".join(lay["name"] for k, lay in layers.items() if k not in order)
        )
    readout, resets, forms = None, set(), {o: ev.env[o] for o in outputs}
    for o, f in forms.items():
        if not isinstance(f, Lin):
            raise EdgetpError(f"output {o!r} is not a number tensor")
        if ONE in f:
            raise EdgetpError(f"output {o!r}: {BIAS}")
        if ("spk", order[-1]) in f and np.ndim(f[("spk", order[-1])]) == 2:
            if any(k[0] != "in" and k != ("spk", order[-1]) for k in f) or readout and not f.same(forms[readout[0]]):
                raise EdgetpError(f"output {o!r}: not a leaky-integrator readout of the last layer")
            readout = (readout or []) + [o]
        elif (r := ev.reset_of(f)) is not None:
            resets.add(r[0])
            pairs.setdefault(layers[r[1]]["v"], o)
        elif len(f) == 1 and next(iter(f))[0] == "spk" and f[next(iter(f))] == 1.0:
            pairs.setdefault(layers[next(iter(f))[1]]["rec"], o)
        else:
            raise EdgetpError(f"output {o!r} is neither a membrane, spikes, nor the readout")
    if readout is None:
        raise EdgetpError("no output is a readout (W_out @ spikes of the last layer)")
    beta = [(k[1], c) for k, c in forms[readout[0]].items() if k[0] == "in"]
    used = {x} | {lay[s] for lay in layers.values() for s in ("v", "rec")}
    if len(beta) > 1 or any(np.ndim(c) or name in used for name, c in beta):
        raise EdgetpError(f"readout {readout[0]!r} must be beta*u + W_out @ s (u its own state input)")
    beta = [(name, float(c)) for name, c in beta]
    for k in order:
        lay = layers[k]
        for state in (lay["v"], lay["rec"]):
            if state is not None and state not in pairs:
                raise EdgetpError(f"layer of spike node {lay['name']!r}: no output carries the state input {state!r}")
    if beta:
        pairs[beta[0][0]] = readout[0]
    if len(resets) > 1:
        raise EdgetpError("layers mix soft and hard resets")
    lays = [layers[k] for k in order]
    R, notes = recurrent_weights([lay["name"] for lay in lays], [lay["W"] for lay in lays], [lay["R"] for lay in lays])
    notes += [
        f"spike node {ev.spikes[k][2]!r} fires at v > vth, edgetp at v >= vth (equal only at v == vth)"
        for k in order
        if ev.spikes[k][3]
    ]
    dt = lays[0]["W"].dtype
    found = Found(
        [lay["W"] for lay in lays] + [np.asarray(forms[readout[0]][("spk", order[-1])]).T],
        R,
        tidy(uniform([lay["alpha"] for lay in lays], "membrane leak"), dt),
        tidy(uniform([lay["vth"] for lay in lays], "threshold"), dt),
        tidy(beta[0][1] if beta else 0.0, dt),
        resets.pop() if resets else "hard",
        notes,
    )
    return found, {"x": x, "readout": readout[0], "readouts": readout, "states": {i: o for i, o in pairs.items() if i}}
