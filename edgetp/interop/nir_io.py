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

Two dialects (``DIALECTS``) write that same discrete network. ``"plain"``: the mapping above
(LIF, LI|I; the graph's Output is the readout). ``"torch"`` (default): what Norse
(``norse.torch.from_nir``) and snnTorch (``snntorch.import_nir.import_from_nir``) run as
edgetp does (docs/interop.md, "NIR in Norse and snnTorch"): every neuron is a CubaLIF with
``tau_syn = dt``, ``w_in = 1`` (Euler: the current is this step's input, no synaptic filter)
and ``r = tau_mem/dt`` (both honour r there; Norse's LIF ignores it); a recurrent Linear is
followed by an identity Linear (snnTorch 1.0 rewires a two-node LIF <-> Linear loop as
``W_rec(input + s)``); the readout is a CubaLIF that never fires (``v_threshold = NEVER``)
whose membrane is the readout, because neither maps LI or I (beta = 1: ``tau_mem = dt *
2**60``, for which ``1 - dt/tau`` is 1.0 in float64).

Import accepts Linear / Affine (zero bias), LIF, CubaLIF with tau_syn = dt and w_in = 1
(its current then is this step's input), LI, I, nested NIRGraphs (as snnTorch writes
recurrent layers) and Identity; a gain ``r*dt/tau != 1`` is folded into the weights; a
recurrent loop may be a chain of Linears (their product); a LIF/CubaLIF with
``v_threshold >= NEVER`` straight into the Output is a non-spiking readout.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from edgetp import safeload
from edgetp.errors import EdgetpError
from edgetp.interop.common import (
    META_KEY,
    Found,
    build_model,
    carried_arrays,
    model_meta,
    recurrent_weights,
    tidy,
    uniform,
)
from edgetp.model import Model

try:
    import nir
except ImportError:  # pragma: no cover - depends on the environment
    raise EdgetpError("NIR interop needs the optional extra: pip install 'edgetp[interop]'") from None

DT = 1e-4  # snnTorch's convention; any dt > 0 gives the same discrete network
DIALECTS = ("torch", "plain")  # see the module docstring; "torch" is the default
NEVER = float(np.finfo(np.float32).max)  # a threshold no finite float32 membrane crosses: a neuron that never fires
INTEGRATOR_TAU = 2.0**60  # tau_mem / dt of a beta = 1 readout: 1 - dt/tau rounds to 1.0 in float64
READOUT = "readout"  # node name of the readout (its Output in "plain", its membrane in "torch")


def dialect_caveats(model: Model, dialect: str) -> list[tuple[str, str]]:
    """``(level, text)``: what a consumer of the ``dialect`` graph must know or cannot run exactly
    ("warning": it runs a different network); printed by ``edgetp export``."""
    if dialect == "plain":
        return (
            [
                (
                    "note",
                    "NIR has no subtractive reset; the LIF nodes carry metadata reset='soft', which tools other "
                    "than edgetp may ignore (they then simulate a reset to 0)",
                )
            ]
            if model.cfg.reset == "soft"
            else []
        )
    notes = [
        (
            "note",
            f"the readout is the membrane of node {READOUT!r} (a CubaLIF that never fires; the graph's "
            "Output carries its spikes, always 0); Norse: from_nir(graph, dt=graph.metadata['dt'])",
        )
    ]
    if model.cfg.reset == "soft":
        notes.append(
            (
                "warning",
                "soft reset: snnTorch's importer always resets to zero, so snnTorch runs a "
                "different (hard-reset) network; Norse runs it only with from_nir(..., reset_method="
                "norse.torch.functional.reset.reset_subtract); the CubaLIF nodes carry metadata reset='soft'",
            )
        )
    return notes


def _tau(leak: float, dt: float) -> float:
    """The membrane time constant whose Euler step with ``dt`` leaks by ``leak`` (``1 - dt/tau``);
    ``leak = 1`` (no leak): ``dt * INTEGRATOR_TAU``, for which ``1 - dt/tau`` is 1.0 in float64."""
    return dt * INTEGRATOR_TAU if leak == 1.0 else dt / (1.0 - leak)


def _cuba(n: int, tau: float, dt: float, vth: float, meta: dict) -> "nir.CubaLIF":
    """A CubaLIF that is edgetp's LIF under Euler with ``dt``: tau_syn = dt, w_in = 1 (I = this
    step's input), r = tau/dt (gain r*dt/tau = 1), v_leak = v_reset = 0."""
    full = lambda v: np.full(n, v, dtype=np.float64)
    return nir.CubaLIF(
        tau_syn=full(dt),
        tau_mem=full(tau),
        r=full(tau / dt),
        v_leak=full(0.0),
        v_threshold=full(vth),
        v_reset=full(0.0),
        w_in=full(1.0),
        metadata=meta,
    )


def to_nir(model: Model, dt: float = DT, dialect: str = "torch") -> "nir.NIRGraph":
    """The inference network as a NIRGraph (flat: Input, Linear, LIF|CubaLIF, ..., readout, Output)."""
    if not dt > 0:
        raise EdgetpError(f"dt must be > 0, got {dt}")
    if dialect not in DIALECTS:
        raise EdgetpError(f"NIR dialect {dialect!r}: expected one of {', '.join(DIALECTS)}")
    if dialect == "torch":
        return _to_nir_torch(model, dt)
    cfg, p = model.cfg, model.params
    full = lambda n, v: np.full(n, v, dtype=np.float64)
    nodes, edges, prev = {"input": nir.Input(input_type=np.array([cfg.n_in]))}, [], "input"
    for l, h in enumerate(cfg.hidden):
        tau = _tau(cfg.leak_m, dt)
        nodes[f"W{l}"] = nir.Linear(weight=np.asarray(p.W[l]))
        nodes[f"lif{l}"] = nir.LIF(
            tau=full(h, tau),
            r=full(h, tau / dt),
            v_leak=full(h, 0.0),
            v_threshold=full(h, cfg.vth),
            v_reset=full(h, 0.0),
            metadata={"reset": cfg.reset},
        )
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
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_graph_meta(model, dt, "plain"))


def _to_nir_torch(model: Model, dt: float) -> "nir.NIRGraph":
    cfg, p = model.cfg, model.params
    nodes, edges, prev = {"input": nir.Input(input_type=np.array([cfg.n_in]))}, [], "input"
    for l, h in enumerate(cfg.hidden):
        nodes[f"W{l}"] = nir.Linear(weight=np.asarray(p.W[l]))
        nodes[f"lif{l}"] = _cuba(h, _tau(cfg.leak_m, dt), dt, cfg.vth, {"reset": cfg.reset})
        edges += [(prev, f"W{l}"), (f"W{l}", f"lif{l}")]
        if cfg.recurrent:
            R = np.asarray(p.R[l])
            nodes[f"R{l}"] = nir.Linear(weight=R)
            nodes[f"R{l}_identity"] = nir.Linear(weight=np.eye(h, dtype=R.dtype))
            edges += [(f"lif{l}", f"R{l}"), (f"R{l}", f"R{l}_identity"), (f"R{l}_identity", f"lif{l}")]
        prev = f"lif{l}"
    o, L = cfg.n_out, cfg.layers
    nodes[f"W{L}"] = nir.Linear(weight=np.asarray(p.W[L]))
    nodes[READOUT] = _cuba(o, _tau(cfg.leak_out, dt), dt, NEVER, {"role": "readout: the membrane is u; never fires"})
    nodes["output"] = nir.Output(output_type=np.array([o]))
    edges += [(prev, f"W{L}"), (f"W{L}", READOUT), (READOUT, "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_graph_meta(model, dt, "torch"))


def _graph_meta(model: Model, dt: float, dialect: str) -> dict:
    meta = {"dt": float(dt), "edgetp.nir_dialect": dialect, META_KEY: json.dumps(model_meta(model, dt=dt))}
    meta.update({f"edgetp.{k}": a for k, a in carried_arrays(model).items()})
    return meta


class NIRDialectWarning(UserWarning):
    """A consumer of the written dialect runs a different network (``dialect_caveats``)."""


def export_nir(model: Model, path, dt: float = DT, dialect: str = "torch") -> Path:
    """Write ``to_nir(model, dt, dialect)``; warns (NIRDialectWarning) what a consumer cannot run exactly."""
    path = Path(path)
    graph = to_nir(model, dt, dialect)
    for level, text in dialect_caveats(model, dialect):
        if level == "warning":
            warnings.warn(f"{path.name}: {text}", NIRDialectWarning, stacklevel=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(path), graph)
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
    """``(alpha, gain, vth or None, reset)`` of a LIF/CubaLIF/LI/I node under Euler with ``dt``.
    A gain within a few roundings of 1 in the precision of ``r`` (a float32 ``r = tau/dt``, as
    snnTorch writes) is 1."""
    alpha, gain, vth, reset = _neuron_raw(name, node, dt)
    r = np.asarray(node.r)
    eps = np.finfo(r.dtype).eps if np.issubdtype(r.dtype, np.floating) else 0.0
    return alpha, 1.0 if abs(gain - 1.0) <= 8 * eps else gain, vth, reset


def _neuron_raw(name, node, dt):
    if isinstance(node, nir.I):
        return 1.0, uniform(node.r, f"{name}: r") * dt, None, None
    tau = node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau
    if isinstance(node, nir.CubaLIF) and (not np.allclose(node.tau_syn, dt, rtol=1e-6) or np.any(node.w_in != 1)):
        raise EdgetpError(
            f"node {name!r} (CubaLIF): only tau_syn = dt ({dt:g}) and w_in = 1 (no synaptic filter) map onto edgetp"
        )
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


def _chain_weight(names, nodes, gain):
    """The weight of a chain of Linears ``names[0] -> names[1] -> ...`` (their product; an
    identity matrix in the chain, as the "torch" dialect writes, is skipped), times ``gain``."""
    ws = [_weight(n, nodes[n], 1.0) for n in names]
    eye = lambda w: w.ndim == 2 and w.shape[0] == w.shape[1] and np.array_equal(w, np.eye(w.shape[0]))
    ws = [w for w in ws if not eye(w)] or ws[:1]
    w = ws[0]
    for nxt in ws[1:]:
        w = nxt @ w
    return w if abs(gain - 1.0) <= 1e-9 else (w * gain).astype(w.dtype)


def recognise(g: "nir.NIRGraph", dt: float) -> Found:
    """The edgetp network in a NIR graph: Input -> (Linear -> LIF|CubaLIF [<-> Linear(s)])+ -> Linear ->
    LI|I|never-firing LIF/CubaLIF -> Output."""
    nodes, edges = _contract(*_flatten(g))
    for name, node in nodes.items():
        if not isinstance(node, (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.LIF, nir.CubaLIF, nir.LI, nir.I)):
            raise EdgetpError(
                f"node {name!r}: {type(node).__name__} is not supported (edgetp reads Input, Output, "
                "Linear, Affine, LIF, CubaLIF, LI, I, Identity and nested graphs)"
            )
    succ = lambda n: [b for a, b in edges if a == n]
    pred = lambda n: [a for a, b in edges if b == n]
    starts = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    if len(starts) != 1:
        raise EdgetpError(f"the graph must have one Input, found {len(starts)}: {', '.join(starts)}")

    def loop(start, n):  # the chain of Linears n -> ... -> start that closes a recurrent loop of start, else None
        chain = [n]
        while isinstance(nodes[chain[-1]], (nir.Linear, nir.Affine)) and len(chain) <= len(nodes):
            if len(pred(chain[-1])) != 1 or len(succ(chain[-1])) != 1:
                return None
            if succ(chain[-1])[0] == start:
                return chain
            chain.append(succ(chain[-1])[0])
        return None

    cur, hidden, readout, seen = starts[0], [], None, set(starts)
    while readout is None:
        loops = [b for b in succ(cur) if loop(cur, b)] if hidden else []
        fwd = [b for b in succ(cur) if b not in loops]
        if len(fwd) != 1 or len(loops) > 1:
            raise EdgetpError(
                f"node {cur!r}: expected one feed-forward successor (and at most one recurrent "
                f"Linear back), found {succ(cur)}"
            )
        w = fwd[0]
        if isinstance(nodes[w], nir.Output):
            raise EdgetpError(
                f"node {cur!r} ({type(nodes[cur]).__name__}) feeds the Output: edgetp's readout is a "
                "Linear followed by a non-spiking LI or I (or a LIF/CubaLIF with v_threshold >= "
                f"{NEVER:.7g}, which never fires)"
            )
        if len(pred(w)) != 1 or len(succ(w)) != 1 or succ(w)[0] in seen:
            raise EdgetpError(f"node {w!r}: expected one input edge and one output edge in a chain")
        tgt = succ(w)[0]
        seen.update((w, tgt))
        if isinstance(nodes[tgt], nir.Output):  # Linear -> Output: a readout without memory (beta = 0)
            readout = (0.0, _weight(w, nodes[w], 1.0))
            break
        alpha, gain, vth, reset = _neuron(tgt, nodes[tgt], dt)
        if vth is None or vth >= NEVER:  # LI, I or a neuron that never fires: the readout
            if pred(tgt) != [w] or len(succ(tgt)) != 1 or not isinstance(nodes[succ(tgt)[0]], nir.Output):
                raise EdgetpError(
                    f"node {tgt!r} ({type(nodes[tgt]).__name__}): the readout must go from one "
                    "Linear straight to the Output"
                )
            readout = (alpha, _weight(w, nodes[w], gain))
            break
        rec = [a for a in pred(tgt) if a != w]
        chains = [c for c in (loop(tgt, b) for b in succ(tgt)) if c]
        if len(rec) > 1 or len(chains) > 1 or rec != [c[-1] for c in chains]:
            raise EdgetpError(
                f"node {tgt!r}: inputs {pred(tgt)} are not one feed-forward and one recurrent Linear "
                "(or chain of Linears)"
            )
        hidden.append(
            {
                "name": tgt,
                "alpha": alpha,
                "vth": vth,
                "reset": reset,
                "W": _weight(w, nodes[w], gain),
                "R": _chain_weight(chains[0], nodes, gain) if chains else None,
            }
        )
        cur = tgt
    if not hidden:
        raise EdgetpError("no LIF layer between the Input and the readout")
    col = lambda key: [lay[key] for lay in hidden]
    R, notes = recurrent_weights(col("name"), col("W"), col("R"))
    resets = set(col("reset"))
    if len(resets) != 1 or not resets <= {"soft", "hard"}:
        raise EdgetpError(f"LIF metadata 'reset' must be soft or hard, the same in every layer; found {sorted(resets)}")
    return Found(
        col("W") + [readout[1]],
        R,
        uniform(col("alpha"), "membrane leak (tau)"),
        uniform(col("vth"), "v_threshold"),
        readout[0],
        resets.pop(),
        notes,
    )


def import_nir(path, dt: float | None = None, **opts) -> Model:
    """An edgetp Model from a NIR file; ``dt`` defaults to the graph's ``metadata["dt"]``, else DT."""
    try:
        # sizes, dtypes and nesting checked before nir reads any data
        safeload.check_hdf5(path, "not a readable NIR graph")
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
        arrays = {
            k[len("edgetp.") :]: np.asarray(v) for k, v in meta.items() if k.startswith("edgetp.") and k != META_KEY
        }
        return build_model(found, stored, arrays, Path(path).name, **opts)
