"""Row scales: the frozen hidden input weights W_0..W_{L-1} with one power-of-two scale per row
(per neuron, QModel.fw_rows), each neuron's input sum shifted by its own shift. The reference (one
kernel: the per-tensor case is all rows equal), the settings and their refusals, the C twin bit for
bit (random models with rows of very different magnitudes, the extremes 0 and 24 included), planted
bugs in the C and in the Python caught, and `edgetp hil` on a row-scaled model."""

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetp.errors import EdgetpError
from edgetp.fixed.network_q import infer_sequence_q
from edgetp.fixed.qconfig import FV, QModel, frac_bits, from_float
from edgetp.tp.config import NetConfig, init_params
from firmware_gen.cases import build_model, device_config, random_spec
from firmware_gen.generate import render
from firmware_gen.memplan import totals
from firmware_gen.qmodel import qmodel_for, qmodel_hash

from test_firmware_frozen import _Model, _verify, frozen_spec, frozen_specs

SLOW = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _wide_rows(cfg, seed=0):
    """Float parameters whose W0 rows differ in magnitude by up to 2^9 (one row with a huge weight)."""
    p = init_params(cfg, seed)
    w0 = p.W[0] / (2.0 ** (np.arange(cfg.hidden[0]) % 10))[:, None]
    w0[0, 0] = 100.0
    p.W[0] = w0.astype(p.W[0].dtype)
    return p


# ----------------------------------------------------------------------------- the reference
def test_each_row_gets_its_own_fractional_bits_and_shift():
    cfg = NetConfig(6, (7,), 3, recurrent=True)
    p = _wide_rows(cfg)
    qm = from_float(cfg, p, 11, 16, hbits=8, frozen_hidden=True, row_scales=True)
    want = [frac_bits(float(np.abs(r).max()), 8) for r in p.W[0]]
    assert qm.fw_rows["W0"].tolist() == want and len(set(want)) > 3 and qm.fw["W0"] == min(want)
    assert list(qm.fw_rows) == ["W0"]  # R0, S, S_rec, the readout: per tensor
    assert qm.in_shifts(0).tolist() == [f + 11 - FV for f in want]
    assert np.array_equal(qm.weights["W0"], np.clip(np.floor(p.W[0] * 2.0 ** np.array(want)[:, None] + 0.5), -128, 127))
    per_tensor = from_float(cfg, p, 11, 16, hbits=8, frozen_hidden=True)
    assert not per_tensor.row_scales and per_tensor.in_shifts(0).tolist() == [per_tensor.in_shift(0)] * 7
    assert np.array_equal(per_tensor.weights["R0"], qm.weights["R0"])
    assert qmodel_hash(per_tensor) != qmodel_hash(qm) and qm.copy().fw_rows["W0"].tolist() == want


def test_per_tensor_is_row_scales_with_equal_rows():
    """One kernel: a model whose rows all carry the tensor's bits runs exactly as the per-tensor one."""
    qm = build_model(frozen_spec())
    same = qm.with_row_scales({f"W{l}": np.full(h, qm.fw[f"W{l}"]) for l, h in enumerate(qm.cfg.hidden)})
    xs = np.random.default_rng(0).integers(-3000, 3000, (3, 9, qm.cfg.n_in)).astype(np.int16)
    assert np.array_equal(infer_sequence_q(qm, xs), infer_sequence_q(same, xs))
    other = qm.with_row_scales({"W0": np.arange(qm.cfg.hidden[0])})
    assert not np.array_equal(infer_sequence_q(qm, xs), infer_sequence_q(other, xs))


