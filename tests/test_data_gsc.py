"""GSC-layout reader: layout, label sets, split lists, bad input (on a NumPy-made corpus)."""

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from edgetp.audio import wav  # noqa: E402
from edgetp.data.gsc import load_corpus  # noqa: E402
from edgetp.data.labels import PAPER_WORDS, label_names, which_set  # noqa: E402
from edgetp.errors import EdgetpError  # noqa: E402


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    make_corpus(root)
    return root


def test_reads_a_corpus_made_by_another_synthesizer(tones):
    c = load_corpus(tones)
    assert len(c) == 4 * (10 + 3 + 3 + 2 + 2) and not c.skipped and not c.notes
    assert c.label_names == list(PAPER_WORDS) + ["_unknown_"]
    u = next(u for u in c if u.path == "yes/0a1b2c3d_nohash_7.wav")
    assert (u.word, u.speaker, u.rep, u.split, u.sr) == ("yes", "0a1b2c3d", 7, "train", 16000)
    assert u.label == PAPER_WORDS.index("yes")
    assert {u.label for u in c if u.word == "learn"} == {PAPER_WORDS.index("learn")}
    assert {u.speaker: u.split for u in c} == {
        "0a1b2c3d": "train",
        "11111111": "train",
        "22222222": "train",
        "33333333": "validation",
        "44444444": "testing",
    }
    assert c.speaker_counts("train")["0a1b2c3d"] == 40
    x = c.load(0)
    assert x.dtype == np.float32 and x.ndim == 1 and np.abs(x).max() <= 1.0
    s = c.summary()
    assert s["splits"] == {"train": 64, "validation": 8, "testing": 8}
    assert s["speakers"][0] == {"id": "0a1b2c3d", "utterances": 40, "train": 40, "validation": 0, "testing": 0}
    assert s["skipped"]["count"] == 0 and s["background_noise"] == ["_background_noise_/white_noise.wav"]


