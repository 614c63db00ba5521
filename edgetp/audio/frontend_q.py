"""The integer twin of the paper's frontend: 16 kHz int16 PCM -> 101 x [40 log-mel, 40 Δ, 40 ΔΔ].

Only integer arithmetic (numba-compiled, identical with ``NUMBA_DISABLE_JIT=1``); the C
twin ``etp_frontend.c`` (firmware_gen/runtime) must reproduce every intermediate bit for
bit. docs/fixed-point.md §9 documents each Q-format and rounding; in short, per frame::

    p[n]   = pcm[n] * WINDOW_Q[n]                   int32 (Q.15 window, exact)
    s      = bitlen(max |p|) - FRAME_BITS            per-frame block exponent
    y[n]   = round_shift(p[n], s)   (s <= 0: p << -s)   |y| <= 2^20
    Z      = FFT_240(y[2n] + i y[2n+1])              mixed radix 4*4*3*5, Q2.30 twiddles,
                                                     one round_shift(., 30) per output and stage
    2X[k]  = A + round_shift(-i W_480^k B, 30)       the real-FFT split (A, B from Z[k], Z[240-k])
    P[k]   = re^2 + im^2                             int64, k = 0 .. N_BINS-1 (the bins the mel bands use)
    S[b]   = sum_k MEL_Q[b, k] * round_shift(P[k], P_SHIFT)     int64 (weights Q.15 of the largest)
    l[b]   = round_shift(log2(S[b]) + 2 s, in Q.16 -> Q.LOG_F)   int16, LOG_ZERO when S[b] = 0

and per utterance (the whole-utterance part: the maximum and Δ's look-ahead)::

    m      = max l                                    (all LOG_ZERO: every L = 0)
             or, for a model with frontend["running_max_decay"] = D, per frame and causal:
    m[t]   = max(max_b l[t, b], max(m[t-1] - D, LOG_ZERO)),  m[-1] = LOG_ZERO
                                                      (the float's D / 256 octave per frame exactly;
                                                      L of frame t is then final when frame t is)
             read A = running_max_ahead frames later: frame t by m[t + A], past the last frame
             max(m[last] - D k, LOG_ZERO) (the float's read_ahead; L of frame t final when frame t + A is)
    e      = l - m + C,   C = round(log2(g) * 2^8)    the model's log gain g as an offset (Q.8, like l)
    L      = ln(1 + 2^e) = ln(1 + g S / max S)        int16 Q.L_F(g): G_LUT = ln(1 + 2^-d) (step 1/32,
                                                      linear interpolation) at d = |e|, + e ln 2 when e > 0
    F      = [L << (18 - L_F), round_shift(D1 . L, 6 + L_F), round_shift(D2 . L, 6 + L_F)]   int32 Q.FEAT_F (18)
    x      = sat(round_shift(F * NORM_M[j], NORM_S[j]))                     the model's input (int16 Q.fx)

``g`` is the model's ``frontend["log_gain"]`` (1, the paper's log1p(S / max S), unless the
model records another; ``edgetp.kws.data.recompress``); L's Q-format is the finest that holds
ln(1 + g) in an int16 (Q.15 for g = 1, so g = 1 is the paper's frontend bit for bit; Q.12 for
g = 1000). ``l`` is scale-free in the input (S / max S is), so the float pipeline's peak
normalisation is not needed; the per-frame exponent ``s`` keeps quiet frames at full
precision. Frames are centred like librosa's: frame t covers samples 160 t - 240 ..
160 t + 239 of the 16000-sample utterance (zeros outside). Everything is a function of
one frame's 480 samples except ``m`` (needs every frame) and Δ/ΔΔ (four frames of
look-ahead, and ``m``), so a device computes ``l`` per 10 ms hop and keeps 101 x 40 int16
(8 080 B) of them until the utterance ends. With the running maximum only Δ waits: the
streaming step is ``frontend_q_stream``. The tables live in ``frontend_q_tables``, the numba
kernels in ``frontend_q_kernels``, PCM reading in ``edgetp.audio.pcm``; this module is the
pipeline and keeps all their public names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edgetp.audio import frontend as F
from edgetp.audio.ahead import check_running_max_ahead
from edgetp.audio.frontend_q_kernels import all_frames_q, features_from_l, logmel_to_l, logmel_to_l_ahead
from edgetp.audio.frontend_q_kernels import fft240_q as fft240_q, frame_q as frame_q, log2_q as log2_q
from edgetp.audio.frontend_q_kernels import normalise_q as normalise_q
from edgetp.audio.frontend_q_tables import *  # noqa: F403 (its __all__: the tables and Q-formats, public here too)
from edgetp.audio.frontend_q_tables import (
    DECAY_MAX,
    DELTA1_Q,
    DELTA2_Q,
    DELTA_ROW,
    DELTA_START,
    FEAT_F,
    FRAME_TABLES,
    G_LUT,
    L_F_MAX,
    LOG_F,
    LOG_GAIN_MAX,
    N_BINS,
    N_FEATURES,
    N_FRAMES,
    N_MELS,
    N_SAMPLES,
    NORM_M_BITS,
)
from edgetp.audio.pcm import load_pcm16 as load_pcm16, pcm16, pcm16_samples as pcm16_samples
from edgetp.errors import EdgetpError


# ----------------------------------------------------------------------------- the log gain
def check_log_gain(gain) -> float:
    """The model's log gain g as a float, or an EdgetpError if the integer frontend cannot take it."""
    try:
        g = float(gain)
    except (TypeError, ValueError):
        raise EdgetpError(f"the integer frontend's log gain must be a number, got {gain!r}") from None
    if not (math.isfinite(g) and 1.0 <= g <= LOG_GAIN_MAX):
        raise EdgetpError(f"the integer frontend takes a log gain 1 <= g <= {LOG_GAIN_MAX}, got {gain}")
    return g


