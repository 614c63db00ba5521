"""`edgetp verify-c --frontend`: the integer audio frontend's C against its Python twin.

The export of a model with the frontend (``render(qm, dev, frontend=InputNorm)``) is
compiled with ``etp_fe_harness.c``; each utterance is streamed to it in chunks (random
sizes: the streaming must not matter) and, for **every frame**, the block exponent, the
power spectrum, the mel energies and the log-mel are compared with
``edgetp.audio.frontend_q``; at the end the maximum, L, the features and the model's
input of every frame. A frame with any difference is a mismatch (the first is reported
with what differed). Inputs: WAV files, and :func:`random_pcm` signals (silence,
full-scale square waves, clipped noise, DC, tiny and loud noise, chirps, short inputs).
"""
from __future__ import annotations

import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgetp.audio import frontend_q as FQ
from edgetp.errors import EdgetpError

from firmware_gen.build import SAN_ENV, SANITIZE, STRICT, default_cc, have, sources
from firmware_gen.runtime import RUNTIME_DIR

FE_HARNESS = "etp_fe_harness.c"


def build_fe_host(export_dir, sanitize: bool = False, cc: str | None = None) -> Path:
    export_dir = Path(export_dir)
    cc = cc or default_cc()
    if cc is None or not have(cc):
        raise EdgetpError(f"no C compiler {cc or 'gcc/clang'} on PATH (apt-get install gcc)")
    out = export_dir / ("fe_harness_san" if sanitize else "fe_harness")
    flags = STRICT + (SANITIZE + ["-O1"] if sanitize else ["-O2"])
    r = subprocess.run([cc, *flags, "-I", str(export_dir), *map(str, sources(export_dir)),
                        str(RUNTIME_DIR / FE_HARNESS), "-o", str(out)], capture_output=True, text=True)
    if r.returncode != 0:
        raise EdgetpError(f"compiling the frontend harness failed:\n{r.stderr.strip()[-3000:]}")
    return out


class CFrontend:
    """The compiled frontend behind etp_fe_harness.c."""

    def __init__(self, exe, xbits: int, env: dict | None = None):
        import os

        self.xdt = np.dtype("<i2" if xbits == 16 else "i1")
        self.p = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=dict(os.environ, **(env or {})))
        self.rec = 1 + 2 + 4 + 8 * FQ.N_BINS + 8 * FQ.N_MELS + 2 * FQ.N_MELS

    def _read(self, n: int) -> bytes:
        b = self.p.stdout.read(n)
        if len(b) != n:
            self.p.wait(timeout=10)
            err = self.p.stderr.read().decode(errors="replace")
            raise EdgetpError(f"the frontend C program stopped (exit status {self.p.returncode}):\n{err[-3000:]}")
        return b

    def _send(self, b: bytes) -> None:
        try:
            self.p.stdin.write(b)
            self.p.stdin.flush()
        except BrokenPipeError:
            self._read(1 << 30)

    def _frames_then_status(self) -> tuple[list, int]:
        frames = []
        while True:
            tag = self._read(1)
            if tag == b"S":
                return frames, self._read(1)[0]
            if tag != b"f":
                raise EdgetpError(f"frontend harness: unexpected byte {tag!r}")
            b = self._read(self.rec - 1)
            t, shift = struct.unpack_from("<Hi", b)
            o = 6
            power = np.frombuffer(b, "<i8", FQ.N_BINS, o)
            o += 8 * FQ.N_BINS
            mel = np.frombuffer(b, "<i8", FQ.N_MELS, o)
            o += 8 * FQ.N_MELS
            logmel = np.frombuffer(b, "<i2", FQ.N_MELS, o)
            frames.append((t, shift, power, mel, logmel))

    def reset(self) -> int:
        self._send(b"R")
        return self._frames_then_status()[1]

    def push(self, pcm: np.ndarray):
        pcm = np.asarray(pcm, dtype="<i2")
        self._send(b"P" + struct.pack("<I", pcm.size) + pcm.tobytes())
        return self._frames_then_status()

    def finish(self):
        self._send(b"E")
        frames, st = self._frames_then_status()
        lmax = struct.unpack("<i", self._read(4))[0]
        L = np.frombuffer(self._read(2 * FQ.N_FRAMES * FQ.N_MELS), "<i2").reshape(FQ.N_FRAMES, FQ.N_MELS)
        return frames, st, lmax, L

    def frame_out(self, t: int):
        self._send(b"X" + struct.pack("<H", t))
        _f, st = self._frames_then_status()
        feats = np.frombuffer(self._read(4 * FQ.N_FEATURES), "<i4")
        x = np.frombuffer(self._read(self.xdt.itemsize * FQ.N_FEATURES), self.xdt)
        return st, feats, x

    def close(self) -> str:
        try:
            self.p.stdin.write(b"Q")
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        self.p.wait(timeout=30)
        err = self.p.stderr.read().decode(errors="replace")
        if self.p.returncode != 0:
            raise EdgetpError(f"the frontend C program exited with status {self.p.returncode}:\n{err[-3000:]}")
        return err


