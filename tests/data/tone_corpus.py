"""A GSC-layout corpus made by a plain NumPy chirp generator (not espeak-ng).

Used by the data tests to show that the reader, the split and the cache work on any
corpus in GSC v2's layout, whoever made it. Each word is a chirp pattern (its own start
and end frequency ratio and harmonics), each speaker a base frequency and loudness.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def chirp(word: str, f0: float, seconds: float, rng) -> np.ndarray:
    k = sum(map(ord, word))
    start, end = 1.0 + (k % 7) / 4.0, 1.0 + (k % 5) / 3.0
    t = np.arange(int(seconds * SR)) / SR
    f = f0 * (start + (end - start) * t / seconds)
    phase = 2 * np.pi * np.cumsum(f) / SR
    y = sum(np.sin(h * phase) / h for h in range(1, 2 + k % 3))
    y *= np.hanning(len(t)) * (1.0 + 0.05 * rng.standard_normal())
    return y + 0.01 * rng.standard_normal(len(t))


def make_corpus(
    root, words=("yes", "no", "up", "learn"), speakers=None, seed: int = 0, noise_seconds: float = 12.0
) -> dict:
    """Write the corpus; ``speakers`` maps id -> (split, reps) or (split, {word: reps}).

    Returns {speaker id: split}. Splits go into validation_list.txt / testing_list.txt.
    """
    root = Path(root)
    speakers = speakers or {
        "0a1b2c3d": ("train", 10),
        "11111111": ("train", 3),
        "22222222": ("train", 3),
        "33333333": ("validation", 2),
        "44444444": ("testing", 2),
    }
    rng = np.random.default_rng(seed)
    lists = {"validation": [], "testing": []}
    for n, (sid, (split, reps)) in enumerate(sorted(speakers.items())):
        f0 = 150.0 + 40.0 * n
        for word in words:
            (root / word).mkdir(parents=True, exist_ok=True)
            count = reps.get(word, 0) if isinstance(reps, dict) else reps
            for r in range(count):
                y = chirp(word, f0, 0.5 + 0.3 * rng.random(), rng)
                pcm = np.round(y / np.abs(y).max() * 20000 * (0.3 + 0.7 * rng.random())).astype(np.int16)
                rel = f"{word}/{sid}_nohash_{r}.wav"
                sf.write(root / rel, pcm, SR, subtype="PCM_16")
                if split in lists:
                    lists[split].append(rel)
    for split, name in (("validation", "validation_list.txt"), ("testing", "testing_list.txt")):
        (root / name).write_text("".join(f"{p}\n" for p in sorted(lists[split])))
    bg = root / "_background_noise_"
    bg.mkdir(exist_ok=True)
    sf.write(
        bg / "white_noise.wav",
        (rng.standard_normal(int(noise_seconds * SR)) * 3000).astype(np.int16),
        SR,
        subtype="PCM_16",
    )
    return {sid: split for sid, (split, _) in speakers.items()}
