"""A reproducible evaluation stream from labelled clips (``detect --eval``, issue 32).

From a seed: slots of a pause (uniform 0.5..2 s), then a keyword clip (probability 1/2), another word's clip
(3/10: a non-core word or ``_unknown_``) or one more second of pause (1/5), until the stream lasts ``minutes``.
Clips are drawn without replacement, reshuffled when a pool runs out. Every clip is scaled to one speech level
(SPEECH_RMS over its active frames: the 10 ms frames within ACTIVE_DB of its loudest), and the noise (the WAV files of
a folder, concatenated in name order from a seeded offset and looped) runs under the whole stream at ``snr_db``
below that level; without noise the pauses are digital silence. The events record each clip's span in samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError
from edgetp.stream.detector import KEYWORDS

SR = 16000
SPEECH_RMS = 0.05  # about -26 dBFS: loud enough, far from clipping at 10 dB SNR
ACTIVE_DB = 30.0
PAUSE_S = (0.5, 2.0)
P_KEYWORD, P_OTHER = 0.5, 0.3


@dataclass(frozen=True)
class Event:
    word: str
    start: int  # first sample of the clip in the stream
    end: int  # one past its last sample
    keyword: bool


def active_rms(x: np.ndarray, frame: int = 160) -> float:
    """RMS over the 10 ms frames within ACTIVE_DB of the loudest (the spoken part of a clip)."""
    n = len(x) // frame
    if n == 0:
        return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    p = np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    keep = p >= p.max() * 10 ** (-ACTIVE_DB / 10)
    return float(np.sqrt(p[keep].mean())) if p.max() > 0 else 0.0


def load_noise(folder) -> np.ndarray:
    """The WAV files of ``folder`` (16 kHz after resampling), concatenated in name order, unit RMS."""
    from edgetp.audio.wav import load_16k

    root = Path(folder)
    files = sorted(root.glob("*.wav")) if root.is_dir() else []
    if not files:
        raise EdgetpError(f"noise folder {root} has no .wav files")
    x = np.concatenate([load_16k(f) for f in files]).astype(np.float64)
    rms = np.sqrt(np.mean(np.square(x)))
    if not rms > 0:
        raise EdgetpError(f"the noise in {root} is silent")
    return x / rms


def clip_pools(corpus, indices) -> tuple[np.ndarray, np.ndarray]:
    """(keyword clips, other-word clips) among ``indices`` (``_silence_`` clips, without a speaker, are left out:
    the stream's pauses are its silence)."""
    kw, other = [], []
    for i in indices:
        u = corpus.utterances[int(i)]
        if not u.speaker:
            continue
        (kw if u.word in KEYWORDS else other).append(int(i))
    if not kw:
        raise EdgetpError("the selected clips hold none of the ten keywords")
    return np.array(kw, np.int64), np.array(other, np.int64)


class _Draw:
    """Draws from a pool without replacement, reshuffled when it runs out."""

    def __init__(self, pool, rng):
        self.pool, self.rng, self.left = np.asarray(pool), rng, []

    def __call__(self) -> int:
        if not self.left:
            self.left = list(self.rng.permutation(self.pool))
        return int(self.left.pop())


def build_stream(corpus, indices, minutes: float, seed: int = 0, noise=None, snr_db: float = 10.0):
    """(wave float32 at 16 kHz, [Event]) of a stream of ``minutes`` from ``corpus``'s clips ``indices``;
    ``noise``: unit-RMS samples (:func:`load_noise`) or None."""
    if not minutes > 0:
        raise EdgetpError(f"--minutes must be > 0, got {minutes}")
    rng = np.random.default_rng([seed, 32])
    kw, other = clip_pools(corpus, indices)
    draw_kw, draw_other = _Draw(kw, rng), (_Draw(other, rng) if len(other) else None)
    total = int(round(minutes * 60 * SR))
    parts, events, pos = [], [], 0
    while pos < total:
        pause = int(rng.uniform(*PAUSE_S) * SR)
        r = rng.random()
        if r >= P_KEYWORD + P_OTHER or (r >= P_KEYWORD and draw_other is None):
            pause += SR
            idx = None
        else:
            idx = draw_kw() if r < P_KEYWORD else draw_other()
        parts.append(np.zeros(pause, np.float32))
        pos += pause
        if idx is None:
            continue
        x = np.asarray(corpus.load(idx), dtype=np.float64)
        level = active_rms(x)
        if not level > 0:
            continue
        parts.append((x * (SPEECH_RMS / level)).astype(np.float32))
        word = corpus.utterances[idx].word
        events.append(Event(word, pos, pos + len(x), word in KEYWORDS))
        pos += len(x)
    wave = np.concatenate(parts)[:total]
    events = [e for e in events if e.end <= total]
    if noise is not None:
        g = SPEECH_RMS * 10 ** (-snr_db / 20)
        off = int(rng.integers(len(noise)))
        idx = (off + np.arange(total)) % len(noise)
        wave = (wave + g * noise[idx]).astype(np.float32)
    return wave, events
