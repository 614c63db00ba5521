"""espeak-ng, the speech synthesizer behind the offline corpus (Debian package ``espeak-ng``).

:func:`speak` runs ``espeak-ng --stdout`` once per utterance (about 10 ms) and returns
the speech at 16 kHz with its silent ends cut. A voice is ``<language>+<variant>``
(``en-us+f3``); espeak-ng silently falls back to its default for an unknown variant,
so :func:`available` lists what is installed and the corpus uses only those.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess

import numpy as np

from edgetp.audio.wav import resample
from edgetp.errors import EdgetpError

INSTALL = (
    "install it with: sudo apt-get install espeak-ng   "
    "(Debian/Ubuntu; Fedora: sudo dnf install espeak-ng; macOS: brew install espeak-ng)"
)


def binary() -> str:
    """Path of the espeak-ng program; a clear EdgetpError with the install command if absent."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise EdgetpError(f"espeak-ng is not installed (the offline corpus is spoken by it); {INSTALL}")
    return path


def _run(args: list[str]) -> bytes:
    try:
        done = subprocess.run([binary(), *args], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EdgetpError(f"espeak-ng failed to run ({exc}); {INSTALL}") from None
    if done.returncode != 0:
        raise EdgetpError(f"espeak-ng {' '.join(args[:-1])} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


@functools.lru_cache(maxsize=None)
def version() -> str:
    """espeak-ng's version line, e.g. 'eSpeak NG text-to-speech: 1.51'."""
    return _run(["--version"]).decode(errors="replace").split("Data at")[0].strip()


@functools.lru_cache(maxsize=None)
def available() -> tuple[frozenset, frozenset]:
    """(English language voices, variant file names) installed: ({'en-us', ...}, {'f3', ...})."""

    def column(text: bytes, col: int) -> set[str]:
        rows = [ln.split() for ln in text.decode(errors="replace").splitlines()[1:]]
        return {r[col] for r in rows if len(r) > col}

    langs = {v.lower() for v in column(_run(["--voices=en"]), 1)}
    variants = {f.split("/", 1)[1] for f in column(_run(["--voices=variant"]), 4) if f.startswith("!v/")}
    return frozenset(langs), frozenset(variants)


def trim(y: np.ndarray, sr: int = 16000, rel: float = 0.01, margin_s: float = 0.01) -> np.ndarray:
    """Cut the leading and trailing samples quieter than ``rel`` x peak (keeping a margin)."""
    a = np.abs(y)
    loud = np.nonzero(a > rel * a.max())[0] if a.size and a.max() > 0 else []
    if len(loud) == 0:
        return y[:0]
    m = int(margin_s * sr)
    return y[max(0, loud[0] - m) : loud[-1] + 1 + m]


def speak(text: str, voice: str, pitch: int = 50, speed: int = 175) -> np.ndarray:
    """Speech of ``text`` as float32 at 16 kHz, trimmed; deterministic for its arguments.

    ``pitch`` 0..99 (espeak-ng ``-p``), ``speed`` in words per minute (``-s``, 80..450).
    """
    import soundfile as sf

    raw = _run(["-z", "-v", voice, "-p", str(int(pitch)), "-s", str(int(speed)), "--stdout", text])
    y, sr = sf.read(io.BytesIO(raw), dtype="float32")
    return trim(resample(y, sr, 16000))
