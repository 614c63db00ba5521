"""The snapshot: the export of a tiny fixed model, checked in under tests/snapshots/firmware_tiny.

tests/test_firmware_snapshot.py fails when the generator's output changes; after an
intended change, regenerate it and review the diff like code:

    python -m firmware_gen.snapshot tests/snapshots/firmware_tiny
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgetp.fixed.qconfig import QModel
from edgetp.tp.config import NetConfig

from firmware_gen.generate import Export, render
from firmware_gen.tensors import DeviceConfig


def tiny_model() -> QModel:
    """3 inputs -> 4 recurrent LIF -> 2 classes, int8 weights given by a formula (no RNG)."""
    cfg = NetConfig(3, (4,), 2, recurrent=True, vth=0.5, leak_m=0.75, leak_t=0.9, gamma=2.0, reset="hard")
    shapes = {"W0": (4, 3), "W1": (2, 4), "R0": (4, 4), "S": (4, 2), "S_rec": (4, 4)}
    weights = {n: (((np.arange(r * c) * (37 + 11 * k)) % 201) - 100).reshape(r, c).astype(np.int8)
               for k, (n, (r, c)) in enumerate(shapes.items())}
    fw = {"W0": 7, "W1": 6, "R0": 8, "S": 7, "S_rec": 8}
    return QModel(cfg, 8, 10, weights, fw, 16, ["yes", 'no "quoted"'])


def tiny_export() -> Export:
    return render(tiny_model(), DeviceConfig(targets="classes", optimizer="factored", lr=1e-3, beta_shift=8))


def write_snapshot(folder) -> list[Path]:
    folder = Path(folder)
    for old in folder.glob("*"):
        if old.is_file():
            old.unlink()
    return tiny_export().write(folder)


if __name__ == "__main__":
    out = write_snapshot(sys.argv[1] if len(sys.argv) > 1 else "tests/snapshots/firmware_tiny")
    print(f"wrote {len(out)} files")
