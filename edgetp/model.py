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
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.tp.config import NetConfig, Params
from edgetp import safeload

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
        return {
            "format": FORMAT,
            "version": VERSION,
            "net": self.cfg.to_dict(),
            "labels": list(self.labels),
            "frontend": self.frontend,
            "recipe": self.recipe,
            "metrics": self.metrics,
        }

    def n_params(self) -> int:
        return int(sum(a.size for a in self.params.trainable()))

    def weights_hash(self) -> str:
        """The network, labels, frontend and arrays without the recipe and metrics: equal for files that differ
        only in recorded settings (``pretrain --from`` on the same weights), so a test-group run on any of them
        measured these weights (edgetp.kws.ledger)."""
        return _hash({"net": self.cfg.to_dict(), "labels": list(self.labels), "frontend": self.frontend}, self.arrays())

    def hashes(self) -> set[str]:
        """This file's hash and those of the files it was relabelled from (``relabel``): the same
        network, arrays and normalisation, so a figure measured on any of them is this model's."""
        old = (self.recipe or {}).get("relabelled_from") or []
        return {self.hash(), *(r["hash"] for r in old if isinstance(r, dict) and isinstance(r.get("hash"), str))}


def relabel(model: Model, why: str, **recipe) -> Model:
    """``model`` with recipe fields replaced and its arrays untouched. The hash covers the record too, so it
    changes: the recipe lists the hash it had and why it changed (``relabelled_from``), and ``Model.hashes``
    keeps results measured on the earlier file counted as this model's."""
    trail = [*(model.recipe.get("relabelled_from") or []), {"hash": model.hash(), "why": why}]
    return replace(model, recipe={**model.recipe, **recipe, "relabelled_from": trail})


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
            raise EdgetpError(f"{p}: model file not found")
        return p
    shipped = MODELS_DIR / name_or_path / "model.npz"
    if shipped.is_file():
        return shipped
    names = sorted(d.name for d in MODELS_DIR.iterdir() if (d / "model.npz").is_file()) if MODELS_DIR.is_dir() else []
    raise EdgetpError(f"no model named {name_or_path!r} (shipped: {', '.join(names) or 'none'}) and no such file")


def expected_arrays(cfg: NetConfig) -> dict[str, tuple]:
    """Every array a model file of network ``cfg`` holds, with its shape (``norm_scale`` is optional)."""
    sizes = cfg.sizes()
    want = {f"W{i}": (sizes[i + 1], sizes[i]) for i in range(cfg.layers + 1)}
    if cfg.recurrent:
        want.update({f"R{i}": (h, h) for i, h in enumerate(cfg.hidden)})
        want["S_rec"] = (cfg.hidden[0], cfg.hidden[0])
    want["S"] = (cfg.hidden[0], cfg.n_out)
    want["norm_scale"] = (cfg.n_in,)
    return want


def load_model(name_or_path: str | Path) -> Model:
    """Load and validate a model file; every defect is an EdgetpError naming the file.

    Bounded (edgetp.safeload): each entry's header is checked against the shapes the
    model's ``net`` implies before anything is allocated; metadata is size- and depth-limited.
    """
    path = resolve_model_path(str(name_or_path))
    with safeload.Npz(path) as z, safeload.guarded(path, "not a readable edgetp model file"):
        if "meta" not in z.entries:
            raise EdgetpError("not an edgetp model file (no 'meta')")
        e = z.entries["meta"]
        safeload.check_entry(e, "meta", kinds="u")
        if e.dtype.itemsize != 1 or len(e.shape) != 1:
            raise EdgetpError(f"'meta' must be a 1-D uint8 array, not {e.describe()}")
        meta = safeload.parse_json(z.read("meta").tobytes(), "model metadata 'meta'")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise EdgetpError(
                f"not an edgetp model file (format {meta.get('format') if isinstance(meta, dict) else None!r})"
            )
        if meta.get("version") != VERSION:
            raise EdgetpError(
                f"model format version {meta.get('version')} is not supported (this edgetp reads {VERSION})"
            )
        if not isinstance(meta.get("net"), dict):
            raise EdgetpError("model file lacks 'net'")
        cfg = NetConfig.from_dict(meta["net"])
        labels = meta.get("labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise EdgetpError("'labels' must be a list of class names")
        for key in ("frontend", "recipe", "metrics"):
            if not isinstance(meta.get(key, {}), dict):
                raise EdgetpError(f"{key!r} must be a JSON object")
        want = expected_arrays(cfg)
        unknown = sorted(set(z.entries) - set(want) - {"meta"})
        if unknown:
            raise EdgetpError(f"array {unknown[0]!r} is not part of a {cfg.net_string()} model")
        for name, shape in want.items():
            if name not in z.entries:
                if name == "norm_scale":
                    continue
                raise EdgetpError(f"model file lacks '{name}'")
            safeload.check_entry(z.entries[name], name, shape)
        arrays = {k: z.read(k) for k in want if k in z.entries}
        L = cfg.layers
        params = Params(
            [arrays[f"W{i}"] for i in range(L + 1)],
            [arrays[f"R{i}"] for i in range(L)] if cfg.recurrent else None,
            arrays["S"],
            arrays.get("S_rec"),
        )
        params.check(cfg)
        model = Model(
            cfg,
            params,
            labels,
            meta.get("frontend", {}),
            meta.get("recipe", {}),
            meta.get("metrics", {}),
            arrays.get("norm_scale"),
        )
        stored = meta.get("hash")
        computed = model.hash()
        if stored != computed:
            raise EdgetpError(
                f"hash mismatch (file corrupt or edited): stored {str(stored)[:12]}…, computed {computed[:12]}…"
            )
    return model
