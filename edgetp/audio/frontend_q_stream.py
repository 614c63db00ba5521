"""The integer frontend on a stream: one 10 ms hop (160 int16 samples) in, the finished frames out.

Only the causal running maximum (``frontend["running_max_decay"]`` D) streams, read A =
``running_max_ahead`` frames later (0: L of frame t depends on frames <= t; the shipped models stream
with ``edgetp.stream.features.stream_inputs``' D and A). What waits is the frame's own window (frame t
covers samples 160 t - 240 .. 160 t + 239, so it is computed one hop and a half after its centre), the
maximum's A frames (L of frame t once frame t + A is in) and Δ / ΔΔ's four frames of look-ahead: frame t
is emitted once frame t + A + 4 is in. The state is explicit and never mutated::

    st = fe_stream_start(norm)                      # or (log_gain=, running_max_decay=, running_max_ahead=)
    st, feats = fe_stream_step_q(st, hop_pcm)       # feats (n, 120) int32 Q.18: n = 0 or 1,
                                                    # 5 once at the start (frames 0..4, when frame A + 8 is in)
    st, feats = fe_stream_flush_q(st)               # the end: zero padding and the last frames

Memory is bounded on an endless stream: < 480 samples, the log-mel rows of the (<= A) frames waiting for
their maximum, and the last 10 L rows.

The stream's frames are the clip's: frame 0 starts with the centring pad, frames 0..3 use the clip's
start rows of the Savitzky-Golay operators (interp), and the flush the end rows, so 100 hops of a
one-second clip and the flush give exactly ``utterance_q``'s 101 frames (tests/test_frontend_q_stream.py).
A stream of N hops has N + 1 frames, as a clip of 160 N samples (it needs N >= 8 for the edge rows).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from edgetp.audio.frontend_q import InputNorm, check_ahead, check_decay, check_log_gain, l_frac, log_offset
from edgetp.audio.frontend_q_kernels import ahead_m, delta_frame, frame_q, l_frame, running_max_q
from edgetp.audio.frontend_q_tables import (
    DELTA1_Q,
    DELTA2_Q,
    FACTORS,
    FFT_PERM,
    G_LUT,
    HALF,
    HOP,
    LOG2_LUT,
    LOG_ZERO,
    MEL_LEN,
    MEL_Q,
    MEL_START,
    N_BINS,
    N_FEATURES,
    N_FFT,
    N_MELS,
    RT_COS,
    RT_SIN,
    TW_COS,
    TW_SIN,
    WINDOW_Q,
    delta_row,
    delta_start,
)
from edgetp.errors import EdgetpError

W = DELTA1_Q.shape[1]  # 9 frames per Δ window
H = W // 2  # 4: Δ's look-ahead


@dataclass(frozen=True)
class FeStream:
    """Everything the stream carries from one hop to the next."""

    log_gain: float
    decay: int  # D, Q.8 of an octave per frame
    ahead: int  # A: frame t is normalised by m[t + A]
    buf: np.ndarray  # the samples of the next frame's window received so far (int16, < 480)
    m: int  # the running maximum after the last computed frame (Q.8; LOG_ZERO before any sound)
    lm: np.ndarray  # (<= A, 40) int64: log-mels of the computed frames whose L waits for m[t + A], oldest first
    L: np.ndarray  # (<= 10, 40) int64: L of the last frames whose L is known, oldest first
    frames: int = 0  # frames whose L is known (computed frames: frames + len(lm))
    emitted: int = 0  # frames whose features were returned
    ended: bool = False  # flushed


def fe_stream_start(
    norm: InputNorm | None = None,
    log_gain: float | None = None,
    running_max_decay: int | None = None,
    running_max_ahead: int | None = None,
) -> FeStream:
    """A new stream, with ``norm``'s log gain, decay and look-ahead (the model's), or the ones given."""
    gain = norm.log_gain if norm is not None else check_log_gain(1.0 if log_gain is None else log_gain)
    decay = norm.running_max_decay if norm is not None else check_decay(running_max_decay)
    if decay is None:
        raise EdgetpError(
            "only a model normalised by the running maximum (frontend running_max_decay) streams: "
            "the utterance's maximum needs the utterance's end"
        )
    ahead = norm.running_max_ahead if norm is not None else check_ahead(running_max_ahead, decay, gain)
    empty = np.zeros((0, N_MELS), np.int64)
    return FeStream(gain, decay, ahead, np.zeros(HALF, np.int16), LOG_ZERO, empty, empty)


def _l_row(st: FeStream, lm: np.ndarray, m: int) -> FeStream:
    """Append L of the oldest waiting frame (log-mel ``lm``, normaliser ``m``)."""
    row = np.zeros(N_MELS, np.int64)
    l_frame(lm, m, G_LUT, log_offset(st.log_gain), l_frac(st.log_gain), row)
    # keep W + 1 rows: at the end, the first frame the flush returns reads one row before the last W
    L = np.concatenate([st.L, row[None]])[-(W + 1) :]
    return replace(st, lm=st.lm[1:], L=L, frames=st.frames + 1)


def _frame(st: FeStream, win: np.ndarray) -> FeStream:
    """Compute the next frame from its 480 samples: log-mel, the running maximum m[f]; then L of frame
    f - A, the one m[f] normalises."""
    power, mel, lm = np.zeros(N_BINS, np.int64), np.zeros(N_MELS, np.int64), np.zeros(N_MELS, np.int64)
    frame_q(
        win.astype(np.int64),
        WINDOW_Q,
        FFT_PERM,
        FACTORS,
        TW_COS,
        TW_SIN,
        RT_COS,
        RT_SIN,
        MEL_Q,
        MEL_START,
        MEL_LEN,
        LOG2_LUT,
        power,
        mel,
        lm,
    )
    m = int(running_max_q(lm, np.int64(st.m), st.decay))
    st = replace(st, m=m, lm=np.concatenate([st.lm, lm[None]]))
    return _l_row(st, st.lm[0], m) if st.lm.shape[0] > st.ahead else st


def _finish(st: FeStream) -> tuple[FeStream, list]:
    """The stream's end: L of the frames still waiting, by the maximum carried on past the last frame
    (``ahead_m``: frame t of the n by max(m[n-1] - D (t + A - n + 1), LOG_ZERO)), and the interior
    frames each new L row completes (emitted as they go: only the last 10 L rows are kept)."""
    last, rows = st.frames + st.lm.shape[0] - 1, []
    while st.lm.shape[0]:
        st = _l_row(st, st.lm[0], int(ahead_m(np.int64(st.m), st.frames + st.ahead - last, st.decay)))
        st, new = _emit(st)
        rows += new
    return st, rows


def _features(st: FeStream, t: int, n: int | None) -> np.ndarray:
    """Features (Q.18) of frame t; n: the stream's frame count if it has ended (the end rows)."""
    if n is None:
        s, r = (0, t) if t < H else (t - H, H)
    else:
        s, r = delta_start(t, n), delta_row(t, n)
    base = st.frames - st.L.shape[0]  # frame index of st.L[0]
    out = np.zeros(N_FEATURES, np.int64)
    delta_frame(st.L, s - base, r, t - base, DELTA1_Q, DELTA2_Q, l_frac(st.log_gain), out)
    return out


