"""Keyword detection in a stream (issue 32): stream features equal clip features, the windowed score equals the
clip classifier's readout, the detector finds known words at the right times once each (and planted bugs are caught),
the vectorised scan equals the step function, the integer twin decides as the float one with bounded state, DET."""

from dataclasses import replace

import numpy as np
import pytest
from detect_models import LABELS, OTHER, WORDS, random_model, tone, tone_model, tone_stream

from edgetp.audio.frontend import features
from edgetp.errors import EdgetpError
from edgetp.kws.protocol import model_norm
from edgetp.stream import detector as D
from edgetp.stream.build import Event
from edgetp.stream.evaluate import at_target, det_curve, match
from edgetp.stream.features import STREAM_AHEAD, STREAM_DECAY, StreamFeatures, stream_features, stream_inputs
from edgetp.stream.network import StreamNet, listen

SR = 16000


def _clip(seed=0):
    rng = np.random.default_rng(seed)
    env = np.r_[np.full(5000, 0.01), np.hanning(6000) + 0.01, np.full(5000, 0.01)]
    return (0.2 * rng.normal(size=16000) * env).astype(np.float32)


def _blocks(x, n):
    return [x[i : i + n] for i in range(0, len(x), n)]


@pytest.mark.parametrize("ahead", [0, 1, 50, 150])
@pytest.mark.parametrize("block", [16000, 999, 160, 37])
def test_stream_features_equal_clip_features(block, ahead):
    m = random_model()
    inp = replace(model_norm(m), running_max_ahead=ahead)  # 150 > the clip's 101 frames: all past its end
    w = _clip()
    ref = inp.apply(features(w)[None])[0]
    got = np.concatenate(list(stream_features(inp, _blocks(3.0 * w, block))))  # a gain cancels too
    assert got.shape == ref.shape == (101, 120)
    np.testing.assert_allclose(got, ref, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("plant", [-1, 1])
def test_a_look_ahead_off_by_one_is_caught(plant):
    """The clip path's look-ahead against a stream reading one frame early or late: the test above would fail."""
    inp = replace(model_norm(random_model()), running_max_ahead=50)
    ref = inp.apply(features(_clip())[None])[0]
    got = np.concatenate(list(stream_features(replace(inp, running_max_ahead=50 + plant), _blocks(_clip(), 999))))
    assert np.abs(got - ref).max() > 1e-3


def test_ahead_zero_is_todays_recompress_and_bad_aheads_are_refused():
    from edgetp.kws.data import check_running_max_ahead, recompress, running_max

    x = features(_clip())[None]
    a = recompress(x, 1000.0, 2)
    assert np.array_equal(a, recompress(x, 1000.0, 2, 0))
    # today's formula, written out: m[t] of the plain running maximum
    l2 = np.log2(np.expm1(x[..., :40].astype(np.float64)))
    L = np.log1p(1000.0 * np.exp2(l2 - running_max(l2, 2)))
    np.testing.assert_allclose(a[..., :40], L, rtol=1e-6)
    assert not np.allclose(recompress(x, 1000.0, 2, 50), a)
    assert check_running_max_ahead(None, "x") == 0 and check_running_max_ahead(np.int64(200), "x") == 200
    for bad in (-1, 201, 2.5, True, "50"):
        with pytest.raises(EdgetpError, match="0..200"):
            check_running_max_ahead(bad, "the model's frontend running_max_ahead")
    with pytest.raises(EdgetpError, match="needs a running maximum"):
        recompress(x, 1000.0, None, 50)


@pytest.mark.parametrize("ahead", [0, 30])
def test_stream_features_are_causal_and_bounded(ahead):
    inp = replace(model_norm(random_model()), running_max_ahead=ahead)
    w = np.concatenate([_clip(1), _clip(2), _clip(3)])
    loud = w.copy()
    loud[SR:] *= 40.0
    a = np.concatenate(list(stream_features(inp, _blocks(w, 4000))))
    b = np.concatenate(list(stream_features(inp, _blocks(loud, 4000))))
    # frame 99's window reaches sample 16000; Δ looks 4 frames ahead and the maximum `ahead` more: frames
    # <= 94 - ahead cannot see the change
    np.testing.assert_allclose(a[: 95 - ahead], b[: 95 - ahead], atol=1e-5)
    assert np.abs(a[95 - ahead :] - b[95 - ahead :]).max() > 0.01
    fe = StreamFeatures(inp)
    for x in _blocks(w, 3000):
        fe.push(x)
        # state does not grow with the stream: ahead log-mel frames pending, 2 * 4 + 8 of L, < 480 samples
        assert len(fe.l2) == len(fe.mx) <= ahead and len(fe.hist) <= 2 * 4 + 8 and len(fe.wave) < 480 + 3000
    fe.finish()
    with pytest.raises(EdgetpError, match="finished"):
        fe.push(w)


def test_which_normaliser_a_model_streams_with():
    m = random_model()
    inp, rec = stream_inputs(m)  # its own decay, no look-ahead recorded: 0
    assert (inp.running_max_decay, inp.running_max_ahead, rec["latency_frames"]) == (2, 0, 4)
    m.frontend.update(running_max_decay=7, running_max_ahead=20)
    inp, rec = stream_inputs(m)
    assert (inp.running_max_decay, inp.running_max_ahead, rec["latency_frames"]) == (7, 20, 24)
    clip = model_norm(m)  # the clip path (pretrain, finetune, predict) reads the look-ahead the model records
    assert (clip.running_max_decay, clip.running_max_ahead) == (7, 20)
    m.frontend.update(running_max_ahead=500)
    with pytest.raises(EdgetpError, match="running_max_ahead"):
        stream_inputs(m)
    m.frontend.pop("running_max_decay")
    m.frontend.pop("running_max_ahead")
    inp, rec = stream_inputs(m)  # the utterance's maximum (the shipped models): the stream defaults
    assert (inp.running_max_decay, inp.running_max_ahead) == (STREAM_DECAY, STREAM_AHEAD)
    assert rec["latency_frames"] == STREAM_AHEAD + 4 and "utterance's maximum" in rec["why"]
    with pytest.raises(EdgetpError, match="utterance's maximum"):
        StreamFeatures(model_norm(m))  # the clip input stage itself cannot stream
    m.frontend["per_utterance"] = True
    with pytest.raises(EdgetpError, match="per_utterance"):
        stream_inputs(m)


def test_window_sum_equals_the_clip_readout_float_and_integer():
    from edgetp.fixed.network_q import infer_sequence_q
    from edgetp.fixed.qconfig import from_float
    from edgetp.fixed.quantize import quantize_inputs
    from edgetp.tp.network import infer_sequence

    m = random_model()
    inp = model_norm(m)
    x = inp.apply(features(_clip(4))[None])
    inc = listen(inp, StreamNet(model=m), [_clip(4)])
    assert np.abs(inc).sum() > 0
    u = infer_sequence(m.params, x, m.cfg)[0]
    np.testing.assert_allclose(D.window_sums(inc, 101)[-1], u, rtol=1e-5, atol=1e-4)
    assert np.abs(D.window_sums(inc, 50)[-1] - u).max() > 1e-3  # a shorter window forgets the start
    qm = from_float(m.cfg, m.params, 10, 16, labels=LABELS)
    qinc = listen(inp, StreamNet(qm=qm), [_clip(4)])
    uq = infer_sequence_q(qm, quantize_inputs(x, 10, 16))[0]
    assert qinc.dtype == np.int64 and np.array_equal(qinc.sum(axis=0), uq)


def _check(reports, events, hop=0.01, tol=0.5):
    """None if the reports are exactly one per keyword tone, the right word inside its span, else why not."""
    kw = [e for e in events if e[0] != OTHER]
    if len(reports) != len(kw):
        return f"{len(reports)} reports for {len(kw)} keywords"
    for (f, k, _), (w, a, b) in zip(reports, kw):
        if LABELS[k] != w or not a / SR <= f * hop <= b / SR + tol:
            return f"{LABELS[k]} at {f * hop:.2f} s for {w} in {a / SR:.2f}..{b / SR:.2f} s"
    return None


@pytest.fixture(scope="module")
def tones():
    m = tone_model()
    wave, events = tone_stream(WORDS * 2)
    inc = listen(model_norm(m), StreamNet(model=m), _blocks(wave, 20000))
    return m, wave, events, inc


def test_the_detector_finds_known_words_once_at_their_times(tones):
    m, _, events, inc = tones
    spec = D.DetectorSpec.make(LABELS)
    _, reps = D.run(spec, inc)
    assert _check(reps, events) is None
    # the clip classifier agrees on each tone: its predictions are what the detector reports
    from edgetp.tp.network import predict

    clips = np.stack([np.pad(tone(w), (4000, 4000)) for w in WORDS])
    pred = predict(m.params, model_norm(m).apply(np.stack([features(c) for c in clips])), m.cfg)
    assert [LABELS[p] for p in pred] == WORDS


def test_planted_detector_bugs_are_caught(tones, monkeypatch):
    _, _, events, inc = tones
    spec = D.DetectorSpec.make(LABELS, refractory=0)
    assert _check(D.run(spec, inc)[1], events) is None  # the latch alone keeps one report per word
    real = D._decide
    monkeypatch.setattr(D, "_decide", lambda s, sums, st: (lambda h, _, d: (h, -1, d))(*real(s, sums, st)))
    assert "reports for" in _check(D.run(spec, inc)[1], events)  # no latch, no suppression: repeats
    monkeypatch.setattr(D, "_decide", real)

    def integrating(spec, state, d):  # a window that never forgets: the readout u itself
        buf = state.buf.copy()
        buf[state.pos] += d
        hold, latch, det = D._decide(spec, buf.sum(axis=0), state)
        return D.DetState(buf, (state.pos + 1) % spec.window, state.t + 1, hold, latch), det

    monkeypatch.setattr(D, "step", integrating)
    assert _check(D.run(spec, inc)[1], events) is not None


def test_other_words_and_silence_are_never_reported(tones):
    _, _, events, inc = tones
    _, reps = D.run(D.DetectorSpec.make(LABELS, threshold=0.5), inc)
    assert OTHER not in {LABELS[k] for _, k, _ in reps}
    quiet = listen(model_norm(tone_model()), StreamNet(model=tone_model()), [np.zeros(4 * SR, np.float32)])
    assert not quiet.any() and D.run(D.DetectorSpec.make(LABELS, threshold=0.5), quiet)[1] == []


def test_scan_equals_the_step_function():
    rng = np.random.default_rng(0)
    inc = np.round(rng.normal(size=(3000, len(LABELS))) * 3).astype(np.int64)
    inc[:, LABELS.index("yes")] += (np.arange(3000) % 400 < 120) * 6  # runs where a keyword leads
    inc[:, LABELS.index("up")] += (np.arange(3000) % 700 > 500) * 5
    for thr, window, refr in ((20.0, 100, 50), (5.0, 30, 0), (40.0, 60, 200)):
        spec = D.DetectorSpec.make(LABELS, thr, window, refr)
        top, margin = D.margins(D.window_sums(inc, window))
        want = D.run(spec, inc.astype(np.float64))[1]
        got = D.scan(top, margin, spec.keyword_mask, spec.thresholds, refr)
        assert [(f, k) for f, k, _ in got] == [(f, k) for f, k, _ in want] and len(want) > 0
        q = D.run(spec.quantized(0, np.full((len(LABELS), 1), 1000)), inc)[1]
        assert [(f, k, int(s)) for f, k, s in got] == q


def test_integer_detector_decides_as_the_float_one(tones):
    from firmware_gen.qmodel import qmodel_for

    m, wave, events, inc = tones
    qm, _ = qmodel_for(m)
    net = StreamNet(qm=qm)
    qinc = listen(model_norm(m), net, _blocks(wave, 20000))
    spec = D.DetectorSpec.make(LABELS)
    specq = spec.quantized(net.readout_bits, qm.weights[qm.readout_name])
    assert specq.thresholds[LABELS.index("yes")] == int(D.DEFAULT_THRESHOLD) << net.readout_bits
    c = specq.c_constants()
    assert c["ETP_DET_THRESHOLD"] == [int(t) for t in specq.thresholds] and c["ETP_DET_WINDOW"] == spec.window
    assert sum(c["ETP_DET_KEYWORD"]) == 10 and c["ETP_DET_KEYWORD"][LABELS.index(OTHER)] == 0
    fl, it = D.run(spec, inc)[1], D.run(specq, qinc)[1]
    assert [(f, k) for f, k, _ in fl] == [(f, k) for f, k, _ in it] and _check(it, events) is None


def test_integer_state_is_bounded_on_a_long_worst_case_stream():
    W = np.zeros((len(LABELS), 4), np.int64)
    W[0], W[1] = 30000, -30000  # the largest increments a row can give, of both signs
    spec = D.DetectorSpec.make(LABELS, 1.0, window=100).quantized(0, W)
    assert spec.row_bound == 120000
    st = D.init_state(spec)
    rng = np.random.default_rng(1)
    for t in range(6000):
        d = np.zeros(len(LABELS), np.int64)
        d[0], d[1] = (120000, -120000) if t % 1000 < 900 else rng.integers(-120000, 120001, 2)
        st, _ = D.step_q(spec, st, d)
        assert st.sums.dtype == np.int32
        assert np.array_equal(st.sums, st.buf.astype(np.int64).sum(axis=0))  # no wrap, no drift
    assert np.abs(st.sums.astype(np.int64)).max() <= 100 * 120000
    with pytest.raises(EdgetpError, match="overflow"):
        D.DetectorSpec.make(LABELS, window=9000).quantized(0, W)  # 2 * 9000 * 120000 > 2^31
    with pytest.raises(EdgetpError, match="within"):
        D.step_q(spec, st, np.full(len(LABELS), 120001))


def test_det_false_alarms_fall_with_the_threshold_and_match_counts_once():
    """Without refractory time a higher threshold only removes reports (the latch does not depend on it), so false
    alarms per hour never rise; the miss rate rises overall (an earlier report of a lower threshold can fall before
    its clip, so it is not strictly monotonic)."""
    rng = np.random.default_rng(2)
    inc = rng.normal(size=(6000, len(LABELS)))
    events = []
    for i, t in enumerate(range(200, 5800, 300)):
        w = D.KEYWORDS[i % 10]
        inc[t : t + 60, LABELS.index(w)] += rng.uniform(0.2, 2.0)
        events.append(Event(w, t * 160, (t + 100) * 160, True))
    spec = D.DetectorSpec.make(LABELS, refractory=0)
    det = det_curve(inc, spec, events, 60.0, np.linspace(0, 150, 31))
    fa, miss = [d["fa_per_hour"] for d in det], [d["miss_rate"] for d in det]
    reps = [d["reports"] for d in det]
    assert fa == sorted(fa, reverse=True) and reps == sorted(reps, reverse=True)
    assert miss[0] < 0.2 < 0.9 < miss[-1] and fa[0] > 100 * fa[-1]
    pick = at_target(det, 100.0)
    lower = [d for d in det if d["threshold"] < pick["threshold"]]
    assert pick["fa_per_hour"] <= 100.0 and lower and all(d["fa_per_hour"] > 100.0 for d in lower)
    assert at_target(det, -1.0) is None
    auto = det_curve(inc, spec, events, 60.0)
    assert auto[0]["threshold"] == 0.0 and auto[-1]["reports"] == 0 and len(auto) > 20
    m = match([(2.5, "yes"), (2.6, "yes"), (2.7, "no"), (9.0, "up")], [Event("yes", 2 * SR, 3 * SR, True)], 3600)
    assert m["per_keyword"]["yes"]["hits"] == 1 and m["overall"]["false_alarms"] == 3
    assert m["overall"]["miss_rate"] == 0.0 and m["overall"]["fa_per_hour"] == 3.0


def test_bad_detector_settings_are_clear_errors():
    with pytest.raises(EdgetpError, match="keywords"):
        D.DetectorSpec.make(["a", "b", "_unknown_"])
    with pytest.raises(EdgetpError, match="per keyword"):
        D.DetectorSpec.make(LABELS, {"bed": 1.0})
    with pytest.raises(EdgetpError, match="window"):
        D.DetectorSpec.make(LABELS, window=0)
    with pytest.raises(EdgetpError, match="finite"):
        D.DetectorSpec.make(LABELS, {"yes": float("nan")})
