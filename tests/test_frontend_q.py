"""The integer frontend (edgetp.audio.frontend_q) against librosa's pipeline and its own parts."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgetp.audio import frontend as fe
from edgetp.audio import frontend_q as fq
from edgetp.audio.metrics import block_snr, snr_db
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
    snr = block_snr(ref, got)
    assert set(snr) == {"mel", "delta", "delta2"}
    for k, v in snr.items():
        assert np.isfinite(v) and v >= MIN_SNR_DB, (k, v)


def test_snr_check_fails_on_nan_and_on_a_wrong_block():
    ref = fe.features(np.random.default_rng(0).standard_normal(16000))
    bad = ref.copy()
    bad[:, 40:80] = ref[:, 80:120]  # Δ replaced by ΔΔ
    assert block_snr(ref, bad)["delta"] < MIN_SNR_DB
    bad = ref.copy()
    bad[3, 5] = np.nan
    assert np.isnan(block_snr(ref, bad)["mel"])
    assert np.isnan(snr_db(np.zeros(4), np.zeros(4)))


def test_fft_matches_numpy():
    """Full-scale noise and tones (|Z| up to 2^28): every twiddle product is one rounded high word,
    so the error is a few LSB a product, carried through the later stages (worst of these 40 frames
    ~57, i.e. 2^-22 of full scale; a wrong twiddle or sign is off by ~2^20)."""
    rng = np.random.default_rng(0)
    t = np.arange(fq.HALF)
    worst = 0.0
    for trial in range(40):
        if trial % 2:
            f, ph = rng.uniform(0, fq.HALF / 2), rng.uniform(0, 2 * np.pi)
            re = np.round(np.cos(2 * np.pi * f * t / fq.HALF) * (2**20 - 1)).astype(np.int64)
            im = np.round(np.sin(2 * np.pi * f * t / fq.HALF + ph) * (2**20 - 1)).astype(np.int64)
        else:
            re, im = rng.integers(-(2**20), 2**20, (2, fq.HALF))
        r, i = re.copy(), im.copy()
        fq.fft240_q(r, i, fq.FFT_PERM, fq.FACTORS, fq.TW_COS, fq.TW_SIN)
        worst = max(worst, np.max(np.abs(r + 1j * i - np.fft.fft(re + 1j * im))))
    assert worst < 128
    with pytest.raises(ValueError, match="specialised"):
        fq.fft240_q(r, i, fq.FFT_PERM, np.array([4, 4, 5, 3]), fq.TW_COS, fq.TW_SIN)


def test_power_matches_float_spectrum():
    """One frame's integer power spectrum, rescaled by its block exponent, is the float one."""
    rng = np.random.default_rng(1)
    win = np.round(rng.standard_normal(fq.N_FFT) * 3000).astype(np.int64)
    power = np.zeros(fq.N_BINS, np.int64)
    mel = np.zeros(fq.N_MELS, np.int64)
    lm = np.zeros(fq.N_MELS, np.int64)
    s = fq.frame_q(
        win,
        fq.WINDOW_Q,
        fq.FFT_PERM,
        fq.FACTORS,
        fq.TW_COS,
        fq.TW_SIN,
        fq.RT_COS,
        fq.RT_SIN,
        fq.MEL_Q,
        fq.MEL_START,
        fq.MEL_LEN,
        fq.LOG2_LUT,
        power,
        mel,
        lm,
    )
    spec = np.fft.rfft(win * (fq.WINDOW_Q / 32768.0))[: fq.N_BINS]
    want = np.abs(spec) ** 2 * 4 * 2.0**30 / 2.0 ** (2 * s)  # |2X|^2 in the frame's Q.15 >> s scale
    assert np.allclose(power, want, rtol=1e-3, atol=want.max() * 1e-9)
    assert np.all(lm > fq.LOG_ZERO)


