"""The model cards are rendered from the model folders (model file, results JSON, the memory
plan, device measurements, purpose/notes text): the committed cards are what the renderer
writes today, and a new or changed file shows up in the card."""

import json
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT
from edgetp.kws.card import render

MODEL_DIRS = sorted(p.parent for p in (ROOT / "models").glob("*/model.npz"))


@pytest.mark.parametrize("d", MODEL_DIRS, ids=lambda p: p.name)
def test_committed_card_is_the_rendered_one(d):
    """The committed card is what the renderer writes today, from the test-ledger lines it says it counted (the
    ledger is append-only: a user's run of the main job adds a line after them, and the card stays valid)."""
    from edgetp.kws.card import LEDGER_LINES
    from edgetp.kws.ledger import NAME, read

    committed = (d / "README.md").read_text()
    upto = LEDGER_LINES.search(committed)
    upto = int(upto.group(1)) if upto else None
    assert upto is None or upto <= len(read(d / "results" / NAME))
    text = render(d, ledger_upto=upto)
    assert committed == text, f"{d.name}/README.md is stale: python3 -m edgetp.kws.card models/{d.name}"
    assert "nan" not in text.replace("finetune", "")


def test_cards_follow_their_files(tmp_path):
    src = ROOT / "models" / "kws-mcu"
    d = tmp_path / "kws-mcu"
    shutil.copytree(src, d, ignore=shutil.ignore_patterns("README.md"))
    before = render(d)
    ram = re.search(r"RAM [\d,]+ B", before).group(0)  # the memory plan's figure, computed, not written in
    assert ram not in (ROOT / "edgetp" / "kws" / "card.py").read_text()
    # a new results file is a new row, in its place (setting, then 1 / 5 / all shots); planted figures,
    # so that the expected row does not depend on the shipped model's results
    rec = {"epochs": 3, "lr": 7e-7, "optimizer": "adam", "batch": 1, "targets": "classes", "train": "all"}
    r = {
        "shots": 5,
        "recipe": rec,
        "query_acc_before": 21.94,
        "query_acc_before_std": 1.75,
        "query_acc_after": 12.345,
        "query_acc_after_std": 2.3,
        "test_acc_before": 65.5,
        "test_acc_before_std": 0.0,
        "test_acc_after": 34.8,
        "test_acc_after_std": 0.24,
        "finetune_only_acc": 51.9,
        "finetune_only_acc_std": 2.9,
    }
    (d / "results").mkdir(exist_ok=True)
    (d / "results" / "zz-new-5.json").write_text(json.dumps(r))
    after = render(d)
    new = [x for x in after.splitlines() if x not in before.splitlines()]
    assert new == [
        "| TP, all layers, class targets, batch 1, adam lr 7e-07, 3 ep. | 5 | 21.9 ± 1.8 | 12.3 ± 2.3 | "
        "65.5 ± 0.0 | 34.8 ± 0.2 | 51.9 ± 2.9 |"
    ]
    # a test-group file is marked as such, with the other speakers it measured (a file without the record: the
    # testing list, which every run used before the record existed)
    (d / "results" / "test-zz-5.json").write_text(json.dumps(r))
    assert "| **test** speakers (reported; see the test ledger), others = testing list: TP, all layers" in render(d)
    (d / "results" / "dev-zz-5.json").write_text(json.dumps(dict(r, others={"split": "validation"})))
    assert "| **dev** speakers (used for choosing), others = validation list: TP, all layers" in render(d)
    (d / "results" / "test-zz-5.json").unlink()
    (d / "results" / "dev-zz-5.json").unlink()
    # a rule that learns on every k-th frame says so
    (d / "results" / "zz-k-5.json").write_text(json.dumps(dict(r, recipe=dict(rec, update_every=3))))
    assert "adam lr 7e-07, 3 ep., learns every 3 frames | 5 | 21.9" in render(d)
    (d / "results" / "zz-k-5.json").unlink()
    # a row measured on another model file is flagged, one on this model is not
    from edgetp.model import load_model

    for h, flagged in ((load_model(d / "model.npz").hash(), False), ("0" * 64, True)):
        (d / "results" / "zz-new-5.json").write_text(json.dumps(dict(r, model_hash=h)))
        assert ("adam lr 7e-07, 3 ep. (measured on another model: re-run) | 5 | 21.9" in render(d)) is flagged
    (d / "results" / "zz-new-5.json").write_text(json.dumps(r))
    # notes and purpose are the folder's text
    (d / "notes.md").write_text("- a planted note\n")
    (d / "purpose.md").write_text("A planted purpose.\n")
    text = render(d)
    assert "\n## Notes\n\n- a planted note\n" in text and "\nA planted purpose.\n" in text
    # device figures: one sentence per hil JSON, flagged when measured on another integer model
    dev = sorted((d / "device").glob("*.json")) if (d / "device").is_dir() else []
    if dev:
        r = json.loads(dev[0].read_text())
        assert f"RAM {r['image']['ram']:,} B" in text and "re-measure" not in text
        r["model_hash"] = "0" * 64
        dev[0].write_text(json.dumps(r))
        assert "(measured on another integer model: re-measure)" in render(d)
    # without a recorded device quantization the card says so and gives the would-be plan
    from edgetp.model import load_model, save_model

    m = load_model(d / "model.npz")
    m.recipe.pop("fixed")
    save_model(m, d / "model.npz")
    assert "Float only (the model records no device quantization" in render(d)


