"""Reading and checking WAV files: one policy for the whole project.

What is accepted (see docs/data.md, "Bad input"):

- RIFF/WAVE with PCM 8/16/24/32-bit or IEEE float 32/64 samples (also inside
  WAVE_FORMAT_EXTENSIBLE);
- **mono only**: a file with two or more channels is refused (GSC is mono; the
  message gives the ``sox in.wav -c 1 out.wav`` command that downmixes it);
- **any sample rate from 8 kHz to 192 kHz is resampled to 16 kHz** (soxr "HQ", librosa's
  default resampler) when samples are loaded; below 8 kHz is refused because the
  frontend's mel bands reach 4 kHz;
- a file whose data chunk is shorter than its header says (truncated), that is not
  RIFF/WAVE, or that holds no samples is refused.

:func:`probe` checks a file from its header alone (a few hundred bytes), fast enough
for every file of a 100 000-file corpus; :func:`load_16k` returns float32 samples in
[-1, 1] at 16 kHz. Problems raise :class:`WavError` (an ``EdgetpError``) naming the file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetp.errors import EdgetpError

TARGET_SR = 16000
MIN_SR = 8000
MAX_SR = 192000
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


class WavError(EdgetpError):
    """A WAV file that edgetp will not read.

    ``kind`` is one word for counting (open, not-wav, truncated, encoding, empty, channels,
    rate, unreadable); ``reason`` is a short phrase for reports.
    """

    def __init__(self, path, kind: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class WavInfo:
    path: str
    sr: int
    channels: int
    frames: int
    bits: int
    is_float: bool

    @property
    def seconds(self) -> float:
        return self.frames / self.sr


def _chunks(f, file_size: int):
    """Yield (chunk id, payload offset, payload size) of a RIFF file after the header."""
    pos = 12
    while pos + 8 <= file_size:
        f.seek(pos)
        cid, size = struct.unpack("<4sI", f.read(8))
        yield cid, pos + 8, size
        pos += 8 + size + (size & 1)


def probe(path) -> WavInfo:
    """Check a WAV file from its header and return its format; raise WavError if unusable."""
    path = Path(path)
    try:
        file_size = os.path.getsize(path)
        f = open(path, "rb")
    except OSError as exc:
        raise WavError(path, "open", f"cannot open ({exc.strerror or exc})") from None
    with f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise WavError(path, "not-wav", "not a WAV file (no RIFF/WAVE header)")
        fmt = None
        data = None
        for cid, off, size in _chunks(f, file_size):
            if cid == b"fmt " and size >= 16:
                f.seek(off)
                fmt = struct.unpack("<HHIIHH", f.read(16))
                if fmt[0] == _EXTENSIBLE and size >= 40:
                    f.seek(off + 24)
                    fmt = (struct.unpack("<H", f.read(2))[0],) + fmt[1:]
            elif cid == b"data":
                data = (off, size)
                break
    if fmt is None:
        raise WavError(path, "truncated", "truncated or damaged WAV (no format chunk)")
    tag, channels, sr, _, block, bits = fmt
    if (
        tag not in (_PCM, _FLOAT)
        or (tag == _PCM and bits not in (8, 16, 24, 32))
        or (tag == _FLOAT and bits not in (32, 64))
    ):
        raise WavError(path, "encoding", f"unsupported WAV encoding (format tag {tag}, {bits} bits)")
    if data is None:
        raise WavError(path, "truncated", "truncated WAV (no data chunk)")
    off, size = data
    if size == 0xFFFFFFFF:  # written by a stream that never came back to fill in the size
        size = file_size - off
    if off + size > file_size or block == 0 or size % block:
        raise WavError(
            path,
            "truncated",
            f"truncated WAV (header promises {size} bytes of samples, file holds {max(0, file_size - off)})",
        )
    frames = size // block
    if frames == 0:
        raise WavError(path, "empty", "empty WAV (no samples)")
    if channels != 1:
        raise WavError(
            path, "channels", f"{channels} channels; edgetp reads mono only (downmix with: sox '{path}' -c 1 out.wav)"
        )
    if not MIN_SR <= sr <= MAX_SR:
        raise WavError(path, "rate", f"sample rate {sr} Hz outside {MIN_SR}..{MAX_SR} Hz")
    return WavInfo(str(path), int(sr), int(channels), int(frames), int(bits), tag == _FLOAT)


def resample(y: np.ndarray, sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """Resample a 1-D float signal (soxr HQ, deterministic); no-op when the rates agree."""
    if sr == target_sr:
        return y
    import librosa

    return librosa.resample(
        np.asarray(y, dtype=np.float32), orig_sr=sr, target_sr=target_sr, res_type="soxr_hq"
    ).astype(np.float32)


def read_wave(path, start: int = 0, frames: int | None = None, info: WavInfo | None = None):
    """Samples ``[start, start + frames)`` at the file's own rate: (float32 array in [-1, 1], sr).

    Integer PCM is scaled by 2^-(bits-1) (int16 / 32768), as soundfile does.
    """
    import soundfile as sf

    info = info or probe(path)
    stop = info.frames if frames is None else min(info.frames, start + frames)
    try:
        y, sr = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise WavError(path, "unreadable", f"unreadable WAV ({exc})") from None
    return np.ascontiguousarray(y, dtype=np.float32), int(sr)


def load_16k(path, start: int = 0, frames: int | None = None, info: WavInfo | None = None) -> np.ndarray:
    """Float32 mono samples at 16 kHz (resampled when the file has another rate).

    ``start`` and ``frames`` count samples at 16 kHz.
    """
    info = info or probe(path)
    if info.sr == TARGET_SR:
        return read_wave(path, start, frames, info)[0]
    y = resample(read_wave(path, info=info)[0], info.sr)
    return y[start:] if frames is None else y[start : start + frames]


def frames_16k(info: WavInfo) -> int:
    """Number of samples the file has once resampled to 16 kHz."""
    if info.sr == TARGET_SR:
        return info.frames
    return int(np.ceil(info.frames * TARGET_SR / info.sr))


def write_wav16(path, y: np.ndarray, sr: int = TARGET_SR) -> None:
    """Write float samples in [-1, 1] (clipped) as 16-bit PCM mono."""
    import soundfile as sf

    pcm = np.clip(np.round(np.asarray(y, dtype=np.float64) * 32767.0), -32768, 32767).astype(np.int16)
    sf.write(str(path), pcm, sr, subtype="PCM_16")
