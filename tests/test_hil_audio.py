"""Raw audio on the device (host target): AUDIO_PCM / AUDIO_RUN run the integer frontend and
TP on the firmware; the session checks the digest and the CRC of the network's inputs."""

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy_fake"))
from deploy_helpers import device  # noqa: E402

from deploy import protocol as P  # noqa: E402
from deploy.hil import HilError, run_session  # noqa: E402
from deploy.host import DeviceError  # noqa: E402

REAL = sorted((Path(__file__).parent / "data" / "real").glob("*.wav"))


def _export(name, tmp_path_factory, running_max=None):
    require("cc")
    from deploy.reference import export_c
    from edgetp.audio import frontend_q as fq
    from edgetp.model import load_model
    from firmware_gen.qmodel import qmodel_for
    from edgetp.fixed.device import DeviceConfig

    model = load_model(name)
    if running_max is not None:
        model.frontend["running_max_decay"] = running_max
    qm, _ = qmodel_for(model)
    norm = fq.InputNorm.for_model(model, qm)
    # a frozen-hidden model (kws-mcu) learns its readout alone on the device
    cfg = DeviceConfig(train="readout", frozen_hidden=True) if qm.frozen_hidden else DeviceConfig()
    d = export_c(qm, tmp_path_factory.mktemp(name) / "model", cfg, frontend=norm)
    return d, qm, cfg, norm, model


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    return _export("kws-mcu", tmp_path_factory)


@pytest.fixture(scope="module")
def kws_gain(tmp_path_factory):
    """kws-mcu-64k: an honest-protocol model whose features are log1p(1000 S / max S)."""
    return _export("kws-mcu-64k", tmp_path_factory)


@pytest.fixture(scope="module")
def kws_rm(tmp_path_factory):
    """kws-mcu normalised by the causal running maximum (issue 32), decay 2."""
    return _export("kws-mcu", tmp_path_factory, running_max=2)


def _sets(qm, norm, model):
    from deploy.hil_audio import with_pcm
    from edgetp.audio import frontend_q as fq
    from firmware_gen.script_finetune import word_labels

    pcms = [fq.pcm16(fq.load_pcm16(p)) for p in REAL]
    xs = [with_pcm(fq.utterance_q(p, norm).x, p) for p in pcms]
    ys = word_labels(REAL, model.labels)
    return (xs, ys), (xs[:2], ys[:2])


def test_session_from_raw_audio_is_bit_exact(kws):
    from deploy.hil_audio import AudioSession
    from deploy.reference import IntReference

    d, qm, cfg, norm, model = kws
    sup, qry = _sets(qm, norm, model)
    with device(model_dir=d, timeout=2.0) as (_, dev):
        res = run_session(dev, IntReference(qm, cfg), sup, qry, epochs=2, seed=1, session_cls=AudioSession)
    assert res["samples"] == 2 * len(REAL) and res["mismatches"] == 0 and res["query_samples"] == 4
    fe = res["frontend"]
    assert fe["utterances"] == 2 * len(REAL) + 4 and fe["hop_mean"] > 0 and fe["finish_mean"] > 0
    assert res["counters"]["train_n"] == 2 * len(REAL) * 101


def test_session_from_raw_audio_with_a_log_gain_model_is_bit_exact(kws_gain):
    """The device's frontend applies the model's log gain 1000 (generated into its tables):
    digest and input CRC equal the integer reference's after every sample, 0 mismatches."""
    from deploy.hil_audio import AudioSession
    from deploy.reference import IntReference

    d, qm, cfg, norm, model = kws_gain
    assert norm.log_gain == 1000.0 and norm.l_frac == 12
    sup, qry = _sets(qm, norm, model)
    with device(model_dir=d, timeout=2.0) as (_, dev):
        res = run_session(dev, IntReference(qm, cfg), sup, qry, epochs=1, seed=1, session_cls=AudioSession)
    assert res["samples"] == len(REAL) and res["mismatches"] == 0 and res["query_samples"] == 4
    assert res["frontend"]["utterances"] == len(REAL) + 4