def log_offset(gain) -> int:
    """C = round(log2(g) * 2^LOG_F): the log gain as an offset of the log-mel (Q.LOG_F).
    Its rounding (<= 2^-9 in log2) scales g by at most 2^(1/512) (0.14 %)."""
    return int(math.floor(math.log2(check_log_gain(gain)) * (1 << LOG_F) + 0.5))


def l_frac(gain) -> int:
    """L's Q-format for log gain g: the finest (<= L_F_MAX) in which L = ln(1 + g) (the
    largest, at e = C), computed with the integer step itself, fits an int16 with 8 LSB to spare."""
    return _l_frac(check_log_gain(gain))


@lru_cache(maxsize=None)
def _l_frac(gain: float) -> int:
    c = log_offset(gain)
    one = np.zeros((1, 1), np.int64)
    for f in range(L_F_MAX, -1, -1):
        out = np.zeros((1, 1), np.int64)
        logmel_to_l(one, G_LUT, c, f, out)
        if out[0, 0] <= 32767 - 8:
            return f
    raise EdgetpError(f"no int16 Q-format holds ln(1 + {gain:g})")


def check_ahead(ahead, decay: int | None, gain: float = 1.0) -> int:
    """The running maximum's look-ahead A (frames; None: 0) as an int, or an EdgetpError: it needs a
    running maximum, and L must fit its int16 Q.l_frac(g) at the largest exponent A allows. m[t + A] >=
    m[t] - D A >= l[t] - D A (the maximum falls by D per frame at most), so e = l - m + C <= C + D A."""
    a = check_running_max_ahead(ahead, "the integer frontend's running-maximum look-ahead")
    if a and decay is None:
        raise EdgetpError("a running-maximum look-ahead needs a running maximum (running_max_decay)")
    if a:
        out = np.zeros((1, 1), np.int64)
        logmel_to_l(np.zeros((1, 1), np.int64), G_LUT, log_offset(gain) + decay * a, l_frac(gain), out)
        if out[0, 0] > 32767:
            raise EdgetpError(
                f"with decay {decay} and look-ahead {a}, L of log gain {gain:g} (up to ln(1 + g 2^(D A / 256))) "
                f"overflows its int16 Q.{l_frac(gain)}: take a smaller decay or look-ahead"
            )
    return a


def check_decay(decay) -> int | None:
    """The running maximum's decay D as an int (None: the utterance's maximum), or an EdgetpError.
    D is in Q.LOG_F of an octave per frame, the unit of the float's ``running_max_decay`` (D / 256)."""
    if decay is None:
        return None
    if isinstance(decay, bool) or not isinstance(decay, (int, np.integer)) or not 1 <= int(decay) <= DECAY_MAX:
        raise EdgetpError(
            f"the integer frontend's running-maximum decay must be a whole number in 1..{DECAY_MAX} "
            f"(1/256 of an octave per frame), got {decay!r}"
        )
    return int(decay)


