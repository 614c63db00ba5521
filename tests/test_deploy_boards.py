"""The firmware on every emulated board (deploy/boards.py: Cortex-M4, M7, M33, RISC-V RV32IMAC):
it answers over its UART, its instruction counter is exact to its resolution, its image and RAM
figures agree (test_deploy_qemu.py), a wrong counter resolution is caught, and verify-c's random models run on each
bit for bit (a planted difference is found). The M4's own tests: test_deploy_qemu.py.)"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy_fake"))
from deploy_helpers import FAKE_DIR, device  # noqa: E402

from deploy.boards import BOARDS  # noqa: E402
from deploy.build import build  # noqa: E402

ARM = pytest.mark.needs("arm-none-eabi-gcc", "qemu-system-arm")
RV = pytest.mark.needs("riscv64-unknown-elf-gcc", "qemu-system-riscv32")
TARGETS = [pytest.param("qemu-m7", marks=ARM), pytest.param("qemu-m33", marks=ARM), pytest.param("qemu-rv32", marks=RV)]
NAMES = {"qemu-m7": "mps2-an500 (qemu)", "qemu-m33": "mps2-an505 (qemu)", "qemu-rv32": "riscv-virt (qemu)"}


def _loop_costs(dev, res, ns=(0, 1000, 30000)):
    cost = {}
    for n in ns:
        x = np.zeros(8, dtype=np.int16)
        x[0] = n
        cost[n] = [dev.train(x, 0)["cost"] * res for _ in range(3)]
    return cost


def _check_exact(cost, res):
    """A loop of exactly 2 instructions run n times reads 2 n + a constant, to one count."""
    base = min(cost[0])
    for n, got in cost.items():
        assert max(got) - min(got) <= res, (n, got)
        assert all(abs(c - base - 2 * n) <= res for c in got), (n, got, base, res)


@pytest.mark.parametrize("target", TARGETS)
def test_board_answers_and_counts_instructions_exactly(target):
    with device(target, model_dir=FAKE_DIR / "calib") as (_, dev):
        info = dev.hello()
        assert info.board == NAMES[target]
        assert info.counter_name == "instructions" and info.counter_res == BOARDS[target].counter_res
        dev.init(0)
        _check_exact(_loop_costs(dev, info.counter_res), info.counter_res)


@ARM
def test_a_wrong_counter_resolution_is_caught(tmp_path):
    """The M33's SysTick tick is 25 instructions under its -icount shift; a port that claimed the M4's
    5 would under-report every cost five-fold: the calibration loop must see it."""
    from deploy.targets import QemuTarget
    from deploy.host import Device, open_port

    image = build(FAKE_DIR / "calib", "qemu-m33", tmp_path, extra_cflags=["-UETP_COUNTER_RES", "-DETP_COUNTER_RES=5u"])
    with QemuTarget(image, board="qemu-m33") as t:
        dev = Device(open_port(t.url, 115200), timeout=5.0)
        try:
            info = dev.hello()
            assert info.counter_res == 5
            dev.init(0)
            with pytest.raises(AssertionError):
                _check_exact(_loop_costs(dev, info.counter_res), info.counter_res)
        finally:
            dev.close()


@pytest.mark.parametrize("target", [pytest.param("qemu", marks=ARM), *TARGETS])
def test_verify_c_random_models_on_the_board(target):
    """verify-c's random models, cross-compiled (every warning an error) and run on the emulated
    board over its UART: every state tensor after every step equals the integer reference."""
    from deploy.verify_c import verify_random

    s = verify_random(2, seed=11, steps=2, jobs=1, target=target)
    assert s.cases == 2 and s.steps > 0 and s.ok, s.lines()


@RV
def test_verify_c_on_a_board_finds_a_planted_difference(tmp_path):
    """A one-LSB change in the trace kernel's rounding, run on RV32 (the portable C paths), is found."""
    from deploy.bitexact import verify_export
    from firmware_gen.cases import CaseSpec, build_model, build_script, device_config
    from firmware_gen.generate import render
    from firmware_gen.tensors import TableDevice

    spec = CaseSpec(steps=3, samples=1)
    qm, dev = build_model(spec), device_config(spec)
    ex = render(qm, dev)
    old = "(uint32_t)(lam_q * tr[i] + (1 << 14))"
    assert old in ex.files["etp_kernels.c"]
    ex.files["etp_kernels.c"] = ex.files["etp_kernels.c"].replace(old, "(uint32_t)(lam_q * tr[i] + (1 << 13))", 1)
    steps, mm = verify_export(ex, TableDevice(qm, dev), build_script(spec), 0, False, tmp_path, target="qemu-rv32")
    assert mm is not None and mm.step >= 2 and "tr0" in mm.differing, mm


@RV
def test_verify_c_cli_target(tmp_path):
    import json

    from conftest import run_cli

    out = tmp_path / "v.json"
    r = run_cli(
        "verify-c", "--random-models", "1", "--steps", "1", "--target", "qemu-rv32", "--jobs", "1", "--json", out
    )
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert res["target"] == "qemu-rv32" and res["cases"] == 1 and res["mismatches"] == res["errors"] == 0
    bad = run_cli("verify-c", "--model", "kws-mcu", "--target", "qemu-m33")
    assert bad.returncode == 2 and "--target runs the random models" in bad.stderr and "Traceback" not in bad.stderr
