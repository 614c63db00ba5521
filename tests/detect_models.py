"""Tiny models and streams for the detect tests: a hand-wired "tone" model whose predictions are known by design,
and a random one. Not a test module (no test_ prefix)."""

from __future__ import annotations

import numpy as np

from edgetp.audio.frontend import MEL, N_FFT
from edgetp.data.labels import label_names
from edgetp.model import Model
from edgetp.stream.detector import KEYWORDS
from edgetp.tp.config import NetConfig, init_params

SR = 16000
LABELS = label_names("paper")
OTHER = "bed"  # a non-keyword word the tone model also "hears"
WORDS = list(KEYWORDS) + [OTHER]
BANDS = [6 + 3 * g for g in range(len(KEYWORDS))] + [37]  # one mel band per word, 3 bands apart
FREQ = {w: float(np.fft.rfftfreq(N_FFT, 1 / SR)[MEL[b].argmax()]) for w, b in zip(WORDS, BANDS)}


def tone_model(decay: int = 2) -> Model:
    """120-11r-36, hidden neuron g driven by mel band BANDS[g] alone, read out as word g: a tone at FREQ[w] makes
    the model say w (running max ``decay``, log gain 1000, divisors 1)."""
    cfg = NetConfig(120, (len(WORDS),), len(LABELS), recurrent=True)
    p = init_params(cfg, 0)
    p.W[0][:] = 0
    p.R[0][:] = 0
    p.W[1][:] = 0
    for g, (w, b) in enumerate(zip(WORDS, BANDS)):
        p.W[0][g, b] = 0.1
        p.W[1][LABELS.index(w), g] = 1.0
    return Model(
        cfg,
        p,
        LABELS,
        frontend={"log_gain": 1000.0, "running_max_decay": decay},
        recipe={"fixed": {"wbits": 16, "xbits": 16, "fx": 10, "headroom": 1.0}},
        norm_scale=np.ones(120, np.float32),
    )


def random_model(hidden: int = 16, seed: int = 3) -> Model:
    cfg = NetConfig(120, (hidden,), len(LABELS), recurrent=True)
    p = init_params(cfg, seed)
    p.W[0] *= 4.0  # enough input current for spikes on the features
    return Model(
        cfg, p, LABELS, frontend={"log_gain": 1000.0, "running_max_decay": 2}, norm_scale=np.ones(120, np.float32)
    )


def tone(word: str, seconds: float = 0.5, amp: float = 0.3) -> np.ndarray:
    """A Hann-tapered tone at ``word``'s frequency (no clicks to spill into other bands)."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    return (amp * np.hanning(n) ** 0.5 * np.sin(2 * np.pi * FREQ[word] * t)).astype(np.float32)


def tone_stream(words, seed: int = 0, noise: float = 1e-4):
    """(wave, [(word, start sample, end sample)]): the words' tones with pauses of 1..2 s, faint white noise."""
    rng = np.random.default_rng(seed)
    parts, events, pos = [np.zeros(int(0.7 * SR), np.float32)], [], int(0.7 * SR)
    for w in words:
        x = tone(w)
        events.append((w, pos, pos + len(x)))
        pause = np.zeros(int(rng.uniform(1.0, 2.0) * SR), np.float32)
        parts += [x, pause]
        pos += len(x) + len(pause)
    wave = np.concatenate(parts)
    return (wave + noise * rng.standard_normal(len(wave))).astype(np.float32), events
