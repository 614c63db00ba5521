"""The integer frontend (edgetp.audio.frontend_q) against librosa's pipeline and its own parts."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgetp.audio import frontend as fe
from edgetp.audio import frontend_q as fq
from edgetp.errors import EdgetpError

REAL = sorted((Path(__file__).parent / "data" / "real").glob("*.wav"))
MIN_SNR_DB = 30.0


def test_real_recordings_present():
    assert len(REAL) >= 3


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_snr_per_block_against_librosa(path):
    """Every block (log-mel, Δ, ΔΔ) of the integer features is >= 30 dB above its error."""
    from tests.test_frontend import librosa_pipeline

    y, sr = sf.read(path, dtype="int16")
    got = fq.features_q(y, sr)
    ref = librosa_pipeline(fq.pcm16(y, sr) / 32768.0)
    snr = fq.block_snr(ref, got)
    assert set(snr) == {"mel", "delta", "delta2"}
    for k, v in snr.items():
        assert np.isfinite(v) and v >= MIN_SNR_DB, (k, v)


def test_snr_check_fails_on_nan_and_on_a_wrong_block():
    ref = fe.features(np.random.default_rng(0).standard_normal(16000))
    bad = ref.copy()
    bad[:, 40:80] = ref[:, 80:120]               # Δ replaced by ΔΔ
    assert fq.block_snr(ref, bad)["delta"] < MIN_SNR_DB
    bad = ref.copy()
    bad[3, 5] = np.nan
    assert np.isnan(fq.block_snr(ref, bad)["mel"])
    assert np.isnan(fq.snr_db(np.zeros(4), np.zeros(4)))


def test_fft_matches_numpy():
    rng = np.random.default_rng(0)
    re, im = rng.integers(-2 ** 20, 2 ** 20, (2, fq.HALF))
    z = re + 1j * im
    r, i = re.copy(), im.copy()
    fq.fft240_q(r, i, fq.FFT_PERM, fq.FACTORS, fq.TW_COS, fq.TW_SIN)
    want = np.fft.fft(z)
    assert np.max(np.abs(r + 1j * i - want)) < 64          # 4 stages of one rounding each, |Z| up to 2^28


def test_power_matches_float_spectrum():
    """One frame's integer power spectrum, rescaled by its block exponent, is the float one."""
    rng = np.random.default_rng(1)
    win = np.round(rng.standard_normal(fq.N_FFT) * 3000).astype(np.int64)
    power = np.zeros(fq.N_BINS, np.int64)
    mel = np.zeros(fq.N_MELS, np.int64)
    lm = np.zeros(fq.N_MELS, np.int64)
    s = fq.frame_q(win, fq.WINDOW_Q, fq.FFT_PERM, fq.FACTORS, fq.TW_COS, fq.TW_SIN, fq.RT_COS, fq.RT_SIN, fq.MEL_Q,
                   fq.MEL_START, fq.MEL_LEN, fq.LOG2_LUT, power, mel, lm)
    spec = np.fft.rfft(win * (fq.WINDOW_Q / 32768.0))[:fq.N_BINS]
    want = np.abs(spec) ** 2 * 4 * 2.0 ** 30 / 2.0 ** (2 * s)     # |2X|^2 in the frame's Q.15 >> s scale
    assert np.allclose(power, want, rtol=1e-3, atol=want.max() * 1e-9)
    assert np.all(lm > fq.LOG_ZERO)


@pytest.mark.parametrize("kind", ["silence", "dc", "square", "clipped", "tiny"])
def test_edge_signals(kind):
    n = 16000
    t = np.arange(n)
    x = {"silence": np.zeros(n), "dc": np.full(n, 32767), "square": np.where((t // 20) % 2, 32767, -32768),
         "clipped": np.clip(np.random.default_rng(2).standard_normal(n) * 80000, -32768, 32767),
         "tiny": np.random.default_rng(3).integers(-1, 2, n)}[kind].astype(np.int16)
    it = fq.utterance_q(x, fq.InputNorm.from_scale(None, 10))
    assert it.feats.shape == (101, 120) and it.x.shape == (101, 120) and it.x.dtype == np.int16
    if kind == "silence":
        assert not it.feats.any() and it.lmax == fq.LOG_ZERO
    else:
        assert it.L.max() == round(np.log(2) * 2 ** 15)          # the loudest band is log1p(1)
        ref = fe.features(x)
        assert np.max(np.abs(it.feats[:, :40] / 2 ** 18 - ref[:, :40])) < 2e-3


def test_input_stage_is_the_float_quantizer():
    """x = round_shift(F * m, s) equals quantize_inputs(F / scale, fx) within one LSB."""
    from edgetp.fixed.quantize import quantize_inputs

    rng = np.random.default_rng(4)
    scale = np.exp(rng.uniform(np.log(4e-4), np.log(0.1), 120))
    norm = fq.InputNorm.from_scale(scale, 10)
    y, sr = sf.read(REAL[0], dtype="int16")
    it = fq.utterance_q(fq.pcm16(y, sr), norm)
    want = quantize_inputs(it.feats / 2.0 ** 18 / scale, 10)
    assert np.max(np.abs(it.x.astype(np.int64) - want)) <= 1
    assert np.all((norm.m >= 1 << 14) & (norm.m < 1 << 15))


def test_bad_input():
    with pytest.raises(EdgetpError):
        fq.frames_q(np.zeros(100, np.int16))
    with pytest.raises(EdgetpError):
        fq.InputNorm.from_scale(np.zeros(120), 10)
    with pytest.raises(EdgetpError):
        fq.pcm16(np.zeros((2, 10)))


def test_pcm16_centres_like_the_float_pipeline():
    x = np.arange(1, 101, dtype=np.int16)
    p = fq.pcm16(x)
    assert p.shape == (16000,) and p[7950] == 1 and p[8049] == 100
    assert np.array_equal(fq.pcm16(np.arange(17000).astype(np.int16))[:3], [500, 501, 502])


def test_cli_features_fixed_reaches_30_db(tmp_path):
    """`edgetp data features --frontend fixed` writes dequantised integer features
    (keys features, files) >= 30 dB per block against librosa on the shipped recordings."""
    from edgetp.cli import main
    from tests.test_frontend import librosa_pipeline

    out = tmp_path / "fixed.npz"
    assert main(["data", "features", *map(str, REAL), "--frontend", "fixed", "--out", str(out)]) == 0
    with np.load(out) as z:
        assert {"features", "files"} <= set(z.files)
        assert z["features"].shape == (len(REAL), 101, 120) and z["features"].dtype == np.float32
        for f, got in zip(z["files"], z["features"]):
            y, sr = sf.read(str(f), dtype="int16")
            snr = fq.block_snr(librosa_pipeline(fq.pcm16(y, sr) / 32768.0), got)
            assert min(snr.values()) >= MIN_SNR_DB, (f, snr)
