"""The frozen-hidden device mode: hidden layers constant in flash (int8 or int16, ``hbits``),
only the readout learns (in RAM, ``wbits``), no target set. The integer reference (readout-only
training runs no target stream), the quantization at two widths, the layout and its memory plan,
the C against the reference bit for bit, the refusals, and planted bugs caught (the tester tested)."""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgetp.errors import EdgetpError
from edgetp.fixed.network_q import init_state_q, train_sequence_q, train_step_q
from edgetp.fixed.qconfig import from_float
from edgetp.fixed.update_q import QOpt
from edgetp.tp.config import NetConfig, init_params
from firmware_gen.cases import INPUT_STYLES, WEIGHT_STYLES, CaseSpec, build_model, build_script, device_config
from firmware_gen.generate import render
from firmware_gen.layout import device_layout, persistent
from firmware_gen.memplan import totals
from firmware_gen.qmodel import qmodel_for, qmodel_hash
from edgetp.fixed.device import DeviceConfig
from firmware_gen.tensors import DriftError, TableDevice, state_tensors

SLOW = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
TARGET_SET = {"S", "S_rec", "trl", "tsteps", "vt0_resume"}


def frozen_spec(**kw) -> CaseSpec:
    base = dict(
        hidden=(6, 5),
        recurrent=True,
        wbits=16,
        hbits=8,
        frozen_hidden=True,
        train="readout",
        samples=3,
        steps=5,
        fw={"W0": 5, "W1": 6, "R0": 4, "R1": 5, "W2": 12},
    )
    base.update(kw)
    return CaseSpec(**base)


# ----------------------------------------------------------------------------- integer reference
def test_readout_only_training_runs_no_target_stream():
    """train="readout": the data stream and the readout's update only; the target set stays zero and
    its step count too, while the readout learns (and the hidden weights do not move)."""
    qm = build_model(CaseSpec(hidden=(6, 5), recurrent=True, lr=1e-2))
    w0 = {n: a.copy() for n, a in qm.weights.items()}
    xs = np.random.default_rng(0).integers(-3000, 3000, (2, 7, qm.cfg.n_in)).astype(np.int16)
    opt = QOpt.make("colnorm", 1e-2, 0, 10, -1)
    state = train_sequence_q(qm, xs, np.array([0, 2]), opt, "classes", "readout")
    assert state.tt == 0 and state.t == 7
    assert all(not np.any(a) for a in [*state.vt, *state.st, *state.trt, state.trl])
    assert all(np.array_equal(qm.weights[n], w0[n]) for n in qm.weights if n != "W2")
    assert not np.array_equal(qm.weights["W2"], w0["W2"])
    # train "all" still runs both streams
    state = train_sequence_q(qm.copy(), xs, np.array([0, 2]), QOpt.make("colnorm", 1e-2, 0, 10, -1))
    assert state.tt == 7 and any(np.any(a) for a in state.trt)


def test_hidden_width_quantization_and_its_rules():
    cfg = NetConfig(6, (7,), 3, recurrent=True)
    p = init_params(cfg, 0)
    qm = from_float(cfg, p, 12, 16, hbits=8, frozen_hidden=True)
    assert qm.weights["W1"].dtype == np.int16 and qm.weights["W0"].dtype == qm.weights["R0"].dtype == np.int8
    assert qm.hbits == 8 and qm.bits_of("W0") == 8 and qm.bits_of("W1") == 16
    same = from_float(cfg, p, 12, 16)
    assert same.hbits == 16 and not same.frozen_hidden
    assert same.fw["W0"] > qm.fw["W0"]  # int16 keeps 8 more bits of the same tensor
    for a in (qm, same):
        b = a.copy()
        assert (b.hbits, b.frozen_hidden) == (a.hbits, a.frozen_hidden)
    with pytest.raises(EdgetpError, match="frozen-hidden"):
        from_float(cfg, p, 12, 16, hbits=8)  # another width needs the frozen mode
    with pytest.raises(EdgetpError, match="readout only"):
        train_step_q(
            qm,
            init_state_q(qm, 1, 3),
            np.zeros((1, 6), np.int16),
            np.array([0]),
            QOpt.make("colnorm", 1e-3, 0, 10, -1),
            "classes",
            "all",
        )
    # the model's hash says frozen or not (another device layout); as before otherwise
    h16 = qmodel_hash(from_float(cfg, p, 12, 16, hbits=16, frozen_hidden=True))
    assert len({qmodel_hash(qm), qmodel_hash(same), h16}) == 3