def _emit(st: FeStream, n: int | None = None) -> tuple[FeStream, list]:
    """The frames whose Δ window is complete: t >= 4 once frame t + 4 is in (frames 0..3: once frame 8 is);
    with n (ended), every remaining frame."""
    out, t = [], st.emitted
    while t < st.frames and (n is not None or (st.frames - 1 >= (W - 1 if t < H else t + H))):
        out.append(_features(st, t, n))
        t += 1
    return replace(st, emitted=t), out


def _stack(rows: list) -> np.ndarray:
    return np.array(rows, np.int32).reshape(len(rows), N_FEATURES)


def fe_stream_step_q(st: FeStream, hop_pcm) -> tuple[FeStream, np.ndarray]:
    """One hop: 160 int16 samples in; (the new state, the finished frames (n, 120) int32 Q.18)."""
    pcm = np.asarray(hop_pcm)
    if pcm.dtype != np.int16 or pcm.shape != (HOP,):
        raise EdgetpError(f"a stream step takes one hop of {HOP} int16 samples, got {pcm.dtype} {pcm.shape}")
    if st.ended:
        raise EdgetpError("the stream was flushed; start a new one")
    buf = np.concatenate([st.buf, pcm])
    if buf.size >= N_FFT:
        st = _frame(st, buf[:N_FFT])
        buf = buf[HOP:]
    st, rows = _emit(replace(st, buf=buf))
    return st, _stack(rows)


def fe_stream_flush_q(st: FeStream) -> tuple[FeStream, np.ndarray]:
    """The stream's end: the last frames (zero padding, as a clip's end) and every feature row not returned
    yet, the last four with the clip's end rows."""
    if st.ended:
        raise EdgetpError("the stream was already flushed")
    computed = st.frames + st.lm.shape[0]
    hops = (computed + 1) if computed else (st.buf.size - HALF) // HOP
    n = hops + 1
    if n < W:
        raise EdgetpError(
            f"a stream needs at least {W - 1} hops before its end (Δ's edge rows read {W} frames), got {hops}"
        )
    buf, rows = st.buf, []
    while st.frames + st.lm.shape[0] < n:
        buf = np.concatenate([buf, np.zeros(max(0, N_FFT - buf.size), np.int16)])
        st = _frame(st, buf[:N_FFT])
        buf = buf[HOP:]
        st, new = _emit(st)
        rows += new
    st, new = _finish(st)
    rows += new
    st, new = _emit(replace(st, buf=buf, ended=True), n)
    return st, _stack(rows + new)
