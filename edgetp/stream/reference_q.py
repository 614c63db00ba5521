"""The integer stream, end to end: raw int16 PCM -> the integer frontend's stream
(``edgetp.audio.frontend_q_stream``) -> the model's inputs (``InputNorm.input``) -> the fixed network, never
reset, its readout cleared before each frame so that the step returns the increment d_t = W_L s_t
(``edgetp.stream.network``'s integer path) -> the integer detector ``step_q``.

What a device that hears a continuous stream computes, in integers alone: the reference of a device stream
(issue 32's ``hil --stream``). It differs from ``StreamNet(qm=...)`` only in the frontend: that one quantizes the
float stream features, this one runs the integer frontend on the samples, as the device does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetp.audio.frontend_q_stream import HOP, fe_stream_flush_q, fe_stream_start, fe_stream_step_q
from edgetp.errors import EdgetpError
from edgetp.stream.detector import init_state, step_q


@dataclass(frozen=True)
class FrameQ:
    """One frame's outputs: the network's input x (int16/int8), the readout increments d (int64), the
    detector's report (frame, class, margin) or None and its state after the frame (None without one)."""

    x: np.ndarray
    d: np.ndarray
    report: tuple | None
    det: object = None  # edgetp.stream.detector.DetState


def stream_norm_q(model, qm):
    """The integer input stage ``model`` (quantized as ``qm``) listens to a stream with: its divisors and log
    gain (``InputNorm.for_model``) with the running maximum's decay and look-ahead of
    ``edgetp.stream.features.stream_inputs`` (the model's own, or STREAM_DECAY / STREAM_AHEAD for a model
    normalised by the utterance's maximum)."""
    from dataclasses import replace

    from edgetp.audio.frontend_q import InputNorm
    from edgetp.stream.features import stream_inputs

    inputs, _record = stream_inputs(model)
    base = InputNorm.for_model(model, qm)
    return replace(base, running_max_decay=inputs.running_max_decay, running_max_ahead=inputs.running_max_ahead)


class StreamQ:
    """``hop(pcm)`` one 10 ms hop (160 int16 samples) -> the frames it finished (0, 1, or 5 once at the start);
    ``flush()`` the end of the stream. ``qm``: the integer model; ``norm``: its integer input stage (an
    ``InputNorm`` with ``running_max_decay``: ``stream_norm_q(model, qm)``); ``detq``: the integer detector
    (None: increments only)."""

    def __init__(self, qm, norm, detq=None):
        from edgetp.fixed.network_q import init_state_q

        if norm.xbits != qm.xbits:
            raise EdgetpError(f"the input stage's width {norm.xbits} differs from the model's {qm.xbits}")
        if detq is not None and len(detq.labels) != qm.cfg.n_out:
            raise EdgetpError(f"the detector has {len(detq.labels)} classes, the model's readout {qm.cfg.n_out}")
        self.qm, self.norm, self.detq = qm, norm, detq
        self.fe = fe_stream_start(norm)
        self.net = init_state_q(qm, 1, 0)
        self.det = init_state(detq) if detq is not None else None

    def _frames(self, feats: np.ndarray) -> list:
        from edgetp.fixed.network_q import infer_step_q

        out = []
        for x in self.norm.input(feats):
            self.net.u[:] = 0  # the readout cleared: the step returns this frame's increment
            self.net = infer_step_q(self.qm, self.net, x[None])
            d = self.net.u[0].astype(np.int64)
            rep = None
            if self.det is not None:
                self.det, rep = step_q(self.detq, self.det, d)
            out.append(FrameQ(x, d, rep, self.det))
        return out

    def hop(self, pcm) -> list:
        self.fe, feats = fe_stream_step_q(self.fe, pcm)
        return self._frames(feats)

    def flush(self) -> list:
        self.fe, feats = fe_stream_flush_q(self.fe)
        return self._frames(feats)


def run_pcm(stream: StreamQ, pcm, flush: bool = True) -> list:
    """Every frame of int16 ``pcm`` (whole hops; a last partial hop is refused) through ``stream``."""
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.ndim != 1 or pcm.size % HOP:
        raise EdgetpError(f"the stream takes int16 samples in whole hops of {HOP}, got {pcm.dtype} {pcm.shape}")
    out = []
    for k in range(pcm.size // HOP):
        out += stream.hop(pcm[HOP * k : HOP * (k + 1)])
    return out + (stream.flush() if flush else [])
