"""The snapshot: the export of a tiny fixed model, checked in under tests/snapshots/firmware_tiny.

tests/test_firmware_snapshot.py fails when the generator's output changes; after an
intended change, regenerate it and review the diff like code:

    python -m firmware_gen.snapshot tests/snapshots/firmware_tiny

It also writes the generated files (not the runtime copies, the same) of the frozen-hidden
export of the same network (int8 hidden layers in flash, int16 readout) into
tests/snapshots/firmware_tiny_frozen (the folder's name + "_frozen"), and those of the same frozen
export with row scales (one shift per neuron of W0) into tests/snapshots/firmware_tiny_rows, and those of
the frozen export of the network with four inputs (an even row length: W0 stored as int16,
layout.wide_input) into tests/snapshots/firmware_tiny_wide.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgetp.fixed.qconfig import QModel
from edgetp.tp.config import NetConfig

from firmware_gen.generate import GENERATED, MANIFEST, Export, render
from edgetp.fixed.device import DeviceConfig


def tiny_model(n_in: int = 3) -> QModel:
    """n_in (3) inputs -> 4 recurrent LIF -> 2 classes, int8 weights given by a formula (no RNG)."""
    cfg = NetConfig(n_in, (4,), 2, recurrent=True, vth=0.5, leak_m=0.75, leak_t=0.9, gamma=2.0, reset="hard")
    shapes = {"W0": (4, n_in), "W1": (2, 4), "R0": (4, 4), "S": (4, 2), "S_rec": (4, 4)}
    weights = {
        n: (((np.arange(r * c) * (37 + 11 * k)) % 201) - 100).reshape(r, c).astype(np.int8)
        for k, (n, (r, c)) in enumerate(shapes.items())
    }
    fw = {"W0": 7, "W1": 6, "R0": 8, "S": 7, "S_rec": 8}
    return QModel(cfg, 8, 10, weights, fw, 16, ["yes", 'no "quoted"'])


def tiny_export() -> Export:
    return render(tiny_model(), DeviceConfig(targets="classes", optimizer="rownorm", lr=1e-3, beta_shift=8))


def tiny_frozen_model(n_in: int = 3) -> QModel:
    """tiny_model's network frozen-hidden: hidden W0, R0 int8 (tiny_model's), readout W1 int16."""
    qm = tiny_model(n_in)
    weights = dict(qm.weights, W1=(qm.weights["W1"].astype(np.int16) * 256 + 77).astype(np.int16))
    fw = dict(qm.fw, W1=qm.fw["W1"] + 8)
    return QModel(qm.cfg, 16, qm.fx, weights, fw, qm.xbits, qm.labels, hbits=8, frozen_hidden=True)


def _frozen_export(qm: QModel) -> Export:
    """A frozen-hidden model's generated files only (the runtime copies are firmware_tiny's)."""
    ex = render(
        qm,
        DeviceConfig(
            targets="classes", optimizer="colnorm", lr=1e-3, beta_shift=8, train="readout", frozen_hidden=True
        ),
    )
    ex.files = {n: t for n, t in ex.files.items() if n in (*GENERATED, MANIFEST)}
    return ex


def tiny_frozen_export() -> Export:
    return _frozen_export(tiny_frozen_model())


def tiny_rows_model() -> QModel:
    """tiny_frozen_model with row scales: W0's rows Q.0, Q.3, Q.7, Q.12 (the tensor's Q.7 among them)."""
    return tiny_frozen_model().with_row_scales({"W0": np.array([0, 3, 7, 12])})


def tiny_rows_export() -> Export:
    return _frozen_export(tiny_rows_model())


def tiny_wide_model() -> QModel:
    """tiny_frozen_model with four inputs: its int8 W0 meets int16 features with an even row length, so it is
    stored as int16 (layout.wide_input)."""
    return tiny_frozen_model(4)


def tiny_wide_export() -> Export:
    return _frozen_export(tiny_wide_model())


def _write(ex: Export, folder) -> list[Path]:
    folder = Path(folder)
    for old in folder.glob("*"):
        if old.is_file():
            old.unlink()
    return ex.write(folder)


def write_snapshot(folder) -> list[Path]:
    folder = Path(folder)
    return (
        _write(tiny_export(), folder)
        + _write(tiny_frozen_export(), folder.parent / (folder.name + "_frozen"))
        + _write(tiny_rows_export(), folder.parent / (folder.name + "_rows"))
        + _write(tiny_wide_export(), folder.parent / (folder.name + "_wide"))
    )


if __name__ == "__main__":
    out = write_snapshot(sys.argv[1] if len(sys.argv) > 1 else "tests/snapshots/firmware_tiny")
    print(f"wrote {len(out)} files")
