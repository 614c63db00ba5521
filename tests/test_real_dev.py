"""`edgetp real-dev` and the model card's "Real speech (development figures)" section: the figures are measured
through the finetune grid on a real folder's development view, the speakers that trained a model are left out,
and the card renders the file, refusing a broken one and flagging one measured on another model."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from conftest import ROOT, run_cli  # noqa: E402
from edgetp.data.real import CORE  # noqa: E402
from edgetp.errors import EdgetpError  # noqa: E402
from edgetp.kws.card import real_lines
from edgetp.kws.real_dev import NAME, measure  # noqa: E402
from edgetp.cli.finetune import recorded_recipe  # noqa: E402

ADAPT = "aaaa0001"
OTHERS = [f"{k:08x}" for k in range(0x10, 0x10 + 12)]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A GSC-layout folder as the real development set is laid out (one adaptation speaker with 4 clips of each
    core word, 12 others with two clips each; no lists), and an untrained 120-8r model of its labels."""
    from edgetp.data.gsc import load_corpus
    from edgetp.model import Model, save_model
    from edgetp.tp.config import NetConfig, init_params

    root = tmp_path_factory.mktemp("real")
    spk = {ADAPT: ("train", {w: 4 for w in CORE})}
    spk.update({s: ("train", {CORE[k % 10]: 1, "learn": 1}) for k, s in enumerate(OTHERS)})
    make_corpus(root, words=CORE + ("learn",), speakers=spk, seed=3)
    for f in ("validation_list.txt", "testing_list.txt"):
        (root / f).unlink()
    shutil.rmtree(root / "_background_noise_")
    labels = list(load_corpus(root).label_names)
    cfg = NetConfig(120, (8,), len(labels), recurrent=True)
    model = Model(
        cfg,
        init_params(cfg, 0),
        labels,
        recipe={"finetune": {"epochs": 1, "rehearsal": 2.0}},
        norm_scale=np.ones(120, np.float32),
    )
    save_model(model, root.parent / "m.npz")
    return root, root.parent / "m.npz"


def test_measures_zero_shot_and_personalisation_through_the_grid(real, tmp_path):
    from edgetp.model import load_model

    root, m = real
    model = load_model(m)
    out = measure(
        model, root, tmp_path / "view", False, recorded_recipe(model), shots=(1, 5), seeds=2, say=lambda s: None
    )
    z = out["zero_shot"]
    assert z["clips"] == 40 + 24 and z["speakers"] == 13 and z["core_clips"] == 40 + 12
    assert 0 <= z["top1"] <= 100 and set(z["per_speaker"]) == {ADAPT, *OTHERS}
    one, five = out["personalisation"]
    assert one["speakers"] == [ADAPT] and one["runs"] == 2 and one["others"]["split"] == "testing"
    assert set(one["others"]["speakers"]) < set(OTHERS)  # the choose part, never the adaptation speaker
    assert "at most 3 clips of a word" in five["error"]  # 4 clips: a support pool of 3
    # the recorded recipe, but no rehearsal: the real view holds none of the model's pretraining speakers
    assert out["recipe"]["epochs"] == 1 and out["recipe"]["rehearsal"] == 0 and "rehearsal 2" in out["recipe_note"]
    assert out["data"]["excluded_speakers"] == [] and out["model_hash"] == model.hash()
    # a model trained on real speakers: they are left out of zero-shot, and a view whose "others" it trained on
    # is refused
    parts = json.loads((tmp_path / "view" / "real_dev_info.json").read_text())["speakers"]
    model.recipe["real_speakers"] = {"pretrain": parts["pretrain"][:2], "choose": parts["choose"], "adapt": [ADAPT]}
    out = measure(
        model, root, tmp_path / "view", False, recorded_recipe(model), shots=(1,), seeds=1, say=lambda s: None
    )
    assert out["data"]["excluded_speakers"] == sorted(parts["pretrain"][:2])
    assert out["zero_shot"]["clips"] == 64 - 4 and not set(parts["pretrain"][:2]) & set(out["zero_shot"]["per_speaker"])
    model.recipe["pretrain_speakers"] = parts["choose"][:1]
    with pytest.raises(EdgetpError, match="choose part"):
        measure(model, root, tmp_path / "view", False, recorded_recipe(model), shots=(1,), seeds=1, say=lambda s: None)


