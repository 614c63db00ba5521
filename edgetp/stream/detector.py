"""The keyword detector: a pure step function over explicit state, float and integer twins (issue 32).

Per frame t it reads the network's readout increments d_t (``edgetp.stream.network``) and

1. sums them over the last W frames (``window``): S_t = d_{t-W+1} + ... + d_t (fewer frames at the stream's
   start): the clip classifier's readout over the last W frames, forgetting what came before;
2. takes the top class k = argmax S_t (the first on ties) and its margin S_t[k] - max_{j != k} S_t[j] (the best
   competing class: another keyword, another word or ``_unknown_``);
3. reports (t, k, margin) when k is a keyword, margin >= its threshold, no report happened in the last
   ``refractory`` frames (every keyword is suppressed for that time) and k is not latched: after a report its class
   stays latched while it remains the top class, so one spoken word, which stays in the window for W frames after
   it ends, is reported once however long the refractory time; another class taking the top re-arms. The latch does
   not depend on the threshold, so without refractory time a higher threshold only removes reports.

Other words and ``_unknown_`` are never reported (they are the "nothing" answer). Thresholds are in readout units
(the float readout's); the integer twin's are those times 2^f, f the readout weights' fractional bits, rounded
(:meth:`DetectorSpec.quantized`). The integer step uses integer arithmetic alone with int32 state: |S| <= W *
max_k sum_j |W_L[k, j]| and a margin <= twice that, checked < 2^31 when its constants are made, so a stream of any
length cannot overflow it. :class:`DetectorQ` is every constant the integer step (and a C twin) reads, declared once.

``scan`` is the vectorised equivalent of running the step over a whole stream (cumulative sums), used for the DET
threshold sweep; tests hold it equal to the step function.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from edgetp.data.labels import KWS12_WORDS
from edgetp.errors import EdgetpError

KEYWORDS = KWS12_WORDS  # the ten core words: the only reported classes
WINDOW = 100  # frames summed (1 s, a clip's length)
REFRACTORY = 50  # frames suppressed after a report (0.5 s)
DEFAULT_THRESHOLD = 10.0  # readout units; chosen on development data (docs/detect.md, "Thresholds")
INT32_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class DetectorSpec:
    """The float detector's constants: labels, window W and refractory time in frames, one threshold per class
    (+inf for classes never reported)."""

    labels: tuple
    window: int = WINDOW
    refractory: int = REFRACTORY
    thresholds: tuple = ()

    @classmethod
    def make(cls, labels, threshold=DEFAULT_THRESHOLD, window: int = WINDOW, refractory: int = REFRACTORY):
        """``threshold``: one number for every keyword, or a dict word -> number (keywords missing from it take
        DEFAULT_THRESHOLD). Refuses a model without the ten keywords and non-positive window / negative times."""
        labels = tuple(str(w) for w in labels)
        missing = [w for w in KEYWORDS if w not in labels]
        if missing:
            raise EdgetpError(
                f"the model's labels lack the keywords {', '.join(missing)}: detect reports the ten "
                f"core words ({' '.join(KEYWORDS)})"
            )
        if isinstance(threshold, dict):
            bad = sorted(set(threshold) - set(KEYWORDS))
            if bad:
                raise EdgetpError(f"thresholds are per keyword ({' '.join(KEYWORDS)}), not for {', '.join(bad)}")
            per = {w: threshold.get(w, DEFAULT_THRESHOLD) for w in KEYWORDS}
        else:
            per = {w: threshold for w in KEYWORDS}
        for w, v in per.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise EdgetpError(f"the threshold of {w!r} must be a finite number, got {v!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise EdgetpError(f"the window must be a whole number of frames >= 1, got {window!r}")
        if isinstance(refractory, bool) or not isinstance(refractory, int) or refractory < 0:
            raise EdgetpError(f"the refractory time must be a whole number of frames >= 0, got {refractory!r}")
        thr = tuple(float(per[w]) if w in per else float("inf") for w in labels)
        return cls(labels, window, refractory, thr)

    @property
    def keyword_mask(self) -> np.ndarray:
        return np.isfinite(np.asarray(self.thresholds))

    def with_threshold(self, value: float) -> "DetectorSpec":
        """The same detector with every keyword's threshold ``value`` (the DET sweep)."""
        return replace(self, thresholds=tuple(value if np.isfinite(t) else t for t in self.thresholds))

    def quantized(self, readout_bits: int, readout_weights: np.ndarray) -> "DetectorQ":
        """The integer detector's constants for a readout whose increments have ``readout_bits`` fractional bits
        (weights ``readout_weights`` (classes, H), which bound them); refuses a window that could overflow int32."""
        row = int(np.abs(np.asarray(readout_weights, dtype=np.int64)).sum(axis=1).max(initial=0))
        if 2 * self.window * row > INT32_MAX:
            raise EdgetpError(
                f"a window of {self.window} frames can overflow the integer detector's int32 sums "
                f"(2 x {self.window} x {row} > 2^31 - 1): use a shorter window"
            )
        thr = [int(np.floor(t * (1 << readout_bits) + 0.5)) if np.isfinite(t) else 0 for t in self.thresholds]
        if any(abs(t) > INT32_MAX for t in thr):
            raise EdgetpError("a threshold does not fit the integer detector's int32 margins")
        return DetectorQ(
            self.labels,
            self.window,
            self.refractory,
            np.asarray(thr, np.int32),
            self.keyword_mask.astype(np.uint8),
            row,
            readout_bits,
        )


