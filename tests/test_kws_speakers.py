"""The honest speaker protocol: pretraining / dev / test speakers and voice groups."""

import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from edgetp.kws import speakers as SP  # noqa: E402

TEST, DEV = SP.test_group(), SP.dev_group()
REGULAR = {
    "11111111": ("train", 3),
    "22222222": ("train", 3),
    "33333333": ("validation", 2),
    "44444444": ("testing", 2),
}


def test_voice_groups_are_disjoint_and_unlike_pretraining_voices():
    from edgetp.data import synth

    assert TEST[0] == synth.DEFAULT_SPEAKER and len(TEST) == 4 and len(DEV) == 6
    assert not set(TEST) & set(DEV)
    vs = synth.DISTINCT_VOICES
    assert {v[0] for v in vs}.isdisjoint(synth.REGULAR_LANGS)
    assert {v[1] for v in vs}.isdisjoint(synth.REGULAR_VARIANTS)
    test_var = {v[1] for v in vs[: synth.N_TEST_GROUP]}
    assert test_var.isdisjoint({v[1] for v in vs[synth.N_TEST_GROUP :]})  # dev never shares a test variant
    # ids are fixed by the voice, so the groups' ids are those plan_speakers gives
    plan = synth.plan_speakers(0, 1, len(vs), 10, seed=123)
    assert [s.id for s in plan] == TEST + DEV and all(s.split == "train" and s.reps == 10 for s in plan)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("proto")
    spk = dict(REGULAR, **{TEST[0]: ("train", 10), TEST[1]: ("train", 10), DEV[0]: ("train", 10)})
    make_corpus(root, speakers=spk)
    home = tmp_path_factory.mktemp("home")
    from conftest import run_cli

    model = home / "m.npz"
    r = run_cli(
        "pretrain",
        "--kws",
        "--data-root",
        root,
        "--net",
        "120-24r-36",
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


def test_roles_and_recorded_pretraining_speakers(setup):
    from edgetp.data.gsc import load_corpus
    from edgetp.model import load_model

    root, home, model = setup
    c = load_corpus(root)
    roles = SP.roles(c)
    assert roles.pretrain == ["11111111", "22222222"] and roles.test == sorted(TEST[:2]) and roles.dev == [DEV[0]]
    m = load_model(model)
    assert m.recipe["pretrain_speakers"] == ["11111111", "22222222"]
    assert m.recipe["test_speakers"] == TEST and m.recipe["dev_speakers"] == DEV and "--protocol" in m.recipe["command"]
    pre = SP.pretrain_indices(c, roles.pretrain)
    assert m.metrics["pretrain_utterances"] == len(pre)
    assert {c.utterances[i].speaker for i in pre} <= {"11111111", "22222222", ""}
    zs = SP.group_indices(c, TEST)
    assert len(zs) == 2 * 10 * 4 and {c.utterances[i].speaker for i in zs} == set(TEST[:2])


def test_finetune_defaults_to_the_test_group_mean_over_speakers_and_seeds(setup, cli):
    root, home, model = setup
    out = home / "ft.json"
    r = cli(
        "finetune",
        "--kws",
        "--model",
        model,
        "--data-root",
        root,
        "--seeds",
        "2",
        "--set",
        "epochs=1",
        "--set",
        "baseline=false",
        "--quiet",
        "--set",
        "rehearsal=1",
        "--json",
        out,
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    want = [s for s in TEST if s in (TEST[0], TEST[1])]
    assert d["speakers"] == want and d["seeds"] == 2 and d["runs"] == 4 and len(d["per_seed"]) == 4
    assert [(p["speaker"], p["seed"]) for p in d["per_seed"]] == [(s, k) for s in want for k in (0, 1)]
    vals = [p["query_acc_after"] for p in d["per_seed"]]
    assert d["query_acc_after"] == pytest.approx(statistics.fmean(vals))
    assert d["query_acc_after_std"] == pytest.approx(statistics.pstdev(vals))
    for s in want:
        mine = [p["query_acc_before"] for p in d["per_seed"] if p["speaker"] == s]
        assert d["per_speaker"][s]["query_acc_before"] == pytest.approx(statistics.fmean(mine))
    assert "2 speakers" in r.stdout
    # the dev group on request; an unknown group member is refused
    r = cli(
        "finetune",
        "--kws",
        "--model",
        model,
        "--data-root",
        root,
        "--speaker",
        "dev",
        "--seeds",
        "1",
        "--set",
        "epochs=1",
        "--set",
        "baseline=false",
        "--quiet",
        "--json",
        out,
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["speakers"] == [DEV[0]]


def test_rehearsal_and_calibration_draw_only_pretraining_speakers(setup):
    from edgetp.data.gsc import load_corpus
    from edgetp.kws.data import speaker_data
    from edgetp.kws.fixed_protocol import calibration
    from edgetp.kws.protocol import model_norm
    from edgetp.model import load_model

    root, home, model = setup
    c, m = load_corpus(root), load_model(model)
    d = speaker_data(
        c, TEST[0], 1, 0, model_norm(m), home / "cache", rehearsal=3, pretrain_speakers=m.recipe["pretrain_speakers"]
    )
    assert d.n_rehearsal > 0
    assert {c.utterances[i].speaker for i in d.rehearsal_idx} <= {"11111111", "22222222", ""}
    # without the record the old rule holds: any train speaker but the held-out one (here: other groups too)
    d2 = speaker_data(c, TEST[0], 1, 0, model_norm(m), home / "cache", rehearsal=3)
    assert {c.utterances[i].speaker for i in d2.rehearsal_idx} - {"11111111", "22222222", ""}
    x = calibration(m, c, TEST[0], home / "cache")
    assert len(x) == min(256, len(SP.pretrain_indices(c, m.recipe["pretrain_speakers"])))
    assert np.all(np.isfinite(x))