def test_row_scales_are_refused_where_they_mean_nothing():
    cfg = NetConfig(6, (7,), 3, recurrent=True)
    p = init_params(cfg, 0)
    with pytest.raises(EdgetpError, match="frozen-hidden"):
        from_float(cfg, p, 12, 16, row_scales=True)  # a learning layer keeps one scale
    qm = from_float(cfg, p, 12, 16, hbits=8, frozen_hidden=True)
    for rows, why in (
        ({"R0": np.zeros(7, int)}, "apply to W0"),
        ({"W0": np.zeros(6, int)}, "7 integers"),
        ({"W0": np.full(7, 25)}, r"\[0, 24\]"),
        ({"W0": np.zeros(7)}, "integers"),
    ):
        with pytest.raises(EdgetpError, match=why):
            QModel(cfg, 16, 12, qm.weights, qm.fw, hbits=8, frozen_hidden=True, fw_rows=rows)
    with pytest.raises(EdgetpError, match="frozen-hidden"):
        QModel(cfg, 16, 12, qm.weights, qm.fw, fw_rows={"W0": np.zeros(7, int)})
    # recipe["fixed"] and the options
    m = _Model({"wbits": 16, "hbits": 8, "frozen_hidden": True, "fx": 11, "row_scales": True})
    qm, notes = qmodel_for(m)
    assert qm.row_scales and any("row_scales True" in n for n in notes)
    assert not qmodel_for(m, row_scales=False)[0].row_scales
    assert not qmodel_for(_Model({"wbits": 16, "hbits": 8, "frozen_hidden": True}))[0].row_scales  # default off
    with pytest.raises(EdgetpError, match="frozen-hidden"):
        qmodel_for(_Model({"row_scales": True}))


def test_pretrain_records_row_scales_only_with_a_frozen_hidden_layer(cli, tmp_path):
    from edgetp.cli.pretrain import fixed_extras

    assert fixed_extras(["frozen_hidden=true", "row_scales=true"]) == {"frozen_hidden": True, "row_scales": True}
    for bad, why in (
        (["row_scales=true"], "needs --device frozen_hidden=true"),
        (["frozen_hidden=true", "row_scales=maybe"], "row_scales must be true or false"),
    ):
        with pytest.raises(EdgetpError, match=why):
            fixed_extras(bad)
    r = cli(
        "pretrain",
        "--kws",
        "--from",
        tmp_path / "none.npz",
        "--ft",
        "train=readout",
        "--device",
        "row_scales=1",
        "--out",
        tmp_path / "out.npz",
    )
    assert r.returncode == 2 and "frozen_hidden=true" in r.stderr and "Traceback" not in r.stderr, r.stderr


# ----------------------------------------------------------------------------- the generated C
def test_export_emits_one_shift_per_neuron_in_flash():
    spec = frozen_spec(row_scales=True)
    qm = build_model(spec)
    ex = render(qm, device_config(spec))
    h, c = ex.files["etp_model.h"], ex.files["etp_model.c"]
    assert "#define ETP_ROW_SHIFTS 1" in h and "ETP_FW_W0" not in h and "W0 Q.0..24 per row" in h
    assert "static const int8_t etp_sh_x_row0[6]" in c and ".sh_x_row = etp_sh_x_row1," in c
    rows = {r.name: r for r in ex.plan}
    assert rows["sh_x_row0"].nbytes == 6 and rows["sh_x_row0"].section == "flash"
    plain = render(build_model(frozen_spec()), device_config(frozen_spec()))
    assert "ETP_ROW_SHIFTS" not in plain.files["etp_model.h"] and "sh_x_row" not in plain.files["etp_model.c"]
    assert totals(ex.plan)["flash"] - totals(plain.plan)["flash"] == sum(spec.hidden)
    assert totals(ex.plan)["ram"] == totals(plain.plan)["ram"]


def test_random_specs_draw_row_scales_without_changing_the_other_cases():
    rng = np.random.default_rng(5)
    specs = [random_spec(rng) for _ in range(60)]
    assert any(s.row_scales for s in specs) and all(s.frozen_hidden for s in specs if s.row_scales)
    plain = [replace(s, row_scales=False) for s in specs]
    assert [s.describe().replace(" row scales", "") for s in specs] == [s.describe() for s in plain]


