import importlib
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = ROOT / "tests" / "data" / "golden"
SHARED_GOLDEN = ROOT.parent / "shared" / "golden"


def run_cli(*args, env=None, timeout=600):
    """Run `python -m edgetp ...` as a user would; returns CompletedProcess (text)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "edgetp", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session", autouse=True)
def _test_ledger_outside_the_repository(tmp_path_factory):
    """A test that fine-tunes a shipped model on its test group writes its test-ledger line here, never into
    models/*/results/test-ledger.jsonl (edgetp.kws.ledger; an empty value restores the rule beside the model)."""
    os.environ["EDGETP_TEST_LEDGER"] = str(tmp_path_factory.mktemp("ledger") / "test-ledger.jsonl")
    yield
    os.environ.pop("EDGETP_TEST_LEDGER", None)


@pytest.fixture(scope="session", autouse=True)
def _single_threaded_blas():
    """The tests run like the commands: BLAS single-threaded (no module sets it at import)."""
    from edgetp.threads import single_threaded_blas

    with single_threaded_blas():
        yield


# ------------------------------------------------------------------ tools a test needs
# One helper decides what a missing tool means: on a developer machine the test is
# skipped (saying what to install); with CI=true it FAILS, because CI runs ./setup.sh,
# which installs every tool below; a skip there would hide a broken set-up.
# Only OPTIONAL extras (documented as such, e.g. torchaudio) skip everywhere.
# EDGETP_TEST_HIDE_TOOLS=a,b pretends tools a and b are missing (tests/test_conftest_tools.py).


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _compiles(cmd, source) -> bool:
    if not shutil.which(cmd[0]):
        return False
    try:
        r = subprocess.run(
            [*cmd, "-x", "c", "-", "-o", os.devnull], input=source, text=True, capture_output=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def _importable(name):
    return lambda: importlib.util.find_spec(name) is not None


def _default_corpus():
    from edgetp import paths

    return (paths.default_data_root() / "synth_info.json").is_file()


SETUP = "./setup.sh installs it"
TOOLS = {  # name: (check, what it is, how to get it)
    "cc": (lambda: any(shutil.which(c) for c in ("gcc", "clang", "cc")), "a C compiler (gcc or clang)", SETUP),
    "arm-none-eabi-gcc": (
        lambda: all(shutil.which(t) for t in ("arm-none-eabi-gcc", "arm-none-eabi-size")),
        "arm-none-eabi-gcc (Cortex-M4 builds)",
        SETUP,
    ),
    "qemu-system-arm": (lambda: shutil.which("qemu-system-arm") is not None, "qemu-system-arm", SETUP),
    "riscv64-unknown-elf-gcc": (
        lambda: _compiles(
            ["riscv64-unknown-elf-gcc", "-march=rv32imac", "-mabi=ilp32", "--specs=picolibc.specs", "-c"],
            "#include <string.h>\n",
        ),
        "riscv64-unknown-elf-gcc with picolibc (RV32 builds)",
        SETUP,
    ),
    "cmake": (lambda: shutil.which("cmake") is not None, "cmake (the export's CMake project)", SETUP),
    "qemu-system-riscv32": (
        lambda: shutil.which("qemu-system-riscv32") is not None,
        "qemu-system-riscv32 (Debian: qemu-system-misc)",
        SETUP,
    ),
    "clang": (lambda: shutil.which("clang") is not None, "clang", SETUP),
    "clang-sanitizers": (
        lambda: _compiles(["clang", "-fsanitize=address,undefined"], "int main(void){return 0;}"),
        "clang with its ASan/UBSan runtime (Debian: libclang-rt-N-dev)",
        SETUP,
    ),
    "libfuzzer": (
        lambda: _compiles(
            ["clang", "-fsanitize=fuzzer"], "int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}"
        ),
        "clang with libFuzzer (Debian: libclang-rt-N-dev)",
        SETUP,
    ),
    "espeak-ng": (lambda: shutil.which("espeak-ng") is not None, "espeak-ng", SETUP),
    "sox": (lambda: shutil.which("sox") is not None, "sox", SETUP),
    "onnx": (_importable("onnx"), "the Python package onnx (extra 'interop')", SETUP),
    "onnxruntime": (_importable("onnxruntime"), "the Python package onnxruntime (extra 'interop')", SETUP),
    "nir": (_importable("nir"), "the Python package nir (extra 'interop')", SETUP),
    "tonic": (_importable("tonic"), "the Python package tonic (extra 'neuromorphic')", SETUP),
    "h5py": (_importable("h5py"), "the Python package h5py (extra 'neuromorphic')", SETUP),
    "nir-clients": (
        lambda: all(importlib.util.find_spec(m) is not None for m in ("torch", "norse", "snntorch", "nirtorch")),
        "torch, norse, snntorch and nirtorch (extra 'nir-clients' + norse --no-deps)",
        SETUP,
    ),
    "shared-golden": (
        lambda: SHARED_GOLDEN.is_dir(),
        "the authors' golden files (shared/golden beside the checkout)",
        "CI places shared/ beside the clone",
    ),
    "ray": (_importable("ray"), "the Python package ray (extra 'ray')", SETUP),
    "ruff": (_importable("ruff"), "the linter ruff (extra 'test')", SETUP),
    "default-corpus": (_default_corpus, "the default corpus", "./setup.sh or `edgetp data prepare-default` makes it"),
}
OPTIONAL = {  # documented optional extras: skipped everywhere, CI included
    "torchaudio": (
        _importable("torchaudio"),
        "torchaudio (optional extra 'torch', documented as not installed by ./setup.sh or CI)",
    ),
}


@lru_cache(maxsize=None)
def have(tool: str) -> bool:
    """Whether ``tool`` (a key of TOOLS or OPTIONAL) is available."""
    if tool in {t.strip() for t in os.environ.get("EDGETP_TEST_HIDE_TOOLS", "").split(",")}:
        return False
    if tool not in TOOLS and tool not in OPTIONAL:
        raise KeyError(f"unknown tool {tool!r}; add it to TOOLS in tests/conftest.py")
    return bool((TOOLS.get(tool) or OPTIONAL[tool])[0]())


def require(*tools: str, module_level: bool = False) -> None:
    """Skip (developer machine) or fail (CI=true) unless every one of ``tools`` is there.

    An OPTIONAL tool always skips, saying it is an optional extra."""
    for tool in tools:
        if have(tool):
            continue
        if tool in OPTIONAL:
            pytest.skip(f"optional: {OPTIONAL[tool][1]} is not installed", allow_module_level=module_level)
        _check, what, how = TOOLS[tool]
        if in_ci():
            pytest.fail(f"CI=true and {what} is missing ({how}); CI must not skip this test", pytrace=False)
        pytest.skip(f"{what} is missing ({how})", allow_module_level=module_level)


def can(tool: str) -> bool:
    """For one part of a test that needs ``tool``: True when it is there, False on a developer
    machine without it (that part is left out); with CI=true a missing tool fails the test."""
    if have(tool):
        return True
    if in_ci():
        require(tool)
    return False


def require_module(name: str):
    """``import name`` for a test module, through :func:`require` (module level)."""
    require(name, module_level=True)
    return importlib.import_module(name)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "needs(*tools): the test needs these tools (tests/conftest.py TOOLS); "
        "skipped when missing, FAILED when missing and CI=true",
    )


def pytest_runtest_setup(item):
    """``@pytest.mark.needs(...)`` is checked before any fixture (module fixtures included) is set up."""
    for mark in item.iter_markers("needs"):
        require(*mark.args)


# ------------------------------------------------------------------ the tone corpus and models that read it
TONE_HELD = "0a1b2c3d"  # tests/data/tone_corpus.py's speaker with the most utterances


@pytest.fixture(scope="module")
def tone_models(tmp_path_factory):
    """The chirp corpus of tests/data/tone_corpus.py and untrained 120-8r-N models of its labels
    (seed 0, held-out speaker ``TONE_HELD``), as ``(root, {kind: model file})``:

    - ``unit``: divisors 1, the paper's features log1p(S / max S);
    - ``paper``: the same with divisors 0.01;
    - ``log_gain``: divisors 1, log1p(1000 S / max S);
    - ``per_utterance``: log gain 1000, each utterance divided by its own std (not on the device)."""
    sys.path.insert(0, str(ROOT / "tests" / "data"))
    import numpy as np
    from tone_corpus import make_corpus

    from edgetp.data.gsc import load_corpus
    from edgetp.model import Model, save_model
    from edgetp.tp.config import NetConfig, init_params

    root = tmp_path_factory.mktemp("tones")
    make_corpus(root)
    labels = list(load_corpus(root).label_names)
    cfg = NetConfig(120, (8,), len(labels), recurrent=True)
    kinds = {
        "unit": (1.0, {}),
        "paper": (0.01, {}),
        "log_gain": (1.0, {"log_gain": 1000.0}),
        "per_utterance": (1.0, {"log_gain": 1000.0, "per_utterance": True}),
    }
    models = {}
    for kind, (divisor, frontend) in kinds.items():
        models[kind] = root.parent / f"m_{kind}.npz"
        save_model(
            Model(
                cfg,
                init_params(cfg, 0),
                labels,
                frontend=dict(frontend),
                recipe={"held_out_speaker": TONE_HELD},
                norm_scale=np.full(120, divisor, np.float32),
            ),
            models[kind],
        )
    return root, models
