"""`hil --stream` (issue 32): raw PCM of a stream over STREAM, the device's frontend, network and detector against
the integer reference StreamQ on every frame, on the host port and on QEMU (mps2-an386); a planted C bug and a
corrupted reference are caught; bad input is a clear error."""

from pathlib import Path

import numpy as np
import pytest
from detect_models import LABELS, random_model, tone_model, tone_stream

from deploy.hil_stream import run_stream, summary
from edgetp.audio.pcm import pcm16_samples
from edgetp.errors import EdgetpError
from edgetp.fixed.qconfig import from_float
from edgetp.stream import detector as D
from edgetp.stream.reference_q import StreamQ, stream_norm_q


def setup(model, threshold=0.5):
    """(qm, stream input stage, detector) of ``model`` as the device runs it."""
    fixed = (model.recipe or {}).get("fixed", {})
    qm = from_float(model.cfg, model.params, fixed.get("fx", 10), 16, labels=LABELS)
    norm = stream_norm_q(model, qm)
    detq = D.DetectorSpec.make(LABELS, threshold, window=40, refractory=20).quantized(
        int(qm.fw[qm.readout_name]), qm.weights[qm.readout_name]
    )
    return qm, norm, detq


def export(tmp: Path, qm, norm, detq, plant=None) -> Path:
    from firmware_gen.generate import render

    render(qm, frontend=norm, detector=detq).write(tmp)
    if plant is not None:
        name, old, new = plant
        text = (tmp / name).read_text()
        assert text.count(old) == 1, old
        (tmp / name).write_text(text.replace(old, new))
    return tmp


