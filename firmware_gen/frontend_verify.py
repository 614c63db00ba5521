"""`edgetp verify-c --frontend`: the integer audio frontend's C against its Python twin.

The export of a model with the frontend (``render(qm, dev, frontend=InputNorm)``) is built
into the firmware (deploy/verify_frontend.py); each utterance is streamed to it in chunks
(random sizes: the streaming must not matter) and, for **every frame**, the block exponent,
the power spectrum, the mel energies and the log-mel are compared with
``edgetp.audio.frontend_q``; at the end the maximum, L, the features and the model's
input of every frame. A frame with any difference is a mismatch (the first is reported
with what differed). This module holds the inputs and the comparison. Inputs: WAV files, and :func:`random_pcm`
signals (silence, full-scale square waves, clipped noise, DC, tiny and loud noise, chirps, short inputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
import zlib

import numpy as np

from edgetp.audio import frontend_q as FQ
from edgetp.errors import EdgetpError


@dataclass(kw_only=True)
class CheckSummary:
    """What a check of C against its Python twin counts (verify-c's cases, the frontend's frames): the
    mismatches, the errors (the C program failed: compiler, crash, sanitizer report), the build, the time and
    the failures. ``counted`` names the field that must be > 0: a check that compared nothing did not pass. The
    JSON report leads with the fields ``lead`` names, then the outcome, the failures (the first ``failures_kept``,
    or all) and ``extra``."""

    mismatches: int = 0
    errors: int = 0
    sanitize: bool = False
    seconds: float = 0.0
    details: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    counted: ClassVar[str] = ""
    lead: ClassVar[tuple] = ()
    failures_kept: ClassVar[int | None] = None

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.errors == 0 and getattr(self, self.counted) > 0

    @property
    def build(self) -> str:
        """The C build the check ran, as the reports name it."""
        return "ASan+UBSan build" if self.sanitize else "optimised build"

    def outcome(self) -> dict:
        """The outcome's JSON keys, in the order the reports write them."""
        return {
            "mismatches": self.mismatches,
            "errors": self.errors,
            "sanitize": self.sanitize,
            "seconds": round(self.seconds, 2),
        }

    def to_json(self) -> dict:
        lead = {k: getattr(self, k) for k in self.lead}
        return {**lead, **self.outcome(), "failures": self.details[: self.failures_kept], **self.extra}


@dataclass(kw_only=True)
class FeSummary(CheckSummary):
    utterances: int = 0
    frames: int = 0  # mismatches: frames (and end-of-utterance checks) whose C differs
    counted = "frames"
    lead = ("frames", "utterances")
    failures_kept = 50