class _Model:
    def __init__(self, fixed):
        self.cfg = NetConfig(6, (7,), 3, recurrent=True)
        self.params = init_params(self.cfg, 0)
        self.labels = ["a", "b", "c"]
        self.recipe = {"fixed": fixed}


def test_qmodel_for_reads_the_recipe_and_options_override():
    qm, notes = qmodel_for(_Model({"wbits": 16, "hbits": 8, "frozen_hidden": True, "fx": 11}))
    assert (qm.wbits, qm.hbits, qm.frozen_hidden, qm.fx) == (16, 8, True, 11)
    assert any("hbits 8" in n for n in notes) and any("frozen_hidden True" in n for n in notes)
    qm, _ = qmodel_for(_Model({"wbits": 16, "hbits": 8, "frozen_hidden": True}), hbits=16)
    assert qm.hbits == 16 and qm.frozen_hidden
    qm, _ = qmodel_for(_Model({}))
    assert (qm.hbits, qm.frozen_hidden) == (16, False)  # without the keys: as before
    with pytest.raises(EdgetpError, match="frozen-hidden"):
        qmodel_for(_Model({}), hbits=8)
    with pytest.raises(EdgetpError, match="frozen-hidden"):
        qmodel_for(_Model({"hbits": 8, "frozen_hidden": True}), frozen_hidden=False)


def test_finetune_fixed_protocol_gets_the_device_model():
    """`finetune --kws --fixed` quantizes through qmodel_for when the model records recipe["fixed"]:
    the integer model the device runs, frozen-hidden widths included."""
    from edgetp.kws.fixed_protocol import device_qmodel

    m = _Model({"wbits": 16, "hbits": 8, "frozen_hidden": True, "fx": 11})
    qm = device_qmodel(m, None, "nobody")
    want = qmodel_for(m)[0]
    assert (qm.hbits, qm.frozen_hidden) == (8, True) and qmodel_hash(qm) == qmodel_hash(want)


def test_device_config_and_reference_refuse_training_every_layer():
    with pytest.raises(EdgetpError, match="--train readout"):
        DeviceConfig(frozen_hidden=True)
    qm = build_model(frozen_spec())
    with pytest.raises(EdgetpError, match="frozen-hidden"):
        TableDevice(qm, DeviceConfig())  # the model and the settings must agree
    ref = TableDevice(qm)
    assert ref.cfg.frozen_hidden and ref.cfg.train == "readout"
    with pytest.raises(EdgetpError, match="readout only"):
        ref.set_optimizer("colnorm", 10, "all")
    ref.set_optimizer("sgd", 3, "readout")


def test_layout_has_no_target_set_and_hidden_weights_in_flash():
    qm = build_model(frozen_spec())
    lay = device_layout(qm)
    names = {it.name: it for it in lay.items}
    assert not TARGET_SET & set(names)
    assert not [n for n in names if re.match(r"(vt|st|trt|st_prev|s_prev|delta|delta_t|vpre|vpre_t)\d|tstream", n)]
    for n in ("W0", "W1", "R0", "R1"):
        it = names[n]
        assert it.section == "flash" and it.group == "frozen weights" and it.table and not it.writable
        # W0 (4 int16 features a row) is stored as int16 (layout.wide_input), the others at hbits
        want = ("int16_t", "i16") if n == "W0" else ("etp_wh_t", "i8")
        assert (lay.ctype(it), lay.dtype_of(it)) == want and it.wide == (n == "W0") and f"{n}_init" not in names
        assert f"rr_{n}" not in names
    assert names["W2"].section == "ram" and lay.dtype_of(names["W2"]) == "i16" and "rr_W2" in names
    assert [it.name for it in persistent(lay)] == ["W2", "rng", "opt_steps", "opt_cfg", "rr_W2", "cc_W2"]
    assert lay.dims["K"] == 0
    # the same weights, not frozen: the readout and the hidden tensors all trainable, a target set
    ram = totals(render(qm, DeviceConfig(train="readout", frozen_hidden=True)).plan)["ram"]
    full = build_model(frozen_spec(frozen_hidden=False, hbits=None, train="all", fw={}))
    assert ram < totals(render(full, device_config(frozen_spec(frozen_hidden=False, train="all"))).plan)["ram"]


