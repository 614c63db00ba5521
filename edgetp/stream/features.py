"""The model's float frontend over an unbounded 16 kHz stream, block by block (issue 32).

The same computation as a clip's (``edgetp.audio.frontend`` then ``ModelInputs.apply``), made causal:

- frames: the STFT/mel of the paper (``WINDOW``, ``MEL``, ``HOP``), centred: frame t is centred on sample
  t * HOP, with N_FFT / 2 = 240 zeros before the stream's first sample and after its last, as a clip's;
- ``l = log2 S``, normalised by the running maximum (``edgetp.kws.data.running_max``) carried from block to block
  and read ``ahead`` frames later (``edgetp.kws.data.read_ahead``: frame t waits for frame t + ahead; the stream's
  end continues the maximum by its decay, as silence would), ``L = log1p(g * 2^(l - m))``: no peak normalisation
  of the wave is needed, a gain cancels in l - m;
- Δ / ΔΔ: the clip's Savitzky-Golay operators, central 9-tap in the interior (4 frames of look-ahead: 40 ms of
  latency), the clip's ``interp`` edge rows for the stream's first and last 4 frames;
- the model's fixed divisors (a model with per-utterance normalisation cannot stream and is refused).

Frame t is emitted once frame t + ahead + 4 has arrived. Memory is bounded by the block: the state is the running
maximum, the last ahead + 8 log-mel frames and fewer than 480 samples, so a
30-minute stream is read in blocks of any size.
"""

from __future__ import annotations

import numpy as np

from edgetp.audio.frontend import DELTA1, DELTA2, DELTA_WIDTH, HOP, MEL, N_FFT, N_FRAMES, N_MELS, WINDOW
from edgetp.errors import EdgetpError
from edgetp.kws.data import RUNNING_MAX_F

HALF = DELTA_WIDTH // 2  # 4 frames of look-ahead (and history) for Δ / ΔΔ
PAD = N_FFT // 2  # the centred frames' zero padding, as a clip's
_MID = N_FRAMES // 2
# interior taps (9,), start rows (9 frames -> the first 4 outputs), end rows (last 9 -> last 4), per operator
_OPS = [
    (D[_MID - HALF : _MID + HALF + 1, _MID], D[:DELTA_WIDTH, :HALF], D[-DELTA_WIDTH:, -HALF:]) for D in (DELTA1, DELTA2)
]


# The normaliser a model normalised by the utterance's maximum (the shipped ones) streams with: the running maximum
# falling 2/256 octave (2.35 dB/s) per frame, read 50 frames (0.5 s) later. On the 30 real choose speakers' clips
# it costs the shipped models nothing against the utterance's maximum, where the plain causal maximum (A = 0) costs
# about 15 pp (experiments/results/stream/causal-frontends.json); in a stream: ahead-shipped.json there.
STREAM_DECAY = 2
STREAM_AHEAD = 50


def check_streamable(inputs) -> None:
    """Refuse (EdgetpError) a model input stage that needs a whole utterance before its first frame."""
    if inputs.per_utterance:
        raise EdgetpError(
            "the model divides each feature by its std over the utterance (per_utterance), which a "
            "stream has not; it cannot listen to a stream"
        )
    if getattr(inputs, "running_max_decay", None) is None:
        raise EdgetpError(
            "the input stage normalises by the utterance's maximum (a whole second must be heard first); "
            "stream it with stream_inputs(model): a running maximum read ahead"
        )


def stream_inputs(model):
    """(ModelInputs, record): the input stage ``model`` listens to a stream with, and what the JSON says of it.

    A model that records ``frontend["running_max_decay"]`` streams as it was trained: its decay and its
    ``running_max_ahead`` (absent: 0). A model normalised by the utterance's maximum streams with STREAM_DECAY
    and STREAM_AHEAD. Per-utterance std normalisation is refused."""
    from dataclasses import replace

    from edgetp.kws.protocol import model_norm

    inputs = model_norm(model)
    if inputs.per_utterance:
        check_streamable(inputs)
    if inputs.running_max_decay is None:
        inputs = replace(inputs, running_max_decay=STREAM_DECAY, running_max_ahead=STREAM_AHEAD)
        why = (
            "the model normalises by the utterance's maximum: it streams with the running maximum read ahead "
            f"(STREAM_DECAY {STREAM_DECAY}, STREAM_AHEAD {STREAM_AHEAD}), which on clips scores as the "
            "utterance's maximum"
        )
    else:  # model_norm has read and checked its running_max_ahead
        why = "the model's own running maximum (frontend running_max_decay, running_max_ahead)"
    return inputs, {
        "decay": inputs.running_max_decay,
        "ahead": inputs.running_max_ahead,
        "latency_frames": latency_frames(inputs),
        "latency_s": round(latency_frames(inputs) * HOP / 16000, 2),
        "why": why,
    }


def latency_frames(inputs) -> int:
    """Frames between a frame's arrival and the network hearing it: the look-ahead, then Δ's."""
    return int(inputs.running_max_ahead) + HALF


