"""The integer frontend's causal running maximum (issue 32) and its streaming step: the rule in Q.8 is the
float's (edgetp.kws.data.running_max) exactly, the features match the float ones on real speech, a frame
never depends on later audio (but Δ's look-ahead), and the stream equals the clip."""

from pathlib import Path

import numpy as np
import pytest

from edgetp.audio import frontend as fe
from edgetp.audio import frontend_q as fq
from edgetp.audio.frontend_q_kernels import all_frames_q, features_from_l, logmel_to_l_running
from edgetp.audio.frontend_q_stream import fe_stream_flush_q, fe_stream_start, fe_stream_step_q
from edgetp.audio.metrics import block_snr
from edgetp.errors import EdgetpError

REAL = sorted((Path(fq.__file__).parents[1] / "data" / "gsc_real").rglob("*.wav"))[::20]
MIN_SNR_DB = 50.0  # measured >= 59 (experiments/results/frontend_q/snr_running_max_*); D off by one: <= 36


def _speech_like(seed=0, n=16000, loud=8000.0):
    rng = np.random.default_rng(seed)
    env = np.interp(np.arange(n), [0, n * 0.3, n * 0.35, n * 0.6, n * 0.65, n], [0.01, 0.01, 1, 1, 0.02, 0.02])
    return np.clip(np.round(rng.normal(size=n) * env * loud), -32768, 32767).astype(np.int16)


def _float_rule(l2, decay):
    """edgetp.kws.data.running_max (the float design) on log2 values."""
    from edgetp.kws.data import running_max

    return running_max(l2, decay)[:, 0]


def test_the_decay_is_the_floats_unit():
    from edgetp.kws.data import RUNNING_MAX_F

    assert fq.LOG_F == RUNNING_MAX_F


@pytest.mark.parametrize("decay", [1, 2, 77, 255])
def test_running_max_is_the_float_rule_exactly(decay):
    """On Q.8 log-mels (with all-zero frames and bands) the integer m is the float rule's m * 256 exactly, but
    where the float one has decayed below every int16 log-mel (there the integer one rests at LOG_ZERO)."""
    rng = np.random.default_rng(decay)
    lm = rng.integers(-32767, 32767, (300, fq.N_MELS)) // rng.integers(1, 200, (300, 1))
    lm[rng.random(lm.shape) < 0.3] = fq.LOG_ZERO
    lm[:7] = fq.LOG_ZERO  # silence first: m starts at -inf / LOG_ZERO
    lm[100:260] = fq.LOG_ZERO  # a long silence: m decays to the floor
    L, m = np.zeros(lm.shape, np.int64), np.zeros(len(lm), np.int64)
    logmel_to_l_running(lm, fq.G_LUT, 0, 15, decay, L, m)
    with np.errstate(divide="ignore"):
        want = _float_rule(np.where(lm == fq.LOG_ZERO, -np.inf, lm / 256.0), decay) * 256.0
    above = want >= -32767
    np.testing.assert_array_equal(m[above], want[above])
    assert np.all(m[~above] == fq.LOG_ZERO) and (~above).any() and above[7:].any()
    assert not L[lm == fq.LOG_ZERO].any() and (L >= 0).all()
    assert (L[(lm == m[:, None]) & (lm > fq.LOG_ZERO)] == 22713).all()  # the peak: ln 2 in Q.15
    # the check sees a decay off by one
    m2 = np.zeros(len(lm), np.int64)
    logmel_to_l_running(lm, fq.G_LUT, 0, 15, decay + 1, np.zeros(lm.shape, np.int64), m2)
    assert not np.array_equal(m2[above], want[above])


