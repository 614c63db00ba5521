"""The network on a stream, never reset: per-frame readout increments (issue 32).

The TP network steps every 10 ms frame as on a clip, from a zero state once at the stream's start and never again:
the hidden LIF membranes leak by ``leak_m`` per frame and are reset by their own spikes (hard reset), so a word is
forgotten by the hidden layers within a few frames once its input has gone (recurrent weights can carry activity
longer, but nothing accumulates without bound there); the traces only serve learning. The readout is the one
integrator (``leak_out`` = 1: u_t = u_{t-1} + W_L s_t), which over a stream never forgets, so the detector does
not read u: it reads the per-frame increment d_t = W_L s_t (u is cleared before each frame, so the step returns
d_t in u), and sums d over a window (``edgetp.stream.detector``). For a clip from a reset state the
sum of its frames' increments is the clip classifier's final readout (leak_out 1).

Float: ``edgetp.tp.network.infer_step``; integer (``--fixed``): ``edgetp.fixed.network_q.infer_step_q`` on the
float features quantized to the model's input format (``to_int_inputs``, as ``finetune --fixed --frontend float``
does). Integer increments are exact int64 sums of int16 weights over 0/1 spikes: |d_t[k]| <= sum_j |W_L[k, j]|,
far inside int32, and u never accumulates (cleared each frame), so nothing overflows however long the stream.
"""

from __future__ import annotations

import numpy as np

from edgetp.errors import EdgetpError


class StreamNet:
    """``run(x)`` (frames, n_in) -> (frames, classes) readout increments, float64 (float) or int64 (integer),
    the network's state carried between calls. ``qm``: an integer QModel (``--fixed``) instead of the float one."""

    def __init__(self, model=None, qm=None):
        if (model is None) == (qm is None):
            raise EdgetpError("StreamNet takes a float model or an integer QModel")
        self.model, self.qm = model, qm
        if qm is not None:
            from edgetp.fixed.network_q import init_state_q

            self.state = init_state_q(qm, 1, 0)
            self.cfg = qm.cfg
        else:
            from edgetp.tp.network import init_state

            self.state = init_state(model.cfg, 1, 0, np.float32)
            self.cfg = model.cfg
        self.frames = 0

    @property
    def readout_bits(self) -> int:
        """Fractional bits of the integer increments (the readout weights' format); 0 for float."""
        return int(self.qm.fw[self.qm.readout_name]) if self.qm is not None else 0

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.cfg.n_in:
            raise EdgetpError(f"stream inputs must be (frames, {self.cfg.n_in}), got {x.shape}")
        out = np.empty((len(x), self.cfg.n_out), np.int64 if self.qm is not None else np.float64)
        if self.qm is not None:
            from edgetp.fixed.finetune import to_int_inputs
            from edgetp.fixed.network_q import infer_step_q

            xq = to_int_inputs(self.qm, x)
            for t in range(len(x)):
                self.state.u[:] = 0
                self.state = infer_step_q(self.qm, self.state, xq[t : t + 1])
                out[t] = self.state.u[0]
        else:
            from edgetp.tp.network import infer_step

            xf = np.ascontiguousarray(x, dtype=np.float32)
            for t in range(len(x)):
                self.state.u[:] = 0
                self.state = infer_step(self.model.params, self.state, xf[t : t + 1], self.cfg)
                out[t] = self.state.u[0]
        self.frames += len(x)
        return out


def listen(inputs, net: StreamNet, blocks) -> np.ndarray:
    """The readout increments (frames, classes) of a stream given as sample blocks (16 kHz floats): the model's
    stream features (``inputs``: its ModelInputs) block by block into ``net``."""
    from edgetp.stream.features import stream_features

    out = [net.run(x) for x in stream_features(inputs, blocks)]
    return np.concatenate(out) if out else np.zeros((0, net.cfg.n_out))
