"""Feature cache: the frontend runs once per corpus split; later runs memory-map the result.

Layout under ``cache_dir``::

    <corpus id>/<split>-<fingerprint>.npy   (n, 101, 120) float32, rows in corpus order
    <corpus id>/sel-<fingerprint>.npy       a large selection across splits (rows in the
                                            order asked), copied from the split files

A :class:`Frontend` names what computes the rows: the float frontend (the default), or the
integer frontend the device runs on raw audio (``edgetp.audio.frontend_q``: int32 Q.18
features, before the model's integer normalisation, for one log gain).
``<corpus id>`` hashes the corpus root, its label set and the frontend (its configuration;
for the integer one its source and log gain, so features of one never serve the other);
``<fingerprint>`` hashes the utterances (path, clip, file size and mtime), so a changed
corpus or frontend is recomputed, never served stale. Files are written under a
temporary name and renamed when complete, so an interrupted run leaves no half file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetp.audio import FRONTENDS, frontend, frontend_q as fq
from edgetp.data.labels import SPLITS
from edgetp.errors import EdgetpError
from edgetp.safeload import open_npy_memmap

CACHE_VERSION = 1
CHUNK = 256
SELECTION_IN_MEMORY = 8192  # smaller selections are returned as an in-memory array


@dataclass(frozen=True)
class Frontend:
    """What computes the cached features: ``kind`` "float" (edgetp.audio.frontend, float32) or
    "fixed" (edgetp.audio.frontend_q, int32 Q.18, computed with ``log_gain`` and ``running_max_decay``,
    the model's)."""

    kind: str = "float"
    log_gain: float = 1.0
    running_max_decay: int | None = None

    def __post_init__(self):
        if self.kind not in FRONTENDS:
            raise EdgetpError(f"frontend must be one of {FRONTENDS}, got {self.kind!r}")

    @property
    def dtype(self):
        return np.dtype(np.float32 if self.kind == "float" else np.int32)

    def ident(self) -> dict:
        if self.kind == "float":
            return {"frontend": frontend.CONFIG.to_dict()}  # as before: existing float caches stay valid
        src = hashlib.sha1()  # the pipeline, its tables and kernels, its PCM reading
        for f in sorted(Path(fq.__file__).parent.glob("frontend_q*.py")) + [Path(fq.__file__).parent / "pcm.py"]:
            src.update(f.read_bytes())
        decay = fq.check_decay(self.running_max_decay)
        return {
            "frontend": "fixed",
            "frontend_q": src.hexdigest(),
            "log_gain": fq.check_log_gain(self.log_gain),
            **({"running_max_decay": decay} if decay is not None else {}),
        }

    def batch(self, waves) -> np.ndarray:
        if self.kind == "float":
            return frontend.features_batch(waves)
        return np.stack(
            [
                fq.utterance_q(
                    fq.pcm16(fq.pcm16_samples(w)), log_gain=self.log_gain, running_max_decay=self.running_max_decay
                ).feats
                for w in waves
            ]
        )


FLOAT = Frontend()


def _corpus_dir(corpus, cache_dir, fe: Frontend = FLOAT) -> Path:
    ident = json.dumps(
        {
            "root": str(Path(corpus.root).resolve()),
            "labels": corpus.label_names,
            **fe.ident(),
            "version": CACHE_VERSION,
        },
        sort_keys=True,
    )
    d = Path(cache_dir).expanduser() / hashlib.sha1(ident.encode()).hexdigest()[:12]
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write_atomic(path: Path, shape, fill, dtype=np.float32) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    try:
        fill(out)
        out.flush()
    except BaseException:
        del out
        tmp.unlink(missing_ok=True)
        raise
    del out
    os.replace(tmp, path)


def _compute(corpus, rows: np.ndarray, out: np.ndarray, desc: str, progress, fe: Frontend = FLOAT) -> None:
    from tqdm import tqdm

    with tqdm(total=len(rows), desc=desc, unit="utt", disable=progress, leave=False) as bar:
        for a in range(0, len(rows), CHUNK):
            part = rows[a : a + CHUNK]
            out[a : a + len(part)] = fe.batch([corpus.load(int(i)) for i in part])
            bar.update(len(part))


def split_features(corpus, split: str, cache_dir, progress: bool | None = None, fe: Frontend = FLOAT) -> np.memmap:
    """Features of every utterance of ``split`` (corpus order), computed at most once."""
    rows = corpus.select(split=split)
    d = _corpus_dir(corpus, cache_dir, fe)
    path = d / f"{split}-{corpus.fingerprint(rows)[:16]}.npy"
    if not path.exists():
        for old in d.glob(f"{split}-*.npy"):
            old.unlink()
        disable = None if progress is None else not progress
        _write_atomic(
            path,
            (len(rows), frontend.N_FRAMES, frontend.N_FEATURES),
            lambda out: _compute(corpus, rows, out, f"features {split}", disable, fe),
            fe.dtype,
        )
    return _open(path, (len(rows), frontend.N_FRAMES, frontend.N_FEATURES), fe.dtype)


def _open(path: Path, shape, dtype=np.float32) -> np.memmap:
    """Memory-map a cache file; its header must declare exactly ``dtype`` ``shape`` and the file hold
    exactly that many bytes (edgetp.safeload), else an EdgetpError saying how to recompute it."""
    try:
        return open_npy_memmap(path, dtype, shape, "feature cache")
    except EdgetpError as exc:
        raise EdgetpError(f"{exc}; delete the file and the features are recomputed") from None


def cached_features(corpus, indices, cache_dir, progress: bool | None = None, fe: Frontend = FLOAT) -> np.ndarray:
    """Features (N, 101, 120) of ``corpus`` utterances ``indices``, in that order (float32; int32 for
    the integer frontend ``fe``).

    Computes (with a progress bar) only the splits not cached yet. A whole split in corpus
    order comes back as its memory-mapped file; a selection of up to 8192 utterances as
    an array; a larger one as a memory-mapped copy kept in the cache.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    splits = np.array([corpus.utterances[i].split for i in indices])
    needed = [s for s in SPLITS if np.any(splits == s)]
    files = {s: split_features(corpus, s, cache_dir, progress, fe) for s in needed}
    row_of = {}
    for s in needed:
        row_of.update({int(i): r for r, i in enumerate(corpus.select(split=s))})
    if (
        len(needed) == 1
        and len(indices) == len(files[needed[0]])
        and np.array_equal(indices, corpus.select(split=needed[0]))
    ):
        return files[needed[0]]

    def gather(out):
        for a in range(0, len(indices), CHUNK):
            part = indices[a : a + CHUNK]
            for s in needed:
                m = splits[a : a + CHUNK] == s
                if m.any():
                    out[a : a + len(part)][m] = files[s][[row_of[int(i)] for i in part[m]]]

    shape = (len(indices), frontend.N_FRAMES, frontend.N_FEATURES)
    if len(indices) <= SELECTION_IN_MEMORY:
        out = np.empty(shape, dtype=fe.dtype)
        gather(out)
        return out
    path = _corpus_dir(corpus, cache_dir, fe) / f"sel-{corpus.fingerprint(indices)[:16]}.npy"
    if not path.exists():
        _write_atomic(path, shape, gather, fe.dtype)
    return _open(path, shape, fe.dtype)
