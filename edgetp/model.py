"""The edgetp model file: one versioned, documented format (see docs/model-format.md).

A model file is a NumPy ``.npz`` archive read with ``allow_pickle=False`` (loading never
executes code). It holds:

- ``meta``: UTF-8 JSON (as a uint8 array) with ``format`` ("edgetp-model"), ``version``,
  ``net`` (NetConfig dict), ``labels`` (class names), ``frontend`` (dict), ``recipe``
  (how it was trained), ``metrics`` (dict) and ``hash`` (sha256 of the arrays and of
  the rest of ``meta``);
- ``W0..WL``, ``R0..R{L-1}`` (recurrent nets), ``S``, ``S_rec``: the weights (float32/64);
- ``norm_scale`` (optional, (120,)): fixed per-feature normalisation divisors.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.tp.config import NetConfig, Params

FORMAT = "edgetp-model"
VERSION = 1

def _models_dir() -> Path:
    """Shipped models: the package ``edgetp.models`` (the repository's ``models/``)."""
    try:
        import edgetp.models as m  # installed wheel, or editable install

        return Path(m.__file__).resolve().parent
    except ImportError:
        return Path(__file__).resolve().parent.parent / "models"


MODELS_DIR = _models_dir()


@dataclass
class Model:
    cfg: NetConfig
    params: Params
    labels: list[str]
    frontend: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    norm_scale: np.ndarray | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        out = self.params.named()
        if self.norm_scale is not None:
            out["norm_scale"] = self.norm_scale
        return out

    def hash(self) -> str:
        return _hash(self._meta_wo_hash(), self.arrays())

    def _meta_wo_hash(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "net": self.cfg.to_dict(), "labels": list(self.labels),
                "frontend": self.frontend, "recipe": self.recipe, "metrics": self.metrics}

    def n_params(self) -> int:
        return int(sum(a.size for a in self.params.trainable()))


def _hash(meta: dict, arrays: dict) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode() + str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def save_model(model: Model, path: str | Path) -> str:
    """Write ``model`` to ``path`` (npz); returns its hash."""
    model.params.check(model.cfg)
    if len(model.labels) != model.cfg.n_out:
        raise EdgetpError(f"{len(model.labels)} labels for {model.cfg.n_out} outputs")
    meta = model._meta_wo_hash()
    digest = _hash(meta, model.arrays())
    meta["hash"] = digest
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta, indent=1).encode(), dtype=np.uint8), **model.arrays())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buf.getvalue())
    return digest


def resolve_model_path(name_or_path: str) -> Path:
    """A shipped model by name (``kws-mcu``) or a file path."""
    p = Path(name_or_path)
    if p.suffix == ".npz" or p.exists():
        if not p.is_file():
            raise EdgetpError(f"model file not found: {p}")
        return p
    shipped = MODELS_DIR / name_or_path / "model.npz"
    if shipped.is_file():
        return shipped
    names = sorted(d.name for d in MODELS_DIR.iterdir() if (d / "model.npz").is_file()) if MODELS_DIR.is_dir() else []
    raise EdgetpError(f"no model named {name_or_path!r} (shipped: {', '.join(names) or 'none'}) and no such file")


def load_model(name_or_path: str | Path) -> Model:
    """Load and validate a model file; every defect is an EdgetpError naming the file."""
    path = resolve_model_path(str(name_or_path))
    if not zipfile.is_zipfile(path):
        raise EdgetpError(f"{path}: not an edgetp model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise EdgetpError(f"{path}: not a readable edgetp model file ({exc.__class__.__name__}: {exc})") from None
    if "meta" not in arrays:
        raise EdgetpError(f"{path}: not an edgetp model file (no 'meta')")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgetpError(f"{path}: corrupt model metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise EdgetpError(f"{path}: not an edgetp model file (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != VERSION:
        raise EdgetpError(f"{path}: model format version {meta.get('version')} is not supported (this edgetp reads {VERSION})")
    try:
        cfg = NetConfig.from_dict(meta["net"])
        L = cfg.layers
        W = [arrays[f"W{i}"] for i in range(L + 1)]
        R = [arrays[f"R{i}"] for i in range(L)] if cfg.recurrent else None
        params = Params(W, R, arrays["S"], arrays.get("S_rec") if cfg.recurrent else None)
        model = Model(cfg, params, list(meta["labels"]), meta.get("frontend", {}), meta.get("recipe", {}),
                      meta.get("metrics", {}), arrays.get("norm_scale"))
    except KeyError as exc:
        raise EdgetpError(f"{path}: model file lacks {exc}") from None
    except EdgetpError as exc:
        raise EdgetpError(f"{path}: {exc}") from None
    params.check(cfg)
    if any(a.dtype.kind != "f" for a in model.arrays().values()):
        raise EdgetpError(f"{path}: weights must be floating point")
    stored = meta.get("hash")
    if stored != model.hash():
        raise EdgetpError(f"{path}: hash mismatch (file corrupt or edited): stored {str(stored)[:12]}…, computed {model.hash()[:12]}…")
    return model
