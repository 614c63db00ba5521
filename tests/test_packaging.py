"""`pip install .` ships what the tree has: the wheel carries packages, C sources and shipped models."""

import subprocess
import sys
import zipfile

from conftest import ROOT


def test_wheel_contents(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    (whl,) = tmp_path.glob("edgetp-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for must in (
        "edgetp/cli/__init__.py",
        "edgetp/tp/network.py",
        "edgetp/models/kws-mcu/model.npz",
        "edgetp/models/kws-paper/model.npz",
        "firmware_gen/__init__.py",
        "deploy/__init__.py",
    ):
        assert must in names, must
    assert any(n.startswith("firmware_gen/") and n.endswith(".c") for n in names)
    # the shipped real clips (the main job's real speakers) with their licence and sources
    real = [n for n in names if n.startswith("edgetp/data/gsc_real/")]
    assert sum(n.endswith(".wav") for n in real) == 755
    for f in ("README.md", "MANIFEST.csv", "real_dev_info.json", "testing_list.txt", "validation_list.txt"):
        assert f"edgetp/data/gsc_real/{f}" in real, f
    assert not any(n.startswith("tests/") for n in names)
    assert not any(n.startswith("experiments/") or n.startswith("edgetp/fixed/measure") for n in names)
    meta = next(n for n in names if n.endswith("entry_points.txt"))
    assert "edgetp = edgetp.cli:main" in zipfile.ZipFile(whl).read(meta).decode()