# ----------------------------------------------------------------------------- API
@dataclass(frozen=True)
class InputNorm:
    """The model's input stage in integers: its log gain g (L = ln(1 + g S / max S), the twin of
    ``edgetp.kws.data.recompress``; max S the utterance's, or the causal running maximum with decay
    ``running_max_decay``), then x = sat(round_shift(F * m[j], s[j])), the twin of
    ``quantize_inputs(F_float / norm_scale, fx, xbits)``."""

    m: np.ndarray  # (120,) int64, in [2^14, 2^15)
    s: np.ndarray  # (120,) int64, >= 1
    fx: int
    xbits: int
    log_gain: float = 1.0
    running_max_decay: int | None = None  # D: the running maximum falls D / 256 octave per frame
    running_max_ahead: int = 0  # A: frame t is normalised by the running maximum of frame t + A

    def __post_init__(self):
        check_ahead(self.running_max_ahead, self.running_max_decay, self.log_gain)

    @property
    def log_offset(self) -> int:
        """C = round(log2(g) * 2^LOG_F), the offset added to l - max l."""
        return log_offset(self.log_gain)

    @property
    def l_frac(self) -> int:
        """L's Q-format (15 for g = 1)."""
        return l_frac(self.log_gain)

    @classmethod
    def from_scale(
        cls,
        scale,
        fx: int,
        xbits: int = 16,
        log_gain: float = 1.0,
        running_max_decay: int | None = None,
        running_max_ahead: int | None = 0,
    ) -> "InputNorm":
        scale = np.ones(N_FEATURES) if scale is None else np.asarray(scale, dtype=np.float64)
        if scale.shape != (N_FEATURES,) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise EdgetpError(f"the input normalisation must be {N_FEATURES} positive divisors")
        ms, ss = [], []
        for d in scale:
            ratio = 2.0 ** (fx - FEAT_F) / float(d)  # x_q = F_q * ratio
            s = NORM_M_BITS - 1 - math.floor(math.log2(ratio))
            m = int(round(ratio * 2.0**s))
            if m >= 1 << NORM_M_BITS:
                m, s = m >> 1, s - 1
            if not 1 <= s <= 62:
                raise EdgetpError(f"input divisor {d:g} with fx {fx} is out of the integer frontend's range")
            ms.append(m)
            ss.append(s)
        return cls(
            np.array(ms, np.int64),
            np.array(ss, np.int64),
            int(fx),
            int(xbits),
            check_log_gain(log_gain),
            check_decay(running_max_decay),
            check_ahead(running_max_ahead, check_decay(running_max_decay), check_log_gain(log_gain)),
        )

    @classmethod
    def for_model(cls, model, qm) -> "InputNorm":
        """The input stage of ``model`` (edgetp.model.Model) quantized as ``qm`` (QModel)."""
        if (model.frontend or {}).get("per_utterance"):
            raise EdgetpError(
                "the model normalises each utterance by its own std; the integer frontend "
                "implements fixed per-feature divisors (norm_scale) only"
            )
        fe = model.frontend or {}
        if fe.get("channel_norm"):
            raise EdgetpError(
                "the model normalises each mel band by its mean (frontend channel_norm); the integer frontend "
                "has no twin of it yet: run this model with the float frontend"
            )
        return cls.from_scale(
            model.norm_scale,
            qm.fx,
            qm.xbits,
            fe.get("log_gain", 1.0),
            fe.get("running_max_decay"),
            fe.get("running_max_ahead", 0),
        )

    @property
    def limits(self) -> tuple[int, int]:
        hi = (1 << (self.xbits - 1)) - 1
        return -hi - 1, hi

    def input(self, feats: np.ndarray) -> np.ndarray:
        """The model's input (…, 120) int16 (or int8) of features (…, 120) Q.FEAT_F."""
        f = np.asarray(feats, np.int64).reshape(-1, N_FEATURES)
        x = np.zeros_like(f)
        lo, hi = self.limits
        normalise_q(f, self.m, self.s, lo, hi, x)
        return x.reshape(np.shape(feats)).astype(np.int8 if self.xbits == 8 else np.int16)


@dataclass
class Intermediates:
    """Every intermediate of one utterance (what verify-c --frontend compares)."""

    shift: np.ndarray  # (101,) frame exponents
    power: np.ndarray  # (101, N_BINS) int64
    mel: np.ndarray  # (101, 40) int64
    logmel: np.ndarray  # (101, 40) Q.8 (int16 range)
    lmax: int  # the utterance's maximum (running maximum: its value after the last frame)
    L: np.ndarray  # (101, 40) Q.l_frac(log gain) (Q.15 for gain 1)
    feats: np.ndarray  # (101, 120) Q.18 int32
    x: np.ndarray | None  # (101, 120) model input (int16/int8), when a norm is given
    m: np.ndarray | None = None  # (101,) the running maximum after each frame (Q.8), for such a model