def test_generated_header_and_descriptors():
    spec = frozen_spec()
    ex = render(build_model(spec), device_config(spec))
    h, c = ex.files["etp_model.h"], ex.files["etp_model.c"]
    assert "#define ETP_FROZEN_HIDDEN 1" in h and "typedef int8_t etp_wh_t;" in h and "typedef int16_t etp_w_t;" in h
    assert "#define ETP_N_TARGETS 0" in h and "#define ETP_N_PARAMS 1" in h and "#define ETP_TRAIN_ALL_DEFAULT 0" in h
    assert "static const int16_t etp_W0[6 * 4] ETP_ALIGN4" in c and "static const etp_wh_t etp_W1[" in c
    assert "static const etp_wh_t etp_R1[" in c and ".w16 = 1," in c and ".w16 = 0," in c
    assert "etp_W0_init" not in c and "etp_S" not in c and ".trl = NULL" in c
    assert "frozen hidden weights int8" in h
    plain = render(build_model(CaseSpec()), device_config(CaseSpec())).files["etp_model.h"]
    assert "#define ETP_FROZEN_HIDDEN 0" in plain and "typedef int16_t etp_wh_t;" in plain


# ----------------------------------------------------------------------------- the C, bit for bit
@st.composite
def frozen_specs(draw):
    L = draw(st.integers(1, 3))
    wbits, hbits, xbits = (draw(st.sampled_from([8, 16])) for _ in range(3))
    fw = {f"W{L}": draw(st.integers(0, wbits))}
    fw.update({n: draw(st.integers(0, hbits)) for n in [f"W{i}" for i in range(L)] + [f"R{i}" for i in range(L)]})
    return CaseSpec(
        n_in=draw(st.integers(1, 10)),
        hidden=tuple(draw(st.lists(st.integers(1, 9), min_size=L, max_size=L))),
        n_out=draw(st.integers(2, 5)),
        recurrent=draw(st.booleans()),
        reset=draw(st.sampled_from(["hard", "soft"])),
        vth=draw(st.sampled_from([0.05, 0.3, 0.66, 2.0])),
        leak_m=draw(st.sampled_from([0.0, 0.77, 1.0])),
        leak_t=draw(st.sampled_from([0.8, 0.977])),
        wbits=wbits,
        hbits=hbits,
        xbits=xbits,
        fx=draw(st.integers(0, 12 if xbits == 16 else 6)),
        fw=fw,
        weight_style=draw(st.sampled_from(WEIGHT_STYLES)),
        input_style=draw(st.sampled_from(INPUT_STYLES)),
        targets=draw(st.sampled_from(["classes", "batch"])),
        optimizer=draw(st.sampled_from(["rownorm", "colnorm", "sgd"])),
        clip=draw(st.sampled_from([-1, 0, 4])),
        lr=draw(st.sampled_from([1e-4, 1e-2, 0.1])),
        beta_shift=draw(st.integers(0, 15)),
        train="readout",
        samples=draw(st.integers(1, 3)),
        steps=draw(st.integers(1, 8)),
        infer_every=draw(st.sampled_from([0, 3])),
        switch=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
        update_every=draw(st.sampled_from([1, 2])),
        frozen_hidden=True,
    )


def _verify(spec, tmp_path=None, sanitize=False, mutate=None):
    from deploy.bitexact import verify_export

    qm, dev = build_model(spec), device_config(spec)
    ex = render(qm, dev)
    if mutate:
        file, old, new = mutate
        assert old in ex.files[file], old
        ex.files[file] = ex.files[file].replace(old, new, 1)
    ref = TableDevice(qm, dev)
    steps, mm = verify_export(ex, ref, build_script(spec), 0, sanitize, tmp_path)
    return steps, mm, ref


@pytest.mark.needs("cc")
@settings(max_examples=20, **SLOW)
@given(frozen_specs())
def test_frozen_hidden_random_models_bit_exact(spec):
    steps, mm, _ = _verify(spec)
    assert mm is None, f"{spec.describe()}\n{mm}"


