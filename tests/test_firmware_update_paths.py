"""The C update's two loops over the moving elements of a one-term tensor (etp_update.c, apply):
multipliers below 2^31 take a 32 x 32-bit product, larger ones the 64-bit one. Random models
rarely make a multiplier that large, so the wide loop is forced here and must agree with the
reference too; a planted bug in either loop is found."""

from conftest import require

from firmware_gen.cases import CaseSpec, build_model, build_script, device_config
from firmware_gen.generate import render
from deploy.bitexact import verify_export
from firmware_gen.tensors import TableDevice

SPEC = CaseSpec(seed=3, hidden=(7,), n_in=6, n_out=3, steps=12, samples=2, lr=1e-2)
FLAG = "int narrow = 1;"
NARROW = "sround32((int64_t)(a * xq[t]) * (int32_t)mcol[t], x));"
WIDE = "sround32((int64_t)(a * xq[t]) * mcol[t], x));"


def _run(tmp_path, *edits):
    require("cc")
    qm, dev = build_model(SPEC), device_config(SPEC)
    ex = render(qm, dev)
    src = ex.files["etp_update.c"]
    for old, new in edits:
        assert src.count(old) == 1, old
        src = src.replace(old, new)
    ex.files["etp_update.c"] = src
    return verify_export(ex, TableDevice(qm, dev), build_script(SPEC), 0, False, tmp_path)[1]


def test_both_loops_agree_with_the_reference(tmp_path):
    assert _run(tmp_path / "narrow") is None
    assert _run(tmp_path / "wide", (FLAG, "int narrow = 0;")) is None


def test_a_bug_in_the_narrow_loop_is_found(tmp_path):
    mm = _run(tmp_path, (NARROW, NARROW.replace(", x));", ", x) + 1);")))
    assert mm is not None and mm.tensor.startswith(("W", "R")), mm


def test_a_bug_in_the_wide_loop_is_found(tmp_path):
    mm = _run(tmp_path, (FLAG, "int narrow = 0;"), (WIDE, WIDE.replace(", x));", ", x) + 1);")))
    assert mm is not None and mm.tensor.startswith(("W", "R")), mm
