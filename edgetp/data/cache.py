"""Feature cache: the frontend runs once per corpus split; later runs memory-map the result.

Layout under ``cache_dir``::

    <corpus id>/<split>-<fingerprint>.npy   (n, 101, 120) float32, rows in corpus order
    <corpus id>/sel-<fingerprint>.npy       a large selection across splits (rows in the
                                            order asked), copied from the split files

``<corpus id>`` hashes the corpus root, its label set and the frontend's configuration;
``<fingerprint>`` hashes the utterances (path, clip, file size and mtime), so a changed
corpus or frontend is recomputed, never served stale. Files are written under a
temporary name and renamed when complete, so an interrupted run leaves no half file.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from edgetp.audio import frontend
from edgetp.data.labels import SPLITS

CACHE_VERSION = 1
CHUNK = 256
SELECTION_IN_MEMORY = 8192  # smaller selections are returned as an in-memory array


def _corpus_dir(corpus, cache_dir) -> Path:
    ident = json.dumps({"root": str(Path(corpus.root).resolve()), "labels": corpus.label_names,
                        "frontend": frontend.CONFIG.to_dict(), "version": CACHE_VERSION}, sort_keys=True)
    d = Path(cache_dir).expanduser() / hashlib.sha1(ident.encode()).hexdigest()[:12]
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write_atomic(path: Path, shape, fill) -> None:
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
    try:
        fill(out)
        out.flush()
    except BaseException:
        del out
        tmp.unlink(missing_ok=True)
        raise
    del out
    os.replace(tmp, path)


def _compute(corpus, rows: np.ndarray, out: np.ndarray, desc: str, progress) -> None:
    from tqdm import tqdm

    with tqdm(total=len(rows), desc=desc, unit="utt", disable=progress, leave=False) as bar:
        for a in range(0, len(rows), CHUNK):
            part = rows[a:a + CHUNK]
            out[a:a + len(part)] = frontend.features_batch([corpus.load(int(i)) for i in part])
            bar.update(len(part))


def split_features(corpus, split: str, cache_dir, progress: bool | None = None) -> np.memmap:
    """Features of every utterance of ``split`` (corpus order), computed at most once."""
    rows = corpus.select(split=split)
    d = _corpus_dir(corpus, cache_dir)
    path = d / f"{split}-{corpus.fingerprint(rows)[:16]}.npy"
    if not path.exists():
        for old in d.glob(f"{split}-*.npy"):
            old.unlink()
        disable = None if progress is None else not progress
        _write_atomic(path, (len(rows), frontend.N_FRAMES, frontend.N_FEATURES),
                      lambda out: _compute(corpus, rows, out, f"features {split}", disable))
    return _open(path, (len(rows), frontend.N_FRAMES, frontend.N_FEATURES))


def _open(path: Path, shape) -> np.memmap:
    """Memory-map a cache file; its header must declare exactly float32 ``shape`` and the file hold
    exactly that many bytes (edgetp.safeload), else an EdgetpError saying how to recompute it."""
    from edgetp.errors import EdgetpError
    from edgetp.safeload import open_npy_memmap

    try:
        return open_npy_memmap(path, np.float32, shape, "feature cache")
    except EdgetpError as exc:
        raise EdgetpError(f"{exc}; delete the file and the features are recomputed") from None


def cached_features(corpus, indices, cache_dir, progress: bool | None = None) -> np.ndarray:
    """Features (N, 101, 120) float32 of ``corpus`` utterances ``indices``, in that order.

    Computes (with a progress bar) only the splits not cached yet. A whole split in corpus
    order comes back as its memory-mapped file; a selection of up to 8192 utterances as
    an array; a larger one as a memory-mapped copy kept in the cache.
    """
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    splits = np.array([corpus.utterances[i].split for i in indices])
    needed = [s for s in SPLITS if np.any(splits == s)]
    files = {s: split_features(corpus, s, cache_dir, progress) for s in needed}
    row_of = {}
    for s in needed:
        row_of.update({int(i): r for r, i in enumerate(corpus.select(split=s))})
    if len(needed) == 1 and len(indices) == len(files[needed[0]]) \
            and np.array_equal(indices, corpus.select(split=needed[0])):
        return files[needed[0]]

    def gather(out):
        for a in range(0, len(indices), CHUNK):
            part = indices[a:a + CHUNK]
            for s in needed:
                m = splits[a:a + CHUNK] == s
                if m.any():
                    out[a:a + len(part)][m] = files[s][[row_of[int(i)] for i in part[m]]]

    shape = (len(indices), frontend.N_FRAMES, frontend.N_FEATURES)
    if len(indices) <= SELECTION_IN_MEMORY:
        out = np.empty(shape, dtype=np.float32)
        gather(out)
        return out
    path = _corpus_dir(corpus, cache_dir) / f"sel-{corpus.fingerprint(indices)[:16]}.npy"
    if not path.exists():
        _write_atomic(path, shape, gather)
    return _open(path, shape)