@pytest.mark.needs("cc")
@pytest.mark.parametrize("hbits,wbits", [(8, 16), (8, 8), (16, 16)])
def test_frozen_hidden_bit_exact_under_sanitizers_and_learns(hbits, wbits, tmp_path):
    fw = {"W0": 5, "W1": 6, "R0": 4, "R1": 5, "W2": 12} if hbits == 8 else {}
    spec = frozen_spec(
        hbits=hbits,
        wbits=wbits,
        fw=fw if wbits == 16 else {k: min(v, 6) for k, v in fw.items()},
        lr=1e-2,
        update_every=2,
    )
    steps, mm, ref = _verify(spec, tmp_path, sanitize=True)
    assert mm is None and steps == 15, mm
    assert ref.opt.step > 0 and not np.array_equal(ref.qm.weights["W2"], ref.qm0.weights["W2"])
    assert all(np.array_equal(ref.qm.weights[n], ref.qm0.weights[n]) for n in ("W0", "W1", "R0", "R1"))


@pytest.mark.needs("cc")
def test_c_refuses_training_every_layer_and_writing_flash(tmp_path):
    from deploy.bitexact import build_firmware, refusal, serve

    spec = frozen_spec()
    qm, dev = build_model(spec), device_config(spec)
    render(qm, dev).write(tmp_path)
    with serve(build_firmware(tmp_path)) as c:
        ref = TableDevice(qm, dev)
        names = [t.name for t in c.tensors()]
        writable = {t.name: t.writable for t in c.tensors()}
        assert names == [n for n, _a in ref.tensors()]
        assert not any(writable[n] for n in ("W0", "W1", "R0", "R1")) and writable["W2"]
        c.init(3)
        ref.init(3)
        x = np.arange(spec.n_in, dtype=np.int16) * 700 - 1000
        assert refusal(c.set_optimizer, "colnorm", 10, "all") == 1  # ETP_EBADARG: the hidden layers cannot learn
        c.train(x, 1)
        ref.train(x, 1)
        assert c.digest()["digest"] == ref.digest()
        # spikes other than 0/1 written by a host: the recurrent sum multiplies them (no 0/1 shortcut)
        s0 = np.array([3, 0, 1, -2, 1, 0][: spec.hidden[0]], np.int8)
        c.write_tensor(names.index("s0"), s0)
        ref.state.s[0][0] = s0
        c.train(x, 2)
        ref.train(x, 2)
        assert c.digest()["digest"] == ref.digest()
        cfg = names.index("opt_cfg")
        c.write_tensor(cfg, np.array([3, 131, 17, 10, 1, -1], "<i4"))
        assert refusal(c.train, x, 1) == 1  # train_all = 1 in opt_cfg: refused
        assert refusal(c.write_tensor, names.index("W0"), np.zeros(qm.weights["W0"].size)) == 1  # flash: read-only


# ----------------------------------------------------------------------------- the tester tested
@pytest.mark.needs("cc")
@pytest.mark.parametrize(
    "mutate",
    [
        # the int8 hidden weights' input shift one bit off
        ("etp_model.c", ".sh_x = ", ".sh_x = 1 + "),
        # int8 hidden weights on dense features not taken by their own path (paired inputs, lif_dense8)
        ("etp_kernels.c", "if (dense && (ETP_WH_BITS == 8 || w16)) {", "if (dense && (ETP_WH_BITS == 16 || w16)) {"),
        # the int8 dense dot product leaves out the last input, or pairs the inputs wrongly
        (
            "etp_kernels.c",
            "    for (; j < n; j++) {\n        acc += (int64_t)row[j] * xp[j];",
            "    for (; j + 1 < n; j++) {\n        acc += (int64_t)row[j] * xp[j];",
        ),
        ("etp_kernels.c", "out[j + 1u] = x[j + 2u];", "out[j + 1u] = x[j + 1u];"),
        # the recurrent spike sum of the transposed R skips the first spiking input (col_sum: layer 0's ninth
        # row, layer 1), or reads the column of the neuron before
        (
            "etp_kernels.c",
            "    for (t = 0; t < n; t++) {\n        acc += RT[(uint32_t)idx[t] * stride];",
            "    for (t = 1; t < n; t++) {\n        acc += RT[(uint32_t)idx[t] * stride];",
        ),
        ("etp_kernels.c", "const int8_t *c = b + (uint32_t)*p * stride;", "const int8_t *c = b + (*p - 1u) * stride;"),
        # the readout's update reads the hidden layer's traces one neuron off
        ("etp_network.c", "out->x = vec(last->tr, last->n, 16);", "out->x = vec(last->tr + 1, last->n - 1u, 16);"),
    ],
)
def test_harness_catches_planted_frozen_bugs(mutate, tmp_path):
    spec = frozen_spec(
        input_style="normal", n_in=7, hidden=(9, 6), fw={"W0": 5, "W1": 6, "R0": 4, "R1": 5, "W2": 12}, lr=1e-2
    )
    _steps, mm, _ = _verify(spec, tmp_path, mutate=mutate)
    assert mm is not None, mutate


