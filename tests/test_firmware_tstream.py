"""The first layer's class target stream as a constant in flash (firmware_gen.tstream.
target_stream_table; docs/fixed-point.md section 8): the table reproduces the reference's
stream at every step, also past the stored frames; a row that does not repeat keeps its first
TSTREAM_PREFIX_FRAMES frames and its membrane after them, from which the device runs it on.
The device that reads it agrees with the reference step by step, before, at and after the
switch (planted bugs are found: a frame index, a flipped bit, a wrong switch frame, a wrong
membrane)."""

import numpy as np
import pytest
from conftest import require

from edgetp.fixed.network_q import _layer
from firmware_gen.cases import CaseSpec, build_model, build_script, device_config
from firmware_gen.generate import render
from deploy.bitexact import verify_export
import firmware_gen.generate as generate
from edgetp.audio.frontend import N_FRAMES
from firmware_gen.layout import device_layout
from firmware_gen.tstream import TSTREAM_PREFIX_FRAMES, target_stream_table
from firmware_gen.tensors import TableDevice


def _frame(tab, k, tau, H):
    pre, per = int(tab.pre[k]), int(tab.per[k])
    assert per > 0 or tau < pre
    f = tau if tau < pre + per else pre + (tau - pre) % per
    return np.unpackbits(tab.bits[tab.off[k] + f], bitorder="little")[:H]


@pytest.mark.parametrize("seed", range(6))
def test_table_is_the_stream_at_every_step(seed):
    qm = build_model(CaseSpec(seed=seed, hidden=(9,), n_out=4))
    tab = target_stream_table(qm, "classes")
    assert tab is not None and target_stream_table(qm, "batch") is None
    assert len(tab.resumed) == 0 and tab.v_resume.shape == (0, qm.cfg.hidden[0])
    K, H = qm.cfg.n_out, qm.cfg.hidden[0]
    span = int(max(tab.pre.astype(int) + tab.per))
    v, s = np.zeros((K, H), np.int32), np.zeros((K, H), np.int8)
    eye = np.eye(K, dtype=np.int8)
    for tau in range(3 * span + 7):  # well past every row's stored frames
        v, s, _ = _layer(qm, 0, v, s, eye, True)
        for k in range(K):
            assert np.array_equal(_frame(tab, k, tau, H), s[k]), (tau, k)


def test_layout_keeps_no_membrane_for_a_tabulated_stream():
    qm = build_model(CaseSpec(seed=2))
    names = {it.name for it in device_layout(qm, "classes").items}
    assert "vt0" not in names and {"tsteps", "tstream", "tstream_off", "tstream_pre", "tstream_per"} <= names
    assert not {"vt0_resume", "tstream_v"} & names  # every row repeats: today's table exactly
    names = {it.name for it in device_layout(qm, "batch").items}
    assert "vt0" in names and "tsteps" not in names and "tstream" not in names


def _run(spec, tmp_path, old=None, new=None):
    require("cc")
    qm, dev = build_model(spec), device_config(spec)
    ex = render(qm, dev)
    if old is not None:
        assert old in ex.files["etp_network.c"]
        ex.files["etp_network.c"] = ex.files["etp_network.c"].replace(old, new, 1)
    return verify_export(ex, TableDevice(qm, dev), build_script(spec), 0, False, tmp_path)[1]


# row 1 repeats every 14 steps after 48; 96 training steps read a whole cycle past the stored frames
SPEC = CaseSpec(seed=2, steps=120, samples=2, infer_every=5)


def test_device_reads_the_table_past_its_frames(tmp_path):
    """Training steps interleaved with inference steps (the stream advances on training steps only)."""
    tab = target_stream_table(build_model(SPEC), "classes")
    assert max(tab.pre.astype(int) + tab.per) + max(tab.per) < 0.8 * SPEC.steps  # a whole cycle read by the modulo
    assert _run(SPEC, tmp_path) is None


def test_a_wrong_frame_index_is_found(tmp_path):
    mm = _run(SPEC, tmp_path, "pre + (tau - pre) % per", "(tau - pre) % per")
    assert mm is not None and mm.tensor in ("st0", "trt0")


# rows 1 and 3 do not repeat within 1 024 steps, rows 0 and 2 do; 180 steps of which every fifth is
# inference: 144 training steps, 16 past the switch, and the same sample twice (from the reset)
MIXED = CaseSpec(seed=76, hidden=(6,), n_out=4, leak_m=1.0, reset="hard", steps=180, samples=2, infer_every=5)
F = TSTREAM_PREFIX_FRAMES


def test_prefix_covers_an_utterance():
    assert N_FRAMES <= F <= 1024


