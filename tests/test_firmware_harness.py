"""The exported C against the integer reference, bit for bit, after every step.

Hypothesis draws whole models (1-3 hidden layers, recurrent or not, both target sets,
int8/int16 weights and inputs, formats, edge values, both optimizers, settings changed
between samples); each is generated, compiled with -std=c99 -Wall -Wextra -Werror
-pedantic and played against edgetp.fixed. The same under ASan+UBSan, a fine-tuning run
on real speech features, and the harness itself is checked to catch wrong C and UB.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_gen.cases import (
    CONSTANTS,
    INPUT_STYLES,
    WEIGHT_STYLES,
    CaseSpec,
    build_model,
    build_script,
    device_config,
)
from firmware_gen.generate import render
from conftest import can
from firmware_gen.build import build_arm
from deploy.bitexact import build_firmware, refusal, serve, verify_export
from firmware_gen.tensors import TableDevice, state_digest

pytestmark = pytest.mark.needs("cc")
SLOW = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@st.composite
def case_specs(draw):
    L = draw(st.integers(1, 3))
    wbits, xbits = draw(st.sampled_from([8, 16])), draw(st.sampled_from([8, 16]))
    names = [f"W{i}" for i in range(L + 1)] + [f"R{i}" for i in range(L)] + ["S", "S_rec"]
    fw_hi = 16 if wbits == 16 else 8
    return CaseSpec(
        n_in=draw(st.integers(1, 10)),
        hidden=tuple(draw(st.lists(st.integers(1, 9), min_size=L, max_size=L))),
        n_out=draw(st.integers(2, 5)),
        recurrent=draw(st.booleans()),
        reset=draw(st.sampled_from(["hard", "soft"])),
        vth=draw(st.sampled_from([0.05, 0.3, 0.66, 2.0])),
        leak_m=draw(st.sampled_from([0.0, 0.5, 0.77, 1.0])),
        **{k: draw(st.sampled_from(v)) for k, v in CONSTANTS.items()},
        wbits=wbits,
        xbits=xbits,
        fx=draw(st.integers(0, 12 if xbits == 16 else 6)),
        fw={n: draw(st.integers(0, fw_hi)) for n in names},
        weight_style=draw(st.sampled_from(WEIGHT_STYLES)),
        input_style=draw(st.sampled_from(INPUT_STYLES)),
        targets=draw(st.sampled_from(["classes", "batch"])),
        optimizer=draw(st.sampled_from(["rownorm", "colnorm", "sgd"])),
        clip=draw(st.sampled_from([-1, -1, 0, 1, 4])),
        lr=draw(st.sampled_from([0.0, 1e-4, 1e-3, 1e-2, 0.1])),
        beta_shift=draw(st.integers(0, 15)),
        train=draw(st.sampled_from(["all", "all", "readout"])),
        samples=draw(st.integers(1, 3)),
        steps=draw(st.integers(1, 8)),
        infer_every=draw(st.sampled_from([0, 2, 3])),
        switch=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
        update_every=draw(st.sampled_from([1, 2, 3])),
    )


def check(spec: CaseSpec, sanitize=False, tmp_path=None):
    qm, dev = build_model(spec), device_config(spec)
    steps, mm = verify_export(render(qm, dev), TableDevice(qm, dev), build_script(spec), 0, sanitize, tmp_path)
    assert mm is None, f"{spec.describe()}\n{mm}"
    return steps


@settings(max_examples=30, **SLOW)
@given(case_specs())
def test_random_models_bit_exact(spec):
    check(spec)


@settings(max_examples=10, **SLOW)
@given(case_specs())
def test_random_models_under_sanitizers(spec):
    check(spec, sanitize=True)


def test_default_case_every_tensor_and_digest(tmp_path):
    """The tensor table and digest of the C equal state_tensors / state_digest (zlib's CRC-32)."""
    spec = CaseSpec(hidden=(6, 5), recurrent=True, steps=5)
    qm, dev = build_model(spec), device_config(spec)
    ex = render(qm, dev)
    ex.write(tmp_path)
    with serve(build_firmware(tmp_path)) as c:
        ref = TableDevice(qm, dev)
        meta = c.tensors()
        assert [(t.name, t.np_dtype.itemsize, t.count) for t in meta] == [
            (n, a.dtype.itemsize, a.size) for n, a in ref.tensors()
        ]
        writable = {t.name: t.writable for t in meta}
        assert not writable["S"] and not writable["S_rec"] and writable["W0"] and writable["opt_cfg"]
        c.init(7)
        ref.init(7)
        x = np.arange(spec.n_in, dtype=np.int16) * 301 - 500
        for t in range(5):
            c.train(x, t % spec.n_out)
            ref.train(x, t % spec.n_out)
            assert (
                c.digest()["digest"] == ref.digest() == state_digest(ref.qm, ref.state, ref.opt, dev.targets, dev.train)
            )
        assert c.predict() == ref.predict()
        assert refusal(c.train, x, spec.n_out) == 1  # ETP_EBADARG: label out of range
        assert refusal(c.set_optimizer, "sgd", 63, "all") == 1  # beta shift out of range
        assert refusal(c.set_optimizer, "rownorm", 10, "all", -2) == 1  # clip out of range
        assert refusal(c.set_optimizer, 0, 10, "all") == 1  # code 0: the removed factored rule
        assert refusal(c.set_lr, 200, 300) == 1
        names = [t.name for t in meta]
        assert refusal(c.write_tensor, names.index("opt_cfg"), np.array([9, 0, 0, 0, 1, -1], "<i4")) == 0
        assert refusal(c.train, x, 0) == 1  # an invalid opt_cfg refuses to train
        assert refusal(c.write_tensor, names.index("S"), np.zeros(qm.weights["S"].size)) == 1  # flash: read-only
        c.init(7)
        ref.init(7)
        assert c.digest()["digest"] == ref.digest()  # init restores the weights and the optimizer


def test_same_sample_twice_after_reset(tmp_path):
    """TFLM's stateful check: the same input twice, reset, again: the neuron state repeats."""
    spec = CaseSpec(steps=4, samples=1)
    qm, dev = build_model(spec), device_config(spec)
    render(qm, dev).write(tmp_path)
    with serve(build_firmware(tmp_path)) as c:
        c.init(1)
        xs = np.random.default_rng(3).integers(-4000, 4000, (4, spec.n_in)).astype(np.int16)
        runs = []
        for _ in range(2):
            c.reset_state()
            for x in xs:
                c.infer(x)
            runs.append({n: a.copy() for n, a in c.state_tensors()})
    assert all(np.array_equal(runs[0][n], runs[1][n]) for n in runs[0])
    assert runs[0]["steps"][0] == 4


def _mutated(spec, file, old, new, tmp_path, sanitize=False):
    qm, dev = build_model(spec), device_config(spec)
    ex = render(qm, dev)
    assert old in ex.files[file]
    ex.files[file] = ex.files[file].replace(old, new, 1)
    return verify_export(ex, TableDevice(qm, dev), build_script(spec), 0, sanitize, tmp_path)[1]


def test_harness_reports_first_difference(tmp_path):
    """A one-LSB change in the trace kernel's rounding is found, with its step, tensor and index."""
    spec = CaseSpec(steps=6, samples=1)
    mm = _mutated(
        spec,
        "etp_kernels.c",
        "(uint32_t)(lam_q * tr[i] + (1 << 14))",
        "(uint32_t)(lam_q * tr[i] + (1 << 13))",
        tmp_path,
    )
    assert mm is not None and mm.step >= 2 and mm.index >= 0  # traces differ from the second step on
    assert "tr0" in mm.differing and mm.tensor == mm.differing[0]
    assert "first difference after step" in str(mm) and "tr0" in str(mm)


def test_sanitizer_reports_are_errors(tmp_path):
    """A left shift of a negative value (undefined in C) is caught by UBSan and fails the case."""
    spec = CaseSpec(fx=0, fw={"W0": 2}, steps=3, samples=1, input_style="extreme")  # input shift < 0
    mm = _mutated(
        spec, "etp_primitives.h", "return a * ((int64_t)1 << -k);", "return a << -k;", tmp_path, sanitize=True
    )
    assert mm is not None and mm.op in ("run", "exit") and "shift" in mm.detail


def test_a_leak_is_caught_when_the_firmware_exits(tmp_path):
    """verify-c ends the link after the script; the firmware exits and LeakSanitizer's exit
    check runs: memory lost on every reset fails the case, though every step was bit-exact."""
    spec = CaseSpec(steps=2, samples=2)
    qm, dev = build_model(spec), device_config(spec)
    ex = render(qm, dev)
    api = ex.files["etp_api.c"]
    ex.files["etp_api.c"] = api.replace("#include <stddef.h>", "#include <stddef.h>\n#include <stdlib.h>", 1).replace(
        "void etp_reset_state(void)\n{", "void etp_reset_state(void)\n{\n    if (malloc(24) == NULL) return;", 1
    )
    assert ex.files["etp_api.c"].count("malloc(24)") == 1
    steps, mm = verify_export(ex, TableDevice(qm, dev), build_script(spec), 0, True, tmp_path)
    assert mm is not None and mm.op == "exit" and steps == 4 and "leak" in mm.detail, mm


def test_kws_mcu_finetuning_run_on_real_features(tmp_path):
    """The shipped kws-mcu as `edgetp finetune --kws --fixed` runs it, on its own inputs (log gain,
    normalisation) of real speech: the device setup its recipe records (recipe["fixed"]: the hidden
    layer frozen in flash as int8, the readout learning; recipe["finetune"]: its learning rate, every
    second frame), read from the model file as finetune and hil read it, fine-tuned on the device and
    the reference: every state equal after every step, and the weights equal finetune_fixed's."""
    import argparse

    from edgetp.cli.finetune import recipe_from, register
    from edgetp.kws.fixed_protocol import device_qmodel
    from edgetp.kws.protocol import model_norm
    from edgetp.model import load_model
    from firmware_gen.script_finetune import REPO_WAVS, features_of, int_features, wav_files, word_labels
    from firmware_gen.options import add_device_options, device_from_args
    from firmware_gen.qmodel import qmodel_hash
    from deploy.verify_c import verify_model

    model = load_model("kws-mcu")
    p = argparse.ArgumentParser()
    register(p.add_subparsers())
    recipe = recipe_from(p.parse_args(["finetune", "--kws", "--fixed"]), model)  # finetune --fixed's defaults
    qm = device_qmodel(model, None, "")  # the model records recipe["fixed"]: no calibration
    p = argparse.ArgumentParser()
    add_device_options(p)
    hil_qm, dev, _notes = device_from_args(model, p.parse_args([]))  # what hil / export --c build
    fixed, ft = model.recipe["fixed"], model.recipe["finetune"]
    assert qm.frozen_hidden == fixed["frozen_hidden"] is True and qm.hbits == fixed["hbits"] == 8
    assert qm.weights["W0"].dtype.itemsize == 1 and qm.fx == fixed["fx"] and qmodel_hash(hil_qm) == qmodel_hash(qm)
    assert (dev.train, recipe.train) == ("readout", ft["train"])
    assert dev.lr == recipe.lr == ft["lr"] and dev.update_every == recipe.update_every == ft["update_every"] == 2
    files = wav_files(REPO_WAVS)
    xf = features_of(files, model_norm(model))  # what the model reads
    ys = word_labels(files, model.labels)
    assert sorted(model.labels[k] for k in ys) == ["no", "stop", "yes"]
    s = verify_model(
        qm,
        dev,
        int_features(qm, xf),
        ys,
        epochs=recipe.epochs,
        lr=recipe.lr,
        seed=3,
        keep=tmp_path,
        arm=can("arm-none-eabi-gcc"),
    )
    assert s.ok and s.steps == (recipe.epochs + 1) * 3 * 101, s.lines()  # the epochs, then inference
    assert s.extra["update_every"] == 2
    if can("arm-none-eabi-gcc"):
        from firmware_gen.memplan import totals

        assert s.extra["arm_size"]["etp_model.o"]["bss"] == totals(render(qm, dev).plan)["ram"]


def test_real_features_are_what_the_model_reads():
    """verify-c --wav and the kws run above feed the model's own inputs: its log gain, then its
    normalisation (edgetp.kws.data.ModelInputs), not the paper's log1p(S / max S)."""
    from edgetp.audio.frontend import NormConstants
    from edgetp.kws.data import ModelInputs
    from edgetp.kws.protocol import model_norm
    from edgetp.model import load_model
    from firmware_gen.script_finetune import REPO_WAVS, features_of, wav_files

    model = load_model("kws-mcu")
    g = model.frontend.get("log_gain", 1.0)
    scale = NormConstants(np.asarray(model.norm_scale, np.float32))
    files = wav_files(REPO_WAVS)
    raw = features_of(files, ModelInputs(NormConstants(np.ones(120, np.float32))))
    want = ModelInputs(scale, g).apply(raw)
    got = features_of(files, model_norm(model))
    assert np.isfinite(got).all() and np.allclose(got, want, rtol=1e-5, atol=1e-6)
    if g != 1.0:
        assert not np.allclose(got, features_of(files, ModelInputs(scale)), atol=1e-3)


@pytest.mark.needs("arm-none-eabi-gcc")
def test_cortex_m4_objects_match_the_memory_plan(tmp_path):
    from firmware_gen.memplan import totals

    spec = CaseSpec(hidden=(7, 4), recurrent=True, wbits=8)
    ex = render(build_model(spec), device_config(spec))
    ex.write(tmp_path)
    sizes = build_arm(tmp_path)
    assert set(sizes) == {"etp_model.o", "etp_kernels.o", "etp_update.o", "etp_network.o", "etp_api.o", "etp_bytes.o"}
    assert sizes["etp_model.o"][2] == totals(ex.plan)["ram"]  # .bss is exactly the RAM plan
    assert all(d == 0 for _t, d, _b in sizes.values())  # nothing initialised in RAM


@pytest.mark.needs("clang-sanitizers")
def test_clang_build_with_its_sanitizers(tmp_path):
    spec = CaseSpec(hidden=(4, 3), recurrent=True, targets="batch", optimizer="sgd", samples=2, steps=5)
    qm, dev = build_model(spec), device_config(spec)
    steps, mm = verify_export(render(qm, dev), TableDevice(qm, dev), build_script(spec), 0, True, tmp_path, "clang")
    assert mm is None and steps == 10, str(mm)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_update_every_k_bit_exact_and_skips_learning(k, tmp_path):
    """ETP_UPDATE_EVERY = k: every tensor equals the reference after every step, and the device took
    one optimizer step per training step t % k == 0 of each sample (samples of 5 steps, so that the
    phase of a counter that is not reset per sample would differ)."""
    spec = CaseSpec(hidden=(6, 4), steps=5, samples=3, update_every=k)
    qm, dev = build_model(spec), device_config(spec)
    ex = render(qm, dev)
    assert f"#define ETP_UPDATE_EVERY {k}u" in ex.files["etp_model.h"]
    ref = TableDevice(qm, dev)
    steps, mm = verify_export(ex, ref, build_script(spec), 0, False, tmp_path)
    assert mm is None and steps == 15, mm
    assert ref.opt.step == 3 * len(range(0, 5, k))


def test_update_every_out_of_range_is_refused():
    from edgetp.errors import EdgetpError
    from edgetp.fixed.device import DeviceConfig

    for bad in (0, -2, 2**32, 1.5):
        with pytest.raises(EdgetpError, match="update every"):
            DeviceConfig(update_every=bad)
    assert DeviceConfig(update_every=2**32 - 1).update_every == 2**32 - 1


@pytest.mark.parametrize(
    "old,new",
    [
        ("learn = *NET->steps % ETP_UPDATE_EVERY == 0u;", "learn = *NET->steps % ETP_UPDATE_EVERY == 1u;"),
        # a counter of training steps that etp_reset_state does not reset
        (
            "learn = *NET->steps % ETP_UPDATE_EVERY == 0u;",
            "static uint32_t n_train = 0; learn = n_train++ % ETP_UPDATE_EVERY == 0u;",
        ),
    ],
)
def test_harness_catches_a_wrong_update_schedule(old, new, tmp_path):
    """Test the tester: a C that learns on t % k == 1, or counts its steps across samples, is caught."""
    spec = CaseSpec(hidden=(6,), steps=5, samples=2, update_every=2)
    mm = _mutated(spec, "etp_network.c", old, new, tmp_path)
    assert mm is not None and mm.tensor and mm.op.startswith("train"), mm
