"""Background noise for the offline corpus (its ``_background_noise_`` folder).

Six seeded 16 kHz recordings stand in for GSC's: white, pink and brown noise, mains hum,
a fan (low-passed noise with a slow wobble) and babble (espeak-ng voices reading
sentences that contain none of the 35 keywords, overlapped). :func:`mix` adds a
segment of one of them to speech at a given signal-to-noise ratio.
"""

from __future__ import annotations

import numpy as np

from edgetp.data.espeak import speak

SR = 16000
SECONDS = 20
NAMES = ("white_noise.wav", "pink_noise.wav", "brown_noise.wav", "hum.wav", "fan.wav", "babble.wav")
# Harvard sentences (public domain), chosen to hold none of GSC's 35 words.
BABBLE_TEXT = (
    "the birch canoe slid across the smooth planks",
    "glue the sheet to the dark blue background",
    "it is easy to tell the depth of a well",
    "these days a chicken leg is a rare dish",
    "rice is often served in round bowls",
    "the juice of lemons makes fine punch",
    "the box was thrown beside the parked truck",
    "the hogs were fed chopped corn and garbage",
    "a large size in stockings is hard to sell",
    "the boy was there when the sun rose",
)
BABBLE_VOICES = (("en-us+m1", 40, 170), ("en-gb+f2", 60, 160), ("en-029+m4", 30, 180), ("en-gb-x-rp+f4", 70, 150))


def _unit(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return (x / (np.abs(x).max() + 1e-12)).astype(np.float32)


def _coloured(rng, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    f[0] = f[1]
    return np.fft.irfft(spec / f ** (exponent / 2.0), n)


def _hum(rng, n: int) -> np.ndarray:
    t = np.arange(n) / SR
    base = 50.0 * (1.0 + 0.002 * rng.standard_normal())
    x = sum(
        a * np.sin(2 * np.pi * k * base * t + rng.uniform(0, 2 * np.pi))
        for k, a in zip((1, 2, 3, 5, 7), (1.0, 0.5, 0.3, 0.15, 0.1))
    )
    return x + 0.05 * rng.standard_normal(n)


def _fan(rng, n: int) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    x = sosfilt(butter(4, 900, fs=SR, output="sos"), rng.standard_normal(n))
    t = np.arange(n) / SR
    return x * (1.0 + 0.3 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi)))


def _babble(rng, n: int) -> np.ndarray:
    out = np.zeros(n)
    for voice, pitch, speed in BABBLE_VOICES:
        pos = int(rng.integers(0, SR))
        while pos < n:
            y = speak(str(BABBLE_TEXT[int(rng.integers(len(BABBLE_TEXT)))]), voice, pitch, speed)
            y = y[: n - pos]
            out[pos : pos + len(y)] += y / (np.abs(y).max() + 1e-12)
            pos += len(y) + int(rng.integers(SR // 10, SR // 2))
    return out


def make_background(seed: int, seconds: int = SECONDS) -> dict[str, np.ndarray]:
    """The corpus's background recordings, file name -> float32 samples in [-1, 1]."""
    n = seconds * SR
    makers = (
        lambda r: r.standard_normal(n),
        lambda r: _coloured(r, n, 1.0),
        lambda r: _coloured(r, n, 2.0),
        lambda r: _hum(r, n),
        lambda r: _fan(r, n),
        lambda r: _babble(r, n),
    )
    return {
        name: _unit(make(np.random.default_rng([seed, 7919, k]))) for k, (name, make) in enumerate(zip(NAMES, makers))
    }


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float, active: slice | None = None) -> np.ndarray:
    """``speech + g * noise`` with g set so that speech power / noise power = ``snr_db``.

    Speech power is measured over ``active`` (the spoken part), not over added silence.
    """
    s = speech[active] if active is not None else speech
    ps = float(np.mean(np.square(s, dtype=np.float64))) or 1e-12
    pn = float(np.mean(np.square(noise, dtype=np.float64))) or 1e-12
    g = np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return (speech + g * noise).astype(np.float32)
