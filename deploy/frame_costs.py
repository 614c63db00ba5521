"""Per-frame cost statistics: the mean, the 99.9th percentile and the maximum of a list of
per-frame counts (instructions on QEMU), and the split of training frames into learning
frames and forward-only frames (``update_every`` k: frame t of a sample learns when
t % k == 0, t counted from the sample's reset, as etp_train_step decides).

The percentile is the nearest-rank one: the smallest frame cost that at least 99.9 % of the
frames do not exceed, so it is always a measured frame (below 1,000 frames it is the maximum).
"""

from __future__ import annotations

import math

import numpy as np


def percentile_rank(values, q: float) -> float:
    """Nearest-rank ``q`` percentile (0 < q <= 100) of a non-empty list."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    rank = math.ceil(round(q / 100.0 * v.size, 9))  # rounded first: 0.999 * 2000 is 1998.0000000000002
    return float(v[max(0, rank - 1)])


def frame_summary(values) -> dict:
    """mean / p999 / max / min / n of per-frame costs ({} when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    if not v.size:
        return {}
    return {
        "mean": float(v.mean()),
        "p999": percentile_rank(v, 99.9),
        "max": float(v.max()),
        "min": float(v.min()),
        "n": int(v.size),
    }


def learning_mask(starts: list, n: int, every: int) -> np.ndarray:
    """True for the frames that learn: index t within its sample (samples begin at ``starts``,
    ``n`` frames in all) with t % every == 0."""
    t = np.arange(n)
    begin = np.zeros(n, dtype=np.int64)
    for s in starts:
        begin[s:] = s
    return (t - begin) % max(1, every) == 0