def test_a_row_that_does_not_repeat_is_stored_with_its_state_after_the_prefix():
    qm = build_model(MIXED)
    tab = target_stream_table(qm, "classes")
    assert list(tab.resumed) == [1, 3] and list(tab.per[[1, 3]]) == [0, 0] and list(tab.pre[[1, 3]]) == [F, F]
    assert all(tab.per[[0, 2]] > 0)
    K, H = qm.cfg.n_out, qm.cfg.hidden[0]
    assert tab.bits.shape == (int(sum(tab.pre.astype(int) + tab.per)), 1) and tab.v_resume.shape == (2, H)
    v, s = np.zeros((K, H), np.int32), np.zeros((K, H), np.int8)
    eye = np.eye(K, dtype=np.int8)
    late = 0
    for tau in range(F + 40):
        if tau == F:
            assert np.array_equal(tab.v_resume, v[[1, 3]])  # the state after the stored frames
        v, s, _ = _layer(qm, 0, v, s, eye, True)
        for k in range(K):
            if tau < F or tab.per[k]:
                assert np.array_equal(_frame(tab, k, tau, H), s[k]), (tau, k)
        late += int(s[[1, 3]].sum()) if tau >= F else 0
    assert late > 0  # the rows the device runs past the switch do spike
    names = {it.name: it for it in device_layout(qm, "classes").items}
    assert "vt0" not in names and names["vt0_resume"].shape == (2, H) and names["vt0_resume"].table
    assert names["tstream_v"].section == "flash" and not names["tstream_v"].table


# 12 neurons: a whole byte of spikes and a partial one per frame; rows 0 and 2 do not repeat
WIDE = CaseSpec(seed=29, hidden=(12,), n_out=3, leak_m=1.0, reset="hard", steps=140, samples=1)


@pytest.mark.parametrize("spec", [MIXED, WIDE], ids=["6-neurons", "12-neurons"])
def test_device_runs_the_rows_past_their_prefix(spec, tmp_path):
    """Prefix, the switch at F (vt0_resume compared after every step) and the computed steps after it."""
    tab = target_stream_table(build_model(spec), "classes")
    assert 0 < len(tab.resumed) < spec.n_out
    assert sum(1 for o in build_script(spec).ops if o[0] == "train") >= spec.samples * (F + 10)
    assert _run(spec, tmp_path) is None


def _after_training_step(spec, n):
    """The harness's step count (training and inference steps) when the n-th training step is done."""
    steps = trains = 0
    for op in build_script(spec).ops:
        steps += op[0] in ("train", "infer")
        trains += op[0] == "train"
        if trains == n:
            return steps
    raise AssertionError(f"fewer than {n} training steps")


def _planted(spec, tmp_path, monkeypatch, change):
    """The device exported from a changed table (the reference keeps the true one)."""
    real = generate.device_layout

    def layout(qm, targets="classes"):
        lay = real(qm, targets)
        for it in lay.items:
            if it.init is not None:
                it.init = it.init.copy()
        change(lay)
        return lay

    monkeypatch.setattr(generate, "device_layout", layout)
    return _run(spec, tmp_path)


def test_a_flipped_bit_in_the_table_is_found(tmp_path, monkeypatch):
    def flip(lay):
        bits = lay.item("tstream").init
        bits[int(lay.item("tstream_off").init[3]) + 100, 0] ^= 1 << 4  # row 3, frame 100, neuron 4

    mm = _planted(MIXED, tmp_path, monkeypatch, flip)
    assert mm is not None and mm.tensor == "st0" and mm.index == 3 * 6 + 4, mm
    assert mm.step == _after_training_step(MIXED, 101)


def test_a_wrong_switch_frame_is_found(tmp_path, monkeypatch):
    def early(lay):
        lay.item("tstream_pre").init[1] = F - 1  # row 1 switches one step early (frames are all there)

    mm = _planted(MIXED, tmp_path, monkeypatch, early)
    assert mm is not None and mm.tensor == "vt0_resume" and mm.step == _after_training_step(MIXED, F - 1), mm


def test_a_wrong_membrane_after_the_prefix_is_found(tmp_path, monkeypatch):
    def off_by_one(lay):
        lay.item("tstream_v").init[1, 2] += 1

    mm = _planted(MIXED, tmp_path, monkeypatch, off_by_one)
    assert mm is not None and mm.tensor == "vt0_resume" and mm.index == 6 + 2, mm
    assert mm.step == _after_training_step(MIXED, F)


def test_a_switch_that_never_loads_is_found(tmp_path):
    mm = _run(MIXED, tmp_path, "tau + 1u == pre) {", "tau + 1u == pre + 1u) {")
    assert mm is not None and mm.tensor == "vt0_resume" and mm.step == _after_training_step(MIXED, F), mm


def test_table_cache_tells_shapes_apart():
    """Two models whose frozen weights S hold the same bytes in another shape ((6, 4) and (4, 6)) get
    their own tables: a cache keyed on the bytes alone would hand the second the first's."""
    import firmware_gen.tstream as tstream

    a = build_model(CaseSpec(hidden=(6,), n_out=4, recurrent=False))
    b = build_model(CaseSpec(hidden=(4,), n_out=6, recurrent=False)).copy()
    b.weights["S"] = np.ascontiguousarray(a.weights["S"].reshape(b.weights["S"].shape))
    assert a.weights["S"].tobytes() == b.weights["S"].tobytes()
    tstream._TSTREAM_CACHE.clear()
    alone = target_stream_table(b, "classes")
    tstream._TSTREAM_CACHE.clear()
    target_stream_table(a, "classes")
    after_a = target_stream_table(b, "classes")
    assert after_a.bits.shape == alone.bits.shape == (len(alone.bits), 1) and len(after_a.off) == 6
    for f in ("bits", "off", "pre", "per", "v_resume"):
        assert np.array_equal(getattr(after_a, f), getattr(alone, f)), f
