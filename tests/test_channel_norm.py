"""The per-channel normalisation of the float frontend (issue 26, ``--channel-norm``): the rule on a hand example,
a microphone's colouring mostly removed, silence kept, alpha 0 the old features, the model records it and reads
it back, and bad values and the integer frontend (no twin yet) are clear errors."""

from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from edgetp.audio.frontend import features
from edgetp.errors import EdgetpError
from edgetp.kws.data import CN_ACTIVE, CN_FLOOR, check_channel_norm, normalise_channels, recompress

REAL = Path(__file__).parent / "data" / "real"


def _speech():
    import soundfile as sf

    w, sr = sf.read(REAL / "felix_yes.wav")
    return w, sr


def test_the_rule_by_hand():
    ninf = -np.inf
    # 3 frames x 2 bands; frame 2 is silent (-inf) and inactive; band 1 floors at -CN_FLOOR in frame 1
    l2 = np.array([[0.0, -2.0], [-1.0, -30.0], [ninf, ninf]])
    assert -30.0 < -CN_FLOOR and -1.0 >= -CN_ACTIVE
    mu = np.array([(0.0 - 1.0) / 2, (-2.0 - CN_FLOOR) / 2])
    want = l2 - 0.5 * (mu - mu.mean())
    np.testing.assert_allclose(normalise_channels(l2, 0.5), want)
    assert np.isneginf(normalise_channels(l2, 1.0)[2]).all()


def test_a_microphones_colouring_is_mostly_removed():
    w, sr = _speech()
    # a bright microphone: 1 - 0.9 z^-1 (-20 dB at 0 Hz, +5.5 dB at 4 kHz)
    x, y = features(w, sr)[None], features(scipy.signal.lfilter([1.0, -0.9], [1.0], w), sr)[None]

    def gap(alpha):
        fx, fy = recompress(x, 1000.0, channel_norm=alpha), recompress(y, 1000.0, channel_norm=alpha)
        return float(np.abs(fx - fy)[..., :40].mean())

    assert gap(1.0) < 0.5 * gap(0.0), (gap(0.0), gap(1.0))  # measured 0.206 -> 0.067


def test_off_is_the_old_features_and_silence_stays_zero():
    x = features(_speech()[0])[None]
    np.testing.assert_array_equal(recompress(x, 1000.0, channel_norm=0.0), recompress(x, 1000.0))
    assert not recompress(np.zeros((2, 101, 120), np.float32), 1000.0, channel_norm=1.0).any()
    out = recompress(x, 1000.0, channel_norm=1.0)
    assert np.isfinite(out).all() and out[..., :40].max() == pytest.approx(np.log1p(1000.0), rel=1e-5)


def test_chunked_equals_whole(monkeypatch):
    import edgetp.kws.data as data

    x = np.log1p(np.random.default_rng(0).random((9, 101, 120))).astype(np.float32)
    whole = recompress(x, 1000.0, channel_norm=0.7)
    monkeypatch.setattr(data, "RECOMPRESS_CHUNK", 4)
    np.testing.assert_array_equal(recompress(x, 1000.0, channel_norm=0.7), whole)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "x", None])
def test_bad_alpha_is_a_clear_error(bad):
    with pytest.raises(EdgetpError, match="channel"):
        check_channel_norm(bad, "--channel-norm")


def test_not_with_a_running_maximum():
    with pytest.raises(EdgetpError, match="whole-utterance"):
        recompress(np.zeros((1, 101, 120), np.float32), 1000.0, 2, channel_norm=1.0)


def test_the_model_records_it_and_the_integer_frontend_refuses_it(tmp_path):
    from edgetp.audio.frontend_q import InputNorm
    from edgetp.kws.protocol import model_norm
    from edgetp.model import Model, load_model, save_model
    from edgetp.tp.config import NetConfig, init_params

    cfg = NetConfig(120, (8,), 3, recurrent=True)
    m = Model(
        cfg,
        init_params(cfg, 0),
        ["a", "b", "c"],
        frontend={"log_gain": 1000.0, "channel_norm": 0.5},
        norm_scale=np.ones(120, np.float32),
    )
    save_model(m, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    x = features(_speech()[0])[None]
    np.testing.assert_array_equal(model_norm(back).apply(x), recompress(x, 1000.0, channel_norm=0.5))
    got = model_norm(back)
    assert (got.log_gain, got.running_max_decay, got.running_max_ahead, got.channel_norm) == (1000.0, None, 0, 0.5)
    with pytest.raises(EdgetpError, match="channel_norm"):
        InputNorm.for_model(back, type("QM", (), {"fx": 12, "xbits": 16})())
    back.frontend["channel_norm"] = 3
    with pytest.raises(EdgetpError, match="channel_norm"):
        model_norm(back)


def test_pretrain_refuses_a_bad_value(capsys):
    from edgetp.cli import main

    assert main(["pretrain", "--kws", "--channel-norm", "2", "--out", "x.npz"]) != 0
    assert "--channel-norm: channel_norm must be <= 1" in capsys.readouterr().err
