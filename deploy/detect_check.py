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

from edgetp.stream.detector import DetState, init_state, step_q


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
