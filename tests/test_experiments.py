"""experiments/ stays runnable (it is not installed: test_packaging checks the wheel)."""

import os
import subprocess
import sys

from conftest import ROOT


def test_fixed_measure_runs_from_the_repository_root():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "experiments/fixed_measure.py", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0 and "synthetic" in r.stdout, r.stderr
    code = (
        "import sys; sys.path.insert(0, 'experiments'); from synthetic_task import make_task; "
        "t = make_task(n_classes=3, T=12, n_speakers=2, pre_per_class=1, shots=1, query_per_class=1); "
        "print(t.pre_x.shape, t.sup_x.shape, t.qry_x.shape)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.split() == [
        "(6,",
        "12,",
        "120)",
        "(3,",
        "12,",
        "120)",
        "(3,",
        "12,",
        "120)",
    ], r.stderr


def test_real_speech_experiments_run_from_the_repository_root():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for script, flag in (
        ("real_zero_shot.py", "--data-root"),
        ("real_second_stage.py", "--mix"),
        ("detect_personalised.py", "--measure-seed"),
    ):
        r = subprocess.run(
            [sys.executable, f"experiments/{script}", "--help"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=300,
        )
        assert r.returncode == 0 and flag in r.stdout, r.stderr
