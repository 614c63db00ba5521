"""The float frontend equals the paper's librosa pipeline within 1e-5; normalisation."""

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from edgetp.audio import frontend as fe

REAL = sorted((Path(__file__).parent / "data" / "real").glob("*.wav"))
TOL = 1e-5


def librosa_pipeline(wave) -> np.ndarray:
    """tp-algorithm.md section 6, written with librosa as the paper's code does."""
    x = np.asarray(wave, dtype=np.float64)
    x = x / np.max(np.abs(x))
    n = len(x)
    if n < 16000:
        x = np.pad(x, ((16000 - n) // 2, 16000 - n - (16000 - n) // 2))
    else:
        x = x[(n - 16000) // 2 :][:16000]
    S = librosa.feature.melspectrogram(
        y=x, sr=16000, n_fft=480, hop_length=160, n_mels=40, fmin=20, fmax=4000, power=2.0
    )
    L = np.log1p(S / S.max())
    d1 = librosa.feature.delta(L, width=9, order=1)
    d2 = librosa.feature.delta(L, width=9, order=2)
    return np.concatenate([L, d1, d2], axis=0).T


def _signals():
    rng = np.random.default_rng(0)
    t = np.arange(12000) / 16000
    chirp = np.sin(2 * np.pi * (200 + 1500 * t) * t) * np.hanning(len(t))
    yield "chirp-int16", np.round(chirp * 20000).astype(np.int16)
    yield "noise-short", rng.standard_normal(3001)
    yield "noise-1s", rng.standard_normal(16000) * np.linspace(0, 1, 16000)
    yield "too-long", rng.standard_normal(17333)
    burst = np.zeros(16000)
    burst[7000:7400] = rng.standard_normal(400)
    yield "burst", burst


@pytest.mark.parametrize("name,wave", list(_signals()), ids=[n for n, _ in _signals()])
def test_matches_librosa(name, wave):
    got = fe.features(wave)
    assert got.shape == (101, 120) and got.dtype == np.float32
    ref = librosa_pipeline(wave / 32768.0 if wave.dtype == np.int16 else wave)
    assert np.max(np.abs(got - ref)) < TOL


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_matches_librosa_on_real_speech(path):
    y, sr = sf.read(path, dtype="int16")
    assert sr == 16000
    assert np.max(np.abs(fe.features(y) - librosa_pipeline(y / 32768.0))) < TOL


def test_real_speech_present():
    assert len(REAL) >= 3


def test_layout_and_scaling():
    rng = np.random.default_rng(1)
    y = np.round(rng.standard_normal(9000) * 3000).astype(np.int16)
    f = fe.features(y)
    np.testing.assert_allclose(fe.features(y.astype(np.float64) / 32768.0), f, atol=1e-6)
    np.testing.assert_allclose(fe.features(y * 0.5), f, atol=1e-6)  # peak normalised
    assert f[:, :40].min() >= 0 and f[:, :40].max() == pytest.approx(np.log(2), abs=1e-6)
    assert fe.N_FRAMES == 101 and fe.N_FEATURES == 120 and fe.MEL.shape == (40, 241)
    batch = fe.features_batch([y, y[:5000], rng.standard_normal(20000)], chunk=2)
    assert batch.shape == (3, 101, 120)
    np.testing.assert_array_equal(batch[1], fe.features(y[:5000]))


def test_silence_and_empty_give_zeros():
    for wave in (np.zeros(8000, np.int16), np.zeros(0)):
        f = fe.features(wave)
        assert np.all(f == 0)


def test_other_sample_rate_is_resampled():
    t = np.arange(8000) / 8000
    y8 = np.sin(2 * np.pi * 440 * t) * np.hanning(8000)
    from edgetp.audio.wav import resample

    np.testing.assert_allclose(fe.features(y8, sr=8000), fe.features(resample(y8, 8000)), atol=1e-6)


def test_normalize_paper_two_stages():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 101, 120)).astype(np.float32) * rng.uniform(0.1, 3, 120)
    x[1, :, 7] = 0.0  # a zero-std feature stays as is
    s1 = x / np.where(x.std(axis=1, keepdims=True) == 0, 1, x.std(axis=1, keepdims=True))
    expected = s1 / s1.std(axis=(0, 1), keepdims=True)
    got = fe.normalize_paper(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert np.all(got[1, :, 7] == 0)


def test_norm_constants_fixed_and_stored(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 101, 120)).astype(np.float32) * rng.uniform(0.1, 3, 120)
    paper = fe.NormConstants.fit(x, per_utterance=True)
    np.testing.assert_allclose(paper.apply(x), fe.normalize_paper(x), rtol=1e-5)
    fixed = fe.NormConstants.fit(x)
    assert fixed.scale.shape == (120,) and fixed.scale.dtype == np.float32
    np.testing.assert_allclose(fixed.apply(x).reshape(-1, 120).std(axis=0), 1.0, rtol=1e-4)
    fixed.save(tmp_path / "n.npz")
    back = fe.NormConstants.load(tmp_path / "n.npz")
    assert not back.per_utterance and np.array_equal(back.scale, fixed.scale)
    np.testing.assert_array_equal(back.apply(x[:1]), fixed.apply(x[:1]))  # batch-independent
    with pytest.raises(ValueError):
        fe.NormConstants.from_arrays({"norm_scale": np.zeros(120)})
    assert fe.CONFIG.to_dict()["n_fft"] == 480


def test_torchaudio_cross_check():
    """Optional: torchaudio (extra `torch`, not installed in CI) gives the same log-mel."""
    from conftest import require

    require("torchaudio")  # an optional extra: skips (saying so) even in CI
    import torchaudio
    import torch

    rng = np.random.default_rng(4)
    y = rng.standard_normal(16000)
    y /= np.abs(y).max()
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=16000,
        n_fft=480,
        hop_length=160,
        f_min=20,
        f_max=4000,
        n_mels=40,
        power=2.0,
        center=True,
        pad_mode="constant",
        norm="slaney",
        mel_scale="slaney",
    )
    S = mel(torch.tensor(y, dtype=torch.float64)).numpy()
    L = np.log1p(S / S.max()).T
    assert np.max(np.abs(L - fe.features(y)[:, :40])) < TOL
