"""`edgetp data real-mix` / `real-dev`: real clips split by speaker into parts that never meet (adapt, choose,
pretrain), the pretrain part mixed into a synthetic corpus with seeded augmented copies, the development view,
and what a model pretrained on the mix records. All on chirp corpora made here."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from conftest import run_cli  # noqa: E402
from edgetp.data.real import CORE, is_choose, speaker_parts  # noqa: E402
from edgetp.data.synth import INFO  # noqa: E402

ADAPT = "aaaa0001"
OTHERS = [f"{k:08x}" for k in range(0x10, 0x10 + 24)]  # one clip of two words each


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """base: a chirp corpus with a synth_info.json as synth-kws writes it; real: one adaptation speaker
    (4 clips of each core word) and 24 others; noise: two clips."""
    base, real, noise = (tmp_path_factory.mktemp(n) for n in ("base", "real", "noise"))
    words = CORE + ("learn",)
    make_corpus(
        base,
        words=words,
        speakers={"bbbb0001": ("train", 2), "bbbb0002": ("validation", 1), "bbbb0003": ("testing", 1)},
    )
    (base / INFO).write_text(
        json.dumps(
            {
                "complete": True,
                "params": {
                    "words": list(words),
                    "speakers": 3,
                    "reps": 2,
                    "distinct": 0,
                    "distinct_reps": 0,
                    "seed": 0,
                },
                "speakers": [{"id": s} for s in ("bbbb0001", "bbbb0002", "bbbb0003")],
            }
        )
    )
    spk = {ADAPT: ("train", {w: 4 for w in CORE})}
    spk.update({s: ("train", {CORE[k % 10]: 1, "learn": 1}) for k, s in enumerate(OTHERS)})
    make_corpus(real, words=words, speakers=spk, seed=1)
    for f in ("validation_list.txt", "testing_list.txt"):
        (real / f).unlink()
    shutil.rmtree(real / "_background_noise_")
    rng = np.random.default_rng(2)
    for k in range(2):
        sf.write(noise / f"{k}.wav", (rng.standard_normal(16000) * 2000).astype(np.int16), 16000, subtype="PCM_16")
    return base, real, noise


def _mix(folders, out, *flags):
    base, real, noise = folders
    return run_cli("data", "real-mix", out, "--real", real, "--noise", noise, "--base", base, *flags)


def test_parts_are_disjoint_complete_and_per_speaker():
    from collections import Counter

    per = {
        ADAPT: Counter({w: 4 for w in CORE}),
        "dddd0001": Counter({w: 3 for w in CORE}),
        **{s: Counter({"yes": 1}) for s in OTHERS},
    }
    parts = speaker_parts(per, 30)
    assert parts["adapt"] == [ADAPT]  # 3 clips of each core word are not enough
    assert sorted(sum(parts.values(), [])) == sorted(per)
    assert not set(parts["choose"]) & set(parts["pretrain"])
    assert 0 < len(parts["choose"]) < len(parts["pretrain"])
    # a speaker's part depends on its id alone, not on who else is there
    alone = speaker_parts({s: Counter({"yes": 1}) for s in OTHERS[:5]}, 30)
    assert (
        alone["choose"]
        == [s for s in OTHERS[:5] if is_choose(s, 30)]
        == [s for s in parts["choose"] if s in OTHERS[:5]]
    )


def test_real_mix_links_the_base_and_adds_the_pretrain_part_only(folders, tmp_path):
    from edgetp.data.gsc import load_corpus

    base, real, _ = folders
    out = tmp_path / "mix"
    r = _mix(folders, out, "--copies", "3")
    assert r.returncode == 0, r.stderr
    info = json.loads((out / "real_mix_info.json").read_text())
    parts = info["speakers"]
    assert parts["adapt"] == [ADAPT] and parts["choose"] and parts["pretrain"]
    assert str(tmp_path) not in (out / "real_mix_info.json").read_text()  # folders by name, never by path
    assert info["params"]["base"]["name"] == base.name and info["params"]["real"]["name"] == real.name
    mixed, b = load_corpus(out), load_corpus(base)
    seen = set(mixed.speaker_counts())
    assert set(parts["pretrain"]) <= seen and not seen & (set(parts["choose"]) | {ADAPT})
    assert {u.speaker for u in mixed.utterances if u.split != "train"} == {"bbbb0002", "bbbb0003"}
    n_real = 2 * len(parts["pretrain"]) * 3
    assert info["utterances"] == {"base": len(b), "real": n_real, "real_clips": n_real // 3}
    assert len(mixed) == len(b) + n_real
    s = parts["pretrain"][0]
    word = next(w for w in CORE if (real / w / f"{s}_nohash_0.wav").exists())
    copies = [out / word / f"{s}_nohash_{c}.wav" for c in range(3)]
    assert copies[0].is_symlink() and copies[0].read_bytes() == (real / word / f"{s}_nohash_0.wav").read_bytes()
    ys = [sf.read(f, dtype="int16")[0] for f in copies]
    assert not np.array_equal(ys[1], ys[2]) and not np.array_equal(ys[0], ys[1])
    # seeded: the same settings give the same bytes; another seed other bytes
    again, other = tmp_path / "again", tmp_path / "other"
    assert _mix(folders, again, "--copies", "3").returncode == 0
    assert _mix(folders, other, "--copies", "3", "--seed", "1").returncode == 0
    assert (again / word / copies[1].name).read_bytes() == copies[1].read_bytes()
    assert (other / word / copies[1].name).read_bytes() != copies[1].read_bytes()
    # a rerun is a no-op; other settings need --force
    r = _mix(folders, out, "--copies", "3")
    assert r.returncode == 0 and "already there" in r.stdout
    r = _mix(folders, out, "--copies", "2")
    assert r.returncode == 2 and "--force" in r.stderr
    assert _mix(folders, out, "--copies", "2", "--force").returncode == 0


def test_speed_perturbation_moves_the_pitch_and_leaves_a_corpus_without_it_unchanged(folders, tmp_path):
    from edgetp.data.real import augment, change_speed

    y = np.sin(2 * np.pi * 400 * np.arange(16000) / 16000)
    for f in (0.9, 1.0, 1.1, 1.25):
        z = change_speed(y, f)
        assert len(z) == len(y) and np.argmax(np.abs(np.fft.rfft(z))) == round(400 * f)
    # off (1, 1): the same random draws as before the option, so corpora made without it keep their audio
    bg = np.random.default_rng(3).standard_normal(16000)
    draw = lambda **kw: augment(y, bg, np.random.default_rng(7), (0, 20), (-30, -1), 100, **kw)
    assert np.array_equal(draw(), draw(speed=(1.0, 1.0))) and not np.array_equal(draw(), draw(speed=(0.9, 1.1)))
    plain, fast = tmp_path / "plain", tmp_path / "fast"
    assert _mix(folders, plain, "--copies", "2").returncode == 0
    assert _mix(folders, fast, "--copies", "2", "--speed", "0.9,1.1").returncode == 0
    p, q = (json.loads((d / "real_mix_info.json").read_text())["params"] for d in (plain, fast))
    assert "speed" not in p and q.pop("speed") == [0.9, 1.1] and p == q


def test_bad_input_is_one_line(folders, tmp_path):
    base, real, noise = folders
    empty = tmp_path / "empty"
    empty.mkdir()
    oddly = tmp_path / "oddly"
    (oddly / "yes").mkdir(parents=True)
    (oddly / "yes" / "clip.wav").write_bytes((real / "yes" / f"{ADAPT}_nohash_0.wav").read_bytes())
    stranger = tmp_path / "stranger"
    (stranger / "sheila").mkdir(parents=True)
    (stranger / "sheila" / "cccc0001_nohash_0.wav").write_bytes((real / "yes" / f"{ADAPT}_nohash_0.wav").read_bytes())
    clash = tmp_path / "clash"
    (clash / "yes").mkdir(parents=True)
    (clash / "yes" / "bbbb0001_nohash_9.wav").write_bytes((real / "yes" / f"{ADAPT}_nohash_0.wav").read_bytes())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    cases = [  # (folders replaced, extra flags, what the one line names)
        ({"--base": real}, [], "synth-kws"),  # not a synthetic corpus
        ({"--real": empty}, [], "no clips"),
        ({"--real": tmp_path / "absent"}, [], "not a folder"),
        ({"--real": oddly}, [], "clip.wav"),
        ({"--real": stranger}, [], "sheila"),
        ({"--real": clash}, [], "bbbb0001"),
        ({"--noise": empty}, [], "no .wav"),
        ({}, ["--copies", "0"], "--copies"),
        ({}, ["--snr", "ten"], "--snr"),
        ({}, ["--peak=-10,3"], "--peak"),
        ({}, ["--choose-percent", "100"], "--choose-percent"),
        ({}, ["--speed", "1.1,0.9"], "--speed"),
        ({}, ["--speed", "0.2,1"], "--speed"),
        ({}, ["--speed", "fast"], "--speed"),
    ]
    for swap, extra, words in cases:
        args = {"--real": real, "--noise": noise, "--base": base, **swap}
        r = run_cli("data", "real-mix", tmp_path / "out", *sum(([k, v] for k, v in args.items()), []), *extra)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and words in lines[0], (swap, extra, r.stderr)
        assert not (tmp_path / "out").exists(), (swap, extra)  # refused before writing anything
    r = _mix(folders, tmp_path / "full")
    assert r.returncode == 2 and "not an edgetp" in r.stderr and (tmp_path / "full" / "notes.txt").exists()


def test_real_dev_holds_the_adapt_part_in_train_and_the_choose_part_in_testing(folders, tmp_path):
    from edgetp.data.gsc import load_corpus

    _, real, _ = folders
    out = tmp_path / "dev"
    r = run_cli("data", "real-dev", out, "--real", real)
    assert r.returncode == 0, r.stderr
    parts = json.loads((out / "real_dev_info.json").read_text())["speakers"]
    c = load_corpus(out)
    assert set(c.speaker_counts("train")) == {ADAPT}
    assert set(c.speaker_counts("testing")) == set(parts["choose"]) and not c.speaker_counts("validation")
    assert not set(c.speaker_counts()) & set(parts["pretrain"])
    assert f"adapt {len(parts['adapt'])} ({ADAPT})" in r.stdout


def test_a_model_of_the_mix_records_its_corpus_and_real_speakers_by_name(folders, tmp_path):
    from edgetp.kws.card import corpus_command
    from edgetp.model import load_model

    out, home = tmp_path / "mix", tmp_path / "home"
    assert _mix(folders, out, "--copies", "2", "--snr", "5,15", "--speed", "0.9,1.1").returncode == 0
    r = run_cli(
        "pretrain",
        "--kws",
        "--protocol",
        "--data-root",
        out,
        "--net",
        "120-8r-36",
        "--epochs",
        "1",
        "--batch",
        "16",
        "--out",
        tmp_path / "m.npz",
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    rec = load_model(tmp_path / "m.npz").recipe
    parts = json.loads((out / "real_mix_info.json").read_text())["speakers"]
    assert rec["real_speakers"] == parts
    assert set(parts["pretrain"]) <= set(rec["pretrain_speakers"])
    assert not (set(parts["choose"]) | set(parts["adapt"])) & set(rec["pretrain_speakers"])
    assert str(tmp_path) not in json.dumps(rec) and rec["data"] == "mix"
    base, real, noise = (p.name for p in folders)
    assert corpus_command(rec) == (
        f"edgetp data synth-kws BASE --speakers 3 --reps 2 --distinct 0 --distinct-reps 0; "
        f"edgetp data real-mix CORPUS --base BASE --real {real} --noise {noise} "
        "--copies 2 --snr 5,15 --speed 0.9,1.1"
    )
    # finetune refuses a real speaker the model trained on, like any pretraining speaker
    r = run_cli(
        "finetune",
        "--kws",
        "--model",
        tmp_path / "m.npz",
        "--data-root",
        out,
        "--speaker",
        parts["pretrain"][0],
        "--shots",
        "1",
        "--set",
        "epochs=0",
        "--quiet",
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 2 and "pretraining set" in r.stderr