@dataclass
class FeSummary:
    utterances: int = 0
    frames: int = 0
    mismatches: int = 0          # frames (and end-of-utterance checks) whose C differs
    errors: int = 0
    sanitize: bool = False
    seconds: float = 0.0
    details: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.errors == 0 and self.frames > 0

    def to_json(self) -> dict:
        return {"frames": self.frames, "mismatches": self.mismatches, "errors": self.errors,
                "utterances": self.utterances, "sanitize": self.sanitize, "seconds": round(self.seconds, 2),
                "failures": self.details[:50]}


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
        x = x[:int(rng.integers(1, n))]
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
    for name, c, r in (("shift", np.array([shift]), ref.shift[t:t + 1]), ("power", power, ref.power[t]),
                       ("mel", mel, ref.mel[t]), ("log", logmel, ref.logmel[t])):
        bad = np.flatnonzero(np.asarray(c, np.int64) != np.asarray(r, np.int64))
        if bad.size:
            i = int(bad[0])
            return f"frame {t}: {name}[{i}] C {int(c[i])} != Python {int(r[i])} ({bad.size} differ)"
    return None


def check_utterance(cfe: CFrontend, pcm: np.ndarray, norm, rng, summary: FeSummary, what: str) -> None:
    """Stream ``pcm`` (<= 16000 int16 samples; the C pads the rest with zeros) and compare."""
    full = np.zeros(FQ.N_SAMPLES, np.int16)
    full[:pcm.size] = pcm
    ref = FQ.utterance_q(full, norm)
    summary.utterances += 1
    first = None
    bad_frames = 0
    recs = []
    if cfe.reset() != 0:
        raise EdgetpError("etp_fe_reset failed")
    pos = 0
    for c in _chunks(pcm.size, rng):
        frames, st = cfe.push(pcm[pos:pos + c])
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
    if lmax != ref.lmax:
        bad_frames += 1
        first = first or f"utterance maximum C {lmax} != Python {ref.lmax}"
    if bad_frames:
        summary.mismatches += bad_frames
        summary.details.append({"input": what, "mismatching_frames": bad_frames, "message": first})


def verify_frontend(qm, norm, inputs, sanitize: bool = False, cc: str | None = None, seed: int = 0,
                    keep: Path | None = None, export_files: dict | None = None) -> FeSummary:
    """Compile the frontend of ``qm``'s export and compare it on ``inputs`` ((name, int16 pcm) pairs)."""
    from firmware_gen.generate import render

    summary = FeSummary(sanitize=sanitize)
    t0 = time.perf_counter()
    ex = render(qm, None, frontend=norm)
    if export_files:
        ex.files.update(export_files(ex.files) if callable(export_files) else export_files)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="etp_fe_") as tmp:
        work = Path(keep) if keep else Path(tmp)
        ex.write(work)
        exe = build_fe_host(work, sanitize, cc)
        cfe = CFrontend(exe, qm.xbits, SAN_ENV if sanitize else None)
        try:
            for name, pcm in inputs:
                check_utterance(cfe, pcm, norm, rng, summary, name)
            cfe.close()
        except EdgetpError as exc:
            summary.errors += 1
            summary.details.append({"input": "C program", "message": str(exc)})
    summary.seconds = time.perf_counter() - t0
    return summary
