"""Replay the authors' golden trajectories (format: shared/golden/README.md).

A file conforms when every recorded array, at every step, matches the float64
reference within ``max|mine - golden| / max(1, max|golden|) <= 1e-9``.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.tp.config import NetConfig, Params
from edgetp.tp.network import Optimizer, init_state, train_step
from edgetp.tp.propagator import get_cache

TOLERANCE = 1e-9
_CONFIG_KEYS = {"hidden": list, "recurrent": bool, "batch": int, "steps": int, "n_in": int, "n_out": int,
                "lr": (int, float), "optimizer": str, "vth": (int, float), "leak_m": (int, float),
                "leak_t": (int, float), "leak_out": (int, float), "gamma": (int, float), "reset": str,
                "labels": list}


@dataclass
class Golden:
    path: Path
    config: dict
    cfg: NetConfig
    arrays: dict


def _fail(path, msg):
    raise EdgetpError(f"{path}: {msg}")


def load_golden(path: str | Path) -> Golden:
    """Read and validate a golden file: config, keys and every shape."""
    path = Path(path)
    if not path.is_file():
        _fail(path, "no such file")
    if not zipfile.is_zipfile(path):
        _fail(path, "not an .npz archive (not a zip file)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        _fail(path, f"not a readable .npz archive ({exc})")
    if "config" not in arrays:
        _fail(path, "missing key 'config'")
    try:
        config = json.loads(str(arrays.pop("config")))
    except json.JSONDecodeError as exc:
        _fail(path, f"config is not JSON ({exc})")
    if not isinstance(config, dict):
        _fail(path, "config is not a JSON object")
    for k, typ in _CONFIG_KEYS.items():
        if k not in config:
            _fail(path, f"config lacks {k!r}")
        if not isinstance(config[k], typ):
            _fail(path, f"config {k!r} has the wrong type ({type(config[k]).__name__})")
    if config["optimizer"] not in ("sgd", "adam"):
        _fail(path, f"config optimizer {config['optimizer']!r} is not sgd or adam")
    if config.get("surrogate", "atan_scaled") != "atan_scaled":
        _fail(path, f"surrogate {config['surrogate']!r} is not supported (only the reference's type 1, 'atan_scaled')")
    try:
        cfg = NetConfig(config["n_in"], tuple(config["hidden"]), config["n_out"], config["recurrent"],
                        config["vth"], config["leak_m"], config["leak_t"], config["leak_out"],
                        config["gamma"], config["reset"])
    except (EdgetpError, TypeError, ValueError) as exc:
        _fail(path, f"bad config: {exc}")
    B, T, L = config["batch"], config["steps"], cfg.layers
    labels = config["labels"]
    if len(labels) != B or not all(isinstance(c, int) and 0 <= c < cfg.n_out for c in labels):
        _fail(path, f"config labels must be {B} class indices in [0, {cfg.n_out})")
    if "labels" in arrays and arrays["labels"].tolist() != labels:
        _fail(path, f"array 'labels' {arrays['labels'].tolist()} disagrees with config labels {labels}")
    sizes = cfg.sizes()
    want = {"x": (B, T, cfg.n_in), "h0": (T, B, cfg.n_in), "ht0": (T, B, cfg.n_out), "tr0": (T, B, cfg.n_in),
            "trt0": (T, B, cfg.n_out), "out": (T, B, cfg.n_out), "S": (cfg.hidden[0], cfg.n_out)}
    for k in range(1, L + 1):
        for pre in ("h", "ht", "tr", "trt"):
            want[f"{pre}{k}"] = (T, B, cfg.hidden[k - 1])
    for i in range(L + 1):
        shape = (sizes[i + 1], sizes[i])
        want[f"W{i}"], want[f"gW{i}"], want[f"W{i}_after"] = shape, (T, *shape), (T, *shape)
    if cfg.recurrent:
        want["S_rec"] = (cfg.hidden[0], cfg.hidden[0])
        for i, h in enumerate(cfg.hidden):
            want[f"R{i}"], want[f"gR{i}"], want[f"R{i}_after"] = (h, h), (T, h, h), (T, h, h)
    for k, shape in want.items():
        if k not in arrays:
            _fail(path, f"missing key {k!r}")
        if tuple(arrays[k].shape) != shape:
            _fail(path, f"{k} has shape {tuple(arrays[k].shape)}, expected {shape}")
        if arrays[k].dtype.kind not in "fiub":
            _fail(path, f"{k} has non-numeric dtype {arrays[k].dtype}")
    return Golden(path, config, cfg, arrays)


def deviation(mine: np.ndarray, golden: np.ndarray) -> float:
    """The spec's measure: max|mine - golden| / max(1, max|golden|)."""
    golden = np.asarray(golden, dtype=np.float64)
    return float(np.abs(np.asarray(mine, np.float64) - golden).max() / max(1.0, np.abs(golden).max()))


def replay(g: Golden) -> dict[str, tuple[float, int]]:
    """Replay ``g`` in float64; returns {array: (largest deviation, step where it occurred)}."""
    cfg, a, c = g.cfg, g.arrays, g.config
    L = cfg.layers
    f64 = lambda k: np.array(a[k], dtype=np.float64)
    params = Params([f64(f"W{i}") for i in range(L + 1)], [f64(f"R{i}") for i in range(L)] if cfg.recurrent else None,
                    f64("S"), f64("S_rec") if cfg.recurrent else None)
    opt = Optimizer(c["optimizer"], float(c["lr"]))
    labels = np.asarray(c["labels"], dtype=np.int64)
    x = f64("x")
    B = x.shape[0]
    state = init_state(cfg, B, B, np.float64)
    prop = get_cache(None, params, cfg, np.float64)
    worst: dict[str, tuple[float, int]] = {}
    for t in range(c["steps"]):
        state, grads = train_step(params, state, np.ascontiguousarray(x[:, t]), labels, cfg, opt, "batch", record=True,
                                   prop=prop)
        mine = {"h0": x[:, t], "ht0": np.eye(cfg.n_out)[labels], "trt0": state.trt0, "out": state.u}
        for l in range(L):
            mine.update({f"h{l + 1}": state.s[l], f"ht{l + 1}": state.st[l], f"tr{l + 1}": state.tr[l],
                         f"trt{l + 1}": state.trt[l]})
        mine.update({f"g{k}": v for k, v in grads.items()})
        mine.update({f"W{i}_after": params.W[i] for i in range(L + 1)})
        if cfg.recurrent:
            mine.update({f"R{i}_after": params.R[i] for i in range(L)})
        for k, v in mine.items():
            d = deviation(v, a[k][t])
            if k not in worst or d > worst[k][0]:
                worst[k] = (d, t)
    # tr0 is recorded but unused by learning; it is checked from its definition.
    tr0 = np.zeros_like(x[:, 0])
    for t in range(c["steps"]):
        tr0 = cfg.leak_t * tr0 + x[:, t]
        d = deviation(tr0, a["tr0"][t])
        if "tr0" not in worst or d > worst["tr0"][0]:
            worst["tr0"] = (d, t)
    return worst
