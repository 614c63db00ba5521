"""`finetune --kws --fixed --frontend fixed`: the integer frontend the device runs on raw audio feeds
the integer rule. Its features are cached apart from the float frontend's (the cache key names the
frontend and its log gain), and the inputs it gives the model are those the device computes from
the same PCM (deploy/hil_audio.py's), bit for bit."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from edgetp.audio import frontend_q as fq  # noqa: E402
from edgetp.data import cache  # noqa: E402
from edgetp.data.gsc import load_corpus  # noqa: E402


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "c"
    make_corpus(root, words=("yes", "no"), speakers={"0a1b2c3d": ("train", 2), "11111111": ("testing", 1)})
    return load_corpus(root, labels="12")


def test_cache_keeps_each_frontend_and_log_gain_apart(corpus, tmp_path):
    rows = corpus.select(split="train")
    fc = tmp_path / "fc"
    flt = np.asarray(cache.cached_features(corpus, rows, fc))
    g1 = cache.cached_features(corpus, rows, fc, fe=cache.Frontend("fixed", 1.0))
    g1000 = cache.cached_features(corpus, rows, fc, fe=cache.Frontend("fixed", 1000.0))
    assert flt.dtype == np.float32 and g1.dtype == g1000.dtype == np.int32
    for i, r in enumerate(rows):  # each file holds its own frontend's rows
        pcm = fq.pcm16(fq.pcm16_samples(corpus.load(int(r))))
        assert np.array_equal(g1[i], fq.utterance_q(pcm, log_gain=1.0).feats)
        assert np.array_equal(g1000[i], fq.utterance_q(pcm, log_gain=1000.0).feats)
    assert not np.array_equal(g1, g1000)
    rm = cache.cached_features(corpus, rows, fc, fe=cache.Frontend("fixed", 1000.0, 2))  # the running maximum
    pcm = fq.pcm16(fq.pcm16_samples(corpus.load(int(rows[0]))))
    assert np.array_equal(rm[0], fq.utterance_q(pcm, log_gain=1000.0, running_max_decay=2).feats)
    assert not np.array_equal(rm, g1000)
    dirs = {
        cache._corpus_dir(corpus, fc, fe)
        for fe in (
            cache.FLOAT,
            cache.Frontend("fixed", 1.0),
            cache.Frontend("fixed", 1000.0),
            cache.Frontend("fixed", 1000.0, 2),
        )
    }
    assert len(dirs) == 4
    assert np.array_equal(np.asarray(cache.cached_features(corpus, rows, fc)), flt)  # the float rows, still


def test_unknown_frontend_is_a_clear_error():
    from edgetp.errors import EdgetpError

    with pytest.raises(EdgetpError, match="frontend must be one of"):
        cache.Frontend("dsp")


def test_int_inputs_are_the_devices_inputs(corpus, tmp_path):
    """IntInputs on cached features == utterance_q(pcm, InputNorm).x, what hil --audio checks the C
    frontend against (its CRC after every utterance)."""
    from edgetp.kws.data import IntInputs, labelled

    norm = fq.InputNorm.from_scale(np.linspace(0.5, 3.0, 120), fx=11, log_gain=1000.0)
    rows = corpus.select(split="train")
    x, y = labelled(corpus, rows, IntInputs(norm), tmp_path / "fc")
    assert x.dtype == np.int16 and x.shape == (len(rows), 101, 120) and len(y) == len(rows)
    for i, r in enumerate(rows):
        assert np.array_equal(x[i], fq.model_input_q(corpus.load(int(r)), norm))


@pytest.mark.needs("cc")
def test_finetune_fixed_on_the_integer_frontend(tone_models, tmp_path):
    """The CLI end to end: --frontend fixed is recorded and reads its own cached features (a second
    cache folder beside the float frontend's); without --fixed it is refused in one line."""
    from conftest import TONE_HELD, run_cli

    root, models = tone_models
    out = {}
    for fe in ("float", "fixed"):
        out[fe] = tmp_path / f"{fe}.json"
        r = run_cli(
            "finetune",
            "--kws",
            "--fixed",
            "--set",
            f"frontend={fe}",
            "--model",
            models["log_gain"],
            "--data-root",
            root,
            "--speaker",
            TONE_HELD,
            "--shots",
            "1",
            "--seeds",
            "1",
            "--set",
            "epochs=1",
            "--set",
            "baseline=false",
            "--quiet",
            "--json",
            out[fe],
            env={"EDGETP_HOME": str(tmp_path / "home")},
        )
        assert r.returncode == 0, r.stderr
        n_dirs = len([d for d in (tmp_path / "home" / "features").iterdir() if d.is_dir()])
        assert n_dirs == (1 if fe == "float" else 2), n_dirs
    a, b = (json.loads(out[fe].read_text()) for fe in ("float", "fixed"))
    assert (a["frontend"], b["frontend"]) == ("float", "fixed") and b["fixed"] is True
    assert "integer frontend on raw audio" in r.stdout
    r = run_cli(
        "finetune",
        "--kws",
        "--set",
        "frontend=fixed",
        "--model",
        models["log_gain"],
        "--data-root",
        root,
        env={"EDGETP_HOME": str(tmp_path / "home")},
    )
    assert r.returncode == 2 and "frontend fixed needs --fixed" in r.stderr and "Traceback" not in r.stderr


def test_int_inputs_of_a_running_max_model_read_its_features():
    """A model with the causal running maximum reads the cache's running-maximum rows, not the utterance maximum's."""
    from edgetp.kws.data import IntInputs

    norm = fq.InputNorm.from_scale(None, 12, 16, 1000.0, 2)
    assert IntInputs(norm).source == cache.Frontend("fixed", 1000.0, 2)
    assert IntInputs(fq.InputNorm.from_scale(None, 12, 16, 1000.0)).source == cache.Frontend("fixed", 1000.0)
