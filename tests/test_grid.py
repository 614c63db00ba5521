"""The speaker x seed grid on Ray (edgetp.kws.grid, `finetune --workers / --ray`): the same figures as the
serial run, bit for bit; a failed cell is reported and the others finish; bad options get one line."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))
from tone_corpus import make_corpus  # noqa: E402

from conftest import require, run_cli  # noqa: E402
from edgetp.errors import EdgetpError  # noqa: E402

SPEAKERS = {
    "aaaa0001": ("train", 6),
    "bbbb0002": ("train", 6),
    "cccc0003": ("train", 6),
    "11111111": ("train", 3),
    "22222222": ("train", 3),
    "44444444": ("testing", 2),
}
HELD = ["aaaa0001", "bbbb0002", "cccc0003"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    require("ray")
    root = tmp_path_factory.mktemp("tones")
    make_corpus(root, speakers=SPEAKERS)
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
        "aaaa0001",
        "--out",
        model,
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    return root, home, model


@pytest.fixture(scope="module")
def local_ray():
    """One local 2-CPU Ray for the module (starting one costs seconds)."""
    require("ray")
    import ray
    from edgetp.kws.grid import start_ray

    start_ray(2, None)
    yield ray
    ray.shutdown()


def _grid(setup, fixed, workers=None, rehearsal=0.0, frontend="float", model=None):
    from edgetp.kws.data import corpus_for
    from edgetp.kws.grid import GridJob, run_grid
    from edgetp.kws.train import Recipe
    from edgetp.model import load_model

    root, home, m = setup
    model = load_model(model or m)
    corpus = corpus_for(model, root)
    recipe = Recipe(
        epochs=2,
        lr=1e-3,
        optimizer="adam",
        batch=1,
        targets="classes",
        rehearsal=rehearsal,
        shift=2,
        noise=0.1 if not fixed else 0.0,
    )
    if model.recipe.get("fixed"):  # a shipped device model: its own learning setup
        recipe = Recipe(epochs=1, lr=2e-4, optimizer="colnorm", train="readout", update_every=2)
    job = GridJob(model, corpus, 1, recipe, fixed, baseline=True, frontend=frontend)
    return run_grid(job, HELD, 2, workers=workers, progress=False)


def _figures(r):
    return {k: v for k, v in r.items() if k != "seconds"}


# the integer frontend's normalisation needs a model whose input scale it can hold: the shipped kws-mcu's
@pytest.mark.parametrize(
    "fixed, frontend, model",
    [(False, "float", None), (True, "float", None), (True, "fixed", "kws-mcu")],
    ids=["float", "integer", "integer-frontend"],
)
def test_ray_grid_equals_the_serial_run_bit_for_bit(setup, local_ray, fixed, frontend, model, monkeypatch):
    monkeypatch.setenv("EDGETP_HOME", str(setup[1]))
    reh = 1.0 if not fixed else 0.0  # the device keeps no rehearsal utterances
    serial = _grid(setup, fixed, rehearsal=reh, frontend=frontend, model=model)
    ray = _grid(setup, fixed, workers=2, rehearsal=reh, frontend=frontend, model=model)
    assert not serial.failed and not ray.failed and ray.workers == 2
    assert [(r["speaker"], r["seed"]) for r in ray.per_seed] == [(s, k) for s in HELD for k in range(2)]
    assert [_figures(r) for r in ray.per_seed] == [_figures(r) for r in serial.per_seed]
    # the figures are not all alike: the comparison could tell two cells apart
    assert len({json.dumps(_figures(r), sort_keys=True) for r in serial.per_seed}) == len(serial.per_seed)
    assert ray.overhead["feature_table_mb"] > 0


def test_the_comparison_sees_a_cell_seeded_by_its_place(setup, local_ray, monkeypatch):
    """Test the tester: a cell seeded by its position in the run (not its coordinates) gives other figures."""
    from edgetp.kws import grid as G

    monkeypatch.setenv("EDGETP_HOME", str(setup[1]))
    serial = _grid(setup, False)
    real_cells = G.cells
    monkeypatch.setattr(
        G, "cells", lambda speakers, seeds: [G.Cell(c.speaker, k) for k, c in enumerate(real_cells(speakers, seeds))]
    )
    shifted = _grid(setup, False)
    assert [_figures(r) for r in shifted.per_seed] != [_figures(r) for r in serial.per_seed]


def test_the_feature_table_is_strict(setup):
    from edgetp.kws.data import corpus_for
    from edgetp.kws.grid import FeatureTable
    from edgetp.model import load_model

    corpus = corpus_for(load_model(setup[2]), setup[0])
    from edgetp.data.cache import FLOAT, Frontend

    t = FeatureTable([0, 2], np.arange(2 * 101 * 120, dtype=np.float32).reshape(2, 101, 120), FLOAT)
    assert (t.take(corpus, [2, 0, 2], FLOAT)[0] == t.rows[1]).all()
    with pytest.raises(EdgetpError, match="lacks 1 utterances"):
        t.take(corpus, [0, 1], FLOAT)
    with pytest.raises(EdgetpError, match="not the fixed frontend's"):
        t.take(corpus, [0], Frontend("fixed"))


def test_a_failed_cell_is_reported_and_the_others_finish(setup, local_ray, tmp_path):
    """A cell that cannot run (a speaker with too few utterances for 3 shots) fails alone: the command writes the
    figures of the other cells, names the failed one with its error, and exits 1."""
    root, home, m = setup
    out = tmp_path / "g.json"
    r = run_cli(
        "finetune",
        "--kws",
        "--model",
        m,
        "--data-root",
        root,
        "--speaker",
        "aaaa0001,22222222",
        "--set",
        "allow_seen_speaker=true",
        "--shots",
        "3",
        "--seeds",
        "1",
        "--set",
        "epochs=1",
        "--set",
        "baseline=false",
        "--quiet",
        "--set",
        "workers=2",
        "--json",
        out,
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "FAILED cell 22222222 seed 0: EdgetpError:" in r.stderr, r.stderr
    d = json.loads(out.read_text())
    assert d["runs"] == 1 and d["grid"]["cells"] == 2 and d["failed_cells"][0]["speaker"] == "22222222"
    assert d["per_seed"][0]["speaker"] == "aaaa0001"


@pytest.mark.parametrize(
    "flags, msg",
    [
        (["--set", "workers=0"], "workers must be >= 1"),
        (["--set", "ray=ray://127.0.0.1:1"], "could not start the Ray cluster at"),
    ],
)
def test_bad_grid_options_get_one_line(setup, flags, msg):
    root, home, m = setup
    r = run_cli(
        "finetune",
        "--kws",
        "--model",
        m,
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
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr, r.stderr


def test_sweep_trials_equal_serial_runs_and_every_trial_is_written(setup, tmp_path):
    """`edgetp sweep`: each trial's figures are a serial `finetune` run of its recipe, every trial is in the JSON,
    ASHA leaves each trial at least its grace cells, and the best completed trial is named."""
    root, home, m = setup
    env = {"EDGETP_HOME": str(home)}
    out = tmp_path / "sweep.json"
    common = ["--kws", "--model", m, "--data-root", root, "--speaker", ",".join(HELD[1:]), "--allow-seen-speaker"]
    r = run_cli(
        "sweep",
        *common,
        "--space",
        "lr=1e-3,1e-2",
        "--space",
        "epochs=1,2",
        "--shots",
        "1",
        "--grace",
        "1",
        "--workers",
        "2",
        "--json",
        out,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert len(d["trials"]) == 4 and d["scheduler"] == "asha" and d["cells_per_trial"] == 2
    assert sorted((t["config"]["lr"], t["config"]["epochs"]) for t in d["trials"]) == [
        (1e-3, 1),
        (1e-3, 2),
        (1e-2, 1),
        (1e-2, 2),
    ]
    assert all(t["cells"] >= 1 and "error" not in t for t in d["trials"]) and d["best"]["cells"] == 2
    full = [t for t in d["trials"] if t["cells"] == 2]
    t = full[0]
    ft = tmp_path / "ft.json"
    r = run_cli(
        "finetune",
        *common[:-1],
        "--shots",
        "1",
        "--seeds",
        "1",
        "--set",
        "allow_seen_speaker=true",
        "--set",
        "baseline=false",
        "--quiet",
        "--set",
        f"lr={t['config']['lr']}",
        "--set",
        f"epochs={t['config']['epochs']}",
        "--json",
        ft,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    f = json.loads(ft.read_text())
    assert f["query_acc_after"] == t["query_acc_after"] and f["forgetting"] == pytest.approx(t["forgetting"], abs=1e-9)


def test_sweep_refuses_the_test_group_and_bad_spaces(setup, tmp_path):
    from edgetp.model import load_model, relabel, save_model

    root, home, m = setup
    marked = tmp_path / "marked.npz"
    save_model(relabel(load_model(m), "a test", test_speakers=["bbbb0002"]), marked)
    env = {"EDGETP_HOME": str(home)}
    base = ["sweep", "--kws", "--data-root", root, "--json", tmp_path / "s.json", "--allow-seen-speaker"]
    for flags, msg in [
        (["--model", marked, "--speaker", "bbbb0002,cccc0003", "--space", "lr=1e-3"], "is in the model's test group"),
        (["--model", marked, "--speaker", "test", "--space", "lr=1e-3"], "never used for choosing"),
        (["--model", m, "--speaker", "bbbb0002", "--space", "colour=red"], "not a recipe field"),
        (["--model", m, "--speaker", "bbbb0002", "--space", "epochs=two"], "takes int values"),
        (["--model", m, "--speaker", "bbbb0002", "--space", "optimizer=adam,nadam"], "--space"),
        (["--model", m, "--speaker", "bbbb0002"], "give at least one --space"),
    ]:
        r = run_cli(*base, *flags, env=env, timeout=120)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (flags, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr, (flags, r.stderr)
    assert not (tmp_path / "s.json").exists()


def test_bench_grid_prints_both_runs_the_ratio_and_identical_figures(setup, tmp_path):
    root, home, m = setup
    out = tmp_path / "b.json"
    r = run_cli(
        "bench",
        "grid",
        "--model",
        m,
        "--data-root",
        root,
        "--speaker",
        ",".join(HELD),
        "--seeds",
        "1",
        "--shots",
        "1",
        "--workers",
        "2",
        "--json",
        out,
        env={"EDGETP_HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "serial, one process (baseline" in lines[0] and "Ray, 2 CPUs" in lines[1] and "x Ray / serial" in lines[2]
    assert "alone" in lines[3] and "identical, bit for bit over 3 cells" in lines[4]
    d = json.loads(out.read_text())
    assert d["identical"] is True and d["ratio"] == pytest.approx(d["serial_s"] / d["ray_s"]) and d["cells"] == 3
