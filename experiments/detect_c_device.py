"""The keyword detector's C twin on a device: etp_det_step against step_q, and its cost per frame (issue 32).

An experiment, not part of the installed package (run from the repository root):

    PYTHONPATH=. python3 experiments/detect_c_device.py --target qemu \
        --out experiments/results/stream/det-c-qemu.json

The firmware carries a 3-4-36 carrier model (only its readout's width matters to the detector) and the
detector of the shipped defaults (W = 100 frames, refractory 50, threshold 10 readout units at 8 fractional
bits; the row bound the largest int32 allows, so the worst-case stream reaches margins just under 2^31). Over
DET_STEP it runs three threshold-crossing streams and the worst-case bound stream, compares the whole state
after every frame (deploy/detect_check.py) and reads the step's cost (instructions under QEMU -icount).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from deploy.bitexact import build_firmware, serve
from deploy.detect_check import carrier_model, check_stream, crossing_stream, worst_stream
from edgetp.data.labels import label_names
from edgetp.stream import detector as D
from firmware_gen.generate import render


def detector(labels) -> D.DetectorQ:
    w = np.full((len(labels), 1), D.INT32_MAX // (2 * D.WINDOW), np.int64)
    return D.DetectorSpec.make(labels, D.DEFAULT_THRESHOLD).quantized(8, w)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="qemu", help="host or an emulated board (deploy/boards.py)")
    ap.add_argument("--frames", type=int, default=1500, help="frames per stream")
    ap.add_argument("--out", help="write the figures as JSON here")
    a = ap.parse_args(argv)
    labels = label_names("paper")
    spec = detector(labels)
    streams = {f"crossing seed {s}": crossing_stream(spec, a.frames, s) for s in (1, 2, 3)}
    streams["worst-case bound"] = worst_stream(spec, a.frames)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        render(carrier_model(labels), detector=spec).write(tmp)
        image = build_firmware(Path(tmp), target=a.target)
        with serve(image) as dev:
            res = dev.hello().counter_res
            for name, s in streams.items():
                r = check_stream(dev, spec, s)
                cost = [c * res for c in r.costs]
                rows[name] = {
                    "frames": r.steps,
                    "mismatch": r.mismatch,
                    "reports": len(r.reports),
                    "reports_equal_step_q": r.reports == D.run(spec, s)[1],
                    "cost_mean": round(statistics.fmean(cost), 1),
                    "cost_max": max(cost),
                }
                print(name, rows[name])
    out = {
        "what": "etp_det_step against edgetp.stream.detector.step_q over DET_STEP: whole state every frame",
        "target": a.target,
        "counter": "instructions (QEMU -icount), to the counter's resolution" if a.target != "host" else "host",
        "detector": {"classes": len(labels), "window": spec.window, "refractory": spec.refractory},
        "frames": sum(r["frames"] for r in rows.values()),
        "mismatches": sum(r["mismatch"] is not None or not r["reports_equal_step_q"] for r in rows.values()),
        "streams": rows,
        "command": f"PYTHONPATH=. python3 experiments/detect_c_device.py --target {a.target} --frames {a.frames}",
    }
    print(json.dumps({k: v for k, v in out.items() if k != "streams"}))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0 if out["mismatches"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