def test_session_from_raw_audio_with_the_running_maximum_is_bit_exact(kws_rm):
    """The device's frontend normalises by the running maximum (D generated into its header): 0 mismatches;
    a reference with the utterance's maximum instead differs, and the input CRC check names the frontend."""
    from dataclasses import replace

    from deploy.hil_audio import AudioSession
    from deploy.reference import IntReference

    d, qm, cfg, norm, model = kws_rm
    assert norm.running_max_decay == 2
    sup, qry = _sets(qm, norm, model)
    with device(model_dir=d, timeout=2.0) as (_, dev):
        res = run_session(dev, IntReference(qm, cfg), sup, qry, epochs=1, seed=1, session_cls=AudioSession)
    assert res["samples"] == len(REAL) and res["mismatches"] == 0 and res["query_samples"] == 4
    (xs, ys), _ = _sets(qm, replace(norm, running_max_decay=None), model)
    with device(model_dir=d, timeout=2.0) as (_, dev):
        with pytest.raises(HilError, match="frontend"):
            run_session(dev, IntReference(qm, cfg), (xs[:1], ys[:1]), ([], []), epochs=1, session_cls=AudioSession)


def test_a_log_gain_model_fed_the_paper_features_is_caught(kws_gain):
    """Test the tester: a reference that ignores the model's gain (g = 1 inputs through the same
    divisors) differs from what the device's frontend computes -> the input CRC check fails."""
    from dataclasses import replace

    from deploy.hil_audio import AudioSession
    from deploy.reference import IntReference

    d, qm, cfg, norm, model = kws_gain
    (xs, ys), _ = _sets(qm, replace(norm, log_gain=1.0), model)
    with device(model_dir=d, timeout=2.0) as (_, dev):
        with pytest.raises(HilError, match="frontend"):
            run_session(dev, IntReference(qm, cfg), (xs[:1], ys[:1]), ([], []), epochs=1, session_cls=AudioSession)


def test_a_frontend_difference_is_named(kws):
    """Test the tester: the reference fed one input value off by one LSB -> the CRC check fails."""
    from deploy.hil_audio import AudioSession, with_pcm
    from deploy.reference import IntReference

    d, qm, cfg, norm, model = kws
    (xs, ys), _ = _sets(qm, norm, model)
    bad = np.array(xs[0])
    bad[40, 7] += 1
    xs = [with_pcm(bad, xs[0].pcm)] + xs[1:]
    with device(model_dir=d, timeout=2.0) as (_, dev):
        with pytest.raises(HilError, match="frontend"):
            run_session(dev, IntReference(qm, cfg), (xs, ys), ([], []), epochs=1, session_cls=AudioSession)


def test_audio_commands_check_their_arguments(kws):
    from deploy.hil_audio import send_audio

    d, *_ = kws
    with device(model_dir=d, timeout=2.0) as (_, dev):
        dev.hello()
        with pytest.raises(DeviceError) as e:  # no utterance started
            dev.request(P.Cmd.AUDIO_RUN, P.pack("REQ_AUDIO_RUN", label=0))
        assert e.value.status == P.Status.BAD_ARG
        with pytest.raises(DeviceError) as e:  # continuing an utterance never started
            dev.request(P.Cmd.AUDIO_PCM, P.pack("REQ_AUDIO_PCM", start=0) + b"\0\0")
        assert e.value.status == P.Status.BAD_ARG
        with pytest.raises(DeviceError) as e:  # more than 16000 samples
            send_audio(dev, np.zeros(16001, np.int16), None)
        assert e.value.status == P.Status.BAD_ARG
        with pytest.raises(DeviceError) as e:  # label out of range
            dev.request(P.Cmd.AUDIO_PCM, P.pack("REQ_AUDIO_PCM", start=1))
            dev.request(P.Cmd.AUDIO_RUN, P.pack("REQ_AUDIO_RUN", label=999))
        assert e.value.status == P.Status.BAD_ARG
        r = send_audio(dev, np.zeros(100, np.int16), None)  # short input: zero-padded by the device
        assert r["steps"] == 101


def test_firmware_without_the_frontend_answers_unsupported():
    require("cc")
    with device() as (_, dev):  # the test-double model has no frontend
        dev.hello()
        with pytest.raises(DeviceError) as e:
            dev.request(P.Cmd.AUDIO_PCM, P.pack("REQ_AUDIO_PCM", start=1))
        assert e.value.status == P.Status.UNSUPPORTED


