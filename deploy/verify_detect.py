"""`edgetp verify-c --detector N`: the keyword detector's C twin (etp_det_step, etp_detect.c) against the integer
reference ``edgetp.stream.detector.step_q`` on N random detectors, every state after every step.

Each detector is drawn at random: class count and order, window, refractory time, readout format, row bound (up
to the largest int32 allows) and one threshold per keyword (0, negative, within the row bound, up to the largest
margin). Its constants are generated into the export (firmware_gen.detect). The detector is built into etp_server with a
carrier model and driven over DET_STEP on the host or an emulated board (deploy/detect_check.py) on three
streams: random increments, threshold-crossing segments and the worst-case bound stream.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deploy.bitexact import build_firmware, serve
from deploy.detect_check import carrier_model, check_stream, crossing_stream, worst_stream
from deploy.host import DeviceError, LinkError
from deploy.targets import TargetExited
from edgetp.data.labels import label_names
from edgetp.stream import detector as D
from firmware_gen.frontend_verify import CheckSummary
from firmware_gen.generate import render


@dataclass(kw_only=True)
class DetSummary(CheckSummary):
    detectors: int = 0
    frames: int = 0  # mismatches: streams whose C differs from step_q (a state or a report)
    reports: int = 0
    target: str = "host"
    counted = "frames"
    lead = ("detectors", "frames", "reports", "target")
    failures_kept = 50

    def lines(self) -> list[str]:
        head = (
            f"verify-c (keyword detector, {self.build}, {self.target}): {self.detectors} detectors, "
            f"{self.frames} frames, {self.reports} reports, {self.mismatches} mismatches, {self.errors} errors "
            f"in {self.seconds:.1f} s"
        )
        return [head] + [f"  {d['detector']}: {d['message']}" for d in self.details[:20]]


def random_detector(rng: np.random.Generator) -> D.DetectorQ:
    """A detector with random constants (see the module's docstring); the ten keywords are always among its
    classes, in random places."""
    others = [w for w in label_names("paper") if w not in D.KEYWORDS]
    labels = list(D.KEYWORDS) + list(rng.choice(others, int(rng.integers(0, len(others) + 1)), replace=False))
    labels = [str(w) for w in rng.permutation(labels)]
    window = int(rng.choice([1, 2, 7, D.WINDOW, int(rng.integers(1, 400))]))
    refractory = int(rng.choice([0, 1, 3, D.REFRACTORY, int(rng.integers(0, 300))]))
    bound = int(rng.choice([1, 60, 5000, D.INT32_MAX // (2 * window)]))
    bits = int(rng.integers(0, 9))
    unit = float(1 << bits)
    top = 2 * window * bound  # the largest margin the window sums can reach
    picks = [0.0, -1.0, bound / 4, bound, top, float(rng.integers(0, 2 * bound + 1))]
    thr = {w: float(rng.choice(picks)) / unit for w in D.KEYWORDS}
    weights = np.zeros((len(labels), 1), np.int64)
    weights[:, 0] = bound
    return D.DetectorSpec.make(labels, thr, window=window, refractory=refractory).quantized(bits, weights)


def streams(spec: D.DetectorQ, frames: int, rng: np.random.Generator) -> dict:
    b = spec.row_bound
    return {
        "random": rng.integers(-b, b + 1, (frames, len(spec.labels))),
        "crossing": crossing_stream(spec, frames, int(rng.integers(1 << 30))),
        "worst-case bound": worst_stream(spec, frames),
    }


def describe(spec: D.DetectorQ) -> str:
    return (
        f"{len(spec.labels)} classes, W {spec.window}, refractory {spec.refractory}, bound {spec.row_bound}, "
        f"Q.{spec.readout_bits}"
    )


def verify_detectors(
    n: int,
    seed: int = 0,
    frames: int = 600,
    target: str = "host",
    sanitize: bool = False,
    cc: str | None = None,
    keep: Path | None = None,
) -> DetSummary:
    """``n`` random detectors (seed ``seed``), ``frames`` frames per stream, on ``target``."""
    summary = DetSummary(sanitize=sanitize, target=target)
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 32])
    for i in range(n):
        spec = random_detector(rng)
        name = f"#{i} ({describe(spec)})"
        summary.detectors += 1
        with tempfile.TemporaryDirectory(prefix="etp_det_") as tmp:
            work = Path(keep) / f"detector{i}" if keep else Path(tmp)
            render(carrier_model(spec.labels), detector=spec).write(work)
            try:
                image = build_firmware(work, sanitize, cc, target=target)
                with serve(image, sanitize) as dev:
                    for kind, s in streams(spec, frames, rng).items():
                        r = check_stream(dev, spec, s)
                        summary.frames += r.steps
                        summary.reports += len(r.reports)
                        problem = r.mismatch
                        if problem is None and r.reports != D.run(spec, s)[1]:
                            problem = "the reports differ from step_q's"
                        if problem is not None:
                            summary.mismatches += 1
                            summary.details.append({"detector": name, "message": f"{kind} stream: {problem}"})
            except (TargetExited, LinkError, DeviceError) as exc:
                summary.errors += 1
                summary.details.append({"detector": name, "message": f"C program: {exc}"})
    summary.seconds = time.perf_counter() - t0
    return summary
