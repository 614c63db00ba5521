"""The keyword detector's C twin (firmware_gen/runtime/etp_detect.c, etp_det_step) equals the integer reference
``edgetp.stream.detector.step_q`` on every state, every step: driven over the one host path (the host-port
etp_server, DET_STEP, deploy.host.Device), on random streams, streams whose margins cross the thresholds and the
worst-case bound stream; planted bugs in the C make it fail (issue 32)."""

from pathlib import Path

import numpy as np
import pytest
from detect_models import LABELS

from deploy.detect_check import carrier_model, check_stream, crossing_stream, worst_stream
from edgetp.errors import EdgetpError
from edgetp.stream import detector as D
from firmware_gen.detect import CFG_H, detect_files, snapshot_files
from firmware_gen.generate import render

BOUND = 60  # the small detector's row bound: increments within +-60, sums with many ties


def small_detector() -> D.DetectorQ:
    """W = 7, refractory 3, a threshold per keyword from 0 to 2.5 bounds (0: every top keyword fires)."""
    thr = {w: float(i * BOUND // 4) for i, w in enumerate(D.KEYWORDS)}
    w = np.zeros((len(LABELS), 1), np.int64)
    w[:, 0] = BOUND
    return D.DetectorSpec.make(LABELS, thr, window=7, refractory=3).quantized(0, w)


def worst_detector() -> D.DetectorQ:
    """The default window and refractory time with the largest row bound int32 allows: 2 W bound < 2^31."""
    w = np.zeros((len(LABELS), 1), np.int64)
    w[:, 0] = D.INT32_MAX // (2 * D.WINDOW)
    return D.DetectorSpec.make(LABELS, 1000.0).quantized(0, w)


def export(tmp_path: Path, spec: D.DetectorQ, plant=None) -> Path:
    """The tiny model's export with the detector, written to ``tmp_path`` (``plant``: (old, new) text replaced
    in its etp_detect.c copy, a planted bug)."""
    render(carrier_model(LABELS), detector=spec).write(tmp_path)
    if plant is not None:
        src = tmp_path / "etp_detect.c"
        text = src.read_text()
        assert text.count(plant[0]) == 1, plant[0]
        src.write_text(text.replace(*plant))
    return tmp_path


def run_c(tmp_path, spec, streams, plant=None):
    from deploy.bitexact import build_firmware, serve

    with serve(build_firmware(export(tmp_path, spec, plant))) as dev:
        results = [check_stream(dev, spec, s) for s in streams]
    return results


@pytest.mark.needs("cc")
def test_c_detector_equals_step_q_every_state_every_step(tmp_path):
    spec = small_detector()
    rng = np.random.default_rng(0)
    streams = [
        rng.integers(-BOUND, BOUND + 1, (300, len(LABELS))),
        crossing_stream(spec, 1500, 1),
        crossing_stream(spec, 1500, 2),
    ]
    results = run_c(tmp_path, spec, streams)
    for s, r in zip(streams, results):
        assert r.mismatch is None, r.mismatch
        assert r.steps == len(s) and r.reports == D.run(spec, s)[1]
    # the crossing streams exercise what the planted bugs break: reports, refractory suppression, re-arming
    reps = results[1].reports + results[2].reports
    assert len(reps) > 50 and len({k for _f, k, _m in reps}) >= 8
    gaps = np.diff([f for f, _k, _m in results[1].reports])
    assert gaps.min() == spec.refractory + 1


@pytest.mark.needs("cc")
def test_c_detector_holds_the_worst_case_bound_stream(tmp_path):
    spec = worst_detector()
    s = worst_stream(spec, 900)
    (r,) = run_c(tmp_path, spec, [s])
    assert r.mismatch is None, r.mismatch
    # the C agreed with step_q on every step of a stream that reaches the bound: sums at +-W bound, margins at
    # 2 W bound (just under 2^31), so neither wrapped
    sums = D.window_sums(s, spec.window)
    assert np.abs(sums).max() == spec.window * spec.row_bound
    assert D.margins(sums)[1].max() == 2 * spec.window * spec.row_bound > D.INT32_MAX - 2 * spec.window
    assert len(r.reports) >= 2


@pytest.mark.needs("cc")
def test_det_step_refuses_bad_requests(tmp_path):
    """A step before the detector was started, increments of another width, out-of-int32 values and a firmware
    without the detector are clear errors, not a wrong state."""
    from deploy.bitexact import build_firmware, serve
    from deploy.host import DeviceError

    spec = small_detector()
    n = len(LABELS)
    with serve(build_firmware(export(tmp_path / "det", spec))) as dev:
        with pytest.raises(DeviceError, match="BAD_ARG"):
            dev.det_step(np.zeros(n, np.int32))  # no start yet
        with pytest.raises(DeviceError, match="BAD_LEN"):
            dev.det_step(np.zeros(n - 1, np.int32), start=True)
        with pytest.raises(EdgetpError, match="int32"):
            dev.det_step(np.full(n, 1 << 31, np.int64), start=True)
        assert dev.det_step(np.zeros(n, np.int32), start=True)["t"] == 1
    render(carrier_model(LABELS)).write(tmp_path / "plain")
    with serve(build_firmware(tmp_path / "plain")) as dev:
        with pytest.raises(DeviceError, match="UNSUPPORTED"):
            dev.det_step(np.zeros(n, np.int32), start=True)


@pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")
def test_c_detector_equals_step_q_on_the_cortex_m4(tmp_path):
    """The same on QEMU mps2-an386 over its UART (frames of MAX_PAYLOAD: 36 classes fit one), short."""
    from deploy.bitexact import build_firmware, serve

    spec = small_detector()
    s = crossing_stream(spec, 250, 4)
    with serve(build_firmware(export(tmp_path, spec), target="qemu")) as dev:
        r = check_stream(dev, spec, s)
    assert r.mismatch is None and r.steps == len(s), r.mismatch
    assert len(r.reports) >= 5 and r.reports == D.run(spec, s)[1]
    assert min(r.costs) > 0  # the step's cost is counted (instructions under -icount)


PLANTS = {
    "latch never re-armed": (
        "int32_t latch = (int32_t)k == s->latch ? s->latch : -1;",
        "int32_t latch = s->latch;",
    ),
    "refractory one frame longer": ("s->hold = ETP_DET_REFRACTORY;", "s->hold = ETP_DET_REFRACTORY + 1;"),
    "argmax takes the last on ties": ("if (s->sums[j] > s->sums[k]) k = j;", "if (s->sums[j] >= s->sums[k]) k = j;"),
    "threshold strict": ("margin >= det_threshold[k]", "margin > det_threshold[k]"),
    "ring not advanced on a report": (
        "s->pos = (s->pos + 1u) % ETP_DET_WINDOW;",
        "s->pos = (s->pos + !fired) % ETP_DET_WINDOW;",
    ),
}


@pytest.mark.needs("cc")
@pytest.mark.parametrize("bug", sorted(PLANTS))
def test_planted_c_detector_bugs_are_caught(tmp_path, bug):
    spec = small_detector()
    (r,) = run_c(tmp_path, spec, [crossing_stream(spec, 1500, 1)], PLANTS[bug])
    assert r.mismatch is not None, f"the planted bug ({bug}) went unnoticed"


def test_generated_header_holds_c_constants_and_matches_the_snapshot():
    """etp_det_cfg.h is DetectorQ.c_constants() and nothing hand-written; tests/snapshots/detect holds the fixed
    detector's (after an intended change: python -m firmware_gen.detect tests/snapshots/detect)."""
    import difflib
    import re

    spec = small_detector()
    text = render(carrier_model(LABELS), detector=spec).files[CFG_H]
    defs = dict(re.findall(r"^#define (ETP_DET_\w+) (.+?)   /\*", text, re.M))
    want = {
        k: ("{" + ", ".join(map(str, v)) + "}" if isinstance(v, list) else str(v))
        for k, v in spec.c_constants().items()
    }
    assert defs == want
    snap = Path(__file__).parent / "snapshots" / "detect"
    for name, new in snapshot_files().items():
        old = (snap / name).read_text()
        assert old == new, "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), name, name))
    assert (
        CFG_H not in render(carrier_model(LABELS)).files and "etp_detect.c" not in render(carrier_model(LABELS)).files
    )


def test_a_detector_of_another_width_is_refused():
    with pytest.raises(EdgetpError, match="readout"):
        render(carrier_model(LABELS[:12]), detector=small_detector())
    with pytest.raises(EdgetpError, match="readout"):
        detect_files(small_detector(), "", 12)


@pytest.mark.needs("cc")
def test_verify_c_detector_runs_random_detectors(tmp_path):
    """`edgetp verify-c --detector N` as a user runs it: random detectors (class count, window, refractory time,
    format, bound, thresholds), every state every frame, reports made and compared; bad arguments are one line."""
    import json

    from conftest import run_cli

    out = tmp_path / "d.json"
    r = run_cli("verify-c", "--detector", "3", "--steps", "300", "--seed", "1", "--json", out)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert res["detectors"] == 3 and res["frames"] == 3 * 3 * 300 and res["mismatches"] == res["errors"] == 0
    assert res["reports"] > 20
    for args, msg in (
        (("--detector", "0"), "--detector must be at least 1"),
        (("--detector", "1", "--steps", "0"), "--steps must be at least 1"),
        (("--detector", "1", "--target", "qemu", "--sanitize"), "--sanitize is for --target host"),
    ):
        bad = run_cli("verify-c", *args)
        assert bad.returncode == 2 and msg in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


@pytest.mark.needs("cc")
def test_verify_c_detector_catches_a_planted_bug(monkeypatch):
    """The same check with a planted bug in the generated etp_detect.c fails (test the tester)."""
    import deploy.verify_detect as V

    old, new = PLANTS["ring not advanced on a report"]

    def planted(*args, **kw):
        ex = render(*args, **kw)
        assert ex.files["etp_detect.c"].count(old) == 1
        ex.files["etp_detect.c"] = ex.files["etp_detect.c"].replace(old, new)
        return ex

    monkeypatch.setattr(V, "render", planted)
    s = V.verify_detectors(2, seed=1, frames=300)
    assert not s.ok and s.mismatches >= 1 and s.errors == 0, s.to_json()
    assert "differ" in s.details[0]["message"] or "device" in s.details[0]["message"]
