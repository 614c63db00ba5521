"""The frozen target propagator's trajectory, computed once per class.

Layer 1's target stream is driven by the one-hot label through the frozen ``S`` (and
``S_rec``): it depends only on the class and the time step, never on weights that
train. Computing it once per class, instead of at every step of every sample, removes
the largest cost of the class-prototype rule (a (O x H1) @ (H1 x H1) product per step).
"""

from __future__ import annotations

import numpy as np

from edgetp.tp import kernels as K
from edgetp.tp.config import NetConfig, Params


class PropagatorCache:
    """Per-step layer-1 target quantities for every class, grown lazily.

    ``at(t, rows)`` returns ``(v_pre, s, v, trace)`` for step ``t`` (0-based), each
    ``(len(rows), H1)``; ``rows=None`` returns all classes in class order (a view:
    callers must not write into it).
    """

    def __init__(self, params: Params, cfg: NetConfig, dtype):
        self.cfg = cfg
        self.dtype = np.dtype(dtype).type
        self.S = np.array(params.S, dtype=dtype)
        self.S_rec = None if params.S_rec is None else np.array(params.S_rec, dtype=dtype)
        O, H = cfg.n_out, cfg.hidden[0]
        self._drive = np.eye(O, dtype=dtype) @ self.S.T
        self._v, self._s, self._tr = np.zeros((O, H), dtype), np.zeros((O, H), dtype), np.zeros((O, H), dtype)
        self.steps: list[tuple] = []

    def matches(self, params: Params, cfg: NetConfig, dtype) -> bool:
        same_rec = (self.S_rec is None) == (params.S_rec is None or not cfg.recurrent)
        return (
            cfg == self.cfg
            and np.dtype(dtype).type is self.dtype
            and same_rec
            and np.array_equal(self.S, params.S)
            and (self.S_rec is None or np.array_equal(self.S_rec, params.S_rec))
        )

    def _grow(self, t: int) -> None:
        cfg, dt = self.cfg, self.dtype
        while len(self.steps) <= t:
            cur = self._drive.copy()
            if self.S_rec is not None:
                cur += self._s @ self.S_rec.T
            v = self._v.copy()
            vpre, s = K.lif_step(v, cur, dt(cfg.leak_m), dt(cfg.vth), cfg.reset == "hard")
            tr = dt(cfg.leak_t) * self._tr + s
            self._v, self._s, self._tr = v, s, tr
            self.steps.append((vpre, s, v, tr))

    def at(self, t: int, rows: np.ndarray | None):
        self._grow(t)
        step = self.steps[t]
        return step if rows is None else tuple(a[rows] for a in step)


def get_cache(cache: PropagatorCache | None, params: Params, cfg: NetConfig, dtype) -> PropagatorCache:
    """Reuse ``cache`` when it was built from the same frozen weights, else build anew."""
    if cache is not None and cache.matches(params, cfg, dtype):
        return cache
    return PropagatorCache(params, cfg, dtype)
