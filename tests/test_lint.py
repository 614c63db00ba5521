"""`ruff check` over the tree passes (pyproject.toml [tool.ruff]): unused imports and names, undefined names,
late-bound loop variables in closures, bare re-raises lose nothing."""

import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.needs("ruff")
def test_ruff_check_passes():
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", str(ROOT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


@pytest.mark.needs("ruff")
def test_ruff_catches_a_planted_unused_import(tmp_path):
    """The check can fail: the tree's configuration flags an unused import in a file like the tree's."""
    f = tmp_path / "planted.py"
    f.write_text("import os\n")
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(f)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert r.returncode == 1 and "F401" in r.stdout, r.stdout + r.stderr