def test_bad_input_is_one_line(real, tmp_path):
    root, m = real
    r = run_cli("real-dev", "--model", m, "--real", tmp_path / "missing", "--json", tmp_path / "o.json")
    assert r.returncode == 2 and "--real" in r.stderr and "not a folder" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(
        "real-dev", "--model", m, "--fixed", "--real", root, "--view", tmp_path / "v", "--json", tmp_path / "o.json"
    )
    assert r.returncode == 2 and 'recipe["fixed"]' in r.stderr and "Traceback" not in r.stderr
    r = run_cli("real-dev", "--model", m, "--real", root, "--shots", "0", "--json", tmp_path / "o.json")
    assert r.returncode == 2 and "--shots" in r.stderr


def _planted(model_hash: str) -> dict:
    """A results file as edgetp real-dev writes it, with planted figures."""
    p = {
        "shots": 3,
        "speakers": ["a", "b"],
        "runs": 6,
        "query_acc_before": 21.25,
        "query_acc_before_std": 3.0,
        "query_acc_after": 61.94,
        "query_acc_after_std": 12.5,
        "test_acc_before": 30.7,
        "test_acc_after": 43.21,
        "others": {"split": "testing", "utterances": 440, "speakers": ["c"] * 30},
    }
    return {
        "model_hash": model_hash,
        "fixed": False,
        "command": "edgetp real-dev --model x --real R --json F",
        "data": {"real": {"name": "gsc-real-dev"}, "clips": 1680, "speakers": 103, "excluded_speakers": []},
        "zero_shot": {"clips": 1680, "speakers": 103, "top1": 27.14, "core_clips": 1439, "core_top1": 28.06},
        "recipe": {
            "epochs": 9,
            "lr": 2e-4,
            "optimizer": "adam",
            "batch": 8,
            "targets": "classes",
            "train": "all",
            "rehearsal": 0.0,
        },
        "recipe_note": "rehearsal 2 of the recorded recipe set to 0",
        "seeds": 3,
        "personalisation": [dict(p, shots=1), p, {"shots": 5, "error": "at most 4 clips of a word"}],
    }


def test_the_card_renders_the_file_and_refuses_a_broken_one(tmp_path):
    from edgetp.kws.card import render, result_rows
    from edgetp.model import load_model

    d = tmp_path / "kws-paper"
    shutil.copytree(ROOT / "models" / "kws-paper", d, ignore=shutil.ignore_patterns("README.md", NAME))
    h = load_model(d / "model.npz").hash()
    rows = len(result_rows(d))
    (d / "results" / NAME).write_text(json.dumps(_planted(h)))
    text = render(d)
    assert len(result_rows(d)) == rows  # its own section, not an adaptation row
    assert "## Real speech (development figures)" in text and "re-run" not in text.split("## Real speech")[1]
    assert "| zero-shot top-1, all words | 1,680 clips, 103 speakers | 27.1 % | |" in text
    assert "| zero-shot top-1, ten core words | 1,439 clips | 28.1 % | |" in text
    assert (
        "| 3-shot personalisation, query (the speaker's held-out clips) | 2 speakers × 3 seeds | 21.2 ± 3.0 % | "
        "61.9 ± 12.5 % |" in text
    )
    assert "| 3-shot, other real speakers (choose part) | 440 clips, 30 speakers | 30.7 % | 43.2 % |" in text
    assert "| 5-shot personalisation | not measurable: at most 4 clips of a word | | |" in text
    assert "**Development figures**" in text and "measured outside the project" in text and "≥ 88 %" in text
    assert "edgetp real-dev --model x --real R --json F" in text and "rehearsal 2 of the recorded recipe" in text
    # a file measured on another model is flagged, like an adaptation row
    (d / "results" / NAME).write_text(json.dumps(_planted("0" * 64)))
    assert "**Measured on another model: re-run.**" in render(d)
    # a NaN or a missing figure: an EdgetpError naming the file and the field, never 'nan' in a card
    bad = _planted(h)
    bad["personalisation"][1]["query_acc_after"] = math.nan
    (d / "results" / NAME).write_text(json.dumps(bad))
    with pytest.raises(EdgetpError, match=r"real-dev.json: personalisation\[3 shots\].query_acc_after is nan"):
        render(d)
    bad = _planted(h)
    del bad["zero_shot"]["core_top1"]
    with pytest.raises(EdgetpError, match="zero_shot.core_top1 is None"):
        real_lines(d / "results" / NAME, bad, [h])
    del bad["zero_shot"]
    (d / "results" / NAME).write_text(json.dumps(bad))
    r = subprocess.run(
        [sys.executable, "-m", "edgetp.kws.card", "--check", str(d)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 2 and "no 'zero_shot'" in r.stderr and "Traceback" not in r.stderr
