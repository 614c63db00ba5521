"""The espeak-ng corpus: GSC layout, deterministic for a seed, usable by the protocol."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from edgetp.data import noise, synth
from edgetp.data.gsc import load_corpus
from edgetp.data.labels import PAPER_WORDS, which_set
from edgetp.data.splits import speaker_split, speakers_by_count
from edgetp.errors import EdgetpError

needs_espeak = pytest.mark.needs("espeak-ng")
SMALL = dict(speakers=3, reps=2, distinct=2, distinct_reps=7, words=("yes", "no", "up"))


def _digest(root: Path) -> dict:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "kws"
    info = synth.synth_kws(root, seed=5, jobs=1, progress=False, **SMALL)
    return root, info


@needs_espeak
def test_layout_and_reader(small):
    root, info = small
    assert info["utterances"] == 3 * (3 * 2 + 2 * 7)
    assert sorted(p.name for p in root.iterdir()) == [
        "_background_noise_",
        "no",
        "synth_info.json",
        "testing_list.txt",
        "up",
        "validation_list.txt",
        "yes",
    ]
    assert len(list((root / "_background_noise_").glob("*.wav"))) == len(noise.NAMES)
    c = load_corpus(root)
    assert len(c) == info["utterances"] and not c.skipped and not c.notes
    assert all(len(u.speaker) == 8 and int(u.speaker, 16) >= 0 for u in c)
    assert all(u.split == which_set(u.path) for u in c)  # the lists agree with GSC's hash rule
    assert {u.split for u in c} == {"train", "validation", "testing"}
    assert all(c.load(i).shape == (16000,) for i in range(0, len(c), 7))
    assert info["default_speaker"] == synth.DEFAULT_SPEAKER
    assert speakers_by_count(c)[0][1] == 3 * 7


@needs_espeak
def test_default_speaker_is_adaptable(small):
    c = load_corpus(small[0])
    s = speaker_split(c, synth.DEFAULT_SPEAKER, shots=5, seed=0)
    assert len(s.support) == 3 * 5 and len(s.query) == 3 * 2 and not s.dropped
    assert synth.DEFAULT_SPEAKER not in {c[int(i)].speaker for i in s.pretrain}


@needs_espeak
def test_deterministic_for_a_seed(small, tmp_path):
    root, _ = small
    again = synth.synth_kws(tmp_path / "a", seed=5, jobs=2, progress=False, **SMALL)
    assert _digest(tmp_path / "a") == _digest(root)  # also across worker processes
    assert again["speakers"] == small[1]["speakers"]
    other = synth.synth_kws(tmp_path / "b", seed=6, jobs=1, progress=False, **SMALL)
    assert _digest(tmp_path / "b") != _digest(root)
    assert other["speakers"][0]["id"] == synth.DEFAULT_SPEAKER  # distinct ids do not depend on the seed


@needs_espeak
def test_rerun_is_a_no_op_and_settings_are_protected(small, tmp_path):
    root, info = small
    before = _digest(root)
    same = synth.synth_kws(root, seed=5, jobs=1, progress=False, **SMALL)
    assert "seconds" not in same and _digest(root) == before
    with pytest.raises(EdgetpError, match="other settings"):
        synth.synth_kws(root, seed=7, jobs=1, progress=False, **SMALL)
    tiny = dict(speakers=1, reps=1, distinct=0, words=("go",), jobs=1, progress=False)
    synth.synth_kws(tmp_path / "t", seed=1, **tiny)
    assert "seconds" not in synth.synth_kws(tmp_path / "t", seed=1, force=True, **tiny)  # same: kept
    remade = synth.synth_kws(tmp_path / "t", seed=2, force=True, **tiny)
    assert remade["params"]["seed"] == 2 and "seconds" in remade
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(EdgetpError, match="not an edgetp synthetic corpus"):
        synth.synth_kws(foreign, **SMALL)
    assert (foreign / "thesis.tex").exists()


def test_plan():
    plan = synth.plan_speakers(48, 3, 4, 10, seed=0)
    assert plan[0].id == synth.DEFAULT_SPEAKER and plan[0].split == "train" and plan[0].reps == 10
    assert len({s.id for s in plan}) == 52
    assert sum(s.split == "validation" for s in plan) == 5 and sum(s.split == "testing" for s in plan) == 5
    assert all(which_set(s.id) == s.split for s in plan)
    distinct = [s for s in plan if s.distinct]
    regular = [s for s in plan if not s.distinct]
    assert {s.voice.split("+")[0] for s in distinct}.isdisjoint({s.voice.split("+")[0] for s in regular})
    assert {s.voice.split("+")[1] for s in distinct}.isdisjoint({s.voice.split("+")[1] for s in regular})
    assert synth.plan_speakers(48, 3, 4, 10, seed=1)[:4] == plan[:4]


def test_wide_speakers_leave_the_rest_alone_and_the_groups_unheard():
    base = synth.plan_speakers(48, 3, 10, 10, seed=0)
    plan = synth.plan_speakers(48, 3, 10, 10, seed=0, wide=120)
    assert plan[: len(base)] == base  # every other utterance stays byte-identical
    wide = plan[len(base) :]
    assert len(wide) == 120 and len({s.id for s in plan}) == len(plan)
    assert all(s.split == "train" and which_set(s.id) == "train" and not s.distinct for s in wide)
    group = [s for s in plan if s.distinct]
    assert {s.voice.split("+")[0] for s in group}.isdisjoint({s.voice.split("+")[0] for s in wide})
    group_vars = {s.voice.split("+")[1] for s in group}
    assert group_vars.isdisjoint(synth.WIDE_VARIANTS)
    families = ("klatt", "whisper", "grand", "croak", "storm", "norbert")
    assert not [v for v in synth.WIDE_VARIANTS if v.lower().startswith(families) or v in ("f5", "m8")]
    pitches = [s.pitch for s in wide]
    assert min(pitches) < 15 and max(pitches) > 85  # the pitch range the regular speakers lack


def test_babble_holds_no_keyword():
    words = {w for text in noise.BABBLE_TEXT for w in text.split()}
    assert words.isdisjoint(PAPER_WORDS)


def test_mix_snr():
    rng = np.random.default_rng(0)
    s, n = rng.standard_normal(16000), rng.standard_normal(16000)
    y = noise.mix(s, n, 20.0)
    assert 10 * np.log10(np.mean(s**2) / np.mean((y - s) ** 2)) == pytest.approx(20.0, abs=0.01)


def test_missing_espeak_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EdgetpError, match="espeak-ng is not installed.*apt-get install espeak-ng"):
        synth.synth_kws(tmp_path / "out", **SMALL)
    assert not (tmp_path / "out").exists()
