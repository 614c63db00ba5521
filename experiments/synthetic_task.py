"""Synthetic speaker-adaptation task in the shape of the KWS features (N, T, 120).

Used by experiments/fixed_measure.py to develop and measure the integer rule without the
speech corpus (not to be confused with ``edgetp.data.synth``, the espeak-ng speech corpus).
Each class has a smooth random "log-mel" pattern (T x 40); a speaker warps it along
frequency and time, adds a spectral tilt and a gain; an utterance adds a random onset
and noise. Features are [40 mel, 40 delta, 40 delta-delta] like the real frontend and
are normalised per feature to unit std over the pretraining set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SynthTask:
    pre_x: np.ndarray  # pretraining features (N, T, F) float32
    pre_y: np.ndarray
    sup_x: np.ndarray  # support set of the held-out speaker
    sup_y: np.ndarray
    qry_x: np.ndarray  # query set of the held-out speaker
    qry_y: np.ndarray


def _smooth(rng, shape, width):
    """Random field smoothed by a separable box filter of ``width`` (per axis)."""
    a = rng.standard_normal(shape)
    for ax, w in enumerate(width):
        k = np.ones(w) / w
        a = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), ax, a)
    return a / a.std()


def _delta(a):
    d = np.zeros_like(a)
    d[1:-1] = (a[2:] - a[:-2]) / 2
    return d


class _Gen:
    def __init__(self, n_classes, T, n_mel, seed):
        self.rng = np.random.default_rng(seed)
        self.T, self.n_mel = T, n_mel
        self.proto = [_smooth(self.rng, (T, n_mel), (9, 5)) for _ in range(n_classes)]

    def speaker(self):
        r = self.rng
        return dict(
            shift=r.uniform(-2.5, 2.5),
            stretch=r.uniform(0.9, 1.1),
            gain=r.uniform(0.7, 1.3),
            tilt=_smooth(r, (1, self.n_mel), (1, 9))[0] * 0.8,
            mix=r.uniform(0.2, 0.4),
            own=[_smooth(r, (self.T, self.n_mel), (9, 5)) for _ in range(len(self.proto))],
        )

    def utterance(self, spk, c):
        r, T, M = self.rng, self.T, self.n_mel
        base = (1 - spk["mix"]) * self.proto[c] + spk["mix"] * spk["own"][c]
        tt = (np.arange(T) - T / 2) / spk["stretch"] + T / 2 + r.uniform(-4, 4)
        ff = np.arange(M) - spk["shift"]
        ti = np.clip(np.round(tt).astype(int), 0, T - 1)
        fi = np.clip(ff, 0, M - 1)
        f0 = np.floor(fi).astype(int)
        f1 = np.minimum(f0 + 1, M - 1)
        w = fi - f0
        b = base[ti]
        mel = spk["gain"] * ((1 - w) * b[:, f0] + w * b[:, f1]) + spk["tilt"]
        mel = mel + 0.4 * r.standard_normal((T, M))
        d = _delta(mel)
        return np.concatenate([mel, d, _delta(d)], axis=1)

    def set(self, spk, per_class, n_classes):
        xs, ys = [], []
        for _ in range(per_class):
            for c in range(n_classes):
                xs.append(self.utterance(spk, c))
                ys.append(c)
        return np.stack(xs), np.array(ys, dtype=np.int64)


def make_task(n_classes=36, T=101, n_speakers=16, pre_per_class=3, shots=5, query_per_class=3, seed=0) -> SynthTask:
    """Pretraining set from ``n_speakers`` speakers, support/query from one unseen speaker."""
    g = _Gen(n_classes, T, 40, seed)
    pre = [g.set(g.speaker(), pre_per_class, n_classes) for _ in range(n_speakers)]
    pre_x = np.concatenate([p[0] for p in pre])
    pre_y = np.concatenate([p[1] for p in pre])
    new = g.speaker()
    sup_x, sup_y = g.set(new, shots, n_classes)
    qry_x, qry_y = g.set(new, query_per_class, n_classes)
    scale = pre_x.reshape(-1, pre_x.shape[-1]).std(0)
    scale[scale == 0] = 1
    perm = g.rng.permutation(len(pre_y))
    f = lambda a: (a / scale).astype(np.float32)
    return SynthTask(f(pre_x[perm]), pre_y[perm], f(sup_x), sup_y, f(qry_x), qry_y)