def test_a_reference_that_runs_the_target_stream_is_refused():
    """The reference of a frozen-hidden device must not run a target stream: if it did (its target
    state nonzero), its tensors no longer describe the device, and state_tensors says so."""
    import edgetp.fixed.network_q as nq

    ref = TableDevice(build_model(frozen_spec(hbits=16, fw={})))
    c = ref.qm.cfg
    state_tensors(ref.qm, ref.state, ref.opt, "classes", "readout")  # the honest reference passes
    ref.state = init_state_q(ref.qm, 1, c.n_out)  # a target set of O rows, run once
    ref.state, _aux = nq.forward_q(
        ref.qm, ref.state, np.full((1, c.n_in), 2000, np.int16), np.eye(c.n_out, dtype=np.int8)
    )
    with pytest.raises(DriftError, match="target set"):
        state_tensors(ref.qm, ref.state, ref.opt, "classes", "readout")


@pytest.mark.needs("cc")
def test_readout_only_non_frozen_c_skips_the_target_set_too(tmp_path):
    """Item 1 in C: with train_all = 0 etp_train_step runs the data stream alone; a C that still
    runs the target set (forward(x, 1, label)) is caught."""
    spec = CaseSpec(hidden=(6, 5), recurrent=True, train="readout", samples=2, steps=5, lr=1e-2)
    steps, mm, ref = _verify(spec, tmp_path)
    assert mm is None and steps == 10, mm
    assert ref.state.tt == 0
    _steps, mm, _ = _verify(
        spec, tmp_path, mutate=("etp_network.c", "forward(x, train_all, label);", "forward(x, 1, label);")
    )
    assert mm is not None and mm.tensor in ("st0", "trt0", "trl", "tsteps", "vt1", "st1", "trt1"), mm


# ----------------------------------------------------------------------------- the CLI
@pytest.mark.needs("cc")
def test_export_and_verify_c_with_frozen_hidden_options(cli, tmp_path):
    import json

    from edgetp.model import Model, save_model

    cfg = NetConfig(10, (8,), 4, True)
    path = tmp_path / "m.npz"
    save_model(Model(cfg, init_params(cfg, 0), [f"w{k}" for k in range(4)]), path)
    out = tmp_path / "c"
    r = cli(
        "export", "--model", path, "--c", out, "--frozen-hidden", "--hbits", "8", "--wbits", "16", "--ram-budget", "8K"
    )
    assert r.returncode == 0, r.stderr
    assert "frozen int8 hidden layers (no target set)" in r.stdout and "frozen weights" in r.stdout
    assert "    target set" not in r.stdout and "trl " not in r.stdout  # no such group in the plan
    man = json.loads((out / "etp_manifest.json").read_text())
    assert man["device"]["frozen_hidden"] and man["device"]["train"] == "readout" and man["device"]["hbits"] == 8
    assert [t["name"] for t in man["tensors"] if t["writable"] and t["name"][0] in "WR"] == ["W1"]
    for bad, why in (
        (["--frozen-hidden", "--train", "all"], "--train readout"),
        (["--hbits", "8", "--wbits", "16"], "frozen-hidden"),
    ):
        r = cli("export", "--model", path, "--c", tmp_path / "bad", *bad)
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = cli("verify-c", "--model", path, "--frozen-hidden", "--hbits", "8", "--epochs", "1", "--samples", "2")
    assert r.returncode == 0 and "0 mismatches" in r.stdout, r.stdout + r.stderr