def test_check_mode_names_a_stale_card(tmp_path):
    d = tmp_path / "kws-paper"
    shutil.copytree(ROOT / "models" / "kws-paper", d)
    run = lambda: subprocess.run(
        [sys.executable, "-m", "edgetp.kws.card", "--check", str(d)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert run().returncode == 0
    card = (d / "README.md").read_text()
    assert "| network |" in card
    (d / "README.md").write_text(card.replace("| network |", "| network (edited) |", 1))  # one planted change
    r = run()
    assert r.returncode == 1 and "README.md" in r.stderr


def test_the_card_names_the_corpus_a_model_was_pretrained_on(tmp_path):
    """A model pretrained on a synthetic corpus other than the offline one records its settings
    (recipe["corpus"], from synth_info.json) and its card gives the command that makes it."""
    from edgetp.cli.pretrain import corpus_params
    from edgetp.kws.card import corpus_command

    (tmp_path / "synth_info.json").write_text(
        json.dumps(
            {
                "complete": True,
                "params": {
                    "speakers": 48,
                    "reps": 3,
                    "distinct": 10,
                    "distinct_reps": 10,
                    "wide": 200,
                    "seed": 0,
                    "words": ["yes"],
                    "espeak_ng": "x",
                },
            }
        )
    )
    rec = {"corpus": corpus_params(tmp_path)}
    assert rec["corpus"] == {"speakers": 48, "reps": 3, "distinct": 10, "distinct_reps": 10, "wide": 200, "seed": 0}
    assert corpus_command(rec) == "edgetp data synth-kws CORPUS --distinct 10 --wide 200"
    # the offline corpus (the defaults), another corpus, or a broken info file: no command
    assert (
        corpus_command({"corpus": {"speakers": 48, "reps": 3, "distinct": 4, "distinct_reps": 10, "seed": 0}}) is None
    )
    assert corpus_params(tmp_path / "missing") is None
    (tmp_path / "synth_info.json").write_text("{not json")
    assert corpus_params(tmp_path) is None
    # the shipped on-device default records its corpus (the wide protocol corpus with real clips mixed in), and its
    # card says how to make it
    from edgetp.model import load_model

    m = load_model("kws-mcu")
    assert m.recipe["corpus"]["wide"] > 0 and m.recipe["corpus"]["distinct"] == 10
    card = (ROOT / "models" / "kws-mcu" / "README.md").read_text()
    assert (
        "edgetp data synth-kws BASE --distinct 10 --wide 200; edgetp data real-mix CORPUS --base BASE "
        "--real gsc-real-dev --noise gsc-real-noise --copies 32"
    ) in card and "--data-root CORPUS" in card


def test_a_derived_card_says_how_its_source_was_made():
    """A model derived in place from its own pretraining output shows that run's command; one derived from another
    model points to that model's card."""
    from edgetp.kws.card import _derived_lines

    src = {"model": "models/m/model.npz", "hash": "ab" * 32, "command": "edgetp pretrain --kws --net 120-8r-36"}
    assert _derived_lines({}, "m", None) == []
    own = _derived_lines({"derived_from": src}, "m", "edgetp data synth-kws CORPUS --wide 200")
    assert own[0].startswith("# the pretraining run (hash abababababab)")
    assert own[1] == "edgetp pretrain --kws --net 120-8r-36 --data-root CORPUS --out models/m/model.npz"
    other = _derived_lines({"derived_from": src}, "n", None)
    assert other == [
        "# first models/m/model.npz (hash abababababab), as its card says: this model is its weights "
        "with other settings"
    ]


def test_the_device_sentence_says_what_the_session_taught(tmp_path):
    """A HIL session's card sentence gives the device's query accuracy before and after (does the
    device learn?), and claims none when the JSON has no such figures."""
    import json

    from edgetp.kws.card import device_texts

    (tmp_path / "device").mkdir()
    run = {
        "samples": 105,
        "mismatches": 0,
        "target": "qemu",
        "model": "kws-mcu",
        "model_hash": "h",
        "shots": "1",
        "epochs": 3,
        "support": 35,
        "query": 70,
        "speaker": "6210c7b0",
        "query_acc_before": 57.142857,
        "query_acc_after": 77.142857,
    }
    (tmp_path / "device" / "hil.json").write_text(json.dumps(run))
    text = device_texts(tmp_path, "h")[0]
    assert "3 epoch(s)" in text and "query accuracy on the device 57.1 → 77.1 % over 70 utterances" in text
    (tmp_path / "device" / "hil.json").write_text(json.dumps({k: v for k, v in run.items() if "acc" not in k}))
    assert "query accuracy" not in device_texts(tmp_path, "h")[0]
    # a shorter session (the recipe's query_limit, e.g. the other boards' rows): its command says so
    (tmp_path / "device" / "hil.json").write_text(json.dumps({**run, "target": "qemu-rv32", "query_limit": 20}))
    text = device_texts(tmp_path, "h")[0]
    assert "`edgetp hil --target qemu-rv32 --model kws-mcu --shots 1 --set query_limit=20`" in text
    # a session that learned at another rate than the model records is flagged, one at the same is not
    (tmp_path / "device" / "hil.json").write_text(json.dumps({**run, "lr": 1e-4}))
    assert "(learned at lr 0.0001, the model records 5e-05: re-measure)" in device_texts(tmp_path, "h", 5e-5)[0]
    assert "re-measure" not in device_texts(tmp_path, "h", 1e-4)[0]
    assert "re-measure" in device_texts(tmp_path, "other", 1e-4)[0]


def test_a_run_appended_to_the_ledger_leaves_the_committed_card_valid(tmp_path):
    """After a user's run on the test group (one more ledger line) the committed card still passes the check
    above, and a fresh render counts the new line."""
    from edgetp.kws.card import LEDGER_LINES
    from edgetp.kws.ledger import NAME, read

    d = tmp_path / "kws-mcu"
    shutil.copytree(ROOT / "models" / "kws-mcu", d)
    card = (d / "README.md").read_text()
    n = int(LEDGER_LINES.search(card).group(1))
    lines = (d / "results" / NAME).read_text().splitlines()
    assert n <= len(lines) == len(read(d / "results" / NAME))  # more after a user's main job here
    lines = lines[:n]
    extra = dict(json.loads(lines[-1]), date="2030-01-01T00:00:00", query_after=12.5)
    (d / "results" / NAME).write_text("\n".join(lines + [json.dumps(extra)]) + "\n")
    assert render(d, ledger_upto=n) == card
    fresh = render(d)
    assert fresh != card and f"first {n + 1} lines" in fresh and "2030-01-01 00:00" in fresh
