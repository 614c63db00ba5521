import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "data" / "golden"
SHARED_GOLDEN = ROOT.parent / "shared" / "golden"


def run_cli(*args, env=None, timeout=600):
    """Run `python -m edgetp ...` as a user would; returns CompletedProcess (text)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "edgetp", *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_blas():
    """The tests run like the commands: BLAS single-threaded (no module sets it at import)."""
    from edgetp.threads import single_threaded_blas

    with single_threaded_blas():
        yield
