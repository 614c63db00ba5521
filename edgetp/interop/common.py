"""Shared by ONNX and NIR interop (see docs/interop.md).

An exported file carries, besides the inference graph, what edgetp needs to get the
model back unchanged: the model's JSON metadata (``META_KEY``) and the arrays inference
does not use (``CARRIED``: the frozen target propagator ``S``/``S_rec`` and the optional
``norm_scale``). ``build_model`` turns what an importer found in a graph into a
:class:`~edgetp.model.Model`; values the graph does not hold come from that metadata,
from the caller, or from the defaults (the propagator is then initialised like a linear
layer, seeded, exactly as :func:`edgetp.tp.config.init_params` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.model import Model
from edgetp.tp.config import NetConfig, Params, init_params
from edgetp.tp.network import infer_step, init_state

META_KEY = "edgetp.model"
META_FORMAT = "edgetp-interop"
CARRIED = ("S", "S_rec", "norm_scale")


@dataclass
class Found:
    """The inference network an importer recognised, weights in edgetp layout.

    W: hidden input weights then the readout (``(H_l, H_{l-1})``); R: recurrent
    weights or None; leak_m/vth/leak_out/reset: NetConfig values; notes: what the
    importer had to assume (shown to the user and kept in the model's recipe).
    """

    W: list
    R: list | None
    leak_m: float
    vth: float
    leak_out: float
    reset: str
    notes: list = field(default_factory=list)


def model_meta(model: Model, **extra) -> dict:
    """The model's metadata as stored in an exported file (JSON-serialisable)."""
    return {
        "format": META_FORMAT,
        "version": 1,
        "net": model.cfg.to_dict(),
        "labels": list(model.labels),
        "frontend": model.frontend,
        "recipe": model.recipe,
        "metrics": model.metrics,
        **extra,
    }


def carried_arrays(model: Model) -> dict:
    p = model.params
    arrays = {"S": p.S, "S_rec": p.S_rec, "norm_scale": model.norm_scale}
    return {k: np.asarray(v) for k, v in arrays.items() if v is not None}


def tidy(x: float, dtype) -> float:
    """``x`` as the shortest decimal that is the same number at the precision it came in."""
    if np.dtype(dtype) == np.float32:
        return float(str(np.float32(x)))
    return float(f"{float(x):.12g}")


def uniform(values, what: str) -> float:
    """The one value an array (or list of scalars) holds everywhere, else an EdgetpError."""
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0 or not np.all(a == a[0]):
        raise EdgetpError(
            f"{what} differs between neurons or layers ({a.min():g} .. {a.max():g}); "
            "edgetp has one value for the whole network"
        )
    return float(a[0])


def recurrent_weights(names: list, W: list, R: list) -> tuple[list | None, list]:
    """edgetp's recurrence is all or none: ``(R, notes)``; a hidden layer without recurrent
    weights in a net where others have them gets ``R = 0`` (same behaviour) and a note."""
    if all(r is None for r in R):
        return None, []
    notes = [
        f"layer {i} ({n}) has no recurrent weights: R{i} set to zero"
        for i, (n, r) in enumerate(zip(names, R))
        if r is None
    ]
    return [np.zeros((w.shape[0],) * 2, w.dtype) if r is None else r for w, r in zip(W, R)], notes


def build_model(
    found: Found,
    meta: dict | None,
    arrays: dict,
    source: str,
    *,
    labels=None,
    seed: int = 0,
    leak_t: float | None = None,
    gamma: float | None = None,
) -> Model:
    """An edgetp Model from a recognised graph plus the metadata/arrays its file carried."""
    meta = meta if isinstance(meta, dict) and meta.get("format") == META_FORMAT else {}
    net, W, R = dict(meta.get("net") or {}), found.W, found.R
    notes = list(found.notes)

    def pick(key, value):  # the stored decimal when the graph still holds (about) that value
        old = net.get(key)
        ok = isinstance(old, (int, float)) and abs(old - value) <= 1e-6 * max(1.0, abs(value))
        return float(old) if ok else float(value)

    kw = {k: net[k] for k in ("leak_t", "gamma") if isinstance(net.get(k), (int, float))}
    kw.update({k: v for k, v in (("leak_t", leak_t), ("gamma", gamma)) if v is not None})
    cfg = NetConfig(
        int(W[0].shape[1]),
        tuple(int(w.shape[0]) for w in W[:-1]),
        int(W[-1].shape[0]),
        recurrent=R is not None,
        vth=pick("vth", found.vth),
        leak_m=pick("leak_m", found.leak_m),
        leak_out=pick("leak_out", found.leak_out),
        reset=found.reset,
        **kw,
    )
    dtype = np.result_type(*W)
    fresh = init_params(cfg, seed, dtype)
    want = {"S": (cfg.hidden[0], cfg.n_out), "S_rec": (cfg.hidden[0],) * 2 if cfg.recurrent else None}
    prop, made = {}, []
    for name, shape in want.items():
        a = arrays.get(name)
        if shape is None:
            prop[name] = None
        elif a is not None and a.shape == shape:
            prop[name] = np.ascontiguousarray(a, dtype=dtype)
        else:
            prop[name] = getattr(fresh, name)
            made.append(name)
    if made:
        notes.append(
            f"target propagator {'/'.join(made)} not in the file: initialised like a linear layer "
            f"(U(+-1/sqrt(fan_in)), seed {seed}), as edgetp.tp.config.init_params does"
        )
    if labels is None:
        labels = meta.get("labels") if len(meta.get("labels") or []) == cfg.n_out else None
    labels = [str(i) for i in range(cfg.n_out)] if labels is None else [str(x) for x in labels]
    if len(labels) != cfg.n_out:
        raise EdgetpError(f"{len(labels)} labels given for a network with {cfg.n_out} outputs")
    recipe = dict(meta.get("recipe") or {})
    if notes or not meta:
        recipe["imported"] = {"from": str(source), "notes": notes}
    ns = arrays.get("norm_scale")
    model = Model(
        cfg,
        Params(
            [np.ascontiguousarray(w, dtype=dtype) for w in W],
            None if R is None else [np.ascontiguousarray(r, dtype=dtype) for r in R],
            prop["S"],
            prop["S_rec"],
        ),
        labels,
        dict(meta.get("frontend") or {}),
        recipe,
        dict(meta.get("metrics") or {}),
        None if ns is None or ns.ndim != 1 else ns,
    )
    model.params.check(cfg)
    return model


def reference_readout(model: Model, xs: np.ndarray) -> np.ndarray:
    """The float reference's readout ``u`` at every step, (B, T, O), in ``xs``'s dtype."""
    xs = np.asarray(xs)
    params = model.params.astype(xs.dtype)
    state = init_state(model.cfg, xs.shape[0], 0, xs.dtype)
    us = []
    for t in range(xs.shape[1]):
        state = infer_step(params, state, np.ascontiguousarray(xs[:, t]), model.cfg)
        us.append(state.u)
    return np.stack(us, axis=1)
