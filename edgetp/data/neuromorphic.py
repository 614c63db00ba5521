"""The paper's neuromorphic benchmarks (SHD, N-MNIST) through tonic, from local files only.

Nothing is ever downloaded: tonic's own dataset classes are used for reading (its HDF5
and N-MNIST binary readers), with their download step replaced by a clear error.

- SHD: ``ROOT/shd_train.h5`` and ``ROOT/shd_test.h5`` (``ROOT/SHD/…`` also works), the
  published HDF5 files (``spikes/times`` in s, ``spikes/units``, ``labels``,
  ``extra/keys``, ``extra/speaker``), 700 input channels, binned in 10 ms frames;
- N-MNIST: ``ROOT/Train/<digit>/<n>.bin`` and ``ROOT/Test/…`` (``ROOT/NMNIST/…`` also
  works), the published 40-bit event records, 34 x 34 x 2 inputs, binned in 1 ms frames.

Samples are read by tonic and binned by :class:`Frames` from t = 0 (the recording's
start, not its first event), every event counted. :func:`dense` turns samples into a
zero-padded (N, T, F) float32 batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError

SHD_BIN_MS = 10.0
NMNIST_BIN_MS = 1.0


def _tonic():
    try:
        import tonic
    except ImportError:
        raise EdgetpError("tonic is not installed; install it with: pip install 'edgetp[neuromorphic]'") from None
    return tonic


def _locate(root, name: str, wanted: str) -> Path:
    root = Path(root).expanduser()
    for folder in (root, root / name):
        if (folder / wanted).exists():
            return folder
    raise EdgetpError(
        f"{name}: {wanted} not found in {root} or {root / name} (edgetp never downloads; put the dataset's files there)"
    )


def _local(cls, folder: Path):
    """A subclass of a tonic dataset that reads ``folder`` as is and never downloads."""

    def download(self):
        raise EdgetpError(f"{cls.__name__}: dataset files missing in {folder}; edgetp never downloads")

    return type(
        cls.__name__,
        (cls,),
        {
            "location_on_system": property(lambda self: str(folder), lambda self, value: None),
            "_check_exists": lambda self: True,
            "download": download,
        },
    )


class Frames:
    """Events -> spike-count frames (T, P, [Y,] X) int16: frame k counts the events with
    k * bin <= t < (k + 1) * bin (t in us from the recording's start), T = last frame with
    an event + 1. Unlike tonic's ToFrame, an event exactly at the end of the last window
    is kept."""

    def __init__(self, sensor_size, bin_ms: float):
        self.sensor_size, self.bin_us = tuple(sensor_size), bin_ms * 1000.0

    def __call__(self, events: np.ndarray) -> np.ndarray:
        x_size, y_size, p_size = self.sensor_size
        k = np.floor(np.asarray(events["t"], dtype=np.float64) / self.bin_us).astype(np.int64)
        n = int(k.max()) + 1 if len(k) else 0
        p = np.asarray(events["p"], np.int64) if p_size > 1 else np.zeros(len(k), np.int64)
        if "y" in events.dtype.names:
            frames = np.zeros((n, p_size, y_size, x_size), np.int16)
            np.add.at(frames, (k, p, np.asarray(events["y"], np.int64), np.asarray(events["x"], np.int64)), 1)
        else:
            frames = np.zeros((n, p_size, x_size), np.int16)
            np.add.at(frames, (k, p, np.asarray(events["x"], np.int64)), 1)
        return frames


def shd(root, train: bool = True, bin_ms: float = SHD_BIN_MS):
    """SHD as a tonic dataset; item i is (frames (T, 1, 700) int16, label)."""
    tonic = _tonic()
    file = "shd_train.h5" if train else "shd_test.h5"
    folder = _locate(root, "SHD", file)
    cls = _local(tonic.datasets.SHD, folder)
    try:
        return cls(save_to=str(folder), train=train, transform=Frames(tonic.datasets.SHD.sensor_size, bin_ms))
    except (OSError, KeyError) as exc:
        raise EdgetpError(f"SHD: {folder / file} is not a readable SHD HDF5 file ({exc})") from None


def nmnist(root, train: bool = True, bin_ms: float = NMNIST_BIN_MS, first_saccade_only: bool = False):
    """N-MNIST as a tonic dataset; item i is (frames (T, 2, 34, 34) int16, label)."""
    tonic = _tonic()
    sub = "Train" if train else "Test"
    folder = _locate(root, "NMNIST", sub)
    cls = _local(tonic.datasets.NMNIST, folder)
    ds = cls(
        save_to=str(folder),
        train=train,
        first_saccade_only=first_saccade_only,
        transform=Frames(tonic.datasets.NMNIST.sensor_size, bin_ms),
    )
    if len(ds) == 0:
        raise EdgetpError(f"N-MNIST: no .bin files under {folder / sub}")
    return ds


def dense(dataset, indices=None, n_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Samples as one batch: x (N, T, F) float32 (frames flattened, zero-padded or cut to
    ``n_steps``; default the longest sample), y (N,) int64."""
    indices = range(len(dataset)) if indices is None else indices
    xs, ys = [], []
    for i in indices:
        try:
            frames, label = dataset[int(i)]
        except (OSError, ValueError, IndexError) as exc:
            raise EdgetpError(f"{dataset!r} sample {i} is unreadable ({exc})") from None
        xs.append(np.asarray(frames).reshape(len(frames), -1))
        ys.append(int(label))
    if not xs:
        raise EdgetpError("no samples selected")
    steps = n_steps or max(len(x) for x in xs)
    out = np.zeros((len(xs), steps, xs[0].shape[1]), dtype=np.float32)
    for k, x in enumerate(xs):
        out[k, : min(steps, len(x))] = x[:steps]
    return out, np.array(ys, dtype=np.int64)
