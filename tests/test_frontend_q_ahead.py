"""The integer running maximum read A frames later (issue 32): the rule is the float ``read_ahead`` in Q.8
exactly, the stream with A equals the clip with A, the features track the float ``recompress(…, D, A)``, memory
stays bounded, and the shipped models' stream input stage (``stream_norm_q``) runs through ``StreamQ``."""

from pathlib import Path

import numpy as np
import pytest

from edgetp.audio import frontend as fe
from edgetp.audio import frontend_q as fq
from edgetp.audio import frontend_q_stream as fqs
from edgetp.audio.frontend_q_kernels import all_frames_q, features_from_l, logmel_to_l_ahead, read_ahead_q
from edgetp.audio.metrics import block_snr
from edgetp.errors import EdgetpError

REAL = sorted((Path(fq.__file__).parents[1] / "data" / "gsc_real").rglob("*.wav"))[::20]
MIN_SNR_DB = 50.0  # the running maximum's bound (tests/test_frontend_q_running.py), here with A = 50


def _speech_like(seed=0, n=16000, loud=8000.0):
    rng = np.random.default_rng(seed)
    env = np.interp(np.arange(n), [0, n * 0.3, n * 0.35, n * 0.6, n * 0.65, n], [0.01, 0.01, 1, 1, 0.02, 0.02])
    return np.clip(np.round(rng.normal(size=n) * env * loud), -32768, 32767).astype(np.int16)


def _float_ahead(mq, decay, ahead):
    from edgetp.kws.data import read_ahead

    with np.errstate(invalid="ignore"):
        f = np.where(mq == fq.LOG_ZERO, -np.inf, mq / 256.0)
    return read_ahead(f[:, None], decay, ahead)[:, 0] * 256.0


@pytest.mark.parametrize("decay,ahead", [(2, 0), (2, 1), (2, 50), (7, 150), (255, 3)])
def test_read_ahead_is_the_float_rule_exactly(decay, ahead):
    """On running maxima of random Q.8 log-mels the integer m[t + A] (past the end: m[last] - D k) is the float
    read_ahead's * 256 exactly, but where the float one fell below every int16 log-mel (the integer one rests
    at LOG_ZERO); reading one frame early or late is seen."""
    rng = np.random.default_rng(ahead)
    lm = rng.integers(-32767, 32767, (240, fq.N_MELS)) // rng.integers(1, 200, (240, 1))
    lm[:5] = fq.LOG_ZERO
    lm[60:120] = fq.LOG_ZERO
    m = np.zeros(len(lm), np.int64)
    logmel_to_l_ahead(lm, fq.G_LUT, 0, 15, decay, 0, np.zeros(lm.shape, np.int64), m)
    got = np.zeros(len(lm), np.int64)
    read_ahead_q(m, decay, ahead, got)
    want = _float_ahead(m, decay, ahead)
    above = want >= -32767
    np.testing.assert_array_equal(got[above], want[above])
    assert (got[~above] == fq.LOG_ZERO).all() and above.any()
    for wrong in {max(ahead - 1, 0), ahead + 1} - {ahead}:
        bad = np.zeros(len(lm), np.int64)
        read_ahead_q(m, decay, wrong, bad)
        assert not np.array_equal(bad[above], want[above]), wrong


