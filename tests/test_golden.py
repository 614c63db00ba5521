"""The float reference replays the authors' golden trajectories within 1e-9."""

import json
import re
import shutil

import numpy as np
import pytest

from conftest import GOLDEN_DIR, SHARED_GOLDEN
from edgetp.tp.golden import TOLERANCE, load_golden, replay

GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.npz"))


def test_golden_files_shipped():
    assert len(GOLDEN_FILES) == 5


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.stem)
def test_replay_within_tolerance(path):
    g = load_golden(path)
    worst = replay(g)
    # every recorded trajectory was compared (all keys but the initial weights and x)
    recorded = {k for k in g.arrays if k not in ("x", "labels", "S", "S_rec") and not re.fullmatch(r"[WR]\d+", k)}
    assert set(worst) == recorded
    assert max(d.dev for d in worst.values()) <= TOLERANCE
    assert not any(d.note for d in worst.values())


@pytest.mark.needs("shared-golden")
def test_shared_golden_matches_shipped_copy():
    shared = sorted(SHARED_GOLDEN.glob("*.npz"))
    assert [p.name for p in shared] == [p.name for p in GOLDEN_FILES]
    for p in shared:
        assert (GOLDEN_DIR / p.name).read_bytes() == p.read_bytes()


def test_cli_conformance_every_shared_file(cli):
    target = SHARED_GOLDEN if SHARED_GOLDEN.is_dir() else GOLDEN_DIR
    r = cli("conformance", *sorted(target.glob("*.npz")))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 5 and all(l.startswith("PASS ") and "max deviation" in l for l in lines)


def test_cli_conformance_json_and_failure_exit(cli, tmp_path):
    out = tmp_path / "r.json"
    r = cli("conformance", GOLDEN_DIR, "--json", out)
    assert r.returncode == 0
    rep = json.loads(out.read_text())
    assert rep["passed"] == 5 and rep["failed"] == 0
    for f in rep["files"]:
        assert 0 <= f["max_deviation"] <= 1e-9 and f["array"] in f["arrays"]
    # a tolerance no float computation meets must fail with exit status 1
    r = cli("conformance", GOLDEN_FILES[0], "--tol", "0")
    assert r.returncode == 1 and r.stdout.startswith("FAIL")
    r = cli("conformance", GOLDEN_FILES[0], "--json")
    assert json.loads(r.stdout)["files"][0]["pass"] is True


def _rewrite(src, dst, drop=(), change=None, config=None, drop_config=()):
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    if config is not None or drop_config:
        cfg = json.loads(str(arrays["config"]))
        cfg.update(config or {})
        for k in drop_config:
            del cfg[k]
        arrays["config"] = np.array(json.dumps(cfg))
    for k, v in (change or {}).items():
        arrays[k] = v
    np.savez(dst, **arrays)
    return dst


def _bad_cases(tmp_path):
    src = GOLDEN_FILES[0]
    g = load_golden(src)
    yield "missing key 'gW0'", _rewrite(src, tmp_path / "a.npz", drop=("gW0",))
    yield "W0 has shape", _rewrite(src, tmp_path / "b.npz", change={"W0": np.zeros((2, 2))})
    yield "config lacks 'vth'", _rewrite(src, tmp_path / "c.npz", drop_config=("vth",))
    yield "reset must be", _rewrite(src, tmp_path / "d.npz", config={"reset": "medium"})
    yield "optimizer", _rewrite(src, tmp_path / "e.npz", config={"optimizer": "rmsprop"})
    yield "labels", _rewrite(src, tmp_path / "f.npz", config={"labels": [0] * (g.config["batch"] + 1)})
    yield "config is not JSON", _rewrite(src, tmp_path / "g.npz", change={"config": np.array("{oops")})
    (tmp_path / "h.npz").write_bytes(b"this is not a zip archive")
    yield "not an .npz archive", tmp_path / "h.npz"
    (tmp_path / "i.npz").write_bytes(src.read_bytes()[:500])
    yield "not an .npz archive", tmp_path / "i.npz"
    yield "no such file", tmp_path / "missing.npz"


def test_bad_golden_files_give_one_line_errors(cli, tmp_path):
    for expect, path in _bad_cases(tmp_path):
        r = cli("conformance", path)
        assert r.returncode == 2, (expect, r.stdout, r.stderr)
        assert "Traceback" not in r.stdout + r.stderr
        lines = r.stdout.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ERROR ") and expect in lines[0], (expect, lines)


