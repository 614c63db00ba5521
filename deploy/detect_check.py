"""The keyword detector's C twin (etp_det_step, over DET_STEP) against the integer reference
``edgetp.stream.detector.step_q``: the whole state after every step, and the reports (issue 32).

The device answers each step with its report, its scalars (t, pos, hold, latch), its window sums
and a CRC-32 of its ring; the reference's state gives the same figures, so a single differing
value anywhere in the state shows at the step that made it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from edgetp.fixed.qconfig import QModel
from edgetp.stream.detector import DetectorQ, DetState, init_state, step_q
from edgetp.tp.config import NetConfig


def expected(st: DetState, det) -> dict:
    """The DET_STEP answer the reference state ``st`` (after the step that reported ``det``) implies."""
    return {
        "fired": int(det is not None),
        "cls": det[1] if det is not None else -1,
        "margin": det[2] if det is not None else 0,
        "t": st.t,
        "pos": st.pos,
        "hold": st.hold,
        "latch": st.latch,
        "buf_crc": zlib.crc32(np.ascontiguousarray(st.buf, "<i4").tobytes()),
    }


@dataclass
class DetResult:
    steps: int = 0
    reports: list = field(default_factory=list)  # the device's (frame, class, margin)
    mismatch: str | None = None  # the first difference, or None
    costs: list = field(default_factory=list)  # the device's counter per step
    state: DetState | None = None  # the reference's state after the last step


def check_stream(dev, spec, increments, state: DetState | None = None) -> DetResult:
    """Drive ``increments`` (frames, classes) through the device's detector (re-initialised first when
    ``state`` is None, else continuing from the reference's ``state``, which the device must hold) and
    step_q alongside; stops at the first difference."""
    start = state is None
    st = init_state(spec) if start else state
    res = DetResult()
    for d in np.asarray(increments):
        st, det = step_q(spec, st, d)
        got = dev.det_step(d, start=start)
        start = False
        res.steps += 1
        res.costs.append(got["cost"])
        if got["fired"]:
            res.reports.append((got["t"] - 1, got["cls"], got["margin"]))
        want = expected(st, det)
        for k, v in want.items():
            if int(got[k]) != int(v):
                res.mismatch, res.state = f"frame {st.t - 1}: {k} is {got[k]} on the device, {v} in step_q", st
                return res
        if not np.array_equal(got["sums"], st.sums):
            j = int(np.flatnonzero(got["sums"] != st.sums)[0])
            res.mismatch = f"frame {st.t - 1}: window sum {j} is {got['sums'][j]} on the device, {st.sums[j]} in step_q"
            return res
    res.state = st
    return res


def carrier_model(labels) -> QModel:
    """3 inputs -> 4 recurrent LIF -> len(labels) classes, int8 weights by a formula (no RNG): a firmware that
    carries a detector needs a model, and the detector only reads its readout's width."""
    n_out = len(labels)
    cfg = NetConfig(3, (4,), n_out, recurrent=True, vth=0.5, leak_m=0.75, leak_t=0.9, gamma=2.0, reset="hard")
    shapes = {"W0": (4, 3), "W1": (n_out, 4), "R0": (4, 4), "S": (4, n_out), "S_rec": (4, 4)}
    weights = {
        n: (((np.arange(r * c) * (37 + 11 * k)) % 201) - 100).reshape(r, c).astype(np.int8)
        for k, (n, (r, c)) in enumerate(shapes.items())
    }
    fw = {"W0": 7, "W1": 6, "R0": 8, "S": 7, "S_rec": 8}
    return QModel(cfg, 8, 10, weights, fw, 16, list(labels))


def crossing_stream(spec: DetectorQ, frames: int, seed: int) -> np.ndarray:
    """Segments of 1-12 frames in which one class (often a keyword, often the previous one again) leads, over
    noise, and stretches of small values (ties): margins rise through and fall below every threshold."""
    rng = np.random.default_rng(seed)
    b, n = spec.row_bound, len(spec.labels)
    kw = np.flatnonzero(spec.keyword)
    out, lead = [], int(kw[0])
    while len(out) < frames:
        lead = lead if rng.random() < 0.3 else int(rng.choice(kw) if rng.random() < 0.7 else rng.integers(n))
        small = rng.random() < 0.2
        for _ in range(int(rng.integers(1, 13))):
            d = rng.integers(-1, 2, n) if small else rng.integers(-b // 3, b // 3 + 1, n)
            if not small:
                d[lead] = rng.integers(b // 2, b + 1)
            out.append(d)
    return np.asarray(out[:frames], np.int64)


def worst_stream(spec: DetectorQ, frames: int) -> np.ndarray:
    """Increments at +-the bound: runs of 220 frames with one keyword at +bound and every other class at -bound
    (sums at +-W bound, margins at 2 W bound), between runs of random extremes."""
    rng = np.random.default_rng(5)
    b, n = spec.row_bound, len(spec.labels)
    kw = np.flatnonzero(spec.keyword)
    out = np.empty((frames, n), np.int64)
    for t in range(frames):
        out[t] = rng.choice([-b, b], n)
        if t % 300 < 220:
            out[t, :] = -b
            out[t, kw[(t // 300) % len(kw)]] = b
    return out
