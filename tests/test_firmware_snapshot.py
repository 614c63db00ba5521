"""The generated C of a tiny fixed model is checked in; any change to it must be intended.

After an intended change (generator, runtime or a constant of edgetp.fixed), regenerate
with ``python -m firmware_gen.snapshot tests/snapshots/firmware_tiny`` and review the diff.
"""

import difflib
from pathlib import Path

import numpy as np
import pytest

from deploy.bitexact import build_firmware, run_script, serve
from firmware_gen.script import Script
from firmware_gen.snapshot import (
    tiny_export,
    tiny_frozen_export,
    tiny_frozen_model,
    tiny_model,
    tiny_rows_export,
    tiny_rows_model,
    tiny_wide_export,
    tiny_wide_model,
)
from edgetp.fixed.device import DeviceConfig
from firmware_gen.tensors import TableDevice

SNAP = Path(__file__).resolve().parent / "snapshots" / "firmware_tiny"
SNAP_FROZEN = SNAP.parent / "firmware_tiny_frozen"  # generated files only; the runtime is SNAP's
SNAP_ROWS = SNAP.parent / "firmware_tiny_rows"  # the same, with row scales
SNAP_WIDE = SNAP.parent / "firmware_tiny_wide"  # the frozen export with four inputs: W0 stored as int16
HINT = "regenerate with `python -m firmware_gen.snapshot tests/snapshots/firmware_tiny` if the change is intended"


@pytest.mark.parametrize(
    "snap,export",
    [
        (SNAP, tiny_export),
        (SNAP_FROZEN, tiny_frozen_export),
        (SNAP_ROWS, tiny_rows_export),
        (SNAP_WIDE, tiny_wide_export),
    ],
)
def test_generated_c_matches_the_snapshot(snap, export):
    ex = export()
    assert sorted(p.name for p in snap.iterdir()) == sorted(ex.files), f"files differ from the snapshot; {HINT}"
    for name, text in ex.files.items():
        old = (snap / name).read_text()
        if old != text:
            diff = "".join(
                list(
                    difflib.unified_diff(
                        old.splitlines(True), text.splitlines(True), f"snapshot/{name}", f"generated/{name}"
                    )
                )[:80]
            )
            pytest.fail(f"the generated {name} changed:\n{diff}\n{HINT}")


def test_every_file_is_stamped():
    ex = tiny_export()
    for name, text in ex.files.items():
        if name.endswith((".c", ".h")):
            head = text[:1200]
            assert "edgetp-firmware-gen" in head and ex.model_hash in head and "Q-formats:" in head, name
    assert f'#define ETP_MODEL_HASH "{ex.model_hash}"' in ex.files["etp_model.h"]
    assert '"no \\"quoted\\""' in ex.files["etp_model.c"]  # labels are escaped C strings


@pytest.mark.needs("cc")
def test_the_snapshot_itself_is_bit_exact(tmp_path):
    """The checked-in C compiles with the strict flags and equals the reference step by step."""
    dev = TableDevice(tiny_model(), DeviceConfig("classes", "rownorm", 1e-3, 8))
    _replay_four_samples(dev, build_firmware(SNAP, out_root=tmp_path))


def _replay_four_samples(dev, image):
    """Four samples of 6 training steps on the built firmware and on ``dev``: every step bit-exact."""
    rng = np.random.default_rng(0)
    ops = [("init", 5)]
    for label in (0, 1, 1, 0):
        ops.append(("reset",))
        ops += [("train", rng.integers(-3000, 3000, dev.qm.cfg.n_in).astype(np.int16), label) for _ in range(6)]
        ops.append(("end_sample",))
    with serve(image) as c:
        steps, mm = run_script(c, dev, Script(ops))
    assert mm is None and steps == 24, str(mm)


def test_the_wide_snapshot_stores_w0_as_int16():
    assert "static const int16_t etp_W0[4 * 4]" in (SNAP_WIDE / "etp_model.c").read_text()
    assert "static const etp_wh_t etp_W0[4 * 3] = {" in (SNAP_FROZEN / "etp_model.c").read_text()


@pytest.mark.needs("cc")
@pytest.mark.parametrize(
    "snap,model", [(SNAP_FROZEN, tiny_frozen_model), (SNAP_ROWS, tiny_rows_model), (SNAP_WIDE, tiny_wide_model)]
)
def test_the_frozen_snapshot_itself_is_bit_exact(snap, model, tmp_path):
    """The frozen-hidden snapshots' generated files (row scales, W0 wide or neither) with the runtime: strict C99,
    bit-exact."""
    import shutil

    for p in [*SNAP.iterdir(), *snap.iterdir()]:
        shutil.copy(p, tmp_path / p.name)  # the frozen folder's generated files win
    dev = TableDevice(model(), DeviceConfig("classes", "colnorm", 1e-3, 8, "readout", frozen_hidden=True))
    _replay_four_samples(dev, build_firmware(tmp_path))
    assert dev.opt.step > 0 and not np.array_equal(dev.qm.weights["W1"], dev.qm0.weights["W1"])