@pytest.mark.parametrize("target,kind", [("host", "paper"), ("host", "log_gain"), ("qemu", "log_gain")])
def test_edgetp_hil_audio_end_to_end(tone_models, tmp_path, target, kind):
    import json

    from conftest import run_cli

    require("cc")
    if target == "qemu":
        require("arm-none-eabi-gcc", "qemu-system-arm")
    root, models = tone_models
    model = models[kind]
    out = tmp_path / "hil.json"
    r = run_cli(
        "hil",
        "--target",
        target,
        "--model",
        model,
        "--data-root",
        root,
        "--shots",
        "1",
        "--audio",
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
    assert res["samples"] == 2 and res["mismatches"] == 0 and res["audio"] is True
    assert res["frontend"]["utterances"] == 4 and "audio frontend on the device" in r.stdout
    fe = res["frontend"]
    assert fe["hop_mean"] <= fe["hop_p999"] <= fe["per_hop_max"]
    assert 0 < fe["network_infer_mean"] <= fe["network_infer_max"] and 0 < fe["network_train_mean"]
    assert fe["network_step_max"] == max(fe["network_train_max"], fe["network_infer_max"])
    # a slot holds a step and its frame's input, measured together: never below the largest step
    assert fe["slot_max"] >= fe["network_step_max"]
    # the learning steps are some of the training steps (every k-th): counted and summed apart on the device
    assert 0 < fe["network_learn_mean"] and fe["network_learn_max"] <= fe["network_train_max"]
    assert fe["frame_max"] == fe["hop_max"] + fe["slot_max"] and "any 10 ms frame" in r.stdout
    if target == "qemu":  # instructions; the host counts nanoseconds, which load can reorder
        assert fe["network_train_max"] >= fe["network_infer_max"]  # learning costs more
    assert "frontend hop (p99.9" in r.stdout and "+ network step, mean / max" in r.stdout
    if target == "qemu":
        assert res["frontend"]["counter"] == "instructions" and "frontend budget" in r.stdout


def test_frontend_profile_prints_its_figures():
    """`python -m deploy.fe_profile` runs on the emulated Cortex-M4 (figures printed, not asserted)."""
    import subprocess

    require("arm-none-eabi-gcc", "qemu-system-arm")
    r = subprocess.run(
        [sys.executable, "-m", "deploy.fe_profile", "--utterances", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "10 ms hop" in r.stdout and "FFT" in r.stdout and "end of the utterance" in r.stdout


def test_per_utterance_normalisation_is_refused_in_one_line(tone_models, tmp_path):
    """What the integer frontend still cannot do (each utterance divided by its own std) is a
    one-line error, exit 2, before anything is built."""
    from conftest import run_cli

    root, models = tone_models
    r = run_cli(
        "hil",
        "--target",
        "host",
        "--model",
        models["per_utterance"],
        "--data-root",
        root,
        "--shots",
        "1",
        "--audio",
        "--set",
        "support_limit=1",
        "--set",
        "query_limit=1",
        "--set",
        "epochs=1",
        "--quiet",
        env={"EDGETP_HOME": str(tmp_path / "home")},
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stdout + r.stderr
    assert "own std" in r.stderr and "Traceback" not in r.stderr


def test_frontend_costs_scale_every_figure_once():
    """A session's frontend figures in instructions: every device count times the counter's resolution once (QEMU
    counts 5 instructions a tick), "any frame" the largest hop plus the largest slot, the learning steps apart."""
    from types import SimpleNamespace

    from deploy.hil_audio import AudioSession

    s = object.__new__(AudioSession)  # the figures only: no device, no reference
    s.dev = SimpleNamespace(info=SimpleNamespace(counter_res=5, counter_name="instructions"))
    s.fe = {
        "hop": [100, 120],
        "finish": [300],
        "frames": [10.0],
        "utterances": 1,
        "net_mean": [50.0],
        "net_max": [90],
        "slot_max": [95],
        "net_train": [(5000, 101, 90)],
        "net_learn": [(3000, 51, 90)],
    }
    fe = s.frontend_costs()
    assert fe["hop_max"] == 600 and fe["slot_max"] == 475 and fe["frame_max"] == 600 + 475
    assert fe["network_learn_mean"] == pytest.approx(3000 / 51 * 5) and fe["network_learn_max"] == 450
    assert fe["network_train_mean"] == pytest.approx(5000 / 101 * 5) and "network_infer_mean" not in fe
