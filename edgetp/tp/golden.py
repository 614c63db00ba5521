"""Replay the authors' golden trajectories (format: shared/golden/README.md).

A file conforms when every recorded array, at every step, matches the float64
reference within ``max|mine - golden| / max(1, max|golden|) <= 1e-9``. A NaN or an
infinity on either side (the file's or the replay's) is a deviation of ``inf``, named by
array, step and index. A file holding an array this module does not understand, or a
config key it does not know, is refused: every array in a file is either an input of the
replay or compared, never ignored. Reading is bounded (edgetp.safeload).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.tp.config import NetConfig, Params
from edgetp.tp.network import Optimizer, init_state, train_step
from edgetp.tp.propagator import get_cache
from edgetp import safeload

TOLERANCE = 1e-9
_CONFIG_KEYS = {
    "hidden": list,
    "recurrent": bool,
    "batch": int,
    "steps": int,
    "n_in": int,
    "n_out": int,
    "lr": (int, float),
    "optimizer": str,
    "vth": (int, float),
    "leak_m": (int, float),
    "leak_t": (int, float),
    "leak_out": (int, float),
    "gamma": (int, float),
    "reset": str,
    "labels": list,
}
_OPTIONAL_CONFIG_KEYS = {"surrogate": str, "seed": int}
INPUTS = ("x", "labels", "S", "S_rec")  # with W{i} and R{i}: what the replay starts from


@dataclass
class Golden:
    path: Path
    config: dict
    cfg: NetConfig
    arrays: dict


class Deviation(NamedTuple):
    """The worst deviation of one array: its value, the step, the index in that step's array,
    and a note (``"nan in golden"``, ``"inf in mine"``, ...) when a value was not finite."""

    dev: float
    step: int
    index: tuple
    note: str = ""


# the golden files' per-layer arrays and the TPState fields they hold
_PER_LAYER = (("h", "s"), ("ht", "st"), ("tr", "tr"), ("trt", "trt"))


def _fail(path, msg):
    raise EdgetpError(f"{path}: {msg}")


def expected_shapes(cfg: NetConfig, B: int, T: int) -> dict:
    """Every array a golden file of this network holds (besides ``config`` and ``labels``), with its shape."""
    L, sizes = cfg.layers, cfg.sizes()
    want = {
        "x": (B, T, cfg.n_in),
        "h0": (T, B, cfg.n_in),
        "ht0": (T, B, cfg.n_out),
        "tr0": (T, B, cfg.n_in),
        "trt0": (T, B, cfg.n_out),
        "out": (T, B, cfg.n_out),
        "S": (cfg.hidden[0], cfg.n_out),
    }
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
    return want


def is_input(name: str) -> bool:
    return name in INPUTS or (name[:1] in "WR" and name[1:].isdigit())


def load_golden(path: str | Path) -> Golden:
    """Read and validate a golden file: config, keys and every shape (headers checked before reading)."""
    path = Path(path)
    if not path.is_file():
        _fail(path, "no such file")
    with safeload.Npz(path) as z, safeload.guarded(path, "not a readable golden file"):
        if "config" not in z.entries:
            raise EdgetpError("missing key 'config'")
        e = z.entries["config"]
        if e.dtype.kind != "U" or e.shape != () or e.nbytes > 4 * safeload.MAX_JSON_BYTES:
            raise EdgetpError(
                f"config must be one JSON string of at most {safeload.MAX_JSON_BYTES} characters, not {e.describe()}"
            )
        strings = [k for k, v in z.entries.items() if v.dtype.kind == "U" and k != "config"]
        if strings:
            raise EdgetpError(f"array {strings[0]!r} holds text, not numbers")
        text = str(z.read("config"))
        config = safeload.parse_json(text, "config")
        if not isinstance(config, dict):
            raise EdgetpError("config is not a JSON object")
        for k, typ in _CONFIG_KEYS.items():
            if k not in config:
                raise EdgetpError(f"config lacks {k!r}")
            if not isinstance(config[k], typ) or (typ is not bool and isinstance(config[k], bool)):
                raise EdgetpError(f"config {k!r} has the wrong type ({type(config[k]).__name__})")
        for k, typ in _OPTIONAL_CONFIG_KEYS.items():
            if k in config and not isinstance(config[k], typ):
                raise EdgetpError(f"config {k!r} has the wrong type ({type(config[k]).__name__})")
        unknown = sorted(set(config) - set(_CONFIG_KEYS) - set(_OPTIONAL_CONFIG_KEYS))
        if unknown:
            raise EdgetpError(f"config key {unknown[0]!r} is not understood (format: shared/golden/README.md)")
        if config["optimizer"] not in ("sgd", "adam"):
            raise EdgetpError(f"config optimizer {config['optimizer']!r} is not sgd or adam")
        if config.get("surrogate", "atan_scaled") != "atan_scaled":
            raise EdgetpError(
                f"surrogate {config['surrogate']!r} is not supported (only the reference's type 1, 'atan_scaled')"
            )
        try:
            cfg = NetConfig(
                config["n_in"],
                tuple(config["hidden"]),
                config["n_out"],
                config["recurrent"],
                config["vth"],
                config["leak_m"],
                config["leak_t"],
                config["leak_out"],
                config["gamma"],
                config["reset"],
            )
            cfg.sizes()
        except (EdgetpError, TypeError, ValueError) as exc:
            raise EdgetpError(f"bad config: {exc}") from None
        B, T = config["batch"], config["steps"]
        if B < 1 or T < 1:
            raise EdgetpError(f"config batch {B} and steps {T} must be >= 1")
        labels = config["labels"]
        if len(labels) != B or not all(
            isinstance(c, int) and not isinstance(c, bool) and 0 <= c < cfg.n_out for c in labels
        ):
            raise EdgetpError(f"config labels must be {B} class indices in [0, {cfg.n_out})")
        want = expected_shapes(cfg, B, T)
        unknown = sorted(set(z.entries) - set(want) - {"config", "labels"})
        if unknown:
            raise EdgetpError(
                f"array {unknown[0]!r} is not understood (not part of the format for this config; "
                "shared/golden/README.md); refusing the file rather than ignoring it"
            )
        for k, shape in want.items():
            if k not in z.entries:
                raise EdgetpError(f"missing key {k!r}")
            e = z.entries[k]
            if e.shape != shape:
                raise EdgetpError(f"{k} has shape {e.shape}, expected {shape}")
            if e.dtype.kind not in "fiub":
                raise EdgetpError(f"{k} has non-numeric dtype {e.dtype}")
        if "labels" in z.entries:
            e = z.entries["labels"]
            if e.dtype.kind not in "iu" or e.shape != (B,):
                raise EdgetpError(f"array 'labels' must be {B} integers, not {e.describe()}")
        arrays = {k: z.read(k) for k in z.entries if k != "config"}
        if "labels" in arrays and arrays["labels"].tolist() != labels:
            raise EdgetpError(f"array 'labels' {arrays['labels'].tolist()} disagrees with config labels {labels}")
    return Golden(path, config, cfg, arrays)


def deviation(mine: np.ndarray, golden: np.ndarray) -> float:
    """The spec's measure: max|mine - golden| / max(1, max|golden|) (``inf`` if either holds a NaN/inf)."""
    return compare(mine, golden, 0).dev


