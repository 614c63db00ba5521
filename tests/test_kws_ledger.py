"""The test group's discipline: every run on it is a line of the model's test ledger, the card counts the lines of
the model's weights, and the development and test rows measure forgetting on disjoint sets of other speakers."""

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from conftest import ROOT  # noqa: E402
from edgetp.kws import speakers as SP  # noqa: E402

TEST, DEV = SP.test_group(), SP.dev_group()
SPEAKERS = {
    "11111111": ("train", 3),
    "22222222": ("train", 3),
    "33333333": ("validation", 2),
    "55555555": ("validation", 2),
    "44444444": ("testing", 2),
    TEST[0]: ("train", 10),
    DEV[0]: ("train", 10),
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from conftest import run_cli

    root, home = tmp_path_factory.mktemp("corpus"), tmp_path_factory.mktemp("home")
    make_corpus(root, speakers=SPEAKERS)
    model = home / "m.npz"
    r = run_cli(
        "pretrain",
        "--kws",
        "--data-root",
        root,
        "--net",
        "120-16r-36",
        "--epochs",
        "1",
        "--batch",
        "4",
        "--protocol",
        "--out",
        model,
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    return root, home, model


def _ft(cli, setup, speaker, *extra, json_out=None):
    root, home, model = setup
    args = [
        "finetune",
        "--kws",
        "--model",
        model,
        "--data-root",
        root,
        "--speaker",
        speaker,
        "--shots",
        "1",
        "--seeds",
        "1",
        "--set",
        "epochs=1",
        "--set",
        "baseline=false",
        "--quiet",
        *extra,
    ]
    # EDGETP_TEST_LEDGER empty: the ledger beside the model file (conftest points it outside the repository)
    return cli(
        *args, *(["--json", json_out] if json_out else []), env={"EDGETP_HOME": str(home), "EDGETP_TEST_LEDGER": ""}
    )


def test_dev_and_test_rows_measure_forgetting_on_disjoint_other_speakers(setup, cli, tmp_path):
    dev, test = tmp_path / "dev.json", tmp_path / "test.json"
    assert _ft(cli, setup, "dev", json_out=dev).returncode == 0
    assert _ft(cli, setup, "test", json_out=test).returncode == 0
    d, t = json.loads(dev.read_text())["others"], json.loads(test.read_text())["others"]
    assert (d["split"], d["speakers"]) == ("validation", ["33333333", "55555555"])
    assert (t["split"], t["speakers"]) == ("testing", ["44444444"])
    assert not set(d["speakers"]) & set(t["speakers"])
    assert d["utterances"] == 2 * 2 * 4 and t["utterances"] == 2 * 4  # every utterance of those speakers, 4 words
    # explicit ids of the development group are development rows too
    ids = tmp_path / "ids.json"
    assert _ft(cli, setup, DEV[0], json_out=ids).returncode == 0
    assert json.loads(ids.read_text())["others"]["split"] == "validation"


@pytest.mark.parametrize(
    "speaker, flags, expect",
    [
        ("dev", ["--set", "others=testing"], "others testing with development-group speakers"),
        ("test", ["--set", "others=validation"], "others validation with test-group speakers"),
        ("test", ["--set", "others=everyone"], "others must be one of validation, testing"),
        (f"{TEST[0]},{DEV[0]}", [], "mix the development and test voice groups"),
    ],
)
def test_others_that_would_cross_the_groups_are_refused_in_one_line(setup, cli, speaker, flags, expect):
    r = _ft(cli, setup, speaker, *flags)
    assert r.returncode == 2 and expect in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_others_of_a_model_without_voice_groups():
    from edgetp.model import Model

    m = Model(cfg=None, params=None, labels=[], recipe={"held_out_speaker": "0a1b2c3d"})
    assert SP.others_split(m, ["0a1b2c3d"]) == "testing"
    assert SP.others_split(m, ["0a1b2c3d"], "validation") == "validation"


def test_no_test_run_writes_a_shipped_ledger():
    import os

    assert os.environ["EDGETP_TEST_LEDGER"] and ROOT not in Path(os.environ["EDGETP_TEST_LEDGER"]).parents


def test_a_test_group_run_appends_its_line_and_a_dev_run_none(setup, cli, tmp_path):
    from edgetp.kws.ledger import ledger_path, read
    from edgetp.model import load_model

    root, home, model = setup
    book = ledger_path(model)
    assert book == model.with_name("m.test-ledger.jsonl")
    before = len(read(book))
    out = tmp_path / "t.json"
    r = _ft(cli, setup, "test", json_out=out)
    assert r.returncode == 0, r.stderr
    lines = read(book)
    assert len(lines) == before + 1 and "test ledger: measurement" in r.stdout
    e, d, m = lines[-1], json.loads(out.read_text()), load_model(model)
    assert (e["model_hash"], e["weights_hash"]) == (m.hash(), m.weights_hash())
    assert (e["query_before"], e["query_after"], e["others_before"], e["others_after"]) == (
        d["query_acc_before"],
        d["query_acc_after"],
        d["test_acc_before"],
        d["test_acc_after"],
    )
    assert (e["speakers"], e["seeds"], e["shots"], e["others"], e["recipe"]) == (
        [TEST[0]],
        1,
        1,
        "testing",
        d["recipe"],
    )
    assert e["command"].startswith("edgetp finetune --kws --model ") and "--speaker test" in e["command"]
    assert str(Path.home()) not in e["command"] and not e.get("backfilled") and e["date"].endswith("Z")
    assert _ft(cli, setup, "dev").returncode == 0
    assert len(read(book)) == before + 1


def test_a_malformed_ledger_is_one_line_before_the_run(setup, cli, tmp_path):
    root, home, model = setup
    bad = tmp_path / "bad.jsonl"
    from conftest import run_cli

    for text, why in (
        ('{"date": "2026"\n', "JSON"),
        ('{"date": "x"}\n', "missing model_hash"),
        ("[1, 2]\n", "missing date"),
        (json.dumps(dict(GOOD, query_after="high")) + "\n", "bad query_after"),
        (json.dumps(dict(GOOD, recipe={"epochs": 3})) + "\n", "bad recipe lr"),
    ):
        bad.write_text(text)
        r = run_cli(
            "finetune",
            "--kws",
            "--model",
            model,
            "--data-root",
            root,
            "--speaker",
            "test",
            "--shots",
            "1",
            "--seeds",
            "1",
            "--set",
            "epochs=1",
            "--set",
            "baseline=false",
            env={"EDGETP_HOME": str(home), "EDGETP_TEST_LEDGER": str(bad)},
        )
        assert r.returncode == 2 and f"{bad}:1: not a test-ledger line" in r.stderr and why in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and "seed 0" not in r.stdout  # refused before any fine-tuning


GOOD = {
    "date": "2026-01-01T00:00:00Z",
    "model_hash": "0" * 64,
    "speakers": [],
    "seeds": 1,
    "shots": 5,
    "recipe": {"epochs": 3, "lr": 1e-4, "optimizer": "adam", "batch": 1, "targets": "classes", "train": "all"},
    "query_before": 1.0,
    "query_after": 2.0,
    "others_before": 3.0,
    "others_after": 4.0,
}


def _entry(model, **kw):
    e = {
        "date": "2026-01-01T00:00:00Z",
        "model_hash": model.hash(),
        "weights_hash": model.weights_hash(),
        "recipe": {"epochs": 3, "lr": 1e-4, "optimizer": "adam", "batch": 1, "targets": "classes", "train": "all"},
        "speakers": TEST,
        "seeds": 3,
        "runs": 12,
        "shots": 5,
        "query_before": 50.0,
        "query_after": 80.0,
        "others_before": 70.0,
        "others_after": 65.0,
    }
    return dict(e, **kw)


def test_the_card_counts_the_lines_of_this_models_weights(tmp_path):
    from edgetp.kws.card import main, render
    from edgetp.kws.ledger import NAME
    from edgetp.model import load_model, relabel, save_model

    d = tmp_path / "kws-mcu-64k"
    shutil.copytree(ROOT / "models" / "kws-mcu-64k", d, ignore=shutil.ignore_patterns("README.md", "*.jsonl"))
    m = load_model(d / "model.npz")
    assert "Test ledger" in render(d) and "has not been measured" in render(d)
    other = replace(m, params=m.params.copy())
    other.params.W[-1][0, 0] += 1.0  # other weights
    resaved = replace(m, recipe=dict(m.recipe, finetune={"optimizer": "sgd"}))  # same weights, other settings
    relabelled = relabel(m, "a planted relabelling")
    lines = [
        _entry(m, query_after=81.5, backfilled=True),
        _entry(other, query_after=12.5),
        _entry(resaved, weights_hash=resaved.weights_hash(), query_after=83.5),
        _entry(m, recipe=dict(_entry(m)["recipe"], epochs=0), query_after=50.0),
    ]
    (d / "results" / NAME).write_text("".join(json.dumps(e) + "\n" for e in lines))
    save_model(relabelled, d / "model.npz")  # the card's model is the relabelled file: m's hash is in its hashes()
    text = render(d)
    assert "measured **3 times** for these weights (2 fine-tuning runs, 1 zero-shot only; 1 backfilled" in text
    assert "query 50.0 → 81.5" in text and "query 50.0 → 83.5" in text and "12.5" not in text
    assert "1 further line measured other weights" in text
    # a malformed line: the card renderer says where, in one line
    with open(d / "results" / NAME, "a") as f:
        f.write("not json\n")
    from edgetp.errors import EdgetpError

    with pytest.raises(EdgetpError, match=r"test-ledger.jsonl:5: not a test-ledger line"):
        render(d)
    assert main([str(d)]) == 2


def test_a_model_folder_this_user_cannot_write_keeps_its_ledger_in_the_data_home(tmp_path, monkeypatch):
    """An installed package's folder (site-packages, not writable for the user): the run's ledger line goes to
    $EDGETP_HOME/test-ledgers/<folder>.test-ledger.jsonl instead of failing the main job. (As root every folder
    is writable, so the permission answer is planted.)"""
    import os

    from edgetp.kws import ledger
    from edgetp.model import MODELS_DIR, load_model

    model = load_model("kws-mcu")
    monkeypatch.delenv(ledger.ENV, raising=False)
    monkeypatch.setenv("EDGETP_HOME", str(tmp_path))
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == MODELS_DIR / "kws-mcu" / "results" else real(p, mode)
    )
    path = ledger.opened("kws-mcu", model, model.recipe["test_speakers"][:1])
    assert path == tmp_path / "test-ledgers" / f"kws-mcu.{ledger.NAME}" and path.is_file()
    monkeypatch.setattr(os, "access", real)
    assert (
        ledger.opened("kws-mcu", model, model.recipe["test_speakers"][:1])
        == MODELS_DIR / "kws-mcu" / "results" / ledger.NAME
    )
