"""The tester: a test whose tool is missing skips on a developer machine and FAILS with CI=true
(tests/conftest.py); an optional extra (torchaudio) skips in both, saying it is optional."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

PROBE = '''
import pytest
from conftest import can, require, require_module

@pytest.mark.needs("espeak-ng")
def test_marked():
    pass

@pytest.fixture(scope="module")
def expensive():
    raise AssertionError("a module fixture ran before the tool check")

@pytest.mark.needs("qemu-system-arm")
def test_marked_with_a_module_fixture(expensive):
    pass

def test_called():
    require("cc")

def test_part():
    assert not can("arm-none-eabi-gcc")

def test_optional():
    require("torchaudio")
'''
PROBE_MODULE = '''
from conftest import require_module
nir = require_module("nir")

def test_after_import():
    pass
'''


def _run(tmp_path, ci: str | None, probe="test_probe.py"):
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "test_probe_module.py").write_text(PROBE_MODULE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["EDGETP_TEST_HIDE_TOOLS"] = "espeak-ng,qemu-system-arm,cc,arm-none-eabi-gcc,nir,torchaudio"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    return r.returncode, r.stdout + r.stderr


def _outcome(out, name):
    m = re.search(rf"^(PASSED|FAILED|SKIPPED|ERROR)\b.*{name}\b.*$", out, re.M)
    return m.group(0) if m else ""


@pytest.mark.parametrize("ci", [None, "false"])
def test_missing_tools_skip_on_a_developer_machine(tmp_path, ci):
    code, out = _run(tmp_path, ci)
    assert code == 0, out
    assert re.search(r"\b1 passed, 4 skipped\b", out) and "failed" not in out, out  # test_part leaves its part out
    code, out_module = _run(tmp_path, ci, "test_probe_module.py")
    # 5: the whole module skipped and "nir (extra 'interop') is missing" in out_module
    assert code == 5 and re.search(r"\b1 skipped\b", out_module)
    assert "espeak-ng is missing (./setup.sh installs it)" in out
    assert re.search(r"optional: torchaudio .*not installed", out)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_tools_fail_in_ci(tmp_path, ci):
    code, out = _run(tmp_path, ci)
    assert code == 1, out
    for name in ("test_marked", "test_marked_with_a_module_fixture", "test_called", "test_part"):
        assert "CI=true and" in _outcome(out, name) or _outcome(out, name).startswith(("FAILED", "ERROR")), (name, out)
    assert "a module fixture ran" not in out
    # a module that needs the tool at import fails its collection (which stops the run: CI is red)
    code, out_module = _run(tmp_path, ci, "test_probe_module.py")
    assert code == 2 and "ERROR test_probe_module.py" in out_module and "CI must not skip" in out_module, out_module
    assert "CI must not skip this test" in out
    # the optional extra is the only skip, and it says why
    assert re.search(r"\b1 skipped\b", out) and re.search(r"SKIPPED.*optional: torchaudio", out), out


def test_every_tool_check_runs_and_unknown_names_are_refused():
    from conftest import OPTIONAL, TOOLS, have

    for tool in (*TOOLS, *OPTIONAL):
        assert have(tool) in (True, False)
    with pytest.raises(KeyError):
        have("no-such-tool")