@pytest.mark.parametrize("kind", ["silence", "dc", "square", "clipped", "tiny"])
def test_edge_signals(kind):
    n = 16000
    t = np.arange(n)
    x = {
        "silence": np.zeros(n),
        "dc": np.full(n, 32767),
        "square": np.where((t // 20) % 2, 32767, -32768),
        "clipped": np.clip(np.random.default_rng(2).standard_normal(n) * 80000, -32768, 32767),
        "tiny": np.random.default_rng(3).integers(-1, 2, n),
    }[kind].astype(np.int16)
    it = fq.utterance_q(x, fq.InputNorm.from_scale(None, 10))
    assert it.feats.shape == (101, 120) and it.x.shape == (101, 120) and it.x.dtype == np.int16
    if kind == "silence":
        assert not it.feats.any() and it.lmax == fq.LOG_ZERO
    else:
        assert it.L.max() == round(np.log(2) * 2**15)  # the loudest band is log1p(1)
        ref = fe.features(x)
        assert np.max(np.abs(it.feats[:, :40] / 2**18 - ref[:, :40])) < 2e-3


def test_input_stage_is_the_float_quantizer():
    """x = round_shift(F * m, s) equals quantize_inputs(F / scale, fx) within one LSB."""
    from edgetp.fixed.quantize import quantize_inputs

    rng = np.random.default_rng(4)
    scale = np.exp(rng.uniform(np.log(4e-4), np.log(0.1), 120))
    norm = fq.InputNorm.from_scale(scale, 10)
    y, sr = sf.read(REAL[0], dtype="int16")
    it = fq.utterance_q(fq.pcm16(y, sr), norm)
    want = quantize_inputs(it.feats / 2.0**18 / scale, 10)
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
            snr = block_snr(librosa_pipeline(fq.pcm16(y, sr) / 32768.0), got)
            assert min(snr.values()) >= MIN_SNR_DB, (f, snr)


# ----------------------------------------------------------------------------- the model's log gain
GAINS = (1000.0, 10000.0)


@pytest.mark.parametrize("gain", GAINS)
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_snr_per_block_with_a_log_gain(path, gain):
    """log1p(g S / max S) and its Δ, ΔΔ (edgetp.kws.data.recompress of librosa's features) are
    matched >= 30 dB per block by the integer frontend with the same gain."""
    from edgetp.kws.data import recompress
    from tests.test_frontend import librosa_pipeline

    y, sr = sf.read(path, dtype="int16")
    got = fq.features_q(y, sr, log_gain=gain)
    ref = recompress(librosa_pipeline(fq.pcm16(y, sr) / 32768.0), gain)
    snr = block_snr(ref, got)
    for k, v in snr.items():
        assert np.isfinite(v) and v >= MIN_SNR_DB, (k, v)
    assert got[:, :40].max() > 4.0  # ln(1 + 1000) = 6.9: not the paper's <= ln 2


@pytest.mark.parametrize("gain", [1.0, 1.5, 1.8, 10.0, 1000.0, 10000.0, float(fq.LOG_GAIN_MAX)])
def test_l_is_ln_1_plus_2_to_the_e_for_every_e(gain):
    """L(e) = ln(1 + 2^e) within 1.25 LSB of its Q-format for every Q.8 e from the largest
    (e = C, the utterance maximum) down to 120 below it: both branches (e > 0 adds e ln 2)."""
    c, lf = fq.log_offset(gain), fq.l_frac(gain)
    k = np.arange(0, 120 * 256)
    out = np.zeros((1, k.size), np.int64)
    fq.logmel_to_l((-k).reshape(1, -1).astype(np.int64), fq.G_LUT, c, lf, out)
    e = c - k
    err = out[0] - np.log1p(2.0 ** (e / 256.0)) * 2.0**lf
    assert np.all(np.isfinite(err)) and np.max(np.abs(err)) <= 1.25, np.max(np.abs(err))
    assert np.all(np.diff(out[0]) <= 0) and out[0, 0] <= 32767 - 8 and abs(c / 256.0 - np.log2(gain)) <= 1 / 512
    if lf < fq.L_F_MAX:  # the finest Q-format: one more bit would not fit
        finer = np.zeros((1, 1), np.int64)
        fq.logmel_to_l(np.zeros((1, 1), np.int64), fq.G_LUT, c, lf + 1, finer)
        assert finer[0, 0] > 32767 - 8
    assert (lf == 15) == (gain <= 1.716) and (e > 0).any() == (gain >= 1.5)


def test_log_gain_one_is_the_paper_frontend():
    """g = 1: offset 0, L Q.15, the same features as without a gain (the paper's, bit for bit)."""
    y, sr = sf.read(REAL[0], dtype="int16")
    a = fq.utterance_q(fq.pcm16(y, sr))
    b = fq.utterance_q(fq.pcm16(y, sr), fq.InputNorm.from_scale(None, 10, log_gain=1.0))
    assert fq.log_offset(1) == 0 and fq.l_frac(1) == 15 and np.array_equal(a.feats, b.feats)
    assert a.L.max() == round(np.log(2) * 2**15)


def test_log_gain_one_is_the_step_before_the_gain_existed():
    """With offset 0 and Q.15, L is exactly the pre-gain step: u = M - l, 0 for LOG_ZERO or
    u >= 17 * 256, else round_shift(G[u >> 3] (8 - f) + G[(u >> 3) + 1] f, 3) (written out here)."""
    rng = np.random.default_rng(7)
    lm = rng.integers(-9000, 20000, (101, 40))
    lm[rng.random(lm.shape) < 0.05] = fq.LOG_ZERO
    lm[3, 4] = lm.max() - 17 * 256  # the range edge
    out = np.zeros_like(lm)
    m = fq.logmel_to_l(lm, fq.G_LUT, 0, 15, out)
    u = m - lm
    i = np.minimum(u >> 3, len(fq.G_LUT) - 2)
    f = u & 7
    want = (fq.G_LUT[i] * (8 - f) + fq.G_LUT[i + 1] * f + 4) >> 3
    want[(lm == fq.LOG_ZERO) | (u >= 17 * 256)] = 0
    assert m == lm.max() and np.array_equal(out, want) and out.any()


def test_a_wrong_log_offset_is_caught(monkeypatch):
    """Test the tester: an offset of ln g instead of log2 g (or in the wrong Q-format) falls
    below the 30 dB bar against recompress."""
    from edgetp.kws.data import recompress

    y, sr = sf.read(REAL[0], dtype="int16")
    ref = recompress(fe.features(fq.pcm16(y, sr)), 1000.0)
    assert min(block_snr(ref, fq.features_q(y, sr, log_gain=1000.0)).values()) >= MIN_SNR_DB
    for wrong in (lambda g: round(np.log(g) * 256), lambda g: round(np.log2(g)), lambda g: fq.LOG_F * 0):
        monkeypatch.setattr(fq, "log_offset", wrong)
        assert min(block_snr(ref, fq.features_q(y, sr, log_gain=1000.0)).values()) < MIN_SNR_DB


def test_model_input_of_a_log_gain_model_against_its_float_inputs():
    """kws-mcu-64k (log gain 1000): the integer model input x / 2^fx against the float
    pipeline's ModelInputs (recompress, then the model's divisors) >= 30 dB per block."""
    from edgetp.kws.protocol import model_norm
    from edgetp.model import load_model
    from firmware_gen.qmodel import qmodel_for

    model = load_model("kws-mcu-64k")
    qm, _ = qmodel_for(model)
    norm = fq.InputNorm.for_model(model, qm)
    assert norm.log_gain == 1000.0 and norm.l_frac == 12 and norm.log_offset == 2551
    for path in REAL:
        pcm = fq.pcm16(fq.load_pcm16(path))
        x = fq.utterance_q(pcm, norm).x
        ref = model_norm(model).apply(fe.features(pcm)[None])[0]
        snr = block_snr(ref, x / 2.0**qm.fx)
        assert min(snr.values()) >= MIN_SNR_DB, (path.name, snr)


@pytest.mark.parametrize("gain", [0.5, 0.0, -3.0, float("nan"), float("inf"), fq.LOG_GAIN_MAX * 2.0, "loud", None])
def test_a_log_gain_out_of_range_is_refused(gain):
    from types import SimpleNamespace

    with pytest.raises(EdgetpError, match="log gain"):
        fq.InputNorm.from_scale(None, 10, log_gain=gain)
    if gain is not None:  # features_q(log_gain=None): the default, 1
        with pytest.raises(EdgetpError, match="log gain"):
            fq.features_q(np.zeros(100, np.int16), log_gain=gain)
    model = SimpleNamespace(frontend={"log_gain": gain}, norm_scale=np.ones(120))
    with pytest.raises(EdgetpError, match="log gain"):
        fq.InputNorm.for_model(model, SimpleNamespace(fx=10, xbits=16))
