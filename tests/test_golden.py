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
    assert max(d for d, _ in worst.values()) <= TOLERANCE


def test_shared_golden_matches_shipped_copy():
    if not SHARED_GOLDEN.is_dir():
        pytest.skip("shared/golden not beside this checkout")
    for p in sorted(SHARED_GOLDEN.glob("*.npz")):
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