class StreamFeatures:
    """``push(samples)`` -> the model inputs (k, 120) float32 of the frames completed so far; ``finish()`` -> the
    rest (the stream's last frames, with the clip's end rows). ``inputs``: the model's ModelInputs (a stream
    input stage: :func:`stream_inputs`). Frame t comes out once frame t + ahead + 4 has arrived."""

    def __init__(self, inputs):
        check_streamable(inputs)
        self.gain = float(inputs.log_gain)
        self.step = inputs.running_max_decay / float(1 << RUNNING_MAX_F)
        self.ahead = int(inputs.running_max_ahead)
        self.scale = np.asarray(inputs.scale, dtype=np.float32)
        self.wave = np.zeros(PAD)  # samples from the next frame's first one on
        self.m = -np.inf  # running maximum of log2 S after the last frame
        self.l2 = np.zeros((0, N_MELS))  # log2 S of the frames not yet normalised (their m[t + ahead] unknown)
        self.mx = np.zeros(0)  # the running maximum of those frames and of the ones after them
        self.hist = np.zeros((0, N_MELS))  # L of the frames not yet emitted, plus up to 2 * HALF before them
        self.first = 0  # stream frame index of hist[0]
        self.emitted = 0  # frames emitted so far
        self.samples = 0
        self.done = False

    def _frames(self, n: int) -> None:
        """log2 S and the running maximum of the next n frames from self.wave, onto self.l2 / self.mx."""
        fr = np.lib.stride_tricks.sliding_window_view(self.wave[: (n - 1) * HOP + N_FFT], N_FFT)[::HOP]
        spec = np.fft.rfft(fr * WINDOW, axis=-1)
        S = (spec.real**2 + spec.imag**2) @ MEL.T
        self.wave = self.wave[n * HOP :]
        with np.errstate(divide="ignore"):
            l2 = np.log2(S)
        # m_t = max(peak_t, m_{t-1} - step) unrolled: max_s (peak_s + step s) - step t, from the carried m
        k = np.arange(n)
        peak = l2.max(axis=1)
        m = np.maximum(np.maximum.accumulate(peak + self.step * k) - self.step * k, self.m - self.step * (k + 1))
        self.m = m[-1]
        self.l2 = np.concatenate([self.l2, l2])
        self.mx = np.concatenate([self.mx, m])

    def _normalise(self, end: bool) -> None:
        """L of the pending frames whose m[t + ahead] is known (``end``: all, the maximum continued past the
        stream's last frame by the decay, as silence would), onto self.hist."""
        n = len(self.l2) if end else max(0, len(self.mx) - self.ahead)
        if n == 0:
            return
        t = np.arange(n) + self.ahead  # the frames (buffer indices) whose maximum normalises them
        past = t - len(self.mx) + 1  # > 0: past the stream's end, where m falls by the decay per frame
        later = np.where(past > 0, self.m - self.step * past, self.mx[np.minimum(t, len(self.mx) - 1)])
        l2 = self.l2[:n]
        with np.errstate(invalid="ignore"):
            r = np.where(
                np.isfinite(later)[:, None], np.exp2(l2 - np.where(np.isfinite(later), later, 0.0)[:, None]), 0.0
            )
        self.hist = np.concatenate([self.hist, np.log1p(self.gain * np.nan_to_num(r, nan=0.0))])
        self.l2, self.mx = self.l2[n:], self.mx[n:]

    def _emit(self, stop: int, end: bool) -> np.ndarray:
        """Features of frames emitted..stop-1 from hist (``end``: the last frame of the stream is stop-1)."""
        H, t0 = self.hist, self.first
        n_total = t0 + len(H)
        out = np.empty((stop - self.emitted, 3 * N_MELS))
        for i, t in enumerate(range(self.emitted, stop)):
            row = [H[t - t0]]
            for mid, start, tail in _OPS:
                if t < HALF:
                    row.append(start[:, t] @ H[:DELTA_WIDTH])
                elif end and t >= n_total - HALF:
                    row.append(tail[:, t - (n_total - HALF)] @ H[n_total - DELTA_WIDTH - t0 :])
                else:
                    row.append(mid @ H[t - HALF - t0 : t + HALF + 1 - t0])
            out[i] = np.concatenate(row)
        self.emitted = stop
        # the next frame reads from stop - HALF on (stop - 5 for the end rows): keep 2 * HALF frames before it
        keep = max(0, stop - 2 * HALF - t0)
        self.hist, self.first = H[keep:], t0 + keep
        return (out.astype(np.float32) / self.scale).astype(np.float32)

    def push(self, samples) -> np.ndarray:
        if self.done:
            raise EdgetpError("the stream was finished; start a new StreamFeatures")
        x = np.asarray(samples, dtype=np.float64).reshape(-1)
        self.samples += x.size
        self.wave = np.concatenate([self.wave, x])
        n = (self.wave.size - N_FFT) // HOP + 1 if self.wave.size >= N_FFT else 0
        if n > 0:
            self._frames(n)
            self._normalise(False)
        known = self.first + len(self.hist)
        ready = known - HALF if known >= DELTA_WIDTH else 0  # 4 successors known (the start rows: frames 0..8)
        return self._emit(ready, False) if ready > self.emitted else self._empty()

    def finish(self) -> np.ndarray:
        """The stream's remaining frames (1 + samples // HOP in all, as a clip's 101 for 16000 samples)."""
        if self.done:
            raise EdgetpError("the stream was already finished")
        self.done = True
        n_frames = 1 + self.samples // HOP
        if n_frames < DELTA_WIDTH:
            raise EdgetpError(
                f"a stream of {self.samples} samples is too short: Δ needs {DELTA_WIDTH} frames "
                f"({(DELTA_WIDTH - 1) * HOP} samples at 16 kHz)"
            )
        self.wave = np.concatenate([self.wave, np.zeros(PAD)])
        n = n_frames - (self.first + len(self.hist) + len(self.l2))
        if n > 0:
            self._frames(n)
        self._normalise(True)
        return self._emit(n_frames, True)

    def _empty(self) -> np.ndarray:
        return np.zeros((0, 3 * N_MELS), np.float32)


def stream_features(inputs, blocks):
    """Yield the model inputs of a stream given as an iterable of sample blocks (float, 16 kHz), block by block."""
    fe = StreamFeatures(inputs)
    for b in blocks:
        out = fe.push(b)
        if len(out):
            yield out
    out = fe.finish()
    if len(out):
        yield out