def test_good_and_bad_files_together(cli, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    good = tmp_path / "good.npz"
    shutil.copy(GOLDEN_FILES[1], good)
    r = cli("conformance", good, bad)
    assert r.returncode == 2
    assert r.stdout.splitlines()[0].startswith("PASS") and r.stdout.splitlines()[1].startswith("ERROR")


def test_replay_without_jit(cli):
    """The kernels run as plain Python too (NUMBA_DISABLE_JIT=1), with the same result."""
    r = cli("conformance", GOLDEN_FILES[0], GOLDEN_FILES[3], env={"NUMBA_DISABLE_JIT": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("PASS") == 2


# ------------------------------------------------------------------ conformance cannot pass a wrong file
def _planted(tmp_path, name, **change):
    return _rewrite(GOLDEN_FILES[0], tmp_path / f"{name}.npz", change=change)


def _with(key, idx, value):
    with np.load(GOLDEN_FILES[0]) as z:
        a = z[key].copy()
    a[idx] = value
    return a


@pytest.mark.parametrize(
    "key,idx,value,array,step,where,side",
    [
        ("h1", (3, 0, 2), np.nan, "h1", 3, (0, 2), "nan in golden"),  # finite at steps 0-2, NaN later
        ("out", (5, 1, 0), np.inf, "out", 5, (1, 0), "inf in golden"),
        ("W0_after", (0, 0, 0), -np.inf, "W0_after", 0, (0, 0), "-inf in golden"),
        ("x", (1, 4, 3), np.nan, "x", 4, (1, 4, 3), "nan in golden (an input"),  # an input: named; mine goes NaN
        ("W0", (0, 0), np.nan, "W0", 0, (0, 0), "nan in golden (an input"),
    ],
)
def test_nan_or_inf_in_the_file_fails_naming_array_step_and_index(
    cli, tmp_path, key, idx, value, array, step, where, side
):
    path = _planted(tmp_path, f"bad_{key}", **{key: _with(key, idx, value)})
    r = cli("conformance", path, "--json", tmp_path / "r.json")
    assert r.returncode == 1, r.stdout + r.stderr
    line = r.stdout.strip()
    assert line.startswith("FAIL ") and "PASS" not in r.stdout and "Traceback" not in r.stderr
    assert f"non-finite value in {array} at step {step}, index {where}: {side}" in line, line
    rep = json.loads((tmp_path / "r.json").read_text())["files"][0]
    assert rep["pass"] is False and rep["array"] == array and rep["step"] == step and rep["index"] == list(where)
    assert array in rep["failing"] and array in rep["nonfinite"]


def test_nan_on_my_side_fails(monkeypatch):
    """A replay that goes NaN at step 4 (a planted bug) fails, naming the array and step."""
    from edgetp.tp import golden

    real = golden.train_step

    def broken(params, state, x, labels, cfg, opt, *a, **k):
        state, grads = real(params, state, x, labels, cfg, opt, *a, **k)
        broken.t += 1
        if broken.t == 5:
            state.u[1, 2] = np.nan
        return state, grads

    broken.t = 0
    monkeypatch.setattr(golden, "train_step", broken)
    worst = golden.replay(load_golden(GOLDEN_FILES[0]))
    d = worst["out"]
    assert d.step == 4 and d.index == (1, 2) and d.note == "nan in mine" and d.dev == float("inf")


def test_compare_sees_every_non_finite_case():
    from edgetp.tp.golden import compare, deviation

    a = np.zeros((2, 3))
    for mine, gold, note in (
        (a + np.nan, a, "nan in mine"),
        (a, a - np.inf, "-inf in golden"),
        (a, a + np.nan, "nan in golden"),
    ):
        d = compare(mine, gold, 7)
        assert d.dev == float("inf") and d.step == 7 and d.index == (0, 0) and d.note == note
        assert not deviation(mine, gold) <= 1e-9
    assert compare(a, a + 0.5, 0).dev == 0.5


@pytest.mark.parametrize(
    "edit,expect",
    [
        (dict(change={"extra_trace": np.zeros(3)}), "array 'extra_trace' is not understood"),
        (dict(change={"h9": np.zeros((10, 4, 8))}), "array 'h9' is not understood"),
        (dict(drop=("trt1",)), "missing key 'trt1'"),
        (dict(drop=("W0_after",)), "missing key 'W0_after'"),
        (dict(config={"weight_decay": 0.1}), "config key 'weight_decay' is not understood"),
        (dict(change={"note": np.array("text")}), "array 'note' holds text"),
    ],
)
def test_a_file_with_arrays_not_understood_is_refused(cli, tmp_path, edit, expect):
    path = _rewrite(GOLDEN_FILES[0], tmp_path / "f.npz", **edit)
    r = cli("conformance", path)
    assert r.returncode == 2 and "PASS" not in r.stdout and "Traceback" not in r.stderr, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ERROR {path}: ") and expect in lines[0], lines


def test_conformance_refuses_a_replay_that_leaves_an_array_out(cli, monkeypatch, tmp_path, capsys):
    """The CLI's own coverage check: a replay that forgets an array (planted) is an error, not PASS."""
    from argparse import Namespace

    from edgetp.cli import conformance
    from edgetp.tp import golden

    real = golden.replay
    monkeypatch.setattr(golden, "replay", lambda g: {k: v for k, v in real(g).items() if k != "trt1"})
    code = conformance.run(Namespace(files=[GOLDEN_FILES[0]], json=None, tol=None))
    out = capsys.readouterr().out
    assert code == 2 and out.startswith("ERROR ") and "'trt1' is not understood" in out and "PASS" not in out