def _stream(pcm, **kw):
    st = fqs.fe_stream_start(**kw)
    counts, out = [], []
    for k in range(pcm.size // fq.HOP):
        st, f = fqs.fe_stream_step_q(st, pcm[fq.HOP * k : fq.HOP * (k + 1)])
        counts.append(len(f))
        out.append(f)
        assert st.lm.shape[0] <= st.ahead and st.L.shape[0] <= fqs.W + 1 and st.buf.size < fq.N_FFT
    st, f = fqs.fe_stream_flush_q(st)
    return np.concatenate(out + [f]), counts, len(f)


@pytest.mark.parametrize("ahead", [0, 1, 50, 200])
def test_the_stream_is_the_clip(ahead):
    pcm = _speech_like(ahead)
    feats, counts, last = _stream(pcm, log_gain=1000.0, running_max_decay=2, running_max_ahead=ahead)
    it = fq.utterance_q(pcm, log_gain=1000.0, running_max_decay=2, running_max_ahead=ahead)
    np.testing.assert_array_equal(feats, it.feats)
    if ahead < 90:  # frames 0..4 once frame A + 8 is in (hop A + 9), then one per hop
        assert counts[: ahead + 10] == [0] * (ahead + 9) + [5] and set(counts[ahead + 10 :]) == {1}
        assert last == ahead + 6
    if ahead:
        assert not np.array_equal(it.L, fq.utterance_q(pcm, log_gain=1000.0, running_max_decay=2).L)


def _clip_rule(pcm, gain, decay, ahead):
    """The clip kernels on a whole (longer than a second) PCM: every frame, Δ's edge rows at both ends."""
    n = 1 + pcm.size // fq.HOP
    logmel = np.zeros((n, fq.N_MELS), np.int64)
    all_frames_q(
        pcm.astype(np.int64),
        *fq.FRAME_TABLES,
        np.zeros(n, np.int64),
        np.zeros((n, fq.N_BINS), np.int64),
        np.zeros((n, fq.N_MELS), np.int64),
        logmel,
    )
    L, lf = np.zeros((n, fq.N_MELS), np.int64), fq.l_frac(gain)
    logmel_to_l_ahead(logmel, fq.G_LUT, fq.log_offset(gain), lf, decay, ahead, L, np.zeros(n, np.int64))
    want = np.zeros((n, fq.N_FEATURES), np.int64)
    rows = [(fq.delta_start(t, n), fq.delta_row(t, n)) for t in range(n)]
    features_from_l(L, fq.DELTA1_Q, fq.DELTA2_Q, *map(np.array, zip(*rows)), lf, want)
    return want


@pytest.mark.parametrize("ahead,seconds,decay", [(50, 3.5, 5), (7, 2.0, 5), (120, 1.7, 2)])
def test_a_long_stream_is_the_long_clip(ahead, seconds, decay):
    """Loud and quiet seconds (the maximum falls and is read past the end): the stream equals the clip rule on
    the whole PCM, for several stream lengths and look-aheads."""
    parts = [_speech_like(s, 16000, 300.0 * 10**s) for s in range(3)]
    pcm = np.concatenate(parts)[: int(seconds * 16000) // fq.HOP * fq.HOP]
    want = _clip_rule(pcm, 1000.0, decay, ahead)
    got, _c, _l = _stream(pcm, log_gain=1000.0, running_max_decay=decay, running_max_ahead=ahead)
    np.testing.assert_array_equal(got, want)


def test_a_planted_off_by_one_at_the_end_fails(monkeypatch):
    pcm = np.concatenate([_speech_like(0), _speech_like(1, 8000, 50.0)])
    want = _clip_rule(pcm, 1000.0, 5, 50)
    real = fqs.ahead_m
    monkeypatch.setattr(fqs, "ahead_m", lambda m, k, d: real(m, k + 1, d))
    got, _c, _l = _stream(pcm, log_gain=1000.0, running_max_decay=5, running_max_ahead=50)
    assert not np.array_equal(got, want)


@pytest.mark.parametrize("path", REAL[:4] + REAL[-4:], ids=[f"{p.parent.name}/{p.name}" for p in REAL[:4] + REAL[-4:]])
def test_features_match_the_float_read_ahead(path):
    """>= 50 dB per block against recompress(features(w), g, 2, 50), for g 1 and 1000."""
    from edgetp.kws.data import recompress

    pcm = fq.pcm16(fq.load_pcm16(path))
    for g in (1.0, 1000.0):
        ref = recompress(fe.features(pcm)[None], g, 2, 50)[0]
        snr = block_snr(ref, fq.features_q(pcm, log_gain=g, running_max_decay=2, running_max_ahead=50))
        assert min(snr.values()) >= MIN_SNR_DB, (g, snr)


def test_a_look_ahead_off_by_one_is_caught_by_the_float_check():
    from edgetp.kws.data import recompress

    worst = min(
        min(
            block_snr(
                recompress(fe.features(p)[None], 1000.0, 2, 50)[0],
                fq.features_q(p, log_gain=1000.0, running_max_decay=2, running_max_ahead=a),
            ).values()
        )
        for p in (fq.pcm16(fq.load_pcm16(f)) for f in REAL[:12])
        for a in (49, 51)
    )
    assert worst < MIN_SNR_DB, worst


@pytest.mark.parametrize("bad", [-1, 201, 2.5, True, "3"])
def test_a_bad_look_ahead_is_a_clear_error(bad):
    with pytest.raises(EdgetpError, match="look-ahead"):
        fq.InputNorm.from_scale(None, 12, 16, 1.0, 2, bad)


def test_look_ahead_limits_and_the_model_path():
    from types import SimpleNamespace

    from edgetp.kws.data import IntInputs

    with pytest.raises(EdgetpError, match="needs a running maximum"):
        fq.utterance_q(_speech_like(), running_max_ahead=5)
    with pytest.raises(EdgetpError, match="overflows its int16"):  # e up to 255 * 200 / 256 octaves
        fq.InputNorm.from_scale(None, 12, 16, 1000.0, 255, 200)
    model = SimpleNamespace(frontend={"log_gain": 1000.0, "running_max_decay": 2, "running_max_ahead": 50})
    model.norm_scale = None
    norm = fq.InputNorm.for_model(model, SimpleNamespace(fx=12, xbits=16))
    assert norm.running_max_ahead == 50
    it = fq.utterance_q(_speech_like(), norm)
    assert np.array_equal(
        it.feats, fq.utterance_q(_speech_like(), log_gain=1000.0, running_max_decay=2, running_max_ahead=50).feats
    )
    with pytest.raises(EdgetpError, match="look-ahead 3 differs"):
        fq.utterance_q(_speech_like(), norm, running_max_ahead=3)
    with pytest.raises(EdgetpError, match="no running-maximum look-ahead"):
        IntInputs(norm).source


def test_stream_q_runs_a_shipped_style_model():
    """A model normalised by the utterance's maximum streams with STREAM_DECAY / STREAM_AHEAD in integers too;
    on a clip its inputs are the clip's with those (utterance_q)."""
    from detect_models import LABELS, random_model

    from edgetp.fixed.qconfig import from_float
    from edgetp.stream.features import STREAM_AHEAD, STREAM_DECAY
    from edgetp.stream.reference_q import StreamQ, run_pcm, stream_norm_q

    m = random_model()
    m.frontend = {"log_gain": 1000.0}
    qm = from_float(m.cfg, m.params, 10, 16, labels=LABELS)
    norm = stream_norm_q(m, qm)
    assert (norm.running_max_decay, norm.running_max_ahead) == (STREAM_DECAY, STREAM_AHEAD)
    pcm = _speech_like(3)
    x = np.stack([f.x for f in run_pcm(StreamQ(qm, norm), pcm)])
    np.testing.assert_array_equal(x, fq.utterance_q(pcm, norm).x)