def frames_q(pcm: np.ndarray):
    """(shift, power, mel, logmel) of the 101 frames of 16000 int16 samples."""
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.shape != (N_SAMPLES,):
        raise EdgetpError(
            f"the integer frontend takes {N_SAMPLES} int16 samples (use pcm16), got {pcm.dtype} {pcm.shape}"
        )
    shifts = np.zeros(N_FRAMES, np.int64)
    power = np.zeros((N_FRAMES, N_BINS), np.int64)
    mel = np.zeros((N_FRAMES, N_MELS), np.int64)
    logmel = np.zeros((N_FRAMES, N_MELS), np.int64)
    all_frames_q(pcm.astype(np.int64), *FRAME_TABLES, shifts, power, mel, logmel)
    return shifts, power, mel, logmel


def utterance_q(
    pcm: np.ndarray,
    norm: InputNorm | None = None,
    log_gain: float | None = None,
    running_max_decay: int | None = None,
    running_max_ahead: int | None = None,
) -> Intermediates:
    """Every intermediate of one utterance (16000 int16 samples). The log gain and the running
    maximum's decay and look-ahead are ``norm``'s (the model's); without ``norm``, ``log_gain`` (default 1,
    the paper's features), ``running_max_decay`` (default None: the utterance's maximum) and
    ``running_max_ahead`` (default 0)."""
    if norm is not None and log_gain is not None and check_log_gain(log_gain) != norm.log_gain:
        raise EdgetpError(f"log gain {log_gain:g} differs from the input stage's {norm.log_gain:g}")
    if norm is not None and running_max_decay is not None and check_decay(running_max_decay) != norm.running_max_decay:
        raise EdgetpError(
            f"running-maximum decay {running_max_decay} differs from the input stage's {norm.running_max_decay}"
        )
    if norm is not None and running_max_ahead is not None and running_max_ahead != norm.running_max_ahead:
        raise EdgetpError(
            f"running-maximum look-ahead {running_max_ahead} differs from the input stage's {norm.running_max_ahead}"
        )
    gain = norm.log_gain if norm is not None else (1.0 if log_gain is None else log_gain)
    decay = norm.running_max_decay if norm is not None else check_decay(running_max_decay)
    ahead = norm.running_max_ahead if norm is not None else check_ahead(running_max_ahead, decay, check_log_gain(gain))
    lf = l_frac(gain)
    shifts, power, mel, logmel = frames_q(pcm)
    L = np.zeros((N_FRAMES, N_MELS), np.int64)
    m = None
    if decay is None:
        lmax = logmel_to_l(logmel, G_LUT, log_offset(gain), lf, L)
    else:
        m = np.zeros(N_FRAMES, np.int64)
        lmax = logmel_to_l_ahead(logmel, G_LUT, log_offset(gain), lf, decay, ahead, L, m)
        m = m.astype(np.int32)
    feats = np.zeros((N_FRAMES, N_FEATURES), np.int64)
    features_from_l(L, DELTA1_Q, DELTA2_Q, DELTA_START, DELTA_ROW, lf, feats)
    x = None if norm is None else norm.input(feats)
    return Intermediates(
        shifts, power, mel, logmel.astype(np.int16), int(lmax), L.astype(np.int16), feats.astype(np.int32), x, m
    )


def features_q(
    wave, sr: int = F.SR, log_gain: float = 1.0, running_max_decay: int | None = None, running_max_ahead: int = 0
) -> np.ndarray:
    """The integer features dequantised to the float pipeline's scale: (101, 120) float32
    comparable with ``edgetp.audio.frontend.features`` (log gain 1) or
    ``edgetp.kws.data.recompress(features, log_gain, running_max_decay, running_max_ahead)``."""
    it = utterance_q(
        pcm16(wave, sr), log_gain=log_gain, running_max_decay=running_max_decay, running_max_ahead=running_max_ahead
    )
    return (it.feats.astype(np.float64) / (1 << FEAT_F)).astype(np.float32)


def model_input_q(wave, norm: InputNorm, sr: int = F.SR) -> np.ndarray:
    """What the device feeds its network: (101, 120) int16 (or int8) in Q.fx."""
    return utterance_q(pcm16(wave, sr), norm).x