def test_label_sets(tones):
    c12 = load_corpus(tones, labels="12")
    assert c12.label_names[:2] == ["_silence_", "_unknown_"] and len(c12.label_names) == 12
    assert {c12.label_names[u.label] for u in c12 if u.word == "learn"} == {"_unknown_"}
    for split, n_words in (("train", 64), ("validation", 8), ("testing", 8)):
        sil = [u for u in c12 if u.split == split and u.word == "_silence_"]
        assert len(sil) == math.ceil(0.1 * n_words)
        frames = 12 * 16000
        lo, hi = {"train": (0, 0.8), "validation": (0.8, 0.9), "testing": (0.9, 1.0)}[split]
        assert all(lo * frames <= u.start and u.start + 16000 <= hi * frames for u in sil)
    i = next(i for i, u in enumerate(c12) if u.word == "_silence_")
    assert c12.load(i).shape == (16000,) and c12[i].speaker == ""
    custom = load_corpus(tones, labels=["yes", "no"])
    assert custom.label_names == ["yes", "no", "_unknown_"]
    assert {custom.label_names[u.label] for u in custom if u.word == "up"} == {"_unknown_"}
    few = load_corpus(tones, labels="12", unknown_fraction=0.1)
    n_unknown = sum(u.word in ("learn",) for u in few if u.split == "train")
    assert n_unknown == math.ceil(0.1 * 48)
    with pytest.raises(EdgetpError, match="unknown label set"):
        load_corpus(tones, labels="35")


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_bad_files_are_skipped_named_and_counted(tones, tmp_path):
    root = _copy(tones, tmp_path / "c")
    (root / "yes" / "aaaaaaaa_nohash_0.wav").write_text("this is not audio")
    good = (root / "no" / "11111111_nohash_0.wav").read_bytes()
    (root / "no" / "bbbbbbbb_nohash_0.wav").write_bytes(good[: len(good) // 2])  # truncated
    sf.write(root / "up" / "cccccccc_nohash_0.wav", np.zeros((800, 2), np.int16), 16000, subtype="PCM_16")
    sf.write(root / "up" / "dddddddd_nohash_0.wav", np.zeros(0, np.int16), 16000, subtype="PCM_16")
    sf.write(root / "up" / "eeeeeeee_nohash_0.wav", np.ones(400, np.int16), 4000, subtype="PCM_16")
    sf.write(
        root / "up" / "ffffffff_nohash_0.wav",
        (np.sin(np.arange(8000) / 5) * 9000).astype(np.int16),
        8000,
        subtype="PCM_16",
    )
    sf.write(root / "up" / "abcdef01_nohash_0.wav", np.sin(np.arange(22050) / 7) * 0.5, 44100, subtype="FLOAT")
    (root / "up" / "notes.txt").write_text("x")
    (root / "up" / ".DS_Store").write_text("x")  # hidden files are ignored silently
    c = load_corpus(root)
    kinds = {s.path: s.kind for s in c.skipped}
    assert kinds == {
        "yes/aaaaaaaa_nohash_0.wav": "not-wav",
        "no/bbbbbbbb_nohash_0.wav": "truncated",
        "up/cccccccc_nohash_0.wav": "channels",
        "up/dddddddd_nohash_0.wav": "empty",
        "up/eeeeeeee_nohash_0.wav": "rate",
        "up/notes.txt": "name",
    }
    assert "sox" in next(s.reason for s in c.skipped if s.kind == "channels")
    assert len(c) == 80 + 2  # the rest stays usable, plus the two resampled files
    assert any("2 utterances are not at 16 kHz" in n for n in c.notes)
    assert any("6 files skipped" in n for n in c.notes)
    i = next(i for i, u in enumerate(c) if u.speaker == "ffffffff")
    assert c[i].sr == 8000 and c.load(i).shape == (16000,)
    j = next(i for i, u in enumerate(c) if u.speaker == "abcdef01")
    assert c.load(j).shape == (8000,)
    s = c.summary()["skipped"]
    assert s["count"] == 6 and s["by_kind"]["truncated"] == 1
    assert all(f["path"] in kinds for f in s["files"])


def test_probe_messages_name_the_file(tmp_path):
    p = tmp_path / "x.wav"
    p.write_bytes(b"RIFF\x00\x00\x00\x00WAVE")
    with pytest.raises(wav.WavError, match=r"x\.wav: truncated") as e:
        wav.probe(p)
    assert isinstance(e.value, EdgetpError)
    with pytest.raises(EdgetpError, match="cannot open"):
        wav.probe(tmp_path / "missing.wav")


def test_missing_or_empty_lists_fall_back_to_gsc_hash_rule(tones, tmp_path):
    root = _copy(tones, tmp_path / "c")
    (root / "validation_list.txt").unlink()
    (root / "testing_list.txt").write_text("\n")
    c = load_corpus(root)
    assert any("validation_list.txt missing" in n for n in c.notes)
    assert any("testing_list.txt is empty" in n for n in c.notes)
    assert all(u.split == which_set(u.path) for u in c)


def test_one_missing_list_keeps_the_other(tones, tmp_path):
    root = _copy(tones, tmp_path / "c")
    (root / "validation_list.txt").unlink()
    c = load_corpus(root)
    assert {u.split for u in c if u.speaker == "44444444"} == {"testing"}
    assert all(u.split in ("train", "validation") for u in c if u.speaker != "44444444")


def test_list_naming_absent_files_is_noted(tones, tmp_path):
    root = _copy(tones, tmp_path / "c")
    with open(root / "testing_list.txt", "a") as f:
        f.write("yes/deadbeef_nohash_0.wav\n")
    c = load_corpus(root)
    assert any("1 files named in the split lists are not in the corpus" in n for n in c.notes)


def test_no_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(EdgetpError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    (tmp_path / "yes").mkdir()
    (tmp_path / "yes" / "bad.wav").write_text("x")
    with pytest.raises(EdgetpError, match=r"no usable utterance .* 1 files skipped"):
        load_corpus(tmp_path)


def test_which_set_is_gsc_rule():
    ids = [f"{i:08x}" for i in range(0, 2**32, 2**32 // 4000)]
    splits = [which_set(f"yes/{s}_nohash_0.wav") for s in ids]
    assert which_set("yes/0a1b2c3d_nohash_3.wav") == which_set("0a1b2c3d")
    frac = {s: splits.count(s) / len(splits) for s in ("train", "validation", "testing")}
    assert abs(frac["validation"] - 0.1) < 0.02 and abs(frac["testing"] - 0.1) < 0.02
    assert len(label_names("paper")) == 36 and label_names("12")[2:] == [
        "yes",
        "no",
        "up",
        "down",
        "left",
        "right",
        "on",
        "off",
        "stop",
        "go",
    ]