@pytest.mark.needs("cc")
@settings(max_examples=12, **SLOW)
@given(frozen_specs(), st.booleans())
def test_row_scaled_random_models_bit_exact(spec, sanitize):
    spec.row_scales = True
    steps, mm, _ = _verify(spec, sanitize=sanitize and spec.seed % 4 == 0)
    assert mm is None, f"{spec.describe()}\n{mm}"


@pytest.mark.needs("cc")
@pytest.mark.parametrize(
    "mutate",
    [
        ("etp_kernels.c", "sh_x_row[i] : sh_x", "sh_x_row[0] : sh_x"),  # row 0's shift for all
        ("etp_kernels.c", "lif_rows4(&end, i, d, rc, sh4);", "lif_rows4(&end, i, d, rc, sh4 + 1);"),  # the next row's
        ("etp_network.c", "#define ROW_SHIFTS(ly) ((ly)->sh_x_row)", "#define ROW_SHIFTS(ly) NULL"),  # per tensor
        ("etp_model.c", "static const int8_t etp_sh_x_row0[6] = {", "static const int8_t etp_sh_x_row0[6] = {1 + "),
    ],
)
def test_harness_catches_planted_row_shift_bugs_in_the_c(mutate, tmp_path):
    spec = frozen_spec(row_scales=True, lr=1e-2)
    _steps, mm, _ = _verify(spec, tmp_path, mutate=mutate)
    assert mm is not None, mutate
    assert _verify(spec, tmp_path)[1] is None


@pytest.mark.needs("cc")
def test_harness_catches_a_planted_row_shift_bug_in_the_python(tmp_path, monkeypatch):
    """The reference using row 0's shift for every row disagrees with the C (which the export
    wrote from the correct shifts)."""
    from deploy.bitexact import verify_export
    from firmware_gen.tensors import TableDevice
    from firmware_gen.cases import build_script

    spec = frozen_spec(row_scales=True, lr=1e-2)
    qm, dev = build_model(spec), device_config(spec)
    ex = render(qm, dev)
    right = QModel.in_shifts
    monkeypatch.setattr(
        QModel,
        "in_shifts",
        lambda self, l, target=False: np.full_like(right(self, l, target), right(self, l, target)[0]),
    )
    _steps, mm = verify_export(ex, TableDevice(qm, dev), build_script(spec), 0, False, tmp_path)
    assert mm is not None and mm.tensor in ("v0", "s0", "W2", "u"), mm


# ----------------------------------------------------------------------------- hil
@pytest.mark.parametrize(
    "target", ["host", pytest.param("qemu", marks=pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm"))]
)
@pytest.mark.needs("cc")
def test_edgetp_hil_on_a_row_scaled_model(tone_models, tmp_path, target):
    from conftest import run_cli
    from edgetp.model import load_model, save_model

    root, models = tone_models
    m = load_model(models["unit"])
    params = m.params.copy()
    params.W[0] = _wide_rows(m.cfg).W[0]
    fixed = {
        "wbits": 16,
        "xbits": 16,
        "fx": 11,
        "headroom": 1.0,
        "targets": "classes",
        "hbits": 8,
        "frozen_hidden": True,
        "row_scales": True,
    }
    path = tmp_path / "rows.npz"
    save_model(
        replace(m, params=params, recipe=dict(m.recipe, fixed=fixed, finetune={"train": "readout", "lr": 2e-4})), path
    )
    assert len(set(qmodel_for(load_model(path))[0].fw_rows["W0"].tolist())) > 3
    out = tmp_path / "hil.json"
    r = run_cli(
        "hil",
        "--target",
        target,
        "--model",
        path,
        "--data-root",
        root,
        "--shots",
        "1",
        "--set",
        "support_limit=2",
        "--set",
        "query_limit=1",
        "--set",
        "epochs=1",
        "--json",
        out,
        "--quiet",
        env={"EDGETP_HOME": str(tmp_path / "home")},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert res["samples"] == 2 and res["mismatches"] == 0 and res["row_scales"] and res["frozen_hidden"]