def shipped_style_tones():
    """The tone model normalised by the utterance's maximum, as the shipped models are: it streams with
    STREAM_DECAY / STREAM_AHEAD; a stream of its words' tones under faint noise."""
    m = tone_model()
    m.frontend = {"log_gain": 1000.0}
    wave, events = tone_stream(["yes", "no", "up", "stop", "go", "left"], seed=1)
    pcm = pcm16_samples(wave)
    return m, pcm[: pcm.size // 160 * 160], events


def _run(tmp, model, pcm, plant=None, target="host"):
    from deploy.bitexact import build_firmware, serve
    from deploy.build import build

    qm, norm, detq = setup(model)
    cdir = export(tmp, qm, norm, detq, plant)
    image = build_firmware(cdir) if target == "host" else build(cdir, target, out_root=tmp / "fw")
    with serve(image) as dev:
        res = run_stream(dev, StreamQ(qm, norm, detq), pcm)
        counter_res = dev.info.counter_res
    return res, summary(res, counter_res, LABELS)


@pytest.fixture(scope="module")
def tone_fw(tmp_path_factory):
    """(image, qm, norm, detq) of the shipped-style tone model's stream firmware on the host port."""
    from conftest import require

    from deploy.bitexact import build_firmware

    require("cc")
    m, _pcm, _ = shipped_style_tones()
    qm, norm, detq = setup(m)
    return build_firmware(export(tmp_path_factory.mktemp("tone"), qm, norm, detq)), qm, norm, detq


def _serve(fw, pcm):
    from deploy.bitexact import serve

    image, qm, norm, detq = fw
    with serve(image) as dev:
        res = run_stream(dev, StreamQ(qm, norm, detq), pcm)
        counter_res = dev.info.counter_res
    return res, summary(res, counter_res, LABELS)


@pytest.mark.needs("cc")
def test_every_frame_equals_the_reference_on_the_host(tone_fw):
    m, pcm, events = shipped_style_tones()
    res, s = _serve(tone_fw, pcm)
    assert res.frames == pcm.size // 160 + 1 and res.mismatches == 0, res.first_mismatch
    words = [d["word"] for d in s["detections"]]
    assert s["reports_equal_reference"] and set(words) >= {w for w, _a, _b in events} - {"left"}, words
    assert s["cost_per_hop"]["max"] >= s["cost_per_hop"]["mean"] > 0


@pytest.mark.needs("cc")
def test_a_random_model_on_noise_and_silence(tmp_path):
    rng = np.random.default_rng(2)
    env = np.repeat(rng.choice([0.0, 30.0, 3000.0, 30000.0], 25), 1600)
    pcm = np.clip(rng.normal(size=env.size) * env, -32768, 32767).astype(np.int16)
    res, _s = _run(tmp_path, random_model(), pcm)  # its own running maximum: A = 0
    assert res.frames == 251 and res.mismatches == 0, res.first_mismatch


@pytest.mark.needs("cc")
def test_a_planted_c_bug_is_caught(tmp_path):
    """The maximum an octave high at one frame: the frontend's inputs differ from there on."""
    m, pcm, _ = shipped_style_tones()
    plant = (
        "etp_fe_stream.c",
        "fs->m = etp_fe_running_max(row, fs->m);",
        "fs->m = etp_fe_running_max(row, fs->m) + 256 * (fs->frames == 30);",
    )
    res, _s = _run(tmp_path, m, pcm[: 160 * 400], plant)
    assert res.mismatches > 0 and "frontend" in res.first_mismatch, res.first_mismatch


@pytest.mark.needs("cc")
def test_a_corrupted_reference_is_caught(tone_fw, monkeypatch):
    from edgetp.stream import reference_q

    real = reference_q.StreamQ._frames

    def corrupt(self, feats):
        out = real(self, feats)
        return [reference_q.FrameQ(f.x, f.d + (1 if f.det.t == 77 else 0), f.report, f.det) for f in out]

    monkeypatch.setattr(reference_q.StreamQ, "_frames", corrupt)
    m, pcm, _ = shipped_style_tones()
    res, _s = _serve(tone_fw, pcm[: 160 * 300])
    assert res.mismatches == 1 and res.first_mismatch.startswith("frame 76: the readout increments")


@pytest.mark.needs("qemu-system-arm", "arm-none-eabi-gcc")
def test_every_frame_equals_the_reference_on_qemu(tmp_path):
    m, pcm, _ = shipped_style_tones()
    pcm = pcm[: 160 * 250]
    res, s = _run(tmp_path, m, pcm, target="qemu")
    assert res.frames == 251 and res.mismatches == 0, res.first_mismatch
    assert s["network_step"]["mean"] > 1000  # instructions (QEMU -icount), not nanoseconds


@pytest.mark.needs("cc")
def test_bad_stream_input(tone_fw):
    from deploy.bitexact import serve
    from deploy.host import DeviceError

    image, qm, norm, detq = tone_fw
    with serve(image) as dev:
        with pytest.raises(EdgetpError, match="at most 127"):
            dev.stream(np.zeros(200, np.int16), start=True)
        with pytest.raises(DeviceError, match="BAD_ARG"):
            dev.stream(np.zeros(100, np.int16))  # no stream started
        with pytest.raises(EdgetpError, match="whole hops"):
            run_stream(dev, StreamQ(qm, norm, detq), np.zeros(1000, np.int16))
        dev.stream(np.zeros(100, np.int16), start=True)
        with pytest.raises(DeviceError, match="BAD_ARG"):
            dev.stream(np.zeros(10, np.int16), end=True)  # fewer than 8 hops, a partial hop


@pytest.mark.needs("cc")
def test_cli_hil_stream(tmp_path, cli):
    """`edgetp hil --stream WAV --target host`: the figures printed and in the JSON, exit 0 with 0 mismatches."""
    import json

    from edgetp.audio.wav import write_wav16
    from edgetp.model import save_model

    m, pcm, _ = shipped_style_tones()
    m.recipe = {**m.recipe, "detect": {"threshold": 0.5}}
    save_model(m, tmp_path / "tone.npz")
    write_wav16(tmp_path / "s.wav", pcm[: 160 * 500].astype(np.float32) / 32768)
    r = cli(
        "hil",
        "--target",
        "host",
        "--model",
        tmp_path / "tone.npz",
        "--stream",
        tmp_path / "s.wav",
        "--json",
        tmp_path / "s.json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "s.json").read_text())
    assert out["frames"] == 501 and out["mismatches"] == 0 and out["frontend"]["ahead"] == 50
    assert {d["word"] for d in out["detections"]} >= {"yes", "no"}
    assert "501 frames, 0 mismatches" in r.stdout and "per 10 ms hop" in r.stdout
    r = cli("hil", "--target", "host", "--model", tmp_path / "tone.npz", "--stream", tmp_path / "none.wav")
    assert r.returncode != 0 and "Traceback" not in r.stderr
