"""The first layer's class target stream as a constant in flash (firmware_gen.layout.
target_stream_table; docs/fixed-point.md section 8): the table reproduces the reference's
stream at every step, also past the stored frames, and the device that reads it agrees with
the reference step by step (a planted indexing bug is found)."""

import numpy as np
import pytest
from conftest import require

from edgetp.fixed.network_q import _layer
from firmware_gen.cases import CaseSpec, build_model, build_script, device_config
from firmware_gen.generate import render
from firmware_gen.harness import verify_export
from firmware_gen.layout import device_layout, target_stream_table
from firmware_gen.tensors import RefDevice


def _frame(tab, k, tau, H):
    bits, off, pre, per = tab
    f = tau if tau < pre[k] + per[k] else pre[k] + (tau - pre[k]) % per[k]
    return np.unpackbits(bits[off[k] + f], bitorder="little")[:H]


@pytest.mark.parametrize("seed", range(6))
def test_table_is_the_stream_at_every_step(seed):
    qm = build_model(CaseSpec(seed=seed, hidden=(9,), n_out=4))
    tab = target_stream_table(qm, "classes")
    assert tab is not None and target_stream_table(qm, "batch") is None
    K, H = qm.cfg.n_out, qm.cfg.hidden[0]
    span = int(max(tab[2].astype(int) + tab[3]))
    v, s = np.zeros((K, H), np.int32), np.zeros((K, H), np.int8)
    eye = np.eye(K, dtype=np.int8)
    for tau in range(3 * span + 7):                  # well past every row's stored frames
        v, s, _ = _layer(qm, 0, v, s, eye, True)
        for k in range(K):
            assert np.array_equal(_frame(tab, k, tau, H), s[k]), (tau, k)


def test_layout_keeps_no_membrane_for_a_tabulated_stream():
    qm = build_model(CaseSpec(seed=2))
    names = {it.name for it in device_layout(qm, "classes").items}
    assert "vt0" not in names and {"tsteps", "tstream", "tstream_off", "tstream_pre", "tstream_per"} <= names
    names = {it.name for it in device_layout(qm, "batch").items}
    assert "vt0" in names and "tsteps" not in names and "tstream" not in names


def _run(spec, tmp_path, old=None, new=None):
    require("cc")
    qm, dev = build_model(spec), device_config(spec)
    ex = render(qm, dev)
    if old is not None:
        assert old in ex.files["etp_network.c"]
        ex.files["etp_network.c"] = ex.files["etp_network.c"].replace(old, new, 1)
    return verify_export(ex, RefDevice(qm, dev), build_script(spec), 0, False, tmp_path)[1]


# row 1 repeats every 14 steps after 48; 96 training steps read a whole cycle past the stored frames
SPEC = CaseSpec(seed=2, steps=120, samples=2, infer_every=5)


def test_device_reads_the_table_past_its_frames(tmp_path):
    """Training steps interleaved with inference steps (the stream advances on training steps only)."""
    tab = target_stream_table(build_model(SPEC), "classes")
    assert max(tab[2].astype(int) + tab[3]) + max(tab[3]) < 0.8 * SPEC.steps   # a whole cycle read by the modulo
    assert _run(SPEC, tmp_path) is None


def test_a_wrong_frame_index_is_found(tmp_path):
    mm = _run(SPEC, tmp_path, "pre + (tau - pre) % NET->tstream_per[k]", "(tau - pre) % NET->tstream_per[k]")
    assert mm is not None and mm.tensor in ("st0", "trt0")
