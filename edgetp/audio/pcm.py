"""16 kHz int16 PCM for the integer frontend: a wave or a WAV file as the 16-bit samples a microphone
would have delivered (the scaling and centring are the float frontend's, ``edgetp.audio.frontend``)."""

from __future__ import annotations

import numpy as np

from edgetp.audio import frontend as F
from edgetp.errors import EdgetpError


def pcm16(wave, sr: int = F.SR) -> np.ndarray:
    """int16 samples of exactly 16000, centred like the float pipeline (zeros before:
    (16000 - n) // 2; longer inputs centre-cropped). int16 input is used as is; other
    input is resampled to 16 kHz (float) and rounded to int16 (clipped)."""
    x = np.asarray(wave)
    if x.ndim != 1:
        raise EdgetpError(f"expected a mono 1-D wave, got shape {x.shape}")
    if x.dtype != np.int16 or sr != F.SR:
        x = pcm16_samples(F.as_float_16k(x, sr))
    return np.ascontiguousarray(F.centre(x), dtype=np.int16)


def load_pcm16(path) -> np.ndarray:
    """A WAV file as int16 samples at 16 kHz, checked by ``edgetp.audio.wav.probe``: 16-bit PCM
    at 16 kHz is read as stored; anything else is loaded as float at 16 kHz (resampled) and
    rounded to int16 (clipped), as a 16-bit microphone would have delivered it."""
    from edgetp.audio import wav

    info = wav.probe(path)
    if info.sr == F.SR and info.bits == 16 and not info.is_float:
        import soundfile as sf

        try:
            y, _sr = sf.read(str(path), dtype="int16", always_2d=False)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise wav.WavError(path, "unreadable", f"unreadable WAV ({exc})") from None
        return np.ascontiguousarray(y, dtype=np.int16)
    return pcm16_samples(wav.load_16k(path, info=info))


def pcm16_samples(x) -> np.ndarray:
    """Float samples in [-1, 1] -> int16 (round half up of x * 32768, clipped)."""
    return np.clip(np.floor(np.asarray(x, np.float64) * 32768.0 + 0.5), -32768, 32767).astype(np.int16)
