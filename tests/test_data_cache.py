"""Feature cache: one memory-mapped file per split, reused, refreshed when files change."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from edgetp.audio import frontend  # noqa: E402
from edgetp.data import cache  # noqa: E402
from edgetp.data.gsc import load_corpus  # noqa: E402


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "c"
    make_corpus(
        root,
        words=("yes", "no"),
        speakers={"0a1b2c3d": ("train", 3), "11111111": ("testing", 2), "22222222": ("validation", 1)},
    )
    return load_corpus(root, labels="12")


def _forbid_frontend(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("features recomputed")

    monkeypatch.setattr(cache.frontend, "features_batch", boom)


def test_split_file_is_computed_once_and_memory_mapped(corpus, tmp_path, monkeypatch):
    train = corpus.select(split="train")
    first = cache.cached_features(corpus, train, tmp_path / "fc")
    assert isinstance(first, np.memmap) and first.shape == (len(train), 101, 120) and first.dtype == np.float32
    expected = frontend.features_batch([corpus.load(int(i)) for i in train])
    np.testing.assert_array_equal(np.asarray(first), expected)
    files = sorted(p.name for p in (tmp_path / "fc").rglob("*.npy"))
    assert len(files) == 1 and files[0].startswith("train-")
    _forbid_frontend(monkeypatch)
    again = cache.cached_features(corpus, train, tmp_path / "fc")
    np.testing.assert_array_equal(np.asarray(again), expected)


def test_any_selection_in_the_order_asked(corpus, tmp_path, monkeypatch):
    idx = np.array([len(corpus) - 1, 0, int(corpus.select(split="testing")[1]), 3])
    got = cache.cached_features(corpus, idx, tmp_path / "fc")
    expected = frontend.features_batch([corpus.load(int(i)) for i in idx])
    np.testing.assert_array_equal(got, expected)
    monkeypatch.setattr(cache, "SELECTION_IN_MEMORY", 2)
    big = cache.cached_features(corpus, idx, tmp_path / "fc")
    assert isinstance(big, np.memmap)
    np.testing.assert_array_equal(np.asarray(big), expected)
    _forbid_frontend(monkeypatch)
    np.testing.assert_array_equal(np.asarray(cache.cached_features(corpus, idx, tmp_path / "fc")), expected)


def test_changed_file_is_recomputed(corpus, tmp_path):
    train = corpus.select(split="train")
    cache.cached_features(corpus, train, tmp_path / "fc")
    path = corpus.path(int(train[0]))
    y = np.zeros(4000, np.int16)
    y[1000:3000] = (np.sin(np.arange(2000) / 3) * 8000).astype(np.int16)
    import soundfile as sf

    sf.write(path, y, 16000, subtype="PCM_16")
    os.utime(path, ns=(1, 1))
    fresh = load_corpus(corpus.root, labels="12")
    got = cache.cached_features(fresh, train, tmp_path / "fc")
    np.testing.assert_array_equal(got[0], frontend.features(y))
    assert len(list((tmp_path / "fc").rglob("train-*.npy"))) == 1  # the stale file is gone


def test_interrupted_run_leaves_no_file(corpus, tmp_path, monkeypatch):
    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.frontend, "features_batch", fail)
    with pytest.raises(KeyboardInterrupt):
        cache.cached_features(corpus, corpus.select(split="train"), tmp_path / "fc")
    assert not list((tmp_path / "fc").rglob("*.npy"))