@pytest.mark.parametrize("path", REAL[:6] + REAL[-6:], ids=[f"{p.parent.name}/{p.name}" for p in REAL[:6] + REAL[-6:]])
def test_features_match_the_float_running_max(path):
    """>= 50 dB per block against recompress(features(w), g, D), for g 1 and 1000."""
    from edgetp.kws.data import recompress

    pcm = fq.pcm16(fq.load_pcm16(path))
    for g in (1.0, 1000.0):
        ref = recompress(fe.features(pcm)[None], g, 2)[0]
        snr = block_snr(ref, fq.features_q(pcm, log_gain=g, running_max_decay=2))
        assert min(snr.values()) >= MIN_SNR_DB, (g, snr)


def test_a_wrong_decay_is_caught_by_the_float_check():
    from edgetp.kws.data import recompress

    worst = {}
    for d in (1, 3):
        worst[d] = min(
            min(
                block_snr(
                    recompress(fe.features(p)[None], 1000.0, 2)[0],
                    fq.features_q(p, log_gain=1000.0, running_max_decay=d),
                ).values()
            )
            for p in (fq.pcm16(fq.load_pcm16(f)) for f in REAL[:12])
        )
    assert max(worst.values()) < MIN_SNR_DB, worst


def test_a_frame_does_not_wait_for_later_audio():
    pcm = _speech_like()
    louder = pcm.copy()
    louder[160 * 64 :] = np.clip(louder[160 * 64 :].astype(np.int64) * 30, -32768, 32767)
    a = fq.utterance_q(pcm, running_max_decay=2, log_gain=1000.0)
    b = fq.utterance_q(louder, running_max_decay=2, log_gain=1000.0)
    # frame t's window ends at 160 t + 239 < 160 * 64 for t <= 61; its features read L up to t + 4
    np.testing.assert_array_equal(a.feats[:58], b.feats[:58])
    np.testing.assert_array_equal(a.L[:62], b.L[:62])
    assert not np.array_equal(a.L[62:], b.L[62:])
    u, v = fq.utterance_q(pcm, log_gain=1000.0), fq.utterance_q(louder, log_gain=1000.0)
    assert not np.array_equal(u.L[:62], v.L[:62])  # the utterance's maximum waits for the end


def test_silence_and_the_model_path():
    it = fq.utterance_q(np.zeros(16000, np.int16), running_max_decay=2)
    assert not it.feats.any() and it.lmax == fq.LOG_ZERO and (it.m == fq.LOG_ZERO).all()
    norm = fq.InputNorm.from_scale(None, 12, 16, 1000.0, 2)
    it = fq.utterance_q(_speech_like(), norm)
    assert it.m.shape == (101,) and it.lmax == it.m[-1] and np.array_equal(it.x, norm.input(it.feats))
    with pytest.raises(EdgetpError, match="decay 3 differs"):
        fq.utterance_q(_speech_like(), norm, running_max_decay=3)


@pytest.mark.parametrize("bad", [0, 256, -1, 2.5, True, "2"])
def test_a_bad_decay_is_a_clear_error(bad):
    with pytest.raises(EdgetpError, match="running-maximum decay"):
        fq.InputNorm.from_scale(None, 12, 16, 1.0, bad)


def test_for_model_takes_the_models_decay():
    from types import SimpleNamespace

    model = SimpleNamespace(frontend={"log_gain": 1000.0, "running_max_decay": 2}, norm_scale=None)
    norm = fq.InputNorm.for_model(model, SimpleNamespace(fx=12, xbits=16))
    assert norm.running_max_decay == 2 and norm.log_gain == 1000.0
    model.frontend["running_max_decay"] = 0
    with pytest.raises(EdgetpError, match="running-maximum decay"):
        fq.InputNorm.for_model(model, SimpleNamespace(fx=12, xbits=16))


