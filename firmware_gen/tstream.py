"""Layer 0's class target stream as a constant table in flash (docs/fixed-point.md, section 8):
:func:`target_stream_table` runs the reference's own layer step on each class's one-hot input until the row repeats,
and :func:`resumed_membranes` gives the device's membranes of the rows that do not repeat. ``firmware_gen.layout``
places the table; the device reads it instead of running layer 0's target set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetp.fixed.network_q import _layer
from edgetp.fixed.qconfig import QModel

TSTREAM_MAX_FRAMES = 1024  # a class row's stream that repeats within this many steps is stored as its cycle
# A row that does not repeat is stored for its first TSTREAM_PREFIX_FRAMES steps, and the device runs it
# from the membrane after them: at least one KWS utterance (edgetp.audio.frontend.N_FRAMES = 101 frames,
# 1 s; samples are trained from the reset), plus 27 frames of margin for longer samples.
TSTREAM_PREFIX_FRAMES = 128
_TSTREAM_CACHE: dict = {}


@dataclass
class TargetStream:
    """Layer 0's class target stream in flash (:func:`target_stream_table`), row k = class k:
    ``bits`` (frames, ceil(H/8)) uint8, the spikes of row k's frames from ``off[k]`` on, and per row
    ``pre`` (P) and ``per`` (Q); Q > 0: P + Q frames, then the cycle; Q = 0 (the row does not repeat):
    P = TSTREAM_PREFIX_FRAMES frames, and ``v_resume`` (R, H) int32 holds the membrane after them of
    each such row, in row order (R rows: none when every row repeats)."""

    bits: np.ndarray
    off: np.ndarray
    pre: np.ndarray
    per: np.ndarray
    v_resume: np.ndarray

    @property
    def resumed(self) -> np.ndarray:
        """Rows that do not repeat (resume on the device after their stored frames), in order."""
        return np.flatnonzero(self.per == 0)


def target_stream_table(qm: QModel, targets: str) -> TargetStream | None:
    """The first hidden layer's class target stream as a constant (docs/fixed-point.md, 8).

    With class targets, row k of layer 0's target stream has the constant input one-hot(k) and
    frozen weights (S, S_rec): from the reset it is a fixed sequence of states. It is run here with
    the reference's own ``network_q._layer``; as soon as row k's state (membrane and spikes) before
    step tau equals its state before an earlier step tau0, every later step repeats with period
    tau - tau0 (the step is a function of that state alone). So the spikes of step tau are those of
    frame tau (tau < P + Q) or P + (tau - P) mod Q, with P = tau0 and Q = tau - tau0, exactly.
    A row that does not repeat within TSTREAM_MAX_FRAMES keeps its first P = TSTREAM_PREFIX_FRAMES
    frames (Q = 0) and its state after them: the membrane (``v_resume``) and the spikes (frame P - 1);
    the device runs it from there on, step for step the reference's sequence. None for batch targets."""
    if targets != "classes":
        return None
    w = qm.weights
    F = TSTREAM_PREFIX_FRAMES
    # bytes alone collide: S of shape (H, K) and of (K, H), or int8 and int16 of equal size, hold the same bytes
    arrays = [w["S"]] + ([w["S_rec"]] if qm.cfg.recurrent else [])
    key = (
        *((a.shape, a.dtype.str, a.tobytes()) for a in arrays),
        qm.in_shift(0, True),
        qm.rec_shift(0, True) if qm.cfg.recurrent else 0,
        qm.alpha_q,
        qm.vth_q,
        qm.hard,
        qm.cfg.recurrent,
        TSTREAM_MAX_FRAMES,
        F,
    )
    if key in _TSTREAM_CACHE:
        return _TSTREAM_CACHE[key]
    K, H = qm.cfg.n_out, qm.cfg.hidden[0]
    v, s = np.zeros((K, H), np.int32), np.zeros((K, H), np.int8)
    eye = np.eye(K, dtype=np.int8)
    seen: list[dict] = [{} for _ in range(K)]
    cyc: list = [None] * K
    frames, v_at_f = [], None
    for t in range(TSTREAM_MAX_FRAMES + 1):
        if t == F:
            v_at_f = v.copy()
        for k in range(K):
            if cyc[k] is None:
                st = v[k].tobytes() + s[k].tobytes()
                if st in seen[k]:
                    cyc[k] = (seen[k][st], t - seen[k][st])
                else:
                    seen[k][st] = t
        if all(c is not None for c in cyc):
            break
        v, s, _ = _layer(qm, 0, v, s, eye, True)
        frames.append(s.copy())
    cyc = [c if c is not None else (F, 0) for c in cyc]
    rows, off, n = [], [], 0
    for k, (p, q) in enumerate(cyc):
        off.append(n)
        rows += [np.packbits(frames[t][k].astype(np.uint8), bitorder="little") for t in range(p + q)]
        n += p + q
    resumed = [k for k, c in enumerate(cyc) if c[1] == 0]
    v_resume = v_at_f[resumed] if resumed else np.zeros((0, H), np.int32)
    out = TargetStream(
        np.array(rows, dtype=np.uint8).reshape(n, (H + 7) // 8),
        np.array(off, dtype=np.uint32),
        np.array([c[0] for c in cyc], dtype=np.uint16),
        np.array([c[1] for c in cyc], dtype=np.uint16),
        np.ascontiguousarray(v_resume, dtype=np.int32),
    )
    _TSTREAM_CACHE[key] = out
    return out


def resumed_membranes(tab: TargetStream, vt0: np.ndarray, tt: int) -> np.ndarray:
    """The device's ``vt0_resume`` (R, H) given the reference's layer-0 target membranes ``vt0``
    (K, H) after ``tt`` training steps since the reset: zero until the step that reads a resumed
    row's last stored frame loads its membrane (tt >= P), the reference's from then on."""
    rows = tab.resumed
    live = (tt >= tab.pre[rows].astype(np.int64))[:, None]
    return np.where(live, vt0[rows], 0).astype(np.int32)
