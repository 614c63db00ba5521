"""NIR export and import of the inference network (docs/interop.md).

edgetp's discrete step ``v <- alpha*v + W s`` is the forward-Euler step, with time step
``dt``, of NIR's ``tau dv/dt = (v_leak - v) + r I`` when

    tau = dt / (1 - alpha),   r = tau / dt = 1 / (1 - alpha),   v_leak = 0,
    v_threshold = vth,        v_reset = 0

(Euler: ``v <- (1 - dt/tau) v + (dt/tau) r I``). Hidden layers are ``nir.LIF`` fed by a
``nir.Linear`` (W_l); a recurrent layer also has the edge LIF -> ``nir.Linear`` (R_l) ->
the same LIF. The readout is ``nir.LI`` (tau = dt/(1-beta), r = 1/(1-beta)) or, for
beta = 1 (a pure integrator, ``dv/dt = r I``), ``nir.I`` with r = 1/dt. NIR resets to
``v_reset``; edgetp's soft (subtractive) reset has no NIR field, so every LIF carries
``metadata["reset"]`` ("soft"/"hard") and the graph carries ``dt``, the edgetp model
(``edgetp.model``, JSON) and the propagator arrays (``edgetp.S``, ...).

Import accepts Linear / Affine (zero bias), LIF, CubaLIF with tau_syn = dt and w_in = 1
(its current then is this step's input), LI, I, nested NIRGraphs (as snnTorch writes
recurrent layers) and Identity; a gain ``r*dt/tau != 1`` is folded into the weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgetp import safeload
from edgetp.errors import EdgetpError
from edgetp.interop.common import (META_KEY, Found, build_model, carried_arrays, model_meta, recurrent_weights,
                                   tidy, uniform)
from edgetp.model import Model

try:
    import nir
except ImportError:  # pragma: no cover - depends on the environment
    raise EdgetpError("NIR interop needs the optional extra: pip install 'edgetp[interop]'") from None

DT = 1e-4  # snnTorch's convention; any dt > 0 gives the same discrete network


def to_nir(model: Model, dt: float = DT) -> "nir.NIRGraph":
    """The inference network as a NIRGraph (flat: Input, Linear, LIF, ..., LI|I, Output)."""
    if not dt > 0:
        raise EdgetpError(f"dt must be > 0, got {dt}")
    cfg, p = model.cfg, model.params
    full = lambda n, v: np.full(n, v, dtype=np.float64)
    nodes, edges, prev = {"input": nir.Input(input_type=np.array([cfg.n_in]))}, [], "input"
    for l, h in enumerate(cfg.hidden):
        tau = dt / (1.0 - cfg.leak_m)
        nodes[f"W{l}"] = nir.Linear(weight=np.asarray(p.W[l]))
        nodes[f"lif{l}"] = nir.LIF(tau=full(h, tau), r=full(h, tau / dt), v_leak=full(h, 0.0),
                                   v_threshold=full(h, cfg.vth), v_reset=full(h, 0.0), metadata={"reset": cfg.reset})
        edges += [(prev, f"W{l}"), (f"W{l}", f"lif{l}")]
        if cfg.recurrent:
            nodes[f"R{l}"] = nir.Linear(weight=np.asarray(p.R[l]))
            edges += [(f"lif{l}", f"R{l}"), (f"R{l}", f"lif{l}")]
        prev = f"lif{l}"
    o, L = cfg.n_out, cfg.layers
    nodes[f"W{L}"] = nir.Linear(weight=np.asarray(p.W[L]))
    if cfg.leak_out == 1.0:
        nodes["readout"] = nir.I(r=full(o, 1.0 / dt))
    else:
        tau = dt / (1.0 - cfg.leak_out)
        nodes["readout"] = nir.LI(tau=full(o, tau), r=full(o, tau / dt), v_leak=full(o, 0.0))
    nodes["output"] = nir.Output(output_type=np.array([o]))
    edges += [(prev, f"W{L}"), (f"W{L}", "readout"), ("readout", "output")]
    meta = {"dt": float(dt), META_KEY: json.dumps(model_meta(model, dt=dt))}
    meta.update({f"edgetp.{k}": a for k, a in carried_arrays(model).items()})
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def export_nir(model: Model, path, dt: float = DT) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(path), to_nir(model, dt))
    return path


def _flatten(g, pre: str = ""):
    """Nodes and edges with nested graphs inlined (``sub.name``); their Input/Output and
    Identity nodes are dropped by joining the edges through them."""
    nodes, edges, through, ends = {}, [], set(), {}
    for name, node in g.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub, sub_edges, sub_through = _flatten(node, f"{pre}{name}.")
            nodes.update(sub)
            through.update(sub_through)
            edges += sub_edges
            ins = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise EdgetpError(f"subgraph {pre + name!r} must have one Input and one Output")
            ends[pre + name] = (f"{pre}{name}.{ins[0]}", f"{pre}{name}.{outs[0]}")
            through.update(ends[pre + name])
        else:
            nodes[pre + name] = node
            if type(node).__name__ == "Identity":  # not in nir.__all__ (nir 1.0)
                through.add(pre + name)
    for a, b in g.edges:
        a, b = pre + a, pre + b
        edges.append((ends[a][1] if a in ends else a, ends[b][0] if b in ends else b))
    return nodes, edges, through


def _contract(nodes, edges, through):
    for t in through:
        into, out = [a for a, b in edges if b == t], [b for a, b in edges if a == t]
        edges = [e for e in edges if t not in e] + [(a, b) for a in into for b in out]
        nodes.pop(t, None)
    return nodes, edges


def _neuron(name, node, dt):
    """``(alpha, gain, vth or None, reset)`` of a LIF/CubaLIF/LI/I node under Euler with ``dt``."""
    if isinstance(node, nir.I):
        return 1.0, uniform(node.r, f"{name}: r") * dt, None, None
    tau = node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau
    if isinstance(node, nir.CubaLIF) and (not np.allclose(node.tau_syn, dt, rtol=1e-6) or np.any(node.w_in != 1)):
        raise EdgetpError(f"node {name!r} (CubaLIF): only tau_syn = dt ({dt:g}) and w_in = 1 (no synaptic filter) "
                          "map onto edgetp")
    if np.any(np.asarray(node.v_leak) != 0):
        raise EdgetpError(f"node {name!r} ({type(node).__name__}): v_leak must be 0 (edgetp has no resting potential)")
    tau, r = uniform(tau, f"{name}: tau"), uniform(node.r, f"{name}: r")
    if not tau >= dt:
        raise EdgetpError(f"node {name!r}: tau {tau:g} < dt {dt:g} gives a negative leak; import with a smaller dt")
    alpha = tidy(1.0 - dt / tau, np.asarray(node.r).dtype)
    if isinstance(node, nir.LI):
        return alpha, r * dt / tau, None, None
    if np.any(np.asarray(node.v_reset) != 0):
        raise EdgetpError(f"node {name!r} ({type(node).__name__}): v_reset must be 0")
    reset = str(node.metadata.get("reset", "hard")) if isinstance(node.metadata, dict) else "hard"
    return alpha, r * dt / tau, tidy(uniform(node.v_threshold, f"{name}: v_threshold"), np.float64), reset


def _weight(name, node, gain):
    if not isinstance(node, (nir.Linear, nir.Affine)):
        raise EdgetpError(f"node {name!r}: expected a Linear or Affine, found {type(node).__name__}")
    if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
        raise EdgetpError(f"node {name!r} (Affine): non-zero bias; edgetp has no biases")
    w = np.asarray(node.weight)
    return w if abs(gain - 1.0) <= 1e-9 else (w * gain).astype(w.dtype)


def recognise(g: "nir.NIRGraph", dt: float) -> Found:
    """The edgetp network in a NIR graph: Input -> (Linear -> LIF [<-> Linear])+ -> Linear -> LI|I -> Output."""
    nodes, edges = _contract(*_flatten(g))
    for name, node in nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.LIF, nir.CubaLIF, nir.LI, nir.I)):
            raise EdgetpError(f"node {name!r}: {type(node).__name__} is not supported (edgetp reads Input, Output, "
                              "Linear, Affine, LIF, CubaLIF, LI, I, Identity and nested graphs)")
    succ = lambda n: [b for a, b in edges if a == n]
    pred = lambda n: [a for a, b in edges if b == n]
    starts = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    if len(starts) != 1:
        raise EdgetpError(f"the graph must have one Input, found {len(starts)}: {', '.join(starts)}")
    cur, hidden, readout, seen = starts[0], [], None, set(starts)
    while readout is None:
        loops = [b for b in succ(cur) if succ(b) == [cur]] if hidden else []
        fwd = [b for b in succ(cur) if b not in loops]
        if len(fwd) != 1 or len(loops) > 1:
            raise EdgetpError(f"node {cur!r}: expected one feed-forward successor (and at most one recurrent "
                              f"Linear back), found {succ(cur)}")
        w = fwd[0]
        if isinstance(nodes[w], nir.Output):
            raise EdgetpError(f"node {cur!r} ({type(nodes[cur]).__name__}) feeds the Output: edgetp's readout is a "
                              "Linear followed by a non-spiking LI or I")
        if len(pred(w)) != 1 or len(succ(w)) != 1 or succ(w)[0] in seen:
            raise EdgetpError(f"node {w!r}: expected one input edge and one output edge in a chain")
        tgt = succ(w)[0]
        seen.update((w, tgt))
        if isinstance(nodes[tgt], nir.Output):  # Linear -> Output: a readout without memory (beta = 0)
            readout = (0.0, _weight(w, nodes[w], 1.0))
            break
        alpha, gain, vth, reset = _neuron(tgt, nodes[tgt], dt)
        if vth is None:  # LI or I: the readout
            if pred(tgt) != [w] or len(succ(tgt)) != 1 or not isinstance(nodes[succ(tgt)[0]], nir.Output):
                raise EdgetpError(f"node {tgt!r} ({type(nodes[tgt]).__name__}): the readout must go from one "
                                  "Linear straight to the Output")
            readout = (alpha, _weight(w, nodes[w], gain))
            break
        rec = [a for a in pred(tgt) if a != w]
        if len(rec) > 1 or rec and pred(rec[0]) != [tgt]:
            raise EdgetpError(f"node {tgt!r}: inputs {pred(tgt)} are not one feed-forward and one recurrent Linear")
        hidden.append({"name": tgt, "alpha": alpha, "vth": vth, "reset": reset, "W": _weight(w, nodes[w], gain),
                       "R": _weight(rec[0], nodes[rec[0]], gain) if rec else None})
        cur = tgt
    if not hidden:
        raise EdgetpError("no LIF layer between the Input and the readout")
    col = lambda key: [lay[key] for lay in hidden]
    R, notes = recurrent_weights(col("name"), col("W"), col("R"))
    resets = set(col("reset"))
    if len(resets) != 1 or not resets <= {"soft", "hard"}:
        raise EdgetpError(f"LIF metadata 'reset' must be soft or hard, the same in every layer; found {sorted(resets)}")
    return Found(col("W") + [readout[1]], R, uniform(col("alpha"), "membrane leak (tau)"),
                 uniform(col("vth"), "v_threshold"), readout[0], resets.pop(), notes)


def import_nir(path, dt: float | None = None, **opts) -> Model:
    """An edgetp Model from a NIR file; ``dt`` defaults to the graph's ``metadata["dt"]``, else DT."""
    try:
        safeload.check_hdf5(path, "not a readable NIR graph")   # sizes, dtypes and nesting checked before nir reads any data
        g = nir.read(str(path), type_check=False)
    except EdgetpError:
        raise
    except FileNotFoundError:
        raise EdgetpError(f"{path}: no such file") from None
    except Exception as exc:  # h5py OSError, KeyError, nir's ValueError/AssertionError, ...
        raise EdgetpError(f"{path}: not a readable NIR graph ({exc.__class__.__name__}: {str(exc)[:200]})") from None
    try:
        g.infer_types()
        g.check_types()
    except Exception as exc:  # nir raises ValueError/AssertionError/KeyError on shapes that do not fit
        raise EdgetpError(f"{path}: the graph's shapes do not fit ({str(exc)[:200]})") from None
    meta = g.metadata if isinstance(g.metadata, dict) else {}
    with safeload.guarded(path, "not a network edgetp can import"):
        dt = float(dt if dt is not None else meta.get("dt", DT))
        found = recognise(g, dt)
        stored = safeload.parse_json(meta.get(META_KEY, "{}"), f"metadata {META_KEY!r}")
        arrays = {k[len("edgetp."):]: np.asarray(v) for k, v in meta.items()
                  if k.startswith("edgetp.") and k != META_KEY}
        return build_model(found, stored, arrays, Path(path).name, **opts)
