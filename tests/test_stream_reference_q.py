"""The integer stream reference (edgetp/stream/reference_q.py): on a one-second clip from a zero state its
inputs are the clip's (utterance_q) and its increments sum to the integer clip classifier's readout; the
detector sees the same increments; bad input is a clear error (issue 32)."""

import numpy as np
import pytest
from detect_models import LABELS, random_model

from edgetp.audio.frontend_q import InputNorm, utterance_q
from edgetp.audio.pcm import pcm16
from edgetp.errors import EdgetpError
from edgetp.fixed.network_q import infer_sequence_q
from edgetp.fixed.qconfig import from_float
from edgetp.stream import detector as D
from edgetp.stream.reference_q import StreamQ, run_pcm


def _setup():
    m = random_model()
    qm = from_float(m.cfg, m.params, 10, 16, labels=LABELS)
    return qm, InputNorm.for_model(m, qm)


def _clip(seed=0):
    rng = np.random.default_rng(seed)
    env = np.r_[np.full(5000, 0.01), np.hanning(6000) + 0.01, np.full(5000, 0.01)]
    return pcm16((0.2 * rng.normal(size=16000) * env).astype(np.float32))


def test_a_clip_streamed_is_the_clip():
    qm, norm = _setup()
    pcm = _clip(4)
    w = np.abs(qm.weights[qm.readout_name]).sum(axis=1).max()
    detq = D.DetectorSpec.make(LABELS, 0.0, window=101).quantized(
        int(qm.fw[qm.readout_name]), qm.weights[qm.readout_name]
    )
    frames = run_pcm(StreamQ(qm, norm, detq), pcm)
    x = np.stack([f.x for f in frames])
    ref = utterance_q(pcm, norm).x
    assert x.shape == ref.shape == (101, 120) and np.array_equal(x, ref)
    inc = np.stack([f.d for f in frames])
    assert np.abs(inc).sum() > 0 and np.abs(inc).max() <= w
    assert np.array_equal(inc.sum(axis=0), infer_sequence_q(qm, ref[None])[0])
    assert [f.report for f in frames if f.report] == D.run(detq, inc)[1]


def test_the_stream_carries_its_state_across_clips():
    """Two clips in one stream: the second clip's frames differ from the same clip heard alone (the network and
    the running maximum carry over), and the first clip's are those it has alone (causality)."""
    qm, norm = _setup()
    a, b = _clip(1), _clip(2)
    both = run_pcm(StreamQ(qm, norm), np.r_[a, b])
    alone = run_pcm(StreamQ(qm, norm), a, flush=False)
    assert len(both) == 201
    assert all(np.array_equal(p.d, q.d) for p, q in zip(both, alone))  # frames finished before b's samples came
    later = run_pcm(StreamQ(qm, norm), b)
    assert any(not np.array_equal(p.x, q.x) for p, q in zip(both[100:], later))


def test_bad_stream_input_is_a_clear_error():
    qm, norm = _setup()
    with pytest.raises(EdgetpError, match="whole hops"):
        run_pcm(StreamQ(qm, norm), np.zeros(100, np.int16))
    with pytest.raises(EdgetpError, match="whole hops"):
        run_pcm(StreamQ(qm, norm), np.zeros(160, np.float32))
    with pytest.raises(EdgetpError, match="running"):
        StreamQ(qm, InputNorm.from_scale(None, qm.fx, qm.xbits, 1000.0))
    other = D.DetectorQ(tuple(LABELS[:12]), 100, 50, np.zeros(12, np.int32), np.zeros(12, np.uint8), 1, 0)
    with pytest.raises(EdgetpError, match="readout"):
        StreamQ(qm, norm, other)
