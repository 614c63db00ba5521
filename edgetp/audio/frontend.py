"""The float feature frontend of the paper (docs/data.md, "Frontend"; tp-algorithm.md §6).

Per utterance, at 16 kHz::

    x      = wave / max|wave|                      (int16 is first scaled by 1/32768)
    x      = centred zero-pad to 16000 samples     ((16000 - n) // 2 zeros before;
                                                    longer inputs are centre-cropped)
    S      = |STFT(x)|^2 @ mel                     (n_fft 480, hop 160, periodic Hann,
                                                    centred frames, zero padding, Slaney
                                                    mel 40 bands 20..4000 Hz)
    L      = log1p(S / max S)                      (all-zero input: L = 0)
    F      = [L, delta(L), delta2(L)]              (librosa ``delta``, width 9, mode interp)

giving (101 frames, 120 features) float32, ordered [40 log-mel, 40 Δ, 40 ΔΔ]. Every
step after the power spectrum is a fixed matrix: the mel filterbank and the two
Savitzky-Golay delta operators are built once (``MEL``, ``DELTA1``, ``DELTA2``), which
is what the integer twin will mirror. It equals librosa's own pipeline within 1e-5
(tests/test_frontend.py).

Normalisation: :func:`normalize_paper` is the paper's two-stage std normalisation of a
batch; :class:`NormConstants` holds fixed per-feature divisors for deployment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SR = 16000
N_SAMPLES = 16000
N_FFT = 480
HOP = 160
N_MELS = 40
FMIN = 20.0
FMAX = 4000.0
DELTA_WIDTH = 9
N_FRAMES = 1 + N_SAMPLES // HOP  # 101
N_FEATURES = 3 * N_MELS  # 120


@dataclass(frozen=True)
class FrontendConfig:
    """The frontend's constants, as stored in a model file's ``frontend`` entry."""

    name: str = "paper-logmel-delta"
    sr: int = SR
    n_samples: int = N_SAMPLES
    n_fft: int = N_FFT
    hop: int = HOP
    n_mels: int = N_MELS
    fmin: float = FMIN
    fmax: float = FMAX
    power: float = 2.0
    delta_width: int = DELTA_WIDTH
    pad_mode: str = "constant"
    frames: int = N_FRAMES
    features: int = N_FEATURES
    order: str = "logmel,delta,delta2"

    def to_dict(self) -> dict:
        return asdict(self)


CONFIG = FrontendConfig()


def _constants():
    import librosa
    import scipy.signal

    window = scipy.signal.get_window("hann", N_FFT, fftbins=True)
    mel = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    eye = np.eye(N_FRAMES)
    deltas = [
        scipy.signal.savgol_filter(eye, DELTA_WIDTH, deriv=k, polyorder=k, axis=-1, mode="interp") for k in (1, 2)
    ]
    return window, mel.astype(np.float64), deltas[0], deltas[1]


# WINDOW (480,), MEL (40, 241); DELTA1/DELTA2 (101, 101): delta(L) = L @ DELTA over time.
WINDOW, MEL, DELTA1, DELTA2 = _constants()


def as_float_16k(x: np.ndarray, sr: int = SR) -> np.ndarray:
    """Samples as float64 at 16 kHz: integers scaled by 1 / 2^(bits - 1) (int16: 1/32768), then resampled
    if ``sr`` is not 16 kHz. The one scaling both frontends use (:func:`prepare`, ``edgetp.audio.pcm.pcm16``)."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / float(2 ** (8 * x.dtype.itemsize - 1))
    else:
        x = x.astype(np.float64)
    if sr != SR:
        from edgetp.audio.wav import resample

        x = resample(x, sr, SR).astype(np.float64)
    return x


def centre(x: np.ndarray) -> np.ndarray:
    """Exactly 16000 samples: (16000 - n) // 2 zeros before a shorter input, the middle of a longer one."""
    n = x.size
    if n >= N_SAMPLES:
        start = (n - N_SAMPLES) // 2
        return x[start : start + N_SAMPLES]
    before = (N_SAMPLES - n) // 2
    return np.pad(x, (before, N_SAMPLES - n - before))


def prepare(wave, sr: int = SR) -> np.ndarray:
    """Scale, peak-normalise and centre to exactly 16000 float64 samples."""
    x = np.asarray(wave)
    if x.ndim != 1:
        raise ValueError(f"expected a mono 1-D wave, got shape {x.shape}")
    x = as_float_16k(x, sr)
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak > 0:
        x = x / peak
    return centre(x)


