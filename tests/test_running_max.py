"""The causal running maximum (issue 32): frame t of the features depends on frames <= t only (but for Δ / ΔΔ's
four frames of look-ahead), the input's gain cancels, silence stays zero, and the model records it."""

import numpy as np
import pytest

from edgetp.audio.frontend import DELTA1, features
from edgetp.errors import EdgetpError
from edgetp.kws.data import ModelInputs, check_running_max, recompress, running_max


def _wave(seed=0):
    rng = np.random.default_rng(seed)
    env = np.r_[np.full(5000, 0.01), np.ones(6000), np.full(5000, 0.01)]
    return rng.normal(size=16000) * env


def test_running_max_follows_the_rule():
    l2 = np.array([[[0.0, -3.0]], [[-1.0, -2.0]], [[-0.001, -9.0]], [[2.0, 1.0]]]).reshape(4, 2)
    m = running_max(l2, 128)[:, 0]  # falls half an octave per frame
    np.testing.assert_allclose(m, [0.0, -0.5, -0.001, 2.0])


def test_causal_log_mel_block():
    w = _wave()
    louder = w.copy()
    louder[160 * 64 :] *= 30.0  # a louder future: frames <= 61 do not see these samples
    a, b = recompress(features(w)[None], 1000.0, 2), recompress(features(louder)[None], 1000.0, 2)
    np.testing.assert_allclose(a[:, :62, :40], b[:, :62, :40], atol=1e-4)
    assert np.abs(a[:, 62:, :40] - b[:, 62:, :40]).max() > 0.1
    # the utterance's maximum is not causal: the same change moves the past
    assert (
        np.abs(
            recompress(features(w)[None], 1000.0)[:, :62, :40] - recompress(features(louder)[None], 1000.0)[:, :62, :40]
        ).max()
        > 0.1
    )


def test_gain_cancels_and_silence_is_zero():
    w = _wave(1)
    np.testing.assert_allclose(
        recompress(features(w)[None], 1000.0, 2), recompress(features(0.003 * w)[None], 1000.0, 2), atol=1e-4
    )
    assert not recompress(np.zeros((1, 101, 120), np.float32), 1000.0, 2).any()
    out = recompress(features(w)[None], 1000.0, 2)
    np.testing.assert_allclose(out[0, :, 40:80], (DELTA1.T @ out[0, :, :40].astype(np.float64)), atol=1e-4)


@pytest.mark.parametrize("bad", [0, 256, -1, 2.5, True, "2"])
def test_bad_decay_is_a_clear_error(bad):
    with pytest.raises(EdgetpError, match="running"):
        check_running_max(bad, "--running-max")


def test_model_inputs_apply_it():
    from edgetp.audio.frontend import NormConstants

    x = features(_wave())[None]
    norm = NormConstants(np.ones(120, np.float32))
    np.testing.assert_array_equal(ModelInputs(norm, 1000.0, 2).apply(x), recompress(x, 1000.0, 2))


def test_chunked_equals_whole(monkeypatch):
    import edgetp.kws.data as data

    x = np.log1p(np.random.default_rng(0).random((9, 101, 120))).astype(np.float32)
    whole = recompress(x, 1000.0, 2)
    monkeypatch.setattr(data, "RECOMPRESS_CHUNK", 4)
    np.testing.assert_array_equal(recompress(x, 1000.0, 2), whole)
    chunked = recompress(x, 1000.0)
    monkeypatch.setattr(data, "RECOMPRESS_CHUNK", 2048)
    np.testing.assert_array_equal(chunked, recompress(x, 1000.0))
