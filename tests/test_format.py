"""`ruff format --check` over the tree passes (pyproject.toml [tool.ruff.format]): the code is laid out as the
formatter lays it out, so a change's diff holds what it changes."""

import subprocess
import sys

import pytest

from conftest import ROOT


def _format_check(*args):
    return subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


@pytest.mark.needs("ruff")
def test_ruff_format_check_passes():
    r = _format_check(str(ROOT))
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


@pytest.mark.needs("ruff")
def test_ruff_format_catches_a_planted_layout(tmp_path):
    """The check can fail: a file laid out otherwise than the formatter would is reported, and one it would keep
    passes (quote style preserved: both quotes stand)."""
    bad, good = tmp_path / "planted.py", tmp_path / "kept.py"
    bad.write_text("x = [1,2,   3]\n")
    good.write_text("a = 'single'\nb = \"double\"\n")
    cfg = ("--config", str(ROOT / "pyproject.toml"))
    r = _format_check(*cfg, str(bad))
    assert r.returncode == 1 and "planted.py" in r.stdout + r.stderr, r.stdout + r.stderr
    r = _format_check(*cfg, str(good))
    assert r.returncode == 0, r.stdout + r.stderr
