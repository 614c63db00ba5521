"""Importing a module changes no global setting: thread limits, numpy's error handling and
print options, the environment. A command sets what it needs where it starts
(``edgetp.threads.single_threaded_blas`` in ``edgetp.cli.main`` and ``kws.train.fit``)."""

import json
import os
import subprocess
import sys

from conftest import ROOT

PROBE = r"""
import importlib, json, os, sys
import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (the BLAS numba calls, loaded before anything is imported)
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, "tests")
from test_layering import modules

def blas():
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas")

def settings():
    return {"blas": blas(), "err": np.geterr(), "print": str(np.get_printoptions()),
            "env": {k: v for k, v in os.environ.items() if not k.startswith("KMP_")}}
# (KMP_*: the Intel OpenMP runtime's settings, which third-party libraries set when loaded)

threadpool_limits(2, user_api="blas")    # a caller's own setting, which imports must leave alone
before = settings()
names = [m for m in modules(__import__("pathlib").Path(".")) if not m.endswith("__main__")]
if len(sys.argv) > 1:                    # the tester's test: a planted module in another folder
    sys.path.insert(0, sys.argv[1])
    names.append("planted")
for m in names:
    importlib.import_module(m)
after = settings()
from edgetp.threads import single_threaded_blas
with single_threaded_blas():
    during = blas()
print(json.dumps({"before": before, "after": after, "during": during, "after_cm": blas(), "n": len(names)}))
"""


def probe(*plant):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *plant], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_importing_every_module_changes_no_global_setting():
    out = probe()
    assert out["n"] > 50
    assert out["before"]["blas"] and all(n == 2 for _f, n in out["before"]["blas"]), out["before"]["blas"]
    assert out["after"] == out["before"]
    # the probe sees a change when there is one: the commands' helper limits BLAS, and restores it
    assert out["during"] and all(n == 1 for _f, n in out["during"]), out["during"]
    assert out["after_cm"] == out["before"]["blas"]


def test_the_probe_sees_an_import_time_limit(tmp_path):
    """A planted module that limits BLAS at import is caught (the tester is tested)."""
    (tmp_path / "planted.py").write_text(
        "from threadpoolctl import threadpool_limits\n_L = threadpool_limits(1, user_api='blas')\n"
    )
    out = probe(str(tmp_path))
    assert out["after"]["blas"] != out["before"]["blas"]