@dataclass(frozen=True)
class DetectorQ:
    """Every constant of the integer detector (what a C twin's generated header holds)."""

    labels: tuple
    window: int
    refractory: int
    thresholds: np.ndarray  # int32 (classes,), the readout's format; unused where keyword is 0
    keyword: np.ndarray  # uint8 (classes,): 1 for a reported class
    row_bound: int  # max_k sum_j |W_L[k, j]|: |d_t[k]| <= row_bound
    readout_bits: int

    def c_constants(self) -> dict:
        """Name -> value of the constants a C twin declares (ETP_DET_*)."""
        return {
            "ETP_DET_WINDOW": self.window,
            "ETP_DET_REFRACTORY": self.refractory,
            "ETP_DET_CLASSES": len(self.labels),
            "ETP_DET_THRESHOLD": [int(t) for t in self.thresholds],
            "ETP_DET_KEYWORD": [int(k) for k in self.keyword],
        }


@dataclass(frozen=True)
class DetState:
    """The detector's state: the last W increments (ring ``buf``, row ``pos`` is the oldest), frames seen ``t``,
    frames of suppression left ``hold``, the class reported last while its run above threshold lasts ``latch``
    (-1: none); the integer twin also keeps the window sums ``sums`` (int32)."""

    buf: np.ndarray
    pos: int = 0
    t: int = 0
    hold: int = 0
    latch: int = -1
    sums: np.ndarray | None = None


def init_state(spec, n_classes: int | None = None) -> DetState:
    n = len(spec.labels) if n_classes is None else n_classes
    if isinstance(spec, DetectorQ):
        return DetState(np.zeros((spec.window, n), np.int32), sums=np.zeros(n, np.int32))
    return DetState(np.zeros((spec.window, n), np.float64))


def _decide(spec, sums, state: DetState) -> tuple[int, int, tuple | None]:
    """(frames of suppression left, latched class, report or None) at frame ``state.t`` with window sums ``sums``."""
    k = int(np.argmax(sums))
    rest = np.delete(sums, k)
    margin = sums[k] - (rest.max() if rest.size else sums.dtype.type(0))
    keyword = spec.keyword_mask[k] if isinstance(spec, DetectorSpec) else spec.keyword[k] == 1
    on = bool(keyword and margin >= spec.thresholds[k])
    latch = state.latch if k == state.latch else -1  # re-armed once another class takes the top
    if state.hold > 0:
        return state.hold - 1, latch, None
    if on and latch < 0:
        return spec.refractory, k, (state.t, k, margin)
    return 0, latch, None


def step(spec: DetectorSpec, state: DetState, d) -> tuple[DetState, tuple | None]:
    """Float step: frame increments ``d`` (classes,) -> (new state, (frame, class, margin) or None)."""
    buf = state.buf.copy()
    buf[state.pos] = d
    hold, latch, det = _decide(spec, buf.sum(axis=0), state)
    return DetState(buf, (state.pos + 1) % spec.window, state.t + 1, hold, latch), det


def step_q(spec: DetectorQ, state: DetState, d) -> tuple[DetState, tuple | None]:
    """Integer step: int increments ``d`` (|d| <= spec.row_bound) -> (new state, (frame, class, margin) or
    None), int32 arithmetic only (the window sums move by the new row minus the oldest). Its C twin is
    ``etp_det_step`` (firmware_gen/runtime/etp_detect.c, constants from ``DetectorQ.c_constants()``), equal on
    every state, every step (tests/test_detect_c.py)."""
    d = np.asarray(d)
    if d.dtype.kind not in "iu" or np.abs(d.astype(np.int64)).max(initial=0) > spec.row_bound:
        raise EdgetpError(f"integer increments must be integers within +-{spec.row_bound}")
    buf = state.buf.copy()
    sums = state.sums - buf[state.pos] + d.astype(np.int32)  # |sums| <= W * row_bound < 2^30: no wrap
    buf[state.pos] = d
    hold, latch, det = _decide(spec, sums, state)
    if det is not None:
        det = (det[0], det[1], int(det[2]))
    return DetState(buf, (state.pos + 1) % spec.window, state.t + 1, hold, latch, sums), det


def run(spec, increments, state: DetState | None = None) -> tuple[DetState, list]:
    """The step (float, or integer for a DetectorQ) over (frames, classes) increments from ``state`` (zero)."""
    state = state or init_state(spec, np.shape(increments)[1])
    f = step_q if isinstance(spec, DetectorQ) else step
    out = []
    for d in increments:
        state, det = f(spec, state, d)
        if det is not None:
            out.append(det)
    return state, out


def window_sums(increments, window: int) -> np.ndarray:
    """S_t for every frame, (frames, classes) float64 (exact for integer increments below 2^53)."""
    d = np.asarray(increments, dtype=np.float64)
    c = np.cumsum(np.concatenate([np.zeros((1, d.shape[1])), d]), axis=0)
    lo = np.maximum(np.arange(1, len(d) + 1) - window, 0)
    return c[1:] - c[lo]


def margins(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top class, margin over the runner-up) of each frame's window sums."""
    top = np.argmax(sums, axis=1)
    part = np.partition(sums, -2, axis=1)[:, -2:] if sums.shape[1] > 1 else np.zeros((len(sums), 2))
    return top, sums[np.arange(len(sums)), top] - part[:, 0]


def scan(top, margin, keyword_mask, thresholds, refractory: int) -> list:
    """The step function's reports from precomputed (top, margin) per frame: a segment of frames with one top class
    reports at most once (the latch), at its first frame above threshold out of the refractory time."""
    thr = np.asarray(thresholds, dtype=np.float64)
    top = np.asarray(top)
    seg = np.cumsum(np.r_[0, top[1:] != top[:-1]])
    out, free, last = [], 0, -1
    for t in np.flatnonzero(np.asarray(keyword_mask)[top] & (margin >= thr[top])):
        if t >= free and seg[t] != last:
            out.append((int(t), int(top[t]), margin[t]))
            free, last = t + refractory + 1, seg[t]
    return out
