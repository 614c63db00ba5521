"""`edgetp verify-c --frontend` on the firmware: the export with the audio frontend built into
etp_server for the host (deploy/bitexact.py: pipes, the frontend's trace) and driven by
deploy.host.Device; firmware_gen.frontend_verify streams the inputs and compares every frame."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from deploy import protocol as P
from deploy.bitexact import ETP_EBADARG, build_firmware, serve
from deploy.host import Device, DeviceError, LinkError
from deploy.targets import TargetExited
from edgetp.audio import frontend_q as FQ
from firmware_gen.frontend_verify import FeSummary, check_utterance
from firmware_gen.generate import render

_REC = [("<i4", 1), ("<i8", FQ.N_BINS), ("<i8", FQ.N_MELS), ("<i2", FQ.N_MELS)]  # READ_FE's FE_FRAME record


class ServerFrontend:
    """The firmware's frontend (AUDIO_PCM, AUDIO_RUN, READ_FE) with the methods check_utterance
    plays; statuses are etp_status_t (what the C API returned)."""

    def __init__(self, dev: Device, xbits: int):
        self.dev, self.frames = dev, 0
        self.run_x_crc = None  # CRC-32 of the inputs AUDIO_RUN's network steps read
        self.xdt = np.dtype("<i2" if xbits == 16 else "i1")

    def _read(self, what: int, t: int = 0) -> bytes:
        return self.dev.request(P.Cmd.READ_FE, P.pack("REQ_READ_FE", what=what, frame=t))[1:]

    def _pcm(self, start: int, pcm: np.ndarray) -> int:
        pl = self.dev.request(P.Cmd.AUDIO_PCM, P.pack("REQ_AUDIO_PCM", start=start) + pcm.astype("<i2").tobytes())
        return P.unpack("RSP_AUDIO_PCM", pl)[0]["frames"]

    def _records(self, upto: int) -> list:
        """The records of frames self.frames .. upto - 1 (fewer if the firmware has fewer)."""
        out = []
        for t in range(self.frames, upto):
            try:
                b = self._read(P.FE_FRAME, t)
            except DeviceError as exc:
                if exc.status != P.Status.BAD_ARG:
                    raise
                break
            parts, off = [], 0
            for dt, n in _REC:
                parts.append(np.frombuffer(b, dt, n, off))
                off += np.dtype(dt).itemsize * n
            out.append((t, int(parts[0][0]), *parts[1:]))
        self.frames += len(out)
        return out

    def reset(self) -> int:
        self.frames = 0
        self._pcm(1, np.zeros(0, np.int16))
        return 0

    def push(self, pcm) -> tuple[list, int]:
        try:
            n = self._pcm(0, np.asarray(pcm))
        except DeviceError as exc:
            if exc.status != P.Status.BAD_ARG:
                raise
            return [], ETP_EBADARG
        return self._records(n), 0

    def finish(self):
        try:
            rsp = self.dev.request(P.Cmd.AUDIO_RUN, P.pack("REQ_AUDIO_RUN", label=P.AUDIO_NO_LABEL))
            self.run_x_crc = P.unpack("RSP_AUDIO_RUN", rsp)[0]["x_crc"]
        except DeviceError as exc:
            if exc.status != P.Status.BAD_ARG:
                raise
            return [], ETP_EBADARG, 0, np.zeros((FQ.N_FRAMES, FQ.N_MELS), np.int16)
        frames = self._records(FQ.N_FRAMES)
        b = self._read(P.FE_END)
        lmax = int(np.frombuffer(b, "<i4", 1)[0])
        return frames, 0, lmax, np.frombuffer(b, "<i2", FQ.N_FRAMES * FQ.N_MELS, 4).reshape(FQ.N_FRAMES, FQ.N_MELS)

    def frame_out(self, t: int):
        try:
            b = self._read(P.FE_OUT, t)
        except DeviceError as exc:
            if exc.status != P.Status.MODEL:
                raise
            return exc.detail, None, None
        feats = np.frombuffer(b, "<i4", FQ.N_FEATURES)
        return 0, feats, np.frombuffer(b, self.xdt, FQ.N_FEATURES, 4 * FQ.N_FEATURES)


def verify_frontend(
    qm,
    norm,
    inputs,
    sanitize: bool = False,
    cc: str | None = None,
    seed: int = 0,
    keep: Path | None = None,
    export_files: dict | None = None,
) -> FeSummary:
    """Build the firmware of ``qm``'s export with the frontend and compare it on ``inputs``
    ((name, int16 pcm) pairs)."""
    summary = FeSummary(sanitize=sanitize)
    t0 = time.perf_counter()
    ex = render(qm, None, frontend=norm)
    if export_files:
        ex.files.update(export_files(ex.files) if callable(export_files) else export_files)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="etp_fe_") as tmp:
        work = Path(keep) if keep else Path(tmp)
        ex.write(work)
        image = build_firmware(work, sanitize, cc)
        try:
            with serve(image, sanitize) as dev:
                cfe = ServerFrontend(dev, qm.xbits)
                for name, pcm in inputs:
                    check_utterance(cfe, pcm, norm, rng, summary, name)
        except (TargetExited, LinkError, DeviceError) as exc:
            summary.errors += 1
            summary.details.append({"input": "C program", "message": str(exc)})
    summary.seconds = time.perf_counter() - t0
    return summary
