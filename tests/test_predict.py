"""`edgetp predict`: top words with scores for real WAVs, float and integer paths, bad input."""

import json
from pathlib import Path

from conftest import ROOT

import numpy as np
import pytest

REAL = Path(__file__).resolve().parent / "data" / "real"
WAVS = sorted(REAL.glob("*.wav"))


def _shipped(name):
    from edgetp.model import MODELS_DIR

    if not (MODELS_DIR / name / "model.npz").is_file():
        pytest.fail(f"shipped model {name} missing")
    return name


@pytest.mark.parametrize("fixed", [False, True])
def test_predict_real_wavs_matches_the_library(cli, tmp_path, fixed):
    assert len(WAVS) == 3
    out = tmp_path / "p.json"
    r = cli("predict", "--model", _shipped("kws-mcu"), *(["--fixed"] if fixed else []), *WAVS, "--json", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["fixed"] is fixed and d["errors"] == 0 and len(d["predictions"]) == len(WAVS)
    from edgetp.audio.frontend import features
    from edgetp.audio.wav import load_16k
    from edgetp.kws.protocol import model_norm
    from edgetp.model import load_model

    m = load_model("kws-mcu")
    xs = model_norm(m).apply(np.stack([features(load_16k(str(w))) for w in WAVS]))
    if fixed:
        from edgetp.fixed.finetune import to_int_inputs
        from edgetp.fixed.network_q import predict_q
        from firmware_gen.qmodel import qmodel_for

        qm = qmodel_for(m)[0]
        want = predict_q(qm, to_int_inputs(qm, xs))
    else:
        from edgetp.tp import predict

        want = predict(m.params, xs, m.cfg)
    for w, pred, k in zip(WAVS, d["predictions"], want):
        assert pred["file"] == str(w.relative_to(ROOT))  # as the artefact may record it (edgetp.paths.portable)
        top = pred["top"]
        scores = [t["score"] for t in top]
        assert len(top) == 3 and len({t["word"] for t in top}) == 3
        assert all(np.isfinite(scores)) and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
        assert top[0]["word"] == m.labels[k]  # the top word is the library's argmax
        assert f"{w}: {top[0]['word']} " in r.stdout


def test_predict_bad_wavs_get_one_line_errors(cli, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    r = cli("predict", WAVS[0], bad, empty, tmp_path / "missing.wav", "--json", tmp_path / "o.json")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 3 and all(ln.startswith("ERROR ") for ln in lines), r.stderr
    assert "Traceback" not in r.stderr
    d = json.loads((tmp_path / "o.json").read_text())
    assert d["errors"] == 3 and [p["file"] for p in d["predictions"]] == [str(WAVS[0].relative_to(ROOT))]


def test_predict_bad_model_and_top(cli, tmp_path):
    r = cli("predict", "--model", "no-such-model", WAVS[0])
    assert r.returncode == 2 and "no model named" in r.stderr and "Traceback" not in r.stderr
    r = cli("predict", "--top", "0", WAVS[0])
    assert r.returncode == 2 and "--top" in r.stderr


def test_fixed_readout_in_real_units():
    """--fixed's scores read the integer readout in the readout weights' format: on kws-paper (every tensor 16-bit on
    the integer path) its readout tracks the float one's scale (dividing by the membranes' 2^12 halved it)."""
    from edgetp.audio.frontend import features
    from edgetp.audio.wav import load_16k
    from edgetp.cli.predict import readout
    from edgetp.kws.protocol import model_norm
    from edgetp.model import load_model

    m = load_model(_shipped("kws-paper"))
    xs = model_norm(m).apply(np.stack([features(load_16k(str(w))) for w in WAVS]))
    a, b = readout(m, xs, False)[0], readout(m, xs, True)[0]
    ratio = np.median(b / a)
    assert 0.8 < ratio < 1.25, ratio