def stream_q(pcm, **kw):
    """``pcm`` through the integer stream hop by hop, then flushed: (features, frames per hop, frames of the flush)."""
    st = fe_stream_start(**kw)
    counts, out = [], []
    for k in range(pcm.size // fq.HOP):
        st, f = fe_stream_step_q(st, pcm[fq.HOP * k : fq.HOP * (k + 1)])
        counts.append(len(f))
        out.append(f)
    st, f = fe_stream_flush_q(st)
    return np.concatenate(out + [f]), counts, len(f)


@pytest.mark.parametrize("gain,decay", [(1.0, 2), (1000.0, 2), (1000.0, 255)])
def test_the_stream_is_the_clip(gain, decay):
    pcm = _speech_like(decay)
    feats, counts, last = stream_q(pcm, log_gain=gain, running_max_decay=decay)
    np.testing.assert_array_equal(feats, fq.utterance_q(pcm, log_gain=gain, running_max_decay=decay).feats)
    # nothing until frame 8 is in (hop 9: frames 0..4 at once), then one frame per hop, 6 at the flush
    assert counts[:10] == [0] * 9 + [5] and set(counts[10:]) == {1} and last == 6


def test_a_long_stream_is_the_long_clip():
    """3.5 s of audio: the stream equals the clip rule applied to 351 frames (the kernels on the whole PCM)."""
    pcm = np.concatenate([_speech_like(s, 16000, 300.0 * 10**s) for s in range(3)] + [_speech_like(4, 8000)])
    n = 1 + pcm.size // fq.HOP
    shifts, logmel = np.zeros(n, np.int64), np.zeros((n, fq.N_MELS), np.int64)
    all_frames_q(
        pcm.astype(np.int64),
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
        shifts,
        np.zeros((n, fq.N_BINS), np.int64),
        np.zeros((n, fq.N_MELS), np.int64),
        logmel,
    )
    L, m = np.zeros((n, fq.N_MELS), np.int64), np.zeros(n, np.int64)
    lf = fq.l_frac(1000.0)
    logmel_to_l_running(logmel, fq.G_LUT, fq.log_offset(1000.0), lf, 5, L, m)
    want = np.zeros((n, fq.N_FEATURES), np.int64)
    features_from_l(
        L,
        fq.DELTA1_Q,
        fq.DELTA2_Q,
        np.array([fq.delta_start(t, n) for t in range(n)]),
        np.array([fq.delta_row(t, n) for t in range(n)]),
        lf,
        want,
    )
    got, _counts, _last = stream_q(pcm, log_gain=1000.0, running_max_decay=5)
    np.testing.assert_array_equal(got, want)
    # the first second's frames that do not read its padded end are the clip's
    clip = fq.utterance_q(pcm[:16000], log_gain=1000.0, running_max_decay=5)
    np.testing.assert_array_equal(got[:95], clip.feats[:95])


def test_the_stream_is_pure_and_checks_its_input():
    st0 = fe_stream_start(fq.InputNorm.from_scale(None, 12, 16, 1000.0, 2))
    hop = _speech_like()[: fq.HOP]
    st1, _ = fe_stream_step_q(st0, hop)
    st2, _ = fe_stream_step_q(st0, hop)
    assert st0.buf.size == fq.HALF and st1.buf.size == st2.buf.size == fq.HALF + fq.HOP
    with pytest.raises(EdgetpError, match="one hop of 160 int16"):
        fe_stream_step_q(st0, hop[:100])
    with pytest.raises(EdgetpError, match="one hop of 160 int16"):
        fe_stream_step_q(st0, hop.astype(np.float32))
    with pytest.raises(EdgetpError, match="at least 8 hops"):
        fe_stream_flush_q(st1)
    with pytest.raises(EdgetpError, match="running_max_decay"):
        fe_stream_start(fq.InputNorm.from_scale(None, 12, 16, 1000.0))
    st = st0
    for _ in range(8):
        st, _f = fe_stream_step_q(st, hop)
    st, f = fe_stream_flush_q(st)
    assert f.shape == (9, fq.N_FEATURES)
    with pytest.raises(EdgetpError, match="flushed"):
        fe_stream_step_q(st, hop)
