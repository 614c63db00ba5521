"""A speaker the model was pretrained on is not "held out": finetune --kws and hil refuse it,
--allow-seen-speaker overrides and the report says so (edgetp/kws/data.py check_speaker)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from conftest import run_cli  # noqa: E402
from edgetp.errors import EdgetpError  # noqa: E402

HELD, SEEN = "0a1b2c3d", "11111111"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    make_corpus(root)
    home = tmp_path_factory.mktemp("home")
    model = home / "m.npz"
    r = run_cli(
        "pretrain",
        "--kws",
        "--data-root",
        root,
        "--net",
        "120-8r-36",
        "--epochs",
        "1",
        "--batch",
        "8",
        "--hold-out",
        HELD,
        "--out",
        model,
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    return root, home, model


def _legacy(model_path, out, **recipe):
    """The model as shipped before pretrain recorded its speakers (recipe edited, hash recomputed)."""
    from dataclasses import replace

    from edgetp.model import load_model, save_model

    m = load_model(model_path)
    rec = {k: v for k, v in m.recipe.items() if k != "pretrain_speakers"}
    rec.update(recipe)
    save_model(replace(m, recipe=rec), out)
    return out


def _ft(setup, *flags, model=None):
    root, home, m = setup
    return run_cli(
        "finetune",
        "--kws",
        "--model",
        model or m,
        "--data-root",
        root,
        "--shots",
        "1",
        "--seeds",
        "1",
        "--set",
        "epochs=1",
        "--set",
        "baseline=false",
        "--quiet",
        *flags,
        env={"EDGETP_HOME": str(home)},
    )


def test_pretrain_records_its_speakers(setup):
    from edgetp.model import load_model

    rec = load_model(setup[2]).recipe
    assert rec["pretrain_speakers"] == ["11111111", "22222222"] and rec["held_out_speaker"] == HELD


def test_finetune_refuses_a_seen_speaker(setup):
    r = _ft(setup, "--speaker", SEEN)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"speaker {SEEN} is in" in lines[0] and "pretraining set" in lines[0]
    assert "--allow-seen-speaker" in lines[0] and HELD in lines[0]


def test_allow_seen_speaker_runs_and_the_report_says_so(setup, tmp_path):
    out = tmp_path / "ft.json"
    r = _ft(setup, "--speaker", SEEN, "--set", "allow_seen_speaker=true", "--json", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["speaker"] == SEEN and d["seen_speaker"] is True and d["allow_seen_speaker"] is True
    assert "NOT held-out" in d["note"] and "NOT held-out" in r.stdout


def test_the_held_out_speaker_is_checked_and_reported(setup, tmp_path):
    out = tmp_path / "ft.json"
    r = _ft(setup, "--json", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["speaker"] == HELD and d["seen_speaker"] is False and "note" not in d


def test_a_model_without_the_record_is_checked_from_its_recipe(setup, tmp_path):
    root, _home, m = setup
    legacy = _legacy(m, tmp_path / "legacy.npz")  # recipe["data"] is this corpus
    r = _ft(setup, "--speaker", SEEN, model=legacy)
    assert r.returncode == 2 and "pretraining set (2 speakers)" in r.stderr, r.stderr
    assert _ft(setup, model=legacy).returncode == 0
    # its corpus is gone and another corpus is at hand: the split cannot be recomputed
    gone = _legacy(m, tmp_path / "gone.npz", data="/nonexistent/other-corpus")
    r = _ft(setup, "--speaker", SEEN, model=gone)
    assert r.returncode == 2 and "cannot tell which speakers" in r.stderr and "--allow-seen-speaker" in r.stderr
    r = _ft(
        setup, "--speaker", "22222222", "--set", "allow_seen_speaker=true", "--json", tmp_path / "g.json", model=gone
    )
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "g.json").read_text())
    assert d["seen_speaker"] is None and "could not be checked" in d["note"]
    assert _ft(setup, model=gone).returncode == 0  # the recipe's held-out speaker is still fine


def test_a_regenerated_corpus_of_the_same_name_counts_as_the_models(setup, tmp_path):
    from edgetp.kws.data import check_speaker, open_corpus, pretrain_speakers
    from edgetp.model import load_model

    root, _home, m = setup
    moved = load_model(_legacy(m, tmp_path / "moved.npz", data=f"/elsewhere/{root.name}"))
    corpus = open_corpus(root, "paper")
    assert pretrain_speakers(moved, corpus) == {"11111111", "22222222"}
    with pytest.raises(EdgetpError, match="pretraining set"):
        check_speaker(moved, corpus, "22222222")
    assert check_speaker(moved, corpus, HELD) == {"seen_speaker": False, "allow_seen_speaker": False}
    # a group of speakers (ids): refused when any of them was heard, named
    with pytest.raises(EdgetpError, match="speaker 11111111, 22222222 are in"):
        check_speaker(moved, corpus, [HELD, "11111111", "22222222"])
    assert check_speaker(moved, corpus, [HELD, "22222222"], True) == {
        "seen_speaker": True,
        "allow_seen_speaker": True,
        "seen_speakers": ["22222222"],
    }


def test_hil_refuses_a_seen_speaker(setup):
    root, home, m = setup
    r = run_cli(
        "hil", "--target", "host", "--model", m, "--data-root", root, "--speaker", SEEN, env={"EDGETP_HOME": str(home)}
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (
        len(r.stderr.strip().splitlines()) == 1 and "pretraining set" in r.stderr and "--allow-seen-speaker" in r.stderr
    )


@pytest.mark.needs("default-corpus")
def test_shipped_model_holds_out_its_voice_groups(monkeypatch, tmp_path):
    """The shipped kws-mcu records its pretraining speakers (the honest protocol): neither voice group
    is among them, so its test group is accepted and a pretraining speaker is refused. Without the
    record, the recipe's split (every train speaker but the held-out one) is recomputed, and it would
    have heard the other three test speakers: the record, not the recipe, says who was heard."""
    from edgetp.kws.data import check_speaker, model_corpus, pretrain_speakers
    from edgetp.kws.speakers import dev_group, test_group
    from edgetp.model import load_model

    model = load_model("kws-mcu")
    corpus, speaker = model_corpus(model, None, None)
    seen = pretrain_speakers(model, corpus)
    assert seen == set(model.recipe["pretrain_speakers"]) and len(seen) >= 10
    assert speaker == model.recipe["held_out_speaker"] and speaker in test_group()
    assert not seen & set(test_group() + dev_group())
    assert check_speaker(model, corpus, test_group())["seen_speaker"] is False
    with pytest.raises(EdgetpError, match="pretraining set"):
        check_speaker(model, corpus, sorted(seen)[0])
    model.recipe.pop("pretrain_speakers")
    # the model names its corpus (the real-mix corpus, which setup.sh does not make): where it is not made, it cannot
    # be told
    monkeypatch.setenv("EDGETP_HOME", str(tmp_path))
    assert model.recipe["data"] == "kws-realmix32s" and pretrain_speakers(model, corpus) is None
    # ... and from the offline corpus (which the real-mix corpus holds byte for byte) the recipe's split is recomputed
    model.recipe["data"] = corpus.root.name
    recomputed = pretrain_speakers(model, corpus)
    assert speaker not in recomputed and set(test_group()) - {speaker} <= recomputed - seen