def _from_prepared(x: np.ndarray) -> np.ndarray:
    """(B, 16000) prepared waves -> (B, 101, 120) float32."""
    half = N_FFT // 2
    padded = np.pad(x, ((0, 0), (half, half)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=1)[:, ::HOP]
    spec = np.fft.rfft(frames * WINDOW, axis=-1)
    power = spec.real**2 + spec.imag**2  # (B, 101, 241)
    S = (power.reshape(-1, power.shape[-1]) @ MEL.T).reshape(len(x), N_FRAMES, N_MELS)
    peak = S.max(axis=(1, 2), keepdims=True)
    L = np.log1p(S / np.where(peak > 0, peak, 1.0))
    # delta over time: L is (B, T, F); out[b, t, f] = sum_i DELTA[i, t] * L[b, i, f]
    d1 = np.matmul(DELTA1.T, L)
    d2 = np.matmul(DELTA2.T, L)
    return np.concatenate([L, d1, d2], axis=2).astype(np.float32)


def features(wave, sr: int = SR) -> np.ndarray:
    """Features of one utterance (int16 or float samples): (101, 120) float32."""
    return _from_prepared(prepare(wave, sr)[None])[0]


def features_batch(waves, sr: int = SR, chunk: int = 128) -> np.ndarray:
    """Features of many utterances (a list of 1-D waves, any lengths): (N, 101, 120) float32."""
    waves = list(waves)
    out = np.empty((len(waves), N_FRAMES, N_FEATURES), dtype=np.float32)
    for i in range(0, len(waves), chunk):
        x = np.stack([prepare(w, sr) for w in waves[i : i + chunk]])
        out[i : i + len(x)] = _from_prepared(x)
    return out


def _safe_std(x: np.ndarray, axis) -> np.ndarray:
    s = np.std(x, axis=axis, keepdims=True, dtype=np.float64)
    s[s == 0] = 1.0
    return s


def normalize_utterance(batch: np.ndarray) -> np.ndarray:
    """Stage 1 of the paper: each (utterance, feature) divided by its std over time."""
    x = np.asarray(batch, dtype=np.float32)
    return (x / _safe_std(x, axis=-2)).astype(np.float32)


def normalize_paper(batch: np.ndarray) -> np.ndarray:
    """The paper's two-stage normalisation of a (N, T, 120) batch.

    Stage 1: each (utterance, feature) divided by its std over time (std 0 -> 1).
    Stage 2: each feature divided by its std over batch x time (std 0 -> 1).
    Standard deviations are population ones (numpy ``ddof=0``). Stage 2 depends on the
    batch; for a fixed, batch-independent version use :class:`NormConstants`.
    """
    x = normalize_utterance(batch)
    return (x / _safe_std(x, axis=(0, 1))).astype(np.float32)


@dataclass
class NormConstants:
    """Fixed per-feature divisors for deployment: ``x / scale`` (scale shaped (120,)).

    ``per_utterance`` says whether stage 1 of the paper (std over the utterance's own
    time axis) is applied before the fixed divisors; it needs the whole utterance
    before the first frame can be used, so streaming devices use ``False``.
    """

    scale: np.ndarray
    per_utterance: bool = False

    @classmethod
    def fit(cls, batch: np.ndarray, per_utterance: bool = False) -> "NormConstants":
        x = normalize_utterance(batch) if per_utterance else np.asarray(batch, dtype=np.float32)
        scale = _safe_std(x.reshape(-1, x.shape[-1]), axis=0)[0]
        return cls(scale.astype(np.float32), per_utterance)

    def apply(self, batch: np.ndarray) -> np.ndarray:
        x = normalize_utterance(batch) if self.per_utterance else np.asarray(batch, dtype=np.float32)
        return (x / self.scale).astype(np.float32)

    def to_arrays(self) -> dict:
        return {"norm_scale": np.asarray(self.scale, np.float32), "norm_per_utterance": np.asarray(self.per_utterance)}

    @classmethod
    def from_arrays(cls, arrays) -> "NormConstants":
        scale = np.asarray(arrays["norm_scale"], dtype=np.float32)
        if scale.shape != (N_FEATURES,) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise ValueError(f"norm_scale must be ({N_FEATURES},) finite and positive")
        per = bool(np.asarray(arrays.get("norm_per_utterance", False)))
        return cls(scale, per)

    def save(self, path) -> None:
        np.savez(path, **self.to_arrays())

    @classmethod
    def load(cls, path) -> "NormConstants":
        with np.load(path, allow_pickle=False) as z:
            return cls.from_arrays(dict(z))