def _nonfinite(a: np.ndarray, side: str, step: int) -> Deviation | None:
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return Deviation(float("inf"), step, idx, f"{a[idx]} in {side}")


def compare(mine, golden, step: int) -> Deviation:
    """One step of one array: the spec's deviation, where it is largest, or the first non-finite value."""
    mine, golden = np.asarray(mine, np.float64), np.asarray(golden, np.float64)
    if mine.shape != golden.shape:
        return Deviation(float("inf"), step, (), f"shape {mine.shape} in mine, {golden.shape} in golden")
    bad = _nonfinite(golden, "golden", step) or _nonfinite(mine, "mine", step)
    if bad:
        return bad
    if mine.size == 0:
        return Deviation(0.0, step, ())
    diff = np.abs(mine - golden)
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
    return Deviation(float(diff[idx] / max(1.0, float(np.abs(golden).max()))), step, idx)


def _keep_worst(worst: dict, k: str, d: Deviation) -> None:
    if k not in worst or d.dev > worst[k].dev or (np.isnan(d.dev) and not np.isnan(worst[k].dev)):
        worst[k] = d


def check_inputs(g: Golden) -> dict[str, Deviation]:
    """Non-finite values in the replay's inputs (x, initial weights): {array: Deviation}; x's step
    is its time index, a weight's step is 0 (its value before the first step)."""
    out = {}
    for k, a in g.arrays.items():
        if not is_input(k) or a.dtype.kind != "f":
            continue
        a = np.asarray(a, np.float64)
        bad = ~np.isfinite(a)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            step = idx[1] if k == "x" else 0
            out[k] = Deviation(float("inf"), step, idx, f"{a[idx]} in golden (an input of the replay)")
    return out


def replay(g: Golden) -> dict[str, Deviation]:
    """Replay ``g`` in float64; returns {array: worst Deviation} for every recorded trajectory
    (and for an input holding a NaN or an infinity)."""
    cfg, a, c = g.cfg, g.arrays, g.config
    L = cfg.layers
    worst: dict[str, Deviation] = dict(check_inputs(g))
    f64 = lambda k: np.array(a[k], dtype=np.float64)
    params = Params(
        [f64(f"W{i}") for i in range(L + 1)],
        [f64(f"R{i}") for i in range(L)] if cfg.recurrent else None,
        f64("S"),
        f64("S_rec") if cfg.recurrent else None,
    )
    opt = Optimizer(c["optimizer"], float(c["lr"]))
    labels = np.asarray(c["labels"], dtype=np.int64)
    x = f64("x")
    B = x.shape[0]
    state = init_state(cfg, B, B, np.float64)
    prop = get_cache(None, params, cfg, np.float64)
    with np.errstate(all="ignore"):  # a NaN in a file is reported by compare(), not warned about
        for t in range(c["steps"]):
            state, grads = train_step(
                params, state, np.ascontiguousarray(x[:, t]), labels, cfg, opt, "batch", record=True, prop=prop
            )
            # the files number the layers from 1 and the label trace as layer 0 (the paper's ε̃_0)
            mine = {"h0": x[:, t], "ht0": np.eye(cfg.n_out)[labels], "trt0": state.trl, "out": state.u}
            for l in range(L):
                mine.update({f"{k}{l + 1}": getattr(state, n)[l] for k, n in _PER_LAYER})
            mine.update({f"g{k}": v for k, v in grads.items()})
            mine.update({f"W{i}_after": params.W[i] for i in range(L + 1)})
            if cfg.recurrent:
                mine.update({f"R{i}_after": params.R[i] for i in range(L)})
            for k, v in mine.items():
                _keep_worst(worst, k, compare(v, a[k][t], t))
        # tr0 is recorded but unused by learning; it is checked from its definition.
        tr0 = np.zeros_like(x[:, 0])
        for t in range(c["steps"]):
            tr0 = cfg.leak_t * tr0 + x[:, t]
            _keep_worst(worst, "tr0", compare(tr0, a["tr0"][t], t))
    return worst


def not_compared(g: Golden, worst: dict) -> list[str]:
    """Arrays of ``g`` that are neither an input of the replay nor compared (must be empty)."""
    return sorted(k for k in g.arrays if not is_input(k) and k not in worst)