def random_pcm(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """One random test signal (name, int16 samples, 1..16000 of them)."""
    kind = rng.choice(["silence", "square", "clipped", "dc", "noise", "tiny", "chirp", "impulses", "short"])
    n = FQ.N_SAMPLES
    t = np.arange(n)
    if kind == "silence":
        x = np.zeros(n)
    elif kind == "square":
        period = int(rng.integers(2, 400))
        x = np.where((t // (period // 2 or 1)) % 2 == 0, 32767, -32768)
    elif kind == "clipped":
        x = np.clip(rng.standard_normal(n) * 60000, -32768, 32767)
    elif kind == "dc":
        x = np.full(n, int(rng.choice([32767, -32768, int(rng.integers(-32768, 32768))])))
    elif kind == "noise":
        x = rng.standard_normal(n) * 10 ** rng.uniform(0, 4.3)
    elif kind == "tiny":
        x = rng.integers(-1, 2, n) * (rng.random(n) < rng.uniform(0.001, 1))
    elif kind == "chirp":
        f0, f1 = rng.uniform(20, 8000, 2)
        x = 32767 * np.sin(2 * np.pi * (f0 + (f1 - f0) * t / n / 2) * t / 16000)
    elif kind == "impulses":
        x = np.zeros(n)
        idx = rng.integers(0, n, int(rng.integers(1, 20)))
        x[idx] = rng.choice([32767, -32768], idx.size)
    else:
        m = int(rng.integers(1, 4000))
        x = np.zeros(n)
        x[:m] = rng.standard_normal(m) * 8000
        x = x[: int(rng.integers(1, n))]
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    return str(kind), x


def _chunks(n: int, rng: np.random.Generator) -> list[int]:
    out = []
    while n > 0:
        c = int(min(n, rng.choice([1, 7, 160, 161, 480, 1000, 4096, n])))
        out.append(c)
        n -= c
    return out


def _cmp_frame(rec, ref, t) -> str | None:
    tc, shift, power, mel, logmel = rec
    if tc != t:
        return f"frame index {tc}, expected {t}"
    for name, c, r in (
        ("shift", np.array([shift]), ref.shift[t : t + 1]),
        ("power", power, ref.power[t]),
        ("mel", mel, ref.mel[t]),
        ("log", logmel, ref.logmel[t]),
    ):
        bad = np.flatnonzero(np.asarray(c, np.int64) != np.asarray(r, np.int64))
        if bad.size:
            i = int(bad[0])
            return f"frame {t}: {name}[{i}] C {int(c[i])} != Python {int(r[i])} ({bad.size} differ)"
    return None


def input_crc(x: np.ndarray) -> int:
    """CRC-32 of the model inputs as the device packs them (little-endian, frame after frame)."""
    dt = "<i2" if np.asarray(x).dtype.itemsize == 2 else "i1"
    return zlib.crc32(np.ascontiguousarray(np.asarray(x).astype(dt)).tobytes())


def check_utterance(cfe, pcm: np.ndarray, norm, rng, summary: FeSummary, what: str) -> None:
    """Stream ``pcm`` (<= 16000 int16 samples; the C pads the rest with zeros) to ``cfe`` (reset,
    push, finish, frame_out: deploy.verify_frontend.ServerFrontend) and compare."""
    full = np.zeros(FQ.N_SAMPLES, np.int16)
    full[: pcm.size] = pcm
    ref = FQ.utterance_q(full, norm)
    summary.utterances += 1
    first = None
    bad_frames = 0
    recs = []
    if cfe.reset() != 0:
        raise EdgetpError("etp_fe_reset failed")
    pos = 0
    for c in _chunks(pcm.size, rng):
        frames, st = cfe.push(pcm[pos : pos + c])
        pos += c
        if st != 0:
            summary.mismatches += 1
            summary.details.append({"input": what, "message": f"etp_fe_push returned {st}"})
            return
        recs += frames
    frames, st, lmax, L = cfe.finish()
    recs += frames
    if st != 0 or len(recs) != FQ.N_FRAMES:
        summary.mismatches += 1
        summary.details.append({"input": what, "message": f"finish status {st}, {len(recs)} frames"})
        return
    # pipeline order: a frame's own intermediates, then L (needs the whole utterance), then its outputs
    msgs = [[], [], []]
    for t, rec in enumerate(recs):
        msgs[0].append(_cmp_frame(rec, ref, t))
        m1 = None
        if not np.array_equal(L[t], ref.L[t]):
            i = int(np.flatnonzero(L[t] != ref.L[t])[0])
            m1 = f"frame {t}: L[{i}] C {int(L[t][i])} != Python {int(ref.L[t][i])}"
        msgs[1].append(m1)
        st, feats, x = cfe.frame_out(t)
        m2 = None
        if st != 0:
            m2 = f"frame {t}: etp_fe_input returned {st}"
        elif not np.array_equal(feats, ref.feats[t]):
            i = int(np.flatnonzero(feats != ref.feats[t])[0])
            m2 = f"frame {t}: features[{i}] C {int(feats[i])} != Python {int(ref.feats[t][i])}"
        elif not np.array_equal(x.astype(np.int64), ref.x[t].astype(np.int64)):
            i = int(np.flatnonzero(x.astype(np.int64) != ref.x[t])[0])
            m2 = f"frame {t}: input[{i}] C {int(x[i])} != Python {int(ref.x[t][i])}"
        msgs[2].append(m2)
        summary.frames += 1
        if m1 or m2 or msgs[0][-1]:
            bad_frames += 1
    first = next((m for phase in msgs for m in phase if m), None)
    run_crc = getattr(cfe, "run_x_crc", None)
    if run_crc is not None and run_crc != input_crc(ref.x):
        bad_frames += 1  # the steps read L as it is made, row by row (READ_FE reads it whole)
        first = first or (
            f"the inputs the network read while stepping: CRC {run_crc:08x} != Python {input_crc(ref.x):08x}"
        )
    if lmax != ref.lmax:
        bad_frames += 1
        first = first or f"utterance maximum C {lmax} != Python {ref.lmax}"
    if bad_frames:
        summary.mismatches += bad_frames
        summary.details.append({"input": what, "mismatching_frames": bad_frames, "message": first})
