"""`edgetp data info | speakers | features | synth-kws` as a user runs them."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from edgetp.audio import frontend  # noqa: E402
from edgetp.cli import main  # noqa: E402

REAL = Path(__file__).parent / "data" / "real"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("tones")
    make_corpus(r, words=("yes", "no"))
    (r / "no" / "99999999_nohash_0.wav").write_text("broken")
    return r


def test_info(root, tmp_path, capsys):
    assert main(["data", "info", "--data-root", str(root), "--json", str(tmp_path / "i.json")]) == 0
    out = capsys.readouterr().out
    assert "utterances: 40  train: 32  validation: 4  testing: 4" in out
    assert "0a1b2c3d     20  (train 20, validation 0, testing 0)" in out
    assert "skipped: 1  not-wav: 1" in out and "no/99999999_nohash_0.wav: not a WAV file" in out
    s = json.loads((tmp_path / "i.json").read_text())
    assert s["utterances"] == 40 and s["words"] == {"no": 20, "yes": 20}
    assert [sp["id"] for sp in s["speakers"]][:1] == ["0a1b2c3d"] and len(s["speakers"]) == 5
    assert s["skipped"]["files"] == [
        {"path": "no/99999999_nohash_0.wav", "reason": "not a WAV file (no RIFF/WAVE header)"}
    ]


def test_speakers(root, capsys):
    assert main(["data", "speakers", "--data-root", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["0a1b2c3d", "20", "2", "10"]
    assert [ln.split()[0] for ln in lines[2:]] == ["11111111", "22222222"]
    assert main(["data", "speakers", "--data-root", str(root), "--split", "all", "--top", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_features(tmp_path, capsys):
    files = [REAL / "felix_yes.wav", REAL / "tflm_no_1000ms.wav"]
    out = tmp_path / "f.npz"
    assert main(["data", "features", *map(str, files), "--out", str(out)]) == 0
    with np.load(out) as z:
        assert z["features"].shape == (2, 101, 120) and z["features"].dtype == np.float32
        assert list(z["files"]) == [str(f) for f in files]
        for k, f in enumerate(files):
            y, _ = sf.read(f, dtype="int16")
            np.testing.assert_array_equal(z["features"][k], frontend.features(y))


@pytest.mark.parametrize("kind", ["fixed", "float"])
def test_features_with_a_models_log_gain(tmp_path, kind):
    """`--log-gain G` with kws-mcu's own gain (1000) writes what the model path computes before
    the model's divisors: fixed, the integer frontend's features of `InputNorm.for_model` (as
    `verify-c --wav` and firmware_gen feed them); float, what `model_norm(model).apply` divides."""
    from edgetp.audio import frontend_q as fq
    from edgetp.kws.protocol import model_norm
    from edgetp.model import load_model

    model = load_model("kws-mcu")
    gain = model.frontend["log_gain"]
    assert gain == 1000.0
    files = [REAL / "felix_yes.wav", REAL / "tflm_no_1000ms.wav"]
    out = tmp_path / "f.npz"
    assert (
        main(["data", "features", *map(str, files), "--frontend", kind, "--log-gain", f"{gain:g}", "--out", str(out)])
        == 0
    )
    with np.load(out) as z:
        got, conf = z["features"], json.loads(str(z["frontend"]))
    assert conf["log_gain"] == gain and got.shape == (2, 101, 120) and got.dtype == np.float32
    assert got[:, :, :40].max() > 4.0  # ln(1 + 1000) = 6.9, not the paper's <= ln 2
    inputs = model_norm(model)
    for k, f in enumerate(files):
        pcm = fq.load_pcm16(f)
        if kind == "fixed":
            from firmware_gen.qmodel import qmodel_for

            qm, _ = qmodel_for(model)
            want = fq.utterance_q(fq.pcm16(pcm), fq.InputNorm.for_model(model, qm)).feats / 2.0**fq.FEAT_F
            np.testing.assert_array_equal(got[k], want.astype(np.float32))
        else:
            np.testing.assert_array_equal(inputs.norm.apply(got[k][None]), inputs.apply(frontend.features(pcm)[None]))


@pytest.mark.parametrize("kind", ["fixed", "float"])
@pytest.mark.parametrize("gain", ["0", "-3", "0.5", "nan", "inf", "1e6"])
def test_features_bad_log_gain_is_one_line(tmp_path, capsys, kind, gain):
    """A log gain below 1, not finite, or (fixed) above the integer frontend's range: exit 2, one line."""
    out = tmp_path / "f.npz"
    code = main(
        ["data", "features", str(REAL / "felix_yes.wav"), "--frontend", kind, "--log-gain", gain, "--out", str(out)]
    )
    err = capsys.readouterr().err.strip()
    if kind == "float" and gain == "1e6":  # the float frontend takes any gain >= 1
        assert code == 0 and out.exists() and not err, err
        return
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "--log-gain" in err and "Traceback" not in err, err


def test_features_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "stereo.wav"
    sf.write(bad, np.zeros((100, 2), np.int16), 16000)
    assert main(["data", "features", str(REAL / "felix_yes.wav"), str(bad), "--out", str(tmp_path / "f.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"ERROR {bad}: 2 channels"), err
    assert not (tmp_path / "f.npz").exists()
    assert main(["data", "features", str(REAL / "felix_yes.wav"), "--out", str(tmp_path / "f.txt")]) == 2


def test_user_errors_are_one_line(tmp_path, monkeypatch, capsys):
    assert main(["data", "info", "--data-root", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["data", "synth-kws", str(tmp_path / "kws")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ERROR espeak-ng is not installed") and "apt-get install espeak-ng" in err


@pytest.mark.parametrize("kind", ["fixed", "float"])
def test_features_with_the_running_maximum(tmp_path, kind):
    """`--running-max D`: fixed, the integer frontend's running-maximum features of a model given D; float,
    recompress(features, G, D); the two agree within the frontend's tolerance. D = 0 is a one-line error."""
    from edgetp.audio import frontend_q as fq
    from edgetp.kws.data import recompress

    files = [REAL / "felix_yes.wav", REAL / "tflm_no_1000ms.wav"]
    out = tmp_path / "f.npz"
    assert (
        main(
            [
                "data",
                "features",
                *map(str, files),
                "--frontend",
                kind,
                "--log-gain",
                "1000",
                "--running-max",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with np.load(out) as z:
        got, conf = z["features"], json.loads(str(z["frontend"]))
    assert conf["running_max_decay"] == 2
    for k, f in enumerate(files):
        pcm = fq.pcm16(fq.load_pcm16(f))
        fixed = fq.features_q(pcm, log_gain=1000.0, running_max_decay=2)
        flt = recompress(frontend.features(pcm)[None], 1000.0, 2)[0]
        np.testing.assert_array_equal(got[k], fixed if kind == "fixed" else flt)
        assert not np.array_equal(
            got[k],
            fq.features_q(pcm, log_gain=1000.0)
            if kind == "fixed"
            else recompress(frontend.features(pcm)[None], 1000.0)[0],
        )
    assert main(["data", "features", str(files[0]), "--frontend", kind, "--running-max", "0", "--out", str(out)]) == 2
