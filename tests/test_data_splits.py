"""The paper's speaker-adaptation split, on a NumPy-made GSC-layout corpus."""

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from edgetp.data.gsc import load_corpus  # noqa: E402
from edgetp.data.splits import speaker_split, speakers_by_count  # noqa: E402
from edgetp.errors import EdgetpError  # noqa: E402

HELD = "0a1b2c3d"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    make_corpus(
        root,
        speakers={
            HELD: ("train", {"yes": 10, "no": 10, "up": 4, "learn": 7}),
            "11111111": ("train", 3),
            "22222222": ("train", 2),
            "33333333": ("validation", 2),
            "44444444": ("testing", 2),
        },
    )
    return load_corpus(root, labels="12")


def _words(c, idx):
    return Counter(c[int(i)].word for i in idx)


def test_protocol_sets(corpus):
    s = speaker_split(corpus, HELD, shots=5, seed=3)
    # per class 80/20: 10 -> 8 + 2, 4 -> 3 + 1, 7 -> 5 + 2; 'up' has only 3 in its pool
    assert _words(corpus, s.query) == {"yes": 2, "no": 2, "up": 1, "learn": 2}
    assert _words(corpus, s.support) == {"yes": 5, "no": 5, "learn": 5}
    assert s.dropped == ["up"]
    assert not set(s.support) & set(s.query)
    own = set(corpus.select(split="train", speaker=HELD).tolist())
    assert set(s.support) | set(s.query) <= own
    train = set(corpus.select(split="train").tolist())
    assert set(s.pretrain.tolist()) == train - own
    assert any(corpus[int(i)].word == "_silence_" for i in s.pretrain)
    assert {corpus[int(i)].split for i in s.test} == {"testing"}
    assert set(s.test.tolist()) == set(corpus.select(split="testing").tolist())
    assert s.sizes()["validation"] == len(corpus.select(split="validation"))
    for arr in (s.pretrain, s.support, s.query, s.test):
        assert arr.dtype == np.int64


def test_shots(corpus):
    one = speaker_split(corpus, HELD, shots=1, seed=0)
    assert _words(corpus, one.support) == {"yes": 1, "no": 1, "up": 1, "learn": 1} and not one.dropped
    every = speaker_split(corpus, HELD, shots="all", seed=0)
    assert _words(corpus, every.support) == {"yes": 8, "no": 8, "up": 3, "learn": 5}
    assert set(one.support) <= set(every.support)  # k shots are the first k of the same pool
    with pytest.raises(EdgetpError, match="no class has 9"):
        speaker_split(corpus, HELD, shots=9)
    with pytest.raises(EdgetpError, match="shots must be"):
        speaker_split(corpus, HELD, shots=0)


def test_seeded(corpus):
    a = speaker_split(corpus, HELD, 5, seed=1)
    b = speaker_split(corpus, HELD, 5, seed=1)
    c = speaker_split(corpus, HELD, 5, seed=2)
    assert np.array_equal(a.query, b.query) and np.array_equal(a.support, b.support)
    assert not (np.array_equal(a.query, c.query) and np.array_equal(a.support, c.support))


def test_speakers_and_errors(corpus):
    assert speakers_by_count(corpus) == [(HELD, 31), ("11111111", 12), ("22222222", 8)]
    assert speakers_by_count(corpus, None)[-2:] == [("33333333", 8), ("44444444", 8)]
    with pytest.raises(EdgetpError, match="no utterances in .*edgetp data speakers"):
        speaker_split(corpus, "ffffffff", 1)
    with pytest.raises(EdgetpError, match=r"no utterances in the train split \(8 in testing\)"):
        speaker_split(corpus, "44444444", 1)
